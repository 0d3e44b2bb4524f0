/**
 * The real `grid` binary, spawned on temporary homes, driven the way a
 * person or a script drives it.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './_helpers.js';

const BIN = join(process.cwd(), 'bin', 'grid.js');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

const grid = (home: string, args: string[], options: { input?: string | Uint8Array; env?: Record<string, string> } = {}): Promise<Result> =>
  gridExactly([...args, '--home', home], options);

/** `grid` with exactly these arguments (no `--home` added). */
const gridExactly = (args: string[], options: { input?: string | Uint8Array; env?: Record<string, string> } = {}): Promise<Result> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
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

/** Loaded into a `grid` process (NODE_OPTIONS): says on stderr, as it exits, whether Babel and ws (the network stack) were loaded. */
const LOAD_PROBE = `data:text/javascript;base64,${Buffer.from(
  "import { createRequire } from 'node:module'; const r = createRequire(process.cwd() + '/'); const loaded = (part) => Object.keys(r.cache).some((k) => k.includes(part)); process.on('exit', () => process.stderr.write(`\\nloaded: parser ${loaded('/@babel/')} network ${loaded('/node_modules/ws/')}\\n`));",
).toString('base64')}`;

test('only commands that analyze a module load the parser (Babel), only those that reach a node the network stack (~0.5 s and ~0.3 s a process)', async (t) => {
  const home = await tempDir(t);
  const loaded = async (args: string[]) => {
    const result = await grid(home, args, { env: { NODE_OPTIONS: `--import=${LOAD_PROBE}` } });
    t.is(result.code, 0, result.stderr);
    return /loaded: (.*)$/.exec(result.stderr)?.[1];
  };
  t.is(await loaded(['init']), 'parser false network false');
  t.is(await loaded(['names']), 'parser false network false');
  t.is(await loaded(['publish', 'examples/hello.js']), 'parser true network false');
  /** A node on the home, and what it had loaded when it stopped. */
  const startNode = async () => {
    const node = spawn(process.execPath, [BIN, 'start', '--home', home, '--json'], { env: { ...process.env, GRID_HOME: '', NODE_OPTIONS: `--import=${LOAD_PROBE}` }, stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => node.kill('SIGKILL'));
    let stderr = '';
    node.stderr.on('data', (chunk) => (stderr += chunk));
    await new Promise((resolve) => node.stdout.once('data', resolve));
    return async () => {
      node.kill('SIGTERM');
      await new Promise((resolve) => node.once('close', resolve));
      return /loaded: (.*)$/m.exec(stderr)?.[1];
    };
  };
  // A node listens without the parser: only a module analyzed nowhere yet needs it.
  t.is(await (await startNode())(), 'parser false network true');
  const stop = await startNode();
  // Through the node: the parser is the node's business, not this process's.
  t.is(await loaded(['names']), 'parser false network false');
  t.is(await loaded(['publish', 'examples/hello.js']), 'parser false network true');
  t.is(await loaded(['publish', 'examples/guard.js']), 'parser false network true');
  t.is(await stop(), 'parser true network true', 'the node loaded it to analyze a module new to the home');
  // A call runs a module this home analyzed when it was published: its kept analysis, no parser.
  const token = (await grid(home, ['issue', 'examples/hello.js', '--export', 'greet', '--env', '{"greeting":"hi"}'])).stdout;
  t.is(await loaded(['call', token, '"Ada"']), 'parser false network false');
  // The analyses are a cache: damaged or gone, the module is parsed again and the call answers the same.
  const kept = join(home, 'analyses');
  const [analyzer] = await readdir(kept);
  for (const file of await readdir(join(kept, analyzer!))) await writeFile(join(kept, analyzer!, file), 'not CBOR');
  t.is(await loaded(['call', token, '"Bo"']), 'parser true network false');
  t.is(await loaded(['call', token, '"Cy"']), 'parser false network false', 'and kept again');
  await rm(kept, { recursive: true });
  const again = await grid(home, ['call', token, '"Di"']);
  t.is(again.stdout, '"hi, Di"', again.stderr);
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
  t.deepEqual(JSON.parse(refused.stdout), { status: 'revoked', code: 'refused', reason: 'add expects two small integers, got string and number' });
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
    // A run loads only the verb it names; one it does not know loads them all, to suggest the nearest.
    [['strat'], /^grid: unknown command "strat" \(did you mean start\?\); run `grid --help`$/],
    [['--home', home, 'vot'], /^grid: unknown command "vot" \(did you mean vote\?\)/],
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
  const timedOutJson = await grid(home, ['call', waiting, '--timeout', '100', '--json']);
  t.is(timedOutJson.code, 4, 'the exit code follows the code');
  t.deepEqual(JSON.parse(timedOutJson.stdout), { status: 'revoked', code: 'time-limit', reason: 'time limit' });
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

/**
 * Start `grid start` on a home; resolves once it listens, with its URL and a
 * stop function. The test's teardown kills it whatever happens, so a failed
 * assertion never leaves a node that keeps ava from exiting.
 */
const startNode = async (t: ExecutionContext, home: string, extra: string[] = []) => {
  const child = spawn(process.execPath, [BIN, 'start', '--home', home, '--json', ...extra], { env: { ...process.env, GRID_HOME: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
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
  const node = await startNode(t, alice);
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
  const a = await startNode(t, origin);
  t.teardown(() => a.stop());
  const first = await startNode(t, relay, ['--peer', a.url]);
  t.deepEqual(first.peers, [a.url]);
  t.is(await ok(client, ['call', add, '2', '2', '--via', first.url]), '4', 'the relay forwards to its peer');
  t.is(await first.stop(), 0);
  const second = await startNode(t, relay);
  t.teardown(() => second.stop());
  t.deepEqual(second.peers, [a.url], 'remembered');
  t.is(await ok(client, ['call', add, '3', '4', '--via', second.url]), '7');
  t.is((await grid(relay, ['start', '--peer', 'http://not-a-ws-url'])).stderr, 'grid: --peer takes a ws:// or wss:// URL (got "http://not-a-ws-url")');
});

test('global options go before or after the verb; negative numbers are arguments; --version and --help per verb', async (t) => {
  const home = await tempDir(t);
  const me = await ok(home, ['init']);
  t.is((await gridExactly(['--home', home, 'issue', 'examples/guard.js', '--export', 'add', '--name', 'add'])).code, 0, '--home before the verb');
  t.is(await ok(home, ['call', 'add', '-6', '4']), '-2', 'a negative number is an argument, not an option');
  t.is((await gridExactly(['--json', '--home', home, 'call', 'add', '-1', '-2'])).stdout, '{"status":"fulfilled","value":-3}', '--json before the verb');
  t.is((await gridExactly(['call', 'add', '1', '2', '--json', '--home', home])).stdout, '{"status":"fulfilled","value":3}', '--json after it');
  const version = await gridExactly(['--version']);
  t.is(version.code, 0);
  t.is(version.stdout, JSON.parse(await readFile('package.json', 'utf8')).version);
  // Help with no verb loads every verb, in their order.
  const verbs = [...(await gridExactly(['--help'])).stdout.matchAll(/^  ([a-z]+) /gm)].map((match) => match[1]);
  t.deepEqual(verbs, ['init', 'publish', 'issue', 'call', 'revoke', 'graph', 'reputation', 'names', 'name', 'inspect', 'run', 'delegate', 'pending', 'doc', 'app', 'propose', 'vote', 'repl', 'repair', 'gc', 'start', 'web', 'invite', 'join', 'help']);
  const help = await gridExactly(['delegate', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /^Usage: grid delegate \[options\] <token>/);
  t.regex(help.stdout, /--approvals <k>/);
  t.regex(help.stdout, /\{"\$type": "string"\}\s+one of: string, number, integer/, 'the pattern language is in the help');
  t.regex(help.stdout, /--home <dir>/, 'with the global options');
  t.regex((await gridExactly(['help', 'call'])).stdout, /^Usage: grid call \[options\] <token> \[args\.\.\.\]/);
  const unknownOption = await grid(home, ['call', 'add', '--timout', '5']);
  t.is(unknownOption.code, 1);
  t.is(unknownOption.stderr, "grid: Unknown option '--timout' (did you mean --timeout?); run `grid call --help`");
  t.is((await grid(home, ['web', 'extra'])).stderr, 'grid: web takes no arguments; usage: grid web [options]');
  // A --via that is no node's URL is refused before anything is done: the revocation is not made.
  const badVia = await grid(home, ['revoke', 'add', '--via', 'localhost:7000']);
  t.is(badVia.code, 1);
  t.is(badVia.stderr, 'grid: --via takes a node\'s ws:// or wss:// URL (got "localhost:7000")');
  t.is(await ok(home, ['call', 'add', '1', '1']), '2', 'still callable');
  // Options are checked when the delegation is made, each with one line.
  const cases: Array<[string[], string]> = [
    [['--expires', '2020-01-01T00:00Z'], 'grid: --expires "2020-01-01T00:00Z" is in the past (2020-01-01T00:00:00.000Z): the delegation could never be called'],
    [['--pattern', '[{"$type":"str"}]'], 'grid: --pattern: arguments[0] has an unknown $type "str" (the types are string, number, integer, boolean, null, bytes, link, list, record)'],
    [['--pattern', '[{"$typ":"string"}]'], 'grid: --pattern: arguments[0] uses an unknown operator "$typ" (the operators are $any, $type, $min, $max, $maxLength, $oneOf)'],
    [['--pattern', '{"$type":"string"}'], `grid: --pattern matches the list of arguments: write a list, e.g. '[{"$type": "string"}]' (got "{\\"$type\\":\\"string\\"}")`],
    [['--pattern', '"Ada"'], `grid: --pattern matches the list of arguments: write a list, e.g. '[{"$type": "string"}]' (got "\\"Ada\\"")`],
    [['--approver', me], 'grid: --approver needs --approvals K: how many of the approvers must approve each call'],
    [['--approvals', '2', '--approver', me, '--approver', me], 'grid: --approvals 2 needs at least 2 --approver principals (got 1 distinct)'],
    [['--uses', '-1'], 'grid: --uses takes a positive whole number (got "-1")'],
    [['--rate', '0/min'], 'grid: --rate takes a positive whole number (got "0")'],
  ];
  for (const [options, message] of cases) {
    const result = await grid(home, ['delegate', 'add', '--to', me, ...options]);
    t.is(result.code, 1, options.join(' '));
    t.is(result.stderr, message, options.join(' '));
  }
  t.regex(await ok(home, ['delegate', 'add', '--to', me, '--pattern', '[{"$type":"integer","$min":0},{"$oneOf":[1,2]}]', '--expires', '1h']), /^grid:\/\/bafy/);
});

test('errors name what is wrong: a missing file, a pet-name typo, a module for a token, a .wasm that is not WebAssembly, a name already taken', async (t) => {
  const home = await tempDir(t);
  const me = await ok(home, ['init']);
  const module = await ok(home, ['publish', 'examples/hello.js', '--name', 'hello']);
  const token = await ok(home, ['issue', 'hello', '--export', 'greet', '--env', '{"greeting":"hi"}', '--name', 'hi']);
  const notWasm = join(home, 'broken.wasm');
  await writeFile(notWasm, 'export const f = () => 1;');
  const cases: Array<[string[], string, string]> = [
    [['issue', 'no/such/module.js', '--export', 'f'], 'grid: no such file: no/such/module.js', 'ERR_NO_SUCH_FILE'],
    [['run', 'missing.wasm'], 'grid: no such file: missing.wasm', 'ERR_NO_SUCH_FILE'],
    [['delegate', 'hi', '--to', me, '--policy', 'my-policy.js={"limit":3}'], 'grid: no such file: my-policy.js', 'ERR_NO_SUCH_FILE'],
    [['call', 'hii', '"Ada"'], 'grid: no such name "hii"; did you mean "hi"? (`grid names` lists them)', 'ERR_NO_SUCH_NAME'],
    [['issue', 'helo', '--export', 'greet'], 'grid: no such name "helo"; did you mean "hello"? (`grid names` lists them)', 'ERR_NO_SUCH_NAME'],
    [['call', module, '"Ada"'], `grid: "${module}" is a module, not a token: make a closure over it with \`grid issue ${module} --export NAME\``, 'ERR_NOT_A_TOKEN'],
    [['publish', notWasm], 'grid: broken.wasm is not WebAssembly: it does not start with the \\0asm header (compile .wat text with wat2wasm; see README)', 'ERR_NOT_WASM'],
    [['issue', notWasm, '--export', 'f'], 'grid: broken.wasm is not WebAssembly: it does not start with the \\0asm header (compile .wat text with wat2wasm; see README)', 'ERR_NOT_WASM'],
    [['issue', 'hello', '--export', 'greet', '--name', 'hi'], 'grid: "hi" already names token ', 'ERR_NAME_TAKEN'],
    [['name', 'hello', token], `grid: "hello" already names module ${module}; add --force to give the name to ${token}`, 'ERR_NAME_TAKEN'],
  ];
  for (const [args, message, code] of cases) {
    const result = await grid(home, [...args, '--json']);
    t.is(result.code, 1, args.join(' '));
    t.true(result.stderr.startsWith(message), `${args.join(' ')}: ${result.stderr}`);
    t.is(JSON.parse(result.stdout).code, code, args.join(' '));
  }
  // Pet names work in every verb, and --force moves one.
  t.regex(await ok(home, ['inspect', 'hi']), /^closure record \(\d+ bytes\)[^]*"greeting": "hi"/);
  t.regex(await ok(home, ['inspect', 'hello']), /^text \(\d+ bytes\)\n[^]*export const greet/);
  t.is(await ok(home, ['name', 'me', me]), `me = principal ${me}`);
  t.is(await ok(home, ['name', 'myself', 'me']), `myself = principal ${me}`, 'a pet name for what another names');
  t.regex(await ok(home, ['reputation', 'myself']), /^issuer\t/);
  t.is(await ok(home, ['name', 'hi', token]), `hi = token ${token}`, 'naming the same thing again is no conflict');
  const other = await ok(home, ['issue', 'hello', '--export', 'greet', '--env', '{"greeting":"yo"}', '--name', 'hi', '--force']);
  t.is(await ok(home, ['call', 'hi', '"Ada"']), '"yo, Ada"');
  t.not(other, token);
});

test('graph narrows a large journal: --since, --caller, --limit', async (t) => {
  const alice = await tempDir(t);
  const bob = await tempDir(t);
  const me = await ok(alice, ['init']);
  const bobPrincipal = await ok(bob, ['init']);
  await ok(alice, ['name', 'bob', bobPrincipal]);
  const add = await ok(alice, ['issue', 'examples/guard.js', '--export', 'add', '--name', 'add']);
  await ok(alice, ['call', 'add', '1', '1']);
  const before = JSON.parse(await ok(alice, ['graph', '--json'])).entries as Array<{ seq: number; at: number; kind: string }>;
  const node = await startNode(t, alice);
  t.teardown(() => node.stop());
  t.is(await ok(bob, ['call', add, '2', '3', '--via', node.url]), '5');
  t.is(await ok(alice, ['call', 'add', '4', '5']), '9');
  await node.stop();
  type Row = { seq: number; at: number; kind: string; caller?: string; call?: number };
  const all = JSON.parse(await ok(alice, ['graph', '--json'])).entries as Row[];
  const seqs = (rows: Row[]) => rows.map((row) => row.seq);
  const graph = async (...args: string[]) => JSON.parse(await ok(alice, ['graph', '--json', ...args])).entries as Row[];

  // --since: a time (the first call's outcome, plus one millisecond), or a duration back from now.
  const cut = before.at(-1)!.at + 1;
  t.deepEqual(seqs(await graph('--since', new Date(cut).toISOString())), seqs(all.filter((row) => row.at >= cut)));
  t.true(all.some((row) => row.at < cut), 'some records are older');
  t.deepEqual(seqs(await graph('--since', '1h')), seqs(all));
  t.deepEqual(await graph('--since', '2099-01-01'), []);

  // --caller: a principal's calls with their outcomes; a pet name works too.
  const bobs = await graph('--caller', 'bob');
  t.deepEqual(bobs.map((row) => row.kind), ['call', 'fulfilled']);
  t.is(bobs[0]!.caller, bobPrincipal);
  t.is(bobs[1]!.call, bobs[0]!.seq);
  t.deepEqual(seqs(await graph('--caller', bobPrincipal)), seqs(bobs));
  const mine = await graph('--caller', me);
  t.deepEqual(mine.filter((row) => row.kind === 'call').length, 2);
  t.false(mine.some((row) => row.caller === bobPrincipal));

  // --limit: the latest N records (seals, which only sign, not counted); with the others, of what they kept.
  const events = all.filter((row) => row.kind !== 'seal');
  t.deepEqual(seqs(await graph('--limit', '3')), seqs(events.slice(-3)));
  t.deepEqual(seqs(await graph('--caller', me, '--limit', '1')), seqs(mine.slice(-1)));
  const text = await ok(alice, ['graph', '--caller', 'bob']);
  t.regex(text, /add\(2, 3\) by bob/);
  t.notRegex(text, /add\(4, 5\)/);
  for (const [args, message] of [
    [['--since', 'yesterday'], 'grid: --since takes a duration such as 1h or a time such as 2026-11-28T09:00Z (got "yesterday")'],
    [['--limit', '0'], 'grid: --limit takes a positive whole number (got "0")'],
    [['--caller', 'bbo'], 'grid: no such name "bbo"; did you mean "bob"? (`grid names` lists them)'],
  ] as const) {
    const result = await grid(alice, ['graph', ...args]);
    t.is(result.code, 1);
    t.is(result.stderr, message);
  }
});
