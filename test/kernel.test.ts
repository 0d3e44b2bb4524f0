import '../src/perimeter/lockdown.js';
import test, { type ExecutionContext } from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openKernel, type Kernel, type Outcome } from '../src/index.js';
import { tempDir, journalEntries } from './_helpers.js';
import { randomBytes } from 'node:crypto';
import { generateIdentity, type Identity } from '../src/identity/index.js';
import type { BlockStore } from '../src/store/types.js';
import type { KernelPowers } from '../src/kernel/kernel.js';
import { encodeValue } from '../src/closures/values.js';
import type { Token } from '../src/interface/ids.js';

const example = (name: string) => readFile(join('examples', name), 'utf8');

// One vat per kernel: this file runs many kernels at once on a small machine.
const memoryKernel = async (t: { teardown: (fn: () => unknown) => void }, limits = {}) => {
  const kernel = await openKernel({ memory: true, limits: { vats: 1, ...limits } });
  t.teardown(() => kernel.close());
  return kernel;
};

const issue = async (kernel: Kernel, source: string, exportName: string, env: unknown = {}) =>
  kernel.issue({ code: await kernel.publish(source), export: exportName, env });

const kinds = async (kernel: Kernel) => (await journalEntries(kernel.journal)).filter((e) => e.kind !== 'seal').map((e) => e.kind);

test('the basic loop: publish, issue, call, revoke', async (t) => {
  const kernel = await memoryKernel(t);
  const code = await kernel.publish(await example('hello.js'));
  t.regex(code, /^bafk/);
  const token = await kernel.issue({ code, export: 'greet', env: { greeting: 'hi' } });
  t.regex(token, /^bafy/);
  t.deepEqual(await kernel.call(token, ['Ada']), { status: 'fulfilled', value: 'hi, Ada' });
  await kernel.revoke(token, 'enough');
  t.deepEqual(await kernel.call(token, ['Ada']), { status: 'revoked', code: 'token-revoked', reason: 'enough' });
  t.deepEqual(await kinds(kernel), ['issue', 'call', 'fulfilled', 'revoke', 'call', 'revoked']);
});

test('numbers reach a JS closure exactly: integers beyond 2^53 as bigints, -0 with its sign; NaN and infinities are refused', async (t) => {
  const kernel = await memoryKernel(t);
  const code = await kernel.publish(`
    export const kind = (ctx, x) => [typeof x, Object.is(x, -0)];
    export const next = (ctx, x) => x + 1n;
    export const same = (ctx, x) => x;
    export const nan = () => 0 / 0;
    export const huge = () => 2n ** 64n;`);
  const call = async (name: string, args: unknown[]) => kernel.call(await kernel.issue({ code, export: name }), args);
  t.deepEqual(await call('kind', [2n ** 53n - 1n]), { status: 'fulfilled', value: ['number', false] }, 'a safe integer is a number, however it was sent');
  t.deepEqual(await call('kind', [2n ** 53n]), { status: 'fulfilled', value: ['bigint', false] });
  t.deepEqual(await call('kind', [-0]), { status: 'fulfilled', value: ['number', true] });
  t.deepEqual(await call('next', [9007199254740993n]), { status: 'fulfilled', value: 9007199254740994n });
  t.deepEqual(await call('next', [2n ** 64n - 2n]), { status: 'fulfilled', value: 2n ** 64n - 1n });
  t.deepEqual(await call('next', [4n]), { status: 'revoked', code: 'crash', reason: 'Cannot mix BigInt and other types, use explicit conversions' }, 'a safe integer arrives as a number');
  t.true(Object.is(((await call('same', [-0])) as { value: unknown }).value, -0));
  t.deepEqual(await call('nan', []), { status: 'revoked', code: 'crash', reason: 'bad result: NaN is not grid data (numbers are finite)' });
  t.deepEqual(await call('huge', []), { status: 'revoked', code: 'crash', reason: "bad result: integer 18446744073709551616 is beyond the grid's integers (-2^64 to 2^64-1)" });
  t.deepEqual(await call('same', [Number.NaN]), { status: 'revoked', code: 'invalid', reason: 'bad arguments: NaN is not grid data (numbers are finite)' });
  t.deepEqual(await call('same', [2n ** 64n]), { status: 'revoked', code: 'invalid', reason: "bad arguments: integer 18446744073709551616 is beyond the grid's integers (-2^64 to 2^64-1)" });
  const nan = (await journalEntries(kernel.journal)).find((e) => e.kind === 'revoked' && e.reason.startsWith('bad result: NaN'));
  t.is(nan?.kind === 'revoked' ? nan.cause : undefined, 'crash', "a result that is not grid data is the closure's fault");
});

test('an argument pattern weighs an integer beyond 2^53 (a bigint) as the integer it is', async (t) => {
  const kernel = await memoryKernel(t);
  const root = await issue(kernel, 'export const echo = (ctx, ...args) => args;', 'echo');
  const bob = generateIdentity((n) => new Uint8Array(randomBytes(n))).principal;
  const pattern = [{ $type: 'integer', $min: 0 }, { $type: 'number', $max: 100 }];
  const guarded = await kernel.delegate({ token: root, to: [bob], policies: [{ module: 'pattern', settings: { args: pattern } }] });
  const call = (args: unknown[]) => kernel.call(guarded, args, { caller: bob });
  t.deepEqual(await call([2n ** 60n, 5]), { status: 'fulfilled', value: [2n ** 60n, 5] });
  const refusal = async (args: unknown[]) => ((await call(args)) as { reason?: string }).reason?.replace(/^.*argument pattern: /, '');
  t.is(await refusal([-(2n ** 60n), 5]), 'arguments[0] is below 0');
  t.is(await refusal([1, 2n ** 60n]), 'arguments[1] is above 100');
  t.is(await refusal([1.5, 5]), 'arguments[0] is not a integer');
});

test('outcomes are hardened', async (t) => {
  const kernel = await memoryKernel(t);
  const token = await issue(kernel, 'export const f = () => ({ list: [1, 2] })', 'f');
  const outcome = await kernel.call(token, []);
  t.true(Object.isFrozen(outcome));
  t.true(outcome.status === 'fulfilled' && Object.isFrozen((outcome.value as { list: unknown[] }).list));
});

test('the same module and env issued twice give different tokens (the nonce)', async (t) => {
  const kernel = await memoryKernel(t);
  const code = await kernel.publish('export const f = () => 1');
  t.not(await kernel.issue({ code, export: 'f' }), await kernel.issue({ code, export: 'f' }));
});

test('issue refuses a missing export and names the ones there are', async (t) => {
  const kernel = await memoryKernel(t);
  const code = await kernel.publish('export const f = () => 1; export const g = () => 2;');
  await t.throwsAsync(kernel.issue({ code, export: 'h' }), { message: /has no export "h" \(it exports: f, g\)/ });
  await t.throwsAsync(kernel.issue({ code, export: 'not an identifier' }), { message: /export name must be a JavaScript identifier/ });
});

test('bad tokens and bad arguments end as revoked, never throw', async (t) => {
  const kernel = await memoryKernel(t);
  const token = await issue(kernel, 'export const id = (ctx, x) => x', 'id');
  const cases: Array<[unknown, unknown, RegExp]> = [
    ['not a token', [], /token is not a valid CID/],
    [42, [], /token must be a string/],
    ['bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', [], /wrong codec/],
    ['bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', [], /unknown token/],
    [token, 'not-an-array', /arguments must be an array/],
    [token, [undefined], /undefined is not grid data/],
    [token, [() => 1], /function is not grid data/],
    [token, [new Map()], /only plain objects are grid data/],
    [token, [{ '/': 'nonsense' }], /not a valid link/],
  ];
  for (const [target, args, reason] of cases) {
    const outcome = await kernel.call(target as string, args as unknown[]);
    t.is(outcome.status, 'revoked', String(target));
    t.regex((outcome as { reason: string }).reason, reason);
  }
});

test('a closure that throws, or calls ctx.revoke, ends revoked; the token stays usable', async (t) => {
  const kernel = await memoryKernel(t);
  const guard = await issue(kernel, await example('guard.js'), 'add');
  t.deepEqual(await kernel.call(guard, ['1', 2]), { status: 'revoked', code: 'refused', reason: 'add expects two small integers, got string and number' });
  t.deepEqual(await kernel.call(guard, [1, 2]), { status: 'fulfilled', value: 3 });
  const thrower = await issue(kernel, 'export const f = () => { throw new TypeError("boom") }', 'f');
  t.deepEqual(await kernel.call(thrower, []), { status: 'revoked', code: 'crash', reason: 'boom' });
  const rejecter = await issue(kernel, 'export const f = async () => { throw "plain" }', 'f');
  t.deepEqual(await kernel.call(rejecter, []), { status: 'revoked', code: 'crash', reason: 'plain' });
});

test('a closure calls a token from its env', async (t) => {
  const kernel = await memoryKernel(t);
  const greet = await issue(kernel, await example('hello.js'), 'greet', { greeting: 'hello' });
  const relay = await issue(kernel, await example('relay.js'), 'relay', { target: { '/': greet } });
  t.deepEqual(await kernel.call(relay, ['Bob']), { status: 'fulfilled', value: { relayed: 'hello, Bob' } });
  const call = (await journalEntries(kernel.journal)).find((e) => e.kind === 'call' && e.token === greet);
  t.truthy(call && call.kind === 'call' && call.parent !== undefined, 'nested call records its parent');
});

test('a revoked inner token makes the relay revoked with the reason', async (t) => {
  const kernel = await memoryKernel(t);
  const greet = await issue(kernel, await example('hello.js'), 'greet', { greeting: 'hello' });
  const relay = await issue(kernel, await example('relay.js'), 'relay', { target: { '/': greet } });
  await kernel.revoke(greet, 'withdrawn');
  t.deepEqual(await kernel.call(relay, ['Bob']), { status: 'revoked', code: 'passed-on', reason: 'revoked: withdrawn' });
});

test('a further promise: promised, then followed to its value', async (t) => {
  const kernel = await memoryKernel(t);
  const order = await issue(kernel, await example('later.js'), 'order');
  const first = await kernel.call(order, ['soup']);
  t.is(first.status, 'promised');
  const further = (first as Extract<Outcome, { status: 'promised' }>).token;
  t.deepEqual(await kernel.call(further, []), { status: 'fulfilled', value: 'your soup is ready' });
  t.deepEqual(await kernel.call(order, ['tea'], { follow: true }), { status: 'fulfilled', value: 'your tea is ready' });
});

test('ctx.call depth and fan-out are bounded', async (t) => {
  const kernel = await memoryKernel(t, { maxCallDepth: 5, maxFanOut: 3 });
  const recurse = await issue(kernel, 'export const r = (ctx, self, n) => ctx.call(self, self, n + 1)', 'r');
  const deep = await kernel.call(recurse, [{ '/': recurse }, 0]);
  t.is(deep.status, 'revoked');
  t.regex((deep as { reason: string }).reason, /call depth limit \(5\)/);
  const leaf = await issue(kernel, 'export const f = () => 1', 'f');
  const fan = await issue(kernel, 'export const f = async (ctx, t) => { for (let i = 0; i < 5; i++) await ctx.call(t); return 1 }', 'f');
  const wide = await kernel.call(fan, [{ '/': leaf }]);
  t.is(wide.status, 'revoked');
  t.regex((wide as { reason: string }).reason, /fan-out limit/);
});

test('a call that never settles ends revoked with "time limit"', async (t) => {
  const kernel = await memoryKernel(t, { callTimeoutMs: 50 });
  const stuck = await issue(kernel, 'export const f = () => new Promise(() => {})', 'f');
  t.deepEqual(await kernel.call(stuck, []), { status: 'revoked', code: 'time-limit', reason: 'time limit' });
});

test('pure calls are cached; a hit does not execute and is journaled', async (t) => {
  const kernel = await memoryKernel(t);
  const greet = await issue(kernel, await example('hello.js'), 'greet', { greeting: 'hi' });
  await kernel.call(greet, ['Ada']);
  const second = await kernel.call(greet, ['Ada']);
  t.deepEqual(second, { status: 'fulfilled', value: 'hi, Ada' });
  t.deepEqual(await kinds(kernel), ['issue', 'call', 'fulfilled', 'hit']);
  await kernel.call(greet, ['Bob']);
  t.is((await kinds(kernel)).at(-1), 'fulfilled', 'different arguments miss');
});

test('answerCached gives a peer\'s cache hit at once, as answer would, journaled as its hit; anything else is left to answer', async (t) => {
  const kernel = await memoryKernel(t);
  const greet = await issue(kernel, await example('hello.js'), 'greet', { greeting: 'hi' });
  const peer = generateIdentity(random).principal;
  const argsBytes = encodeValue(['Ada']);
  t.is(kernel.answerCached(greet as Token, ['Ada'], argsBytes, peer), undefined, 'nothing kept yet');
  t.deepEqual(await kinds(kernel), ['issue'], 'and nothing journaled');
  const first = await kernel.answer(greet, ['Ada'], { caller: peer, argsBytes });
  const second = await kernel.answer(greet, ['Ada'], { caller: peer, argsBytes });
  const now = kernel.answerCached(greet as Token, ['Ada'], argsBytes, peer);
  t.deepEqual(now, second, 'the same answer as a hit through answer');
  t.like(now, { outcome: { status: 'fulfilled', value: 'hi, Ada' }, cacheable: true });
  t.deepEqual(first.outcome, now!.outcome);
  const hits = (await journalEntries(kernel.journal)).filter((e) => e.kind === 'hit');
  t.deepEqual(hits.map((e) => (e as { caller: string }).caller), [peer, peer], 'each hit journaled, as the peer\'s');
  t.is(kernel.answerCached(greet as Token, ['Bob'], encodeValue(['Bob']), peer), undefined, 'other arguments miss');
  await kernel.revoke(greet);
  t.is(kernel.answerCached(greet as Token, ['Ada'], argsBytes, peer), undefined, 'a revoked token keeps no answers');
  t.is((await kernel.answer(greet, ['Ada'], { caller: peer, argsBytes })).outcome.status, 'revoked');
});

test('calls that read ctx.caller or call out are not cached', async (t) => {
  const kernel = await memoryKernel(t);
  const who = await issue(kernel, 'export const who = (ctx) => ctx.caller', 'who');
  t.deepEqual(await kernel.call(who, []), { status: 'fulfilled', value: kernel.principal });
  await kernel.call(who, []);
  t.false((await kinds(kernel)).includes('hit'));
});

test('revoking a token invalidates its cache entries', async (t) => {
  const kernel = await memoryKernel(t);
  const greet = await issue(kernel, await example('hello.js'), 'greet', { greeting: 'hi' });
  await kernel.call(greet, ['Ada']);
  await kernel.revoke(greet);
  t.is((await kernel.call(greet, ['Ada'])).status, 'revoked');
});

test('every call gets a fresh module instance: no state survives a call', async (t) => {
  const kernel = await memoryKernel(t);
  const code = await kernel.publish('let n = 0; const seen = new Map(); export const inc = (ctx, k) => { seen.set(k, true); n += 1; return [n, seen.size]; }');
  const a = await kernel.issue({ code, export: 'inc' });
  const b = await kernel.issue({ code, export: 'inc' });
  t.deepEqual(await kernel.call(a, ['x']), { status: 'fulfilled', value: [1, 1] });
  t.deepEqual(await kernel.call(a, ['y']), { status: 'fulfilled', value: [1, 1] });
  t.deepEqual(await kernel.call(b, ['z']), { status: 'fulfilled', value: [1, 1] });
});

test('modules import other modules by CID and the closure API by name', async (t) => {
  const kernel = await memoryKernel(t);
  const lib = await kernel.publish('export const double = (x) => 2 * x; export default 7;');
  const app = await kernel.publish(`import seven, { double } from '${lib}'; import { isToken } from 'promisegrid'; export const f = (ctx, x) => [double(x) + seven, isToken(ctx.env.t)];`);
  const other = await issue(kernel, 'export const g = () => 0', 'g');
  const token = await kernel.issue({ code: app, export: 'f', env: { t: { '/': other } } });
  t.deepEqual(await kernel.call(token, [5]), { status: 'fulfilled', value: [17, true] });
  const reexport = await kernel.publish(`export { double as twice } from '${lib}'; export * from '${lib}';`);
  const user = await kernel.publish(`import { twice, double } from '${reexport}'; export const f = (ctx) => twice(3) + double(1)`);
  t.deepEqual(await kernel.call(await kernel.issue({ code: user, export: 'f' }), []), { status: 'fulfilled', value: 8 });
});

test('publish refuses what grid modules may not do, quoting the culprit', async (t) => {
  const kernel = await memoryKernel(t);
  const refusals: Array<[string, RegExp]> = [
    ["import fs from 'fs'; export const f = () => fs", /forbidden import "fs"/],
    ["import { readFile } from 'node:fs/promises'; export const f = () => 1", /forbidden import "node:fs\/promises"/],
    ["import x from './local.js'; export const f = () => x", /forbidden import "\.\/local\.js"/],
    ["import x from 'https://example.com/x.js'; export const f = () => x", /forbidden import "https:\/\/example\.com\/x\.js"/],
    ["export const f = () => import('fs')", /dynamic import\(\) is not allowed/],
    ['export const f = () => import.meta', /import\.meta is not available/],
    ['export let n = 1; n = 2;', /exports must be constant bindings; "n"/],
    ['const x = await Promise.resolve(1); export const f = () => x;', /top-level await is not supported/],
    ['export const f = (', /module does not parse/],
    ["import x from 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'; export const f = () => x", /unknown module/],
    ['const s = "<!-- not a comment -->"; export const f = () => s', /publish: .*(HTML comment|html comment)/i],
  ];
  for (const [source, message] of refusals) {
    await t.throwsAsync(kernel.publish(source), { message }, source);
  }
});

test('WebAssembly bytes are stored as modules; bad wasm is refused', async (t) => {
  const kernel = await memoryKernel(t);
  const minimal = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  t.regex(await kernel.publish(minimal), /^bafk/);
  await t.throwsAsync(kernel.publish(new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x09])), { message: /invalid WebAssembly/ });
  await t.throwsAsync(kernel.publish(new Uint8Array([0xff, 0xfe, 0xfd])), { message: /neither WebAssembly nor UTF-8/ });
});

test('a home kernel keeps revocations, cache and journal across restarts', async (t) => {
  const home = await tempDir(t);
  const first = await openKernel({ home });
  const greet = await first.issue({ code: await first.publish(await example('hello.js')), export: 'greet', env: { greeting: 'hey' } });
  const guard = await first.issue({ code: await first.publish(await example('guard.js')), export: 'add' });
  await first.call(greet, ['Ada']);
  await first.revoke(guard, 'closed');
  const principal = first.principal;
  await first.close();

  const second = await openKernel({ home });
  t.teardown(() => second.close());
  t.is(second.principal, principal);
  t.deepEqual(await second.call(greet, ['Ada']), { status: 'fulfilled', value: 'hey, Ada' });
  t.is((await journalEntries(second.journal)).filter((e) => e.kind !== 'seal').at(-1)?.kind, 'hit');
  t.deepEqual(await second.call(guard, [1, 2]), { status: 'revoked', code: 'token-revoked', reason: 'closed' });
});

test('revoking an unknown token is an error', async (t) => {
  const a = await memoryKernel(t);
  await t.throwsAsync(a.revoke('bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'), { message: /unknown token/ });
});

test('openKernel rejects unknown options', async (t) => {
  await t.throwsAsync(openKernel({ memory: true, nonsense: 1 } as never), { message: /unknown option "nonsense"/ });
});

test('a warm call touches neither the store nor the parser', async (t) => {
  const { openMemoryBlockStore } = await import('../src/store/index.js');
  const { generateIdentity } = await import('../src/identity/index.js');
  const { Journal, memoryJournalFile } = await import('../src/journal/journal.js');
  const { Kernel } = await import('../src/kernel/kernel.js');
  const { randomBytes } = await import('node:crypto');
  const inner = openMemoryBlockStore();
  let reads = 0;
  const store = { ...inner, get: (cid: Parameters<typeof inner.get>[0]) => ((reads += 1), inner.get(cid)) };
  const random = (n: number) => new Uint8Array(randomBytes(n));
  const identity = generateIdentity(random);
  const { journal } = await Journal.open({ file: memoryJournalFile(), identity, clock: Date.now, schedule: setImmediate });
  const kernel = await Kernel.open({ store, identity, journal, clock: Date.now, randomBytes: random, setTimer: () => () => {} });
  t.teardown(() => kernel.close());
  const token = await kernel.issue({ code: await kernel.publish(await example('hello.js')), export: 'greet', env: { greeting: 'hi' } });
  t.is((await kernel.call(token, ['cold'])).status, 'fulfilled'); // the vat fetches the module once
  const before = reads;
  for (const name of ['a', 'b', 'c']) t.is((await kernel.call(token, [name])).status, 'fulfilled');
  t.is(reads, before, 'closure and compiled module come from memory');
});

const random = (n: number) => new Uint8Array(randomBytes(n));

/** A kernel over `store` (and any other powers given) with a fresh memory journal, real timers, closed when the test ends. */
const kernelOver = async (t: ExecutionContext, powers: { store: BlockStore; identity: Identity } & Partial<KernelPowers>) => {
  const { Journal, memoryJournalFile } = await import('../src/journal/journal.js');
  const { Kernel } = await import('../src/kernel/kernel.js');
  const { journal } = await Journal.open({ file: memoryJournalFile(), identity: powers.identity, clock: Date.now, schedule: setImmediate });
  const setTimer = (ms: number, callback: () => void) => {
    const timer = setTimeout(callback, ms);
    return () => clearTimeout(timer);
  };
  const kernel = await Kernel.open({ journal, clock: Date.now, randomBytes: random, setTimer, ...powers });
  t.teardown(() => kernel.close());
  return kernel;
};

test('a kernel given kept analyses runs a module from its analysis and ignores one of the wrong shape', async (t) => {
  const { openMemoryBlockStore } = await import('../src/store/index.js');
  const store = openMemoryBlockStore();
  const kept = new Map<string, unknown>();
  const analyses = { get: async (id: string) => kept.get(id), put: async (id: string, record: unknown) => void kept.set(id, record) };
  const identity = generateIdentity(random);
  const open = () => kernelOver(t, { store, identity, analyses });
  const first = await open();
  const code = await first.publish('export const f = (ctx, x) => x + 1;');
  t.deepEqual([...kept.keys()], [code], 'publishing kept the analysis');
  const record = kept.get(code) as { program: string };
  // What a kernel runs is the kept analysis: one that says otherwise is what runs (the home's files are trusted as its blocks are).
  kept.set(code, { ...record, program: record.program.replace('x + 1', 'x + 2') });
  const second = await open();
  t.deepEqual(await second.call(await second.issue({ code, export: 'f' }), [1]), { status: 'fulfilled', value: 3 });
  // A kept analysis of the wrong shape is no analysis: the module is parsed again, and that is kept.
  kept.set(code, { ...record, exports: 'f' });
  const third = await open();
  t.deepEqual(await third.call(await third.issue({ code, export: 'f' }), [1]), { status: 'fulfilled', value: 2 });
  t.deepEqual(kept.get(code), record);
});

test("loading a closure's module is the node's time, not the call's: a slow store does not eat a short call limit", async (t) => {
  const { openMemoryBlockStore } = await import('../src/store/index.js');
  const inner = openMemoryBlockStore();
  let slow = false;
  // Reads that take longer than the call may run, once the closure is published (as a busy disk, or a parse, would).
  const store = { ...inner, get: async (cid: Parameters<typeof inner.get>[0]) => (slow && (await new Promise((resolve) => setTimeout(resolve, 1000))), inner.get(cid)) };
  const identity = generateIdentity(random);
  const limits = { callTimeoutMs: 1500 };
  const first = await kernelOver(t, { store, identity, limits });
  const token = await first.issue({ code: await first.publish('export const f = (ctx, x) => x * 2;'), export: 'f' });
  await first.close();
  slow = true;
  const second = await kernelOver(t, { store, identity, limits });
  t.deepEqual(await second.call(token, [21]), { status: 'fulfilled', value: 42 });
});

test('closing the kernel under a running call ends that call revoked, not thrown', async (t) => {
  const kernel = await openKernel({ memory: true });
  const slow = await issue(kernel, 'export const f = async (ctx, t) => { await ctx.call(t); return 1 }', 'f');
  const leaf = await issue(kernel, 'export const g = () => 2', 'g');
  const pending = kernel.call(slow, [{ '/': leaf }]);
  await kernel.close();
  const outcome = await pending;
  t.is(outcome.status, 'revoked');
  t.deepEqual(await kernel.call(leaf, []), { status: 'revoked', code: 'shut-down', reason: 'kernel is closed' });
});

test('the cache is bounded: past its limit the oldest tokens are forgotten', async (t) => {
  const kernel = await memoryKernel(t, { maxCacheEntries: 3 });
  const code = await kernel.publish('export const id = (ctx, x) => x');
  const first = await kernel.issue({ code, export: 'id' });
  const second = await kernel.issue({ code, export: 'id' });
  for (const x of [1, 2]) await kernel.call(first, [x]);
  for (const x of [1, 2]) await kernel.call(second, [x]);
  const hits = async () => (await journalEntries(kernel.journal)).filter((e) => e.kind === 'hit').length;
  await kernel.call(second, [2]);
  t.is(await hits(), 1, 'the newest token is still cached');
  await kernel.call(first, [1]);
  t.is(await hits(), 1, 'the oldest token was forgotten, so this call executed');
});

test('a token missing here is refused each time it is called, and answered once its closure arrives', async (t) => {
  const [alice, bob] = [await memoryKernel(t), await memoryKernel(t)];
  const token = await alice.issue({ code: await alice.publish('export const sq = (ctx, x) => x * x;'), export: 'sq', replicable: true });
  // On a home store too: the miss must not cost a file system round trip each time, nor outlive the block's arrival.
  const home = await openKernel({ home: await tempDir(t), limits: { vats: 1 } });
  t.teardown(() => home.close());
  for (const kernel of [bob, home]) {
    t.deepEqual(await kernel.call(token, [3]), { status: 'revoked', code: 'unknown-token', reason: 'unknown token' });
    t.deepEqual(await kernel.call(token, [3]), { status: 'revoked', code: 'unknown-token', reason: 'unknown token' });
    await kernel.adopt(token, await alice.replica(token, kernel.principal));
    t.deepEqual(await kernel.call(token, [3]), { status: 'fulfilled', value: 9 });
  }
});

test('a map key "__proto__" from the wire is a key like any other, not a prototype', async (t) => {
  const { encode: cborg } = await import('cborg');
  const { decodeValue } = await import('../src/closures/values.js');
  const value = decodeValue(cborg(new Map([['__proto__', new Map([['admin', true]])]]))) as Record<string, unknown>;
  t.is(Object.getPrototypeOf(value), Object.prototype);
  t.deepEqual(Object.keys(value), ['__proto__']);
  t.is(value.admin, undefined, 'nothing is inherited from the sender');
  t.deepEqual(Object.getOwnPropertyDescriptor(value, '__proto__')?.value, { admin: true });
});

test("keys named like Object.prototype's frozen properties are grid data: decoded, in envelopes, and through a vat", async (t) => {
  const { encode: cborg } = await import('cborg');
  const { decodeValue } = await import('../src/closures/values.js');
  const { decodeMessage, encodeMessage } = await import('../src/wire/index.js');
  // Under lockdown, assigning any of these to a plain object throws; each must still be a key.
  const names = Object.getOwnPropertyNames(Object.prototype).filter((name) => name !== '__proto__');
  const data = Object.fromEntries(names.map((name, i) => [name, { nested: Object.fromEntries([[name, i]]) }]));
  const bytes = cborg(new Map(names.map((name, i) => [name, new Map([['nested', new Map([[name, i]])]])])));
  t.deepEqual(decodeValue(bytes), data);
  const kernel = await openKernel({ memory: true });
  t.teardown(() => kernel.close());
  const token = await issue(kernel, 'export const keys = (ctx, value) => [Object.keys(value).sort(), value.constructor.nested.constructor]', 'keys');
  t.deepEqual(decodeMessage(encodeMessage(token, data)).slots, [data], 'inside an envelope');
  t.deepEqual(await kernel.call(token, [data]), { status: 'fulfilled', value: [[...names].sort(), names.indexOf('constructor')] });
});
