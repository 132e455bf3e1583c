// Flywheel reviewer workbench: claim → show → answer, with the next item prefetched so
// that answering shows it at once; each answer leases the one after it in the same
// request ("submit and next"). Item content is hostile by nature: it is only ever set as
// text (textContent), links are not followed, and images load only from the project's
// allowed origins (the page's Content-Security-Policy enforces the same).
"use strict";

(function () {
  const root = document.getElementById("wb");
  if (!root) return;
  const project = root.dataset.project;
  const queue = root.dataset.queue || null;
  const origins = JSON.parse(root.dataset.origins || "[]");
  const leaseMs = Number(root.dataset.lease || 300) * 1000;
  const $ = (id) => document.getElementById(id);
  const labels = Array.from(document.querySelectorAll("button.label")).map((b) => b.dataset.label);

  let current = null;      // the task on screen
  let shownAt = 0;         // when it was shown (performance.now())
  let next = null;         // a prefetched task
  let fetching = null;     // the claim in flight, if any
  let today = 0;
  let stopped = false;
  // Measurements for people (and the browser test): ms from the answer key to the next
  // item painted.
  window.fwSwaps = [];
  // And ms for the server to acknowledge each answer (durably stored).
  window.fwAcks = [];

  function notice(text) {
    const n = $("notice");
    n.textContent = text;
    n.hidden = !text;
  }

  function status(text) { $("status").textContent = text; }

  // keepalive: an answer sent as the tab closes still reaches the server.
  async function call(method, path, body) {
    const r = await fetch(path, {
      method,
      credentials: "same-origin",
      keepalive: path.endsWith("/reviews"),
      headers: { "content-type": "application/json", "x-csrf-token": csrfToken() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    return { status: r.status, data };
  }

  function signedOut() { location.href = "/login"; }

  // Claims one task, waiting up to 20 s for work; null when there is none.
  async function claim() {
    const body = { wait_ms: 20000 };
    if (queue) body.queue = queue;
    const r = await call("POST", "/v1/projects/" + encodeURIComponent(project) + "/claim", body);
    if (r.status === 401) { signedOut(); return null; }
    if (r.status === 204) { showBreak(0); return null; }
    if (r.status === 429) {
      // A break is due (the fatigue monitor's, or the session's cap): the break screen,
      // and the next claim only once it is over (checked at least every minute).
      const e = r.data && r.data.error;
      const secs = (e && e.retry_after_s) || 60;
      showBreak(secs, e ? e.message : "");
      await new Promise((done) => setTimeout(done, Math.min(secs, 60) * 1000));
      return null;
    }
    if (r.status !== 200) {
      const e = r.data && r.data.error;
      throw new Error(e ? e.message : "claim failed (" + r.status + ")");
    }
    showBreak(0);
    r.data.claimedAt = Date.now();
    return r.data;
  }

  // The break screen: shown for `secs` seconds with the server's reason, hidden with 0.
  function showBreak(secs, why) {
    const b = $("break");
    if (!b) return;
    b.hidden = secs <= 0;
    $("wb").classList.toggle("on-break", secs > 0);
    if (secs <= 0) return;
    const until = new Date(Date.now() + secs * 1000);
    $("break-text").textContent = (why ? why + ". " : "") + "Claims resume at " + until.toLocaleTimeString() + ".";
    $("item").hidden = true;
    $("empty").hidden = true;
    status("on a break");
  }

  // Keeps one task prefetched while the reviewer works on the current one.
  function prefetch() {
    if (next || fetching || stopped) return fetching;
    fetching = claim()
      .then((t) => { next = t; return t; })
      .catch((e) => { notice(e.message); stopped = /held|granted|forbidden/i.test(e.message); return null; })
      .finally(() => { fetching = null; });
    return fetching;
  }

  function imageAllowed(value) {
    try {
      const u = new URL(value);
      return (u.protocol === "https:" || u.protocol === "http:") && origins.includes(u.origin);
    } catch (_) { return false; }
  }

  function looksLikeImage(key, value) {
    return typeof value === "string" && (/image|img|picture|photo/i.test(key) || /\.(png|jpe?g|gif|webp)(\?|$)/i.test(value));
  }

  // Fills a <dl> with an object's fields, as text. Image fields from allowed origins
  // show as images; anything else (including URLs) is text and never a link.
  function fill(dl, obj, skip) {
    dl.replaceChildren();
    for (const [k, v] of Object.entries(obj || {})) {
      if (k === skip) continue;
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      if (looksLikeImage(k, v) && imageAllowed(v)) {
        const img = document.createElement("img");
        img.alt = k;
        img.referrerPolicy = "no-referrer";
        img.src = v;
        dd.appendChild(img);
      } else {
        dd.textContent = typeof v === "string" ? v : JSON.stringify(v);
        if (looksLikeImage(k, v)) dd.title = "image not shown: its origin is not allowed for this project";
      }
      dl.append(dt, dd);
    }
  }

  function render(t) {
    current = t;
    if (!t) {
      $("item").hidden = true;
      $("empty").hidden = false;
      $("empty").textContent = stopped ? "Stopped." : "Nothing to do right now — waiting for work…";
      return;
    }
    $("empty").hidden = true;
    $("item").hidden = false;
    const payload = t.item.payload || {};
    $("text").textContent = typeof payload.text === "string" ? payload.text : JSON.stringify(payload, null, 2);
    $("stage").textContent = t.stage + (t.queue ? " · " + t.queue : "") + " · tier " + t.tier;
    $("ext").textContent = t.item.external_id;
    fill($("attributes"), t.item.attributes);
    fill($("payload"), payload, "text");
    $("attributes-title").hidden = !$("attributes").children.length;
    $("payload-title").hidden = !$("payload").children.length;
    const s = $("suggestion");
    if (t.suggestion) {
      s.hidden = false;
      s.textContent = "Model suggests " + t.suggestion.label + " (" + (t.suggestion.confidence * 100).toFixed(0) + "%)";
    } else {
      s.hidden = true;
      s.textContent = "";
    }
    showContext(t.context);
    shownAt = performance.now();
    tick();
  }

  // An adjudication's context: why it is here and the earlier answers, as text only.
  function showContext(c) {
    const box = $("context");
    const list = $("context-answers");
    list.replaceChildren();
    box.hidden = !c;
    if (!c) return;
    $("context-reason").textContent = c.reason || "the earlier answers disagreed";
    for (const a of c.answers) {
      const li = document.createElement("li");
      const what = a.answer === "label" ? a.label : a.answer;
      const parts = [a.reviewer + ": " + what];
      if (a.reason) parts.push("reason: " + a.reason);
      if (a.failure_category) parts.push("category: " + a.failure_category);
      if (a.note) parts.push("note: " + a.note);
      li.textContent = parts.join(" · ");
      list.appendChild(li);
    }
  }

  // Shows the next task: the prefetched one at once, else waits for a claim.
  async function advance(started) {
    if (next) {
      const t = next;
      next = null;
      render(t);
      requestAnimationFrame(() => {
        if (started !== undefined) window.fwSwaps.push(performance.now() - started);
      });
      status("ready");
      prefetch();
      return;
    }
    render(null);
    status("waiting for work");
    while (!next && !stopped) {
      await prefetch();
      if (!next && !stopped) await new Promise((r) => setTimeout(r, 500));
    }
    if (next) advance(started);
  }

  // The same review_id makes a retry safe: the server stores an answer once.
  async function send(t, body) {
    for (let attempt = 0; ; attempt++) {
      try {
        const sent = performance.now();
        const r = await call("POST", "/v1/tasks/" + t.task_id + "/reviews", body);
        window.fwAcks.push(performance.now() - sent);
        // A refused "next" (a grant withdrawn meanwhile) wrote nothing: send the answer
        // alone, and let the ordinary claim say what is wrong.
        const e = r.data && r.data.error;
        if (body.next && r.status >= 400 && r.status < 500 && e && /^next\./.test(e.field || "")) {
          delete body.next;
          continue;
        }
        if (r.status < 500 || attempt >= 4) return r;
      } catch (e) {
        if (attempt >= 4) throw e;
      }
      await new Promise((ok) => setTimeout(ok, 250 * 2 ** attempt));
    }
  }

  async function answer(body) {
    const t = current;
    // Nothing on screen, or shown so recently that the key was meant for the item before
    // (a double click, a key held down): nobody has read this one yet.
    if (!t || performance.now() - shownAt < 120) return;
    const started = performance.now();
    const note = $("note").value.trim();
    if (note) body.note = note;
    const cat = $("category");
    if (cat && cat.value) body.failure_category = cat.value;
    body.lease_id = t.lease_id;
    body.review_id = "wb-" + t.task_id + "-" + t.lease_id;
    $("note").value = "";
    $("note-box").hidden = true;
    if (cat) cat.value = "";
    // Submit and next: the answer also leases the task after the one about to show, in
    // the same request and commit — unless a claim is in flight already.
    const withNext = !fetching && !stopped;
    if (withNext) body.next = queue ? { project: project, queue: queue } : { project: project };
    const sending = send(t, body);
    if (withNext) {
      fetching = sending
        .then((r) => {
          const n = r.status === 200 && r.data ? r.data.next : null;
          if (n) { n.claimedAt = Date.now(); next = n; }
          return next;
        })
        .catch(() => null)
        .finally(() => { fetching = null; if (!next) prefetch(); });
    }
    // The prefetched item shows at once (advance's own prefetch waits for the answer's).
    advance(started);
    try {
      const r = await sending;
      if (r.status === 401) {
        notice("You were signed out; your answer on " + t.item.external_id + " was not saved. Sign in again.");
        setTimeout(signedOut, 3000);
        return;
      }
      if (r.status === 200) {
        today += 1;
        $("today").textContent = String(today);
        notice("");
      } else {
        const e = r.data && r.data.error;
        notice((e && e.code === "lease_lost" ? "Your lease on " + t.item.external_id + " was lost (it went back to the queue); moved on."
          : "Your answer on " + t.item.external_id + " was refused: " + (e ? e.message : r.status)));
      }
    } catch (e) {
      notice("Your answer on " + t.item.external_id + " was not sent: " + e.message);
    }
  }

  // Heartbeats the leases held (current and prefetched) while the page is open.
  async function heartbeat() {
    for (const t of [current, next]) {
      if (!t) continue;
      try {
        const r = await call("POST", "/v1/tasks/" + t.task_id + "/heartbeat", { lease_id: t.lease_id });
        if (r.status === 401) { signedOut(); return; }
        if (r.status === 409) {
          if (t === current) {
            notice("Your lease on " + t.item.external_id + " was lost; moved on.");
            advance();
          } else if (t === next) {
            next = null;
            prefetch();
          }
        }
      } catch (_) { /* the next beat tries again */ }
    }
  }

  function tick() {
    if (current) $("timer").textContent = Math.round((performance.now() - shownAt) / 1000) + " s";
  }

  function openEscalate() {
    if (!current) return;
    $("escalate-form").hidden = false;
    $("escalate-reason").focus();
  }

  $("escalate-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const reason = $("escalate-reason").value.trim();
    if (!reason) { $("escalate-reason").focus(); return; }
    $("escalate-reason").value = "";
    $("escalate-form").hidden = true;
    answer({ escalate: { reason } });
  });

  function skip() { answer({ skip: { reason: "skipped in the workbench" } }); }

  function toggleNote() {
    const box = $("note-box");
    box.hidden = !box.hidden;
    if (!box.hidden) $("note").focus();
  }

  document.querySelectorAll("button.label").forEach((b) =>
    b.addEventListener("click", () => answerLabel(b.dataset.label)));
  $("escalate").addEventListener("click", openEscalate);
  $("skip").addEventListener("click", skip);
  $("note-button").addEventListener("click", toggleNote);

  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat) return;
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName);
    if (ev.key === "Escape") {
      $("escalate-form").hidden = true;
      if (typing) document.activeElement.blur();
      return;
    }
    if (typing) return;
    if (/^[1-9]$/.test(ev.key)) {
      const l = labels[Number(ev.key) - 1];
      if (l) { ev.preventDefault(); answerLabel(l); }
    } else if (ev.key === "f") { ev.preventDefault(); focusFields(); }
    else if (ev.key === "e") { ev.preventDefault(); openEscalate(); }
    else if (ev.key === "s") { ev.preventDefault(); skip(); }
    else if (ev.key === "n") { ev.preventDefault(); toggleNote(); }
  });

  // ---- Answer fields (issue #17): the project's answer_fields as form controls, kept
  // apart from the work loop above. Each is a labelled control in Tab order (`f` focuses
  // the first, Esc leaves them, a digit then answers); an enum or a bool is a select, a
  // number or a text an input. A label answer carries what is filled in; a required field
  // left empty stops the answer with a message and the focus on it.
  const fieldSpecs = JSON.parse(root.dataset.fields || "[]");
  const fieldControls = new Map();

  function buildFields() {
    const box = $("fields");
    if (!box || fieldSpecs.length === 0) return;
    for (const f of fieldSpecs) {
      const label = document.createElement("label");
      label.className = "field";
      const title = f.name + (f.required ? (f.when_labels ? " (required for " + f.when_labels.join(", ") + ")" : " (required)") : "");
      label.append(document.createTextNode(title + " "));
      let control;
      if (f.type === "enum" || f.type === "bool") {
        control = document.createElement("select");
        const values = f.type === "enum" ? f.values : ["true", "false"];
        for (const v of [""].concat(values)) {
          const o = document.createElement("option");
          o.value = v;
          o.textContent = v === "" ? "—" : v;
          control.append(o);
        }
      } else {
        control = document.createElement("input");
        control.autocomplete = "off";
        if (f.type === "number") {
          control.type = "number";
          control.step = "any";
          if (f.min !== undefined) control.min = String(f.min);
          if (f.max !== undefined) control.max = String(f.max);
        } else {
          control.type = "text";
          if (f.max_length) control.maxLength = f.max_length;
        }
      }
      control.id = "field-" + f.name;
      control.name = f.name;
      label.append(control);
      box.append(label);
      fieldControls.set(f.name, control);
    }
    box.hidden = false;
  }

  function focusFields() {
    const first = fieldSpecs.length ? fieldControls.get(fieldSpecs[0].name) : null;
    if (first) first.focus();
  }

  function clearFields() {
    for (const c of fieldControls.values()) c.value = "";
  }

  // The fields of a `label` answer, or the first required one left empty.
  function readFields(label) {
    const fields = {};
    for (const f of fieldSpecs) {
      const c = fieldControls.get(f.name);
      const raw = c ? c.value.trim() : "";
      if (raw === "") {
        const needed = f.required && (!f.when_labels || f.when_labels.includes(label));
        if (needed) return { missing: f, control: c };
        continue;
      }
      fields[f.name] = f.type === "number" ? Number(raw) : f.type === "bool" ? raw === "true" : raw;
    }
    return { fields };
  }

  function answerLabel(label) {
    if (fieldSpecs.length === 0) { answer({ label }); return; }
    if (!current) return;
    const read = readFields(label);
    if (read.missing) {
      notice("Fill in " + read.missing.name + " before answering " + label + " (it is required" +
        (read.missing.when_labels ? " for " + read.missing.when_labels.join(", ") : "") + ").");
      if (read.control) read.control.focus();
      return;
    }
    const shown = current;
    answer({ label, fields: read.fields });
    if (current !== shown) clearFields();
  }

  buildFields();

  call("GET", "/v1/me").then((r) => {
    if (r.status === 200) { today = r.data.answers_today; $("today").textContent = String(today); }
  });
  setInterval(tick, 1000);
  setInterval(heartbeat, Math.max(5000, Math.min(leaseMs / 3, 60000)));
  advance();
})();
