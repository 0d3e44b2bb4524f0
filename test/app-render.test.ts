/**
 * The app renderer (browser/apps/render.js) and host loop (host.js) in a
 * real headless Chromium: hostile UI data renders inert or is refused
 * whole, events become the changes the view names, limits hold and the page
 * stays responsive; the host loop runs the todo app against a real kernel
 * (its document, its view in a vat) — a click or a form applies a change, a
 * version from elsewhere re-renders, a refusal shows as one line; the
 * examples' views render; and a real node serves the app shell under its
 * CSP. Screenshots land in test/output/.
 *
 * The host loop's session here is the test's: Playwright bindings to a
 * kernel in this process. In a real page the tab node gives it
 * (browser/apps/session.js); these tests check the loop and the renderer,
 * not that seam.
 */
import '../src/perimeter/lockdown.js';
import test, { type ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { openKernel, type Kernel } from '../src/index.js';
import type { GridValue } from '../src/closures/values.js';
import { readDoc, tempDir, valueOf } from './_helpers.js';
import { gridProcesses } from './_processes.js';

const { ok, startNode } = gridProcesses();
const CHROMIUM = process.env.GRID_CHROMIUM ?? '/usr/bin/chromium';
const OUTPUT = join(process.cwd(), 'test', 'output');
const APPS = new URL('../browser/apps/', import.meta.url);
/** The node's own CSP, for the pages that should run under it. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

let launched: Promise<Browser> | undefined;
const chromiumBrowser = () =>
  (launched ??= (async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: .ci/run installs Debian's chromium package (or set GRID_CHROMIUM)`);
    const { chromium } = await import('playwright-core');
    return chromium.launch({ executablePath: CHROMIUM, headless: true });
  })());
test.after.always(async () => {
  if (launched) await (await launched).close();
});

/**
 * A page at http://apps.test/ serving browser/apps/ and `files` (path → [type, body]),
 * with or without the node's CSP; dialogs are counted (none may open).
 */
const openPage = async (t: ExecutionContext, files: Record<string, [string, string]>, csp: boolean) => {
  const page = await (await chromiumBrowser()).newPage({ viewport: { width: 900, height: 700 } });
  t.teardown(() => page.close());
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  const dialogs: string[] = [];
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  await page.route('http://apps.test/**', async (route) => {
    const path = new URL(route.request().url()).pathname;
    const headers: Record<string, string> = csp ? { 'Content-Security-Policy': CSP } : {};
    if (files[path]) return route.fulfill({ status: 200, headers: { ...headers, 'Content-Type': files[path]![0] }, body: files[path]![1] });
    if (/^\/[a-z]+\.(js|css)$/.test(path) && existsSync(new URL(path.slice(1), APPS))) {
      return route.fulfill({ status: 200, headers: { ...headers, 'Content-Type': path.endsWith('.js') ? 'text/javascript' : 'text/css' }, body: await readFile(new URL(path.slice(1), APPS), 'utf8') });
    }
    return route.fulfill({ status: 404, body: 'no' });
  });
  await page.goto('http://apps.test/');
  return { page, problems, dialogs };
};

const BLANK: Record<string, [string, string]> = { '/': ['text/html', '<!doctype html><title>renderer</title><div id="root"></div>'] };

/**
 * Render `data` (built in the page by `build`, a function's source) and answer what happened: ok, or the refusal.
 * Page code is given as text: the test's own functions are compiled by tsx, whose `import()` the page would not have.
 */
const renderIn = (page: Page, build: string): Promise<string> =>
  page.evaluate(`(async () => {
    const { makeRenderer } = await import('/render.js');
    window.dispatched ??= [];
    window.renderer ??= makeRenderer(document.getElementById('root'), (change) => void window.dispatched.push(change));
    try {
      window.renderer.render((${build})());
      return 'ok';
    } catch (error) {
      return error.name + ': ' + error.message;
    }
  })()`);

const inBrowser = `in headless Chromium${existsSync(CHROMIUM) ? '' : ' (skipped: no Chromium)'}`;
const browserTest = existsSync(CHROMIUM) ? test : test.skip;

browserTest(`hostile view data renders as inert text or is refused whole; nothing runs, no dialog opens (${inBrowser})`, async (t) => {
  t.timeout(60_000);
  const { page, dialogs, problems } = await openPage(t, BLANK, false);
  const inert = [
    '<img src=x onerror="window.pwned=1">',
    '<script>window.pwned=1</script>',
    '"><svg onload=window.pwned=1>',
    'javascript:window.pwned=1',
    '{{constructor.constructor("window.pwned=1")()}}',
  ];
  // Hostile strings where text goes: shown as they are.
  t.is(await renderIn(page, `() => ['div', { class: 'x" onmouseover="window.pwned=1', title: '<img src=x onerror=window.pwned=1>' }, ...${JSON.stringify(inert)}.map((s) => ['p', {}, s]), ['textarea', { value: '</textarea><img src=x onerror=window.pwned=1>' }], ['button', { on: { click: '<img src=x onerror=window.pwned=1>' } }, 'go']]`), 'ok');
  t.deepEqual(await page.$$eval('#root p', (ps) => ps.map((p) => p.textContent)), inert);
  t.is(await page.$$eval('#root img, #root script, #root svg', (found) => found.length), 0, 'no element came from a string');
  t.is(await page.$eval('#root textarea', (area) => (area as HTMLTextAreaElement).value), '</textarea><img src=x onerror=window.pwned=1>');
  await page.click('#root button');
  t.deepEqual(await page.evaluate(() => (window as unknown as { dispatched: unknown[] }).dispatched), ['<img src=x onerror=window.pwned=1>'], 'a change is data, handed over as it is');

  // Hostile structure: refused whole, one line, and the page keeps what it showed.
  const refused: Array<[string, RegExp]> = [
    ["['script', {}, 'window.pwned=1']", /^RenderError: <script> is not an element a view may use$/],
    ["['img', { src: 'x', onerror: 'window.pwned=1' }]", /<img> is not an element/],
    ["['iframe', { srcdoc: '<script>window.pwned=1</script>' }]", /<iframe> is not an element/],
    ["['svg', {}, ['script', {}, 'window.pwned=1']]", /<svg> is not an element/],
    ["['div', { onclick: 'window.pwned=1' }, 'x']", /<div onclick> is not an attribute/],
    ["['div', { onClick: 'window.pwned=1' }, 'x']", /<div onClick> is not an attribute/],
    ["['div', { style: 'background:url(javascript:window.pwned=1)' }]", /<div style> is not an attribute/],
    ["['div', { id: 'getElementById' }]", /<div id> is not an attribute/],
    ["['form', { name: 'body' }]", /<form name> is not an attribute/],
    ["['form', { action: 'javascript:window.pwned=1' }]", /<form action> is not an attribute/],
    ["['a', { href: 'javascript:window.pwned=1' }, 'x']", /<a href> takes an http:, https: or mailto: address \(got "javascript:"\)/],
    ["['a', { href: ' JaVaScRiPt:window.pwned=1' }, 'x']", /got "javascript:"/],
    ["['a', { href: 'java\\tscript:window.pwned=1' }, 'x']", /got "javascript:"/],
    ["['a', { href: 'data:text/html,<script>window.pwned=1</script>' }, 'x']", /got "data:"/],
    ["['a', { href: '/relative' }, 'x']", /takes an absolute/],
    ["['input', { type: 'image', src: 'x' }]", /<input type="image"> is not allowed/],
    ["['button', { on: { click: () => { window.pwned = 1; } } }, 'x']", /a change is plain data \(got function\)/],
    ["['button', { on: { mouseover: {} } }, 'x']", /on\.mouseover>: a view names click, change or submit/],
    ["['div', {}, () => 1]", /a view node is text or a list \(got function\)/],
    ["['div', {}, new Date()]", /a view node is text or a list/],
    ["['div', Object.create({ onclick: 'window.pwned=1' })]", /attributes are a plain record/],
    ["['input', {}, 'child']", /<input> has no children/],
    ["(() => { const a = ['div', {}]; a.push(a); return a; })()", /the view refers to itself/],
  ];
  const shown = await page.$eval('#root', (root) => root.innerHTML);
  for (const [data, expected] of refused) {
    t.regex(await renderIn(page, `() => ${data}`), expected, data);
    t.is(await page.$eval('#root', (root) => root.innerHTML), shown, `the page kept what it showed: ${data}`);
  }
  // A __proto__ key in a change (as JSON.parse makes it) stays a key: no prototype changes.
  t.is(await renderIn(page, `() => ['button', { on: { click: JSON.parse('{"__proto__":{"polluted":1},"ok":1}') } }, 'proto']`), 'ok');
  await page.click('#root button');
  t.deepEqual(
    await page.evaluate(() => {
      const last = (window as unknown as { dispatched: Array<Record<string, unknown>> }).dispatched.at(-1)!;
      return { own: Object.keys(last), polluted: (last as { polluted?: unknown }).polluted ?? null, global: ({} as { polluted?: unknown }).polluted ?? null };
    }),
    { own: ['__proto__', 'ok'], polluted: null, global: null },
  );

  // The harness would see an injection: the same string through innerHTML runs at once.
  await page.evaluate(() => {
    const probe = document.createElement('div');
    probe.innerHTML = '<img src="x" onerror="window.control=1">';
    document.body.append(probe);
  });
  await page.waitForFunction(() => (window as unknown as { control?: number }).control === 1);
  t.is(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned ?? null), null, 'nothing the view held ran');
  t.deepEqual(dialogs, []);
  t.deepEqual(problems, []);
});

browserTest(`limits: deep, wide and long views are refused in one line and the page stays responsive (${inBrowser})`, async (t) => {
  t.timeout(60_000);
  const { page, problems } = await openPage(t, BLANK, false);
  t.is(await renderIn(page, "() => ['p', {}, 'before']"), 'ok');
  const cases: Array<[string, RegExp]> = [
    ["(() => { let v = 'deep'; for (let i = 0; i < 200000; i++) v = ['div', {}, v]; return v; })()", /^RenderError: the view is nested deeper than 64$/],
    ["(() => { let v = 'deep'; for (let i = 0; i < 200000; i++) v = [v]; return v; })()", /nested deeper than 64/],
    ["['ul', {}, Array.from({ length: 200000 }, (_, i) => ['li', {}, String(i)])]", /^RenderError: the view has more than 10000 nodes$/],
    ["['p', {}, 'x'.repeat(2000001)]", /more than 1000000 characters/],
    ["['p', { title: 'x'.repeat(5000) }]", /<p title> is longer than 4096 characters/],
    ["['button', { on: { click: (() => { let c = 1; for (let i = 0; i < 100; i++) c = [c]; return c; })() } }]", /a change is nested deeper than 16/],
    ["['button', { on: { click: Array.from({ length: 5000 }, () => 1) } }]", /the changes hold more than 1000 items/],
  ];
  for (const [data, expected] of cases) t.regex(await renderIn(page, `() => ${data}`), expected, data.slice(0, 60));
  t.is(await page.$eval('#root', (root) => root.textContent), 'before', 'what was shown stays');
  // Still responsive: a render right after, and the largest allowed view.
  t.is(await renderIn(page, "() => ['ul', {}, Array.from({ length: 4999 }, (_, i) => ['li', {}, String(i)])]"), 'ok');
  t.is(await page.$$eval('#root li', (items) => items.length), 4999);
  t.deepEqual(problems, []);
});

browserTest(`events become the changes the view names, a control's value and a form's values added (${inBrowser})`, async (t) => {
  t.timeout(60_000);
  const { page } = await openPage(t, BLANK, false);
  const view = `() => ['main', {},
    ['button', { on: { click: { add: 1 } } }, ['span', {}, 'inner']],
    ['button', { on: { click: 7 } }, 'seven'],
    ['input', { name: 'solo', on: { change: { set: true } } }],
    ['input', { type: 'checkbox', name: 'tick', on: { change: { tick: true } } }],
    ['form', { on: { submit: { say: true } } },
      ['input', { name: 'from', keep: true }], ['input', { name: 'text' }], ['textarea', { name: 'more' }],
      ['select', { name: 'pick' }, ['option', { value: 'a' }, 'A'], ['option', { value: 'b' }, 'B']],
      ['input', { type: 'checkbox', name: 'urgent', checked: true }],
      ['button', { type: 'submit' }, 'send']],
    ['a', { href: 'https://example.org/', on: { click: { visit: true } } }, 'link']]`;
  t.is(await renderIn(page, view), 'ok');
  await page.click('#root span');
  await page.click('text=seven');
  await page.fill('input[name=solo]', 'hello');
  await page.press('input[name=solo]', 'Tab');
  await page.check('input[name=tick]');
  await page.fill('input[name=from]', 'ann');
  await page.fill('input[name=text]', 'hi');
  await page.fill('textarea[name=more]', 'two\nlines');
  await page.selectOption('select[name=pick]', 'b');
  await page.click('text=send');
  await page.click('text=link');
  t.deepEqual(await page.evaluate(() => (window as unknown as { dispatched: unknown[] }).dispatched), [
    { add: 1 },
    7,
    { set: true, value: 'hello' },
    { tick: true, value: true },
    { say: true, form: { from: 'ann', text: 'hi', more: 'two\nlines', pick: 'b', urgent: true } },
    { visit: true },
  ]);
  t.is(page.url(), 'http://apps.test/', 'the submit and the link went nowhere');
  t.deepEqual(await page.$eval('#root form', (form) => Array.from(form.querySelectorAll('input, textarea')).map((c) => (c as HTMLInputElement).value)), ['ann', '', '', 'on'], 'the form was cleared but what the view keeps');
  t.is(await page.$eval('#root a', (a) => a.getAttribute('rel')), 'noopener noreferrer');
});

/** A home with the example apps published by the CLI, its kernel opened here. */
const appsHome = async (t: ExecutionContext) => {
  const home = await tempDir(t);
  await ok(home, ['init']);
  const publish = async (args: string[]) => JSON.parse(await ok(home, ['app', 'publish', ...args, '--json'])) as { write: string; read: string; view: string; doc: string };
  const apps = {
    todo: await publish(['examples/todo.js', '--merge', 'json']),
    chat: await publish(['examples/chat.js', '--merge', 'union']),
    text: await publish(['examples/text.js', '--merge', 'text']),
    counter: await publish(['examples/counter.js', 'examples/wasm/counter.wasm']),
  };
  const kernel = await openKernel({ home });
  t.teardown(() => kernel.close());
  return { kernel, apps };
};

/** The host loop's session over `kernel`, bound into `page`: what the tab node will give the page. */
const bindSession = async (page: Page, kernel: Kernel, app: { write: string; view: string; doc: string }) => {
  await page.exposeFunction('gridValue', async () => (valueOf(await kernel.docs.read(app.write)) as { value: GridValue }).value);
  await page.exposeFunction('gridView', async (state: GridValue) => valueOf(await kernel.call(app.view, [state])));
  await page.exposeFunction('gridApply', async (change: GridValue) => {
    const outcome = await kernel.docs.apply(app.write, change);
    if (outcome.status === 'revoked') throw new Error(outcome.reason);
  });
  let open = true;
  kernel.journal.onAppend((entry) => {
    if (open && entry.kind === 'doc-head' && entry.doc === app.doc) void page.evaluate(() => (window as unknown as { version?: () => void }).version?.()).catch(() => {});
  });
  return () => void (open = false);
};

const HOST_PAGE: Record<string, [string, string]> = {
  '/': ['text/html', '<!doctype html><title>app</title><link rel="stylesheet" href="/app.css"><header class="bar"><span id="title">todo</span><span id="status" role="status"></span></header><div id="app"></div><script type="module" src="/start.js"></script>'],
  '/start.js': [
    'text/javascript',
    `import { runApp } from './host.js';
const w = window;
const writable = new URLSearchParams(location.search).get('ro') === null;
w.applied = 0;
const session = {
  writable,
  value: () => w.gridValue(),
  view: (state) => w.gridView(state),
  apply: (change) => (w.applied += 1, w.gridApply(change)),
  subscribe: (onVersion) => ((w.version = onVersion), () => (w.version = undefined)),
};
w.started = runApp({ session, root: document.getElementById('app'), status: (text) => (document.getElementById('status').textContent = text) });`,
  ],
};

/** A page running the host loop (HOST_PAGE, under the node's CSP) over `app`'s document in `kernel`; `query` ?ro makes it read-only. */
const openHost = async (t: ExecutionContext, browser: Browser, kernel: Kernel, app: { write: string; view: string; doc: string }, query = '') => {
  const page = await browser.newPage({ viewport: { width: 900, height: 600 } });
  t.teardown(() => page.close());
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));
  const dialogs: string[] = [];
  page.on('dialog', (dialog) => void (dialogs.push(dialog.message()), dialog.dismiss()));
  t.teardown(await bindSession(page, kernel, app));
  await page.route('http://apps.test/**', async (route) => {
    const path = new URL(route.request().url()).pathname;
    const file = HOST_PAGE[path];
    const body = file ? file[1] : await readFile(new URL(path.slice(1), APPS), 'utf8');
    const type = file ? file[0] : path.endsWith('.css') ? 'text/css' : 'text/javascript';
    return route.fulfill({ status: 200, headers: { 'Content-Security-Policy': CSP, 'Content-Type': type }, body });
  });
  await page.goto(`http://apps.test/${query}`);
  return { page, problems, dialogs };
};

browserTest(`the host loop runs the todo app on a real kernel: form and clicks apply, a version from elsewhere re-renders, a refusal shows (${inBrowser})`, async (t) => {
  t.timeout(120_000);
  const [{ kernel, apps }, browser] = await Promise.all([appsHome(t), chromiumBrowser()]);
  const { page, problems } = await openHost(t, browser, kernel, apps.todo);
  await page.waitForSelector('text=Nothing to do.');

  await page.fill('input[name=text]', 'buy milk');
  await page.click('text=add');
  await page.waitForSelector('li:has-text("buy milk")');
  t.deepEqual(await readDoc(kernel, apps.todo.read), { items: [{ text: 'buy milk', done: false }] });
  t.is(await page.inputValue('input[name=text]'), '', 'the form was cleared once its change applied');

  // A version from elsewhere (as `grid doc apply` makes): re-rendered, and a half-typed entry is kept.
  await page.fill('input[name=text]', 'half typed');
  valueOf(await kernel.docs.apply(apps.todo.write, { add: 'eggs' }));
  await page.waitForSelector('li:has-text("eggs")');
  t.is(await page.inputValue('input[name=text]'), 'half typed');

  await page.click('li:has-text("buy milk") >> text=done');
  await page.waitForSelector('li.done:has-text("buy milk")');
  t.deepEqual(await readDoc(kernel, apps.todo.read), { items: [{ text: 'buy milk', done: true }, { text: 'eggs', done: false }] });

  // The reducer's refusal is one line in the status; the document and the list are unchanged.
  await page.fill('input[name=text]', 'x');
  await page.$eval('input[name=text]', (input) => ((input as HTMLInputElement).value = 'y'.repeat(201)));
  await page.click('text=add');
  await page.waitForSelector('#status:has-text("todo: an item\'s text is at most 200 characters (got 201)")');
  t.is(await page.$$eval('#app li', (items) => items.length), 2);
  t.is(((await readDoc(kernel, apps.todo.read)) as { items: unknown[] }).items.length, 2);
  await mkdir(OUTPUT, { recursive: true });
  await page.screenshot({ path: join(OUTPUT, 'app-todo.png') });

  // Read-only: the page renders, and no event reaches apply.
  const { page: reader } = await openHost(t, browser, kernel, apps.todo, '?ro');
  await reader.waitForSelector('li:has-text("eggs")');
  await reader.click('li:has-text("eggs") >> text=remove');
  t.is(await reader.evaluate(() => (window as unknown as { applied: number }).applied), 0);
  t.is(((await readDoc(kernel, apps.todo.read)) as { items: unknown[] }).items.length, 2);
  t.deepEqual(problems, []);
});

browserTest(`a hostile app is contained: it sees no window, document, fetch or storage, its HTML is text, its javascript: link is refused and the page keeps its last view (${inBrowser})`, async (t) => {
  t.timeout(120_000);
  const home = await tempDir(t);
  await ok(home, ['init']);
  const file = join(home, 'hostile.js');
  await writeFile(file, [
    'export const init = () => 0;',
    'export const update = (ctx, state, change) => state + 1;',
    "const reach = () => ['window', 'document', 'fetch', 'localStorage', 'XMLHttpRequest', 'WebSocket'].map((name) => `${name}: ${typeof globalThis[name]}`).join(', ');",
    'export const view = (ctx, state) => state === 0',
    "  ? ['div', {}, ['p', { class: 'reach' }, reach()], ['p', { class: 'html' }, '<img src=x onerror=\"window.pwned=1\">'], ['button', { on: { click: 1 } }, 'go']]",
    "  : ['a', { href: 'javascript:window.pwned=1' }, 'click me'];",
  ].join('\n'));
  const app = JSON.parse(await ok(home, ['app', 'publish', file, '--json'])) as { write: string; read: string; view: string; doc: string };
  const kernel = await openKernel({ home });
  t.teardown(() => kernel.close());
  const { page, problems, dialogs } = await openHost(t, await chromiumBrowser(), kernel, app);
  await page.waitForSelector('p.reach');
  t.is(await page.textContent('p.reach'), 'window: undefined, document: undefined, fetch: undefined, localStorage: undefined, XMLHttpRequest: undefined, WebSocket: undefined');
  t.is(await page.textContent('p.html'), '<img src=x onerror="window.pwned=1">');
  await page.click('text=go');
  await page.waitForSelector('#status:has-text("<a href> takes an http:, https: or mailto: address (got \\"javascript:\\")")');
  t.is(await readDoc(kernel, app.read), 1, 'the change applied; only its view was refused');
  t.is(await page.$$eval('#app a', (links) => links.length), 0);
  t.is(await page.textContent('p.html'), '<img src=x onerror="window.pwned=1">', 'the page keeps its last view');
  t.is(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned ?? null), null);
  t.deepEqual(dialogs, []);
  t.deepEqual(problems, []);
});

browserTest(`the examples' views (todo, chat, text, counter) render from their documents (${inBrowser})`, async (t) => {
  t.timeout(120_000);
  const [{ kernel, apps }, { page, problems }] = await Promise.all([appsHome(t), openPage(t, BLANK, true)]);
  valueOf(await kernel.docs.apply(apps.todo.write, { add: 'buy milk' }));
  valueOf(await kernel.docs.apply(apps.chat.write, { say: 'hello <b>there</b>', from: 'ann' }));
  valueOf(await kernel.docs.apply(apps.text.write, { set: true, value: 'Hello world' }));
  valueOf(await kernel.docs.apply(apps.counter.write, 3));
  const expected: Record<keyof typeof apps, string[]> = {
    todo: ['Todo', 'buy milk', '1 of 1 left'],
    chat: ['Chat', 'ann:', 'hello <b>there</b>'],
    text: ['Notes', '11 characters'],
    counter: ['Counter', '3'],
  };
  for (const name of Object.keys(apps) as Array<keyof typeof apps>) {
    const app = apps[name];
    const state = (valueOf(await kernel.docs.read(app.read)) as { value: GridValue }).value;
    const ui = valueOf(await kernel.call(app.view, [state]));
    const shown = await page.evaluate(`(async () => {
      const { makeRenderer } = await import('/render.js');
      const root = document.getElementById('root');
      makeRenderer(root, () => {}).render(${JSON.stringify(ui)});
      return root.innerText;
    })()`) as string;
    for (const text of expected[name]) t.true(shown.includes(text), `${name} shows ${JSON.stringify(text)}: ${shown}`);
    if (name === 'text') t.is(await page.$eval('#root textarea', (area) => (area as HTMLTextAreaElement).value), 'Hello world');
    await page.screenshot({ path: join(OUTPUT, `app-example-${name}.png`) });
  }
  t.deepEqual(problems, []);
});

browserTest(`a node serves the app shell under its CSP: the title from start.json, the app running in the page's tab node; the node's page links to it; a bad token gets one line (${inBrowser})`, async (t) => {
  t.timeout(120_000);
  const home = await tempDir(t);
  await ok(home, ['init']);
  const node = await startNode(t, home);
  const [address] = (await ok(home, ['app', 'publish', 'examples/todo.js', '--merge', 'json', '--title', 'Our <b>todo</b>'])).split('\n');
  const page = await (await chromiumBrowser()).newPage();
  t.teardown(() => page.close());
  const violations: string[] = [];
  page.on('console', (message) => /Content Security Policy/.test(message.text()) && violations.push(message.text()));
  await page.goto(address!);
  await page.waitForSelector('form input[name=text]', { timeout: 60_000 });
  t.is(await page.title(), 'Our <b>todo</b>');
  t.is(await page.textContent('#title'), 'Our <b>todo</b>', 'the title is text');
  t.deepEqual(violations, []);
  await mkdir(OUTPUT, { recursive: true });
  await page.screenshot({ path: join(OUTPUT, 'app-shell.png') });
  const origin = node.url.replace(/^ws:/, 'http:');
  // The node's page lists the app, a link to the same address.
  await page.goto((node as unknown as { web: string }).web);
  await page.waitForSelector('#apps a');
  t.deepEqual(await page.$$eval('#apps a', (links) => links.map((a) => [a.textContent, (a as HTMLAnchorElement).href])), [['Our <b>todo</b>', address]]);
  t.is(await page.textContent('#app-count'), '(1)');
  const refused = await page.goto(`${origin}/app/bafyreinosuchtokenaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa`);
  t.is(refused?.status(), 404);
  t.is((await page.textContent('body'))?.trim(), "grid: no app at this address: the token is unknown here, revoked, or not an app's");
});
