// The TCP connection state diagram of RFC 9293 §3.3.2 (Figure 5), drawn as
// SVG with one endpoint's current state filled and the transitions it took
// drawn thick and numbered in order. Transitions the figure does not show
// (a reset back to LISTEN or CLOSED, FIN-WAIT-1 straight to TIME-WAIT when
// a FIN acknowledges our FIN) are drawn dashed when taken.
"use strict";

const NS = "http://www.w3.org/2000/svg";
const W = 124, H = 28; // state box size

// Box centres; CLOSED appears twice, as in the RFC's figure.
const BOX = {
  "CLOSED": [280, 24],
  "LISTEN": [280, 104],
  "SYN-RECEIVED": [92, 196],
  "SYN-SENT": [468, 196],
  "ESTABLISHED": [280, 288],
  "FIN-WAIT-1": [92, 380],
  "CLOSE-WAIT": [468, 380],
  "FIN-WAIT-2": [72, 472],
  "CLOSING": [240, 472],
  "LAST-ACK": [468, 472],
  "TIME-WAIT": [156, 564],
  "CLOSED@end": [468, 564],
};

// Figure 5's transitions: from, to, the event and action as the RFC
// writes them, and an optional bend (control point offset) for curves.
const EDGES = [
  ["CLOSED", "LISTEN", "passive OPEN", "create TCB"],
  ["CLOSED", "SYN-SENT", "active OPEN", "create TCB, snd SYN", [26, -80]],
  ["LISTEN", "SYN-RECEIVED", "rcv SYN", "snd SYN,ACK"],
  ["LISTEN", "SYN-SENT", "SEND", "snd SYN"],
  ["SYN-SENT", "SYN-RECEIVED", "rcv SYN", "snd ACK"],
  ["SYN-RECEIVED", "ESTABLISHED", "rcv ACK of SYN", ""],
  ["SYN-SENT", "ESTABLISHED", "rcv SYN,ACK", "snd ACK"],
  ["SYN-RECEIVED", "FIN-WAIT-1", "CLOSE", "snd FIN"],
  ["ESTABLISHED", "FIN-WAIT-1", "CLOSE", "snd FIN"],
  ["ESTABLISHED", "CLOSE-WAIT", "rcv FIN", "snd ACK"],
  ["FIN-WAIT-1", "FIN-WAIT-2", "rcv ACK of FIN", ""],
  ["FIN-WAIT-1", "CLOSING", "rcv FIN", "snd ACK"],
  ["FIN-WAIT-2", "TIME-WAIT", "rcv FIN", "snd ACK"],
  ["CLOSING", "TIME-WAIT", "rcv ACK of FIN", ""],
  ["CLOSE-WAIT", "LAST-ACK", "CLOSE", "snd FIN"],
  ["LAST-ACK", "CLOSED@end", "rcv ACK of FIN", ""],
  ["TIME-WAIT", "CLOSED@end", "Timeout=2MSL", "delete TCB"],
  ["LISTEN", "CLOSED", "CLOSE", "delete TCB", [-120, -40]],
  ["SYN-SENT", "CLOSED", "CLOSE", "delete TCB", [186, -50]],
];

function node(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// clip moves from the centre (cx, cy) of a box towards (tx, ty) to the
// box's border.
function clip(cx, cy, tx, ty, pad) {
  const dx = tx - cx, dy = ty - cy;
  const s = Math.min(dx ? (W / 2 + pad) / Math.abs(dx) : Infinity, dy ? (H / 2 + pad) / Math.abs(dy) : Infinity);
  return [cx + dx * s, cy + dy * s];
}

// boxOf names the box a transition into or out of a state uses: CLOSED at
// the top for opening and for closing from LISTEN or SYN-SENT, at the
// bottom for the end of a connection.
function boxOf(state, other, into) {
  if (state !== "CLOSED") return state;
  if (!into) return "CLOSED";
  return other === "LISTEN" || other === "SYN-SENT" ? "CLOSED" : "CLOSED@end";
}

function edgePath(from, to, bend, off) {
  const [x1, y1] = BOX[from], [x2, y2] = BOX[to];
  let cxp = (x1 + x2) / 2, cyp = (y1 + y2) / 2;
  if (bend) { cxp += bend[0]; cyp += bend[1]; }
  if (off) { // an off-figure edge bows out so it does not hide a figure edge
    const dx = x2 - x1, dy = y2 - y1, n = Math.hypot(dx, dy) || 1;
    cxp += (-dy / n) * off; cyp += (dx / n) * off;
  }
  const curved = bend || off;
  const [sx, sy] = clip(x1, y1, curved ? cxp : x2, curved ? cyp : y2, 2);
  const [ex, ey] = clip(x2, y2, curved ? cxp : x1, curved ? cyp : y1, 6);
  const d = curved ? `M${sx} ${sy}Q${cxp} ${cyp} ${ex} ${ey}` : `M${sx} ${sy}L${ex} ${ey}`;
  // The label sits at the curve's middle.
  const mx = curved ? 0.25 * sx + 0.5 * cxp + 0.25 * ex : (sx + ex) / 2;
  const my = curved ? 0.25 * sy + 0.5 * cyp + 0.25 * ey : (sy + ey) / 2;
  return { d, mx, my };
}

// draw returns the diagram as an <svg> element. path is the endpoint's
// transitions in order ({from, to, cause}); current its state now.
export function draw(path, current, labels) {
  const svg = node("svg", {
    viewBox: "0 0 560 592", role: "img", "aria-labelledby": "fsm-title fsm-desc",
    "font-family": "system-ui, sans-serif", class: "fsm",
  });
  svg.append(node("title", { id: "fsm-title" }, labels.title), node("desc", { id: "fsm-desc" }, labels.desc));
  const defs = node("defs");
  for (const [id, color] of [["fsm-head", "#5b6472"], ["fsm-head-on", "#1f5fbf"]]) {
    const m = node("marker", { id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
    m.append(node("path", { d: "M0 0L10 5L0 10z", fill: color }));
    defs.append(m);
  }
  svg.append(defs);

  // Which edges the path took, and at which steps.
  const steps = new Map(); // "from>to" box key -> [step numbers]
  const extra = []; // taken transitions not in the figure
  path.forEach((tr, i) => {
    const from = boxOf(tr.from, tr.to, false), to = boxOf(tr.to, tr.from, true);
    const key = from + ">" + to;
    if (!EDGES.some((e) => e[0] === from && e[1] === to) && !extra.some((e) => e.key === key)) extra.push({ key, from, to, cause: tr.cause });
    if (!steps.has(key)) steps.set(key, []);
    steps.get(key).push(i + 1);
  });

  const edges = node("g", { class: "fsm-edges" });
  const texts = node("g", { class: "fsm-labels", "font-size": "10", "text-anchor": "middle" });
  const drawEdge = (from, to, ev, action, bend, off) => {
    const key = from + ">" + to;
    const on = steps.has(key);
    const { d, mx, my } = edgePath(from, to, bend, off);
    const p = node("path", {
      d, fill: "none", stroke: on ? "#1f5fbf" : "#5b6472", "stroke-width": on ? 3 : 1.2,
      "marker-end": `url(#${on ? "fsm-head-on" : "fsm-head"})`, class: on ? "taken" : "",
    });
    if (off) p.setAttribute("stroke-dasharray", "5 4");
    p.dataset.edge = key;
    edges.append(p);
    const lines = [ev, action].filter(Boolean);
    if (on) lines.unshift(steps.get(key).map((n) => "(" + n + ")").join(" "));
    lines.forEach((s, i) => {
      texts.append(node("text", {
        x: mx.toFixed(1), y: (my - (lines.length - 1) * 6 + i * 11 + 3).toFixed(1),
        fill: on ? "#174a94" : "#3d4450", "font-weight": on && i === 0 ? "bold" : "normal",
        stroke: "#ffffff", "stroke-width": 3, "paint-order": "stroke",
      }, s));
    });
  };
  for (const [from, to, ev, action, bend] of EDGES) drawEdge(from, to, ev, action, bend, 0);
  for (const e of extra) drawEdge(e.from, e.to, e.cause, labels.offFigure, null, 40);
  svg.append(edges);

  const boxes = node("g", { class: "fsm-states", "font-size": "12", "font-weight": "bold", "text-anchor": "middle" });
  const visited = new Set(path.flatMap((tr) => [boxOf(tr.from, tr.to, false), boxOf(tr.to, tr.from, true)]));
  const last = path.length ? boxOf(path[path.length - 1].to, path[path.length - 1].from, true) : (current === "CLOSED" ? "CLOSED" : current);
  for (const [name, [x, y]] of Object.entries(BOX)) {
    const state = name.replace("@end", "");
    const now = name === last && state === current;
    const g = node("g", { class: "fsm-state" + (now ? " current" : "") + (visited.has(name) ? " visited" : "") });
    g.dataset.state = state;
    g.append(node("rect", {
      x: x - W / 2, y: y - H / 2, width: W, height: H, rx: 6,
      fill: now ? "#1f5fbf" : visited.has(name) ? "#dbe7fa" : "#ffffff",
      stroke: now || visited.has(name) ? "#1f5fbf" : "#5b6472", "stroke-width": now ? 2.5 : 1.2,
    }));
    g.append(node("text", { x, y: y + 4, fill: now ? "#ffffff" : "#1d2430" }, state));
    boxes.append(g);
  }
  svg.append(texts, boxes);
  return svg;
}
