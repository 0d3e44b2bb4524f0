/**
 * Applications by URL, each page a tab node (issue 17), end to end: a real
 * `grid start` node, the todo app published with the real CLI, and pages in
 * headless Chromium — one browser context per person, so one tab node (one
 * IndexedDB, one key) each. Screenshots land in test/output/.
 */
import test, { type ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { tempDir } from './_helpers.js';
import { gridProcesses } from './_processes.js';

const { grid, ok, startNode } = gridProcesses();
const CHROMIUM = process.env.GRID_CHROMIUM ?? '/usr/bin/chromium';
const OUTPUT = join(process.cwd(), 'test', 'output');
const inBrowser = `in headless Chromium${existsSync(CHROMIUM) ? '' : ` (skipped: no ${CHROMIUM})`}`;
// Without Chromium these skip, except under CI, where a missing Chromium is a failure (as in test/web.test.ts).
const maybe = existsSync(CHROMIUM) || process.env.CI ? test.serial : test.serial.skip;

const shared: Array<() => unknown> = [];
test.after.always(async () => {
  for (const fn of shared.splice(0).reverse()) await fn();
});
const fileScope = { teardown: (fn: () => unknown) => void shared.push(fn) } as unknown as ExecutionContext;

/** One node with the todo app, and one Chromium, for the file. */
let started: Promise<{ home: string; url: string; nodeUrl: string; browser: Browser }> | undefined;
const setUp = () =>
  (started ??= (async () => {
    const home = await tempDir(fileScope);
    await ok(home, ['init']);
    const node = (await startNode(fileScope, home)) as unknown as { url: string };
    const url = (await ok(home, ['app', 'publish', 'examples/todo.js', '--merge', 'json', '--name', 'todo'])).split('\n')[0]!.trim();
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    shared.push(() => browser.close());
    return { home, url, nodeUrl: node.url, browser };
  })());

interface Person {
  readonly context: BrowserContext;
  readonly page: Page;
}

/** A person: a fresh browser context (its own tab node) on the app's address, once the replica is here. */
const openApp = async (t: ExecutionContext, url: string): Promise<Person> => {
  const { browser } = await setUp();
  const context = await browser.newContext({ viewport: { width: 900, height: 500 } });
  t.teardown(() => context.close().catch(() => {}));
  const page = await context.newPage();
  page.on('pageerror', (error) => t.log(`page error: ${error.message}`));
  await page.goto(url);
  await page.waitForFunction(() => (window as unknown as { gridTab?: { held(): boolean } }).gridTab?.held() === true, null, { timeout: 60_000 });
  await page.waitForSelector('form input[name=text]', { timeout: 30_000 });
  return { context, page };
};

const add = async (page: Page, text: string) => {
  await page.fill('form input[name=text]', text);
  await page.click('form button[type=submit]');
};
const shows = (page: Page, text: string) => page.waitForFunction((wanted) => document.getElementById('app')?.textContent?.includes(wanted), text, { timeout: 30_000 });
const items = async (home: string) => ((JSON.parse(await ok(home, ['doc', 'show', 'todo', '--json'])) as { value: { items: Array<{ text: string }> } }).value.items.map((item) => item.text).sort());
const eventually = async <T>(probe: () => Promise<T>, done: (value: T) => boolean, ms = 30_000): Promise<T> => {
  const until = Date.now() + ms;
  let value = await probe();
  while (!done(value) && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    value = await probe();
  }
  return value;
};
const principalOf = (page: Page) => page.evaluate(() => (window as unknown as { gridTab: { principal: string } }).gridTab.principal);

maybe(`two people and the command line on one app: an edit in either page shows in the other and in grid doc show, and the reverse ${inBrowser}`, async (t) => {
  t.timeout(300_000);
  const { home, url } = await setUp();
  const alice = await openApp(t, url);
  const bob = await openApp(t, url);
  t.not(await principalOf(alice.page), await principalOf(bob.page), 'two contexts, two principals');
  await add(alice.page, 'milk');
  await shows(bob.page, 'milk');
  t.deepEqual(await eventually(() => items(home), (list) => list.includes('milk')), ['milk']);
  await ok(home, ['doc', 'apply', 'todo', '{"add":"bread"}']);
  await Promise.all([shows(alice.page, 'bread'), shows(bob.page, 'bread')]);
  await mkdir(OUTPUT, { recursive: true });
  await bob.page.screenshot({ path: join(OUTPUT, 'tab-app-two-people.png') });
  t.pass();
});

maybe(`cut off, a page keeps working on its replica; both people edit; back online, everyone converges ${inBrowser}`, async (t) => {
  t.timeout(300_000);
  const { home, url } = await setUp();
  const alice = await openApp(t, url);
  const bob = await openApp(t, url);
  await bob.context.setOffline(true);
  await bob.page.waitForFunction(() => (window as unknown as { gridTab: { joined(): { connected: boolean } } }).gridTab.joined().connected === false, null, { timeout: 30_000 });
  await add(bob.page, 'jam');
  await shows(bob.page, 'jam');
  await add(alice.page, 'eggs');
  await shows(alice.page, 'eggs');
  await bob.context.setOffline(false);
  await Promise.all([shows(alice.page, 'jam'), shows(bob.page, 'eggs')]);
  const list = await eventually(() => items(home), (found) => found.includes('jam') && found.includes('eggs'));
  t.true(list.includes('jam') && list.includes('eggs'), `the node has both: ${list.join(', ')}`);
});

maybe(`a reload keeps the page's principal and its state ${inBrowser}`, async (t) => {
  t.timeout(300_000);
  const { url } = await setUp();
  const carol = await openApp(t, url);
  const before = await principalOf(carol.page);
  await add(carol.page, 'tea');
  await shows(carol.page, 'tea');
  await carol.page.reload();
  await carol.page.waitForFunction(() => (window as unknown as { gridTab?: { held(): boolean } }).gridTab?.held() === true, null, { timeout: 60_000 });
  await shows(carol.page, 'tea');
  t.is(await principalOf(carol.page), before);
});

maybe(`a closure issued in a page is called from the command line and from another person's page while the page is open, and is unreachable once it closes ${inBrowser}`, async (t) => {
  t.timeout(300_000);
  const { home, url } = await setUp();
  const dave = await openApp(t, url);
  const token = await dave.page.evaluate(() =>
    (window as unknown as { gridTab: { issue(source: string, name: string): Promise<string> } }).gridTab.issue('export const hi = (ctx, name) => `hi ${name}, from a tab`;', 'hi'),
  );
  t.is((await ok(home, ['call', token, '"Ada"'])).trim(), '"hi Ada, from a tab"');
  // Another person's tab calls it too: tab → node → tab.
  const erin = await openApp(t, url);
  const fromErin = await erin.page.evaluate(
    (target) => (window as unknown as { gridTab: { kernel: { call(token: string, args: unknown[]): Promise<unknown> } } }).gridTab.kernel.call(target, ['Erin']),
    token,
  );
  t.deepEqual(fromErin, { status: 'fulfilled', value: 'hi Erin, from a tab' });
  await dave.context.close();
  const after = await eventually(() => grid(home, ['call', token, '"Bo"']), (result) => /unreachable/.test(result.stderr + result.stdout));
  t.not(after.code, 0);
  t.regex(after.stderr + after.stdout, /unreachable/);
});

maybe(`a page from another origin cannot open the node's WebSocket ${inBrowser}`, async (t) => {
  t.timeout(120_000);
  const { nodeUrl, browser } = await setUp();
  // Another site: a page on another port of this machine.
  const other = createServer((_request, response) => {
    response.writeHead(200, { 'Content-Type': 'text/html' });
    response.end('<!doctype html><title>elsewhere</title>');
  });
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  t.teardown(() => other.close());
  const context = await browser.newContext();
  t.teardown(() => context.close());
  const page = await context.newPage();
  await page.goto(`http://127.0.0.1:${(other.address() as { port: number }).port}/`);
  const socket = await page.evaluate(
    (target) =>
      new Promise<string>((resolve) => {
        const ws = new WebSocket(target);
        ws.onopen = () => resolve('open');
        ws.onerror = () => resolve('refused');
      }),
    nodeUrl,
  );
  t.is(socket, 'refused');
});

maybe(`a hostile app runs in the tab's vats: it reaches no window, document, fetch or storage, its HTML is text, a view that never returns is stopped, and the page answers throughout ${inBrowser}`, async (t) => {
  t.timeout(300_000);
  const { home } = await setUp();
  const file = join(home, 'hostile.js');
  await writeFile(file, [
    'export const init = () => 0;',
    'export const update = (ctx, state, change) => state + 1;',
    "const reach = () => ['window', 'document', 'fetch', 'localStorage', 'indexedDB', 'WebSocket', 'postMessage'].map((name) => `${name}: ${typeof globalThis[name]}`).join(', ');",
    'export const view = (ctx, state) => {',
    '  if (state === 1) for (;;) {}',
    "  return ['div', {}, ['p', { class: 'reach' }, reach()], ['p', { class: 'html' }, '<img src=x onerror=\"window.pwned=1\">'], ['button', { on: { click: 1 } }, 'loop']];",
    '};',
  ].join('\n'));
  const url = (await ok(home, ['app', 'publish', file, '--name', 'hostile'])).split('\n')[0]!.trim();
  const { browser } = await setUp();
  const context = await browser.newContext();
  t.teardown(() => context.close());
  const page = await context.newPage();
  const dialogs: string[] = [];
  page.on('dialog', (dialog) => void dialogs.push(dialog.message()));
  await page.goto(url);
  await page.waitForSelector('p.reach', { timeout: 60_000 });
  t.is(await page.textContent('p.reach'), 'window: undefined, document: undefined, fetch: undefined, localStorage: undefined, indexedDB: undefined, WebSocket: undefined, postMessage: undefined');
  t.is(await page.textContent('p.html'), '<img src=x onerror="window.pwned=1">');
  await page.click('text=loop');
  // While its vat spins, the page is the page's: it answers at once.
  const answered = Date.now();
  t.is(await page.evaluate(() => 1 + 1), 2);
  t.true(Date.now() - answered < 2000, 'the page answered while the view looped');
  await page.waitForSelector('#status:has-text("time limit")', { timeout: 60_000 });
  t.is(await page.textContent('p.html'), '<img src=x onerror="window.pwned=1">', 'the page keeps its last view');
  t.is(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned ?? null), null);
  t.deepEqual(dialogs, []);
  await mkdir(OUTPUT, { recursive: true });
  await page.screenshot({ path: join(OUTPUT, 'tab-app-hostile.png') });
});

maybe(`the chat and shared-text examples open by their addresses and run in a tab node ${inBrowser}`, async (t) => {
  t.timeout(300_000);
  const { home, browser } = await setUp();
  for (const [example, expected] of [['chat', 'Chat'], ['text', 'Notes']] as const) {
    const url = (await ok(home, ['app', 'publish', `examples/${example}.js`, '--name', example])).split('\n')[0]!.trim();
    const context = await browser.newContext();
    t.teardown(() => context.close());
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction((text) => document.getElementById('app')?.textContent?.includes(text), expected, { timeout: 60_000 });
    await page.screenshot({ path: join(OUTPUT, `tab-app-${example}.png`) });
    t.pass(`${example} renders`);
  }
});
