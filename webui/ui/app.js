// tcpstated web view: sessions, endpoints with their state and TCB, and the
// session's ladder diagram. Plain JavaScript over the REST API of the same
// server; it polls once a second, so the page follows segments as they
// arrive. Everything from the server is inserted as text, never as HTML.
"use strict";

const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);

const view = {
  session: "",   // session ID
  endpoint: "",  // endpoint ID
  diagramKey: "", // what the diagram on screen was drawn from
  diagramURL: "",
};

// Selection lives in the URL: #/sessions/ID or #/sessions/ID/endpoints/EID.
function readHash() {
  const m = location.hash.match(/^#\/?sessions\/([^/]+)(?:\/endpoints\/([^/]+))?/);
  view.session = m ? decodeURIComponent(m[1]) : "";
  view.endpoint = m && m[2] ? decodeURIComponent(m[2]) : "";
}

function setHash(session, endpoint) {
  let h = session ? "#/sessions/" + encodeURIComponent(session) : "";
  if (session && endpoint) h += "/endpoints/" + encodeURIComponent(endpoint);
  if (location.hash !== h) history.replaceState(null, "", h || location.pathname);
  readHash();
  refresh();
}

function headers() {
  const t = localStorage.getItem("tcpstated-token") || "";
  return t ? { Authorization: "Bearer " + t } : {};
}

async function api(path) {
  const r = await fetch(path, { headers: headers(), cache: "no-store" });
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { const j = await r.json(); if (j.message) msg = j.message; } catch (e) { /* not JSON */ }
    const err = new Error(msg);
    err.status = r.status;
    throw err;
  }
  return r;
}

const lastPart = (name) => name.slice(name.lastIndexOf("/") + 1);

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const c of children) e.append(c);
  return e;
}

function stateBadge(name) {
  return el("span", { className: "state " + name, textContent: name });
}

function renderSessions(sessions, more) {
  const ul = $("sessions");
  ul.replaceChildren();
  for (const s of sessions) {
    const id = lastPart(s.name);
    const li = el("li", { title: s.name }, id,
      el("small", { textContent: `${s.endpointCount} endpoints · ${s.recordCount} records · clock ${s.clock}` }));
    li.dataset.session = id;
    if (id === view.session) li.className = "selected";
    li.onclick = () => setHash(id, "");
    ul.append(li);
  }
  if (more) ul.append(el("li", { className: "hint", textContent: "(more sessions not shown)" }));
  $("no-sessions").hidden = sessions.length > 0;
}

function renderSession(s, endpoints) {
  $("session-pane").hidden = false;
  $("diagram-pane").hidden = false;
  $("session-title").textContent = s.name;
  const o = s.options || {};
  $("session-facts").textContent =
    `clock ${s.clock} (${(o.clockMode || "").replace("CLOCK_MODE_", "")}) · ` +
    `${(o.isnMode || "").replace("ISN_MODE_", "")} ISNs · ${s.recordCount} log records` +
    (s.nextDeadline ? ` · next timer at ${s.nextDeadline}` : "");
  const body = $("endpoints").tBodies[0];
  body.replaceChildren();
  let shown = null;
  for (const ep of endpoints) {
    const id = lastPart(ep.name);
    const tr = el("tr", {},
      el("td", { textContent: id }),
      el("td", { textContent: ep.kind.replace("ENDPOINT_KIND_", "").toLowerCase() }),
      el("td", {}, stateBadge(ep.stateName)),
      el("td", { textContent: ep.localAddress }),
      el("td", { textContent: ep.remoteAddress || "—" }));
    tr.dataset.endpoint = id;
    if (id === view.endpoint) { tr.className = "selected"; shown = ep; }
    tr.onclick = () => setHash(view.session, id);
    body.append(tr);
  }
  if (!shown && endpoints.length > 0 && !view.endpoint) {
    // Show the most interesting endpoint: the last connection, else the first.
    shown = [...endpoints].reverse().find((e) => e.kind === "ENDPOINT_KIND_CONNECTION") || endpoints[0];
    const row = body.querySelector(`tr[data-endpoint="${CSS.escape(lastPart(shown.name))}"]`);
    if (row) row.className = "selected";
  }
  renderEndpoint(shown);
}

// TCB variables in RFC 9293 order, then the rest.
const TCB_VARS = [
  ["SND.UNA", "sndUna"], ["SND.NXT", "sndNxt"], ["SND.WND", "sndWnd"], ["SND.WL1", "sndWl1"], ["SND.WL2", "sndWl2"],
  ["ISS", "iss"], ["RCV.NXT", "rcvNxt"], ["RCV.WND", "rcvWnd"], ["IRS", "irs"],
  ["snd wnd scale", "sndWndScale"], ["rcv wnd scale", "rcvWndScale"], ["MSS", "mss"],
  ["cwnd", "cwnd"], ["ssthresh", "ssthresh"], ["SRTT", "srtt"], ["RTTVAR", "rttvar"], ["RTO", "rto"],
  ["retransmissions", "retransmissions"], ["TS.Recent", "tsRecent"],
];

function renderEndpoint(ep) {
  $("endpoint").hidden = !ep;
  if (!ep) return;
  $("endpoint-title").textContent = ep.name;
  const st = $("endpoint-state");
  st.replaceChildren("state ", stateBadge(ep.stateName));
  if (ep.error) st.append(" — " + ep.error);
  const rows = [];
  const add = (k, v) => rows.push(el("tr", {}, el("th", { textContent: k }), el("td", { textContent: String(v) })));
  if (ep.tcb) {
    for (const [label, key] of TCB_VARS) {
      const v = ep.tcb[key];
      if (v !== undefined && v !== null) add(label, v);
    }
  }
  if (ep.listenerStats) {
    const q = ep.listenerStats;
    add("SYN queue", `${q.synQueueLength} of ${q.synQueueLimit}`);
    add("accept queue", `${q.acceptQueueLength} of ${q.acceptQueueLimit}`);
    add("accepted", q.accepted);
  }
  if (ep.kind === "ENDPOINT_KIND_CONNECTION") {
    add("bytes readable", ep.bytesReadable);
    add("bytes unsent", ep.bytesUnsent);
    add("bytes unacknowledged", ep.bytesUnacknowledged);
    add("FIN sent / received", `${ep.finSent} / ${ep.finReceived}`);
    if (ep.listener) add("listener", lastPart(ep.listener) + (ep.accepted ? " (accepted)" : " (not accepted)"));
  }
  for (const t of ep.timers || []) add("timer " + t.kind.replace("TIMER_KIND_", "").toLowerCase(), "fires at " + t.deadline);
  $("tcb").tBodies[0].replaceChildren(...rows);
}

async function renderDiagram(s) {
  const rel = $("relative").checked, opt = $("options").checked;
  const key = `${s.name} ${s.recordCount} ${rel} ${opt}`;
  if (key === view.diagramKey) return;
  const path = `/v1/${s.name}/diagram.svg?relative=${rel}&tcp_options=${opt}`;
  const blob = await (await api(path)).blob();
  const url = URL.createObjectURL(blob);
  const img = $("diagram");
  img.src = url;
  if (view.diagramURL) URL.revokeObjectURL(view.diagramURL);
  view.diagramURL = url;
  view.diagramKey = key;
  img.dataset.records = s.recordCount;
  $("pcap").href = `/v1/${s.name}/pcap`;
}

// The pcap link is fetched by script, so that it carries the token.
async function downloadPcap(ev) {
  ev.preventDefault();
  const a = ev.currentTarget;
  try {
    const blob = await (await api(a.getAttribute("href"))).blob();
    const url = URL.createObjectURL(blob);
    const tmp = el("a", { href: url, download: lastPart(a.getAttribute("href").replace(/\/pcap$/, "")) + ".pcap" });
    document.body.append(tmp);
    tmp.click();
    tmp.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) {
    $("status").textContent = e.message;
    $("status").className = "status error";
  }
}

let busy = false, again = false;
async function refresh() {
  if (busy) { again = true; return; }
  busy = true;
  const status = $("status");
  try {
    const list = await (await api("/v1/sessions?pageSize=200")).json();
    renderSessions(list.sessions || [], !!list.nextPageToken);
    if (view.session) {
      const name = "sessions/" + view.session;
      const [s, eps] = await Promise.all([
        api("/v1/" + name).then((r) => r.json()),
        api(`/v1/${name}/endpoints?pageSize=1000`).then((r) => r.json()),
      ]);
      renderSession(s.session, eps.endpoints || []);
      await renderDiagram(s.session);
    } else {
      $("session-pane").hidden = true;
      $("diagram-pane").hidden = true;
    }
    status.textContent = "updated " + new Date().toLocaleTimeString();
    status.className = "status";
  } catch (e) {
    status.textContent = e.message;
    status.className = "status error";
    if (e.status === 404 && view.session) setHash("", "");
  } finally {
    busy = false;
    if (again) { again = false; refresh(); }
  }
}

function start() {
  readHash();
  const token = $("token");
  token.value = localStorage.getItem("tcpstated-token") || "";
  token.onchange = () => { localStorage.setItem("tcpstated-token", token.value); view.diagramKey = ""; refresh(); };
  $("relative").onchange = $("options").onchange = () => refresh();
  $("pcap").onclick = downloadPcap;
  window.addEventListener("hashchange", () => { readHash(); refresh(); });
  const loop = async () => { await refresh(); setTimeout(loop, POLL_MS); };
  loop();
}

start();
