// Line charts drawn as inline SVG.

const NS = 'http://www.w3.org/2000/svg';
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2',
  '#17becf', '#7f7f7f', '#bcbd22'];
const assigned = new Map();

/** A stable color per series name. */
export function color(name) {
  if (!assigned.has(name)) assigned.set(name, PALETTE[assigned.size % PALETTE.length]);
  return assigned.get(name);
}

function svg(tag, attrs, parent) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function fmt(v) {
  if (v == null || !Number.isFinite(v)) return '-';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
  if (a >= 1e3) return (v / 1e3).toFixed(1) + 'k';
  if (a >= 10) return v.toFixed(0);
  if (a >= 1) return v.toFixed(1);
  return v.toPrecision(2);
}

/**
 * A chart: {title, unit, span (seconds shown), series: [{name, label, dash, points: [[t ms, v|null]]}]}.
 * Returns a <figure> with the title, the SVG and a legend.
 */
export function lineChart({ title, unit = '', span = 180, series, id }) {
  const W = 560, H = 200, L = 48, R = 10, T = 10, B = 22;
  const fig = document.createElement('figure');
  fig.className = 'chart';
  if (id) fig.dataset.testid = id;
  const cap = document.createElement('figcaption');
  cap.textContent = title + (unit ? ` (${unit})` : '');
  fig.appendChild(cap);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title }, fig);
  const now = Date.now();
  const t0 = now - span * 1000;
  let max = 0;
  for (const s of series) for (const [, v] of s.points) if (v != null && v > max) max = v;
  const ymax = niceMax(max);
  const x = (t) => L + ((t - t0) / (now - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / ymax) * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const v = (ymax * i) / 4;
    svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }, root);
    svg('text', { x: L - 4, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, root).textContent = fmt(v);
  }
  for (const [t, label] of [[t0, `-${span}s`], [now, 'now']]) {
    svg('text', { x: x(t), y: H - 6, 'text-anchor': t === now ? 'end' : 'start', class: 'axis' }, root)
      .textContent = label;
  }
  const legend = document.createElement('div');
  legend.className = 'legend';
  for (const s of series) {
    const c = color(s.name);
    let d = '';
    let pen = false;
    for (const [t, v] of s.points) {
      if (v == null || t < t0) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    if (d) {
      svg('path', { d, fill: 'none', stroke: c, 'stroke-width': 1.8,
        'stroke-dasharray': s.dash ? '5 3' : 'none' }, root);
    }
    const last = [...s.points].reverse().find(([, v]) => v != null);
    const item = document.createElement('span');
    const sw = document.createElement('i');
    sw.style.borderColor = c;
    if (s.dash) sw.style.borderStyle = 'dashed';
    item.append(sw, `${s.label || s.name} ${last ? fmt(last[1]) : '-'}`);
    legend.appendChild(item);
  }
  if (!series.length) {
    svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'axis' }, root).textContent = 'no data yet';
  }
  fig.appendChild(legend);
  return fig;
}
