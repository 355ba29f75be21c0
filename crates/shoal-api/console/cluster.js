// The cluster page (GET /status) and the live charts (GET /metrics of each node).
import { status, metrics, getConfig } from './api.js';
import { h, select, showError, objTable, val, sizeFmt, durationFmt } from './ui.js';
import { parse, summarize, derive } from './metrics.js';
import { lineChart } from './charts.js';

const STATUS_EVERY = 5000;
const METRICS_EVERY = 3000;
const POINTS = 60;

const groupsOf = (s, id) => (s.groups || []).filter((g) => g.kind !== 'metadata' &&
  ((g.voters || []).includes(id) || (g.learners || []).includes(id)));

function lagOf(g) {
  if (!Array.isArray(g.lag) || !g.lag.length) return '-';
  const max = Math.max(...g.lag.map((l) => Number(l.behind) || 0));
  return h('span', { title: g.lag.map((l) => `node ${val(l.node)}: ${val(l.behind)} behind`).join('\n'),
    class: max > 0 ? 'warn' : '' }, String(max));
}

const scroll = (table) => h('div', { class: 'scroll' }, table);

function renderStatus(s) {
  const out = [];
  const scalars = Object.entries(s).filter(([, v]) => v == null || typeof v !== 'object');
  out.push(h('dl', { id: 'cluster-summary', class: 'summary' },
    scalars.map(([k, v]) => [h('dt', {}, k.replace(/_/g, ' ')), h('dd', { 'data-key': k, class: k === 'health' ? `status ${v}` : '' }, val(v))])));
  const nodes = Array.isArray(s.nodes) ? s.nodes : [];
  out.push(h('h3', {}, `Nodes (${nodes.length})`));
  out.push(scroll(objTable({ id: 'cluster-nodes', class: 'grid' }, nodes, [
    ['id', 'Node', (v) => h('span', { class: 'node-id' }, val(v), v === s.node_id ? h('small', {}, ' (this)') : null)],
    ['api_addr', 'API address'],
    ['cluster_addr', 'Cluster address'],
    ['state', 'State', (v) => h('span', { class: `status ${v}` }, val(v))],
    ['uptime_secs', 'Uptime', durationFmt],
    ['replicas', 'Replicas'],
    ['partitions', 'Partitions', (_, n) => String(groupsOf(s, n.id).length)],
    ['leads', 'Leader of', (_, n) => String((s.groups || []).filter((g) => g.leader === n.id).length)],
    ['dead_in_secs', 'Dead in', durationFmt],
    ['failure', 'Failure'],
    ['charts', 'Charts', (_, n) => h('a', { href: `#/charts/${encodeURIComponent(n.id)}` }, 'charts')],
  ], (n) => ({ 'data-node': n.id }))));
  if (Array.isArray(s.removed_nodes) && s.removed_nodes.length) {
    out.push(h('p', { class: 'muted' }, `Removed nodes: ${val(s.removed_nodes)}`));
  }
  const moves = Array.isArray(s.moves) ? s.moves : [];
  out.push(h('h3', {}, `Moves (${moves.length})`));
  out.push(moves.length
    ? objTable({ id: 'cluster-moves', class: 'grid' }, moves, [['group', 'Group'], ['adding', 'Adding'], ['removing', 'Removing']])
    : h('p', { id: 'cluster-moves', class: 'muted' }, 'No replica moves in progress.'));
  if (Array.isArray(s.under_replicated) && s.under_replicated.length) {
    out.push(h('p', { id: 'cluster-under', class: 'warn' }, `Under-replicated groups: ${val(s.under_replicated)}`));
  }
  const groups = Array.isArray(s.groups) ? s.groups : [];
  out.push(h('h3', {}, `Partition groups (${groups.length})`));
  out.push(scroll(objTable({ id: 'cluster-groups', class: 'grid' }, groups, [
    ['group', 'Group'],
    ['kind', 'Kind'],
    ['table', 'Table'],
    ['hash_range', 'Hash range', (v) => h('span', { class: 'mono' }, Array.isArray(v) ? v.join('–') : val(v))],
    ['epoch', 'Epoch'],
    ['leader', 'Leader'],
    ['term', 'Term'],
    ['voters', 'Voters'],
    ['learners', 'Learners'],
    ['replicas', 'Placed on'],
    ['commit', 'Commit'],
    ['applied', 'Applied'],
    ['lag', 'Lag (entries)', (_, g) => lagOf(g)],
    ['items', 'Items'],
    ['bytes', 'Size', (v) => (v == null ? '-' : sizeFmt(v))],
    ['catching_up', 'Catching up'],
  ], (g) => ({ 'data-group': g.group }))));
  return out;
}

export function clusterView(ctx) {
  const { main } = ctx;
  const err = h('p', { class: 'error', hidden: true, id: 'cluster-error' });
  const when = h('span', { class: 'muted' });
  const body = h('div', { id: 'cluster' });
  main.append(h('div', { class: 'bar' }, h('h2', {}, 'Cluster'), when), err, body);
  let timer;
  const tick = async () => {
    try {
      const s = await status();
      if (!ctx.alive()) return;
      showError(err, null);
      body.replaceChildren(...renderStatus(s));
      when.textContent = `updated ${new Date().toLocaleTimeString()} · every ${STATUS_EVERY / 1000}s`;
    } catch (e) {
      if (ctx.alive()) showError(err, e);
    }
    if (ctx.alive()) timer = setTimeout(tick, STATUS_EVERY);
  };
  ctx.onLeave(() => clearTimeout(timer));
  tick();
}

// ---- charts ----

// Per node key ("self" or "ip:port"): the last scrape and the derived points; kept across visits.
const history = new Map();
let knownNodes = null; // [{id, host, label}] from /status

async function loadNodes() {
  const cfg = getConfig();
  try {
    const s = await status();
    const self = s.node_id ?? cfg.node;
    // A node listening on every interface is reached at the console's host name.
    const addr = (a) => String(a).replace(/^(0\.0\.0\.0|\[::\])(?=:)/, location.hostname);
    knownNodes = (s.nodes || []).filter((n) => n.state !== 'removed' && n.api_addr).map((n) => ({
      id: String(n.id),
      host: n.id === self || addr(n.api_addr) === location.host ? null : addr(n.api_addr),
      label: `node ${n.id} (${n.api_addr})${n.id === self ? ', this node' : ''}`,
      up: n.state === 'up' || n.state == null,
    }));
  } catch (_) {
    knownNodes = null;
  }
  if (!knownNodes || !knownNodes.length) {
    knownNodes = [{ id: String(cfg.node ?? 'this'), host: null, label: 'this node', up: true }];
  }
  return knownNodes;
}

async function scrape(node) {
  const key = node.host || 'self';
  const hst = history.get(key) || { last: null, points: [], error: null };
  history.set(key, hst);
  try {
    const text = await metrics(node.host);
    const t = Date.now();
    const snap = summarize(parse(text));
    if (hst.last && t > hst.last.t) {
      hst.points.push({ t, d: derive(hst.last.snap, snap, (t - hst.last.t) / 1000) });
      if (hst.points.length > POINTS) hst.points.shift();
    }
    hst.last = { t, snap };
    hst.error = null;
  } catch (e) {
    hst.error = e;
    hst.points.push({ t: Date.now(), d: null }); // a gap in the lines
    if (hst.points.length > POINTS) hst.points.shift();
  }
}

const ms = (v) => (v == null ? null : v * 1000);

function tableSeries(points, pick, opts = {}) {
  const names = new Set();
  for (const p of points) if (p.d) for (const t of Object.keys(p.d.tables)) names.add(t);
  return [...names].sort().map((name) => ({
    name, ...opts, label: opts.suffix ? `${name} ${opts.suffix}` : name,
    points: points.map((p) => [p.t, p.d && p.d.tables[name] ? pick(p.d.tables[name]) : null]),
  }));
}

export async function chartsView(ctx, nodeId) {
  const { main } = ctx;
  const span = Math.round((POINTS * METRICS_EVERY) / 1000);
  const err = h('p', { class: 'error', hidden: true, id: 'charts-error' });
  const when = h('span', { class: 'muted', id: 'charts-updated' });
  const perTable = h('div', { class: 'charts', id: 'charts' });
  const perNode = h('div', { class: 'charts', id: 'charts-nodes' });
  const nodeErrors = h('ul', { class: 'error', id: 'charts-node-errors' });
  const picker = h('span');
  main.append(h('div', { class: 'bar' }, h('h2', {}, 'Charts'), picker, when), err,
    h('h3', { id: 'charts-title' }, 'Per table'), perTable, h('h3', {}, 'Per node'), perNode, nodeErrors);
  const nodes = await loadNodes();
  if (!ctx.alive()) return;
  const cfg = getConfig();
  const chosen = nodes.find((n) => n.id === nodeId) || nodes.find((n) => !n.host) || nodes[0];
  const sel = select({ id: 'chart-node' }, nodes.map((n) => [n.id, n.label]), chosen.id);
  sel.onchange = () => { location.hash = `#/charts/${encodeURIComponent(sel.value)}`; };
  picker.append(h('label', { class: 'inline' }, 'Node ', sel));
  main.querySelector('#charts-title').textContent = `Per table, on ${chosen.label}`;
  // The chosen node plus up to 9 others for the per-node charts.
  const polled = [chosen, ...nodes.filter((n) => n !== chosen && n.up).slice(0, 9)];

  const draw = () => {
    const hst = history.get(chosen.host || 'self') || { points: [] };
    showError(err, hst.error ? { type: hst.error.type, message: `${chosen.label}: ${hst.error.message}` } : null);
    const pts = hst.points;
    perTable.replaceChildren(
      lineChart({ id: 'chart-rps', title: 'Requests per second', unit: 'req/s', span, series: tableSeries(pts, (x) => x.rps) }),
      lineChart({ id: 'chart-errors', title: 'Errors per second', unit: 'err/s', span, series: tableSeries(pts, (x) => x.eps) }),
      lineChart({ id: 'chart-latency', title: 'Latency p50 (dashed) and p99', unit: 'ms', span,
        series: [...tableSeries(pts, (x) => ms(x.p50), { dash: true, suffix: 'p50' }),
          ...tableSeries(pts, (x) => ms(x.p99), { suffix: 'p99' })] }));
    const nodeSeries = (pick) => polled.map((n) => ({
      name: `node ${n.id}`,
      points: (history.get(n.host || 'self')?.points || []).map((p) => [p.t, p.d ? pick(p.d.total) : null]),
    }));
    perNode.replaceChildren(
      lineChart({ id: 'chart-node-rps', title: 'Requests per second', unit: 'req/s', span, series: nodeSeries((x) => x.rps) }),
      lineChart({ id: 'chart-node-errors', title: 'Errors per second', unit: 'err/s', span, series: nodeSeries((x) => x.eps) }),
      lineChart({ id: 'chart-node-latency', title: 'Latency p99', unit: 'ms', span, series: nodeSeries((x) => ms(x.p99)) }));
    nodeErrors.replaceChildren(...polled.filter((n) => n !== chosen && history.get(n.host || 'self')?.error)
      .map((n) => h('li', {}, `node ${n.id}: ${history.get(n.host).error}`)));
  };
  let timer;
  const tick = async () => {
    await Promise.all(polled.map(scrape));
    if (!ctx.alive()) return;
    draw();
    when.textContent = `updated ${new Date().toLocaleTimeString()} · every ${METRICS_EVERY / 1000}s · node ${cfg.node ?? '-'} serves this console`;
    timer = setTimeout(tick, METRICS_EVERY);
  };
  ctx.onLeave(() => clearTimeout(timer));
  draw();
  tick();
}
