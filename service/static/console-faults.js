// wsrelay console, faults panel: the testing target's parameters (SPEC.md) as form fields that
// become the handshake's query string, and a report of what the connection went through.
// Loaded before console.js, which calls it through `window.wsrelayFaults`.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  // [name, kind, hint]: kinds are checked here for form only; the server checks the bounds.
  const FAULTS = [
    ["delay", "duration", "each message the server sends waits this long"],
    ["jitter", "duration", "± up to this much more per message; order is kept"],
    ["drop", "probability", "share (0-1) of messages silently not sent"],
    ["close_after", "integer", "close after N messages from you"],
    ["close_in", "duration", "close after this long"],
    ["close_code", "integer", "code of that close (default 1000)"],
    ["close_reason", "text", "reason of that close"],
    ["abort_after", "integer", "drop TCP, no close frame, after N messages"],
    ["abort_in", "duration", "drop TCP, no close frame, after this long"],
    ["no_pong", "flag", "never answer pings (a browser cannot ping)"],
    ["hang_in", "duration", "after this long stop reading and writing, TCP open"],
    ["fragment", "integer", "frames of at most N payload bytes"],
    ["throttle", "integer", "at most N bytes per second"],
    ["reject", "integer", "refuse the handshake with this HTTP status"],
    ["reject_rate", "probability", "refuse only this share (0-1) of handshakes"],
    ["handshake_delay", "duration", "wait this long before answering the handshake"],
    ["seed", "integer", "same seed, same drops and delays"],
  ];
  const STREAM = [
    ["rate", "number", "messages per second"],
    ["size", "integer", "bytes per message"],
    ["count", "integer", "messages, then close 1000"],
    ["duration", "duration", "push for this long"],
    ["binary", "flag", "binary messages instead of JSON text"],
  ];
  const CHECKS = {
    duration: [/^(\d+(\.\d*)?|\.\d+)(ms|s|m)?$/, "a duration such as 250ms, 2s or 1.5 (seconds)"],
    probability: [/^(0(\.\d*)?|1(\.0*)?|\.\d+)$/, "a probability from 0 to 1"],
    integer: [/^\d+$/, "a whole number"],
    number: [/^(\d+(\.\d*)?|\.\d+)$/, "a number"],
    text: [/^[\s\S]*$/, "text"],
  };

  function field(name, kind, hint, onChange) {
    const box = document.createElement("div");
    box.className = kind === "flag" ? "field flag" : "field";
    const input = document.createElement("input");
    input.id = `fault-${name}`;
    input.name = name;
    input.dataset.kind = kind;
    input.autocomplete = "off";
    input.spellcheck = false;
    input.addEventListener("input", onChange);
    const label = document.createElement("label");
    label.htmlFor = input.id;
    label.textContent = name;
    const help = document.createElement("span");
    help.className = "muted";
    help.textContent = ` ${hint}`;
    label.append(help);
    if (kind === "flag") {
      input.type = "checkbox";
      box.append(input, label);
    } else {
      input.inputMode = kind === "text" || kind === "duration" ? "text" : "decimal";
      box.append(label, input);
    }
    return box;
  }

  // Builds the fields once; a route change only shows, hides and enables them.
  function setup(onChange) {
    const faults = $("fault-fields");
    for (const [name, kind, hint] of FAULTS) faults.append(field(name, kind, hint, onChange));
    const stream = $("stream-fields");
    for (const [name, kind, hint] of STREAM) stream.append(field(name, kind, hint, onChange));
    $("faults-reset").addEventListener("click", () => {
      for (const input of document.querySelectorAll("#faults-box input")) {
        input.value = "";
        input.checked = false;
        input.removeAttribute("aria-invalid");
      }
      onChange();
    });
  }

  // A route without query_overrides (/routes leaves the key out) ignores the parameters: say
  // so and disable them.
  function showFor(route) {
    const ignored = !route?.query_overrides;
    $("faults-box").dataset.ignored = ignored ? "true" : "";
    $("faults-box").disabled = ignored;
    $("stream-box").hidden = route?.mode !== "stream";
    $("faults-note").textContent = ignored
      ? `${route.url_path} has no query_overrides: it ignores these. Pick /faults or /stream.`
      : "Sent in the handshake's query string; the server checks the bounds (README).";
  }

  // [[name, value], ...] of the filled-in fields, or {error} naming the first bad one.
  function query() {
    const params = [];
    if ($("faults-box").dataset.ignored) return { params };
    const streamOn = !$("stream-box").hidden;
    for (const input of document.querySelectorAll("#faults-box input")) {
      if (!streamOn && input.closest("#stream-box")) continue;
      input.removeAttribute("aria-invalid");
      if (input.type === "checkbox") {
        if (input.checked) params.push([input.name, "true"]);
        continue;
      }
      const value = input.value.trim();
      if (!value) continue;
      const [pattern, expected] = CHECKS[input.dataset.kind];
      if (!pattern.test(value)) {
        input.setAttribute("aria-invalid", "true");
        return { params, error: `${input.name}: "${value}" is not ${expected}` };
      }
      params.push([input.name, value]);
    }
    return { params };
  }

  // ---- what happened to one connection --------------------------------------------------

  // A browser reports 1006 exactly when no close frame came (1006 is never sent on the wire);
  // wasClean also needs the TCP connection to end cleanly after the close frames.
  function closeFrame(event) {
    if (event.code === 1006) return "none: the connection ended without one (1006)";
    return event.code === 1005 ? "yes, without a status code (1005)" : `yes, code ${event.code}`;
  }

  function cleanClose(event) {
    return event.wasClean
      ? "yes (wasClean: close frames exchanged, TCP closed)"
      : "no (wasClean false: no close handshake, or TCP did not end cleanly after it)";
  }
  let run = null;

  function show(id, text) {
    $(id).textContent = text;
  }

  function ms(value) {
    return value < 10 ? `${value.toFixed(2)} ms` : `${value.toFixed(1)} ms`;
  }

  function spread(values) {
    if (!values.length) return "–";
    const sorted = [...values].sort((a, b) => a - b);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const p50 = sorted[Math.floor((sorted.length - 1) / 2)];
    return `${values.length}: min ${ms(sorted[0])}, median ${ms(p50)}, mean ${ms(mean)}, ` +
      `max ${ms(sorted[sorted.length - 1])}`;
  }

  function started() {
    run = { at: performance.now(), openedAt: null, received: 0, sent: 0, rtts: [],
      stream: { count: 0, highest: -1, missing: new Set(), late: 0, delays: [] } };
    for (const id of ["result-open", "result-close", "result-frame", "result-clean", "result-lasted",
      "result-messages", "result-rtt", "result-stream"]) show(id, "–");
    show("result-open", "connecting…");
  }

  function opened() {
    run.openedAt = performance.now();
    show("result-open", `after ${ms(run.openedAt - run.at)}`);
  }

  function sent() {
    run.sent += 1;
    showMessages();
  }

  function showMessages() {
    show("result-messages", `${run.received} received, ${run.sent} sent`);
  }

  // A stream message (JSON with seq and ts): loss, order, and the one-way delay from ts.
  function streamed(data) {
    if (typeof data !== "string" || !data.startsWith("{")) return;
    let seq, ts;
    try {
      ({ seq, ts } = JSON.parse(data));
    } catch {
      return;
    }
    if (!Number.isInteger(seq) || typeof ts !== "number") return;
    const s = run.stream;
    s.count += 1;
    if (seq > s.highest) {
      for (let missing = s.highest + 1; missing < seq; missing++) s.missing.add(missing);
      s.highest = seq;
    } else if (s.missing.delete(seq)) {
      s.late += 1;
    }
    s.delays.push(performance.timeOrigin + performance.now() - ts / 1e6);
    show("result-stream", `seq 0-${s.highest}: ${s.missing.size} missing, ${s.late} out of ` +
      `order; one-way delay from ts (${spread(s.delays)})`);
  }

  function received(data) {
    run.received += 1;
    showMessages();
    streamed(data);
  }

  function roundTrip(seconds) {
    run.rtts.push(seconds * 1000);
    show("result-rtt", spread(run.rtts));
  }

  function closed(event, describe) {
    const reason = event.reason ? `, reason "${event.reason}"` : "";
    show("result-close", `${describe(event.code)}${reason}`);
    show("result-frame", closeFrame(event));
    show("result-clean", cleanClose(event));
    if (run.openedAt === null) {
      show("result-open", "never: refused (reject, a bad value: 400), unreachable, or given up " +
        `after ${ms(performance.now() - run.at)}; a browser is not told the HTTP status`);
    } else {
      show("result-lasted", `${((performance.now() - run.openedAt) / 1000).toFixed(2)} s`);
    }
  }

  // While connected the fields are locked (they describe the connection that is open).
  function lock(busy) {
    $("faults-box").disabled = busy || Boolean($("faults-box").dataset.ignored);
    $("faults-reset").disabled = busy;
  }

  window.wsrelayFaults = { setup, showFor, lock, query, started, opened, sent, received, roundTrip,
    closed };
})();
