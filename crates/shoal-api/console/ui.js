// DOM helpers and value formatting shared by the pages. Text is always set as text (never HTML).

/** h('tag', {id, class, text, onclick, 'data-x', ...}, ...children) */
export function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'value') e.value = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  add(e, children);
  return e;
}

function add(e, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) add(e, c);
    else e.append(c instanceof Node ? c : String(c));
  }
}

/** A <select> of [value, label] (or plain value) options. */
export function select(attrs, options, selected) {
  return h('select', attrs, options.map((o) => {
    const [value, label] = Array.isArray(o) ? o : [o, o];
    return h('option', { value, selected: value === selected }, label);
  }));
}

/** A labelled form field. */
export const field = (label, input, cls) => h('label', { class: cls || 'field' }, h('span', {}, label), input);

/** `Type: message` of an error (ApiError or anything else). */
export function errText(e) {
  if (e && e.type) return `${e.type}: ${e.message}`;
  return String((e && e.message) || e);
}

/** Shows an error in `el` (or clears it with null). */
export function showError(el, e) {
  el.textContent = e ? errText(e) : '';
  el.hidden = !e;
}

let noticeTimer;
/** A short message in the banner under the header. */
export function notice(text, isError) {
  const n = document.getElementById('notice');
  n.textContent = text;
  n.className = isError ? 'error' : 'ok';
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { n.hidden = true; }, isError ? 15000 : 5000);
}

/** "-" for missing values, arrays joined. */
export function val(v) {
  if (v == null || v === '') return '-';
  if (Array.isArray(v)) return v.length ? v.map(val).join(', ') : '-';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function sizeFmt(n) {
  if (n == null || !Number.isFinite(Number(n))) return '-';
  n = Number(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

export function durationFmt(s) {
  if (s == null || !Number.isFinite(Number(s))) return '-';
  s = Number(s);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d`;
}

/** A compact one-line rendering of a DynamoDB attribute value. */
export function compact(av, nested) {
  if (av == null || typeof av !== 'object') return String(av);
  const [type] = Object.keys(av);
  const v = av[type];
  switch (type) {
    case 'S': return nested ? JSON.stringify(v) : v;
    case 'N': return v;
    case 'BOOL': return String(v);
    case 'NULL': return 'null';
    case 'B': return `b64:${v}`;
    case 'SS': return `{${v.map((s) => JSON.stringify(s)).join(', ')}}`;
    case 'NS': return `{${v.join(', ')}}`;
    case 'BS': return `{${v.map((b) => `b64:${b}`).join(', ')}}`;
    case 'L': return `[${v.map((x) => compact(x, true)).join(', ')}]`;
    case 'M': return `{${Object.entries(v).map(([k, x]) => `${k}: ${compact(x, true)}`).join(', ')}}`;
    default: return JSON.stringify(av);
  }
}

/** A table of rows with known columns [key, label, format?] first, then any other scalar keys. */
export function objTable(attrs, rows, columns, rowAttrs) {
  const known = new Set(columns.map((c) => c[0]));
  const extra = [];
  for (const r of rows) {
    for (const k of Object.keys(r || {})) {
      if (!known.has(k) && !extra.includes(k) && (r[k] == null || typeof r[k] !== 'object' || Array.isArray(r[k]))) {
        extra.push(k);
      }
    }
  }
  const cols = [...columns, ...extra.map((k) => [k, k])];
  return h('table', attrs,
    h('thead', {}, h('tr', {}, cols.map(([, label]) => h('th', {}, label)))),
    h('tbody', {}, rows.map((r) => h('tr', rowAttrs ? rowAttrs(r) : {},
      cols.map(([k, , f]) => {
        const out = f ? f(r[k], r) : val(r[k]);
        return h('td', { 'data-col': k }, out instanceof Node ? out : val(out));
      })))));
}
