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
import { journalEntries } from './_helpers.js';

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
