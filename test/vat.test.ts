/**
 * Vats under hostile load: closures that spin, recurse or allocate without
 * bound run in worker threads that the kernel stops, while the kernel's own
 * thread keeps answering.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { openKernel, type Kernel } from '../src/index.js';
import { journalEntries } from './_helpers.js';

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

test.serial('a closure that spins forever ends at its time limit, and the node answers meanwhile', async (t) => {
  const { kernel, issue } = await setup(t, { vats: 2, callTimeoutMs: 3000 });
  const spin = await issue('spin');
  const echo = await issue('echo');
  // Two calls at once start both vats, so nothing below waits for a vat to start.
  await Promise.all([kernel.call(echo, ['warm up']), kernel.call(echo, ['second vat'])]);
  const settled: string[] = [];
  const spinning = kernel.call(spin, []).then((outcome) => (settled.push('spin'), outcome));
  // While the vat spins, the kernel thread is free: a cache hit and a call in the other vat both settle first.
  const hit = await kernel.call(echo, ['warm up']).then((outcome) => (settled.push('hit'), outcome));
  const during = await kernel.call(echo, ['during']).then((outcome) => (settled.push('during'), outcome));
  t.deepEqual(hit, { status: 'fulfilled', value: 'warm up' });
  t.deepEqual(during, { status: 'fulfilled', value: 'during' });
  t.deepEqual(await spinning, { status: 'revoked', code: 'time-limit', reason: 'time limit' });
  t.deepEqual(settled, ['hit', 'during', 'spin']);
  t.deepEqual(await kernel.call(echo, ['after']), { status: 'fulfilled', value: 'after' }, 'a fresh vat serves');
});

test.serial('calls sharing a vat with a spinning one are run again elsewhere', async (t) => {
  const { kernel } = await setup(t, { vats: 1, callTimeoutMs: 5000 });
  const slow = await kernel.issue({ code: await kernel.publish('export const later = async () => { await null; return "done"; }'), export: 'later' });
  // The spinner's own short limit fires long before the bystander's, whatever the machine's load.
  const spin = await kernel.issue({ code: await kernel.publish(HOSTILE), export: 'spin', timeLimitMs: 300 });
  const echo = await kernel.issue({ code: await kernel.publish(HOSTILE), export: 'echo' });
  await kernel.call(echo, [0]);
  const spinning = kernel.call(spin, []);
  const bystander = kernel.call(slow, []);
  t.deepEqual(await spinning, { status: 'revoked', code: 'time-limit', reason: 'time limit' });
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
  t.deepEqual(await kernel.call(await issue('hog'), []), { status: 'revoked', code: 'memory-limit', reason: 'memory limit' });
  t.deepEqual(await kernel.call(await issue('echo'), ['still here']), { status: 'fulfilled', value: 'still here' });
});

test.serial('a module whose body spins is stopped like a closure that does', async (t) => {
  const { kernel } = await setup(t, { callTimeoutMs: 500 });
  const code = await kernel.publish('while (true) {} export const f = () => 1;');
  t.deepEqual(await kernel.call(await kernel.issue({ code, export: 'f' }), []), { status: 'revoked', code: 'time-limit', reason: 'time limit' });
});

test.serial('a call that acted before its vat stopped is not run twice', async (t) => {
  const { kernel, issue } = await setup(t, { vats: 1, callTimeoutMs: 1500 });
  const echo = await issue('echo');
  const slowSpin = await issue('slowSpin');
  const outcome = await kernel.call(slowSpin, [{ '/': echo }]);
  t.deepEqual(outcome, { status: 'revoked', code: 'time-limit', reason: 'time limit' });
  const calls = (await journalEntries(kernel.journal)).filter((e) => e.kind === 'call' && e.token === slowSpin);
  t.is(calls.length, 1);
});

test.serial('a closed kernel has stopped its vats and refuses calls', async (t) => {
  const kernel: Kernel = await openKernel({ memory: true });
  const code = await kernel.publish('export const f = () => 1');
  t.deepEqual(await kernel.call(await kernel.issue({ code, export: 'f' }), []), { status: 'fulfilled', value: 1 });
  await kernel.close();
  t.deepEqual(await kernel.call('bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', []), { status: 'revoked', code: 'shut-down', reason: 'kernel is closed' });
});

test.serial("a closure's own time limit applies below the node's ceiling", async (t) => {
  const { kernel, issue } = await setup(t, { callTimeoutMs: 3000 });
  const code = await kernel.publish(HOSTILE);
  const quick = await kernel.issue({ code, export: 'spin', timeLimitMs: 300 });
  const echo = await issue('echo');
  await kernel.call(echo, ['a vat is up']);
  // Which limit stopped a call shows in what else got to run first: a 300 ms spin ends
  // before a 3 s timer, a 60 s one after it (the 3 s node ceiling wins).
  const order: string[] = [];
  const timer = (ms: number) => new Promise<void>((resolve) => setTimeout(() => (order.push(`${ms} ms timer`), resolve()), ms));
  const quickRun = kernel.call(quick, []).then((outcome) => (order.push('closure limit'), outcome));
  await Promise.all([quickRun, timer(2500)]);
  t.deepEqual(await quickRun, { status: 'revoked', code: 'time-limit', reason: 'time limit' });
  t.deepEqual(order, ['closure limit', '2500 ms timer']);
  const generous = await kernel.issue({ code, export: 'spin', timeLimitMs: 60_000 });
  t.deepEqual(await kernel.call(generous, []), { status: 'revoked', code: 'time-limit', reason: 'time limit' }, 'the node ceiling wins');
  await t.throwsAsync(kernel.issue({ code, export: 'spin', timeLimitMs: -1 }), { message: /positive whole number of milliseconds/ });
});

/** Wait until the journal shows `echo` answered a call made from inside another call: its caller is then running in its vat. */
const nestedAnswered = async (kernel: Kernel, echo: string) => {
  for (;;) {
    const entries = (await journalEntries(kernel.journal));
    const nested = new Set(entries.filter((e) => e.kind === 'call' && e.token === echo && e.parent !== undefined).map((e) => e.seq));
    if (entries.some((e) => e.kind === 'fulfilled' && nested.has(e.call))) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

test.serial('a cancelled call ends "cancelled by caller", its spinning vat is stopped, and the next call gets a vat', async (t) => {
  // One vat and a two-minute limit: without the cancel, the call after it would wait out the spinner.
  t.timeout(60_000);
  const { kernel, issue } = await setup(t, { vats: 1, callTimeoutMs: 120_000 });
  const echo = await issue('echo');
  const slowSpin = await issue('slowSpin');
  t.deepEqual(await kernel.call(echo, ['warm']), { status: 'fulfilled', value: 'warm' });
  const controller = new AbortController();
  const spinning = kernel.call(slowSpin, [{ '/': echo }], { signal: controller.signal });
  await nestedAnswered(kernel, echo);
  controller.abort();
  t.deepEqual(await spinning, { status: 'revoked', code: 'cancelled', reason: 'cancelled by caller' });
  t.deepEqual(await kernel.call(echo, ['after']), { status: 'fulfilled', value: 'after' }, 'the vat was freed');
  const call = (await journalEntries(kernel.journal)).find((e) => e.kind === 'call' && e.token === slowSpin)!;
  const end = (await journalEntries(kernel.journal)).find((e) => e.kind === 'revoked' && e.call === call.seq);
  t.like(end, { code: 'cancelled', reason: 'cancelled by caller', cause: 'node' }, "journaled as the node's doing, not the issuer's");
  const issuer = kernel.reputation().find((row) => row.issuer === kernel.principal)!;
  t.is(issuer.broken, 0, 'a cancellation never counts against the issuer');
});

test.serial('cancelling reaches the calls a call made; a signal aborted before the call makes none', async (t) => {
  t.timeout(60_000);
  const { kernel, issue } = await setup(t, { vats: 2, callTimeoutMs: 120_000 });
  const echo = await issue('echo');
  const slowSpin = await issue('slowSpin');
  const relay = await kernel.issue({ code: await kernel.publish('export const relay = (ctx, t, x) => ctx.call(t, x);'), export: 'relay' });
  const controller = new AbortController();
  const relaying = kernel.call(relay, [{ '/': slowSpin }, { '/': echo }], { signal: controller.signal });
  await nestedAnswered(kernel, echo);
  controller.abort();
  t.deepEqual(await relaying, { status: 'revoked', code: 'cancelled', reason: 'cancelled by caller' });
  const entries = (await journalEntries(kernel.journal));
  for (const token of [relay, slowSpin]) {
    const call = entries.find((e) => e.kind === 'call' && e.token === token)!;
    t.like(entries.find((e) => e.kind === 'revoked' && e.call === call.seq), { code: 'cancelled', reason: 'cancelled by caller', cause: 'node' }, `${token === relay ? 'the call' : 'the call it made'} is cancelled`);
  }
  const before = (await journalEntries(kernel.journal)).length;
  t.deepEqual(await kernel.call(echo, ['never'], { signal: AbortSignal.abort() }), { status: 'revoked', code: 'cancelled', reason: 'cancelled by caller' });
  t.is((await journalEntries(kernel.journal)).length, before, 'nothing journaled: no call was made');
  t.deepEqual(await kernel.call(echo, ['still serving']), { status: 'fulfilled', value: 'still serving' });
});

test.serial("cancelling a call never ends another caller's call that has acted: it alone ends, its vat keeps serving", async (t) => {
  t.timeout(60_000);
  const { kernel } = await setup(t, { vats: 1, callTimeoutMs: 120_000 });
  const code = await kernel.publish('export const hang = () => new Promise(() => {}); export const waitOn = (ctx, t) => ctx.call(t); export const echo = (ctx, x) => x;');
  const hang = await kernel.issue({ code, export: 'hang' });
  const waitOn = await kernel.issue({ code, export: 'waitOn' });
  const echo = await kernel.issue({ code, export: 'echo' });
  t.deepEqual(await kernel.call(echo, ['warm']), { status: 'fulfilled', value: 'warm' });
  // X and Y have each acted (a ctx.call is out, seen in the journal); one vat holds them all.
  const hangCalls = async (n: number) => {
    while ((await journalEntries(kernel.journal)).filter((e) => e.kind === 'call' && e.token === hang).length < n) await new Promise((resolve) => setTimeout(resolve, 10));
  };
  const x = new AbortController();
  let xSettled = false;
  const xCall = kernel.call(waitOn, [{ '/': hang }], { signal: x.signal }).finally(() => (xSettled = true));
  await hangCalls(1);
  const y = new AbortController();
  const yCall = kernel.call(waitOn, [{ '/': hang }, 'y'], { signal: y.signal });
  await hangCalls(2);
  y.abort();
  t.deepEqual(await yCall, { status: 'revoked', code: 'cancelled', reason: 'cancelled by caller' });
  t.deepEqual(await kernel.call(echo, ['meanwhile']), { status: 'fulfilled', value: 'meanwhile' });
  t.false(xSettled, "the other caller's call that acted runs on (its vat was not stopped)");
  x.abort();
  t.deepEqual(await xCall, { status: 'revoked', code: 'cancelled', reason: 'cancelled by caller' });
  t.deepEqual(await kernel.call(echo, ['after']), { status: 'fulfilled', value: 'after' });
});

test.serial('a wide call tree under one signal listens on it once: no listener-leak warning', async (t) => {
  const { kernel } = await setup(t, { vats: 2, callTimeoutMs: 60_000 });
  const code = await kernel.publish('export const leaf = async (ctx, x) => { await null; return x; }; export const wide = (ctx, t, n) => Promise.all(Array.from({ length: n }, (_, i) => ctx.call(t, i)));');
  const leaf = await kernel.issue({ code, export: 'leaf' });
  const wide = await kernel.issue({ code, export: 'wide' });
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
  process.on('warning', onWarning);
  t.teardown(() => void process.off('warning', onWarning));
  const outcome = await kernel.call(wide, [{ '/': leaf }, 30], { signal: new AbortController().signal });
  t.deepEqual(outcome, { status: 'fulfilled', value: Array.from({ length: 30 }, (_, i) => i) });
  await new Promise((resolve) => setTimeout(resolve, 50)); // warnings are emitted on a later tick
  t.deepEqual(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')), []);
});
