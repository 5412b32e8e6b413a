// End-to-end test of the probe console in Debian's headless Chromium, driven by playwright-core.
//
//   node tests/browser/console.mjs <console url> <admin token> <node field> <version>
//
// Logs in with the admin token, opens the node's app, waits for its live metrics and latency chart,
// presses Disable on the node's row, waits until the row shows the node off and the audit log shows
// the change, and saves a screenshot. Then opens the traffic rule of the node's service, types a
// rule with a bad share for <version> (the providers' version) and sees the problem at its line
// and column, fixes it, previews it (the disabled node gets 0%, the other 100%), applies it, and
// waits until the page shows that the one discovering client runs the new revision; applies a
// second revision and rolls back to the first (a third revision), the client following; saves a
// second screenshot (console-rules.png beside the first) and prints the revision in force. Last, opens
// the request-limits panel of the disabled node, applies limits with a bad value and sees the
// problem at its line and column, applies good ones to that node only, and waits until the nodes
// table shows them (its breaker `closed` in the one reporting client) and the audit log has the
// change; saves a third screenshot (console-limits.png) and prints the limits applied. Then sees
// in the apps table that the app has no credential, opens the caller-policy panel of the node's
// service, applies a policy allowing a bad appkey and sees the problem with the appkey it is about,
// applies a good one (the node's app allowed, unauthenticated callers counted) to every node,
// waits until the panel shows it on every node and the audit log has it, saves a fourth screenshot
// (console-callers.png) and prints the policy applied.
// tests/tests/console_browser.rs runs it; scripts/test.sh installs Chromium and playwright-core.
//
// The console is served over HTTPS with the test CA's certificate; the test runs node with a HOME
// whose NSS database (~/.pki/nssdb, Chromium's certificate store on Linux) trusts that CA, and this
// script checks the session cookie is Secure.
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
const [url, token, node, version] = process.argv.slice(2);
if (!url || !token || !node || !version) {
  console.error('usage: node tests/browser/console.mjs <console url> <admin token> <node field> <version>');
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

const [appkey, , service, ip, port] = node.split('|');
const nodeId = `${service}_${ip}_${port}`;
const rulesScreenshot = join(dirname(screenshot), 'console-rules.png');
const limitsScreenshot = join(dirname(screenshot), 'console-limits.png');
const callersScreenshot = join(dirname(screenshot), 'console-callers.png');
// Limits documents: one with concurrency 0 on line 3 (refused), and the good one.
const badLimits = '{\n  "qps": 500,\n  "concurrency": 0\n}\n';
const goodLimits = '{\n  "qps": 500,\n  "methods": { "ping": { "concurrency": 8 } }\n}\n';
const goodSummary = 'qps 500; ping: concurrency 8';
// A rule document with `share` for the providers' version, the share on line 3.
const ruleText = (share) => `{\n  "versions": [\n    { "version": ${JSON.stringify(version)}, "share": ${share} }\n  ]\n}\n`;
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
  await step('session cookie Secure over HTTPS', async () => {
    // The page came over HTTPS from a certificate the browser verified (the test CA is trusted in
    // its certificate store, no error ignored), and the login's cookie is Secure.
    if (!page.url().startsWith('https://')) throw new Error(`the console is not on HTTPS: ${page.url()}`);
    const session = (await context.cookies(url)).find((c) => c.name === 'probe_console_session');
    if (!session) throw new Error('no session cookie after login');
    if (!session.secure || !session.httpOnly || session.sameSite !== 'Strict') {
      throw new Error(`session cookie attributes: ${JSON.stringify({ ...session, value: '(hidden)' })}`);
    }
    console.log(`console.mjs: session cookie secure=${session.secure} httpOnly=${session.httpOnly} sameSite=${session.sameSite}`);
  });
  await step('no backend-down banner while all three answer', async () => {
    const health = await page.evaluate(async () => (await fetch('/api/health', { credentials: 'same-origin' })).json());
    if (!health.ok || health.backends.length !== 3) throw new Error(`/api/health: ${JSON.stringify(health)}`);
    if (await page.locator('#backends-banner').isVisible()) throw new Error('the backends banner shows with every backend up');
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

  const clients = '#rules-clients';
  await step(`rule panel of ${appkey}/${service} opened`, async () => {
    await page.click(`#services-table button.svc-link[data-app="${appkey}"][data-service="${service}"]`);
    await page.locator('#rules-section').waitFor({ state: 'visible' });
    // The test's discovering client reported at once: no rule yet, revision 0.
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === '1 of 1 clients on revision 0', clients);
  });
  await step('a bad share shown at its line and column', async () => {
    await page.fill('#rules-text', ruleText(120));
    await page.click('#rules-validate');
    const column = ruleText(120).split('\n')[2].indexOf('120') + 1;
    const problem = page.locator(`#rules-problems li[data-pointer="/versions/0/share"][data-line="3"][data-column="${column}"]`);
    await problem.waitFor();
    const shown = await problem.textContent();
    if (!shown.startsWith(`3:${column} /versions/0/share share 120 is not between 0 and 100`)) throw new Error(`problem shown as: ${shown}`);
    await page.waitForSelector('#rules-status[data-state="problems"]');
    // A click on the problem puts the caret on the bad value.
    await problem.click();
    const at = await page.evaluate(() => [document.activeElement.id, document.activeElement.selectionStart]);
    const expected = ruleText(120).indexOf('120');
    if (at[0] !== 'rules-text' || at[1] !== expected) throw new Error(`caret at ${at}, expected rules-text at ${expected}`);
  });
  await step('the fixed rule is valid', async () => {
    await page.fill('#rules-text', ruleText(100));
    await page.click('#rules-validate');
    await page.waitForSelector('#rules-status[data-state="ok"]');
    if ((await page.locator('#rules-problems li').count()) !== 0) throw new Error('problems left after the fix');
  });
  await step('preview shows the shares', async () => {
    await page.click('#rules-preview');
    await page.waitForSelector('#rules-nodes[data-previewed="true"]');
    const rows = await page.$$eval('#rules-nodes tbody tr', (trs) => trs.map((tr) =>
      [tr.dataset.id, tr.querySelector('[data-role="now"]').textContent, tr.querySelector('[data-role="new"]').textContent]));
    const victim = rows.find((r) => r[0] === nodeId);
    const others = rows.filter((r) => r[0] !== nodeId);
    if (!victim || victim[2] !== '0.0%' || others.length !== 1 || others[0][1] !== '100.0%' || others[0][2] !== '100.0%') {
      throw new Error(`unexpected preview: ${JSON.stringify(rows)}`);
    }
    console.log(`console.mjs: preview ${JSON.stringify(rows)}`);
  });
  let revision;
  await step('rule applied', async () => {
    await page.click('#rules-apply');
    await page.waitForSelector('#rules-status[data-state="applied"]');
    revision = await page.$eval('#rules-section', (s) => s.dataset.applied);
    console.log(`console.mjs: applied revision ${revision}`);
  });
  await step('every client on the new revision', async () => {
    await page.waitForFunction(([sel, text]) => document.querySelector(sel)?.textContent === text,
      [clients, `1 of 1 clients on revision ${revision}`]);
    await page.locator('#rules-lagging').waitFor({ state: 'hidden' });
    await page.waitForSelector(`#rules-history tbody tr[data-revision="${revision}"][data-current="true"]`);
  });
  await step('a second revision applied, then rolled back to the first', async () => {
    await page.fill('#rules-text', ruleText(100));
    await page.click('#rules-apply');
    await page.waitForFunction((before) => document.querySelector('#rules-section').dataset.applied !== before, revision);
    const second = await page.$eval('#rules-section', (s) => s.dataset.applied);
    await page.click(`#rules-history button[data-action="rollback"][data-revision="${revision}"]`);
    await page.waitForFunction((before) => document.querySelector('#rules-section').dataset.applied !== before, second);
    revision = await page.$eval('#rules-section', (s) => s.dataset.applied);
    await page.waitForSelector(`#rules-history tbody tr[data-revision="${revision}"][data-current="true"]`);
    await page.waitForFunction(([sel, text]) => document.querySelector(sel)?.textContent === text,
      [clients, `1 of 1 clients on revision ${revision}`]);
  });
  await step('rule changes in the audit log', async () => {
    await page.waitForFunction((target) => ['rule_set', 'rule_rollback'].every((action) =>
      [...document.querySelectorAll('#audit-table tbody tr')]
        .some((tr) => tr.dataset.action === action && tr.cells[3].textContent === target)), `${appkey}/${service}`);
  });
  console.log(`console.mjs: revision in force ${revision}`);
  await page.locator('#rules-section').screenshot({ path: rulesScreenshot });
  console.log(`console.mjs: screenshot ${rulesScreenshot}`);

  await step(`limits panel of ${nodeId} opened`, async () => {
    await page.click(`${row} button[data-action="limits"]`);
    await page.locator('#limits-section').waitFor({ state: 'visible' });
    await page.waitForSelector(`#limits-section[data-node="${node}"]`);
    await page.waitForFunction(() => document.querySelector('#limits-methods')?.textContent.includes('ping'));
    if ((await page.textContent('#limits-now')) !== 'now: none') throw new Error(`limits before: ${await page.textContent('#limits-now')}`);
  });
  await step('a bad limit shown at its line and column', async () => {
    await page.fill('#limits-text', badLimits);
    await page.selectOption('#limits-scope', 'node');
    await page.click('#limits-apply');
    const column = badLimits.split('\n')[2].indexOf('0') + 1;
    const problem = page.locator(`#limits-problems li[data-pointer="/concurrency"][data-line="3"][data-column="${column}"]`);
    await problem.waitFor();
    const shown = await problem.textContent();
    if (!shown.startsWith(`3:${column} /concurrency concurrency must be at least 1, not 0`)) throw new Error(`problem shown as: ${shown}`);
    await page.waitForSelector('#limits-status[data-state="problems"]');
    const cell = await page.textContent(`${row} [data-role="limits"]`);
    if (cell !== '–') throw new Error(`a refused document changed the limits cell: ${cell}`);
  });
  await step('good limits applied to the node', async () => {
    await page.fill('#limits-text', goodLimits);
    await page.click('#limits-apply');
    await page.waitForSelector(`#limits-status[data-state="applied"]`);
    const applied = await page.$eval('#limits-section', (s) => s.dataset.applied);
    if (applied !== goodSummary) throw new Error(`applied ${applied}, expected ${goodSummary}`);
    if ((await page.locator('#limits-problems li').count()) !== 0) throw new Error('problems left after the fix');
    await page.waitForFunction((summary) => document.querySelector('#limits-now')?.textContent === `now: ${summary}`, goodSummary);
  });
  await step('nodes table shows the limits and the breaker', async () => {
    await page.waitForFunction(([selector, summary]) =>
      document.querySelector(`${selector} [data-role="limits"]`)?.textContent === summary, [row, goodSummary]);
    // The one discovering client reports every node's breaker closed.
    await page.waitForFunction((selector) =>
      document.querySelector(`${selector} [data-role="breaker"]`)?.textContent === 'closed', row);
    const others = await page.$$eval('#nodes-table tbody tr', (trs) => trs.map((tr) =>
      [tr.dataset.node, tr.querySelector('[data-role="limits"]').textContent]));
    if (others.some(([n, cell]) => n !== node && cell !== '–')) throw new Error(`other nodes changed: ${JSON.stringify(others)}`);
  });
  await step('limits change in the audit log', async () => {
    await page.waitForFunction((target) => [...document.querySelectorAll('#audit-table tbody tr')]
      .some((tr) => tr.dataset.action === 'set_limits' && tr.cells[3].textContent === target
        && tr.cells[4].textContent === 'limits=none' && tr.cells[5].textContent.includes('"qps":500')), node);
  });
  await page.locator('#limits-section').screenshot({ path: limitsScreenshot });
  console.log(`console.mjs: screenshot ${limitsScreenshot}`);
  console.log(`console.mjs: limits applied ${goodSummary}`);

  const callersSummary = `allow ${appkey}; unauthenticated count`;
  await step('the apps table says the app has no credential', async () => {
    await page.waitForSelector(`#apps-table tr[data-appkey="${appkey}"] [data-role="credential"][data-state="none"]`);
  });
  await step(`caller panel of ${appkey}/${service} opened`, async () => {
    await page.click(`${row} button[data-action="callers"]`);
    await page.locator('#callers-section').waitFor({ state: 'visible' });
    await page.waitForSelector(`#callers-section[data-service="${service}"]`);
    await page.waitForFunction(() => document.querySelectorAll('#callers-nodes tbody tr').length === 2);
  });
  await step('a bad appkey shown with its problem', async () => {
    await page.selectOption('#callers-proven', 'listed');
    await page.fill('#callers-allow', `${appkey} bad-app`);
    await page.selectOption('#callers-unauthenticated', 'count');
    const sent = await page.textContent('#callers-document');
    const expected = JSON.stringify({ allow: [appkey, 'bad-app'], unauthenticated: 'count' });
    if (sent !== expected) throw new Error(`the form sends ${sent}, expected ${expected}`);
    await page.click('#callers-apply');
    const problem = page.locator('#callers-problems li[data-pointer="/allow/1"]');
    await problem.waitFor();
    const shown = await problem.textContent();
    if (!shown.startsWith('/allow/1 ("bad-app")') || !shown.includes('bad-app')) throw new Error(`problem shown as: ${shown}`);
    await page.waitForSelector('#callers-status[data-state="problems"]');
  });
  await step('a good policy applied to every node', async () => {
    await page.fill('#callers-allow', appkey);
    await page.click('#callers-apply');
    await page.waitForSelector('#callers-status[data-state="applied"]');
    const applied = await page.$eval('#callers-section', (s) => s.dataset.applied);
    if (applied !== callersSummary) throw new Error(`applied ${applied}, expected ${callersSummary}`);
    if ((await page.locator('#callers-problems li').count()) !== 0) throw new Error('problems left after the fix');
    await page.waitForFunction((summary) => {
      const cells = [...document.querySelectorAll('#callers-nodes [data-role="callers"]')];
      return cells.length === 2 && cells.every((c) => c.textContent === summary);
    }, callersSummary);
  });
  await step('caller policy change in the audit log', async () => {
    await page.waitForFunction((target) => [...document.querySelectorAll('#audit-table tbody tr')]
      .some((tr) => tr.dataset.action === 'set_callers' && tr.cells[3].textContent === target
        && tr.cells[4].textContent === 'callers=none' && tr.cells[5].textContent.includes('"unauthenticated":"count"')), node);
  });
  await page.locator('#callers-section').screenshot({ path: callersScreenshot });
  console.log(`console.mjs: screenshot ${callersScreenshot}`);
  console.log(`console.mjs: callers applied ${callersSummary}`);
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
