// Node `ws` peer: echo on every path, ws defaults (no permessage-deflate, no keepalive).
// Usage: node echo.js --port N [--host 127.0.0.1]
'use strict';
const { WebSocketServer } = require('ws');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const wss = new WebSocketServer({ host: arg('host', '127.0.0.1'), port: Number(arg('port')), backlog: 1024 });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
