/**
 * The shared-memory channel between the kernel and its vats (vat/channel.ts):
 * its frames and rings alone, then a kernel whose vats use it, with every
 * vat limit in force.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { ChannelEnd, ChannelError, channelMemory, MAX_FRAME_BYTES, RING_BYTES, Ring } from '../src/vat/channel.js';
import type { FromVat, ToVat } from '../src/vat/protocol.js';
import { openKernel } from '../src/index.js';

/** Both ends of one channel, their ports joined in this thread. */
const pair = () => {
  const memory = channelMemory();
  const toVat: unknown[] = [];
  const toKernel: unknown[] = [];
  const take = (queue: unknown[]) => () => (queue.length > 0 ? { message: queue.shift() } : undefined);
  const kernel = new ChannelEnd<ToVat, FromVat>(memory, 'kernel', { postMessage: (m) => toVat.push(m) }, take(toKernel));
  const vat = new ChannelEnd<FromVat, ToVat>(memory, 'vat', { postMessage: (m) => toKernel.push(m) }, take(toVat));
  return { memory, kernel, vat, posted: { toVat, toKernel } };
};

const bytes = (n: number, fill = 7) => new Uint8Array(n).fill(fill);

test('every framed message arrives as it was sent, in order', (t) => {
  const { kernel, vat } = pair();
  const down: ToVat[] = [
    { t: 'closure', token: 'bafyc' as never, code: 'bafym' as never, export: 'greet', env: bytes(3) },
    { t: 'run', run: 2 ** 40 + 1, token: 'bafyc' as never, args: bytes(5), caller: 'did:key:zé☃' as never },
    { t: 'run', run: 3, token: 'bafyc' as never, args: bytes(0), caller: 'x' as never, fold: true },
    { t: 'reply', run: 3, sub: 1, answer: { status: 'revoked', code: 'refused', reason: 'no ☃' } },
    { t: 'reply', run: 3, sub: 2, answer: { status: 'promised', token: 'bafyp' } },
  ];
  for (const message of down) t.true(kernel.send(message));
  for (const message of down) t.deepEqual(vat.next(), message);
  t.is(vat.next(), undefined);
  const up: FromVat[] = [
    { t: 'done', run: 2, answer: { status: 'fulfilled', value: bytes(9) }, pure: true },
    { t: 'call', run: 2, sub: 0, token: 'bafyt', args: bytes(2) },
    { t: 'call', run: 2, sub: 1, token: 'bafyt', args: bytes(2), sync: true },
    { t: 'log', run: 2, line: 'a line' },
    { t: 'issue', run: 2, sub: 2, export: 'f', env: bytes(1) },
  ];
  for (const message of up) t.true(vat.send(message));
  for (const message of up) t.deepEqual(kernel.next(), message);
  t.is(kernel.next(), undefined);
});

test('frames wrap around the ring; a full ring keeps the rest in order until there is room', (t) => {
  const { kernel, vat } = pair();
  const message = (run: number): ToVat => ({ t: 'run', run, token: 'bafyc' as never, args: bytes(1000 + (run % 7), run % 256), caller: 'c' as never });
  let sent = 0;
  let read = 0;
  // Many times round the ring, filling it each time before it is read.
  for (let lap = 0; lap < 20; lap++) {
    while (kernel.send(message(sent))) sent += 1;
    sent += 1; // that one waits in the backlog
    t.is(kernel.backlogged, 1);
    for (let i = 0; i < 50; i++) kernel.send(message(sent++));
    while (read < sent) {
      const next = vat.next();
      if (!next) {
        t.true(kernel.flush());
        continue;
      }
      t.deepEqual(next, message(read++));
    }
    t.is(kernel.backlogged, 0);
  }
  t.true(sent * 1000 > 10 * RING_BYTES);
});

test('a message too big for a frame goes by the port and keeps its place', (t) => {
  const { kernel, vat, posted } = pair();
  const big: FromVat = { t: 'done', run: 1, answer: { status: 'fulfilled', value: bytes(MAX_FRAME_BYTES + 1) }, pure: true };
  const ready = { t: 'ready', run: -1 } as const; // no frame of its own: posted too
  vat.send({ t: 'log', run: 1, line: 'before' });
  vat.send(big);
  vat.send(ready);
  vat.send({ t: 'log', run: 1, line: 'after' });
  t.is(posted.toKernel.length, 2);
  t.deepEqual(kernel.next(), { t: 'log', run: 1, line: 'before' });
  t.deepEqual(kernel.next(), big);
  t.deepEqual(kernel.next(), ready);
  t.deepEqual(kernel.next(), { t: 'log', run: 1, line: 'after' });
});

test('what a vat writes that is not a frame is a ChannelError, never read past', (t) => {
  /** Write raw words into the vat's ring, as a vat gone wrong would. */
  const raw = (memory: SharedArrayBuffer, words: number[], written: number) => {
    const base = 16 + RING_BYTES; // the second ring: vat to kernel
    new Int32Array(memory, base + 16, words.length).set(words);
    Atomics.store(new Int32Array(memory, base, 4), 0, written);
  };
  const cases: Array<[string, (ring: Ring, memory: SharedArrayBuffer) => unknown]> = [
    ['a length past the largest frame', (_ring, memory) => raw(memory, [MAX_FRAME_BYTES + 1, 0], 8)],
    ['a negative length', (_ring, memory) => raw(memory, [-5, 0], 8)],
    ['a length past what was written', (_ring, memory) => raw(memory, [100, 0], 8)],
    ['an unknown kind', (ring) => ring.write(new Uint8Array([99]))],
    ['a field past its end', (ring) => ring.write(new Uint8Array([4, 1, 2]))],
    ['text that is not UTF-8', (ring) => ring.write(new Uint8Array([6, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0xff, 0xfe]))],
    ['bytes left over', (ring) => ring.write(new Uint8Array([6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]))],
    ['a marker with nothing posted', (ring) => ring.write(new Uint8Array([0]))],
  ];
  for (const [name, write] of cases) {
    const { memory, kernel } = pair();
    write(new Ring(memory, 1), memory);
    t.throws(() => kernel.next(), { instanceOf: ChannelError }, name);
  }
});

const HOSTILE = `
  export const echo = (ctx, x) => x;
  export const big = (ctx, n) => 'x'.repeat(n);
  export const relay = async (ctx, t, x) => ctx.call(t, x);
  export const make = async (ctx) => ctx.issue({ export: 'echo', env: { made: true } });
  export const spin = () => { for (;;) {} };
  export const hog = () => { const keep = []; for (;;) keep.push(new Array(1 << 16).fill(keep.length)); };
`;

test.serial('vats on the shared-memory channel: calls, nested calls, issue, big answers, time and memory limits', async (t) => {
  const kernel = await openKernel({ memory: true, limits: { callTimeoutMs: 3000, vatMemoryMb: 32, vatTransport: 'shared-memory' } });
  t.teardown(() => kernel.close());
  const code = await kernel.publish(HOSTILE);
  const issue = (name: string) => kernel.issue({ code, export: name });
  const echo = await issue('echo');
  t.deepEqual(await kernel.call(echo, ['hi']), { status: 'fulfilled', value: 'hi' });
  // Many in flight at once, spread over both vats.
  const many = await Promise.all(Array.from({ length: 500 }, (_, i) => kernel.call(echo, [`n${i}`])));
  t.true(many.every((outcome, i) => outcome.status === 'fulfilled' && outcome.value === `n${i}`));
  t.deepEqual(await kernel.call(await issue('relay'), [{ '/': echo }, 'relayed']), { status: 'fulfilled', value: 'relayed' });
  const made = await kernel.call(await issue('make'), []);
  t.is(made.status, 'promised');
  // Larger than a frame, both ways: by the port, in its place.
  const large = 'y'.repeat(MAX_FRAME_BYTES * 2);
  t.deepEqual(await kernel.call(echo, [large]), { status: 'fulfilled', value: large });
  t.deepEqual(await kernel.call(await issue('big'), [MAX_FRAME_BYTES * 3]), { status: 'fulfilled', value: 'x'.repeat(MAX_FRAME_BYTES * 3) });
  t.deepEqual(await kernel.call(await issue('spin'), []), { status: 'revoked', code: 'time-limit', reason: 'time limit' });
  t.deepEqual(await kernel.call(echo, ['after the spin']), { status: 'fulfilled', value: 'after the spin' });
  t.deepEqual(await kernel.call(await issue('hog'), []), { status: 'revoked', code: 'memory-limit', reason: 'memory limit' });
  t.deepEqual(await kernel.call(echo, ['after the hog']), { status: 'fulfilled', value: 'after the hog' });
});

test.serial('a cancelled call on the shared-memory channel stops its vat; the next call is served', async (t) => {
  const kernel = await openKernel({ memory: true, limits: { callTimeoutMs: 20_000, vatTransport: 'shared-memory', vatSpinUs: 0 } });
  t.teardown(() => kernel.close());
  const code = await kernel.publish(HOSTILE);
  const spin = await kernel.issue({ code, export: 'spin' });
  const echo = await kernel.issue({ code, export: 'echo' });
  t.deepEqual(await kernel.call(echo, ['warm']), { status: 'fulfilled', value: 'warm' });
  const controller = new AbortController();
  const spinning = kernel.call(spin, [], { signal: controller.signal });
  setTimeout(() => controller.abort(), 300);
  t.is((await spinning).status, 'revoked');
  t.deepEqual(await kernel.call(echo, ['next']), { status: 'fulfilled', value: 'next' });
});
