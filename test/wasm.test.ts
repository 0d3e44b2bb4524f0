/**
 * WebAssembly closures: granted imports only, capped memory, numeric and
 * CBOR calling conventions, and calls across languages in both directions.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { openKernel, type Kernel } from '../src/index.js';
import { wat } from './_wat.js';

const FIB = `(module
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1))) (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "mul64") (param i64 i64) (result i64) (i64.mul (local.get 0) (local.get 1)))
  (func (export "half") (param f64) (result f64) (f64.div (local.get 0) (f64.const 2))))`;

// A bump allocator and CBOR-ABI exports: echo returns its input; relay forwards it to env.tokens[0].
const CBOR = `(module
  (import "grid" "call" (func $call (param i32 i32 i32) (result i64)))
  (import "grid" "log" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (data (i32.const 16) "relaying")
  (func (export "alloc") (param $len i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $len)))
    (local.get $at))
  (func (export "echo") (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
  (func (export "relay") (param $ptr i32) (param $len i32) (result i64)
    (call $log (i32.const 16) (i32.const 8))
    (call $call (i32.const 0) (local.get $ptr) (local.get $len)))
  (func (export "refuse") (param i32 i32) (result i64) (i64.const -1))
  (func (export "wild") (param i32 i32) (result i64) (i64.const 0x7fffffff00000010))
  (func (export "huge") (param i32 i32) (result i64) (i64.const 0x00000000ffffffff)))`;

const HOSTILE = `(module
  (memory 1)
  (func (export "spin") (result i32) (loop $forever (br $forever)) (i32.const 0))
  (func $deep (export "deep") (param i32) (result i32) (call $deep (i32.add (local.get 0) (i32.const 1))))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "trap") (result i32) (unreachable)))`;

const setup = async (t: import('ava').ExecutionContext, limits = {}) => {
  const kernel = await openKernel({ memory: true, limits: { vats: 1, callTimeoutMs: 15_000, ...limits } });
  t.teardown(() => kernel.close());
  return { kernel };
};

const issueWasm = async (kernel: Kernel, text: string, exportName: string, env: unknown = {}) =>
  kernel.issue({ code: await kernel.publish(await wat(text)), export: exportName, env });

test('numeric exports are called with numbers, and their pure results are cached', async (t) => {
  const { kernel } = await setup(t);
  const code = await kernel.publish(await wat(FIB));
  const fib = await kernel.issue({ code, export: 'fib' });
  t.deepEqual(await kernel.call(fib, [20]), { status: 'fulfilled', value: 6765 });
  t.deepEqual(await kernel.call(fib, [20]), { status: 'fulfilled', value: 6765 });
  t.is(kernel.journal.entries().filter((e) => e.kind === 'hit').length, 1, 'the second call was a cache hit');
  t.deepEqual(await kernel.call(await kernel.issue({ code, export: 'mul64' }), [2 ** 40, 2 ** 20]), { status: 'fulfilled', value: 2n ** 60n });
  t.deepEqual(await kernel.call(await kernel.issue({ code, export: 'half' }), [5]), { status: 'fulfilled', value: 2.5 });
  const wrong = await kernel.call(fib, ['ten']);
  t.deepEqual(wrong, { status: 'revoked', reason: 'argument 1 must be a number (got "ten")' });
  t.deepEqual(await kernel.call(fib, []), { status: 'revoked', reason: 'fib takes 1 numbers (got 0 arguments)' });
});

test('the CBOR convention passes and returns grid data through linear memory', async (t) => {
  const { kernel } = await setup(t);
  const echo = await issueWasm(kernel, CBOR, 'echo');
  t.deepEqual(await kernel.call(echo, ['Ada', { n: 1, bytes: new Uint8Array([1, 2]) }]), {
    status: 'fulfilled',
    value: ['Ada', { n: 1, bytes: new Uint8Array([1, 2]) }],
  });
  const refuse = await issueWasm(kernel, CBOR, 'refuse');
  t.deepEqual(await kernel.call(refuse, []), { status: 'revoked', reason: 'revoked by the module' });
  const wild = await issueWasm(kernel, CBOR, 'wild');
  const outcome = await kernel.call(wild, []);
  t.is(outcome.status, 'revoked');
  t.regex((outcome as { reason: string }).reason, /^out of bounds: 16 bytes at 2147483647 in a 65536-byte memory$/);
  const huge = await kernel.call(await issueWasm(kernel, CBOR, 'huge'), []);
  t.deepEqual(huge, { status: 'revoked', reason: 'out of bounds: 4294967295 bytes at 0 in a 65536-byte memory' });
});

test('languages mix through tokens: WebAssembly calls JS, JS calls WebAssembly', async (t) => {
  const { kernel } = await setup(t);
  const greet = await kernel.issue({ code: await kernel.publish('export const greet = (ctx, name) => `hi, ${name}`;'), export: 'greet' });
  const relay = await issueWasm(kernel, CBOR, 'relay', { tokens: [{ '/': greet }] });
  t.deepEqual(await kernel.call(relay, ['Ada']), { status: 'fulfilled', value: 'hi, Ada' });
  const fib = await issueWasm(kernel, FIB, 'fib');
  const js = await kernel.issue({ code: await kernel.publish('export const twice = async (ctx, n) => 2 * (await ctx.call(ctx.env.fib, n));'), export: 'twice', env: { fib: { '/': fib } } });
  t.deepEqual(await kernel.call(js, [10]), { status: 'fulfilled', value: 110 });
  // Round trip: JS -> WASM -> JS.
  const outer = await kernel.issue({ code: await kernel.publish('export const f = (ctx, x) => ctx.call(ctx.env.relay, x);'), export: 'f', env: { relay: { '/': relay } } });
  t.deepEqual(await kernel.call(outer, ['Bo']), { status: 'fulfilled', value: 'hi, Bo' });
  // A revoked JS token is a revoked answer to the WebAssembly caller.
  await kernel.revoke(greet);
  t.deepEqual(await kernel.call(relay, ['Cy']), { status: 'revoked', reason: 'revoked by the module' });
});

test('publish refuses WebAssembly that asks for what the grid does not grant', async (t) => {
  const { kernel } = await setup(t);
  const refusals: Array<[string, RegExp]> = [
    ['(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))))', /forbidden import "wasi_snapshot_preview1\.fd_write"/],
    ['(module (import "env" "memory" (memory 1)))', /forbidden import "env\.memory"/],
    ['(module (import "grid" "secret" (func)))', /forbidden import "grid\.secret"/],
    ['(module (memory 300))', /starts at 300 pages, over the cap of 256/],
  ];
  for (const [text, message] of refusals) await t.throwsAsync(kernel.publish(await wat(text)), { message }, text);
  const code = await kernel.publish(await wat('(module (func (export "f") (param i32 i32 i32) (result i32 i32) (i32.const 0) (i32.const 0)))'));
  await t.throwsAsync(kernel.issue({ code, export: 'f' }), { message: /signature vats cannot call/ });
  await t.throwsAsync(kernel.issue({ code, export: 'g' }), { message: /has no export "g" \(it exports: f\)/ });
});

test('hostile WebAssembly ends revoked and the node keeps serving', async (t) => {
  const { kernel } = await setup(t, { callTimeoutMs: 3000 });
  const code = await kernel.publish(await wat(HOSTILE));
  const call = async (name: string, args: unknown[] = []) => kernel.call(await kernel.issue({ code, export: name }), args);
  t.deepEqual(await call('spin'), { status: 'revoked', reason: 'time limit' });
  t.regex(((await call('deep', [0])) as { reason: string }).reason, /^trap: .*call stack/i);
  t.regex(((await call('trap')) as { reason: string }).reason, /^trap: unreachable/);
  t.deepEqual(await call('grow', [100]), { status: 'fulfilled', value: 1 }, 'growth within the cap works');
  t.deepEqual(await call('grow', [300]), { status: 'fulfilled', value: -1 }, 'growth past the cap fails');
  const start = await kernel.publish(await wat('(module (func $boom unreachable) (start $boom) (func (export "f") (result i32) (i32.const 1)))'));
  t.regex(((await kernel.call(await kernel.issue({ code: start, export: 'f' }), [])) as { reason: string }).reason, /^trap: unreachable/);
  const fib = await issueWasm(kernel, FIB, 'fib');
  t.deepEqual(await kernel.call(fib, [10]), { status: 'fulfilled', value: 55 });
});

test('grid.log lines reach the kernel log, tagged with the token', async (t) => {
  const lines: string[] = [];
  const kernel = await openKernel({ memory: true, limits: { vats: 1 }, log: (token, line) => lines.push(`${token}: ${line}`) });
  t.teardown(() => kernel.close());
  const greet = await kernel.issue({ code: await kernel.publish('export const g = () => "ok"'), export: 'g' });
  const relay = await issueWasm(kernel, CBOR, 'relay', { tokens: [{ '/': greet }] });
  t.deepEqual(await kernel.call(relay, []), { status: 'fulfilled', value: 'ok' });
  t.deepEqual(lines, [`${relay}: relaying`]);
});
