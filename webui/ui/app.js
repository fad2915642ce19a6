// tcpstated web view: sessions, the ladder diagram with the engine's
// explanation of every segment, the RFC 9293 state diagram, the TCB, time
// travel over the log, and scripts run from the page. Plain JavaScript
// modules over the REST API of the same server. The selected session is
// followed through the records stream (GET …/records:stream?follow=true),
// not by polling. Everything from the server is inserted as text, never as
// HTML, except the ladder diagram, an SVG the server drew, which is parsed
// as XML and stripped of anything active before it joins the page.
"use strict";

import { t, pick, setLanguage } from "./i18n.js";
import { draw as drawStates } from "./states.js";

const $ = (id) => document.getElementById(id);
const SESSION_PAGE = 200; // sessions per ListSessions call
const RECORD_PAGE = 1000; // records per ListRecords call
const MAX_RECORDS = 20000; // records the page reads at most

const view = {
  session: "", // session ID
  endpoint: "", // endpoint ID chosen (empty: the page picks one)
  info: null, // the Session
  endpoints: [],
  records: [], // with explanations
  segs: [], // every segment, in diagram order (data-ref)
  trans: [], // every transition, in diagram order (data-ref)
  at: null, // time travel: show the session after this record; null: live
  selected: -1, // selected segment
  linked: new Set(), // segments linked to the selected script line
  sessions: [], // loaded pages of ListSessions
  nextToken: "",
  runs: new Map(), // session name -> passed, for scripts run from this page
  report: null, // the last script report shown
  reportLine: -1,
  stream: null, // AbortController of the records stream
  diagramKey: "",
  caps: { atRecord: false, profiles: null }, // what the server's API offers
};

// A state's CSS class; the names stay as RFC 9293 writes them.
const stateBadge = (name) => el("span", { className: "state " + name, textContent: name });

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

const lastPart = (name) => name.slice(name.lastIndexOf("/") + 1);
const num = (v) => Number(v || 0);

function headers(extra) {
  const tok = localStorage.getItem("tcpstated-token") || "";
  return Object.assign(tok ? { Authorization: "Bearer " + tok } : {}, extra || {});
}

// api calls the REST API and returns the response, or throws an Error with
// the server's message and the HTTP status.
async function api(path, opts) {
  opts = opts || {};
  const r = await fetch(path, { method: opts.method || "GET", body: opts.body, signal: opts.signal,
    headers: headers(opts.body ? { "Content-Type": "application/json" } : {}), cache: "no-store" });
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { const j = await r.json(); if (j.message) msg = j.message; } catch (e) { /* not JSON */ }
    const err = new Error(msg);
    err.status = r.status;
    throw err;
  }
  return r;
}
const getJSON = (path, opts) => api(path, opts).then((r) => r.json());

function setStatus(text, error) {
  const s = $("status");
  s.textContent = text;
  s.className = "status" + (error ? " error" : "");
}
const fail = (e) => setStatus(e.message, true);

// ---- Selection in the URL: #/sessions/ID or #/sessions/ID/endpoints/EID.

function readHash() {
  const m = location.hash.match(/^#\/?sessions\/([^/]+)(?:\/endpoints\/([^/]+))?/);
  const session = m ? decodeURIComponent(m[1]) : "";
  const changed = session !== view.session;
  view.session = session;
  view.endpoint = m && m[2] ? decodeURIComponent(m[2]) : "";
  return changed;
}

function go(session, endpoint) {
  let h = session ? "#/sessions/" + encodeURIComponent(session) : "";
  if (session && endpoint) h += "/endpoints/" + encodeURIComponent(endpoint);
  if (location.hash !== h) history.replaceState(null, "", h || location.pathname);
  route();
}

function route() {
  const changed = readHash();
  if (changed) openSession();
  else { renderEndpoints(); renderEndpoint(); }
  renderSessions();
}

// ---- Sessions: list, search, delete, paging.

function kindOf(s) {
  const k = (s.kind || "").replace("SESSION_KIND_", "").toLowerCase();
  return k && k !== "unspecified" ? k : "";
}

function passedOf(s) {
  if (s.script && typeof s.script.passed === "boolean") return s.script.passed;
  return view.runs.has(s.name) ? view.runs.get(s.name) : undefined;
}

async function loadSessions(more) {
  const tok = more ? view.nextToken : "";
  const list = await getJSON(`/v1/sessions?pageSize=${SESSION_PAGE}` + (tok ? "&pageToken=" + encodeURIComponent(tok) : ""));
  view.sessions = more ? view.sessions.concat(list.sessions || []) : list.sessions || [];
  view.nextToken = list.nextPageToken || "";
  renderSessions();
}

function renderSessions() {
  const q = $("session-search").value.trim().toLowerCase();
  const ul = $("sessions");
  ul.replaceChildren();
  let shown = 0;
  for (const s of view.sessions) {
    const id = lastPart(s.name), kind = kindOf(s), passed = passedOf(s);
    const words = [id, kind, kind && t("kind." + kind), passed === true ? t("result.pass") : "", passed === false ? t("result.fail") : ""].join(" ").toLowerCase();
    if (q && !words.includes(q)) continue;
    shown++;
    const when = s.createTime ? new Date(s.createTime).toLocaleString() : "";
    const facts = el("small", {}, t("sessions.created", { time: when }), " · ",
      t("sessions.endpoints", { n: s.endpointCount || 0 }), " · ", t("sessions.records", { n: s.recordCount || 0 }));
    const badges = el("span", { className: "badges" });
    if (kind) badges.append(el("span", { className: "tag kind-" + kind, textContent: t("kind." + kind) }));
    if (passed !== undefined) badges.append(el("span", { className: "tag " + (passed ? "pass" : "fail"), textContent: t(passed ? "result.pass" : "result.fail") }));
    const open = el("button", { type: "button", className: "open" }, el("span", { className: "id", textContent: id }), badges, facts);
    open.onclick = () => go(id, "");
    const del = el("button", { type: "button", className: "delete", textContent: t("sessions.delete") });
    del.setAttribute("aria-label", t("sessions.delete") + " " + id);
    del.onclick = () => deleteSession(s.name, del);
    const li = el("li", {}, open, del);
    li.dataset.session = id;
    if (id === view.session) { li.className = "selected"; open.setAttribute("aria-current", "true"); }
    ul.append(li);
  }
  $("sessions-count").textContent = view.sessions.length ? t("sessions.count", { shown, loaded: view.sessions.length }) : "";
  $("more-sessions").hidden = !view.nextToken;
  $("no-sessions").hidden = view.sessions.length > 0;
}

// deleteSession asks once (the button turns into "Really delete?"), then deletes.
async function deleteSession(name, button) {
  if (!button.classList.contains("confirm")) {
    button.classList.add("confirm");
    button.textContent = t("sessions.confirmDelete");
    return;
  }
  try {
    await api("/v1/" + name, { method: "DELETE" });
    setStatus(t("sessions.deleted", { name }));
    // Keep the pages loaded so far (and the search): only this one goes.
    view.sessions = view.sessions.filter((x) => x.name !== name);
    if (lastPart(name) === view.session) go("", "");
    renderSessions();
  } catch (e) { fail(e); }
}

// ---- A session: followed through its records stream.

function openSession() {
  if (view.stream) view.stream.abort();
  view.stream = null;
  Object.assign(view, { info: null, endpoints: [], records: [], segs: [], trans: [], at: null, selected: -1, diagramKey: "" });
  if (view.report && view.report.session !== "sessions/" + view.session) view.linked = new Set();
  $("session-pane").hidden = $("detail-pane").hidden = !view.session;
  $("diagram").replaceChildren();
  renderExplain();
  if (view.session) follow("sessions/" + view.session);
}

// follow reads the session's records stream (newline-delimited JSON
// through the gateway) and reloads what the page shows whenever records
// arrive; it reconnects from where it stopped if the stream breaks.
async function follow(name) {
  const ctl = new AbortController();
  view.stream = ctl;
  let from = 0;
  while (!ctl.signal.aborted) {
    try {
      const r = await api(`/v1/${name}/records:stream?follow=true&startIndex=${from}`, { signal: ctl.signal });
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      if (from === 0) reload(); // the session as it is, even with no record yet to stream
      setStatus(t("status.live"));
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (!line) continue;
          const msg = JSON.parse(line);
          if (msg.error) { const e = new Error(msg.error.message); e.status = msg.error.code === 5 ? 404 : 500; throw e; }
          const recs = (msg.result && msg.result.records) || [];
          if (recs.length) {
            from = num(recs[recs.length - 1].index) + 1;
            reload();
          }
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
      if (e.status === 404) { fail(e); go("", ""); loadSessions(false).catch(fail); return; }
      setStatus(t("status.reconnecting"), true);
    }
    await new Promise((res) => setTimeout(res, 1500));
  }
}

// loadRecords reads the log with the engine's explanations.
async function loadRecords(name) {
  let out = [], tok = "";
  do {
    const page = await getJSON(`/v1/${name}/records?explain=true&pageSize=${RECORD_PAGE}` + (tok ? "&pageToken=" + encodeURIComponent(tok) : ""));
    out = out.concat(page.records || []);
    tok = page.nextPageToken || "";
  } while (tok && out.length < MAX_RECORDS);
  return out;
}

// The handshake's answers: a SYN answered by a SYN,ACK was taken, not
// discarded (as the server's diagram export judges it).
const HANDSHAKE = new Set(["LISTEN_SYN_ACCEPTED", "SYN_COOKIE_SENT", "SYN_SENT_SYN_ACK_ESTABLISHED", "SYN_SENT_SIMULTANEOUS_OPEN"]);

// fateOf says what the engine did with an inbound segment, from its
// explanations: the last decisive one wins.
function fateOf(seg, expl) {
  if (seg.checksumValid === false) return "dropped";
  for (let i = expl.length - 1; i >= 0; i--) {
    switch (expl[i].action) {
      case "ACTION_DROPPED": return "dropped";
      case "ACTION_ANSWERED": return HANDSHAKE.has(expl[i].code) ? "accepted" : "answered";
      case "ACTION_QUEUED": return "held";
      case "ACTION_ACCEPTED": return "accepted";
    }
  }
  return "accepted";
}

// index lists the segments and transitions in the order the server's
// diagram draws them (its data-ref numbers): for each input, the inbound
// segment, then the segments and state changes of its output.
function index() {
  view.segs = [];
  view.trans = [];
  let input = null, pendingIn = null;
  for (const r of view.records) {
    const idx = num(r.index);
    if (r.kind === "RECORD_KIND_INPUT") {
      input = r;
      pendingIn = null;
      if (r.segment) {
        pendingIn = { k: view.segs.length, rec: idx, dir: "in", seg: r.segment, input: r, output: null, fate: "accepted" };
        view.segs.push(pendingIn);
      }
    } else if (r.kind === "RECORD_KIND_OUTPUT") {
      const out = r.output || {};
      if (pendingIn) {
        pendingIn.output = r;
        pendingIn.rec = idx; // its fate is known once its output is
        pendingIn.fate = fateOf(pendingIn.seg, out.explanations || []);
      }
      for (const s of out.segments || []) view.segs.push({ k: view.segs.length, rec: idx, dir: "out", seg: s, input, output: r, fate: "sent" });
      for (const tr of out.transitions || []) view.trans.push(Object.assign({ k: view.trans.length, rec: idx }, tr));
    }
  }
  // A segment appears in time travel at the record that holds it: an
  // inbound one at its input, an emitted one at its output.
  for (const s of view.segs) s.inRec = s.dir === "in" ? num(s.input.index) : s.rec;
}

let busy = false, again = false;
async function reload() {
  if (busy) { again = true; return; }
  busy = true;
  const name = "sessions/" + view.session;
  try {
    const [s, eps, recs] = await Promise.all([
      getJSON("/v1/" + name), getJSON(`/v1/${name}/endpoints?pageSize=1000`), loadRecords(name)]);
    if (name !== "sessions/" + view.session) return; // another session was chosen meanwhile
    view.info = s.session;
    view.endpoints = eps.endpoints || [];
    view.records = recs;
    index();
    const listed = view.sessions.find((x) => x.name === name);
    if (listed) { Object.assign(listed, view.info); renderSessions(); }
    renderSession();
    await renderDiagram();
    renderAll();
    setStatus(t("status.updated", { time: new Date().toLocaleTimeString() }));
  } catch (e) {
    fail(e);
  } finally {
    busy = false;
    if (again) { again = false; reload(); }
  }
}

// renderAll redraws what depends on the records, the selection and the
// time-travel position (and the language), from what is loaded.
function renderAll() {
  if (!view.info) return;
  renderSession();
  renderTravel();
  markDiagram();
  renderSegments();
  renderEndpoints();
  renderEndpoint();
  renderExplain();
  renderReport();
}

function lastRecord() { return view.records.length ? num(view.records[view.records.length - 1].index) : 0; }
function atRecord() { return view.at === null ? lastRecord() : view.at; }

function renderSession() {
  const s = view.info;
  if (!s) return;
  const o = s.options || {};
  $("session-title").textContent = s.name;
  const facts = [t("session.facts", { clock: s.clock, mode: (o.clockMode || "").replace("CLOCK_MODE_", ""),
    isn: (o.isnMode || "").replace("ISN_MODE_", ""), records: s.recordCount })];
  if (s.createTime) facts.push(t("session.created", { time: new Date(s.createTime).toLocaleString() }));
  if (s.nextDeadline) facts.push(t("session.nextTimer", { t: s.nextDeadline }));
  $("session-facts").textContent = facts.join(" · ");
  $("pcap").href = `/v1/${s.name}/pcap`;
}

// ---- Time travel.

function renderTravel() {
  const range = $("travel-range"), last = lastRecord(), at = atRecord();
  range.max = String(last);
  range.value = String(at);
  const rec = view.records.find((r) => num(r.index) === at);
  $("travel-at").textContent = view.at === null ? t("travel.liveNow", { n: last })
    : t("travel.at", { n: at, last, summary: rec ? rec.summary : "" });
  $("travel-live").disabled = view.at === null;
  $("travel").dataset.at = String(at);
}

function travel(n) {
  const last = lastRecord();
  view.at = n === null || n >= last ? null : Math.max(0, n);
  renderAll();
}

// ---- The ladder diagram: the server's SVG, inlined so its arrows can be
// clicked.

async function renderDiagram() {
  const s = view.info;
  const rel = $("relative").checked, opt = $("options").checked;
  const key = `${s.name} ${s.recordCount} ${rel} ${opt}`;
  if (key === view.diagramKey) return;
  const text = await (await api(`/v1/${s.name}/diagram.svg?relative=${rel}&tcp_options=${opt}&max_segments=5000`)).text();
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const svg = doc.documentElement;
  if (svg.nodeName !== "svg") throw new Error("the diagram is not SVG");
  for (const bad of svg.querySelectorAll("script, foreignObject, iframe, a")) bad.remove();
  for (const e of [svg, ...svg.querySelectorAll("*")]) {
    for (const a of [...e.attributes]) if (/^on/i.test(a.name) || /href/i.test(a.name)) e.removeAttribute(a.name);
  }
  const node = document.importNode(svg, true);
  node.setAttribute("role", "img");
  node.setAttribute("aria-label", t("ladder.alt"));
  for (const g of node.querySelectorAll("g.seg[data-ref]")) {
    const k = num(g.dataset.ref);
    const title = g.querySelector("title");
    g.setAttribute("tabindex", "0");
    g.setAttribute("role", "button");
    g.setAttribute("aria-label", title ? title.textContent : "segment " + k);
    g.onclick = () => select(k, true);
    g.onkeydown = (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(k, true); } };
  }
  const box = $("diagram");
  box.replaceChildren(node);
  box.dataset.records = s.recordCount;
  view.diagramKey = key;
  const drawn = node.querySelectorAll("g.seg").length;
  $("diagram-capped").hidden = drawn >= view.segs.length;
  $("diagram-capped").textContent = t("ladder.capped", { n: drawn });
}

// markDiagram shows the time-travel position, the selection and the
// script line's segments on the inlined SVG.
function markDiagram() {
  const at = atRecord();
  for (const g of $("diagram").querySelectorAll("g.seg[data-ref]")) {
    const k = num(g.dataset.ref), s = view.segs[k];
    g.classList.toggle("future", !!s && s.inRec > at);
    g.classList.toggle("selected", k === view.selected);
    g.classList.toggle("linked", view.linked.has(k));
    highlight(g, k === view.selected || view.linked.has(k));
  }
  for (const g of $("diagram").querySelectorAll("g.state[data-ref]")) {
    const tr = view.trans[num(g.dataset.ref)];
    g.classList.toggle("future", !!tr && tr.rec > at);
  }
}

// highlight puts a band behind an arrow (or takes it away): a glow on the
// lines would blur the label.
function highlight(g, on) {
  let band = g.querySelector(":scope > rect.band");
  if (!on) { if (band) band.remove(); return; }
  if (band) return;
  const b = g.getBBox();
  band = document.createElementNS("http://www.w3.org/2000/svg", "rect");
  band.setAttribute("class", "band");
  for (const [k, v] of [["x", b.x - 6], ["y", b.y - 4], ["width", b.width + 12], ["height", b.height + 8], ["rx", 4]]) band.setAttribute(k, String(v));
  g.insertBefore(band, g.querySelector(":scope > line"));
}

function retransmitted(k) {
  const g = $("diagram").querySelector(`g.seg[data-ref="${k}"]`);
  return !!g && g.classList.contains("retransmission");
}

// ---- The segment list.

function fateTag(s) {
  const tags = el("span", { className: "badges" });
  if (s.dir === "in") tags.append(el("span", { className: "tag fate-" + s.fate, textContent: t("legend." + s.fate) }));
  if (retransmitted(s.k)) tags.append(el("span", { className: "tag fate-retransmission", textContent: t("legend.retransmission") }));
  return tags;
}

function renderSegments() {
  const body = $("segments").tBodies[0];
  body.replaceChildren();
  const at = atRecord();
  for (const s of view.segs) {
    const tr = el("tr", { tabIndex: 0 },
      el("td", { textContent: String(s.k) }),
      el("td", { textContent: s.seg.time || "" }),
      el("td", { textContent: t(s.dir === "in" ? "segments.in" : "segments.out") }),
      el("td", {}, el("span", { className: "summary", textContent: s.seg.summary }), " ", fateTag(s)));
    tr.dataset.seg = String(s.k);
    tr.classList.toggle("future", s.inRec > at);
    tr.classList.toggle("selected", s.k === view.selected);
    tr.classList.toggle("linked", view.linked.has(s.k));
    tr.onclick = () => select(s.k, false);
    tr.onkeydown = (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(s.k, false); } };
    body.append(tr);
  }
  $("no-segments").hidden = view.segs.length > 0;
}

// select shows segment k's explanation and marks it in the ladder and
// the list.
function select(k, fromLadder) {
  view.selected = k;
  markDiagram();
  renderSegments();
  renderExplain();
  const row = $("segments").querySelector(`tr[data-seg="${k}"]`);
  const arrow = $("diagram").querySelector(`g.seg[data-ref="${k}"]`);
  if (fromLadder && row) row.scrollIntoView({ block: "nearest" });
  if (!fromLadder && arrow) arrow.scrollIntoView({ block: "nearest", inline: "nearest" });
}

// ---- The explanation of the selected segment.

function renderExplain() {
  const box = $("explain");
  const s = view.segs[view.selected];
  if (!s) {
    box.replaceChildren(el("p", { className: "hint", textContent: t("explain.none") }));
    return;
  }
  const out = (s.output && s.output.output) || {};
  const parts = [
    el("p", { className: "facts", textContent: t("explain.segment", { k: s.k, dir: t(s.dir === "in" ? "explain.inbound" : "explain.outbound"), rec: s.dir === "in" ? s.inRec : s.rec, time: s.seg.time }) }),
    el("p", {}, el("code", { className: "summary", textContent: s.seg.summary }), " ", fateTag(s)),
  ];
  if (s.dir === "out" && s.input) parts.push(el("p", { className: "facts", textContent: t("explain.causedBy", { summary: s.input.summary }) }));
  parts.push(el("h3", { textContent: t("explain.rules") }));
  const xs = out.explanations || [];
  if (!xs.length) parts.push(el("p", { className: "hint", textContent: t("explain.noRules") }));
  const ul = el("ul", { className: "explanations" });
  for (const x of xs) {
    const li = el("li", {},
      el("div", { className: "rule" }, el("strong", { className: "code", textContent: x.code }), " ",
        el("span", { className: "section", textContent: x.section }), " ",
        el("span", { className: "tag action-" + (x.action || "").replace("ACTION_", "").toLowerCase(), textContent: (x.action || "").replace("ACTION_", "") })),
      el("p", { className: "text", textContent: x.text }));
    if (x.endpoint) li.prepend(el("div", { className: "facts", textContent: x.endpoint }));
    const fields = Object.entries(x.fields || {});
    if (fields.length) li.append(el("p", { className: "fields" }, t("explain.fields") + ": ", el("code", { textContent: fields.map(([k, v]) => `${k}=${v}`).join(" ") })));
    ul.append(li);
  }
  if (xs.length) parts.push(ul);
  if ((out.transitions || []).length) {
    parts.push(el("h3", { textContent: t("explain.transitions") }));
    const tl = el("ul", { className: "plain" });
    for (const tr of out.transitions) tl.append(el("li", {}, lastPart(tr.endpoint) + ": ", stateBadge(tr.fromStateName), " → ", stateBadge(tr.toStateName), ` (${tr.cause}, ${tr.time})`));
    parts.push(tl);
  }
  if ((out.events || []).length) {
    parts.push(el("h3", { textContent: t("explain.events") }));
    parts.push(el("ul", { className: "plain" }, ...out.events.map((ev) => el("li", { textContent: `${lastPart(ev.endpoint)}: ${ev.kind.replace("EVENT_KIND_", "")}` }))));
  }
  box.replaceChildren(...parts);
}

// ---- Endpoints, the TCB and the state diagram.

// stateAt is an endpoint's state after record n, from the transitions.
function stateAt(name, n) {
  let st = null;
  for (const tr of view.trans) if (tr.endpoint === name && tr.rec <= n) st = tr.toStateName;
  return st;
}

function shownEndpoint() {
  const eps = view.endpoints;
  if (view.endpoint) return eps.find((e) => lastPart(e.name) === view.endpoint) || null;
  // The most interesting endpoint: the last connection, else the first.
  return [...eps].reverse().find((e) => e.kind === "ENDPOINT_KIND_CONNECTION") || eps[0] || null;
}

function renderEndpoints() {
  const body = $("endpoints").tBodies[0];
  body.replaceChildren();
  const shown = shownEndpoint(), past = view.at !== null;
  for (const ep of view.endpoints) {
    const id = lastPart(ep.name);
    const st = past ? stateAt(ep.name, view.at) : ep.stateName;
    const tr = el("tr", { tabIndex: 0 },
      el("td", { textContent: id }),
      el("td", { textContent: t(ep.kind === "ENDPOINT_KIND_LISTENER" ? "kind.listener" : "kind.connection") }),
      el("td", {}, st ? stateBadge(st) : "—"),
      el("td", { textContent: ep.localAddress }),
      el("td", { textContent: ep.remoteAddress || "—" }));
    tr.dataset.endpoint = id;
    if (shown && ep.name === shown.name) tr.className = "selected";
    tr.onclick = () => go(view.session, id);
    tr.onkeydown = (ev) => { if (ev.key === "Enter") go(view.session, id); };
    body.append(tr);
  }
}

// TCB variables in RFC 9293 order, then the rest.
const TCB_VARS = [
  ["SND.UNA", "sndUna"], ["SND.NXT", "sndNxt"], ["SND.WND", "sndWnd"], ["SND.WL1", "sndWl1"], ["SND.WL2", "sndWl2"],
  ["ISS", "iss"], ["RCV.NXT", "rcvNxt"], ["RCV.WND", "rcvWnd"], ["IRS", "irs"],
  ["snd wnd scale", "sndWndScale"], ["rcv wnd scale", "rcvWndScale"], ["MSS", "mss"],
  ["cwnd", "cwnd"], ["ssthresh", "ssthresh"], ["SRTT", "srtt"], ["RTTVAR", "rttvar"], ["RTO", "rto"],
  ["retransmissions", "retransmissions"], ["TS.Recent", "tsRecent"],
];

let tcbSeq = 0;
async function renderEndpoint() {
  const cur = shownEndpoint();
  $("endpoint").hidden = !cur;
  renderStateDiagram(cur);
  if (!cur) return;
  const seq = ++tcbSeq, past = view.at !== null;
  let ep = cur, note = t("tcb.now");
  if (past && view.caps.atRecord) {
    try {
      ep = (await getJSON(`/v1/${cur.name}?atRecord=${view.at}`)).endpoint;
      note = t("tcb.at", { n: view.at });
    } catch (e) {
      if (seq !== tcbSeq) return;
      if (e.status !== 404) { fail(e); return; }
      ep = null;
      note = t("tcb.notYet", { n: view.at });
    }
  } else if (past) {
    note = t("tcb.noTravel");
  }
  if (seq !== tcbSeq) return; // a later call is drawing
  $("endpoint-title").textContent = cur.name;
  $("tcb-when").textContent = note;
  $("endpoint").dataset.at = past ? String(view.at) : "";
  const st = $("endpoint-state");
  if (!ep) { st.replaceChildren(); $("tcb").tBodies[0].replaceChildren(); return; }
  st.replaceChildren(t("tcb.state") + " ", stateBadge(ep.stateName));
  if (ep.error) st.append(" — " + ep.error);
  const rows = [];
  const add = (k, v) => rows.push(el("tr", {}, el("th", { scope: "row", textContent: k }), el("td", { textContent: String(v) })));
  if (ep.tcb) {
    for (const [label, key] of TCB_VARS) {
      const v = ep.tcb[key];
      if (v !== undefined && v !== null) add(label, v);
    }
  }
  if (ep.listenerStats) {
    const q = ep.listenerStats;
    add(t("tcb.synQueue"), t("tcb.of", { a: q.synQueueLength, b: q.synQueueLimit }));
    add(t("tcb.acceptQueue"), t("tcb.of", { a: q.acceptQueueLength, b: q.acceptQueueLimit }));
    add(t("tcb.accepted"), q.accepted);
  }
  if (ep.kind === "ENDPOINT_KIND_CONNECTION") {
    add(t("tcb.readable"), ep.bytesReadable);
    add(t("tcb.unsent"), ep.bytesUnsent);
    add(t("tcb.unacked"), ep.bytesUnacknowledged);
    add(t("tcb.fin"), `${ep.finSent} / ${ep.finReceived}`);
    if (ep.listener) add(t("tcb.listener"), lastPart(ep.listener) + " " + t(ep.accepted ? "tcb.isAccepted" : "tcb.notAccepted"));
  }
  for (const tm of ep.timers || []) add(t("tcb.timer", { kind: tm.kind.replace("TIMER_KIND_", "").toLowerCase() }), t("tcb.firesAt", { t: tm.deadline }));
  $("tcb").tBodies[0].replaceChildren(...rows);
}

function renderStateDiagram(ep) {
  const box = $("fsm"), list = $("fsm-path");
  if (!ep) { box.replaceChildren(); list.replaceChildren(); return; }
  const at = atRecord();
  const path = view.trans.filter((tr) => tr.endpoint === ep.name && tr.rec <= at)
    .map((tr) => ({ from: tr.fromStateName, to: tr.toStateName, cause: tr.cause, time: tr.time, rec: tr.rec }));
  const current = view.at === null ? ep.stateName : (path.length ? path[path.length - 1].to : "CLOSED");
  box.replaceChildren(drawStates(path, current, { title: t("fsm.title"), desc: t("fsm.desc"), offFigure: t("fsm.offFigure") }));
  box.dataset.state = current;
  list.replaceChildren(...path.map((p) => el("li", {}, stateBadge(p.from), " → ", stateBadge(p.to), ` ${p.cause} (${p.time}, #${p.rec})`)));
  if (!path.length) list.replaceChildren(el("li", { className: "hint", textContent: t("fsm.noPath") }));
}

// ---- Running a script.

const durNs = (d) => Math.round(parseFloat(d || "0") * 1e9);

// linkReport pairs each packet line of the report with the segments it
// names: the next unused segment of the same way at the same time.
function linkReport() {
  const r = view.report;
  if (!r || r.session !== "sessions/" + view.session) return;
  const used = new Set();
  r.links = r.lines.map((l) => {
    const dir = l.kind === "packet_in" ? "in" : l.kind === "packet_out" ? "out" : "";
    if (!dir) return [];
    const s = view.segs.find((s) => !used.has(s.k) && s.dir === dir && durNs(s.seg.time) === durNs(l.time));
    if (!s) return [];
    used.add(s.k);
    return [s.k];
  });
}

function renderReport() {
  const r = view.report;
  $("report").hidden = !r || r.session !== "sessions/" + view.session;
  if ($("report").hidden) return;
  linkReport();
  const res = $("report-result");
  res.replaceChildren(el("span", { className: "tag " + (r.passed ? "pass" : "fail"), textContent: t(r.passed ? "result.pass" : "result.fail") }), " ",
    r.passed ? t("run.passed") : t("run.failed", { failure: r.failure }), " — ", r.session);
  const body = $("report-lines").tBodies[0];
  body.replaceChildren();
  r.lines.forEach((l, i) => {
    const links = (r.links && r.links[i]) || [];
    const result = el("td", {}, el("span", { className: "tag " + (l.status || "").toLowerCase(), textContent: l.status }));
    if (l.reason) result.append(" ", l.reason);
    if (l.kind === "packet_in" || l.kind === "packet_out") result.append(el("div", { className: "facts link", textContent: links.length ? t("run.linked", { list: links.join(", ") }) : t("run.noSegments") }));
    const tr = el("tr", { tabIndex: 0 }, el("td", { textContent: String(l.line) }), el("td", { textContent: l.time || "" }),
      el("td", {}, el("code", { className: "summary", textContent: l.text })), result);
    tr.dataset.line = String(l.line);
    if (i === view.reportLine) tr.className = "selected";
    const pick = () => {
      view.reportLine = i;
      view.linked = new Set(links);
      if (links.length) select(links[0], false); else { markDiagram(); renderSegments(); }
      renderReport();
    };
    tr.onclick = pick;
    tr.onkeydown = (ev) => { if (ev.key === "Enter") pick(); };
    body.append(tr);
  });
}

async function runScript(ev) {
  ev.preventDefault();
  const text = $("script-text").value;
  if (!text.trim()) { setStatus(t("run.empty"), true); return; }
  const file = $("script-file").files[0];
  const req = { script: text, compare: $("compare").value, name: file ? file.name : "pasted.pkt" };
  if (view.caps.profiles && $("profile").value) req.profile = $("profile").value;
  $("run").disabled = true;
  setStatus(t("run.running"));
  try {
    const rep = await getJSON("/v1/scripts:run", { method: "POST", body: JSON.stringify(req) });
    view.report = rep;
    view.reportLine = -1;
    view.linked = new Set();
    view.runs.set(rep.session, !!rep.passed);
    await loadSessions(false);
    go(lastPart(rep.session), "");
    renderReport();
  } catch (e) {
    fail(e);
  } finally {
    $("run").disabled = false;
  }
}

// ---- What the server's API offers (from its OpenAPI document).

async function probe() {
  try {
    const doc = await getJSON("/openapi.json");
    const get = ((doc.paths || {})["/v1/sessions/{session}/endpoints/{endpoint}"] || {}).get || {};
    view.caps.atRecord = (get.parameters || []).some((p) => p.name === "atRecord" || p.name === "at_record");
    const prof = (((doc.definitions || {}).RunScriptRequest || {}).properties || {}).profile;
    if (prof) {
      view.caps.profiles = prof.enum || ["rfc", "freebsd", "linux"];
      $("profile").replaceChildren(el("option", { value: "", textContent: "—" }), ...view.caps.profiles.map((p) => el("option", { value: p, textContent: p })));
      $("profile-label").hidden = false;
    }
  } catch (e) { /* an older server: no time travel of the TCB, no profiles */ }
}

// ---- Start.

async function downloadPcap(ev) {
  ev.preventDefault();
  const a = ev.currentTarget;
  try {
    const blob = await (await api(a.getAttribute("href"))).blob();
    const url = URL.createObjectURL(blob);
    const tmp = el("a", { href: url, download: view.session + ".pcap" });
    document.body.append(tmp);
    tmp.click();
    tmp.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) { fail(e); }
}

function start() {
  const lang = $("lang");
  lang.value = pick();
  setLanguage(lang.value);
  setStatus(t("status.loading"));
  lang.onchange = () => { localStorage.setItem("tcpstated-lang", lang.value); setLanguage(lang.value); renderSessions(); renderAll(); setStatus(t(view.stream ? "status.live" : "status.loading")); };
  const token = $("token");
  token.value = localStorage.getItem("tcpstated-token") || "";
  token.onchange = () => { localStorage.setItem("tcpstated-token", token.value); view.diagramKey = ""; loadSessions(false).catch(fail); openSession(); };
  $("relative").onchange = $("options").onchange = () => reload();
  $("pcap").onclick = downloadPcap;
  $("session-search").oninput = renderSessions;
  $("more-sessions").onclick = () => loadSessions(true).catch(fail);
  $("refresh-sessions").onclick = () => loadSessions(false).catch(fail);
  $("run-form").onsubmit = runScript;
  $("script-file").onchange = async () => { const f = $("script-file").files[0]; if (f) $("script-text").value = await f.text(); };
  const range = $("travel-range");
  range.oninput = () => travel(num(range.value));
  $("travel-first").onclick = () => travel(0);
  $("travel-prev").onclick = () => travel(atRecord() - 1);
  $("travel-next").onclick = () => travel(atRecord() + 1);
  $("travel-live").onclick = () => travel(null);
  window.addEventListener("hashchange", route);
  // The session list has no stream: it is read on start, after a change
  // made here, on Refresh, and every 30 s while the page is visible.
  setInterval(() => { if (!document.hidden) loadSessions(false).catch(fail); }, 30000);
  probe().then(() => { readHash(); openSession(); renderSessions(); });
  loadSessions(false).catch(fail);
}

// For tests and the console: the API helper (it sends the token) and the view.
window.tcpstated = { api, view, travel, select };

start();
