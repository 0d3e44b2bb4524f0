/**
 * Issue 13 item 6: what a node keeps in memory per call, outside its journal
 * and the indexes rebuilt from it, stays within named bounds.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { openKernel, type Kernel } from '../src/index.js';
import { DEFAULT_LIMITS } from '../src/kernel/kernel.js';
import { entryCost, PureCallCache } from '../src/kernel/pure-cache.js';
import type { Token } from '../src/interface/ids.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { journalEntries, tempDir } from './_helpers.js';
import { gridProcesses } from './_processes.js';

const memoryKernel = async (t: { teardown: (fn: () => unknown) => void }, limits = {}) => {
  const kernel = await openKernel({ memory: true, limits: { vats: 1, ...limits } });
  t.teardown(() => kernel.close());
  return kernel;
};

const hits = async (kernel: Kernel) => (await journalEntries(kernel.journal)).filter((e) => e.kind === 'hit').length;

const answer = (bytes: number, from = 0) => ({ outcome: Object.freeze({ status: 'fulfilled' as const, value: null }), from, valueBytes: new Uint8Array(bytes) });
/** Arguments as the cache takes them: bytes. */
const bytes = (text: string) => new TextEncoder().encode(text);
const A = 'bafyA' as Token;
const B = 'bafyB' as Token;

test('the pure-call cache stays at its entry bound however many distinct calls it sees', (t) => {
  const cache = new PureCallCache({ maxCacheEntries: 100, maxCacheBytes: 1 << 30 });
  for (let i = 0; i < 1_000; i++) cache.set(i % 2 ? A : B, bytes(`args ${i}`), answer(8, i));
  t.is(cache.use.entries, 100);
  // The newest are kept, the oldest gone.
  t.truthy(cache.get(B, bytes('args 998')));
  t.is(cache.get(B, bytes('args 0')), undefined);
});

test('the pure-call cache stays within its byte bound, and refuses an entry bigger than the bound', (t) => {
  const cache = new PureCallCache({ maxCacheEntries: 1_000_000, maxCacheBytes: 1_000_000 });
  for (let i = 0; i < 100; i++) cache.set(A, bytes(`args ${i}`), answer(100_000, i));
  t.true(cache.use.bytes <= 1_000_000, `${cache.use.bytes} bytes`);
  t.is(cache.use.entries, Math.floor(1_000_000 / entryCost(bytes('args 99'), new Uint8Array(100_000))));
  cache.set(B, bytes('huge'), answer(600_000));
  t.is(cache.get(B, bytes('huge')), undefined);
  t.true(cache.use.bytes <= 1_000_000);
});

test('the pure-call cache forgets the least recently used first (recency by journaled hits), and all of a revoked token', (t) => {
  const cache = new PureCallCache({ maxCacheEntries: 3, maxCacheBytes: 1 << 30 });
  cache.set(A, bytes('1'), answer(1, 1));
  cache.set(B, bytes('1'), answer(1, 2));
  cache.set(A, bytes('2'), answer(1, 3));
  t.truthy(cache.get(B, bytes('1')));
  cache.used(2); // a journaled hit on B's answer: B is now the most recently used
  cache.set(A, bytes('3'), answer(1, 4));
  t.is(cache.get(A, bytes('1')), undefined, "A's oldest entry went first");
  t.truthy(cache.get(B, bytes('1')));
  cache.forget(A);
  t.deepEqual(cache.use, { entries: 1, bytes: entryCost(bytes('1'), new Uint8Array(1)), tokens: 1 });
  cache.forget(B);
  t.deepEqual(cache.use, { entries: 0, bytes: 0, tokens: 0 });
});

test('a kernel keeps at most maxCacheBytes of pure answers: big answers push out older ones', async (t) => {
  t.is(DEFAULT_LIMITS.maxCacheBytes, 64 * 1024 * 1024);
  const kernel = await memoryKernel(t, { maxCacheBytes: 1_000_000 });
  const token = await kernel.issue({ code: await kernel.publish("export const big = (ctx, i) => String(i) + 'x'.repeat(200000)"), export: 'big' });
  for (let i = 0; i < 10; i++) t.is((await kernel.call(token, [i])).status, 'fulfilled');
  await kernel.call(token, [9]);
  t.is(await hits(kernel), 1, 'the latest answer is still cached');
  await kernel.call(token, [0]);
  t.is(await hits(kernel), 1, 'the first answer was pushed out (2 MB of answers against a 1 MB bound), so this call executed');
});

test('a call on a token with no answers kept does not turn its arguments into a key', (t) => {
  const cache = new PureCallCache({ maxCacheEntries: 10, maxCacheBytes: 1 << 20 });
  // Arguments that count how often they are read.
  let reads = 0;
  const args = new Proxy(bytes('a megabyte, say'), {
    get: (target, key) => {
      reads += 1;
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  t.is(cache.get(A, args), undefined);
  t.is(reads, 0, 'not read at all');
  cache.set(A, bytes('kept'), answer(1));
  t.is(cache.get(A, args), undefined);
  t.true(reads > 0, 'with answers kept for the token, the key is made');
});

/** A cache of `count` answers, and its snapshot. */
const filledCache = (count: number) => {
  const cache = new PureCallCache({ maxCacheEntries: count, maxCacheBytes: 1 << 30 });
  for (let i = 0; i < count; i++) cache.set(i % 2 ? A : B, bytes(`args ${i}`), answer(8, i));
  cache.used(1); // recency that is not the order of setting
  return cache.snapshot();
};

/** Timers run by hand: `later` for a restore, and the number still waiting. */
const manualTimers = () => {
  const waiting = new Set<() => void>();
  return {
    later: (_ms: number, callback: () => void) => (waiting.add(callback), () => waiting.delete(callback)),
    runOne: () => {
      const [next] = waiting;
      waiting.delete(next!);
      next!();
    },
    get waiting() {
      return waiting.size;
    },
  };
};

test('a restore on timers takes a snapshot in a chunk at a time, ending with the same cache', (t) => {
  const snapshot = filledCache(5_000);
  const cache = new PureCallCache({ maxCacheEntries: 5_000, maxCacheBytes: 1 << 30 });
  const timers = manualTimers();
  cache.restore(snapshot, timers.later);
  let turns = 0;
  while (timers.waiting) (timers.runOne(), (turns += 1));
  t.true(turns > 1, `taken in over ${turns} turns`);
  t.deepEqual(cache.snapshot(), snapshot);
});

test('whatever uses a cache being restored on timers first takes in the rest: a lookup, a hit, a revocation, a snapshot', (t) => {
  const snapshot = filledCache(5_000);
  const uses: Array<[string, (cache: PureCallCache) => void]> = [
    ['get', (cache) => t.truthy(cache.get(B, bytes('args 4998')), 'an answer among the last taken in is found')],
    ['used', (cache) => cache.used(0)],
    ['forget', (cache) => cache.forget(A)],
    ['set', (cache) => cache.set(A, bytes('new'), answer(8, 9_999))],
  ];
  for (const [name, use] of uses) {
    const cache = new PureCallCache({ maxCacheEntries: 5_000, maxCacheBytes: 1 << 30 });
    const timers = manualTimers();
    cache.restore(snapshot, timers.later);
    timers.runOne();
    use(cache);
    t.is(timers.waiting, 0, `${name}: no timer left`);
    // The same as a cache restored at once and then used the same way.
    const whole = new PureCallCache({ maxCacheEntries: 5_000, maxCacheBytes: 1 << 30 });
    whole.restore(snapshot);
    use(whole);
    t.deepEqual(cache.snapshot(), whole.snapshot(), name);
  }
  // Stopped (its kernel closing), it still gives its whole snapshot.
  const stopped = new PureCallCache({ maxCacheEntries: 5_000, maxCacheBytes: 1 << 30 });
  const timers = manualTimers();
  stopped.restore(snapshot, timers.later);
  stopped.stopRestoring();
  t.is(timers.waiting, 0);
  t.deepEqual(stopped.snapshot(), snapshot);
});

test('a snapshot of the cache that does not hold together is refused when restored, not when its answers come in', (t) => {
  const { tokens, answers } = filledCache(10);
  const cache = new PureCallCache({ maxCacheEntries: 10, maxCacheBytes: 1 << 30 });
  t.throws(() => cache.restore({ tokens, answers: answers.subarray(0, answers.length - 3) }, manualTimers().later), { instanceOf: RangeError });
  t.throws(() => cache.restore({ tokens: tokens.slice(0, 1), answers }, manualTimers().later), { instanceOf: RangeError });
});

test('grid start --cache-answers bounds the pure-call cache a node keeps; a --cache that is not a size is one line', async (t) => {
  const { grid, ok, startNode } = gridProcesses();
  const home = join(await tempDir(t), 'home');
  await ok(home, ['init']);
  const file = join(home, '..', 'twice.js');
  await writeFile(file, 'export const twice = (ctx, n) => n * 2;');
  const token = await ok(home, ['issue', file, '--export', 'twice']);
  for (const [flag, value] of [['--cache', '30d'], ['--cache', 'lots'], ['--cache-answers', '-1']] as const) {
    const bad = await grid(home, ['start', flag, value]);
    t.is(bad.code, 1);
    t.regex(bad.stderr, new RegExp(`^grid: ${flag} takes a (size, e\\.g\\. 64MiB or 1GB|whole number) \\(got "${value}"\\)\\n?$`));
  }
  const node = await startNode(t, home, ['--cache-answers', '1', '--cache', '1MiB']);
  for (const n of [1, 2, 2, 1]) t.is(await ok(home, ['call', token, String(n)]), String(2 * n), 'through the node');
  t.is(await node.stop(), 0);
  const kernel = await openKernel({ home });
  t.teardown(() => kernel.close());
  // The repeated call answered from the cache; the last did not: holding one answer, the node let 1's go for 2's.
  t.is(await hits(kernel), 1);
});
