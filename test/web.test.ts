/**
 * The node's web page, from a real `grid start` process: what it refuses
 * (no key, a wrong key, a foreign Host, a non-loopback client, anything but
 * GET/HEAD, another site's WebSocket), and — in a real headless Chromium —
 * what it shows: the principal, the promise graph, a clicked node's record,
 * and new records arriving live. One test per property; most share one node
 * and one browser (see `graphNode`). Screenshots land in test/output/.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { request, type ClientRequest } from 'node:http';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { Browser, Page } from 'playwright-core';
import { http } from './_http.js';
import { tempDir } from './_helpers.js';
import { eventually, gridProcesses } from './_processes.js';

const { grid, ok, startNode } = gridProcesses();
const CHROMIUM = process.env.GRID_CHROMIUM ?? '/usr/bin/chromium';
const OUTPUT = join(process.cwd(), 'test', 'output');

/** Whether a WebSocket with this Origin is accepted (the node answers a refused upgrade with an HTTP status). */
const wsWithOrigin = (url: string, origin: string, host?: string) =>
  new Promise<string>((resolve) => {
    const socket = new WebSocket(url, { origin, ...(host ? { headers: { Host: host } } : {}) });
    socket.on('open', () => {
      socket.terminate();
      resolve('open');
    });
    socket.on('unexpected-response', (_req, res) => {
      resolve(`refused ${res.statusCode}`);
      socket.terminate();
    });
    socket.on('error', (error) => resolve(`error ${error.message}`));
  });

const webOf = (info: unknown) => {
  const web = (info as { web?: unknown }).web;
  if (typeof web !== 'string') throw new Error(`grid start --json printed no web address: ${JSON.stringify(info)}`);
  const url = new URL(web);
  return { web, origin: url.origin, key: url.searchParams.get('key') ?? '', port: url.port };
};

/** A home with a closure issued and called, a second one revoked: something to draw. */
const homeWithGraph = async (t: ExecutionContext) => {
  const [home, modules] = await Promise.all([tempDir(t), tempDir(t)]);
  const principal = await ok(home, ['init']);
  const file = join(modules, 'hello.js');
  await writeFile(file, 'export const greet = (ctx, name) => `${ctx.env.greeting}, ${name}`;\n');
  const hi = await ok(home, ['issue', file, '--export', 'greet', '--env', '{"greeting":"hi"}', '--name', 'hi']);
  const bye = await ok(home, ['issue', file, '--export', 'greet', '--env', '{"greeting":"bye"}', '--name', 'bye']);
  await ok(home, ['call', 'hi', '"Ada"']);
  await ok(home, ['call', 'hi', '"Bo"']);
  await ok(home, ['revoke', 'bye', '--reason', 'enough']);
  return { home, principal, hi, bye };
};

/**
 * One node for the tests below, started once: a home with a graph and its
 * `grid start` process (with Chromium, the slow part of this file). The tests
 * that share it run serially, in the order written: those that only read it
 * first, then those that call closures on it (which changes the counts the
 * graph shows), then the one that stops it.
 */
const shared: Array<() => unknown> = [];
/** Where the shared node's teardown goes: ava allows no `t.teardown` in hooks, so the file's last hook runs these. */
const fileScope = { teardown: (fn: () => unknown) => void shared.push(fn) } as unknown as ExecutionContext;
let started: Promise<Awaited<ReturnType<typeof homeWithGraph>> & { node: Awaited<ReturnType<typeof startNode>> } & ReturnType<typeof webOf>> | undefined;
const graphNode = () =>
  (started ??= (async () => {
    const graph = await homeWithGraph(fileScope);
    const node = await startNode(fileScope, graph.home);
    return { ...graph, node, ...webOf(node) };
  })());
test.after.always(async () => {
  for (const fn of shared.splice(0).reverse()) await fn();
});

test.serial('`grid start --json` and `grid web` print the page address, with a 192-bit key', async (t) => {
  const { home, web, key, port } = await graphNode();
  t.regex(key, /^[A-Za-z0-9_-]{32,}$/, 'a 192-bit key, base64url');
  t.is(web, `http://127.0.0.1:${port}/?key=${key}`);
  t.is(await ok(home, ['web']), web, '`grid web` prints the address again');
  t.is(JSON.parse(await ok(home, ['web', '--json'])).web, web);
});

test.serial('the page is served with no-store, a CSP without unsafe sources, nosniff, no framing and no CORS', async (t) => {
  const { web } = await graphNode();
  const page = await http(web);
  t.is(page.status, 200);
  t.regex(page.body, /<title>PromiseGrid node<\/title>/);
  t.is(page.headers['cache-control'], 'no-store');
  t.regex(String(page.headers['content-security-policy']), /default-src 'none'; script-src 'self';.*frame-ancestors 'none'/);
  t.false(String(page.headers['content-security-policy']).includes('unsafe'));
  t.is(page.headers['x-content-type-options'], 'nosniff');
  t.is(page.headers['x-frame-options'], 'DENY');
  t.is(page.headers['access-control-allow-origin'], undefined);
});

test.serial('without its key, the page and every API are refused in one line that shows nothing of the graph', async (t) => {
  const { origin, key, hi } = await graphNode();
  const wrongKey = key.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'));
  for (const [what, path, headers] of [
    ['the page without its key', '/', {}],
    ['the page with a wrong key', `/?key=${wrongKey}`, {}],
    ['the page with the key cut short', `/?key=${key.slice(0, -1)}`, {}],
    ['the API without a key', '/api/state', {}],
    ['the API with the key in the URL instead of the header', `/api/state?key=${key}`, {}],
    ['the API with a wrong key', '/api/graph', { 'X-Grid-Key': wrongKey }],
    ['the live stream without a key', '/api/live', {}],
    ['a record without a key', '/api/record?seq=0', {}],
  ] as const) {
    const reply = await http(origin, { path, headers });
    t.is(reply.status, 403, what);
    t.regex(reply.body, /^grid: [^\n]+\n$/, `${what}: one line`);
    t.false(reply.body.includes(hi), `${what}: nothing of the graph`);
  }
});

test.serial('with the key in X-Grid-Key the API answers, to 127.0.0.1 and to localhost', async (t) => {
  const { origin, key, port, principal, hi } = await graphNode();
  const auth = { 'X-Grid-Key': key };
  const state = await http(origin, { path: '/api/state', headers: auth });
  t.is(state.status, 200);
  t.is(JSON.parse(state.body).principal, principal);
  t.true(JSON.parse(state.body).tokens.some((token: { token: string }) => token.token === hi));
  t.is((await http(origin, { path: '/api/state', headers: { ...auth, Host: `localhost:${port}` } })).status, 200, 'localhost names this node too');
});

/** What a raw TCP connection to the node's port gets back for `text`. */
const raw = (port: string, text: string) =>
  new Promise<string>((resolve) => {
    let reply = '';
    const socket = connect(Number(port), '127.0.0.1', () => socket.end(text));
    socket.on('data', (chunk) => (reply += chunk));
    socket.on('close', () => resolve(reply));
    socket.on('error', () => resolve(reply));
  });

test.serial('a foreign Host, or none, is refused even with the key (DNS rebinding)', async (t) => {
  const { origin, key, port } = await graphNode();
  const auth = { 'X-Grid-Key': key };
  // evil.example resolving to 127.0.0.1 sends its own name as Host.
  for (const host of ['evil.example', `evil.example:${port}`, '127.0.0.1', `127.0.0.1:${Number(port) + 1}`, `127.0.0.1:${port}.evil.example`]) {
    const reply = await http(origin, { path: '/api/state', headers: { ...auth, Host: host } });
    t.is(reply.status, 403, `Host ${JSON.stringify(host)}`);
    t.regex(reply.body, /^grid: unexpected Host/);
  }
  t.regex(await raw(port, `GET /api/state HTTP/1.0\r\nX-Grid-Key: ${key}\r\n\r\n`), /^HTTP\/1\.1 403 [^]*grid: unexpected Host ""/, 'no Host at all');
  const rebound = await http(origin, { path: `/?key=${key}`, headers: { Host: 'evil.example' } });
  t.is(rebound.status, 403, 'the page itself for a foreign Host');
});

test.serial('only GET and HEAD are served, and no method gets CORS', async (t) => {
  const { origin, key } = await graphNode();
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    const reply = await http(origin, { method, path: '/api/state', headers: { 'X-Grid-Key': key, Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' } });
    t.is(reply.status, 405, method);
    t.is(reply.headers.allow, 'GET, HEAD');
    t.is(reply.headers['access-control-allow-origin'], undefined, `${method}: no CORS`);
  }
  t.is((await http(origin, { method: 'HEAD', path: '/api/state', headers: { 'X-Grid-Key': key } })).status, 200);
});

test.serial('hostile and odd requests each get their one-line answer', async (t) => {
  const { origin, key, port } = await graphNode();
  const auth = { 'X-Grid-Key': key };
  t.is((await http(origin, { path: '/api/record?seq=abc', headers: auth })).status, 400);
  t.is((await http(origin, { path: '/api/record?seq=999999', headers: auth })).status, 404);
  t.is((await http(origin, { path: `/api/graph?filter=${'x'.repeat(300)}`, headers: auth })).status, 400);
  t.is((await http(origin, { path: `/api/graph?filter=${'x'.repeat(3000)}`, headers: auth })).status, 414);
  t.is((await http(origin, { path: '/api/call', headers: auth })).status, 404, 'there is no call API');
  t.is((await http(origin, { path: '/../../etc/passwd', headers: auth })).status, 404);
  t.is((await http(origin, { path: '/%2e%2e/package.json' })).status, 404);
  const record = await http(origin, { path: '/api/record?seq=0', headers: auth });
  t.is(record.status, 200);
  t.is(JSON.parse(record.body).kind, 'issue');
  t.regex(await raw(port, '\x00\x01 not http\r\n\r\n'), /^HTTP\/1\.1 400 /, 'garbage that is not HTTP at all');
});

// Runs while no browser page holds a live view of the shared node.
test.serial('live views are bounded, and a view that goes away frees its place', async (t) => {
  const { key, port } = await graphNode();
  const views: ClientRequest[] = [];
  const openView = () =>
    new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/api/live', headers: { 'X-Grid-Key': key } }, (res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
      });
      req.on('error', (error) => (views.includes(req) ? undefined : reject(error)));
      req.end();
      views.push(req);
    });
  const statuses = await Promise.all(Array.from({ length: 16 }, openView));
  t.deepEqual(new Set(statuses), new Set([200]));
  t.is(await openView(), 503, 'a 17th live view is refused');
  for (const view of views.splice(0)) view.destroy();
  t.is(await eventually(openView, (status) => status === 200, 5000, 100), 200, 'closed views free their places');
  for (const view of views.splice(0)) view.destroy();
});

test.serial("another site's page cannot open the node's WebSocket; the node's own pages can (a tab node joins so)", async (t) => {
  const { node, origin, port } = await graphNode();
  t.regex(await wsWithOrigin(node.url, 'http://evil.example'), /^refused 40[13]$/);
  t.regex(await wsWithOrigin(node.url, `http://evil.example:${port}`, `evil.example:${port}`), /^refused 40[13]$/, 'a DNS-rebound page, named as itself, is refused');
  t.regex(await wsWithOrigin(node.url, `http://localhost:${port}`), /^refused 40[13]$/, 'an origin that is not the Host it asks with is refused');
  t.is(await wsWithOrigin(node.url, origin), 'open', "the node's own origin is admitted: it authenticates next, as its own principal");
});

const externalAddress = () =>
  Object.values(networkInterfaces())
    .flat()
    .find((address) => address && address.family === 'IPv4' && !address.internal)?.address;

// Reaching the node as a remote client needs an address that is not loopback; without one the test is skipped.
const address = externalAddress();
(address ? test : test.skip)('only loopback clients, unless --web-remote (and their Host names only what is configured)', async (t) => {
  if (!address) return;
  const home = await tempDir(t);
  await ok(home, ['init']);
  const local = await startNode(t, home, ['--listen', `${address}:0`]);
  const { key, port } = webOf(local);
  const fromOutside = await http(`http://${address}:${port}`, { path: `/?key=${key}`, localAddress: address });
  t.is(fromOutside.status, 403, `a client at ${address} is not loopback`);
  t.regex(fromOutside.body, /loopback only/);
  t.is(await local.stop(), 0);

  const open = await startNode(t, home, ['--listen', `0.0.0.0:0`, '--web-remote', '--web-host', address]);
  const remote = webOf(open);
  t.is(remote.web, `http://127.0.0.1:${remote.port}/?key=${remote.key}`);
  t.is((await http(`http://${address}:${remote.port}`, { path: `/?key=${remote.key}`, localAddress: address })).status, 200, 'with --web-remote and --web-host');
  t.is((await http(`http://${address}:${remote.port}`, { path: `/?key=${remote.key}`, localAddress: address, headers: { Host: 'other.example' } })).status, 403);
  t.is((await http(`http://${address}:${remote.port}`, { path: '/', localAddress: address })).status, 403, 'still needs the key');
  t.is((await grid(home, ['start', '--web-host', 'not a host'])).code, 1);
  t.is(await open.stop(), 0);
});

const browserTest = existsSync(CHROMIUM) || process.env.CI ? test.serial : test.skip;
const inBrowser = `in headless Chromium${existsSync(CHROMIUM) ? '' : ` (skipped: no ${CHROMIUM}; .ci/run installs Debian's chromium)`}`;

/** One Chromium for the file, launched by the first test that needs it. */
let launched: Promise<Browser> | undefined;
const chromiumBrowser = () =>
  (launched ??= (async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: .ci/run installs Debian's chromium package (or set GRID_CHROMIUM)`);
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    shared.push(() => browser.close());
    return browser;
  })());

/** Console errors and warnings, and script errors, of every page the tests opened (the last browser test reads them). */
const problems: string[] = [];

/** A fresh page (closed when the test ends) on `url`. */
const openPage = async (t: ExecutionContext, url: string) => {
  const page = await (await chromiumBrowser()).newPage({ viewport: { width: 1400, height: 900 } });
  t.teardown(() => page.close());
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(`${t.title}: ${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`${t.title}: page error: ${error.message}`));
  await page.goto(url);
  return page;
};

type Graph = { nodes(): Array<{ id(): string; data(k: string): unknown }>; edges(): Array<{ id(): string; data(k: string): unknown }> };
type Lookup = { getElementById(id: string): { nonempty(): boolean; data(k: string): unknown; renderedPosition(): { x: number; y: number } }; container(): HTMLElement };

/** The shared node's page, once it is live and has drawn the graph. */
const graphPage = async (t: ExecutionContext) => {
  const node = await graphNode();
  const page = await openPage(t, node.web);
  await page.waitForFunction(() => document.getElementById('live')?.textContent === 'live', undefined, { timeout: 15_000 });
  await page.waitForFunction(() => (window as unknown as { gridGraph?: { nodes(): { length: number } } }).gridGraph?.nodes().length! >= 4, undefined, { timeout: 20_000 });
  return { ...node, page, fulfilledEdge: `${node.principal}>${node.hi}:fulfilled` };
};

/** A real mouse click where cytoscape drew the node `id`; resolves once the page shows it selected. */
const clickNode = async (page: Page, id: string) => {
  const at = await page.evaluate((id) => {
    const cy = (window as unknown as { gridGraph: Lookup }).gridGraph;
    const position = cy.getElementById(id).renderedPosition();
    const box = cy.container().getBoundingClientRect();
    return { x: box.left + position.x, y: box.top + position.y };
  }, id);
  await page.mouse.click(at.x, at.y);
  await page.waitForFunction((id) => document.getElementById('selected')?.textContent?.includes(id) ?? false, id, { timeout: 15_000 });
};

browserTest(`${inBrowser}: the page shows the principal and, on load, the latest records newest first, with pet names`, async (t) => {
  const { web, principal } = await graphNode();
  const page = await openPage(t, web);
  await page.waitForFunction((p) => document.getElementById('principal')?.textContent === p, principal, { timeout: 20_000 });
  await page.waitForFunction(() => document.getElementById('live')?.textContent === 'live', undefined, { timeout: 15_000 });
  const loaded = await page.evaluate(() => ({ total: Number(document.getElementById('records')?.textContent), log: Array.from(document.querySelectorAll('#log li')).map((li) => li.textContent ?? '') }));
  t.true(loaded.log.length >= 10, 'the latest records are listed on load');
  t.true(loaded.log[0]!.startsWith(`#${loaded.total - 1} `), `the newest record first (${loaded.log[0]})`);
  t.true(loaded.log.some((line) => /revoke +bye\b.*enough/.test(line)), 'the revocation, with the pet name of the token revoked');
});

browserTest(`${inBrowser}: the graph draws the principal, the tokens by pet name (the revoked one marked), the module and the calls`, async (t) => {
  const { page, principal, hi, bye, fulfilledEdge } = await graphPage(t);
  const drawn = await page.evaluate(() => {
    const cy = (window as unknown as { gridGraph: Graph }).gridGraph;
    return {
      nodes: cy.nodes().map((n) => [n.id(), n.data('kind'), n.data('revoked'), n.data('label')] as const),
      edges: cy.edges().map((e) => [e.id(), e.data('count')] as const),
    };
  });
  const kinds = new Map(drawn.nodes.map(([id, kind]) => [id, kind]));
  const labels = new Map(drawn.nodes.map(([id, , , label]) => [id, label]));
  t.is(labels.get(hi), 'hi', 'a token is labelled with its pet name');
  t.is(labels.get(bye), 'bye');
  t.is(kinds.get(principal), 'principal');
  t.is(kinds.get(hi), 'token');
  t.is(kinds.get(bye), 'token');
  t.true(drawn.nodes.some(([id, kind, revoked]) => id === bye && kind === 'token' && revoked === true), 'the revoked token is marked');
  t.true([...kinds.values()].includes('module'));
  t.deepEqual(
    drawn.edges.find(([id]) => id === fulfilledEdge),
    [fulfilledEdge, 2],
    'two calls fulfilled',
  );
  await mkdir(OUTPUT, { recursive: true });
  const shot = join(OUTPUT, 'web-node.png');
  await page.screenshot({ path: shot, fullPage: true });
  t.log(`screenshot: ${shot}`);
});

browserTest(`${inBrowser}: the hosted tokens are listed by pet name, with their calls`, async (t) => {
  const { page } = await graphPage(t);
  await page.waitForFunction(() => /hi|greet/.test(document.getElementById('tokens')?.textContent ?? ''));
  t.regex((await page.textContent('#tokens')) ?? '', /#greet 2 calls/);
  t.true((await page.$$eval('#tokens li', (items) => items.map((li) => li.textContent))).includes('hi #greet 2 calls'), 'hosted tokens by pet name');
});

browserTest(`${inBrowser}: a mouse click on a token shows its issue record and the calls on it`, async (t) => {
  const { page, hi } = await graphPage(t);
  await clickNode(page, hi);
  const shown = (await page.textContent('#record')) ?? '';
  t.regex(shown, /"kind": "issue"/);
  t.true(shown.includes(`"token": "${hi}"`), "the panel shows the token's issue record");
  t.regex((await page.textContent('#about')) ?? '', /"Ada"/, 'and the calls on it');
});

browserTest(`${inBrowser}: filtering by a token draws only the part of the graph around it`, async (t) => {
  const { page, hi, bye } = await graphPage(t);
  await page.fill('#filter', bye);
  await page.click('#filter-form button[type=submit]');
  await page.waitForFunction((id) => !(window as unknown as { gridGraph: Lookup }).gridGraph.getElementById(id).nonempty(), hi, { timeout: 15_000 });
  t.regex((await page.textContent('#graph-note')) ?? '', /filtered by/);
});

browserTest(`${inBrowser}: the filter takes a pet name`, async (t) => {
  const { page, hi, bye } = await graphPage(t);
  await page.fill('#filter', 'hi');
  await page.click('#filter-form button[type=submit]');
  const drawnIds = () => page.evaluate(() => (window as unknown as { gridGraph: Graph }).gridGraph.nodes().map((n) => n.id()));
  await page.waitForFunction(() => /^filtered by hi: /.test(document.getElementById('graph-note')?.textContent ?? ''), undefined, { timeout: 15_000 });
  await page.waitForFunction((id) => (window as unknown as { gridGraph: Lookup }).gridGraph.getElementById(id).nonempty(), hi, { timeout: 15_000 });
  t.true((await drawnIds()).includes(hi), 'filtered by its pet name, the token is drawn');
  t.false((await drawnIds()).includes(bye), 'and the other is not');
  t.regex((await page.textContent('#graph-note')) ?? '', /^filtered by hi: /);
});

browserTest(`${inBrowser}: the page holds no authority: its WebSocket, admitted as the node's own origin, must still prove a principal, and is closed on anything else`, async (t) => {
  const { page, node } = await graphPage(t);
  const socket = await page.evaluate(
    (url) =>
      new Promise<string>((resolve) => {
        const ws = new WebSocket(url);
        ws.binaryType = 'arraybuffer';
        // The node says hello first; an empty map is no proof of anything.
        ws.onmessage = () => ws.send(new Uint8Array([0xa0]));
        ws.onclose = () => resolve('closed');
      }),
    node.url,
  );
  t.is(socket, 'closed');
});

// Calls a closure on the shared node: after the tests that count its calls.
browserTest(`${inBrowser}: a call made from the CLI shows up live, without a reload, in the graph, the log and the selected token's calls`, async (t) => {
  const { page, home, hi, fulfilledEdge } = await graphPage(t);
  await clickNode(page, hi);
  const count = (id: string) => (window as unknown as { gridGraph: Lookup }).gridGraph.getElementById(id).data('count');
  const calls = Number(await page.evaluate(count, fulfilledEdge));
  const before = Number(await page.textContent('#records'));
  t.is(await ok(home, ['call', 'hi', '"Cy"']), '"hi, Cy"');
  await page.waitForFunction((n) => Number(document.getElementById('records')?.textContent) > n, before, { timeout: 15_000 });
  await page.waitForFunction(({ id, n }) => (window as unknown as { gridGraph: Lookup }).gridGraph.getElementById(id).data('count') === n, { id: fulfilledEdge, n: calls + 1 }, { timeout: 15_000 });
  await page.waitForFunction(() => /"Cy"/.test(document.getElementById('about')?.textContent ?? ''), undefined, { timeout: 15_000 });
  t.regex((await page.textContent('#log')) ?? '', /"Cy"/);
});

browserTest(`${inBrowser}: no page logged a CSP violation or a script error`, (t) => {
  // The WebSocket refusal above is the one console error the tests cause on purpose.
  const unexpected = problems.filter((text) => !/WebSocket connection to .* failed/.test(text));
  t.deepEqual(unexpected, []);
});

/** A home with thirty tokens, issued in one process, the latest named `newest`, and its node. */
let manyStarted: Promise<{ node: Awaited<ReturnType<typeof startNode>>; latest: string }> | undefined;
const manyTokensNode = () =>
  (manyStarted ??= (async () => {
    const home = await tempDir(fileScope);
    await ok(home, ['init']);
    const repl = spawn(process.execPath, [join(process.cwd(), 'bin', 'grid.js'), 'repl', '--home', home], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, GRID_HOME: '' } });
    let said = '';
    repl.stdout.on('data', (chunk) => (said += chunk));
    repl.stdin.write(`const code = await grid.publish('export const greet = (ctx, name) => ctx.env.greeting + name;'); const tokens = []; for (let i = 0; i < 30; i++) tokens.push(await grid.issue({ code, export: 'greet', env: { greeting: 'g' + i } })); 'issued ' + tokens.at(-1)\n`);
    const latest = await eventually(async () => /issued (\w+)/.exec(said)?.[1], (token) => token !== undefined, 60_000, 100);
    repl.stdin.end();
    await new Promise((resolve) => repl.on('close', resolve));
    if (!latest) throw new Error(`the REPL said: ${said}`);
    await ok(home, ['name', 'newest', latest]);
    return { node: await startNode(fileScope, home), latest };
  })());

/** Markup a writer put in a document: the page must show it as text. */
const HOSTILE = '<img src=x onerror="window.pwned=1">';
/** A home holding a budget document with an open conflict (test/_doc-conflict-home.ts), named `budget`, and its node. */
let docsStarted: Promise<{ node: Awaited<ReturnType<typeof startNode>>; doc: string }> | undefined;
const docsNode = () =>
  (docsStarted ??= (async () => {
    const home = join(await tempDir(fileScope), 'home');
    const made = spawn(process.execPath, ['--import=./test/_preload.mjs', '--import=tsx', 'test/_doc-conflict-home.ts', home, HOSTILE], { stdio: ['ignore', 'pipe', 'inherit'] });
    let said = '';
    made.stdout.on('data', (chunk) => (said += chunk));
    const code = await new Promise((resolve) => made.on('close', resolve));
    if (code !== 0) throw new Error(`test/_doc-conflict-home.ts exited ${code}: ${said}`);
    const { doc } = JSON.parse(said) as { doc: string };
    await ok(home, ['name', 'budget', doc]);
    return { node: await startNode(fileScope, home), doc };
  })());

// The slow set-ups start at once, side by side; each test awaits the one it needs.
test.before(() => {
  for (const setup of [graphNode(), ...(existsSync(CHROMIUM) ? [manyTokensNode(), docsNode(), chromiumBrowser()] : [])]) setup.catch(() => {}); // a failure is reported by the tests that await it
});

browserTest(`${inBrowser}: a document shows as a DAG of its versions, with its open conflict and every attempt, and a writer's markup as text`, async (t) => {
  const { node, doc } = await docsNode();
  const page = await openPage(t, webOf(node).web);
  await page.waitForFunction(() => /budget/.test(document.getElementById('docs')?.textContent ?? ''), undefined, { timeout: 20_000 });
  t.regex((await page.textContent('#docs')) ?? '', /budget 2 heads, 1 open conflict/);
  await page.click('#docs button');
  await page.waitForFunction(() => document.body.dataset.docVersions === '3', undefined, { timeout: 15_000 });
  type DocGraph = { nodes(): Array<{ id(): string; data(k: string): unknown }>; edges(): Array<{ data(k: string): unknown }> };
  const drawn = await page.evaluate(() => {
    const cy = (window as unknown as { gridDocGraph: DocGraph }).gridDocGraph;
    return {
      nodes: cy.nodes().map((n) => ({ id: n.id(), by: n.data('by'), head: n.data('head'), label: n.data('label') })),
      edges: cy.edges().map((e) => `${e.data('source')}>${e.data('target')}`),
    };
  });
  // The genesis, the issuer's two versions in a line, the delegated writer's version beside them: two heads.
  t.is(drawn.nodes.length, 4);
  t.deepEqual(drawn.nodes.filter((n) => n.by === 'genesis').map((n) => n.id), [doc]);
  t.is(drawn.nodes.filter((n) => n.head).length, 2);
  t.is(drawn.edges.length, 3);
  t.is(drawn.edges.filter((edge) => edge.startsWith(`${doc}>`)).length, 2, 'two versions follow the genesis');
  t.true(drawn.nodes.some((n) => /\(delegated\): \{"set":90\}/.test(String(n.label))), "the writer's version says it came through a delegation");
  t.regex((await page.textContent('#doc-rules')) ?? '', /^reducer \S+; merge cascade \S+; issued by did:key:\S+; 2 heads$/);
  const conflicts = (await page.textContent('#doc-conflicts')) ?? '';
  t.regex(conflicts, /json merge: conflicting changes at \/total/);
  t.regex(conflicts, /open: whoever holds the settle token resolves it/);
  // The version holding the markup, clicked: its record shows the markup as text, and nothing ran.
  const hostile = drawn.nodes.find((n) => String(n.label).includes('<img'))!;
  await page.locator('#doc-graph').scrollIntoViewIfNeeded();
  // The page can still move under the graph (lists above it fill in as the node's state arrives):
  // a click aimed before such a shift lands where the version no longer is, so it is aimed again,
  // a few times at most. Without this it failed in 3 of 8 runs.
  const selected = async () => page.evaluate((id) => document.getElementById('selected')?.textContent?.includes(id) ?? false, hostile.id);
  for (let attempt = 0; attempt < 5 && !(await selected()); attempt += 1) {
    const at = await page.evaluate((id) => {
      const cy = (window as unknown as { gridDocGraph: { getElementById(id: string): { renderedPosition(): { x: number; y: number } }; container(): HTMLElement } }).gridDocGraph;
      const position = cy.getElementById(id).renderedPosition();
      const box = cy.container().getBoundingClientRect();
      return { x: box.left + position.x, y: box.top + position.y };
    }, hostile.id);
    await page.mouse.click(at.x, at.y);
    await page.waitForFunction((id) => document.getElementById('selected')?.textContent?.includes(id) ?? false, hostile.id, { timeout: 3_000 }).catch(() => {});
  }
  t.true(await selected(), 'a click on the version selects it');
  t.deepEqual((JSON.parse((await page.textContent('#record')) ?? '{}') as { change?: unknown }).change, { line: HOSTILE, amount: 5 });
  t.false(await page.evaluate(() => 'pwned' in window || document.querySelector('main img') !== null));
  await mkdir(OUTPUT, { recursive: true });
  await page.screenshot({ path: join(OUTPUT, 'web-document.png'), fullPage: true });
});

browserTest(`${inBrowser}: a graph of many tokens opens at a readable size, on its latest token`, async (t) => {
  const { node, latest } = await manyTokensNode();
  const page = await openPage(t, webOf(node).web);
  await page.waitForFunction(() => (window as unknown as { gridGraph?: { nodes(): { length: number } } }).gridGraph?.nodes().length! >= 32, undefined, { timeout: 20_000 });
  const view = await page.evaluate((id) => {
    const cy = (window as unknown as { gridGraph: any }).gridGraph;
    const node = cy.getElementById(id);
    const box = node.renderedBoundingBox({ includeLabels: false });
    return { zoom: cy.zoom(), font: parseFloat(node.style('font-size')) * cy.zoom(), label: node.data('label'), box, width: cy.width(), height: cy.height() };
  }, latest);
  t.log(view);
  t.true(view.font >= 12, `labels are drawn at ${view.font.toFixed(1)} px`);
  t.is(view.label, 'newest');
  t.true(view.box.x1 >= 0 && view.box.x2 <= view.width && view.box.y1 >= 0 && view.box.y2 <= view.height, 'the latest token is in view');
  await mkdir(OUTPUT, { recursive: true });
  await page.screenshot({ path: join(OUTPUT, 'web-many-tokens.png') });
  t.is(await node.stop(), 0);
});

test.serial('after all of the above, the node still serves calls (over its WebSocket) and its page, and stops cleanly', async (t) => {
  const { node, home, web } = await graphNode();
  t.true(node.isRunning());
  t.is(await ok(home, ['call', 'hi', '"Cy"']), '"hi, Cy"');
  t.is((await http(web)).status, 200);
  t.is(await node.stop(), 0);
});
