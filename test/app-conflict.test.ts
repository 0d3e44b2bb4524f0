/**
 * A conflict met for real and settled in the app page (issue 17, part 4),
 * in a real headless Chromium on a real `grid start` node: two browser
 * contexts (two tab nodes, two principals) open the todo app — one by its
 * write address, one by its admin address — and one goes offline. Its tab
 * keeps working on its replica: it removes an item the other marks done
 * meanwhile. Back online, sync brings the two edits together, the json
 * merge refuses (an item removed on one side, changed on the other), and
 * both pages show the conflict: its heads through the app's view and as
 * text, what the merge tried and why it refused. The write page says who
 * can settle; the admin page settles it with a click, on its tab's replica,
 * and the settlement reaches the node (`grid doc show`, `grid doc
 * conflicts`) and the other tab. The node's page (its API and in Chromium)
 * lists the two tabs as tab nodes, each linked to the app whose document
 * it syncs. Screenshots land in test/output/.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { BrowserContext, Page } from 'playwright-core';
import { tempDir } from './_helpers.js';
import { gridProcesses } from './_processes.js';

const { ok, startNode } = gridProcesses();
const CHROMIUM = process.env.GRID_CHROMIUM ?? '/usr/bin/chromium';
const OUTPUT = join(process.cwd(), 'test', 'output');
const inBrowser = `in headless Chromium${existsSync(CHROMIUM) ? '' : ` (skipped: no ${CHROMIUM})`}`;
// Without Chromium this skips, except under CI, where a missing Chromium is a failure (as in test/web.test.ts).
const maybe = existsSync(CHROMIUM) || process.env.CI ? test : test.skip;

/** An item's text that would run if it reached the page as HTML anywhere: in a head's preview, in its text, in a reason. */
const HOSTILE = '<img src=x onerror="window.pwned=1">';

type Tab = { principal: string; held(): boolean; joined(): { connected: boolean } };

const openApp = async (context: BrowserContext, address: string, problems: string[]): Promise<Page> => {
  const page = await context.newPage();
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('dialog', (dialog) => void (problems.push(`dialog: ${dialog.message()}`), dialog.dismiss()));
  await page.goto(address);
  // Running on the tab's own replica: what the offline edit needs.
  await page.waitForFunction(() => (window as unknown as { gridTab?: Tab }).gridTab?.held() === true, null, { timeout: 60_000 });
  await page.waitForSelector('text=Nothing to do.');
  return page;
};

const connected = (page: Page, yes: boolean) =>
  page.waitForFunction((want) => (window as unknown as { gridTab: Tab }).gridTab.joined().connected === want, yes, { timeout: 60_000 });

maybe(`a conflict made apart reaches both app pages, is shown with its heads and reasons, and is settled in the admin page; the node and the other tab take the settlement; the node's page lists both tab nodes (${inBrowser})`, async (t) => {
  t.timeout(300_000);
  const home = await tempDir(t);
  await ok(home, ['init']);
  const node = await startNode(t, home);
  const origin = node.url.replace(/^ws:/, 'http:');
  const app = JSON.parse(await ok(home, ['app', 'publish', 'examples/todo.js', '--merge', 'json', '--title', 'Todo', '--json'])) as Record<string, string>;
  t.is(app.settling, `${origin}/app/${app.settle}`, 'publish prints the address that settles');
  const show = async () => JSON.parse(await ok(home, ['doc', 'show', app.read!])) as unknown;
  const openConflicts = async () => (JSON.parse(await ok(home, ['doc', 'conflicts', app.read!, '--json'])) as { conflicts: Array<{ conflict: string; heads: string[] }> }).conflicts;

  const began = Date.now();
  const step = (what: string) => t.log(`${((Date.now() - began) / 1000).toFixed(1)} s: ${what}`);
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  t.teardown(() => browser.close());
  const problems: string[] = [];
  const [writer, settler] = [await browser.newContext({ viewport: { width: 1000, height: 900 } }), await browser.newContext({ viewport: { width: 1000, height: 900 } })];
  const a = await openApp(writer, app.app!, problems);
  const b = await openApp(settler, `${origin}/app/${app.admin}`, problems);
  t.not(await a.evaluate(() => (window as unknown as { gridTab: Tab }).gridTab.principal), await b.evaluate(() => (window as unknown as { gridTab: Tab }).gridTab.principal), 'two tab nodes, two principals');

  await a.fill('#app input[name=text]', HOSTILE);
  await a.click('#app >> text=add');
  await b.waitForSelector(`#app li:has-text(${JSON.stringify(HOSTILE)})`);

  step('both pages show the item');
  // A goes offline and keeps working on its replica: it removes the item; B, online, marks it done.
  await writer.setOffline(true);
  await connected(a, false);
  await a.click('#app li >> text=remove');
  await a.waitForSelector('text=Nothing to do.');
  await b.click('#app li >> text=done');
  await b.waitForSelector('#app li.done');
  for (let i = 0; i < 100 && !isDeepStrictEqual(await show(), { items: [{ text: HOSTILE, done: true }] }); i++) await new Promise((resolve) => setTimeout(resolve, 200));
  t.deepEqual(await show(), { items: [{ text: HOSTILE, done: true }] }, "the node has B's edit, not A's");

  step('the node has B\'s edit');
  // Back online: the edits meet, the json merge refuses, both pages show the conflict.
  await writer.setOffline(false);
  await connected(a, true);
  await a.waitForSelector('#conflicts article.conflict', { timeout: 60_000 });
  await b.waitForSelector('#conflicts article.conflict', { timeout: 60_000 });
  step('both pages show the conflict');
  const conflict = await b.getAttribute('#conflicts article.conflict', 'data-conflict');
  t.is(await a.getAttribute('#conflicts article.conflict', 'data-conflict'), conflict, 'the same conflict in both pages');
  const atNode = await openConflicts();
  t.deepEqual(atNode.map((c) => c.conflict), [conflict], 'the node met the same conflict: grid doc conflicts lists it');
  const heads = await b.$$eval('#conflicts .head', (cards) => cards.map((card) => (card as HTMLElement).dataset.version));
  t.deepEqual([...heads].sort(), [...atNode[0]!.heads].sort());

  for (const page of [a, b]) {
    t.regex((await page.textContent('#conflicts .attempts')) ?? '', /^step bafyrei\S+ refused: json merge: conflicting changes at \/items\/0$/, 'what the merge tried, and why it refused');
    // Each head through the app's view (inert) and as text; the hostile text is text everywhere.
    const previews = await page.$$eval('#conflicts .head .preview', (boxes) => boxes.map((box) => box.textContent ?? ''));
    t.true(previews.some((text) => text.includes('Nothing to do.')), 'the head with the item removed, as the app shows it');
    t.true(previews.some((text) => text.includes(HOSTILE) && text.includes('0 of 1 left')), 'the head with the item done, as the app shows it');
    t.true((await page.$$eval('#conflicts pre', (pres) => pres.map((pre) => pre.textContent ?? ''))).some((text) => text.includes(JSON.stringify(HOSTILE))), 'the value as text');
    t.is(await page.$$eval('#conflicts img, #conflicts script', (found) => found.length), 0);
    t.is(await page.$$eval('#conflicts .current', (found) => found.length), 1, 'the head this page shows now is marked');
  }
  // The write page cannot settle: no buttons, and it says who can.
  t.is(await a.$$eval('#conflicts button.pick, #conflicts button.keep', (buttons) => buttons.length), 0);
  t.true(((await a.textContent('#conflicts .who')) ?? '').includes(node.principal), "it names the owner of the node that holds the document");
  // A change waits for the conflict: refused in one line, nothing lost.
  await a.fill('#app input[name=text]', 'meanwhile');
  await a.click('#app >> text=add');
  await a.waitForSelector('#status:has-text("open conflict")');
  t.is(await b.$$eval('#conflicts button.pick', (buttons) => buttons.length), 2);
  // A preview is inert: it takes no clicks, and a click dispatched on its button anyway applies nothing.
  t.true(await b.$eval('#conflicts .preview', (box) => (box as HTMLElement).inert));
  await b.dispatchEvent('#conflicts .preview button:has-text("remove")', 'click');
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.deepEqual(await show(), { items: [{ text: HOSTILE, done: true }] });
  t.is(await b.$$eval('#conflicts article.conflict', (found) => found.length), 1);
  await mkdir(OUTPUT, { recursive: true });
  await a.screenshot({ path: join(OUTPUT, 'app-conflict-write.png'), fullPage: true });
  await b.screenshot({ path: join(OUTPUT, 'app-conflict-admin.png'), fullPage: true });

  step('screenshots taken');
  // B keeps the version with the item done: a settlement on its tab's replica, synced to the node and to A.
  const done = await b.$$eval('#conflicts .head', (cards) => cards.filter((card) => card.querySelector('pre')?.textContent?.includes('"done": true')).map((card) => (card as HTMLElement).dataset.version));
  t.is(done.length, 1);
  await b.click(`#conflicts .head[data-version="${done[0]}"] button.pick`);
  for (const page of [b, a]) {
    await page.waitForSelector('#conflicts', { state: 'hidden', timeout: 60_000 });
    await page.waitForSelector('#app li.done');
  }
  for (let i = 0; i < 100 && (await openConflicts()).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 200));
  step('both pages settled');
  t.deepEqual(await openConflicts(), [], 'settled at the node too');
  t.deepEqual(await show(), { items: [{ text: HOSTILE, done: true }] });
  // The conflict's promise is fulfilled: a call on it answers the settled value.
  t.deepEqual(JSON.parse(await ok(home, ['call', conflict!, '--json'])), { status: 'fulfilled', value: { version: JSON.parse(await ok(home, ['doc', 'show', app.read!, '--json'])).version, value: { items: [{ text: HOSTILE, done: true }] } } });
  // And edits go on.
  await a.fill('#app input[name=text]', 'after');
  await a.click('#app >> text=add');
  await b.waitForSelector('#app li:has-text("after")');
  await b.screenshot({ path: join(OUTPUT, 'app-conflict-settled.png'), fullPage: true });

  // A second conflict, made the same way, settled by keeping the value B's page shows now: its own edit.
  await writer.setOffline(true);
  await connected(a, false);
  await a.click('#app li:has-text("after") >> text=remove');
  await a.waitForSelector('#app li:has-text("after")', { state: 'detached' });
  await b.click('#app li:has-text("after") >> text=done');
  await b.waitForSelector('#app li.done:has-text("after")');
  await writer.setOffline(false);
  await b.waitForSelector('#conflicts article.conflict', { timeout: 60_000 });
  t.regex((await b.textContent('#conflicts .head.current .preview')) ?? '', /0 of 2 left/, "B's page shows its own edit now");
  await b.click('#conflicts button.keep');
  for (const page of [b, a]) {
    await page.waitForSelector('#conflicts', { state: 'hidden', timeout: 60_000 });
    await page.waitForSelector('#app li.done:has-text("after")');
  }
  const both = { items: [{ text: HOSTILE, done: true }, { text: 'after', done: true }] };
  for (let i = 0; i < 100 && !isDeepStrictEqual(await show(), both); i++) await new Promise((resolve) => setTimeout(resolve, 200));
  t.deepEqual(await show(), both, 'the value kept is the node\'s');
  step('the second conflict settled');
  for (const page of [a, b]) t.is(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned ?? null), null);

  // The node's page shows both tabs as tab nodes (not among the peers it dials), each syncing the app's document, linked to the app.
  const web = new URL((node as unknown as { web: string }).web);
  const api = async (path: string) => (await fetch(new URL(path, web), { headers: { 'X-Grid-Key': web.searchParams.get('key')! } })).json() as Promise<Record<string, unknown>>;
  const principals = await Promise.all([a, b].map((page) => page.evaluate(() => (window as unknown as { gridTab: Tab }).gridTab.principal)));
  const state = await api('/api/state');
  t.deepEqual(state.peers, [], 'the node dials no one');
  t.deepEqual(
    (state.tabs as Array<{ principal: string; docs: string[] }>).map((tab) => [tab.principal, tab.docs]).sort(),
    principals.map((principal) => [principal, [app.doc]]).sort(),
    'the tab nodes, each with the document it syncs',
  );
  const viewer = await (await browser.newContext()).newPage();
  await viewer.goto(web.href);
  await viewer.waitForSelector('#tabs a');
  t.is(await viewer.textContent('#tab-count'), '(2)');
  t.deepEqual(await viewer.$$eval('#tabs a', (links) => links.map((link) => [link.textContent, (link as HTMLAnchorElement).href])), [['Todo', app.app], ['Todo', app.app]]);
  const listed = await viewer.$$eval('#tabs li span[title]', (spans) => spans.map((span) => span.getAttribute('title')));
  t.deepEqual([...listed].sort(), [...principals].sort());
  // The graph draws the settlement (an edge to the settling version) and the documents list shows the app's.
  await viewer.waitForSelector('#docs button');
  t.notRegex((await viewer.textContent('#graph-note')) ?? '', /error/);
  await viewer.screenshot({ path: join(OUTPUT, 'node-page-tabs.png') });
  // A tab that closes is gone from the list.
  await writer.close();
  for (let i = 0; i < 50 && ((await api('/api/state')).tabs as unknown[]).length > 1; i++) await new Promise((resolve) => setTimeout(resolve, 200));
  t.deepEqual(((await api('/api/state')).tabs as Array<{ principal: string }>).map((tab) => tab.principal), [principals[1]]);
  await viewer.waitForFunction(() => document.getElementById('tab-count')?.textContent === '(1)', null, { timeout: 10_000 });
  t.deepEqual(problems, []);
});
