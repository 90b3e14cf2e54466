// Orchestrator's trace viewer: runs, a run's span tree on a timeline, per-pipeline summaries.
// Self-contained (no library, nothing fetched but this app's own /api/). Recorded text is
// untrusted (prompts, documents): it only ever becomes DOM text nodes and attribute values,
// never markup (no innerHTML anywhere), and the page's CSP forbids inline scripts besides.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const SVG_NS = "http://www.w3.org/2000/svg";
  const KEY_ITEM = "orchestrator-traces-key";
  let apiKey = sessionStorage.getItem(KEY_ITEM) || "";

  function append(node, kids) {
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      node.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return node;
  }

  function el(tag, props, ...kids) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "on") for (const [event, fn] of Object.entries(value)) node.addEventListener(event, fn);
      else if (key === "style") Object.assign(node.style, value);
      else node.setAttribute(key, String(value));
    }
    return append(node, kids);
  }

  function svg(tag, attrs, ...kids) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return append(node, kids);
  }

  const pre = (text) => el("pre", {}, text);
  const section = (title, ...body) => el("section", { class: "part" }, el("h4", {}, title), body);
  const pct = (share) => `${Math.max(0, Math.min(100, share * 100)).toFixed(3)}%`;
  const when = (seconds) => (seconds == null ? "" : new Date(seconds * 1000).toLocaleString());
  const kindClass = (kind) => String(kind).replace(/[^a-z_]/g, "");

  function duration(seconds) {
    if (seconds == null) return "";
    return seconds < 1 ? `${(seconds * 1000).toFixed(1)} ms` : `${seconds.toFixed(2)} s`;
  }

  function tokens(item) {
    if (item.input_tokens == null && item.output_tokens == null) return "";
    return `${item.input_tokens || 0}→${item.output_tokens || 0}`;
  }

  function facts(pairs) {
    return el("dl", { class: "facts" }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
      .map(([k, v]) => [el("dt", {}, k), el("dd", {}, typeof v === "object" ? JSON.stringify(v) : v)]));
  }

  function showError(message) {
    $("error").hidden = false;
    $("error").textContent = message;
  }

  async function api(path, params) {
    const query = params && Object.keys(params).length ? `?${new URLSearchParams(params)}` : "";
    const headers = apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
    const response = await fetch(`api/${path}${query}`, { headers });
    const body = await response.json().catch(() => ({}));
    if (response.status === 401) {
      $("key-form").hidden = false;
      throw new Error("This viewer needs its API key: enter the key it was started with.");
    }
    if (!response.ok) throw new Error((body.error || {}).message || `HTTP ${response.status}`);
    return body;
  }

  function filters(forSummary) {
    const found = {};
    for (const [name, value] of new FormData($("filters")).entries()) {
      if (value === "" || (forSummary && (name === "q" || name === "limit"))) continue;
      found[name] = value;
    }
    return found;
  }

  function statusBadge(status) {
    return el("span", { class: `status status-${kindClass(status)}` }, status);
  }

  // ---- runs ------------------------------------------------------------------------------
  async function showRuns() {
    const given = filters(false);
    const data = await api("runs", given);
    $("store").textContent = data.store;
    const head = ["run", "started", "command", "pipeline", "model", "session", "status", "tokens",
      "seconds", ...(given.q ? ["match"] : [])];
    const rows = data.runs.map((run) => el("tr", {
      class: "run-row", "data-run-id": run.run_id,
      on: { click: () => { location.hash = `#/run/${encodeURIComponent(run.run_id)}`; } },
    },
    el("td", {}, el("a", { href: `#/run/${encodeURIComponent(run.run_id)}` }, run.run_id.slice(0, 12))),
    el("td", {}, when(run.started)), el("td", {}, run.command || ""),
    el("td", {}, run.pipeline || run.name), el("td", {}, run.model || ""), el("td", {}, run.session || ""),
    el("td", {}, statusBadge(run.status)), el("td", { class: "num" }, tokens(run)),
    el("td", { class: "num" }, run.duration_s == null ? "running" : run.duration_s.toFixed(2)),
    given.q ? el("td", { class: "match" }, (run.match || {}).snippet || "") : null));
    $("main").replaceChildren(
      el("h2", {}, `Runs (${data.runs.length})`),
      rows.length ? el("table", { id: "runs" }, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
        el("tbody", {}, rows)) : el("p", { class: "dim" }, "No recorded run matches."));
  }

  // ---- one run ---------------------------------------------------------------------------
  function messages(list) {
    return el("div", { class: "messages" }, list.map((m) => el("div", { class: "message" },
      el("span", { class: "role" }, m.role || "text"), pre(m.text))));
  }

  function documents(docs) {
    return el("ol", { class: "docs" }, docs.map((d) => el("li", {},
      el("div", { class: "doc-head" }, `id ${d.id ?? "?"}`, d.score == null ? "" : ` · score ${Number(d.score).toFixed(3)}`),
      d.text == null ? el("p", { class: "dim" }, "text not recorded") : pre(d.text))));
  }

  function spanDetail(span) {
    const s = span.sections || {};
    const t = s.timings || {};
    const k = s.tokens || {};
    const pairs = [["status", span.status], ["starts at", `+${duration(span.offset_s)}`],
      ["duration", duration(span.duration_s)], ["time to first token", duration(t.time_to_first_token_s)],
      ["queue wait", duration(t.queue_wait_s)], ["model", span.model]];
    if (s.tokens) pairs.push(["tokens in", k.input ?? "?"], ["tokens out", k.output ?? "?"],
      ["cache read", k.cache_read], ["slot", k.slot]);
    pairs.push(...Object.entries(s.request || {}));
    const parts = [el("h3", {}, span.name, " ", el("span", { class: "kind" }, span.kind)), facts(pairs)];
    if (s.hidden) parts.push(el("p", { class: "dim" }, `recorded with hidden ${s.hidden}`));
    if (s.prompt) parts.push(section("Prompt", messages(s.prompt)));
    if (s.reply) parts.push(section("Reply", messages(s.reply)));
    if (s.query) parts.push(section("Query", pre(s.query)));
    if (s.documents) parts.push(section(`Retrieved passages (${s.documents.length})`, documents(s.documents)));
    if (s.tool) parts.push(section(`Tool call: ${s.tool.name}`, el("h5", {}, "arguments"),
      pre(s.tool.arguments ?? ""), el("h5", {}, "result"), pre(s.tool.result ?? "")));
    if (s.input) parts.push(section("Input", pre(s.input)));
    if (s.output) parts.push(section("Output", pre(s.output)));
    if (span.error) parts.push(section("Error", pre(span.error)));
    if (span.fix) parts.push(section("Fix", pre(span.fix)));
    parts.push(el("details", {}, el("summary", {}, "All attributes"), pre(JSON.stringify(span.attributes, null, 2))));
    $("span-detail").replaceChildren(...parts);
    for (const row of document.querySelectorAll(".span-row")) {
      row.classList.toggle("selected", row.dataset.spanId === span.span_id);
    }
  }

  function timeline(data) {
    const total = data.span_s > 0 ? data.span_s : 1e-6;
    const ticks = [0, 1, 2, 3, 4].map((i) => el("span", { class: "tick", style: { left: pct(i / 4) } },
      duration((total * i) / 4)));
    const rows = data.spans.map((span) => el("div", {
      class: `span-row status-${kindClass(span.status)}`, "data-span-id": span.span_id,
      "data-kind": span.kind, tabindex: 0, role: "button",
      on: { click: () => spanDetail(span), keydown: (e) => { if (e.key === "Enter") spanDetail(span); } },
    },
    el("div", { class: "label", style: { paddingLeft: `${span.depth * 14 + 4}px` } },
      el("span", { class: "name" }, span.name), " ", el("span", { class: "kind" }, span.kind)),
    el("div", { class: "track" }, el("div", {
      class: `bar kind-${kindClass(span.kind)}`, title: `${span.name}: ${duration(span.duration_s)}`,
      style: { left: pct(span.offset_s / total), width: pct(Math.max(span.duration_s / total, 0.003)) },
    })),
    el("div", { class: "meta" }, duration(span.duration_s), tokens(span) ? ` · ${tokens(span)} tok` : "")));
    return el("div", { id: "timeline" },
      el("div", { class: "time-axis" }, el("div", { class: "label" }, "span"), el("div", { class: "track" }, ticks),
        el("div", { class: "meta" }, "duration · tokens")), rows);
  }

  async function showRun(runId) {
    const data = await api(`runs/${encodeURIComponent(runId)}`);
    const run = data.run;
    const head = [el("h2", {}, "Run ", el("code", {}, run.run_id), " ", statusBadge(run.status)),
      facts([["command", run.command], ["pipeline", run.pipeline || run.name], ["model", run.model],
        ["session", run.session], ["started", when(run.started)],
        ["duration", run.duration_s == null ? "running" : duration(run.duration_s)], ["tokens", tokens(run)]])];
    if (run.input) head.push(section("Input", pre(run.input)));
    if (run.output) head.push(section("Output", pre(run.output)));
    if (run.error) head.push(section("Error", pre(run.error)));
    if (run.fix) head.push(section("Fix", pre(run.fix)));
    $("main").replaceChildren(...head, el("h3", {}, `Spans (${data.spans.length})`),
      data.spans.length ? el("div", { class: "run-body" }, timeline(data), el("aside", { id: "span-detail" }))
        : el("p", { class: "dim" }, "No finished span yet."));
    const first = data.spans.find((s) => s.kind === "llm") || data.spans[0];
    if (first) spanDetail(first);
  }

  // ---- summary ---------------------------------------------------------------------------
  function latencyPlot(p) {
    const W = 560, H = 180, L = 56, B = 22, T = 8, R = 8;
    const points = p.points.filter((q) => q.duration_s != null);
    const lat = p.latency_s;
    const top = Math.max(1e-6, ...points.map((q) => q.duration_s), lat.p99 || 0) * 1.1;
    const x0 = Math.min(...points.map((q) => q.started)), x1 = Math.max(...points.map((q) => q.started));
    const span = x1 > x0 ? x1 - x0 : 1;
    const x = (s) => L + ((s - x0) / span) * (W - L - R) + (x1 > x0 ? 0 : (W - L - R) / 2);
    const y = (v) => T + (1 - v / top) * (H - T - B);
    const plot = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "plot latency", role: "img",
      "aria-label": `latency per run of ${p.pipeline}` });
    plot.append(svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }),
      svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }),
      svg("text", { x: L - 4, y: T + 8, "text-anchor": "end" }, duration(top)),
      svg("text", { x: L - 4, y: H - B, "text-anchor": "end" }, "0"),
      svg("text", { x: L, y: H - 6 }, when(x0)), svg("text", { x: W - R, y: H - 6, "text-anchor": "end" }, when(x1)));
    let labelAt = -Infinity, labelX = W - R - 2;
    for (const name of ["p50", "p95", "p99"]) {
      if (lat[name] == null) continue;
      labelX = Math.abs(y(lat[name]) - labelAt) < 11 ? labelX - 80 : W - R - 2;  // no overlap
      labelAt = y(lat[name]);
      plot.append(svg("line", { x1: L, x2: W - R, y1: labelAt, y2: labelAt, class: `pct ${name}` }),
        svg("text", { x: labelX, y: labelAt - 2, "text-anchor": "end", class: "pct-label" },
          `${name} ${duration(lat[name])}`));
    }
    for (const q of points) {
      plot.append(svg("circle", { cx: x(q.started), cy: y(q.duration_s), r: 3, class: `dot status-${kindClass(q.status)}` },
        svg("title", {}, `${q.run_id.slice(0, 12)} · ${duration(q.duration_s)} · ${q.status}`)));
    }
    return plot;
  }

  function tokenPlot(p) {
    const W = 560, H = 120, L = 56, B = 8, T = 8, R = 8;
    const points = p.points;
    const top = Math.max(1, ...points.map((q) => (q.input_tokens || 0) + (q.output_tokens || 0)));
    const step = (W - L - R) / Math.max(points.length, 1);
    const h = (v) => (v / top) * (H - T - B);
    const plot = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "plot tokens", role: "img",
      "aria-label": `tokens per run of ${p.pipeline}` },
    svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }),
    svg("text", { x: L - 4, y: T + 8, "text-anchor": "end" }, `${top} tok`));
    points.forEach((q, i) => {
      const tin = q.input_tokens || 0, tout = q.output_tokens || 0;
      const width = Math.max(step - 1, 1);
      plot.append(svg("g", {}, svg("title", {}, `${q.run_id.slice(0, 12)} · ${tin} in, ${tout} out`),
        svg("rect", { x: L + i * step, y: H - B - h(tin), width, height: h(tin), class: "tin" }),
        svg("rect", { x: L + i * step, y: H - B - h(tin) - h(tout), width, height: h(tout), class: "tout" })));
    });
    return plot;
  }

  async function showSummary() {
    const data = await api("summary", filters(true));
    $("store").textContent = data.store;
    const head = ["pipeline", "runs", "errors", "error rate", "p50", "p95", "p99", "tokens in",
      "tokens out", "tokens/run"];
    const rate = (r) => (r == null ? "" : `${(r * 100).toFixed(1)}%`);
    const rows = data.pipelines.map((p) => el("tr", { "data-pipeline": p.pipeline },
      [p.pipeline, p.runs, p.errors, rate(p.error_rate), duration(p.latency_s.p50),
        duration(p.latency_s.p95), duration(p.latency_s.p99), p.tokens.input, p.tokens.output,
        p.tokens.per_run ?? ""].map((v, i) => el("td", { class: i ? "num" : "" }, v))));
    const cards = data.pipelines.map((p) => el("section", { class: "card" },
      el("h3", {}, p.pipeline), el("p", { class: "dim" }, `latency per run (seconds), the newest ${p.points.length}; dashed: p50, p95, p99`),
      latencyPlot(p), el("p", { class: "dim" }, "tokens per run: input (dark), output (light)"), tokenPlot(p)));
    $("main").replaceChildren(el("h2", {}, `Pipelines (${data.pipelines.length})`),
      rows.length ? el("table", { id: "summary" }, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
        el("tbody", {}, rows)) : el("p", { class: "dim" }, "No recorded run matches."), ...cards);
  }

  // ---- routing ---------------------------------------------------------------------------
  async function route() {
    $("error").hidden = true;
    const hash = location.hash || "#/";
    try {
      if (hash.startsWith("#/run/")) await showRun(decodeURIComponent(hash.slice(6)));
      else if (hash === "#/summary") await showSummary();
      else await showRuns();
    } catch (error) {
      showError(error.message);
    }
  }

  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    if (location.hash.startsWith("#/run/")) location.hash = "#/";
    else route();
  });
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    apiKey = $("key").value.trim();
    sessionStorage.setItem(KEY_ITEM, apiKey);
    $("key-form").hidden = true;
    route();
  });
  window.addEventListener("hashchange", route);
  route();
})();
