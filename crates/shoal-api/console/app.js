// The console: login, routing, the table list and the table creator.
import { ddb, creds, setCreds, loadConfig, getConfig } from './api.js';
import { h, select, field, showError, notice, val, sizeFmt } from './ui.js';
import { itemsView } from './items.js';
import { clusterView, chartsView } from './cluster.js';

const main = document.getElementById('main');
let leave = [];
let generation = 0;

const routes = [
  [/^#\/tables$/, () => tablesView],
  [/^#\/create$/, () => createView],
  [/^#\/table\/(.+)$/, (m) => (ctx) => itemsView(ctx, decodeURIComponent(m[1]))],
  [/^#\/cluster$/, () => clusterView],
  [/^#\/charts(?:\/(.+))?$/, (m) => (ctx) => chartsView(ctx, m[1] ? decodeURIComponent(m[1]) : null)],
];

function route() {
  for (const f of leave) f();
  leave = [];
  const gen = ++generation;
  const ctx = {
    main,
    alive: () => gen === generation,
    onLeave: (f) => leave.push(f),
  };
  main.replaceChildren();
  const c = creds();
  document.getElementById('nav').hidden = !c;
  document.getElementById('logout').hidden = !c;
  document.getElementById('whoami').textContent = c ? `${c.id} · ${c.region}` : '';
  if (!c) return loginView(ctx);
  const hash = location.hash || '#/tables';
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', hash.startsWith(a.getAttribute('href')));
  }
  for (const [re, view] of routes) {
    const m = re.exec(hash);
    if (m) return view(m)(ctx);
  }
  location.hash = '#/tables';
}

function loginView() {
  const cfg = getConfig();
  const id = h('input', { id: 'login-id', name: 'id', required: true, autocomplete: 'username', spellcheck: 'false' });
  const secret = h('input', { id: 'login-secret', name: 'secret', type: 'password', required: true,
    autocomplete: 'current-password' });
  const region = h('input', { id: 'login-region', name: 'region', required: true, value: cfg.region || 'us-east-1' });
  const err = h('p', { id: 'login-error', class: 'error', hidden: true });
  const button = h('button', { type: 'submit', id: 'login-submit' }, 'Log in');
  const form = h('form', { id: 'login-form', class: 'card narrow' },
    h('h2', {}, 'Log in'),
    h('p', { class: 'muted' }, 'An access key of this cluster. Requests are signed in the browser; the key is kept in this tab only (session storage).'),
    field('Access key id', id), field('Secret access key', secret), field('Region', region), button, err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const c = { id: id.value.trim(), secret: secret.value, region: region.value.trim() };
    button.disabled = true;
    showError(err, null);
    try {
      await ddb('ListTables', { Limit: 1 }, c);
      setCreds(c);
      if (!location.hash || location.hash === '#/login') location.hash = '#/tables';
      else route();
    } catch (e) {
      showError(err, e);
    } finally {
      button.disabled = false;
    }
  });
  main.append(form);
  id.focus();
}

// ---- table list ----

let tablesStart = null; // ExclusiveStartTableName of the page shown
const PAGE = 50;

function keySchema(ks, defs) {
  const type = (n) => (defs || []).find((d) => d.AttributeName === n)?.AttributeType;
  return (ks || []).map((k) => `${k.AttributeName} (${k.KeyType === 'HASH' ? 'PK' : 'SK'}${type(k.AttributeName) ? ' ' + type(k.AttributeName) : ''})`).join(', ') || '-';
}

function indexes(t) {
  const g = (t.GlobalSecondaryIndexes || []).map((i) => `${i.IndexName} (GSI${i.IndexStatus && i.IndexStatus !== 'ACTIVE' ? ', ' + i.IndexStatus : ''})`);
  const l = (t.LocalSecondaryIndexes || []).map((i) => `${i.IndexName} (LSI)`);
  return [...g, ...l].join(', ') || '-';
}

async function tablesView(ctx) {
  const err = h('p', { class: 'error', hidden: true });
  const body = h('tbody');
  const next = h('button', { id: 'tables-next', disabled: true }, 'Next page');
  const first = h('button', { id: 'tables-first', disabled: !tablesStart }, 'First page');
  const info = h('span', { class: 'muted' });
  main.append(
    h('div', { class: 'bar' }, h('h2', {}, 'Tables'),
      h('a', { class: 'button', href: '#/create', id: 'create-table-link' }, 'Create table'),
      h('button', { onclick: () => route() }, 'Refresh')),
    err,
    h('table', { id: 'tables', class: 'grid' },
      h('thead', {}, h('tr', {}, ['Name', 'Status', 'Items', 'Size', 'Key schema', 'Indexes', 'Billing'].map((c) => h('th', {}, c)))),
      body),
    h('div', { class: 'pager' }, first, next, info));
  first.onclick = () => { tablesStart = null; route(); };
  let res;
  try {
    res = await ddb('ListTables', tablesStart ? { Limit: PAGE, ExclusiveStartTableName: tablesStart } : { Limit: PAGE });
  } catch (e) {
    return showError(err, e);
  }
  if (!ctx.alive()) return;
  const names = res.TableNames || [];
  info.textContent = names.length ? `${names.length} table${names.length > 1 ? 's' : ''} on this page` : '';
  if (!names.length) body.append(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No tables yet.')));
  if (res.LastEvaluatedTableName) {
    next.disabled = false;
    next.onclick = () => { tablesStart = res.LastEvaluatedTableName; route(); };
  }
  const rows = names.map((n) => {
    const cells = Array.from({ length: 6 }, () => h('td', { class: 'muted' }, '…'));
    const tr = h('tr', { 'data-table': n },
      h('td', {}, h('a', { href: `#/table/${encodeURIComponent(n)}`, class: 'table-name' }, n)), cells);
    body.append(tr);
    return [n, cells];
  });
  let pending = false;
  const queue = [...rows];
  const worker = async () => {
    for (let r = queue.shift(); r; r = queue.shift()) {
      const [n, cells] = r;
      try {
        const t = (await ddb('DescribeTable', { TableName: n })).Table || {};
        if (t.TableStatus !== 'ACTIVE' || (t.GlobalSecondaryIndexes || []).some((i) => i.IndexStatus !== 'ACTIVE')) pending = true;
        const out = [t.TableStatus, val(t.ItemCount), sizeFmt(t.TableSizeBytes),
          keySchema(t.KeySchema, t.AttributeDefinitions), indexes(t),
          t.BillingModeSummary?.BillingMode === 'PAY_PER_REQUEST' ? 'on demand'
            : `provisioned ${t.ProvisionedThroughput?.ReadCapacityUnits ?? '-'}/${t.ProvisionedThroughput?.WriteCapacityUnits ?? '-'}`];
        cells.forEach((c, i) => { c.textContent = val(out[i]); c.className = i === 0 ? `status ${String(out[0]).toLowerCase()}` : ''; });
      } catch (e) {
        cells[0].textContent = e.type || 'error';
        cells[0].title = String(e.message);
        cells[0].className = 'error';
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  // Tables or indexes still being created: look again shortly.
  if (pending && ctx.alive()) {
    const t = setTimeout(() => ctx.alive() && route(), 2000);
    ctx.onLeave(() => clearTimeout(t));
  }
}

// ---- table creator ----

function createView() {
  const types = [['S', 'String'], ['N', 'Number'], ['B', 'Binary']];
  const name = h('input', { id: 'ct-name', required: true, pattern: '[A-Za-z0-9_.\\-]{3,255}',
    title: '3-255 characters: letters, digits, _ - .' });
  const pk = h('input', { id: 'ct-pk', required: true });
  const pkType = select({ id: 'ct-pk-type' }, types, 'S');
  const sk = h('input', { id: 'ct-sk', placeholder: 'optional' });
  const skType = select({ id: 'ct-sk-type' }, types, 'S');
  const billing = select({ id: 'ct-billing' }, [['PAY_PER_REQUEST', 'On demand (PAY_PER_REQUEST)'], ['PROVISIONED', 'Provisioned']], 'PAY_PER_REQUEST');
  const rcu = h('input', { id: 'ct-rcu', type: 'number', min: 1, value: 5 });
  const wcu = h('input', { id: 'ct-wcu', type: 'number', min: 1, value: 5 });
  const prov = h('div', { class: 'row', hidden: true }, field('Read capacity units', rcu), field('Write capacity units', wcu));
  billing.onchange = () => { prov.hidden = billing.value !== 'PROVISIONED'; };
  const err = h('p', { id: 'ct-error', class: 'error', hidden: true });
  const submit = h('button', { type: 'submit', id: 'ct-submit' }, 'Create table');
  const form = h('form', { id: 'create-table-form', class: 'card' },
    h('h2', {}, 'Create table'),
    field('Table name', name),
    h('div', { class: 'row' }, field('Partition key', pk), field('Type', pkType)),
    h('div', { class: 'row' }, field('Sort key', sk), field('Type', skType)),
    field('Billing mode', billing), prov,
    h('div', { class: 'row' }, submit, h('a', { href: '#/tables', class: 'button secondary' }, 'Cancel')), err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const defs = [{ AttributeName: pk.value.trim(), AttributeType: pkType.value }];
    const ks = [{ AttributeName: pk.value.trim(), KeyType: 'HASH' }];
    if (sk.value.trim()) {
      defs.push({ AttributeName: sk.value.trim(), AttributeType: skType.value });
      ks.push({ AttributeName: sk.value.trim(), KeyType: 'RANGE' });
    }
    const req = { TableName: name.value.trim(), AttributeDefinitions: defs, KeySchema: ks, BillingMode: billing.value };
    if (billing.value === 'PROVISIONED') {
      req.ProvisionedThroughput = { ReadCapacityUnits: Number(rcu.value), WriteCapacityUnits: Number(wcu.value) };
    }
    submit.disabled = true;
    showError(err, null);
    try {
      await ddb('CreateTable', req);
      notice(`Table ${req.TableName} created.`);
      tablesStart = null;
      location.hash = '#/tables';
    } catch (e) {
      showError(err, e);
    } finally {
      submit.disabled = false;
    }
  });
  main.append(form);
  name.focus();
}

// ---- start ----

document.getElementById('logout').addEventListener('click', () => {
  setCreds(null);
  route();
});
window.addEventListener('hashchange', route);
if (location.pathname === '/console') history.replaceState(null, '', '/console/' + location.hash);
loadConfig().then(route);
