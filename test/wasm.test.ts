/**
 * WebAssembly closures: granted imports only, capped memory, numeric and
 * CBOR calling conventions, and calls across languages in both directions.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { openKernel, type Kernel } from '../src/index.js';
import { readFile } from 'node:fs/promises';
import { wat } from './_wat.js';
import { journalEntries } from './_helpers.js';

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
  t.is((await journalEntries(kernel.journal)).filter((e) => e.kind === 'hit').length, 1, 'the second call was a cache hit');
  t.deepEqual(await kernel.call(await kernel.issue({ code, export: 'mul64' }), [2 ** 40, 2 ** 20]), { status: 'fulfilled', value: 2n ** 60n });
  t.deepEqual(await kernel.call(await kernel.issue({ code, export: 'half' }), [5]), { status: 'fulfilled', value: 2.5 });
  const wrong = await kernel.call(fib, ['ten']);
  t.deepEqual(wrong, { status: 'revoked', code: 'refused', reason: 'argument 1 must be a number (got "ten")' });
  t.deepEqual(await kernel.call(fib, []), { status: 'revoked', code: 'refused', reason: 'fib takes 1 numbers (got 0 arguments)' });
});

const NUMBERS = `(module
  (func (export "id32") (param i32) (result i32) (local.get 0))
  (func (export "same32") (param f32) (result f32) (local.get 0))
  (func (export "same64") (param f64) (result f64) (local.get 0))
  (func (export "nan") (result f64) (f64.const nan))
  (func (export "inf") (result f32) (f32.const -inf)))`;

test('a numeric argument that does not fit its parameter exactly is refused, naming it; i64s travel exactly', async (t) => {
  const { kernel } = await setup(t);
  const gcd = await kernel.issue({ code: await kernel.publish(await readFile('examples/wasm/gcd.wasm')), export: 'gcd' });
  const fib = await issueWasm(kernel, FIB, 'fib');
  const max64 = 2n ** 63n - 1n;
  // Was -9223372036854775808: 2^63-1 rounded to a double, then wrapped by BigInt.
  t.deepEqual(await kernel.call(gcd, [max64, max64]), { status: 'fulfilled', value: max64 });
  t.deepEqual(await kernel.call(gcd, [9007199254740993n, 0]), { status: 'fulfilled', value: 9007199254740993n });
  t.deepEqual(await kernel.call(gcd, [-6, 4]), { status: 'fulfilled', value: 2 });
  t.deepEqual(await kernel.call(gcd, [2 ** 60, 2 ** 40]), { status: 'fulfilled', value: 2 ** 40 }, 'a whole double beyond 2^53 is exact too');
  const i64 = 'a whole number from -9223372036854775808 to 9223372036854775807';
  const i32 = 'a whole number from -2147483648 to 2147483647';
  const refusals: Array<[string, unknown[], string]> = [
    [gcd, [2n ** 64n - 1n, 0], `argument 1 of gcd is an i64: ${i64} (got 18446744073709551615)`], // was 0
    [gcd, [0, 2n ** 63n], `argument 2 of gcd is an i64: ${i64} (got 9223372036854775808)`],
    [gcd, [-(2n ** 63n) - 1n, 1], `argument 1 of gcd is an i64: ${i64} (got -9223372036854775809)`],
    [gcd, [1.5, 1], `argument 1 of gcd is an i64: ${i64} (got 1.5)`],
    [fib, [4294967297], `argument 1 of fib is an i32: ${i32} (got 4294967297)`], // was 1
    [fib, [2.9], `argument 1 of fib is an i32: ${i32} (got 2.9)`], // was 1
    [fib, [2 ** 31], `argument 1 of fib is an i32: ${i32} (got 2147483648)`],
    [fib, [9007199254740993n], `argument 1 of fib is an i32: ${i32} (got 9007199254740993)`],
  ];
  for (const [token, args, reason] of refusals) t.deepEqual(await kernel.call(token, args), { status: 'revoked', code: 'refused', reason }, reason);
  t.deepEqual(await kernel.call(fib, [-0]), { status: 'fulfilled', value: 0 });

  const code = await kernel.publish(await wat(NUMBERS));
  const id32 = await kernel.issue({ code, export: 'id32' });
  t.deepEqual(await kernel.call(id32, [-(2 ** 31)]), { status: 'fulfilled', value: -(2 ** 31) }, 'the least i32 is taken');
  t.deepEqual(await kernel.call(id32, [2n ** 31n - 1n]), { status: 'fulfilled', value: 2 ** 31 - 1 }, 'so is the greatest, as a bigint too');
  const same32 = await kernel.issue({ code, export: 'same32' });
  const same64 = await kernel.issue({ code, export: 'same64' });
  t.deepEqual(await kernel.call(same32, [16777216]), { status: 'fulfilled', value: 16777216 });
  t.deepEqual(await kernel.call(same32, [16777217]), { status: 'revoked', code: 'refused', reason: 'argument 1 of same32 is an f32: 16777217 is not exactly an f32 (nearest 16777216)' });
  t.deepEqual(await kernel.call(same32, [0.1]), { status: 'fulfilled', value: Math.fround(0.1) }, 'a fraction rounds to the nearest f32');
  t.deepEqual(await kernel.call(same32, [1e39]), { status: 'revoked', code: 'refused', reason: 'argument 1 of same32 is an f32: 1e+39 is beyond its range (largest 3.4028234663852886e+38)' });
  t.deepEqual(await kernel.call(same32, [1e-50]), { status: 'revoked', code: 'refused', reason: 'argument 1 of same32 is an f32: 1e-50 is too small for it (it would be 0)' });
  t.deepEqual(await kernel.call(same64, [9007199254740993n]), { status: 'revoked', code: 'refused', reason: 'argument 1 of same64 is an f64: 9007199254740993 is not exactly an f64 (nearest 9007199254740992)' });
  t.deepEqual(await kernel.call(same64, [2n ** 60n]), { status: 'fulfilled', value: 2 ** 60 });
  for (const token of [same32, same64]) {
    const outcome = await kernel.call(token, [-0]);
    t.true(outcome.status === 'fulfilled' && Object.is(outcome.value, -0), '-0 keeps its sign both ways');
  }
  t.deepEqual(await kernel.call(await kernel.issue({ code, export: 'nan' }), []), { status: 'revoked', code: 'crash', reason: 'nan returned NaN, which is not grid data (numbers are finite)' });
  t.deepEqual(await kernel.call(await kernel.issue({ code, export: 'inf' }), []), { status: 'revoked', code: 'crash', reason: 'inf returned -Infinity, which is not grid data (numbers are finite)' });
  // A refused argument is the promise kept; a result that is not grid data is the module's fault.
  const causes = new Map((await journalEntries(kernel.journal)).flatMap((e) => (e.kind === 'revoked' ? [[e.reason, e.cause]] : [])));
  t.is(causes.get(refusals[0]![2]), 'refused');
  t.is(causes.get('nan returned NaN, which is not grid data (numbers are finite)'), 'crash');
});

test('the CBOR convention passes and returns grid data through linear memory', async (t) => {
  const { kernel } = await setup(t);
  const echo = await issueWasm(kernel, CBOR, 'echo');
  t.deepEqual(await kernel.call(echo, ['Ada', { n: 1, bytes: new Uint8Array([1, 2]) }]), {
    status: 'fulfilled',
    value: ['Ada', { n: 1, bytes: new Uint8Array([1, 2]) }],
  });
  const refuse = await issueWasm(kernel, CBOR, 'refuse');
  t.deepEqual(await kernel.call(refuse, []), { status: 'revoked', code: 'refused', reason: 'revoked by the module' });
  const wild = await issueWasm(kernel, CBOR, 'wild');
  const outcome = await kernel.call(wild, []);
  t.is(outcome.status, 'revoked');
  t.regex((outcome as { reason: string }).reason, /^out of bounds: 16 bytes at 2147483647 in a 65536-byte memory$/);
  const huge = await kernel.call(await issueWasm(kernel, CBOR, 'huge'), []);
  t.deepEqual(huge, { status: 'revoked', code: 'crash', reason: 'out of bounds: 4294967295 bytes at 0 in a 65536-byte memory' });
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
  t.deepEqual(await kernel.call(relay, ['Cy']), { status: 'revoked', code: 'refused', reason: 'revoked by the module' });
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
  t.deepEqual(await call('spin'), { status: 'revoked', code: 'time-limit', reason: 'time limit' });
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
