// Prometheus text format: parsing, and rates and latency percentiles between two scrapes.

/** Samples of a Prometheus text exposition: [{name, labels, value}]. */
export function parse(text) {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line[0] === '#') continue;
    const m = /^([A-Za-z_:][\w:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) {
      const re = /([A-Za-z_]\w*)\s*=\s*"((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[2]))) {
        labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
      }
    }
    const v = m[3];
    const value = v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v);
    out.push({ name: m[1], labels, value });
  }
  return out;
}

const blank = () => ({ req: 0, err: 0, count: 0, buckets: new Map() });

/** Cumulative counters per table and in total, from parsed samples. */
export function summarize(samples) {
  const snap = { tables: {}, total: blank(), node: null };
  const of = (labels) => {
    const t = labels.table || '(no table)';
    return (snap.tables[t] ||= blank());
  };
  for (const s of samples) {
    if (!Number.isFinite(s.value) && s.name !== 'shoal_node_info') continue;
    switch (s.name) {
      case 'shoal_requests_total':
        of(s.labels).req += s.value; snap.total.req += s.value; break;
      case 'shoal_request_errors_total':
        of(s.labels).err += s.value; snap.total.err += s.value; break;
      case 'shoal_request_duration_seconds_count':
        of(s.labels).count += s.value; snap.total.count += s.value; break;
      case 'shoal_request_duration_seconds_bucket': {
        const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
        if (Number.isNaN(le)) break;
        for (const b of [of(s.labels).buckets, snap.total.buckets]) b.set(le, (b.get(le) || 0) + s.value);
        break;
      }
      case 'shoal_node_info':
        snap.node = s.labels.node ?? null; break;
      default:
    }
  }
  return snap;
}

// A counter that went down was reset (the node restarted): count from zero.
const delta = (cur, prev) => (cur >= prev ? cur - prev : cur);

/** The q-quantile (0..1) of a histogram given as Map(le -> cumulative count); null if empty. */
export function quantile(q, buckets) {
  const les = [...buckets.keys()].sort((a, b) => a - b);
  if (!les.length) return null;
  const total = buckets.get(les[les.length - 1]);
  if (!(total > 0)) return null;
  const rank = q * total;
  let lower = 0, below = 0;
  for (const le of les) {
    const cum = buckets.get(le);
    if (cum >= rank) {
      if (le === Infinity) return lower; // past the last finite bound: the best we can say
      const inBucket = cum - below;
      return inBucket > 0 ? lower + (le - lower) * ((rank - below) / inBucket) : le;
    }
    lower = le;
    below = cum;
  }
  return lower;
}

function rates(cur, prev, dt) {
  const buckets = new Map();
  for (const [le, c] of cur.buckets) buckets.set(le, delta(c, prev ? prev.buckets.get(le) || 0 : 0));
  const p = prev || blank();
  return {
    rps: delta(cur.req, p.req) / dt,
    eps: delta(cur.err, p.err) / dt,
    p50: quantile(0.5, buckets),
    p99: quantile(0.99, buckets),
  };
}

/** Per-second rates and percentiles (seconds) between two summaries taken dt seconds apart. */
export function derive(prev, cur, dt) {
  const tables = {};
  for (const [t, c] of Object.entries(cur.tables)) tables[t] = rates(c, prev.tables[t], dt);
  return { tables, total: rates(cur.total, prev.total, dt) };
}
