/**
 * What one peer can make a node do after authenticating (issue 13, items 3
 * and 4), against a real node on loopback with real vats: frames are
 * refused by their item count before anything is built (a call's arguments
 * answered revoked, a bloated envelope closing the connection), other
 * peers keep being answered meanwhile, a dropped connection's calls end
 * `revoked: disconnected` with their vats stopped, and a peer's calls in
 * flight are bounded across its sessions.
 */
import '../src/perimeter/lockdown.js';
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { openKernel, type Kernel } from '../src/index.js';
import { generateIdentity, type Identity } from '../src/identity/index.js';
import { serveNode } from '../src/net/node.js';
import { connectNode } from '../src/net/client.js';
import { E } from '@endo/far';
import { MAX_CALLS_PER_PEER, MAX_CAPTP_VALUES, openSession, type Session } from '../src/net/session.js';
import { decodeReply, encodeCall, MAX_CALL_ITEMS, MAX_REQUEST_ITEMS, REPLY_PROTOCOL } from '../src/net/frames.js';
import { CAPTP_PROTOCOL } from '../src/net/handshake.js';
import { MAX_VALUE_ITEMS } from '../src/closures/values.js';
import { blockCid } from '../src/store/hashing.js';
import { DAG_CBOR_CODEC, type Token } from '../src/interface/ids.js';
import { decodeMessage, encodeMessage } from '../src/wire/index.js';
import { eventually } from './_processes.js';
import { journalEntries } from './_helpers.js';

const random = (n: number) => new Uint8Array(randomBytes(n));
const madeUpToken = () => blockCid(random(32), DAG_CBOR_CODEC).toString() as Token;

/** Canonical CBOR of an array of `n` (at least 256) empty maps: the array's header, then one byte per map. */
const emptyMaps = (n: number): Uint8Array => {
  const header = n < 65536 ? [0x99, n >> 8, n & 255] : [0x9a, n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255];
  const bytes = new Uint8Array(header.length + n).fill(0xa0);
  bytes.set(header);
  return bytes;
};

const MODULE = `
export const spin = () => { for (;;) {} };
export const echo = (ctx, x) => x;
`;

const nodeWith = async (t: ExecutionContext, limits: Record<string, number> = {}) => {
  const identity = generateIdentity(random);
  // A loaded machine may take seconds to carry a frame at the item limit through a vat; these tests are about counts, not time.
  const kernel = await openKernel({ memory: true, identity, limits: { vats: 1, callTimeoutMs: 60_000, ...limits } });
  const server = await serveNode(kernel, { identity, random });
  const code = await kernel.publish(MODULE);
  const spin = await kernel.issue({ code, export: 'spin', timeLimitMs: 120_000 });
  const echo = await kernel.issue({ code, export: 'echo' });
  t.teardown(async () => {
    await server.close();
    await kernel.close();
  });
  return { kernel, url: server.url, spin, echo };
};

/** An authenticated connection under `identity`, with its raw socket: the replies and the close it receives are kept. */
const rawPeer = async (url: string, identity: Identity = generateIdentity(random)) => {
  const socket = new WebSocket(url, { maxPayload: 64 * 1024 * 1024 });
  socket.on('error', () => {});
  const session: Session = await openSession(socket, { identity, random, handshakeMs: 30_000 });
  const replies = new Map<number, ReturnType<typeof decodeReply>['answer']>();
  socket.on('message', (data: Buffer) => {
    const message = decodeMessage(new Uint8Array(data));
    if (message.cid.equals(REPLY_PROTOCOL)) {
      const { id, answer } = decodeReply(message, {});
      replies.set(id, answer);
    }
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const reply = (id: number) => eventually(async () => replies.get(id), Boolean, 30_000, 20);
  return { socket, session, replies, closed, reply };
};

test('a call whose arguments hold 900k empty maps is answered revoked for its item count; the connection stays up', async (t) => {
  const { url, echo } = await nodeWith(t);
  const peer = await rawPeer(url);
  peer.socket.send(encodeMessage(madeUpToken(), 1_000_000, emptyMaps(900_000), 0), { binary: true });
  t.like((await peer.reply(1_000_000))?.outcome, { status: 'revoked', code: 'invalid', reason: `bad arguments: more than ${MAX_VALUE_ITEMS} items` });
  peer.socket.send(encodeMessage(echo as Token, 1_000_001, emptyMaps(MAX_VALUE_ITEMS - 1), 0), { binary: true });
  const atTheLimit = await peer.reply(1_000_001);
  t.like(atTheLimit?.outcome, { status: 'fulfilled' }, 'arguments of MAX_VALUE_ITEMS items are a call like any other');
  t.like((await peer.session.call(echo as Token, ['still here'])).outcome, { status: 'fulfilled', value: 'still here' });
  peer.socket.terminate();
});

test('an envelope with more items than its kind needs closes the connection, saying so', async (t) => {
  const { url } = await nodeWith(t);
  const cases: Array<[string, Uint8Array, number]> = [
    ['a call with 900k maps as an extra slot', encodeMessage(madeUpToken(), 0, emptyMaps(0), 0, Array.from({ length: 900_000 }, () => ({}))), MAX_CALL_ITEMS],
    ['a reply with a bloated slot', encodeMessage(REPLY_PROTOCOL, 0, 1, 'x', 0, Array.from({ length: 100 }, () => 0)), MAX_REQUEST_ITEMS],
    ['a CapTP message of 5,000 items', encodeMessage(CAPTP_PROTOCOL, { type: 'CTP_NOPE', junk: Array.from({ length: 5_000 }, () => 0) }), 1024],
  ];
  for (const [what, frame, limit] of cases) {
    const peer = await rawPeer(url);
    peer.socket.send(frame, { binary: true });
    const { code, reason } = await peer.closed;
    t.is(code, 1008, what);
    t.is(reason, `CBOR decode error: more than ${limit} items`, what);
  }
});

test('a CapTP message carrying more JSON values than MAX_CAPTP_VALUES closes a stranger\'s connection before CapTP parses it', async (t) => {
  const { url, echo } = await nodeWith(t);
  const peer = await rawPeer(url);
  const node = E(peer.session.bootstrap() as Promise<{ call(token: string, args: unknown[]): Promise<unknown> }>);
  t.deepEqual(await node.call(echo, [Array.from({ length: 100 }, () => ({}))]), { status: 'fulfilled', value: Array.from({ length: 100 }, () => ({})) });
  void node.call(echo, [Array.from({ length: 300_000 }, () => ({}))]).catch(() => {});
  const { code, reason } = await peer.closed;
  t.is(code, 1008);
  t.is(reason, `a CapTP message carries more than ${MAX_CAPTP_VALUES} JSON values (larger arguments go as a grid call)`);
});

test('honest calls on another connection keep being answered while a peer sends its worst frames', async (t) => {
  const { url, echo } = await nodeWith(t);
  const hostile = await rawPeer(url);
  const honest = await connectNode(url, { identity: generateIdentity(random), random });
  t.teardown(() => honest.close());
  let sending = true;
  let sent = 0;
  // Frames at the item limit (decoded and answered) and far past it (refused), back to back, never waiting for replies.
  const atLimit = emptyMaps(MAX_VALUE_ITEMS - 1);
  const pastLimit = emptyMaps(900_000);
  const flood = (async () => {
    while (sending) {
      while (hostile.socket.bufferedAmount < 4 * 1024 * 1024) {
        hostile.socket.send(encodeMessage(madeUpToken(), sent, sent % 2 ? atLimit : pastLimit, 0), { binary: true });
        sent += 1;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  const outcomes = [];
  for (let i = 0; i < 20; i++) outcomes.push(await honest.call(echo, [i], { timeoutMs: 30_000 }));
  sending = false;
  await flood;
  t.deepEqual(
    outcomes,
    outcomes.map((_, i) => ({ status: 'fulfilled', value: i })),
  );
  t.true(sent > outcomes.length, `the hostile peer kept sending (${sent} frames)`);
  t.true(hostile.replies.size > 0, 'and was answered too');
  hostile.socket.terminate();
});

/** The journal's ends of calls on `token`: the code of each revoked one. */
const ends = async (kernel: Kernel, token: string) => {
  const entries = (await journalEntries(kernel.journal));
  const calls = new Set(entries.filter((e) => e.kind === 'call' && e.token === token).map((e) => e.seq));
  return {
    calls: calls.size,
    revoked: entries.filter((e) => e.kind === 'revoked' && calls.has(e.call)).map((e) => (e as { code: string }).code),
  };
};

test('when a connection drops, the calls it started end `revoked: disconnected`, journaled, and their vats are stopped', async (t) => {
  const { kernel, url, spin, echo } = await nodeWith(t);
  const peer = await connectNode(url, { identity: generateIdentity(random), random });
  const COUNT = 20;
  for (let i = 0; i < COUNT; i++) void peer.call(spin, [i], { timeoutMs: 600_000 });
  // All of them reached the kernel (one spins in the only vat, the rest wait behind it).
  t.is((await eventually(async () => ends(kernel, spin), (e) => e.calls === COUNT, 20_000, 20)).calls, COUNT);
  peer.session.close();
  const after = await eventually(async () => ends(kernel, spin), (e) => e.revoked.length === COUNT, 20_000, 20);
  t.deepEqual(after.revoked, Array.from({ length: COUNT }, () => 'disconnected'));
  // The only vat is free again: a new call is answered, not queued behind a spinning closure for its 120 s.
  t.deepEqual(await kernel.call(echo, ['next']), { status: 'fulfilled', value: 'next' });
});

test(`a peer has at most MAX_CALLS_PER_PEER (${MAX_CALLS_PER_PEER}) calls in flight, across its sessions; past it a call is refused in one line`, async (t) => {
  const { kernel, url, spin, echo } = await nodeWith(t);
  const identity = generateIdentity(random);
  const first = await rawPeer(url, identity);
  const second = await rawPeer(url, identity);
  const half = MAX_CALLS_PER_PEER / 2;
  // An answer the node keeps: asked for again, it would be a cache hit, answered at once.
  t.deepEqual(await kernel.call(echo, ['kept']), { status: 'fulfilled', value: 'kept' });
  for (let i = 0; i < half; i++) first.socket.send(encodeCall(i, spin as Token, [i], {}), { binary: true });
  for (let i = 0; i < half; i++) second.socket.send(encodeCall(i, spin as Token, [i], {}), { binary: true });
  await eventually(async () => ends(kernel, spin), (e) => e.calls === MAX_CALLS_PER_PEER, 30_000, 50);
  second.socket.send(encodeCall(half, echo as Token, ['one too many'], {}), { binary: true });
  t.like((await second.reply(half))?.outcome, { status: 'revoked', code: 'quota', reason: `too many calls in flight (limit ${MAX_CALLS_PER_PEER} per peer)` });
  // A cache hit counts against the same limit, though it would be answered without a turn.
  second.socket.send(encodeCall(half + 1, echo as Token, ['kept'], {}), { binary: true });
  t.like((await second.reply(half + 1))?.outcome, { status: 'revoked', code: 'quota', reason: `too many calls in flight (limit ${MAX_CALLS_PER_PEER} per peer)` });
  // Another principal is not counted with this one.
  const other = await connectNode(url, { identity: generateIdentity(random), random });
  t.teardown(() => other.close());
  // Dropping both connections ends all of them and frees the peer's count (and the vat).
  first.socket.terminate();
  second.socket.terminate();
  const after = await eventually(async () => ends(kernel, spin), (e) => e.revoked.length === MAX_CALLS_PER_PEER, 30_000, 50);
  t.is(after.revoked.filter((code) => code === 'disconnected').length, MAX_CALLS_PER_PEER);
  t.deepEqual(await other.call(echo, ['another peer'], { timeoutMs: 30_000 }), { status: 'fulfilled', value: 'another peer' });
  const again = await rawPeer(url, identity);
  t.is((await again.session.call(echo as Token, ['back'])).outcome.status, 'fulfilled', 'the peer may call again once its calls have ended');
  again.socket.terminate();
});
