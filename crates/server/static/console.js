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
    if (!el.name || el.name === "csrf" || el.type === "submit" || el.type === "button") continue;
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
  show(form, res.data === null ? "done" : JSON.stringify(res.data, null, 2), false);
  if (opts.reload && form.dataset.reload !== undefined) setTimeout(() => location.reload(), 300);
}

document.addEventListener("submit", (ev) => {
  const form = ev.target;
  if (!form.dataset || !form.dataset.api) return;
  ev.preventDefault();
  if (form.dataset.confirm && !confirm(form.dataset.confirm)) return;
  submit(form, form.dataset.api, { body: form.dataset.body, reload: true });
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
