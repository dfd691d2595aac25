// wsrelay console: pick a route, connect, send, watch messages, close codes and metrics.
// Plain browser JavaScript, no build step; every URL is relative, so PATH_PREFIX just works.
// The faults panel (query string and "What happened") is console-faults.js.
"use strict";

const faults = window.wsrelayFaults;

const METRICS_EVERY_MS = 2000;
const PREVIEW_CHARS = 2000;
const PREVIEW_BYTES = 256;
const CLOSE_NAMES = {
  1000: "normal closure", 1001: "going away", 1002: "protocol error",
  1003: "unsupported data", 1005: "no status received",
  1006: "abnormal closure: no close frame (handshake refused, unreachable, or dropped)",
  1007: "invalid payload data", 1008: "policy violation", 1009: "message too big",
  1010: "mandatory extension", 1011: "internal error", 1012: "service restart",
  1013: "try again later", 1014: "bad gateway", 1015: "TLS handshake failure",
};

const $ = (id) => document.getElementById(id);
const state = {
  routes: [],
  ws: null,
  opened: false,
  pendingEchoes: [], // {data, at}: messages sent, waiting to come back (echo round trip)
  lastPing: null, // {mean, count, at}: the last refresh in which the server measured pings
  previousPing: null, // {sum, count} of the route's RTT histogram at the previous refresh
};

function describeClose(code) {
  if (CLOSE_NAMES[code]) return `${code} (${CLOSE_NAMES[code]})`;
  if (code >= 3000 && code <= 3999) return `${code} (registered application code)`;
  if (code >= 4000 && code <= 4999) return `${code} (private application code)`;
  return String(code);
}

function clock(date) {
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.` +
    pad(date.getMilliseconds(), 3);
}

function formatMs(seconds) {
  const ms = seconds * 1000;
  return ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(1)} ms`;
}

function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

// "01 02 ff", "0102ff", "01:02:ff" or "0x01 0x02" -> Uint8Array; throws with a readable message.
function parseHex(text) {
  const clean = text.replace(/0x/gi, "").replace(/[\s:,]/g, "");
  if (!/^[0-9a-fA-F]*$/.test(clean)) throw new Error("Only hex digits (0-9, a-f) are allowed.");
  if (clean.length % 2) throw new Error("Hex needs two digits per byte.");
  const bytes = new Uint8Array(clean.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(clean.substr(i * 2, 2), 16);
  return bytes;
}

// ---- message log -------------------------------------------------------------------------

function logEntry(kind, label, detail, body) {
  const item = document.createElement("li");
  item.className = `entry ${kind}`;
  const time = document.createElement("time");
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = clock(now);
  const dir = document.createElement("span");
  dir.className = "dir";
  dir.textContent = label;
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = detail;
  item.append(time, dir, meta);
  if (body !== undefined) {
    const pre = document.createElement("pre");
    pre.textContent = body;
    item.append(pre);
  }
  const log = $("log");
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(item);
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function logMessage(direction, data) {
  const label = direction === "out" ? "→ sent" : "← received";
  if (typeof data === "string") {
    const size = new TextEncoder().encode(data).length;
    const body = data.length > PREVIEW_CHARS ? data.slice(0, PREVIEW_CHARS) + " …" : data;
    logEntry(direction, label, `text, ${size} B`, body);
  } else {
    const bytes = new Uint8Array(data);
    const more = bytes.length > PREVIEW_BYTES ? " …" : "";
    logEntry(direction, label, `binary, ${bytes.length} B`,
      toHex(bytes.subarray(0, PREVIEW_BYTES)) + more);
  }
}

// ---- routes and the URL ------------------------------------------------------------------

function selectedRoute() {
  return state.routes.find((r) => r.url_path === $("route").value);
}

function placeholders(path) {
  return Array.from(path.matchAll(/\{(\w+)\}/g), (m) => m[1]);
}

function renderParams() {
  const route = selectedRoute();
  const box = $("params");
  const previous = {};
  for (const input of box.querySelectorAll("input")) previous[input.name] = input.value;
  box.replaceChildren();
  for (const name of route ? placeholders(route.url_path) : []) {
    const field = document.createElement("div");
    field.className = "field";
    const label = document.createElement("label");
    label.htmlFor = `param-${name}`;
    label.textContent = name.charAt(0).toUpperCase() + name.slice(1);
    const input = document.createElement("input");
    input.id = `param-${name}`;
    input.name = name;
    input.required = true;
    input.autocomplete = "off";
    input.value = previous[name] ?? (name === "room" ? "lobby" : "");
    input.addEventListener("input", renderUrl);
    field.append(label, input);
    box.append(field);
  }
  faults.showFor(route);
  const needsToken = route?.auth === "token";
  $("token").required = needsToken;
  $("token-need").textContent = needsToken ? "(this route requires one)" : "(optional)";
  renderUrl();
}

function buildUrl(maskToken) {
  const route = selectedRoute();
  if (!route) return null;
  let path = route.url_path;
  for (const name of placeholders(path)) {
    const value = $(`param-${name}`).value.trim();
    if (!value) return null;
    path = path.replace(`{${name}}`, encodeURIComponent(value));
  }
  const { params, error } = faults.query();
  if (error) return null;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const token = $("token").value;
  const parts = params.map(([name, value]) => `${name}=${encodeURIComponent(value)}`);
  if (token) parts.unshift(`token=${maskToken ? "••••" : encodeURIComponent(token)}`);
  const query = parts.length ? `?${parts.join("&")}` : "";
  return `${scheme}//${location.host}${path}${query}`;
}

// Why there is no URL yet: a fault field that is not valid, or a path field left empty.
function urlProblem() {
  return faults.query().error ?? "fill in every field";
}

function renderUrl() {
  $("url-preview").textContent = buildUrl(true) ?? `(${urlProblem()})`;
}

async function loadRoutes() {
  try {
    const response = await fetch("routes", { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    // http_echo routes answer plain HTTP: nothing for a WebSocket console.
    state.routes = (await response.json())
      .filter((r) => typeof r.url_path === "string" && r.mode !== "http_echo");
  } catch (error) {
    $("server-state").textContent = `Could not load the routes (${error.message}).`;
    return;
  }
  const select = $("route");
  for (const route of state.routes) {
    const option = document.createElement("option");
    option.value = route.url_path;
    option.textContent = `${route.url_path} (${route.mode}${route.auth === "token" ? ", token" : ""})`;
    select.append(option);
  }
  $("server-state").textContent = `${state.routes.length} route(s) served by ${location.host}.`;
  renderParams();
}

// ---- the connection -----------------------------------------------------------------------

function setConnected(connected) {
  const busy = state.ws !== null;
  $("connect").disabled = busy;
  $("route").disabled = busy;
  faults.lock(busy);
  $("disconnect").disabled = !busy;
  $("message").disabled = !connected;
  $("send").disabled = !connected;
}

function setStatus(text) {
  $("status").textContent = text;
}

function connect(event) {
  event.preventDefault();
  const url = buildUrl(false);
  if (!url) {
    const problem = urlProblem();
    setStatus(faults.query().error ? `Fix the faults first: ${problem}.` :
      "Fill in every field of the route first.");
    return;
  }
  const protocol = $("subprotocol").value.trim();
  let ws;
  try {
    ws = protocol ? new WebSocket(url, protocol) : new WebSocket(url);
  } catch (error) {
    setStatus(`Cannot connect: ${error.message}`);
    return;
  }
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  state.opened = false;
  state.pendingEchoes = [];
  state.lastPing = null;
  state.previousPing = null;
  $("echo-rtt").textContent = "–";
  $("ping-rtt").textContent = "–";
  const shown = buildUrl(true);
  faults.started();
  setStatus(`Connecting to ${shown}…`);
  setConnected(false);
  ws.addEventListener("open", () => {
    state.opened = true;
    faults.opened();
    const sub = ws.protocol ? ` (subprotocol ${ws.protocol})` : "";
    setStatus(`Connected to ${shown}${sub}.`);
    logEntry("event", "● open", `${shown}${sub}`);
    setConnected(true);
    $("message").focus();
    refreshMetrics();
  });
  ws.addEventListener("message", (event) => {
    logMessage("in", event.data);
    faults.received(event.data);
    measureEcho(event.data);
  });
  ws.addEventListener("close", (event) => {
    const reason = event.reason ? `, reason "${event.reason}"` : "";
    const how = event.wasClean ? "clean" : "not clean";
    faults.closed(event, describeClose);
    const text = `Closed: ${describeClose(event.code)}${reason} (${how}).`;
    const hint = !state.opened && event.code === 1006
      ? " The handshake failed: unknown route, a missing or wrong token, another origin, or the server is full."
      : "";
    setStatus(text + hint);
    logEntry("event", "● closed", `code ${event.code}${reason}`, describeClose(event.code) + hint);
    if (state.ws === ws) state.ws = null;
    setConnected(false);
    $("connect").focus();
    refreshMetrics();
  });
}

function disconnect() {
  const input = $("close-code");
  const code = Number(input.value);
  if (!(code === 1000 || (code >= 3000 && code <= 4999))) {
    setStatus("A browser may only close with 1000 or a code from 3000 to 4999.");
    input.focus();
    return;
  }
  if (state.ws) {
    setStatus(`Closing with ${code}…`);
    state.ws.close(code);
  }
}

function send(event) {
  event.preventDefault();
  const area = $("message");
  const error = $("message-error");
  const kind = document.querySelector("input[name=kind]:checked").value;
  let data = area.value;
  try {
    if (kind === "hex") data = parseHex(data).buffer;
  } catch (problem) {
    error.textContent = problem.message;
    area.setAttribute("aria-invalid", "true");
    return;
  }
  error.textContent = "";
  area.removeAttribute("aria-invalid");
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return;
  state.ws.send(data);
  faults.sent();
  state.pendingEchoes.push({ key: echoKey(data), at: performance.now() });
  if (state.pendingEchoes.length > 100) state.pendingEchoes.shift();
  logMessage("out", data);
  area.value = "";
  area.focus();
}

// ---- latency ---------------------------------------------------------------------------------

function echoKey(data) {
  return typeof data === "string" ? `t:${data}` : `b:${toHex(new Uint8Array(data))}`;
}

// A message equal to one this page sent (oldest first) ends that message's round trip.
function measureEcho(data) {
  const key = echoKey(data);
  const index = state.pendingEchoes.findIndex((p) => p.key === key);
  if (index < 0) return;
  const [sent] = state.pendingEchoes.splice(0, index + 1).slice(-1);
  const rtt = (performance.now() - sent.at) / 1000;
  $("echo-rtt").textContent = `${formatMs(rtt)} (at ${clock(new Date())})`;
  faults.roundTrip(rtt);
}

function showPing(series) {
  const route = selectedRoute();
  if (!route) return;
  const sum = sumOf(series, "wsrelay_ping_rtt_seconds_sum", { route: route.path });
  const count = sumOf(series, "wsrelay_ping_rtt_seconds_count", { route: route.path });
  const before = state.previousPing;
  state.previousPing = { sum, count };
  if (before && count > before.count) {
    state.lastPing = { mean: (sum - before.sum) / (count - before.count),
      count: count - before.count, at: new Date() };
  }
  const overall = count ? `; ${formatMs(sum / count)} mean over all ${count} pings so far` : "";
  if (state.lastPing) {
    const p = state.lastPing;
    $("ping-rtt").textContent =
      `${formatMs(p.mean)} mean of ${p.count} ping(s) at ${clock(p.at)}${overall}`;
  } else {
    $("ping-rtt").textContent = count
      ? `no new pings since this page looked${overall}`
      : "no pings measured on this route yet";
  }
}

// ---- metrics ---------------------------------------------------------------------------------

// Prometheus text format -> [{name, labels, value}]; comments and malformed lines are skipped.
function parseMetrics(text) {
  const series = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const raw of text.split("\n")) {
    if (!raw || raw.startsWith("#")) continue;
    const m = line.exec(raw);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] ?? "").matchAll(label)) {
      labels[l[1]] = l[2].replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
    }
    series.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return series;
}

function sumOf(series, name, match = {}) {
  let total = 0;
  for (const s of series) {
    if (s.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.append(td);
}

function fmtCount(value) {
  return Number.isFinite(value) ? Math.round(value).toLocaleString("en") : "–";
}

function renderMetrics(series) {
  const routes = [...new Set(series
    .filter((s) => s.name === "wsrelay_connections_active")
    .map((s) => s.labels.route))].sort();
  const body = $("connections-table").tBodies[0];
  body.replaceChildren();
  for (const route of routes) {
    const row = body.insertRow();
    const r = { route };
    cell(row, route);
    cell(row, fmtCount(sumOf(series, "wsrelay_connections_active", r)));
    cell(row, fmtCount(sumOf(series, "wsrelay_connections_opened_total", r)));
    cell(row, fmtCount(sumOf(series, "wsrelay_messages_total", { route, direction: "in" })));
    cell(row, fmtCount(sumOf(series, "wsrelay_messages_total", { route, direction: "out" })));
  }
  const closes = series
    .filter((s) => s.name === "wsrelay_close_codes_total" && s.value > 0)
    .sort((a, b) => (a.labels.route + a.labels.code).localeCompare(b.labels.route + b.labels.code));
  const closeBody = $("closes-table").tBodies[0];
  closeBody.replaceChildren();
  for (const s of closes) {
    const row = closeBody.insertRow();
    cell(row, s.labels.route);
    cell(row, s.labels.code);
    cell(row, s.labels.initiator);
    cell(row, fmtCount(s.value));
  }
  if (!closes.length) {
    const row = closeBody.insertRow();
    cell(row, "none yet");
    row.cells[0].colSpan = 4;
  }
}

let metricsTimer = null;

async function refreshMetrics() {
  clearTimeout(metricsTimer);
  try {
    const response = await fetch("metrics", { headers: { Accept: "text/plain" }, cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const series = parseMetrics(await response.text());
    renderMetrics(series);
    showPing(series);
    $("metrics-state").textContent = `updated ${clock(new Date())}`;
  } catch (error) {
    $("metrics-state").textContent = `metrics unavailable (${error.message})`;
  }
  metricsTimer = setTimeout(refreshMetrics, METRICS_EVERY_MS);
}

// ---- wiring ----------------------------------------------------------------------------------

function start() {
  faults.setup(renderUrl);
  $("connect-form").addEventListener("submit", connect);
  $("disconnect").addEventListener("click", disconnect);
  $("send-form").addEventListener("submit", send);
  $("route").addEventListener("change", renderParams);
  $("token").addEventListener("input", renderUrl);
  $("clear-log").addEventListener("click", () => $("log").replaceChildren());
  $("message").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("send-form").requestSubmit();
    }
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refreshMetrics();
  });
  loadRoutes();
  refreshMetrics();
}

document.addEventListener("DOMContentLoaded", start);
