// Flywheel reviewer workbench: claim → show → answer, with the next item prefetched so
// that answering shows it at once; each answer leases the one after it in the same
// request ("submit and next"). Item content is hostile by nature: it is only ever set as
// text (textContent), links are not followed, and images load only from the project's
// allowed origins (the page's Content-Security-Policy enforces the same); highlighted
// words are <mark> elements holding text nodes.
//
// Keys never trap: the one key handler sits on the document and answers whatever has
// focus, but a text box (the escalation's reason, the note); Escape always closes what is
// open and returns to the item. Undo and amend (`u`, Backspace, the history sidebar) call
// POST /v1/reviews/{review_id}/amend: the server decides whether the label is replaced
// (undone) or the item goes back to adjudication (amended).
//
// A multi-label project (data-mode="multi"): the labels are toggles. 1–9 toggle a label,
// 0 clears them ("none of these"), Enter submits the set toggled on (with the answer
// fields); each toggle shows its state (aria-pressed, filled and ticked).
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
  const categories = Array.from(document.querySelectorAll("button.category")).map((b) => b.dataset.category);
  const highlights = JSON.parse(root.dataset.highlight || "[]");
  const multi = root.dataset.mode === "multi";
  const toggled = new Set(); // a multi-label answer in the making: the labels toggled on
  let savedSet = null;       // the current item's toggles while an earlier answer is changed

  let current = null;      // the task on screen
  let shownAt = 0;         // when it was shown (performance.now())
  let next = null;         // a prefetched task
  let fetching = null;     // the claim in flight, if any
  let today = 0;
  let stopped = false;
  let category = "";       // the failure category sent with the next answer
  const history = [];      // this session's answers, newest first
  let amending = null;     // the history entry being changed, if any
  let left = null;         // open tasks in the queue, as last read (and counted down)
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
  function showToday() {
    $("today").textContent = String(today);
    $("today-noun").textContent = today === 1 ? "answer" : "answers";
  }

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
    root.classList.toggle("idle", !t);
    if (!t) {
      $("item").hidden = true;
      $("empty").hidden = false;
      $("empty").textContent = stopped ? "Stopped." : "Nothing to do right now — waiting for work…";
      return;
    }
    $("empty").hidden = true;
    if (!amending) { paint(t); clearSet(); }
    shownAt = performance.now();
    tick();
  }

  // Puts a task on screen (the current one, or an answered one being changed).
  function paint(t) {
    $("item").hidden = false;
    const payload = t.item.payload || {};
    showText($("text"), typeof payload.text === "string" ? payload.text : JSON.stringify(payload, null, 2));
    $("stage").textContent = t.stage + (t.queue ? " · " + t.queue : "") + " · tier " + t.tier;
    $("ext").textContent = t.item.external_id;
    fill($("attributes"), t.item.attributes);
    fill($("payload"), payload, "text");
    $("attributes-title").hidden = !$("attributes").children.length;
    $("payload-title").hidden = !$("payload").children.length;
    const s = $("suggestion");
    if (t.suggestion) {
      s.hidden = false;
      s.textContent = "Model suggests " + suggested(t.suggestion);
    } else {
      s.hidden = true;
      s.textContent = "";
    }
    showContext(t.context);
    showWhy(t);
  }

  // What the model suggests: its top label with its score, or in a multi-label project
  // every label at or above its threshold with its score ("none of these" for none).
  function suggested(g) {
    const pct = (x) => " (" + (x * 100).toFixed(0) + "%)";
    if (!multi || !Array.isArray(g.labels)) return g.label + pct(g.confidence);
    if (!g.labels.length) return "none of these";
    return g.labels.map((l) => l + pct(g.scores[l])).join(", ");
  }

  function escapeRe(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); }
  const highlightRe = highlights.length
    ? new RegExp(highlights.slice().sort((a, b) => b.length - a.length).map(escapeRe).join("|"), "giu")
    : null;

  // The item's text, with the policy's words highlighted: text nodes and <mark>s holding
  // text, never markup.
  function showText(el, text) {
    el.replaceChildren();
    if (!highlightRe) { el.textContent = text; return; }
    let last = 0;
    for (const m of text.matchAll(highlightRe)) {
      if (!m[0]) continue;
      if (m.index > last) el.appendChild(document.createTextNode(text.slice(last, m.index)));
      const mark = document.createElement("mark");
      mark.textContent = m[0];
      el.appendChild(mark);
      last = m.index + m[0].length;
    }
    if (last < text.length) el.appendChild(document.createTextNode(text.slice(last)));
  }

  // Why this item: the rule that routed it, its reasons, and every label's score (when
  // the policy shows the model's suggestion).
  function showWhy(t) {
    const box = $("why");
    const w = t.why;
    const scores = t.suggestion && t.suggestion.scores ? Object.entries(t.suggestion.scores) : [];
    box.hidden = !w && !scores.length;
    $("why-rule").textContent = w ? "Rule: " + w.rule : "";
    const reasons = $("why-reasons");
    reasons.replaceChildren();
    for (const r of (w && w.reasons) || []) {
      const li = document.createElement("li");
      li.textContent = r;
      reasons.appendChild(li);
    }
    const table = $("why-scores");
    table.replaceChildren();
    scores.sort((a, b) => b[1] - a[1]);
    for (const [label, score] of scores) {
      const tr = document.createElement("tr");
      const name = document.createElement("td");
      name.textContent = label;
      const value = document.createElement("td");
      value.textContent = (score * 100).toFixed(1) + "%";
      tr.append(name, value);
      table.appendChild(tr);
    }
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
    if (category) body.failure_category = category;
    body.lease_id = t.lease_id;
    body.review_id = "wb-" + t.task_id + "-" + t.lease_id;
    $("note").value = "";
    $("note-box").hidden = true;
    setCategory("");
    // Submit and next: the answer also leases the task after the one about to show, in
    // the same request and commit — unless a claim is in flight already.
    const withNext = !fetching && !stopped;
    if (withNext) body.next = queue ? { project: project, queue: queue } : { project: project };
    const sending = send(t, body);
    const entry = remember(t, body, sending);
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
        showToday();
        entry.outcome = r.data.outcome;
        showHistory();
        notice("");
      } else {
        entry.failed = true;
        showHistory();
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

  // ------------------------------------------------------------ history, undo and amend

  // Records an answer in this session's history (newest first) and counts it as done.
  function remember(t, body, sending) {
    const entry = {
      task: t,
      reviewId: body.review_id,
      kind: body.label !== undefined || body.labels !== undefined ? "label" : body.escalate ? "escalate" : "skip",
      label: body.labels !== undefined ? setText(body.labels) : body.label,
      labels: body.labels,
      outcome: "sending…",
      failed: false,
      sending,
      amends: 0,
    };
    history.unshift(entry);
    if (history.length > 200) history.pop();
    if (left !== null && left > 0) left -= 1;
    showProgress();
    showHistory();
    return entry;
  }

  function describe(e) {
    const what = e.kind === "label" ? e.label : e.kind;
    return e.task.item.external_id + " — " + what + " · " + (e.failed ? "not stored" : e.outcome);
  }

  function showHistory() {
    const list = $("history-list");
    list.replaceChildren();
    history.slice(0, 50).forEach((e) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "history-entry";
      b.textContent = describe(e);
      b.disabled = e.failed || e.kind === "skip";
      b.addEventListener("click", () => startAmend(e));
      li.appendChild(b);
      list.appendChild(li);
    });
    $("done").textContent = String(history.length);
  }

  // Shows an answered item again, for its new label (a digit or a label button).
  function startAmend(e) {
    if (!e) { notice("Nothing to change yet."); return; }
    if (e.failed || e.kind === "skip") {
      notice("Your " + (e.kind === "skip" ? "skip" : "answer") + " on " + e.task.item.external_id + " cannot be changed.");
      return;
    }
    closeOverlays();
    amending = e;
    root.classList.add("amending");
    $("amending").hidden = false;
    $("amending-ext").textContent = e.task.item.external_id;
    $("amending-was").textContent = e.kind === "label" ? e.label : "an escalation";
    paint(e.task);
    if (multi) {
      // The set in the making on the current item waits until the change is done.
      if (!savedSet) savedSet = new Set(toggled);
      clearSet();
      for (const l of e.labels || []) toggled.add(l);
      showSet();
    }
    focusItem();
  }

  function stopAmend() {
    if (!amending) return;
    amending = null;
    root.classList.remove("amending");
    $("amending").hidden = true;
    if (multi) {
      clearSet();
      for (const l of savedSet || []) toggled.add(l);
      savedSet = null;
      showSet();
    }
    if (current) paint(current);
    else render(null);
  }

  // Sends the change; the server says whether it replaced the label or re-opened the item.
  // `label` is a label, or in a multi-label project the array of the new set.
  async function amend(e, label) {
    stopAmend();
    try { await e.sending; } catch (_) { /* the answer's own notice says so */ }
    if (e.failed) return;
    e.amends += 1;
    const body = Array.isArray(label) ? { amend_id: e.reviewId + "-m" + e.amends, labels: label }
      : { amend_id: e.reviewId + "-m" + e.amends, label };
    const labelsSent = Array.isArray(label) ? label : null;
    if (labelsSent) label = setText(labelsSent);
    let r;
    for (let attempt = 0; ; attempt++) {
      try {
        r = await call("POST", "/v1/reviews/" + encodeURIComponent(e.reviewId) + "/amend", body);
        if (r.status < 500 || attempt >= 3) break;
      } catch (err) {
        if (attempt >= 3) { notice("Your change on " + e.task.item.external_id + " was not sent: " + err.message); return; }
      }
      await new Promise((ok) => setTimeout(ok, 250 * 2 ** attempt));
    }
    const ext = e.task.item.external_id;
    if (r.status === 200) {
      const was = e.kind === "label" ? e.label : "escalation";
      e.kind = "label";
      e.label = label;
      if (labelsSent) e.labels = labelsSent;
      e.outcome = r.data.outcome;
      showHistory();
      notice(r.data.outcome === "undone" ? "Changed " + ext + " from " + was + " to " + label + "."
        : r.data.outcome === "amended" ? "Changed " + ext + " from " + was + " to " + label + ": it went back to adjudication."
          : ext + " already had " + label + ".");
    } else {
      const err = r.data && r.data.error;
      notice("Your change on " + ext + " was refused: " + (err ? err.message : r.status));
    }
  }

  // ------------------------------------------------------------ overlays and focus

  function focusItem() {
    const a = document.activeElement;
    if (a && a !== document.body) a.blur();
    root.focus({ preventScroll: true });
  }

  function toggleOverlay(id) {
    const o = $(id);
    if (!o) return;
    const open = o.hidden;
    closeOverlays();
    o.hidden = !open;
    if (open) {
      o.setAttribute("tabindex", "-1");
      o.focus({ preventScroll: true });
    } else {
      focusItem();
    }
  }

  // Closes every overlay, the category picker and the escalation form; the note keeps its
  // text.
  function closeOverlays() {
    // An escalation closed unsent is cancelled: its reason goes with it.
    if (!$("escalate-form").hidden) $("escalate-reason").value = "";
    for (const id of ["help", "guidelines", "category-picker", "escalate-form"]) {
      const o = $(id);
      if (o) o.hidden = true;
    }
    $("note-box").hidden = true;
  }

  function setCategory(c) {
    category = c;
    const v = $("category-value");
    if (v) v.textContent = c || "—";
  }

  function openCategories() {
    const picker = $("category-picker");
    if (!picker || !current) return;
    const open = picker.hidden;
    closeOverlays();
    picker.hidden = !open;
    focusItem();
  }

  // ------------------------------------------------------------ progress

  function showProgress() {
    $("left").textContent = left === null ? "…" : String(left);
    $("done").textContent = String(history.length);
  }

  // Open tasks in the queue (every queue for "any"), re-read every 30 s and counted down
  // by this session's answers in between.
  async function readProgress() {
    try {
      const r = await call("GET", "/v1/projects/" + encodeURIComponent(project) + "/queues");
      if (r.status !== 200 || !r.data) return;
      const qs = r.data.queues || {};
      left = queue ? (qs[queue] ? qs[queue].open : 0) : Object.values(qs).reduce((n, q) => n + q.open, 0);
      showProgress();
    } catch (_) { /* the next read tries again */ }
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
    focusItem();
  });

  function skip() { answer({ skip: { reason: "skipped in the workbench" } }); }

  function toggleNote() {
    const box = $("note-box");
    box.hidden = !box.hidden;
    if (!box.hidden) $("note").focus();
  }

  document.querySelectorAll("button.label").forEach((b) =>
    b.addEventListener("click", () => {
      // A toggle gives the focus back to the item, so that Enter then submits the set.
      if (multi) { toggle(b.dataset.label); focusItem(); }
      else if (amending) { amend(amending, b.dataset.label); focusItem(); }
      else answerLabel(b.dataset.label);
    }));
  if (multi) {
    $("none-of-these").addEventListener("click", () => { clearSet(); focusItem(); });
    $("submit-set").addEventListener("click", () => { submitSet(); focusItem(); });
  }
  document.querySelectorAll("button.category").forEach((b) =>
    b.addEventListener("click", () => { setCategory(b.dataset.category); closeOverlays(); focusItem(); }));
  $("escalate").addEventListener("click", openEscalate);
  $("skip").addEventListener("click", () => { skip(); focusItem(); });
  $("note-button").addEventListener("click", toggleNote);
  $("undo-button").addEventListener("click", () => startAmend(history[0]));
  if ($("category-button")) $("category-button").addEventListener("click", openCategories);
  $("help-button").addEventListener("click", () => toggleOverlay("help"));
  if ($("guidelines-button")) $("guidelines-button").addEventListener("click", () => toggleOverlay("guidelines"));

  // The one key handler. Only a text box keeps its keys (Escape leaves it); with focus on
  // anything else — a button clicked, the history — every key below still works.
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const a = document.activeElement;
    const typing = a && (a.tagName === "TEXTAREA" || (a.tagName === "INPUT" && a.type !== "button" && a.type !== "checkbox"));
    if (ev.key === "Escape") {
      ev.preventDefault();
      closeOverlays();
      stopAmend();
      focusItem();
      return;
    }
    if (typing || ev.repeat) return;
    const picker = $("category-picker");
    if (picker && !picker.hidden && /^[0-9]$/.test(ev.key)) {
      ev.preventDefault();
      const c = ev.key === "0" ? "" : categories[Number(ev.key)];
      if (c !== undefined) { setCategory(c); closeOverlays(); focusItem(); }
      return;
    }
    if (multi && /^[0-9]$/.test(ev.key)) {
      ev.preventDefault();
      if (ev.key === "0") clearSet();
      else if (labels[Number(ev.key) - 1]) toggle(labels[Number(ev.key) - 1]);
      return;
    }
    // Enter submits the set, unless a button has the focus (Enter presses it, as ever).
    if (multi && ev.key === "Enter" && !(a && a.tagName === "BUTTON")) {
      ev.preventDefault();
      submitSet();
      return;
    }
    if (/^[1-9]$/.test(ev.key)) {
      const l = labels[Number(ev.key) - 1];
      if (!l) return;
      ev.preventDefault();
      if (amending) amend(amending, l);
      else answerLabel(l);
      return;
    }
    // A select among the answer fields keeps its letters (they pick a value); digits above
    // still answer and Escape still leaves it.
    if (a && a.tagName === "SELECT" && a.closest("#fields")) return;
    const act = {
      e: () => { if (!amending) openEscalate(); },
      s: () => { if (!amending) skip(); },
      n: toggleNote,
      c: openCategories,
      f: focusFields,
      u: () => startAmend(history[0]),
      Backspace: () => startAmend(history[0]),
      h: () => { const first = document.querySelector("#history-list button:not([disabled])"); if (first) first.focus(); },
      g: () => toggleOverlay("guidelines"),
      "?": () => toggleOverlay("help"),
    }[ev.key];
    if (act) { ev.preventDefault(); act(); }
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

  // The fields of an answer with `label` (a label, or a multi-label answer's array), or
  // the first required one left empty.
  function readFields(label) {
    const fields = {};
    const answered = Array.isArray(label) ? label : [label];
    for (const f of fieldSpecs) {
      const c = fieldControls.get(f.name);
      const raw = c ? c.value.trim() : "";
      if (raw === "") {
        const needed = f.required && (!f.when_labels || answered.some((l) => f.when_labels.includes(l)));
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

  // ---- Multi-label answers: the toggles and the set they make.
  function setText(set) { return set.length ? set.join(", ") : "none of these"; }

  // The set in the project's label order.
  function currentSet() { return labels.filter((l) => toggled.has(l)); }

  function showSet() {
    if (!multi) return;
    document.querySelectorAll("button.label").forEach((b) =>
      b.setAttribute("aria-pressed", toggled.has(b.dataset.label) ? "true" : "false"));
    $("none-of-these").setAttribute("aria-pressed", toggled.size ? "false" : "true");
    $("set-summary").textContent = setText(currentSet());
  }

  function toggle(label) {
    if (!current && !amending) return;
    if (toggled.has(label)) toggled.delete(label);
    else toggled.add(label);
    showSet();
  }

  function clearSet() {
    toggled.clear();
    showSet();
  }

  // Sends the set toggled on (an amendment while changing an answer), with the fields.
  function submitSet() {
    const set = currentSet();
    if (amending) { amend(amending, set); focusItem(); return; }
    if (!current) return;
    const read = readFields(set);
    if (read.missing) {
      notice("Fill in " + read.missing.name + " before answering " + setText(set) + " (it is required" +
        (read.missing.when_labels ? " for " + read.missing.when_labels.join(", ") : "") + ").");
      if (read.control) read.control.focus();
      return;
    }
    const shown = current;
    const body = { labels: set };
    if (fieldSpecs.length) body.fields = read.fields;
    answer(body);
    if (current !== shown) { clearFields(); clearSet(); }
  }

  buildFields();
  showSet();

  call("GET", "/v1/me").then((r) => {
    if (r.status === 200) { today = r.data.answers_today; showToday(); }
  });
  setInterval(tick, 1000);
  readProgress();
  setInterval(readProgress, 30000);
  setInterval(heartbeat, Math.max(5000, Math.min(leaseMs / 3, 60000)));
  advance();
})();
