// Browser test of the web console: headless Chromium (Debian's) driven by playwright-core.
// run.sh starts a node and sets BASE_URL, SHOAL_KEY_ID, SHOAL_SECRET and SCREENSHOT_DIR.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { sign } from '../../crates/shoal-api/console/sigv4.js';

const BASE = process.env.BASE_URL;
const ID = process.env.SHOAL_KEY_ID;
const SECRET = process.env.SHOAL_SECRET;
const REGION = process.env.SHOAL_REGION || 'us-east-1';
const SHOTS = process.env.SCREENSHOT_DIR || 'console-screenshots';
const TABLE = 'ConsoleTest';
if (!BASE || !ID || !SECRET) {
  console.error('BASE_URL, SHOAL_KEY_ID and SHOAL_SECRET must be set (run.sh sets them)');
  process.exit(2);
}
mkdirSync(SHOTS, { recursive: true });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A DynamoDB call signed by the console's own signer, from Node (checks what the UI did). */
async function ddb(op, params) {
  const url = new URL(BASE);
  const body = JSON.stringify(params);
  const headers = sign({ method: 'POST', host: url.host, path: '/', body, accessKeyId: ID, secret: SECRET, region: REGION,
    headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': `DynamoDB_20120810.${op}` } });
  const r = await fetch(`${url.origin}/`, { method: 'POST', headers, body });
  const text = await r.text();
  if (!r.ok) throw new Error(`${op}: ${r.status} ${text}`);
  return JSON.parse(text);
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const jsErrors = [];
page.on('pageerror', (e) => jsErrors.push(`page error: ${e.message}`));
page.on('console', (m) => {
  // Refused requests are logged by the browser as "Failed to load resource"; the test causes some.
  if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) jsErrors.push(`console: ${m.text()}`);
});

async function text(sel) {
  return (await page.locator(sel).first().textContent({ timeout: 1000 }).catch(() => null)) ?? '';
}

/** Waits until the text of `sel` matches `re`. */
async function waitText(sel, re, timeout = 15000) {
  const deadline = Date.now() + timeout;
  let t = '';
  while (Date.now() < deadline) {
    t = await text(sel);
    if (re.test(t)) return t;
    await sleep(150);
  }
  throw new Error(`${sel}: expected ${re}, got ${JSON.stringify(t.slice(0, 300))}`);
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

const shot = (name) => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });

let passed = 0;
let failed = 0;
async function step(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}\n     ${String(e.message || e).split('\n').join('\n     ')}`);
    await shot(`failed-${name.replace(/\W+/g, '-')}`).catch(() => {});
    throw e;
  }
}

async function fillEditor(json) {
  await page.fill('#item-json', typeof json === 'string' ? json : JSON.stringify(json, null, 2));
  await page.click('#item-save');
}

try {
  await step('the console loads and asks for a key', async () => {
    await page.goto(`${BASE}/console`);
    await page.waitForSelector('#login-form');
    check((await page.inputValue('#login-region')) === REGION, 'region not prefilled from config.json');
  });

  await step('a wrong secret is refused with the error shown', async () => {
    await page.fill('#login-id', ID);
    await page.fill('#login-secret', 'not-the-secret');
    await page.click('#login-submit');
    await waitText('#login-error', /InvalidSignatureException: .+/);
    await shot('login-error');
  });

  await step('log in', async () => {
    await page.fill('#login-secret', SECRET);
    await page.click('#login-submit');
    await page.waitForSelector('#tables');
    const stored = await page.evaluate(() => [sessionStorage.length, localStorage.length]);
    check(stored[0] === 1 && stored[1] === 0, `credentials must be in sessionStorage only: ${stored}`);
  });

  await step('create a table', async () => {
    await page.click('#create-table-link');
    await page.fill('#ct-name', TABLE);
    await page.fill('#ct-pk', 'pk');
    await page.fill('#ct-sk', 'sk');
    await page.selectOption('#ct-billing', 'PROVISIONED');
    check(await page.isVisible('#ct-rcu'), 'capacity fields shown for PROVISIONED');
    await page.selectOption('#ct-billing', 'PAY_PER_REQUEST');
    await page.click('#ct-submit');
    await page.waitForSelector(`#tables tr[data-table="${TABLE}"]`);
    await waitText(`#tables tr[data-table="${TABLE}"]`, /ACTIVE/, 30000);
    const row = await text(`#tables tr[data-table="${TABLE}"]`);
    check(row.includes(TABLE) && row.includes('pk (PK S)') && row.includes('sk (SK S)'), `table row: ${row}`);
    await shot('tables');
  });

  await step('the item editor shows JSON, type and server validation errors', async () => {
    await page.click(`#tables tr[data-table="${TABLE}"] a`);
    await waitText('#ib-table', new RegExp(TABLE));
    await page.click('#new-item');
    await page.waitForSelector('#item-editor');
    check((await page.inputValue('#item-json')).includes('"pk"'), 'new item prefilled with the key');
    await fillEditor('{"pk": {"S": "user#1"},');
    await waitText('#item-error', /Invalid JSON/);
    await fillEditor({ pk: { S: 'user#1' }, sk: { N: '1' } });
    await waitText('#item-error', /must be of type S/);
    await fillEditor({ pk: { S: 'user#1' }, sk: { S: 'profile' }, n: { N: 'not-a-number' } });
    await waitText('#item-error', /ValidationException: .+/);
    await shot('editor-error');
  });

  await step('create items through the editor', async () => {
    await fillEditor({ pk: { S: 'user#1' }, sk: { S: 'profile' }, color: { S: 'blue' }, visits: { N: '42' }, tags: { SS: ['a', 'b'] } });
    await page.waitForSelector('#item-editor', { state: 'detached' });
    for (const item of [{ pk: { S: 'user#1' }, sk: { S: 'zzz' }, color: { S: 'red' } },
      { pk: { S: 'user#2' }, sk: { S: 'profile' }, color: { S: 'black' } }]) {
      await page.click('#new-item');
      await fillEditor(item);
      await page.waitForSelector('#item-editor', { state: 'detached' });
    }
    await waitText('#ib-info', /3 items/);
  });

  await step('a Query finds the item', async () => {
    await page.selectOption('#ib-mode', 'Query');
    await page.fill('#ib-pk', 'user#1');
    await page.selectOption('#ib-skop', 'begins_with');
    await page.fill('#ib-sk1', 'pro');
    await page.click('#ib-run');
    await waitText('#ib-info', /Page 1 · 1 item\b/);
    check((await text('#items td[data-attr="color"]')) === 'blue', 'color is blue');
    check((await text('#items td[data-attr="visits"]')) === '42', 'visits is 42');
    check((await text('#items td[data-attr="tags"]')) === '{"a", "b"}', 'tags rendered as a set');
    await shot('query');
  });

  await step('edit the item and see the change', async () => {
    await page.click('#items tbody tr');
    await page.waitForSelector('#item-editor');
    const json = await page.inputValue('#item-json');
    check(json.includes('"blue"'), 'editor holds the item');
    await fillEditor(json.replace('"blue"', '"green"'));
    await page.waitForSelector('#item-editor', { state: 'detached' });
    await waitText('#items td[data-attr="color"]', /^green$/);
    const got = await ddb('GetItem', { TableName: TABLE, Key: { pk: { S: 'user#1' }, sk: { S: 'profile' } }, ConsistentRead: true });
    check(got.Item?.color?.S === 'green' && got.Item?.visits?.N === '42', `stored item: ${JSON.stringify(got.Item)}`);
    await shot('edited');
  });

  await step('Scan pages with LastEvaluatedKey', async () => {
    await page.selectOption('#ib-mode', 'Scan');
    await page.fill('#ib-limit', '1');
    await page.click('#ib-run');
    await waitText('#ib-info', /Page 1 · 1 item · .*more pages/);
    check(await page.isEnabled('#ib-next'), 'next page enabled');
    await page.click('#ib-next');
    await waitText('#ib-info', /Page 2 · 1 item/);
    await page.click('#ib-first');
    await waitText('#ib-info', /Page 1 · 1 item/);
  });

  await step('delete an item', async () => {
    await page.selectOption('#ib-mode', 'Query');
    await page.fill('#ib-limit', '25');
    await page.fill('#ib-pk', 'user#1');
    await page.selectOption('#ib-skop', '=');
    await page.fill('#ib-sk1', 'zzz');
    await page.click('#ib-run');
    await waitText('#items td[data-attr="color"]', /^red$/);
    await page.click('#items tbody tr');
    await page.click('#item-delete');
    await waitText('#item-delete', /Confirm/);
    await page.click('#item-delete');
    await page.waitForSelector('#items-empty');
    const got = await ddb('GetItem', { TableName: TABLE, Key: { pk: { S: 'user#1' }, sk: { S: 'zzz' } }, ConsistentRead: true });
    check(!got.Item, 'item deleted');
  });

  await step('the cluster page lists the nodes and partitions', async () => {
    await page.click('#nav-cluster');
    await page.waitForSelector('#cluster-nodes tr[data-node]');
    const status = await (await fetch(`${new URL(BASE).origin}/status`)).json().catch(() => null);
    const ids = (status?.nodes || []).map((n) => String(n.id));
    check(ids.length > 0, 'GET /status lists nodes');
    for (const id of ids) {
      const row = await text(`#cluster-nodes tr[data-node="${id}"]`);
      check(row.startsWith(id), `node ${id} row: ${row}`);
    }
    await waitText('#cluster-groups', new RegExp(TABLE));
    await waitText('#cluster-summary', /ok/);
    await shot('cluster');
  });

  await step('the charts page draws live metrics', async () => {
    await page.click('#nav-charts');
    await page.waitForSelector('#chart-node');
    // Some traffic for the charts while they poll.
    const until = Date.now() + 8000;
    let i = 0;
    while (Date.now() < until) {
      await ddb('PutItem', { TableName: TABLE, Item: { pk: { S: `load#${i % 5}` }, sk: { S: String(i) } } });
      i++;
      await sleep(50);
    }
    await waitText('[data-testid="chart-rps"] .legend', new RegExp(TABLE), 10000);
    await waitText('[data-testid="chart-latency"] .legend', new RegExp(`${TABLE} p99`), 10000);
    check(await page.locator('[data-testid="chart-rps"] svg path').count() > 0, 'a line is drawn');
    check(!(await page.isVisible('#charts-error')), `charts error: ${await text('#charts-error')}`);
    await shot('charts');
  });

  await step('reload keeps the page and the session', async () => {
    await page.reload();
    await page.waitForSelector('#chart-node');
    check(page.url().endsWith('#/charts'), `url ${page.url()}`);
  });

  await step('log out', async () => {
    await page.click('#logout');
    await page.waitForSelector('#login-form');
    check((await page.evaluate(() => sessionStorage.length)) === 0, 'credentials removed');
  });

  await step('no JavaScript errors', async () => {
    check(!jsErrors.length, jsErrors.join('\n'));
  });
} catch (_) {
  // reported by step()
} finally {
  await browser.close();
}
console.log(`console: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
