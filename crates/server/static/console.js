// Flywheel console: admin forms call the JSON API with the session's CSRF token; the
// dashboard refreshes itself. Everything from the server is inserted as text, except
// the dashboard fragment, which the server rendered (and escaped) itself.
"use strict";

function csrfToken() {
  const m = document.querySelector('meta[name="csrf-token"]');
  return m ? m.content : "";
}

async function api(method, path, body) {
  const init = { method, headers: { "x-csrf-token": csrfToken() }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  let data = null;
  const text = await r.text();
  if (text) { try { data = JSON.parse(text); } catch (_) { data = text; } }
  return { status: r.status, ok: r.ok, data };
}

// The JSON body of a form: `data-kind` says how a field is read (int, int-list "1,2",
// list for checkbox groups, json, bool "true"/"false"); empty `data-optional` fields are left out.
function formBody(form) {
  const body = {};
  for (const el of form.elements) {
    if (!el.name || el.name === "csrf" || el.name.startsWith("rule-") || el.type === "submit" || el.type === "button") continue;
    const kind = el.dataset.kind || "";
    if (kind === "list") {
      body[el.name] = body[el.name] || [];
      if (el.checked) body[el.name].push(el.value);
      continue;
    }
    if (el.type === "checkbox") { body[el.name] = el.checked; continue; }
    if (el.value === "" && (el.dataset.optional !== undefined || el.type === "password")) continue;
    if (kind === "bool") {
      body[el.name] = el.value === "true";
    } else if (kind === "int") {
      body[el.name] = Number(el.value);
    } else if (kind === "int-list") {
      body[el.name] = el.value.split(",").map((s) => s.trim()).filter((s) => s).map(Number);
    } else if (kind === "json") {
      try { body[el.name] = JSON.parse(el.value); } catch (e) { throw new Error(el.name + ": not valid JSON: " + e.message); }
    } else {
      body[el.name] = el.value;
    }
  }
  return body;
}

function show(form, text, bad) {
  const out = form.querySelector("[data-result]");
  if (!out) { if (bad) alert(text); return; }
  out.textContent = text;
  out.classList.toggle("bad", !!bad);
}

function describeError(res) {
  const e = res.data && res.data.error;
  if (!e) return "failed (" + res.status + ")";
  return (e.field ? e.field + ": " : "") + e.message + " [" + e.code + "]";
}

async function submit(form, spec, opts) {
  const [method, path] = spec.split(" ");
  let body;
  try {
    const fields = formBody(form);
    body = opts.body ? fields[opts.body] : opts.wrap ? { [opts.wrap]: fields[opts.wrap] } : fields;
  } catch (e) { show(form, e.message, true); return; }
  if (method === "POST" && body && Object.keys(body).length === 0 && !opts.body) body = undefined;
  const res = await api(method, path, body);
  if (!res.ok) { show(form, describeError(res), true); return; }
  if (opts.secret && res.data && res.data.api_key) {
    showSecret(res.data);
    show(form, "created", false);
    form.reset();
    await refreshTable(opts.secret);
    return;
  }
  show(form, res.data === null ? "done" : JSON.stringify(res.data, null, 2), false);
  if (opts.reload && form.dataset.reload !== undefined) setTimeout(() => location.reload(), 300);
}

// A new API key: shown once, in a box with the warning and a copy button — the server
// keeps only its hash, so this is the only time anyone sees it.
function showSecret(data) {
  const box = document.getElementById("secret");
  if (!box) return;
  box.replaceChildren();
  const warn = document.createElement("p");
  warn.className = "warning";
  warn.textContent = "Shown once — copy it now. Flywheel keeps only its hash; this key cannot be shown again.";
  const who = document.createElement("p");
  const named = (n) => (n ? " “" + n + "”" : "");
  who.textContent = (data.scope ? "New " + data.scope + " key" + named(data.name) + " for " + (data.projects || []).join(", ")
    : data.tiers ? "The key of new reviewer " + data.name
    : "New reviewer key" + named(data.name)) + ":";
  const key = document.createElement("code");
  key.id = "secret-key";
  key.textContent = data.api_key;
  const copy = document.createElement("button");
  copy.type = "button";
  copy.textContent = "Copy";
  copy.addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(data.api_key); copy.textContent = "Copied"; }
    catch (_) { const r = document.createRange(); r.selectNodeContents(key); const s = getSelection(); s.removeAllRanges(); s.addRange(r); copy.textContent = "Selected: press Ctrl+C"; }
  });
  const done = document.createElement("button");
  done.type = "button";
  done.textContent = "I have copied it";
  done.addEventListener("click", () => { box.hidden = true; box.replaceChildren(); });
  box.append(warn, who, key, " ", copy, " ", done);
  box.hidden = false;
  box.scrollIntoView({ block: "nearest" });
}

// Re-reads the page and swaps in its fresh copy of `selector` (a table), so a create
// shows up without a reload that would lose the shown-once key.
async function refreshTable(selector) {
  const r = await fetch(location.pathname, { credentials: "same-origin" });
  if (!r.ok) return;
  const doc = new DOMParser().parseFromString(await r.text(), "text/html");
  const fresh = doc.querySelector(selector);
  const old = document.querySelector(selector);
  if (fresh && old) old.replaceWith(document.adoptNode(fresh));
}

document.addEventListener("submit", (ev) => {
  const form = ev.target;
  if (!form.dataset || !form.dataset.api) return;
  ev.preventDefault();
  if (form.dataset.confirm && !confirm(form.dataset.confirm)) return;
  submit(form, form.dataset.api, { body: form.dataset.body, reload: true, secret: form.dataset.secret });
});

// The policy page's history: a diff between two versions, drawn as text lines.
(function policyDiff() {
  const form = document.getElementById("diff-form");
  if (!form) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const out = document.getElementById("diff");
    const q = "?from=" + encodeURIComponent(form.elements.from.value) + "&to=" + encodeURIComponent(form.elements.to.value);
    const res = await api("GET", form.dataset.diff + q);
    out.replaceChildren();
    if (!res.ok) { out.textContent = describeError(res); out.classList.add("bad"); return; }
    out.classList.remove("bad");
    let changed = 0;
    for (const l of res.data.lines) {
      const line = document.createElement("span");
      line.className = l.op === "+" ? "add" : l.op === "-" ? "del" : "same";
      line.textContent = l.op + " " + l.text + "\n";
      if (l.op !== " ") changed++;
      out.appendChild(line);
    }
    out.dataset.changed = String(changed);
    if (!changed) out.textContent = "v" + res.data.from + " and v" + res.data.to + " are the same policy.";
  });
})();

document.addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-action]");
  if (!b) return;
  ev.preventDefault();
  submit(b.form, b.dataset.action, { body: b.dataset.body, wrap: b.dataset.wrap });
});

// The dashboard's live part: re-rendered by the server every few seconds.
(function refresh() {
  const live = document.getElementById("live");
  if (!live || !live.dataset.refresh) return;
  setInterval(async () => {
    if (document.activeElement && live.contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;
    const r = await fetch(live.dataset.refresh, { credentials: "same-origin", redirect: "manual" });
    if (r.type === "opaqueredirect" || r.status === 401) { location.href = "/login"; return; }
    if (r.ok) live.innerHTML = await r.text();
  }, 2000);
})();

// The policy editor's form: one fieldset per rule, built from the JSON view and writing
// back to it. JSON.parse and JSON.stringify keep an object's keys in the order written,
// so editing a field changes that value in place; a field emptied is removed, one filled
// in for the first time goes at the end of its rule. The condition is shown as its
// string's value (what the admin typed), the JSON view escapes it as JSON must.
(function policyForm() {
  const text = document.getElementById("policy");
  const host = document.getElementById("rules");
  if (!text || !host) return;
  const status = document.getElementById("rules-status");
  const labels = (host.dataset.labels || "").split(" ").filter((l) => l);
  // [key, what it is, how it is read]
  const FIELDS = [
    ["name", "name", "text"],
    ["when", "condition (CEL)", "cel"],
    ["action", "action", "action"],
    ["queue", "route: queue", "text"],
    ["tier", "tier", "int"],
    ["label", "label (auto)", "label"],
    ["priority", "priority", "int"],
    ["overlap", "overlap", "int"],
    ["sla_seconds", "SLA (s)", "int"],
  ];
  let doc = null;

  function write() {
    text.value = JSON.stringify(doc, null, 2);
    status.textContent = "";
  }

  function set(rule, key, kind, raw) {
    if (raw === "") {
      delete rule[key];
    } else if (kind === "int") {
      const n = Number(raw);
      rule[key] = Number.isFinite(n) && raw.trim() !== "" ? n : raw;
    } else {
      rule[key] = raw;
    }
    write();
  }

  function field(rule, i, [key, title, kind]) {
    const label = document.createElement("label");
    label.className = "rule-field rule-" + key;
    label.append(title + " ");
    let input;
    if (kind === "cel") {
      input = document.createElement("textarea");
      input.rows = 2;
      input.spellcheck = false;
    } else if (kind === "action") {
      input = document.createElement("select");
      for (const a of ["review", "auto"]) input.append(new Option(a, a));
    } else {
      input = document.createElement("input");
      if (kind === "int") { input.type = "number"; input.step = "1"; input.size = 6; }
      if (kind === "label") { input.setAttribute("list", "policy-labels"); }
    }
    input.name = "rule-" + key;
    input.dataset.rule = String(i);
    input.dataset.key = key;
    const v = rule[key];
    input.value = v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
    // Not part of the form's JSON body: formBody skips names starting "rule-".
    input.addEventListener("input", () => set(doc.rules[i], key, kind, input.value));
    label.append(input);
    return label;
  }

  function render() {
    host.querySelectorAll("fieldset.rule").forEach((f) => f.remove());
    if (!doc || !Array.isArray(doc.rules)) return;
    doc.rules.forEach((rule, i) => {
      const set = document.createElement("fieldset");
      set.className = "rule";
      set.dataset.rule = String(i);
      const legend = document.createElement("legend");
      legend.textContent = "rule " + (i + 1);
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "remove-rule";
      remove.textContent = "remove";
      remove.addEventListener("click", () => { doc.rules.splice(i, 1); write(); render(); });
      legend.append(" ", remove);
      set.append(legend);
      for (const f of FIELDS) set.append(field(rule, i, f));
      host.append(set);
    });
  }

  function load() {
    try {
      doc = JSON.parse(text.value);
      status.textContent = "";
      status.classList.remove("bad");
      render();
    } catch (e) {
      status.textContent = "The JSON does not parse (" + e.message + "); the form shows it again once it does.";
      status.classList.add("bad");
    }
  }

  const list = document.createElement("datalist");
  list.id = "policy-labels";
  for (const l of labels) list.append(new Option(l, l));
  host.append(list);
  text.addEventListener("input", load);
  document.getElementById("add-rule").addEventListener("click", () => {
    if (!doc) return;
    doc.rules = doc.rules || [];
    doc.rules.push({ name: "rule " + (doc.rules.length + 1), when: "true", action: "review", queue: "default" });
    write();
    render();
  });
  load();
})();

// The back-test: the proposed policy against the one in force over the same items, side
// by side in a table and a bar chart, numbers rounded to what they can tell.
(function backtest() {
  const button = document.getElementById("backtest");
  const out = document.getElementById("backtest-result");
  if (!button || !out) return;
  const pct = (v) => (v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%");
  const interval = (r) => (r.auto_error_interval ? " (95% CI " + pct(r.auto_error_interval[0]) + "–" + pct(r.auto_error_interval[1]) + ")" : "");
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };

  function row(table, name, cur, prop, better) {
    const tr = el("tr");
    tr.append(el("th", name), el("td", cur), el("td", prop));
    const d = el("td", better === undefined ? "" : better ? "better" : "worse", better === undefined ? "" : better ? "good" : "bad");
    tr.append(d);
    table.append(tr);
  }

  function chart(groups) {
    // groups: [name, current, proposed, max]
    const NS = "http://www.w3.org/2000/svg";
    const w = 520, h = 40 + groups.length * 44, left = 170;
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("class", "chart backtest-chart");
    svg.setAttribute("width", w); svg.setAttribute("height", h); svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    const t = (x, y, s, extra) => { const e = document.createElementNS(NS, "text"); e.setAttribute("x", x); e.setAttribute("y", y); e.setAttribute("font-size", "11"); if (extra) for (const k in extra) e.setAttribute(k, extra[k]); e.textContent = s; svg.append(e); };
    t(left, 14, "current", { fill: "#8c959f" }); t(left + 70, 14, "proposed", { fill: "#1f6feb" });
    groups.forEach(([name, cur, prop, max, fmt], g) => {
      const y = 28 + g * 44;
      t(left - 6, y + 16, name, { "text-anchor": "end" });
      [[cur, "#8c959f"], [prop, "#1f6feb"]].forEach(([v, color], k) => {
        const len = max > 0 && v !== null && v !== undefined ? (v / max) * (w - left - 60) : 0;
        const r = document.createElementNS(NS, "rect");
        r.setAttribute("x", left); r.setAttribute("y", y + k * 18); r.setAttribute("width", Math.max(len, 0.5).toFixed(1)); r.setAttribute("height", 14); r.setAttribute("fill", color);
        svg.append(r);
        t(left + len + 4, y + k * 18 + 11, fmt(v));
      });
    });
    return svg;
  }

  button.addEventListener("click", async () => {
    let policy;
    try { policy = JSON.parse(document.getElementById("policy").value); }
    catch (e) { show(button.form, "policy: not valid JSON: " + e.message, true); return; }
    const res = await api("POST", button.dataset.backtest, { policy });
    if (!res.ok) { show(button.form, describeError(res), true); out.hidden = true; return; }
    show(button.form, "", false);
    const p = res.data, c = res.data.current;
    out.replaceChildren();
    out.append(el("h2", "Back-test: v" + p.current_version + " in force vs the proposal"));
    out.append(el("p", "Replayed over the " + p.items + " latest items a human labelled (mostly those a policy sent to review, so the error is of those, not of all traffic).", "muted"));
    const table = el("table"); table.id = "backtest-table";
    const head = el("tr"); head.append(el("th", ""), el("th", "current (v" + p.current_version + ")"), el("th", "proposed"), el("th", ""));
    table.append(head);
    const lower = (a, b) => (a === null || b === null || a === b ? undefined : b < a);
    const higher = (a, b) => (a === null || b === null || a === b ? undefined : b > a);
    row(table, "automated", pct(c.automation_rate) + " (" + c.auto + ")", pct(p.automation_rate) + " (" + p.auto + ")", higher(c.automation_rate, p.automation_rate));
    row(table, "estimated error of auto decisions", pct(c.auto_error_rate) + interval(c), pct(p.auto_error_rate) + interval(p), lower(c.auto_error_rate, p.auto_error_rate));
    const prec = (r) => (r.auto_error_rate === null || r.auto_error_rate === undefined ? null : 1 - r.auto_error_rate);
    row(table, "precision of auto decisions", pct(prec(c)), pct(prec(p)), higher(prec(c), prec(p)));
    row(table, "sent to review", String(c.review), String(p.review), lower(c.review, p.review));
    const queues = [...new Set([...Object.keys(c.load), ...Object.keys(p.load)])].sort();
    const groups = [["automated", c.automation_rate, p.automation_rate, 1, pct], ["auto error", c.auto_error_rate, p.auto_error_rate, Math.max(c.auto_error_rate || 0, p.auto_error_rate || 0, 0.01), pct]];
    const answers = (r, q) => (r.load[q] ? r.load[q].human_answers : 0);
    const peak = Math.max(1, ...queues.map((q) => Math.max(answers(c, q), answers(p, q))));
    for (const q of queues) {
      row(table, "human answers in " + q, String(answers(c, q)), String(answers(p, q)), lower(answers(c, q), answers(p, q)));
      groups.push(["answers in " + q, answers(c, q), answers(p, q), peak, (v) => String(v)]);
    }
    out.append(table, chart(groups));
    out.hidden = false;
  });
})();
