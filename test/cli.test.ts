/**
 * The real `grid` binary, spawned on temporary homes, driven the way a
 * person or a script drives it.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './_helpers.js';

const BIN = join(process.cwd(), 'bin', 'grid.js');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

const grid = (home: string, args: string[], options: { input?: string | Uint8Array; env?: Record<string, string> } = {}): Promise<Result> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args, '--home', home], {
      env: { ...process.env, GRID_HOME: '', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: stdout.trim(), stderr: stderr.trim() }));
    child.stdin.end(options.input ?? '');
  });

const ok = async (home: string, args: string[]) => {
  const result = await grid(home, args);
  if (result.code !== 0) throw new Error(`grid ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
};

test('the newcomer loop from the README', async (t) => {
  const home = await tempDir(t);
  const principal = await ok(home, ['init']);
  t.regex(principal, /^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$/);
  t.is(await ok(home, ['init']), principal, 'init is idempotent');
  t.is((await stat(join(home, 'identity'))).mode & 0o777, 0o600);

  const cid = await ok(home, ['publish', 'examples/hello.js']);
  t.regex(cid, /^bafk[a-z2-7]+$/);
  const token = await ok(home, ['issue', cid, '--export', 'greet', '--env', '{"greeting":"hi"}']);
  t.regex(token, /^bafy[a-z2-7]+$/);
  t.is(await ok(home, ['call', token, '"Ada"']), '"hi, Ada"');

  t.regex(await ok(home, ['revoke', token]), /^revoked bafy/);
  const after = await grid(home, ['call', token, '"Ada"']);
  t.is(after.code, 3);
  t.is(after.stderr, 'revoked: revoked by issuer');

  const graph = await ok(home, ['graph']);
  for (const kind of ['issue', 'call', 'fulfilled', 'revoke', 'revoked']) t.regex(graph, new RegExp(` ${kind} `));
  t.regex(graph, new RegExp(`\\(journal of \\d+ records, signed through #\\d+ by did:key:`));
});

test('--json gives one JSON object per command', async (t) => {
  const home = await tempDir(t);
  const init = JSON.parse(await ok(home, ['init', '--json']));
  t.regex(init.principal, /^did:key:/);
  const published = JSON.parse(await ok(home, ['publish', 'examples/guard.js', '--json']));
  const cid = published.modules[0].cid;
  const issued = JSON.parse(await ok(home, ['issue', cid, '--export', 'add', '--json']));
  t.deepEqual(JSON.parse(await ok(home, ['call', issued.token, '2', '40', '--json'])), { status: 'fulfilled', value: 42 });
  const refused = await grid(home, ['call', issued.token, '"two"', '40', '--json']);
  t.is(refused.code, 3);
  t.deepEqual(JSON.parse(refused.stdout), { status: 'revoked', reason: 'add expects two small integers, got string and number' });
  const failed = await grid(home, ['issue', 'no-such-module', '--export', 'f', '--json']);
  t.is(failed.code, 1);
  t.deepEqual(JSON.parse(failed.stdout), { error: 'module id is not a valid CID: "no-such-module"', code: 'ERR_USAGE' });
  const graph = JSON.parse(await ok(home, ['graph', '--json']));
  t.true(Array.isArray(graph.entries) && graph.entries.length >= 5);
  const rep = JSON.parse(await ok(home, ['reputation', '--json']));
  // The home's own calls on its own token count for nothing (README: Reputation).
  t.deepEqual(rep.reputation, [{ issuer: init.principal, issued: 1, fulfilled: 0, broken: 0, refused: 0, pending: 0 }]);
});

test('all examples work from the command line', async (t) => {
  const home = await tempDir(t);
  await ok(home, ['init']);
  const greet = await ok(home, ['issue', 'examples/hello.js', '--export', 'greet', '--env', '{"greeting":"hello"}', '--name', 'greeter']);
  t.is(await ok(home, ['call', 'greeter', '"Bob"']), '"hello, Bob"');
  const relay = await ok(home, ['issue', 'examples/relay.js', '--export', 'relay', '--env', JSON.stringify({ target: { '/': greet } })]);
  t.is(await ok(home, ['call', relay, '"Cy"']), '{"relayed":"hello, Cy"}');
  const order = await ok(home, ['issue', 'examples/later.js', '--export', 'order']);
  t.is(await ok(home, ['call', order, '"soup"']), '"your soup is ready"');
  const noFollow = await ok(home, ['call', order, '"tea"', '--no-follow']);
  t.regex(noFollow, /^promised: bafy/);
  t.is(await ok(home, ['call', noFollow.replace('promised: ', '')]), '"your tea is ready"');
  const add = await ok(home, ['issue', 'examples/guard.js', '--export', 'add']);
  t.is(await ok(home, ['call', add, '20', '22']), '42');
  const bad = await grid(home, ['call', add, '[]', '1']);
  t.is(bad.code, 3);
  t.regex(bad.stderr, /^revoked: add expects two small integers/);
});

test('pet names for tokens, modules and principals', async (t) => {
  const home = await tempDir(t);
  const me = await ok(home, ['init']);
  const cid = await ok(home, ['publish', 'examples/hello.js', '--name', 'hello']);
  await ok(home, ['issue', 'hello', '--export', 'greet', '--env', '{"greeting":"yo"}', '--name', 'yo']);
  await ok(home, ['name', 'me', me]);
  const names = await ok(home, ['names']);
  t.regex(names, new RegExp(`hello\\tmodule\\t${cid}`));
  t.regex(names, /yo\ttoken\tbafy/);
  t.regex(names, /me\tprincipal\tdid:key:/);
  t.is(await ok(home, ['call', 'yo', '"Di"']), '"yo, Di"');
  t.regex(await ok(home, ['graph', 'yo']), /yo\("Di"\) by me/);
  t.regex(await ok(home, ['reputation', 'me']), /^issuer\tissued\tfulfilled\tbroken\trefused\tpending\nme\t1\t0\t0\t0\t0$/);
  const wrongKind = await grid(home, ['call', 'hello']);
  t.is(wrongKind.code, 1);
  t.is(wrongKind.stderr, 'grid: "hello" names a module, not a token');
});

test('graph renders DOT and narrows to one token', async (t) => {
  const home = await tempDir(t);
  await ok(home, ['init']);
  const a = await ok(home, ['issue', 'examples/hello.js', '--export', 'greet', '--env', '{"greeting":"a"}']);
  const b = await ok(home, ['issue', 'examples/guard.js', '--export', 'add']);
  await ok(home, ['call', a, '"x"']);
  await ok(home, ['call', b, '1', '2']);
  const dot = await ok(home, ['graph', '--format', 'dot']);
  t.regex(dot, /^digraph promisegrid \{/);
  t.regex(dot, /-> .*label="issued"/);
  const around = await ok(home, ['graph', a]);
  t.regex(around, /"x"/);
  t.notRegex(around, /\(1, 2\)/);
});

test('errors are one line with the right exit code, and --debug adds the stack', async (t) => {
  const home = await tempDir(t);
  const noHome = await grid(home, ['publish', 'examples/hello.js']);
  t.is(noHome.code, 1);
  t.regex(noHome.stderr, /^grid: no grid home at .*; run `grid init` first/);
  t.notRegex(noHome.stderr, /\n/);
  const me = (await ok(home, ['init'])).trim();
  const unknownToken = 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku';
  const cases: Array<[string[], RegExp]> = [
    [['frobnicate'], /^grid: unknown command "frobnicate"/],
    [['publish'], /^grid: publish needs at least one FILE$/],
    [['publish', 'no/such/file.js'], /^grid: no such file: no\/such\/file\.js$/],
    [['issue', 'examples/hello.js'], /^grid: issue needs --export NAME$/],
    [['call', 'bafynot', '1'], /^grid: token is not a valid CID: "bafynot"$/],
    [['call', 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', 'Ada'], /^grid: argument 1 is not valid JSON: "Ada"/],
    [['issue', 'examples/hello.js', '--export', 'greet', '--env', '{nope'], /^grid: --env is not valid JSON/],
    [['graph', '--format', 'svg'], /^grid: --format must be text, json, dot or mermaid/],
    [['call', 'x', '--bogus'], /^grid: Unknown option '--bogus'/],
    [['delegate', unknownToken], /^grid: delegate needs --to PRINCIPAL/],
    [['delegate', unknownToken, '--to', 'bob'], /^grid: principal must be an Ed25519 did:key/],
    [['delegate', unknownToken, '--to', me, '--rate', '10/fortnight'], /^grid: --rate takes N\/PERIOD/],
    [['delegate', unknownToken, '--to', me, '--expires', 'someday'], /^grid: --expires takes a duration such as 2h or a date/],
    [['delegate', unknownToken, '--to', me, '--approvals', '2', '--approver', me], /^grid: --approvals 2 needs at least 2 --approver principals \(got 1\)$/],
    [['delegate', unknownToken, '--to', me], /^grid: unknown token$/],
  ];
  for (const [args, pattern] of cases) {
    const result = await grid(home, args);
    t.is(result.code, 1, args.join(' '));
    t.regex(result.stderr, pattern, args.join(' '));
    t.false(result.stderr.includes('\n'), `one line for ${args.join(' ')}`);
  }
  const forbidden = join(home, 'bad.js');
  await writeFile(forbidden, "import { exec } from 'node:child_process'; export const f = () => exec('true');");
  const refused = await grid(home, ['publish', forbidden]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /^grid: publish: forbidden import "node:child_process"/);
  const unknown = await grid(home, ['call', 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku']);
  t.is(unknown.code, 3);
  t.is(unknown.stderr, 'revoked: unknown token');
  const stuck = join(home, 'stuck.js');
  await writeFile(stuck, 'export const wait = () => new Promise(() => {});');
  const waiting = await ok(home, ['issue', stuck, '--export', 'wait']);
  const timedOut = await grid(home, ['call', waiting, '--timeout', '100']);
  t.is(timedOut.code, 4);
  t.is(timedOut.stderr, 'revoked: time limit');
  t.is((await grid(home, ['call', waiting, '--timeout', 'soon'])).code, 1);
  const debug = await grid(home, ['publish', 'no/such/file.js', '--debug']);
  t.regex(debug.stderr, /\n\s+at /);
});

test('inspect decodes messages, records, journals and modules', async (t) => {
  const home = await tempDir(t);
  await ok(home, ['init']);
  const token = await ok(home, ['issue', 'examples/hello.js', '--export', 'greet', '--env', '{"greeting":"hi"}']);
  const closure = await ok(home, ['inspect', token]);
  t.regex(closure, /^closure record \(\d+ bytes\)/);
  t.regex(closure, /"greeting": "hi"/);
  const journal = await ok(home, ['inspect', join(home, 'journal')]);
  t.regex(journal, /^journal: \d+ records/);
  t.regex(await ok(home, ['inspect', 'examples/hello.js']), /^text \(\d+ bytes\)\n[^]*export const greet/);
  // A grid message: tag 1735551332 around [link, "hello"].
  const message = 'da677269648' + '2d82a58250001711220' + '00'.repeat(32) + '6568656c6c6f';
  const decoded = await ok(home, ['inspect', message]);
  t.regex(decoded, /^grid message \(\d+ bytes\): call to token bafy/);
  t.regex(decoded, /"hello"/);
  const bad = await ok(home, ['inspect', 'ff00']);
  t.regex(bad, /^unrecognised 2 bytes: CBOR decode error/);
  const piped = await grid(home, ['inspect', '-'], { input: new Uint8Array([0x83, 0x01, 0x02, 0x03]) });
  t.is(piped.stdout, 'CBOR (4 bytes)\n[\n  1,\n  2,\n  3\n]');
});

test('concurrent processes on one home never corrupt it', async (t) => {
  const home = await tempDir(t);
  await ok(home, ['init']);
  const token = await ok(home, ['issue', 'examples/guard.js', '--export', 'add']);
  // Each waits its turn for the home (the lock), however loaded the machine is.
  const results = await Promise.all(Array.from({ length: 6 }, (_, i) => grid(home, ['call', token, String(i), '1'], { env: { GRID_LOCK_WAIT_MS: '120000' } })));
  t.deepEqual(results.map((r) => r.code), [0, 0, 0, 0, 0, 0], results.map((r) => r.stderr).join(' | '));
  t.deepEqual(results.map((r) => Number(r.stdout)).sort(), [1, 2, 3, 4, 5, 6]);
  const graph = await ok(home, ['graph', '--json']);
  const entries = JSON.parse(graph).entries as Array<{ seq: number; kind: string }>;
  t.deepEqual(entries.map((e) => e.seq), entries.map((_, i) => i), 'one unbroken sequence');
  t.is(entries.filter((e) => e.kind === 'fulfilled').length, 6);
});

test('a home held by a live process is refused with its pid', async (t) => {
  const home = await tempDir(t);
  await ok(home, ['init']);
  // The lock is an flock on the home's lock file, which then names its holder (src/home/lock.ts).
  const hold = `const fs = require('node:fs'); const fd = fs.openSync(${JSON.stringify(join(home, 'lock'))}, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    require(${JSON.stringify(join(process.cwd(), 'node_modules', 'fs-ext'))}).flockSync(fd, 'exnb'); fs.ftruncateSync(fd, 0); fs.writeSync(fd, String(process.pid), 0);
    process.stdout.write('held\\n'); setTimeout(() => {}, 30000);`;
  const holder = spawn(process.execPath, ['-e', hold], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => holder.kill());
  await new Promise((resolve) => holder.stdout.once('data', resolve));
  const refused = await grid(home, ['graph'], { env: { GRID_LOCK_WAIT_MS: '200' } });
  t.is(refused.code, 1);
  t.is(refused.stderr, `grid: home ${home} is in use by process ${holder.pid}; wait for it to finish or stop it`);
  holder.kill('SIGKILL');
  await new Promise((resolve) => holder.on('close', resolve));
  t.is((await grid(home, ['graph'])).code, 0, 'a lock whose holder was killed is free');
  t.is((await grid(home, ['graph'], { env: { GRID_LOCK_WAIT_MS: '200' } })).code, 0, 'and released');
});

test('WebAssembly from the command line: a command, a closure, and a JS app composed with it', async (t) => {
  const home = await tempDir(t);
  await ok(home, ['init']);
  const run = await grid(home, ['run', 'examples/wasm/echo.wasm', 'hello', 'big world']);
  t.is(run.code, 2, 'the exit code of the command');
  t.is(run.stdout, 'hello\nbig world');
  t.is(run.stderr, '', 'no experimental-feature noise');
  const cat = await grid(home, ['run', 'examples/wasm/echo.wasm'], { input: 'from stdin\nsecond line' });
  t.is(cat.code, 0);
  t.is(cat.stdout, 'from stdin\nsecond line');
  t.is((await grid(home, ['run', 'examples/wasm/echo.wasm', 'clock'])).code, 76, 'no clock unless granted');
  t.is((await grid(home, ['run', 'examples/wasm/echo.wasm', 'clock', '--clock'])).code, 0);
  const fib = await ok(home, ['issue', 'examples/wasm/fib.wasm', '--export', 'fib']);
  t.is(await ok(home, ['call', fib, '12']), '144');
  const table = await ok(home, ['issue', 'examples/fib-table.js', '--export', 'table', '--env', JSON.stringify({ fib: { '/': fib } })]);
  t.is(await ok(home, ['call', table, '4']), JSON.stringify('fib(0) = 0\nfib(1) = 1\nfib(2) = 1\nfib(3) = 2\nfib(4) = 3'));
  const notCommand = await grid(home, ['run', 'examples/wasm/fib.wasm']);
  t.is(notCommand.code, 1);
  t.is(notCommand.stderr, 'grid: wasm: not a WASI command: it exports no _start');
});

/** Start `grid start` on a home; resolves once it listens, with its URL and a stop function. */
const startNode = async (home: string, extra: string[] = []) => {
  const child = spawn(process.execPath, [BIN, 'start', '--home', home, '--json', ...extra], { env: { ...process.env, GRID_HOME: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const started = await new Promise<{ url: string; peers: string[] }>((resolve, reject) => {
    let stdout = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      if (stdout.includes('\n')) resolve(JSON.parse(stdout.split('\n')[0]!));
    });
    child.on('close', (code) => reject(new Error(`grid start exited ${code}: ${stderr}`)));
  });
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  return { url: started.url, peers: started.peers, stop: () => (child.kill('SIGTERM'), exited), exited };
};

test('a running node: other homes call it with --via, its own home goes through it, SIGTERM stops it cleanly', async (t) => {
  const alice = await tempDir(t);
  const bob = await tempDir(t);
  await ok(alice, ['init']);
  const bobPrincipal = await ok(bob, ['init']);
  const who = join(alice, 'who.js');
  await writeFile(who, 'export const who = (ctx) => ctx.caller; export const add = (ctx, a, b) => a + b;');
  const whoToken = await ok(alice, ['issue', who, '--export', 'who']);
  const add = await ok(alice, ['issue', who, '--export', 'add', '--name', 'add']);
  const node = await startNode(alice);
  t.teardown(() => node.stop());
  t.regex(node.url, /^ws:\/\/127\.0\.0\.1:\d+$/);
  t.is(await ok(bob, ['call', whoToken, '--via', node.url]), JSON.stringify(bobPrincipal), 'the caller is the authenticated principal');
  t.is(await ok(bob, ['call', add, '2', '3', '--via', node.url]), '5');
  t.is(await ok(bob, ['call', `grid://${add}?via=${encodeURIComponent(node.url)}`, '6', '7']), '13', 'a grid URL says where to go');
  t.is(await ok(alice, ['call', 'add', '4', '5']), '9', "the home's own CLI goes through its node");
  // Publishing, issuing and revoking on the home go through the node too, as the node's own principal.
  const greet = await ok(alice, ['issue', 'examples/hello.js', '--export', 'greet', '--env', '{"greeting":"hey"}']);
  t.is(await ok(bob, ['call', greet, '"Bob"', '--via', node.url]), '"hey, Bob"');
  t.regex(await ok(alice, ['revoke', greet]), /^revoked bafy/);
  const revoked = await grid(bob, ['call', greet, '"Bob"', '--via', node.url]);
  t.is(revoked.code, 3);
  t.regex(await ok(alice, ['graph']), /greet.*by did:key:/, 'the journal is readable while the node runs');
  const busy = await grid(alice, ['start']);
  t.is(busy.code, 1);
  t.regex(busy.stderr, /^grid: a node is running on this home \(ws:\/\/127\.0\.0\.1:\d+, pid \d+\); stop it first$/);
  t.is(await node.stop(), 0);
  const graph = await ok(alice, ['graph']);
  t.regex(graph, /add\(2, 3\) by did:key:/, 'the remote calls are in the journal');
  const gone = await grid(bob, ['call', add, '1', '1', '--via', node.url]);
  t.is(gone.code, 4);
  t.regex(gone.stderr, /^grid: cannot reach ws:\/\/127\.0\.0\.1:\d+/);
});

test('a node remembers the peers it was given and reconnects to them on the next start', async (t) => {
  const origin = await tempDir(t);
  const relay = await tempDir(t);
  const client = await tempDir(t);
  await ok(origin, ['init']);
  await ok(relay, ['init']);
  await ok(client, ['init']);
  const add = await ok(origin, ['issue', 'examples/guard.js', '--export', 'add']);
  const a = await startNode(origin);
  t.teardown(() => a.stop());
  const first = await startNode(relay, ['--peer', a.url]);
  t.deepEqual(first.peers, [a.url]);
  t.is(await ok(client, ['call', add, '2', '2', '--via', first.url]), '4', 'the relay forwards to its peer');
  t.is(await first.stop(), 0);
  const second = await startNode(relay);
  t.teardown(() => second.stop());
  t.deepEqual(second.peers, [a.url], 'remembered');
  t.is(await ok(client, ['call', add, '3', '4', '--via', second.url]), '7');
  t.is((await grid(relay, ['start', '--peer', 'http://not-a-ws-url'])).stderr, 'grid: --peer takes a ws:// or wss:// URL (got "http://not-a-ws-url")');
});
