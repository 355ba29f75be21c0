// The item browser (Scan and Query with paging, on the table or an index) and the item editor.
import { ddb } from './api.js';
import { h, select, field, showError, notice, compact, errText } from './ui.js';

const TYPES = ['S', 'N', 'B', 'SS', 'NS', 'BS', 'M', 'L', 'NULL', 'BOOL'];
let saved = null; // the browser's form state, kept while the same table is shown

/** Problems with an item in DynamoDB JSON (empty when it looks right). */
export function checkItem(item, keys) {
  const problems = [];
  if (item == null || typeof item !== 'object' || Array.isArray(item)) {
    return ['The item must be a JSON object of attribute name to typed value, e.g. {"pk": {"S": "a"}}.'];
  }
  for (const [name, v] of Object.entries(item)) {
    const types = v && typeof v === 'object' && !Array.isArray(v) ? Object.keys(v) : [];
    if (types.length !== 1 || !TYPES.includes(types[0])) {
      problems.push(`Attribute "${name}": expected one type of ${TYPES.join(', ')}, e.g. {"S": "text"}.`);
    }
  }
  for (const k of keys) {
    const v = item[k.name];
    if (!v) problems.push(`Missing key attribute "${k.name}" (${k.type}).`);
    else if (!(k.type in v)) problems.push(`Key attribute "${k.name}" must be of type ${k.type}.`);
  }
  return problems;
}

function keysOf(schema, defs) {
  return (schema || []).map((k) => ({
    name: k.AttributeName,
    role: k.KeyType,
    type: (defs || []).find((d) => d.AttributeName === k.AttributeName)?.AttributeType || 'S',
  }));
}

const typed = (type, text) => ({ [type]: type === 'N' ? text.trim() : text });

export async function itemsView(ctx, tableName) {
  const { main } = ctx;
  const err = h('p', { id: 'ib-error', class: 'error', hidden: true });
  main.append(h('div', { class: 'bar' }, h('h2', {}, 'Table ', h('span', { id: 'ib-table' }, tableName)),
    h('a', { href: '#/tables', class: 'button secondary' }, 'All tables')), err);
  let table;
  try {
    table = (await ddb('DescribeTable', { TableName: tableName })).Table;
  } catch (e) {
    return showError(err, e);
  }
  if (!ctx.alive()) return;
  const defs = table.AttributeDefinitions;
  const tableKeys = keysOf(table.KeySchema, defs);
  const indexes = [
    ...(table.GlobalSecondaryIndexes || []).map((i) => ({ ...i, kind: 'GSI' })),
    ...(table.LocalSecondaryIndexes || []).map((i) => ({ ...i, kind: 'LSI' })),
  ];
  if (!saved || saved.table !== tableName) {
    saved = { table: tableName, mode: 'Scan', index: '', pks: {}, skop: '', sk1: '', sk2: '', limit: 25 };
  }
  const st = saved;
  let startKey = null;
  let nextKey = null;
  let page = 1;

  // -- the query form --
  const mode = select({ id: 'ib-mode' }, ['Scan', 'Query'], st.mode);
  const index = select({ id: 'ib-index' }, [['', `${tableName} (table)`],
    ...indexes.map((i) => [i.IndexName, `${i.IndexName} (${i.kind})`])], st.index);
  const skop = select({ id: 'ib-skop' }, [['', '(any)'], '=', '<', '<=', '>', '>=', 'begins_with', 'between'], st.skop);
  const sk1 = h('input', { id: 'ib-sk1', value: st.sk1 });
  const sk2 = h('input', { id: 'ib-sk2', value: st.sk2, placeholder: 'and' });
  const limit = h('input', { id: 'ib-limit', type: 'number', min: 1, max: 1000, value: st.limit });
  const skLabel = h('span');
  // One input per partition key attribute (an index key may have up to 4).
  const pkField = h('div', { class: 'row tight' });
  let pkInputs = [];
  const skField = h('div', { class: 'field' }, skLabel, h('div', { class: 'row tight' }, skop, sk1, sk2));
  const run = h('button', { type: 'submit', id: 'ib-run' }, 'Run');
  const form = h('form', { id: 'query-form', class: 'card' },
    h('div', { class: 'row' }, field('Operation', mode), field('On', index), pkField, skField, field('Limit', limit), run));

  const currentKeys = () => {
    const i = indexes.find((x) => x.IndexName === index.value);
    return keysOf(i ? i.KeySchema : table.KeySchema, defs);
  };
  const sync = () => {
    const keys = currentKeys();
    const q = mode.value === 'Query';
    const rk = keys.find((k) => k.role === 'RANGE');
    for (const [k, input] of pkInputs) st.pks[k.name] = input.value;
    pkInputs = keys.filter((k) => k.role === 'HASH').map((k, i) => [k,
      h('input', { id: i ? `ib-pk-${i}` : 'ib-pk', value: st.pks[k.name] || '', required: q })]);
    pkField.replaceChildren(...pkInputs.map(([k, input]) => field(`${k.name} = (${k.type})`, input)));
    pkField.hidden = !q;
    skField.hidden = !q || !rk;
    skLabel.textContent = rk ? `${rk.name} (${rk.type})` : 'Sort key';
    sk1.hidden = !skop.value;
    sk2.hidden = skop.value !== 'between';
  };
  mode.onchange = index.onchange = skop.onchange = sync;
  sync();

  // -- results --
  const results = h('div', { id: 'ib-results' });
  const first = h('button', { id: 'ib-first', type: 'button', disabled: true }, 'First page');
  const next = h('button', { id: 'ib-next', type: 'button', disabled: true }, 'Next page');
  const info = h('span', { id: 'ib-info', class: 'muted' });
  const newItem = h('button', { id: 'new-item', type: 'button' }, 'New item');
  const editorSlot = h('div');
  main.append(
    h('p', { class: 'muted' }, `Key: ${tableKeys.map((k) => `${k.name} (${k.role === 'HASH' ? 'partition' : 'sort'}, ${k.type})`).join(', ')} · about ${table.ItemCount ?? '-'} items · ${table.TableStatus}`),
    form, h('div', { class: 'bar' }, first, next, info, h('span', { class: 'spacer' }), newItem), results, editorSlot);

  function request() {
    const r = { TableName: tableName, Limit: Math.max(1, Number(limit.value) || 25) };
    if (index.value) r.IndexName = index.value;
    if (startKey) r.ExclusiveStartKey = startKey;
    if (mode.value === 'Query') {
      const keys = currentKeys();
      const rk = keys.find((k) => k.role === 'RANGE');
      r.ExpressionAttributeNames = {};
      r.ExpressionAttributeValues = {};
      const conds = pkInputs.map(([k, input], i) => {
        r.ExpressionAttributeNames[`#pk${i}`] = k.name;
        r.ExpressionAttributeValues[`:pk${i}`] = typed(k.type, input.value);
        return `#pk${i} = :pk${i}`;
      });
      let cond = conds.join(' AND ');
      if (rk && skop.value) {
        r.ExpressionAttributeNames['#sk'] = rk.name;
        r.ExpressionAttributeValues[':sk1'] = typed(rk.type, sk1.value);
        if (skop.value === 'begins_with') cond += ' AND begins_with(#sk, :sk1)';
        else if (skop.value === 'between') {
          r.ExpressionAttributeValues[':sk2'] = typed(rk.type, sk2.value);
          cond += ' AND #sk BETWEEN :sk1 AND :sk2';
        } else cond += ` AND #sk ${skop.value} :sk1`;
      }
      r.KeyConditionExpression = cond;
    }
    return r;
  }

  async function load() {
    for (const [k, input] of pkInputs) st.pks[k.name] = input.value;
    Object.assign(st, { mode: mode.value, index: index.value, skop: skop.value, sk1: sk1.value, sk2: sk2.value, limit: limit.value });
    showError(err, null);
    run.disabled = true;
    let res;
    try {
      res = await ddb(mode.value, request());
    } catch (e) {
      showError(err, e);
      return;
    } finally {
      run.disabled = false;
    }
    if (!ctx.alive()) return;
    nextKey = res.LastEvaluatedKey || null;
    next.disabled = !nextKey;
    first.disabled = page === 1;
    const items = res.Items || [];
    info.textContent = `Page ${page} · ${items.length} item${items.length === 1 ? '' : 's'} · ${res.ScannedCount ?? '-'} read${nextKey ? ' · more pages' : ''}`;
    results.replaceChildren(renderItems(items));
  }

  function renderItems(items) {
    if (!items.length) return h('p', { class: 'muted', id: 'items-empty' }, 'No items.');
    const cols = [...tableKeys.map((k) => k.name), ...currentKeys().map((k) => k.name)];
    for (const it of items) for (const k of Object.keys(it)) cols.push(k);
    const columns = [...new Set(cols)];
    return h('table', { id: 'items', class: 'grid items' },
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', {}, c)))),
      h('tbody', {}, items.map((it) => h('tr', { class: 'clickable', title: 'Click to edit', onclick: () => openExisting(it) },
        columns.map((c) => {
          const v = it[c];
          const text = v === undefined ? '' : compact(v);
          return h('td', { 'data-attr': c, title: v === undefined ? null : JSON.stringify(v) },
            text.length > 120 ? text.slice(0, 117) + '…' : text);
        })))));
  }

  const keyOf = (item) => Object.fromEntries(tableKeys.map((k) => [k.name, item[k.name]]));

  async function openExisting(it) {
    // Index results may lack attributes (projection): read the whole item from the table.
    try {
      const res = await ddb('GetItem', { TableName: tableName, Key: keyOf(it), ConsistentRead: true });
      if (!res.Item) return notice('That item no longer exists.', true);
      openEditor(res.Item);
    } catch (e) {
      notice(errText(e), true);
    }
  }

  function openEditor(original) {
    const blank = Object.fromEntries(tableKeys.map((k) => [k.name, { [k.type]: k.type === 'N' ? '0' : '' }]));
    const text = h('textarea', { id: 'item-json', rows: 14, spellcheck: 'false' });
    text.value = JSON.stringify(original || blank, null, 2);
    const ierr = h('pre', { id: 'item-error', class: 'error', hidden: true });
    const save = h('button', { id: 'item-save', type: 'button' }, original ? 'Save' : 'Create');
    const del = h('button', { id: 'item-delete', type: 'button', class: 'danger', hidden: !original }, 'Delete');
    const cancel = h('button', { id: 'item-cancel', type: 'button', class: 'secondary' }, 'Close');
    const editor = h('section', { id: 'item-editor', class: 'card' },
      h('h3', {}, original ? 'Edit item' : 'New item'),
      h('p', { class: 'muted' }, 'DynamoDB JSON, e.g. {"pk": {"S": "a"}, "n": {"N": "1"}}. Save replaces the whole item (PutItem).'),
      text, h('div', { class: 'row' }, save, del, cancel), ierr);
    const fail = (msg) => { ierr.textContent = msg; ierr.hidden = false; };
    cancel.onclick = () => editorSlot.replaceChildren();
    save.onclick = async () => {
      ierr.hidden = true;
      let item;
      try {
        item = JSON.parse(text.value);
      } catch (e) {
        return fail(`Invalid JSON: ${e.message}`);
      }
      const problems = checkItem(item, tableKeys);
      if (problems.length) return fail(problems.join('\n'));
      save.disabled = true;
      try {
        await ddb('PutItem', { TableName: tableName, Item: item });
      } catch (e) {
        return fail(errText(e));
      } finally {
        save.disabled = false;
      }
      const moved = original && JSON.stringify(keyOf(original)) !== JSON.stringify(keyOf(item));
      notice(moved ? 'The key changed: saved as a new item (the original is unchanged).' : 'Item saved.');
      editorSlot.replaceChildren();
      load();
    };
    del.onclick = async () => {
      if (del.dataset.confirm !== '1') {
        del.dataset.confirm = '1';
        del.textContent = 'Confirm delete';
        return;
      }
      try {
        await ddb('DeleteItem', { TableName: tableName, Key: keyOf(original) });
      } catch (e) {
        return fail(errText(e));
      }
      notice('Item deleted.');
      editorSlot.replaceChildren();
      load();
    };
    editorSlot.replaceChildren(editor);
    text.focus();
    text.setSelectionRange(0, 0);
    text.scrollTop = 0;
    editor.scrollIntoView({ block: 'nearest' });
  }

  form.addEventListener('submit', (ev) => { ev.preventDefault(); startKey = null; page = 1; load(); });
  next.onclick = () => { if (nextKey) { startKey = nextKey; page++; load(); } };
  first.onclick = () => { startKey = null; page = 1; load(); };
  newItem.onclick = () => openEditor(null);
  if (st.mode === 'Scan' || pkInputs.every(([, input]) => input.value)) load();
  else results.replaceChildren(h('p', { class: 'muted' }, 'Enter a partition key value and run the query.'));
}
