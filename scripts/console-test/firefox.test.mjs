// The console in Firefox: Debian's firefox-esr, headless, driven by puppeteer-core over WebDriver
// BiDi (stock Firefox; no patched build). A shorter walk than console.test.mjs (which Chromium
// runs): the JavaScript modules load, the login works, the table list, a Query and the cluster page
// show what the API holds. run.sh starts the node and sets BASE_URL, SHOAL_KEY_ID, SHOAL_SECRET and
// SCREENSHOT_DIR; console.test.mjs has already created the table ConsoleTest and its items.
import puppeteer from 'puppeteer-core';
import { mkdirSync } from 'node:fs';

const BASE = process.env.BASE_URL;
const ID = process.env.SHOAL_KEY_ID;
const SECRET = process.env.SHOAL_SECRET;
const SHOTS = process.env.SCREENSHOT_DIR || 'console-screenshots';
const TABLE = 'ConsoleTest';
if (!BASE || !ID || !SECRET) {
  console.error('BASE_URL, SHOAL_KEY_ID and SHOAL_SECRET must be set (run.sh sets them)');
  process.exit(2);
}
mkdirSync(SHOTS, { recursive: true });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const browser = await puppeteer.launch({
  browser: 'firefox',
  executablePath: process.env.FIREFOX || '/usr/bin/firefox-esr',
  headless: true,
});
const page = await browser.newPage();
await page.setViewport({ width: 1280, height: 900 });
const jsErrors = [];
page.on('pageerror', (e) => jsErrors.push(`page error: ${e.message}`));

async function text(sel) {
  return page.$eval(sel, (e) => e.textContent).catch(() => '');
}

async function waitText(sel, re, timeout = 15000) {
  const deadline = Date.now() + timeout;
  let t = '';
  while (Date.now() < deadline) {
    t = (await text(sel)) ?? '';
    if (re.test(t)) return t;
    await sleep(150);
  }
  throw new Error(`${sel}: expected ${re}, got ${JSON.stringify(t.slice(0, 300))}`);
}

async function fill(sel, value) {
  await page.$eval(sel, (e) => { e.value = ''; });
  await page.type(sel, value);
}

const shot = (name) => page.screenshot({ path: `${SHOTS}/firefox-${name}.png`, fullPage: true });

let passed = 0;
let failed = 0;
async function step(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   firefox: ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL firefox: ${name}\n     ${String(e.message || e).split('\n').join('\n     ')}`);
    await shot(`failed-${name.replace(/\W+/g, '-')}`).catch(() => {});
    throw e;
  }
}

try {
  await step('the modules load and the login form shows', async () => {
    await page.goto(`${BASE}/console`);
    await page.waitForSelector('#login-form', { timeout: 15000 });
  });

  await step('log in (SigV4 signed in Firefox)', async () => {
    await fill('#login-id', ID);
    await fill('#login-secret', SECRET);
    await page.click('#login-submit');
    await page.waitForSelector(`#tables tr[data-table="${TABLE}"]`, { timeout: 15000 });
    await waitText(`#tables tr[data-table="${TABLE}"]`, /ACTIVE/);
    await shot('tables');
  });

  await step('a Query finds the item', async () => {
    await page.click(`#tables tr[data-table="${TABLE}"] a`);
    await waitText('#ib-table', new RegExp(TABLE));
    await page.select('#ib-mode', 'Query');
    await fill('#ib-pk', 'user#1');
    await page.select('#ib-skop', 'begins_with');
    await fill('#ib-sk1', 'pro');
    await page.click('#ib-run');
    await waitText('#ib-info', /Page 1 · 1 item\b/);
    const color = await text('#items td[data-attr="color"]');
    if (color !== 'green' && color !== 'blue') throw new Error(`color ${JSON.stringify(color)}`);
    await shot('query');
  });

  await step('the cluster page lists the node', async () => {
    await page.click('#nav-cluster');
    await page.waitForSelector('#cluster-nodes tr[data-node]', { timeout: 15000 });
    await waitText('#cluster-groups', new RegExp(TABLE));
    await shot('cluster');
  });

  await step('no JavaScript errors', async () => {
    if (jsErrors.length) throw new Error(jsErrors.join('\n'));
  });
} catch {
  // reported by step()
} finally {
  await browser.close();
}
console.log(`console (firefox): ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
