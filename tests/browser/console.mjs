// End-to-end test of the probe console in Debian's headless Chromium, driven by playwright-core.
//
//   node tests/browser/console.mjs <console url> <admin token> <node field>
//
// Logs in with the admin token, opens the node's app, waits for its live metrics and latency chart,
// presses Disable on the node's row, waits until the row shows the node off and the audit log shows
// the change, and saves a screenshot.
// tests/tests/console_browser.rs runs it; scripts/test.sh installs Chromium and playwright-core.
//
// Environment: PROBE_BROWSER_MODULES (folder holding node_modules/playwright-core; default
// target/browser), PROBE_SCREENSHOT (default target/console-disabled.png), PROBE_CHROMIUM (default
// /usr/bin/chromium).

import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const [url, token, node] = process.argv.slice(2);
if (!url || !token || !node) {
  console.error('usage: node tests/browser/console.mjs <console url> <admin token> <node field>');
  process.exit(2);
}
const modules = process.env.PROBE_BROWSER_MODULES || join(root, 'target', 'browser');
const screenshot = process.env.PROBE_SCREENSHOT || join(root, 'target', 'console-disabled.png');
const executablePath = process.env.PROBE_CHROMIUM || '/usr/bin/chromium';

let chromium;
try {
  ({ chromium } = createRequire(join(modules, 'package.json'))('playwright-core'));
} catch (err) {
  console.error(`console.mjs: playwright-core is not installed in ${modules}/node_modules; run scripts/test.sh (it runs npm ci there): ${err.message}`);
  process.exit(3);
}

const appkey = node.split('|')[0];
const row = `#nodes-table tr[data-node="${node}"]`;
const STEP_MS = 20000;
const problems = [];
const userDataDir = mkdtempSync(join(tmpdir(), 'probe-console-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  viewport: { width: 1440, height: 960 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function step(name, run) {
  const started = Date.now();
  await run();
  console.log(`console.mjs: ${name} (${Date.now() - started} ms)`);
}

try {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(STEP_MS);
  page.on('pageerror', (err) => problems.push(`uncaught error in the page: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|Uncaught/.test(msg.text())) problems.push(msg.text());
  });

  await step('login page shown', async () => {
    await page.goto(url);
    await page.locator('#login-view').waitFor({ state: 'visible' });
  });
  await step('logged in as admin', async () => {
    await page.fill('#login-token', token);
    await page.fill('#login-user', 'e2e');
    await page.click('#login-button');
    await page.locator('#main-view').waitFor({ state: 'visible' });
    await page.waitForSelector('#whoami[data-role="admin"]');
  });
  await step(`app ${appkey} opened`, async () => {
    await page.fill('#app-filter', appkey);
    await page.click(`#services-table button.app-link[data-app="${appkey}"]`);
    await page.waitForSelector(`${row}[data-valid="1"]`);
  });
  await step('live metrics shown', async () => {
    // Providers publish a window every 5 s; the page refreshes on every 2 s tick.
    await page.waitForFunction(
      (selector) => /\d/.test(document.querySelector(`${selector} [data-role="qps"]`)?.textContent ?? ''),
      row, { timeout: 20000 },
    );
  });
  await step('latency chart drawn', async () => {
    await page.click(`${row} button[data-action="chart"]`);
    await page.waitForSelector(`${row}.selected`);
    await page.waitForFunction(() => Number(document.querySelector('#latency-chart')?.dataset.windows) > 0);
  });
  await step('node disabled', async () => {
    await page.click(`${row} button[data-action="disable"]`);
    await page.waitForSelector(`${row}[data-valid="0"]`);
    await page.waitForFunction(
      (selector) => document.querySelector(`${selector} .badge[data-role="valid"]`)?.textContent === 'off',
      row,
    );
    await page.waitForSelector(`${row} button[data-action="enable"]`);
  });
  await step('change in the audit log', async () => {
    await page.waitForFunction((target) => [...document.querySelectorAll('#audit-table tbody tr')]
      .some((tr) => tr.dataset.action === 'disable' && tr.cells[3].textContent === target), node);
  });
  await step('live updates on', async () => {
    await page.waitForSelector('#live-status[data-mode="sse"]');
  });
  await page.screenshot({ path: screenshot });
  console.log(`console.mjs: screenshot ${screenshot}`);
  if (problems.length) throw new Error(`the page reported problems:\n${problems.join('\n')}`);
  console.log('console.mjs: ok');
} catch (err) {
  const failed = screenshot.replace(/\.png$/, '-failed.png');
  try {
    const page = context.pages()[0];
    if (page) await page.screenshot({ path: failed, fullPage: true });
    console.error(`console.mjs: screenshot of the failure: ${failed}`);
  } catch (_) { /* the browser is gone */ }
  console.error(`console.mjs: FAILED: ${err.stack || err}`);
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
