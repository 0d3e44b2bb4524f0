/**
 * Applications by URL through the real CLI and a real `grid start` node:
 * `grid app publish` (one module, JS and WebAssembly mixed, refusals),
 * `grid run APP` showing the same state as `grid doc show`, and the node's
 * app routes (the shell page, start.json, refusals, the page's list).
 */
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { http } from './_http.js';
import { tempDir } from './_helpers.js';
import { gridProcesses } from './_processes.js';

const { grid, ok, startNode } = gridProcesses();

const get = (url: string, headers: Record<string, string> = {}) => http(url, { headers });

const keyOf = (info: unknown) => new URL((info as { web: string }).web).searchParams.get('key')!;

test('grid app publish on a running node: the address opens the shell with no key, start.json says what to run, grid run shows the state', async (t) => {
  t.timeout(180_000);
  const home = await tempDir(t);
  await ok(home, ['init']);
  const node = await startNode(t, home);
  const origin = node.url.replace(/^ws:/, 'http:');
  const printed = (await ok(home, ['app', 'publish', 'examples/todo.js', '--merge', 'json', '--name', 'todo'])).split('\n');
  t.is(printed.length, 3);
  const [address, readOnly, settling] = [printed[0]!, printed[1]!.replace(/^read-only: /, ''), printed[2]!.replace(/^settle conflicts: /, '')];
  t.regex(address, new RegExp(`^${origin}/app/bafyrei[a-z2-7]+$`));
  t.regex(readOnly, new RegExp(`^${origin}/app/bafyrei[a-z2-7]+$`));
  const names = JSON.parse(await ok(home, ['names', '--json'])).names;
  t.is(address, `${origin}/app/${names['todo.write'].id}`, 'the address carries the write token');
  t.is(readOnly, `${origin}/app/${names['todo.read'].id}`, 'the read-only address, the read token');
  t.is(settling, `${origin}/app/${names['todo.settle'].id}`, 'the settling address, the settle token');

  // The shell: HTML under the strict CSP, no key asked for.
  const shell = await get(address);
  t.is(shell.status, 200);
  t.regex(String(shell.headers['content-type']), /^text\/html/);
  t.regex(String(shell.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);
  t.is(shell.headers['referrer-policy'], 'no-referrer', 'the token in the address never leaves in a Referer');
  t.true(shell.body.includes('<script type="module" src="/apps/boot.js"></script>'));
  t.false(/<script>/.test(shell.body), 'no inline script');
  const start = JSON.parse((await get(`${address}/start.json`)).body);
  t.like(start, { token: names['todo.write'].id, role: 'write', writable: true, title: 'todo', principal: node.principal });
  t.is(start.modules.length, 1);
  t.regex(start.view, /^bafyrei/);
  t.like(JSON.parse((await get(`${readOnly}/start.json`)).body), { role: 'read', writable: false, settles: false, doc: start.doc });
  t.like(JSON.parse((await get(`${settling}/start.json`)).body), { role: 'settle', writable: false, settles: true, doc: start.doc });
  t.is(start.settles, false, 'a write page does not settle');
  for (const file of ['render.js', 'host.js', 'conflicts.js', 'boot.js', 'session.js', 'app.css']) t.is((await get(`${origin}/apps/${file}`)).status, 200, file);

  // Refusals: one line, the same for a token that is unknown, malformed, not a document's or not an app's.
  await ok(home, ['doc', 'create', 'examples/chat.js', '--reducer', 'update', '--name', 'plain']);
  const hello = (await ok(home, ['issue', 'examples/hello.js', '--export', 'greet'])).trim();
  const plain = JSON.parse(await ok(home, ['names', '--json'])).names['plain.write'].id;
  const forged = `${names['todo.write'].id.slice(0, -4)}aaaa`;
  for (const bad of [forged, 'not-a-token', '%3Cscript%3Ealert(1)%3C%2Fscript%3E', hello, plain, `${names['todo.write'].id}/other`]) {
    const reply = await get(`${origin}/app/${bad}`);
    t.is(reply.status, 404, bad);
    t.is(reply.body, "grid: no app at this address: the token is unknown here, revoked, or not an app's\n", bad);
    t.regex(String(reply.headers['content-type']), /^text\/plain/);
  }
  // The page's Host check holds for apps too: a DNS-rebound name gets nothing.
  t.is((await get(address, { Host: `evil.example:${new URL(origin).port}` })).status, 403);
  t.is((await get(`${address}/start.json`, { Host: 'evil.example' })).status, 403);

  // The same state from the command line: the view as text, each event with its change.
  t.is(await ok(home, ['doc', 'apply', 'todo.write', '{"add":"buy milk"}']), '{"items":[{"done":false,"text":"buy milk"}]}');
  // The page's form submit is a change like any other.
  t.is(await ok(home, ['doc', 'apply', 'todo.write', '{"add":true,"form":{"text":"eggs"}}']), '{"items":[{"done":false,"text":"buy milk"},{"done":false,"text":"eggs"}]}');
  const shown = await ok(home, ['run', 'todo.read']);
  t.is(shown, [
    '# Todo',
    '[text: ‹something to do›] [add] (submit: {"add":true} + form)',
    '  - buy milk [done] (click: {"done":"buy milk"}) [remove] (click: {"remove":"buy milk"})',
    '  - eggs [done] (click: {"done":"eggs"}) [remove] (click: {"remove":"eggs"})',
    '2 of 2 left',
  ].join('\n'));
  t.is(await ok(home, ['run', address]), shown, 'the address works as well as the pet name');
  const json = JSON.parse(await ok(home, ['run', 'todo', '--json']));
  t.deepEqual(json.value, JSON.parse(await ok(home, ['doc', 'show', 'todo.read'])));
  t.is(json.view[0], 'main');

  // Its node's page lists it, behind the page's key.
  const key = keyOf(node);
  t.is((await get(`${origin}/api/apps`)).status, 403);
  const listed = JSON.parse((await get(`${origin}/api/apps`, { 'X-Grid-Key': key })).body);
  t.deepEqual(listed.map((app: { title: string; path: string; name: string }) => [app.title, app.path, app.name]), [['todo', `/app/${names['todo.write'].id}`, 'todo.write']]);

  // A revoked write token no longer opens the app; the read token still does.
  await ok(home, ['revoke', 'todo.write']);
  t.is((await get(address)).status, 404);
  t.is((await get(readOnly)).status, 200);
});

test('an app of two modules, JS and WebAssembly: each export from the first module that has it; merge from the WebAssembly one', async (t) => {
  t.timeout(180_000);
  const home = await tempDir(t);
  await ok(home, ['init']);
  const made = JSON.parse(await ok(home, ['app', 'publish', 'examples/counter.js', 'examples/wasm/counter.wasm', '--name', 'counter', '--json']));
  t.is(made.modules.length, 2);
  t.regex(made.app, /^\/app\/bafyrei/, 'no node runs: the address is given from its path');
  const info = JSON.parse(await ok(home, ['call', 'counter.read', '"info"', '--json'])).value;
  t.is(info.merges.length, 1, 'the app\'s own merge is the first step');
  t.is(await ok(home, ['doc', 'show', 'counter']), '0', 'init from the JS module');
  t.is(await ok(home, ['doc', 'apply', 'counter.write', '10']), '10', 'update from the WebAssembly one');
  const refused = await grid(home, ['doc', 'apply', 'counter.write', '1000']);
  t.is(refused.code, 3);
  t.is(refused.stderr, 'revoked (crash): the reducer refused the change: trap: unreachable');
  t.is(await ok(home, ['run', 'counter']), ['# Counter', '10', '[−1] (click: -1) [+1] (click: 1) [+10] (click: 10)'].join('\n'));
  // In the other order the JS module has no update, so the WebAssembly one still gives it; the view must come from somewhere.
  const refusedOrder = await grid(home, ['app', 'publish', 'examples/wasm/counter.wasm']);
  t.is(refusedOrder.code, 1);
  t.is(refusedOrder.stderr, 'grid: an app exports init, update and view (and may export merge); no module given exports "init" or "view" (counter.wasm: update, merge)');
});

test('grid app publish refuses bad input in one line and leaves the home as it was; grid run refuses what is not an app', async (t) => {
  t.timeout(180_000);
  const home = await tempDir(t);
  await ok(home, ['init']);
  const noView = join(home, 'noview.js');
  await writeFile(noView, 'export const init = () => 0;\nexport const update = (ctx, s, c) => s + c;\n');
  const broken = join(home, 'broken.js');
  await writeFile(broken, 'export const view = (;\n');
  const cases: Array<[string[], RegExp]> = [
    [['app', 'publish', 'no-such.js'], /^grid: no such file: no-such\.js$/],
    [['app', 'publish', noView], /^grid: an app exports init, update and view \(and may export merge\); no module given exports "view" \(noview\.js: init, update\)$/],
    [['app', 'publish', broken], /^grid: .*broken\.js: publish: module does not parse: .*Unexpected token/],
    [['app', 'publish', 'examples/todo.js', '--name', '9lives'], /^grid: a pet name starts with a letter/],
    [['app', 'publish', 'examples/todo.js', '--merge', 'jsno'], /^grid: --merge "jsno" is no merge step/],
    [['app', 'publish'], /^grid: app publish needs at least one FILE$/],
  ];
  for (const [args, expected] of cases) {
    const result = await grid(home, args);
    t.is(result.code, 1, args.join(' '));
    t.is(result.stderr.split('\n').length, 1, result.stderr);
    t.regex(result.stderr, expected);
  }
  t.deepEqual(JSON.parse(await ok(home, ['names', '--json'])).names, {}, 'nothing was named');
  t.is(await ok(home, ['doc', 'conflicts']), '(no open conflicts)');

  await ok(home, ['doc', 'create', 'examples/todo.js', '--reducer', 'update', '--name', 'plain']);
  const hello = (await ok(home, ['issue', 'examples/hello.js', '--export', 'greet', '--name', 'hi'])).trim();
  const notApps: Array<[string, RegExp]> = [
    ['plain', /^grid: "plain" is a document's token, not an app's/],
    ['hi', /^grid: "hi" is a token, but not an app's/],
    [hello, /is a token, but not an app's/],
  ];
  for (const [ref, expected] of notApps) {
    const result = await grid(home, ['run', ref]);
    t.is(result.code, 1, ref);
    t.regex(result.stderr, expected);
  }
});

test('the examples publish as apps and their views render as text', async (t) => {
  t.timeout(180_000);
  const home = await tempDir(t);
  await ok(home, ['init']);
  await ok(home, ['app', 'publish', 'examples/chat.js', '--merge', 'union', '--name', 'room']);
  await ok(home, ['doc', 'apply', 'room.write', '{"say":true,"form":{"from":"ann","say":"hello \\u001b[31mred"}}']);
  t.is(await ok(home, ['run', 'room']), ['# Chat', '  - ann: hello  [31mred', '[from: ‹your name›] [say: ‹say something›] [send] (submit: {"say":true} + form)'].join('\n'), 'the escape sequence is not passed to the terminal');
  await ok(home, ['app', 'publish', 'examples/text.js', '--merge', 'text', '--name', 'notes']);
  await ok(home, ['doc', 'apply', 'notes.write', '{"set":true,"value":"Hello world"}']);
  t.is(await ok(home, ['run', 'notes']), ['# Notes', '[text: Hello world] (change: {"set":true} + value)', '11 characters; saved when you leave the box'].join('\n'));
});
