/**
 * Vats under hostile load: closures that spin, recurse or allocate without
 * bound run in worker threads that the kernel stops, while the kernel's own
 * thread keeps answering.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { openKernel, type Kernel } from '../src/index.js';

const HOSTILE = `
  export const spin = () => { for (;;) {} };
  export const recurse = (ctx, n) => { const f = (k) => f(k + 1) + 1; return f(0); };
  export const hog = () => { const keep = []; for (;;) keep.push(new Array(1 << 16).fill(keep.length)); };
  export const slowSpin = async (ctx, t) => { await ctx.call(t); for (;;) {} };
  export const echo = (ctx, x) => x;
`;

const setup = async (t: import('ava').ExecutionContext, limits = {}) => {
  const kernel = await openKernel({ memory: true, limits: { callTimeoutMs: 1000, vatMemoryMb: 64, ...limits } });
  t.teardown(() => kernel.close());
  const code = await kernel.publish(HOSTILE);
  const issue = (name: string) => kernel.issue({ code, export: name });
  return { kernel, issue };
};

const elapsed = async <T>(promise: Promise<T>) => {
  const start = Date.now();
  const value = await promise;
  return { value, ms: Date.now() - start };
};

test.serial('a closure that spins forever ends at its time limit, and the node answers meanwhile', async (t) => {
  const { kernel, issue } = await setup(t, { vats: 2 });
  const spin = await issue('spin');
  const echo = await issue('echo');
  await kernel.call(echo, ['warm up']);
  const spinning = elapsed(kernel.call(spin, []));
  // While the vat spins, the kernel thread is free: a cache hit answers at once and other calls run.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const hit = await elapsed(kernel.call(echo, ['warm up']));
  t.true(hit.ms < 200, `cache hit took ${hit.ms} ms while a vat spun`);
  t.deepEqual((await kernel.call(echo, ['during'])), { status: 'fulfilled', value: 'during' });
  const { value, ms } = await spinning;
  t.deepEqual(value, { status: 'revoked', reason: 'time limit' });
  t.true(ms >= 900 && ms < 4000, `stopped after ${ms} ms`);
  t.deepEqual(await kernel.call(echo, ['after']), { status: 'fulfilled', value: 'after' }, 'a fresh vat serves');
});

test.serial('calls sharing a vat with a spinning one are run again elsewhere', async (t) => {
  const { kernel, issue } = await setup(t, { vats: 1, callTimeoutMs: 500 });
  const slow = await kernel.issue({ code: await kernel.publish('export const later = async () => { await null; return "done"; }'), export: 'later' });
  const spin = await issue('spin');
  const echo = await issue('echo');
  await kernel.call(echo, [0]);
  const spinning = kernel.call(spin, []);
  const bystander = kernel.call(slow, []);
  t.deepEqual(await spinning, { status: 'revoked', reason: 'time limit' });
  t.deepEqual(await bystander, { status: 'fulfilled', value: 'done' });
});

test.serial('unbounded recursion is a revoked call, not a dead node', async (t) => {
  const { kernel, issue } = await setup(t);
  const outcome = await kernel.call(await issue('recurse'), [0]);
  t.is(outcome.status, 'revoked');
  t.regex((outcome as { reason: string }).reason, /call stack/i);
  t.deepEqual(await kernel.call(await issue('echo'), [1]), { status: 'fulfilled', value: 1 });
});

test.serial('a closure that eats memory ends at the memory limit and its vat is replaced', async (t) => {
  const { kernel, issue } = await setup(t, { callTimeoutMs: 20_000, vatMemoryMb: 32 });
  const { value, ms } = await elapsed(kernel.call(await issue('hog'), []));
  t.deepEqual(value, { status: 'revoked', reason: 'memory limit' });
  t.true(ms < 15_000, `stopped after ${ms} ms`);
  t.deepEqual(await kernel.call(await issue('echo'), ['still here']), { status: 'fulfilled', value: 'still here' });
});

test.serial('a module whose body spins is stopped like a closure that does', async (t) => {
  const { kernel } = await setup(t, { callTimeoutMs: 500 });
  const code = await kernel.publish('while (true) {} export const f = () => 1;');
  t.deepEqual(await kernel.call(await kernel.issue({ code, export: 'f' }), []), { status: 'revoked', reason: 'time limit' });
});

test.serial('a call that acted before its vat stopped is not run twice', async (t) => {
  const { kernel, issue } = await setup(t, { vats: 1, callTimeoutMs: 500 });
  const echo = await issue('echo');
  const slowSpin = await issue('slowSpin');
  const outcome = await kernel.call(slowSpin, [{ '/': echo }]);
  t.deepEqual(outcome, { status: 'revoked', reason: 'time limit' });
  const calls = kernel.journal.entries().filter((e) => e.kind === 'call' && e.token === slowSpin);
  t.is(calls.length, 1);
});

test.serial('a closed kernel has stopped its vats and refuses calls', async (t) => {
  const kernel: Kernel = await openKernel({ memory: true });
  const code = await kernel.publish('export const f = () => 1');
  t.deepEqual(await kernel.call(await kernel.issue({ code, export: 'f' }), []), { status: 'fulfilled', value: 1 });
  await kernel.close();
  t.deepEqual(await kernel.call('bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', []), { status: 'revoked', reason: 'kernel is closed' });
});

test.serial("a closure's own time limit applies below the node's ceiling", async (t) => {
  const { kernel } = await setup(t, { callTimeoutMs: 3000 });
  const code = await kernel.publish(HOSTILE);
  const quick = await kernel.issue({ code, export: 'spin', timeLimitMs: 300 });
  const { value, ms } = await elapsed(kernel.call(quick, []));
  t.deepEqual(value, { status: 'revoked', reason: 'time limit' });
  t.true(ms < 2000, `stopped after ${ms} ms`);
  const generous = await kernel.issue({ code, export: 'spin', timeLimitMs: 60_000 });
  const capped = await elapsed(kernel.call(generous, []));
  t.deepEqual(capped.value, { status: 'revoked', reason: 'time limit' });
  t.true(capped.ms < 10_000, 'the node ceiling wins');
  await t.throwsAsync(kernel.issue({ code, export: 'spin', timeLimitMs: -1 }), { message: /positive whole number of milliseconds/ });
});
