/**
 * An app page reloaded while its node is unreachable (issue 17, part 4), in
 * a real headless Chromium against a real `grid start` node: the page's
 * service worker (browser/apps/offline.js) kept the shell, start.json, the
 * host's files and the tab node's bundle; the tab node holds the replica in
 * IndexedDB. So the reload boots, renders the same state, takes an edit,
 * and once the node is back (restarted on the same address) the edit
 * reaches it. Screenshots land in test/output/.
 */
import test, { type ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './_helpers.js';
import { eventually, gridProcesses } from './_processes.js';

const { ok, startNode } = gridProcesses();
const CHROMIUM = process.env.GRID_CHROMIUM ?? '/usr/bin/chromium';
const OUTPUT = join(process.cwd(), 'test', 'output');
const inBrowser = `in headless Chromium${existsSync(CHROMIUM) ? '' : ` (skipped: no ${CHROMIUM})`}`;
// Without Chromium this skips, except under CI, where a missing Chromium is a failure (as in test/web.test.ts).
const maybe = existsSync(CHROMIUM) || process.env.CI ? test : test.skip;

const items = async (home: string) => (JSON.parse(await ok(home, ['doc', 'show', 'todo.read'])) as { items: Array<{ text: string }> }).items.map((item) => item.text);

maybe(`an app page reloads with its node unreachable: the same state renders from the tab's replica, an edit made offline shows, and reaches the node once it is back ${inBrowser}`, async (t: ExecutionContext) => {
  t.timeout(240_000); // a Chromium and a node started twice, on a machine the rest of the suite shares
  const home = await tempDir(t);
  await ok(home, ['init']);
  const node = await startNode(t, home);
  const [address] = (await ok(home, ['app', 'publish', 'examples/todo.js', '--merge', 'json', '--name', 'todo'])).split('\n');
  await ok(home, ['doc', 'apply', 'todo.write', '{"add":"from the command line"}']);

  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  t.teardown(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 900, height: 500 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => t.log(`page error: ${error.message}`));
  page.on('console', (message) => message.type() === 'error' && t.log(`console error: ${message.text()}`));

  await page.goto(address!);
  await page.waitForFunction('window.gridTab?.held()', null, { timeout: 60_000 });
  await page.waitForSelector('li:has-text("from the command line")', { timeout: 30_000 });
  const title = await page.textContent('#title');
  await page.fill('input[name=text]', 'added online');
  await page.click('text=add');
  t.deepEqual(await eventually(() => items(home), (texts) => texts.includes('added online'), 30_000), ['from the command line', 'added online']);

  // The worker controls the page and has kept its address, its start.json and the bundle, the shell with its policy.
  await page.waitForFunction('navigator.serviceWorker.controller !== null', null, { timeout: 30_000 });
  const kept = await page.waitForFunction(
    `(async () => {
      const cache = await caches.open('promisegrid-apps');
      const shell = await cache.match(location.pathname);
      const start = await cache.match(location.pathname + '/start.json');
      const joined = await cache.match('/tab/joined.js');
      return shell && start && joined && { csp: shell.headers.get('content-security-policy'), start: await start.json(), keys: (await cache.keys()).length };
    })()`,
    null,
    { timeout: 30_000 },
  );
  const { csp, start } = (await kept.jsonValue()) as { csp: string; start: { writable: boolean } };
  t.regex(csp, /(^|; )default-src 'none'/, 'the kept shell keeps its policy');
  t.regex(csp, /(^|; )connect-src 'self'(;|$)/);
  t.true(start.writable);

  // The node goes away and the browser goes offline; the page reloads.
  t.is(await node.stop(), 0);
  await context.setOffline(true);
  await page.reload();
  await page.waitForSelector('li:has-text("added online")', { timeout: 30_000 });
  t.deepEqual(await page.$$eval('li span', (spans) => spans.map((span) => span.textContent)), ['from the command line', 'added online'], 'the same state, from the replica');
  t.false(((await page.evaluate('window.gridTab.joined()')) as { connected: boolean }).connected, 'the node is not reachable');
  t.is(await page.textContent('#title'), title, "the app's title, from the kept start.json");

  await page.fill('input[name=text]', 'added offline');
  await page.click('text=add');
  await page.waitForSelector('li:has-text("added offline")', { timeout: 30_000 });
  t.is(await page.textContent('#status'), '', 'no refusal shown');
  await mkdir(OUTPUT, { recursive: true });
  const shot = join(OUTPUT, 'tab-offline.png');
  await page.screenshot({ path: shot });
  t.log(`screenshot: ${shot}`);

  // Back online, the node restarted on the same address (a home's node listens where it last did): the edit reaches it.
  await context.setOffline(false);
  const again = await startNode(t, home);
  t.is(new URL(again.url).port, new URL(node.url).port);
  t.deepEqual(await eventually(() => items(home), (texts) => texts.includes('added offline'), 60_000), ['from the command line', 'added online', 'added offline']);
});
