/**
 * Hostile modules under real SES lockdown. Each tries to reach something a
 * grid closure must not have; each attempt must end as a refusal at publish
 * time or a revoked/harmless outcome — never as access.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { openKernel, type Kernel } from '../src/index.js';
import { journalEntries } from './_helpers.js';

let kernel: Kernel;
test.before(async () => {
  kernel = await openKernel({ memory: true, limits: { callTimeoutMs: 15_000 } });
});
test.after.always(() => kernel.close());

const run = async (source: string, args: unknown[] = [], env: unknown = {}) => {
  const code = await kernel.publish(source);
  return kernel.call(await kernel.issue({ code, export: 'attack', env }), args);
};

/** The attack must not get what it went for: it either failed or saw nothing. */
const assertDenied = (t: import('ava').ExecutionContext, outcome: Awaited<ReturnType<typeof run>>, denied: RegExp | unknown) => {
  if (outcome.status === 'revoked') {
    if (denied instanceof RegExp) t.regex(outcome.reason, denied);
    else t.pass();
  } else {
    t.is(outcome.status, 'fulfilled');
    t.deepEqual((outcome as { value: unknown }).value, denied);
  }
};

test('process and require are not in scope', async (t) => {
  // SES resolves unknown free variables to undefined or a ReferenceError; either way, nothing.
  assertDenied(t, await run('export const attack = () => process.pid'), /process is not defined|reading 'pid'/);
  assertDenied(t, await run('export const attack = () => require("fs")'), /require is not defined|require is not a function/);
  assertDenied(t, await run('export const attack = () => [typeof process, typeof require, typeof module, typeof Buffer, typeof setTimeout, typeof fetch]'), [
    'undefined', 'undefined', 'undefined', 'undefined', 'undefined', 'undefined',
  ]);
});

test('the host globalThis is out of reach', async (t) => {
  assertDenied(t, await run('export const attack = () => [typeof globalThis.process, Object.isFrozen(globalThis)]'), ['undefined', true]);
  assertDenied(t, await run('export const attack = () => { globalThis.leak = 1; return 1 }'), /not extensible/);
  assertDenied(t, await run('export const attack = () => typeof (0, eval)("this").process'), 'undefined');
});

test('the Function constructor does not escape the compartment', async (t) => {
  assertDenied(t, await run('export const attack = () => typeof Function("return this")().process'), 'undefined');
  assertDenied(t, await run('export const attack = () => (() => {}).constructor("return typeof process")()'), /not a valid constructor/);
  assertDenied(t, await run('export const attack = () => (async () => {}).constructor("return 1")'), /not a valid constructor/);
});

test('dynamic import is refused at publish, even disguised', async (t) => {
  await t.throwsAsync(run('export const attack = () => import("node:fs")'), { message: /dynamic import\(\) is not allowed/ });
  // SES refuses the module text outright: an import expression anywhere in it, even inside a string.
  await t.throwsAsync(run('export const attack = () => Function("return import(\\"fs\\")")()'), { message: /^publish: Possible import expression rejected/ });
});

test('shared prototypes are frozen', async (t) => {
  assertDenied(t, await run('export const attack = () => { Object.prototype.polluted = 1; return 1 }'), /Cannot add property|not extensible/);
  assertDenied(t, await run('export const attack = () => { Array.prototype.push = () => 0; return 1 }'), /read only|read-only/);
  assertDenied(t, await run('export const attack = () => { JSON.parse = () => "owned"; return 1 }'), /read only|read-only/);
  // And the host is unaffected.
  t.is(({} as Record<string, unknown>).polluted, undefined);
});

test('no clock and no randomness', async (t) => {
  assertDenied(t, await run('export const attack = () => Date.now()'), /secure mode|throws/);
  assertDenied(t, await run('export const attack = () => Math.random()'), /secure mode|throws/);
  assertDenied(t, await run('export const attack = () => new Date().getTime()'), /secure mode|throws|Invalid/i);
});

test("another closure's state is unreachable", async (t) => {
  const code = await kernel.publish('const secrets = []; export const attack = (ctx, s) => { if (s) secrets.push(s); return secrets.slice(); }');
  const victim = await kernel.issue({ code, export: 'attack' });
  const thief = await kernel.issue({ code, export: 'attack' });
  await kernel.call(victim, ['password']);
  t.deepEqual(await kernel.call(thief, [null]), { status: 'fulfilled', value: [] });
  t.deepEqual(await kernel.call(victim, [null]), { status: 'fulfilled', value: [] });
});

test('env and arguments are immutable to the closure', async (t) => {
  assertDenied(t, await run('export const attack = (ctx) => { ctx.env.x = 2; return ctx.env.x }', [], { x: 1 }), /read only|read-only|not extensible/);
  assertDenied(t, await run('export const attack = (ctx, a) => { a.push(1); return a }', [[0]]), /not extensible|read only|Cannot add/);
  assertDenied(t, await run('export const attack = (ctx) => { ctx.caller = "did:key:forged"; return 1 }'), /getter|Cannot set|read only/);
});

test('byte arguments are copies: mutating them changes nothing outside the call', async (t) => {
  const code = await kernel.publish('export const attack = (ctx, bytes) => { bytes[0] = 255; return bytes }');
  const token = await kernel.issue({ code, export: 'attack' });
  const input = new Uint8Array([1, 2, 3]);
  const outcome = await kernel.call(token, [input]);
  t.deepEqual(input, new Uint8Array([1, 2, 3]));
  t.deepEqual(outcome, { status: 'fulfilled', value: new Uint8Array([255, 2, 3]) });
  const call = (await journalEntries(kernel.journal)).find((e) => e.kind === 'call' && e.token === token);
  t.deepEqual(call && call.kind === 'call' ? call.args : undefined, [new Uint8Array([1, 2, 3])]);
});

test('a ctx kept past the end of its call is dead', async (t) => {
  const code = await kernel.publish(`
    export const attack = (ctx, target) => { Promise.resolve().then(() => ctx.call(target)).then(() => 0, () => 0); return 'returned' };
    export const leaf = () => 'leaf';`);
  const leaf = await kernel.issue({ code, export: 'leaf' });
  const token = await kernel.issue({ code, export: 'attack' });
  const before = (await journalEntries(kernel.journal)).filter((e) => e.kind === 'call' && e.token === leaf).length;
  t.deepEqual(await kernel.call(token, [{ '/': leaf }]), { status: 'fulfilled', value: 'returned' });
  await new Promise((resolve) => setImmediate(resolve));
  t.is((await journalEntries(kernel.journal)).filter((e) => e.kind === 'call' && e.token === leaf).length, before);
});

test('returning what is not grid data ends revoked', async (t) => {
  assertDenied(t, await run('export const attack = () => () => 1'), /function is not grid data/);
  assertDenied(t, await run('export const attack = () => ({ get x() { throw new Error("getter bomb") } })'), /getter bomb/);
  assertDenied(t, await run('export const attack = () => new Proxy({}, { ownKeys() { throw new Error("trap") } })'), /trap/);
  assertDenied(t, await run('export const attack = () => { const a = []; a.push(a); return a }'), /circular references/);
  assertDenied(t, await run('export const attack = () => { let a = []; for (let i = 0; i < 100000; i++) a = [a]; return a }'), /call stack|deeper than/);
  assertDenied(t, await run('export const attack = () => { let a = []; for (let i = 0; i < 100; i++) a = [a]; return a }'), /nesting deeper than 64/);
  assertDenied(t, await run('export const attack = () => "x".repeat(2 * 1024 * 1024)'), /input is \d+ bytes \(limit 1048576\)/);
  assertDenied(t, await run('export const attack = () => ({ toString() { return 1 } , [Symbol.iterator]: 1 })'), /a function is not grid data/);
});

test('throwing hostile values does not confuse the kernel', async (t) => {
  assertDenied(t, await run('export const attack = () => { throw { get message() { throw new Error("x") } } }'), /unprintable error/);
  assertDenied(t, await run('export const attack = () => { throw null }'), /null/);
  assertDenied(t, await run('export const attack = () => { throw Symbol("s") }'), /unprintable error|Symbol/);
});

test('the ctx prototype cannot be used to forge calls', async (t) => {
  const outcome = await run(`export const attack = (ctx) => {
    const Ctx = Object.getPrototypeOf(ctx).constructor;
    try { new Ctx(); } catch (e) { return 'constructor failed: ' + e.message.slice(0, 20); }
    return 'constructed';
  }`);
  t.is(outcome.status, 'fulfilled');
  t.regex((outcome as { value: string }).value, /constructor failed/);
});

test('the kernel still answers after all of this', async (t) => {
  const code = await kernel.publish('export const attack = (ctx, a, b) => a + b');
  t.deepEqual(await kernel.call(await kernel.issue({ code, export: 'attack' }), [2, 3]), { status: 'fulfilled', value: 5 });
});
