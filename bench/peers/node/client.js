// Node `ws` load client, the second client that cross-checks the picows one (bench/loadgen.py).
// Closed loop: every connection sends one message and sends the next when the echo is back.
// Prints MEASURE_START / MEASURE_END around the measured window (the harness samples the
// server's CPU on those lines), then one JSON line with the counts, latency and its own CPU.
// Usage: node client.js --url ws://127.0.0.1:P/echo --conns 100 --size 32 --type text
//                       --warmup 1 --duration 5 [--max-msgs N]
'use strict';
const WebSocket = require('ws');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const url = arg('url');
const conns = Number(arg('conns', '100'));
const size = Number(arg('size', '32'));
const binary = arg('type', 'text') === 'binary';
const warmup = Number(arg('warmup', '1'));
const duration = Number(arg('duration', '5'));
const maxMsgs = Number(arg('max-msgs', '50000000'));
const payload = binary ? Buffer.alloc(size, 0x61) : 'a'.repeat(size);

let phase = 0; // 0 warmup, 1 measuring, 2 stopping
let count = 0;
let errors = 0;
const latencies = [];
let cpuStart = null;
let wallStart = 0n;
let wallEnd = 0n;

function nowNs() {
  return process.hrtime.bigint();
}

function openOne() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    let sentAt = 0n;
    const send = () => {
      sentAt = nowNs();
      ws.send(payload, { binary });
    };
    ws.on('open', () => resolve({ ws, send }));
    ws.on('error', (err) => { errors += 1; reject(err); });
    ws.on('message', (data, isBinary) => {
      const t = nowNs();
      if (data.length !== size || isBinary !== binary) errors += 1;
      if (phase === 1) {
        count += 1;
        if (latencies.length < 5000000) latencies.push(Number(t - sentAt));
        if (count >= maxMsgs) finish();
      }
      if (phase < 2) send();
    });
  });
}

let done;
const finished = new Promise((resolve) => { done = resolve; });
function finish() {
  if (phase !== 1) return;
  phase = 2;
  wallEnd = nowNs();
  process.stdout.write('MEASURE_END\n');
  done();
}

function pct(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] / 1e6;
}

(async () => {
  const sockets = [];
  for (let i = 0; i < conns; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(conns, i + 50); j++) batch.push(openOne());
    sockets.push(...(await Promise.all(batch)));
  }
  for (const s of sockets) s.send();
  await new Promise((r) => setTimeout(r, warmup * 1000));
  phase = 1;
  process.stdout.write('MEASURE_START\n');
  cpuStart = process.cpuUsage();
  wallStart = nowNs();
  const timer = setTimeout(finish, duration * 1000);
  await finished;
  clearTimeout(timer);
  const cpu = process.cpuUsage(cpuStart);
  await new Promise((r) => setTimeout(r, 200));
  for (const s of sockets) s.ws.close(1000);
  latencies.sort((a, b) => a - b);
  const elapsed = Number(wallEnd - wallStart) / 1e9;
  process.stdout.write(JSON.stringify({
    client: 'node-ws',
    mode: 'echo',
    conns,
    size,
    msgs: count,
    elapsed,
    msgs_per_s: count / elapsed,
    p50_ms: pct(latencies, 0.5),
    p99_ms: pct(latencies, 0.99),
    client_cpu_s: (cpu.user + cpu.system) / 1e6,
    errors,
  }) + '\n');
  setTimeout(() => process.exit(0), 500).unref();
})().catch((err) => {
  process.stderr.write(`client failed: ${err}\n`);
  process.exit(1);
});
