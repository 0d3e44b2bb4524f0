/**
 * Nodes over real WebSockets on loopback: authenticated sessions, CapTP
 * calls, and hostile connections refused while the node keeps serving.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { randomBytes } from 'node:crypto';
import WebSocket, { WebSocketServer } from 'ws';
import { openKernel, type Kernel } from '../src/index.js';
import { generateIdentity } from '../src/identity/index.js';
import { NodeSessions, serveNode, startNode, type NodeServer } from '../src/net/node.js';
import { FIRST_BACKOFF_MS, makePeers } from '../src/net/peers.js';
import { connectNode } from '../src/net/client.js';
import { encodeMessage } from '../src/wire/index.js';
import { encodeCall, encodeCancel, REPLY_PROTOCOL, REVOCATION_PROTOCOL } from '../src/net/frames.js';
import { asToken } from '../src/interface/ids.js';
import { signRevocation } from '../src/kernel/revocations.js';
import { HANDSHAKE_PROTOCOL } from '../src/net/handshake.js';
import { acceptSession, openSession } from '../src/net/session.js';
import { E } from '@endo/far';
import { journalEntries } from './_helpers.js';

const random = (n: number) => new Uint8Array(randomBytes(n));

const setup = async (t: import('ava').ExecutionContext, handshakeMs = 2000) => {
  const nodeIdentity = generateIdentity(random);
  const kernel: Kernel = await openKernel({ memory: true, identity: nodeIdentity, limits: { vats: 1 } });
  const server: NodeServer = await serveNode(kernel, { identity: nodeIdentity, random, handshakeMs, allowedOrigins: ['http://127.0.0.1:8080'] });
  t.teardown(async () => {
    await server.close();
    await kernel.close();
  });
  const code = await kernel.publish('export const who = (ctx) => ctx.caller; export const add = (ctx, a, b) => a + b; export const hang = () => new Promise(() => {});');
  const tokens = {
    who: await kernel.issue({ code, export: 'who' }),
    add: await kernel.issue({ code, export: 'add' }),
    hang: await kernel.issue({ code, export: 'hang' }),
  };
  return { kernel, server, tokens, nodeIdentity };
};

/** Open a raw socket and resolve with how it ended. */
const rawSocket = (url: string, options: WebSocket.ClientOptions = {}) => {
  const socket = new WebSocket(url, options);
  const ended = new Promise<string>((resolve) => {
    socket.on('close', (code) => resolve(`closed ${code}`));
    socket.on('error', (error) => resolve(`error ${error.message}`));
  });
  return { socket, ended, opened: new Promise<void>((resolve) => socket.on('open', () => resolve())) };
};

test('an authenticated client calls tokens as itself', async (t) => {
  const { server, tokens, nodeIdentity } = await setup(t);
  const client = generateIdentity(random);
  const remote = await connectNode(server.url, { identity: client, random });
  t.teardown(() => remote.close());
  t.is(remote.session.peer, nodeIdentity.principal, 'the client knows whom it reached');
  t.deepEqual(await remote.call(tokens.add, [2, 3]), { status: 'fulfilled', value: 5 });
  t.deepEqual(await remote.call(tokens.who, []), { status: 'fulfilled', value: client.principal }, 'ctx.caller is the authenticated principal');
  t.deepEqual(await remote.call('bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', []), { status: 'revoked', code: 'unknown-token', reason: 'unknown token' });
});

test('a dropped connection revokes the calls that depended on it', async (t) => {
  const { server, tokens } = await setup(t);
  const remote = await connectNode(server.url, { identity: generateIdentity(random), random });
  const pending = remote.call(tokens.hang, []);
  await new Promise((resolve) => setTimeout(resolve, 100));
  await server.close();
  t.deepEqual(await pending, { status: 'revoked', code: 'disconnected', reason: 'disconnected' });
});

test('hostile connections are refused and the node keeps serving', async (t) => {
  const { server, tokens } = await setup(t, 300);
  // A page from another site.
  t.regex(await rawSocket(server.url, { origin: 'https://evil.example' }).ended, /error Unexpected server response: 401/);
  // Garbage before authentication.
  const garbage = rawSocket(server.url);
  await garbage.opened;
  garbage.socket.send(new Uint8Array([0xff, 0x00, 0x13]));
  t.is(await garbage.ended, 'closed 1008');
  // An oversized frame before authentication.
  const big = rawSocket(server.url);
  await big.opened;
  big.socket.send(new Uint8Array(64 * 1024));
  t.is(await big.ended, 'closed 1008');
  // Text instead of binary.
  const text = rawSocket(server.url);
  await text.opened;
  text.socket.send('hello');
  t.is(await text.ended, 'closed 1008');
  // Slow loris: connect and say nothing.
  const silent = rawSocket(server.url);
  await silent.opened;
  t.is(await silent.ended, 'closed 1008');
  // A forged proof: right shape, signature over nothing this node asked.
  const forger = rawSocket(server.url);
  await forger.opened;
  forger.socket.send(
    encodeMessage(HANDSHAKE_PROTOCOL, 'prove', { principal: generateIdentity(random).principal, challenge: random(32), signature: random(64) }),
  );
  t.is(await forger.ended, 'closed 1008');
  // And an honest client still gets through.
  const remote = await connectNode(server.url, { identity: generateIdentity(random), random });
  t.deepEqual(await remote.call(tokens.add, [20, 22]), { status: 'fulfilled', value: 42 });
  remote.close();
});

test('a replayed handshake proves nothing on a new connection', async (t) => {
  const { server } = await setup(t, 1000);
  const client = generateIdentity(random);
  // Record the client's proof from a real session.
  const recorded: Uint8Array[] = [];
  const send = WebSocket.prototype.send;
  const spy = function (this: WebSocket, data: unknown, ...rest: unknown[]) {
    if (data instanceof Uint8Array) recorded.push(data.slice());
    return (send as (...a: unknown[]) => void).call(this, data, ...rest);
  };
  WebSocket.prototype.send = spy as typeof send;
  try {
    (await connectNode(server.url, { identity: client, random })).close();
  } finally {
    WebSocket.prototype.send = send;
  }
  const prove = recorded[0]!;
  const replay = rawSocket(server.url);
  await replay.opened;
  replay.socket.send(prove);
  t.is(await replay.ended, 'closed 1008');
});

test("only the node's own principal may publish, issue and revoke through it", async (t) => {
  const { server, kernel, nodeIdentity } = await setup(t);
  const stranger = await connectNode(server.url, { identity: generateIdentity(random), random });
  t.teardown(() => stranger.close());
  await t.throwsAsync(stranger.publish(new TextEncoder().encode('export const f = () => 1')), { message: /publish/ });
  await t.throwsAsync(stranger.issue({ code: 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', export: 'f' }), { message: /issue/ });
  const owner = await connectNode(server.url, { identity: nodeIdentity, random });
  t.teardown(() => owner.close());
  const code = await owner.publish(new TextEncoder().encode('export const f = (ctx, x) => x * 2'));
  const token = await owner.issue({ code, export: 'f' });
  t.deepEqual(await stranger.call(token, [21]), { status: 'fulfilled', value: 42 });
  await owner.revoke(token, 'done');
  t.deepEqual(await stranger.call(token, [21]), { status: 'revoked', code: 'token-revoked', reason: 'done' });
  t.true(kernel.isRevoked(token));
  await t.throwsAsync(owner.issue({ code, export: 'nope' }), { message: /has no export "nope"/ });
});

/** A memory node with its own identity, optional peers, served on loopback. */
/** `forwarding`: told the path of every call the node passes on to its peers. */
const nodeWith = async (t: import('ava').ExecutionContext, peerUrls: string[] = [], forwarding?: (path: readonly string[]) => void) => {
  const identity = generateIdentity(random);
  const node = await startNode(
    (forward) =>
      openKernel({
        memory: true,
        identity,
        forward: (request) => {
          forwarding?.(request.path);
          return forward(request);
        },
        limits: { vats: 1, callTimeoutMs: 20_000 },
      }),
    { identity, random, peers: peerUrls },
  );
  t.teardown(() => node.close());
  return { identity, ...node };
};

test('a node forwards what it cannot answer; with the origin offline the call is unreachable', async (t) => {
  const a = await nodeWith(t);
  const code = await a.kernel.publish('export const square = (ctx, x) => x * x; export const who = (ctx) => ctx.caller;');
  const square = await a.kernel.issue({ code, export: 'square' });
  const who = await a.kernel.issue({ code, export: 'who' });
  const b = await nodeWith(t, [a.server.url]);
  const client = await connectNode(b.server.url, { identity: generateIdentity(random), random });
  t.teardown(() => client.close());
  t.deepEqual(await client.call(square, [12]), { status: 'fulfilled', value: 144 });
  t.deepEqual(await client.call(who, []), { status: 'fulfilled', value: b.identity.principal }, 'A sees the node that forwarded');
  t.true((await journalEntries(b.kernel.journal)).some((e) => e.kind === 'forwarded' && e.to === a.identity.principal), 'B journals the forward');
  t.true((await journalEntries(a.kernel.journal)).some((e) => e.kind === 'call' && e.token === square && e.caller === b.identity.principal), 'A journals the call');
  // B cached the pure answer: the second call does not reach A.
  const callsOnA = async () => (await journalEntries(a.kernel.journal)).filter((e) => e.kind === 'call' && e.token === square).length;
  t.deepEqual(await client.call(square, [12]), { status: 'fulfilled', value: 144 });
  t.is(await callsOnA(), 1);
  t.true((await journalEntries(b.kernel.journal)).some((e) => e.kind === 'hit' && e.token === square), 'B answered from its cache');
  // A's revocation reaches B before A's revoke returns: B's cached copy does not outlive it.
  await a.kernel.revoke(square, 'withdrawn');
  t.deepEqual(await client.call(square, [12]), { status: 'revoked', code: 'token-revoked', reason: 'withdrawn' });
  t.true((await journalEntries(b.kernel.journal)).some((e) => e.kind === 'revocation' && e.token === square && e.by === a.identity.principal && e.from === a.identity.principal));
  await a.close();
  t.deepEqual(await client.call(who, []), { status: 'revoked', code: 'unreachable', reason: 'unreachable' });
});

test('forwarding stops at loops', async (t) => {
  // B and C name each other as peers (B learns C's address once C is up); neither holds the token.
  const passedOn = { b: [] as Array<readonly string[]>, c: [] as Array<readonly string[]> };
  const b = await nodeWith(t, [], (path) => passedOn.b.push(path));
  const c = await nodeWith(t, [b.server.url], (path) => passedOn.c.push(path));
  b.peers.add(c.server.url);
  const client = await connectNode(b.server.url, { identity: generateIdentity(random), random });
  t.teardown(() => client.close());
  const outcome = await client.call('bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', []);
  t.deepEqual(outcome, { status: 'revoked', code: 'unknown-token', reason: 'unknown token' });
  t.deepEqual(passedOn.b, [[b.identity.principal]], 'B passed it on once');
  t.deepEqual(passedOn.c, [[b.identity.principal, c.identity.principal]], 'the call did reach C, which passes it on to no node on its path');
  // Neither node holds the token: a call on it leaves no record on either (item 1 of the stranger issue).
  t.false([...(await journalEntries(b.kernel.journal)), ...(await journalEntries(c.kernel.journal))].some((e) => e.kind === 'call'));
});

test("a revoked answer's code crosses the wire: the forwarding node and its caller get the code of the node that ran the call", async (t) => {
  const a = await nodeWith(t);
  const code = await a.kernel.publish('export const no = (ctx) => ctx.revoke("not today");');
  const no = await a.kernel.issue({ code, export: 'no' });
  const b = await nodeWith(t, [a.server.url]);
  const client = await connectNode(b.server.url, { identity: generateIdentity(random), random });
  t.teardown(() => client.close());
  t.deepEqual(await client.call(no, []), { status: 'revoked', code: 'refused', reason: 'not today' });
  const ended = async (kernel: Kernel) => (await journalEntries(kernel.journal)).find((e) => e.kind === 'revoked');
  t.like(await ended(a.kernel), { code: 'refused', cause: 'refused' }, "A journals its closure's refusal");
  t.like(await ended(b.kernel), { code: 'refused', cause: 'remote' }, "B journals A's code, weighed as another node's answer");
  // A token no node holds: A answers B `unknown-token` by code, so B asks no further and answers its caller so.
  t.deepEqual(await client.call('bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', []), { status: 'revoked', code: 'unknown-token', reason: 'unknown token' });
});

test('a peer that answers with a code this node does not know gets the fallback code, never a crash', async (t) => {
  // A hostile node: it authenticates, then answers every call revoked under the code its argument names.
  const identity = generateIdentity(random);
  const hostile = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => hostile.once('listening', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => (hostile.clients.forEach((s) => s.terminate()), hostile.close(() => resolve()))));
  const handlers = {
    call: async (_token: unknown, args: unknown[]) => ({ outcome: { status: 'revoked', code: args[0], reason: 'says who' }, cacheable: true }) as never,
  };
  hostile.on('connection', (socket) => {
    socket.on('error', () => {});
    acceptSession(socket, { identity, random, offer: () => ({ handlers }) }).catch(() => {});
  });
  const b = await nodeWith(t, [`ws://127.0.0.1:${(hostile.address() as { port: number }).port}`]);
  const client = await connectNode(b.server.url, { identity: generateIdentity(random), random });
  t.teardown(() => client.close());
  const token = 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku';
  for (const bogus of ['owned-by-mallory', '__proto__', 'toString', 7, { code: 'crash' }, ['loop'], null]) {
    t.deepEqual(await client.call(token, [bogus as never]), { status: 'revoked', code: 'other', reason: 'says who' }, JSON.stringify(bogus));
  }
  // A code it does know is passed on as it is (the peer is still only ever `remote` in B's tally).
  t.deepEqual(await client.call(token, ['crash']), { status: 'revoked', code: 'crash', reason: 'says who' });
  const revoked = (await journalEntries(b.kernel.journal)).filter((e) => e.kind === 'revoked');
  t.deepEqual(
    revoked.map((e) => e.kind === 'revoked' && [e.code, e.cause]),
    [...Array.from({ length: 7 }, () => ['other', 'remote']), ['crash', 'remote']],
  );
  t.deepEqual(await b.kernel.call('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', ['nonsense']), { status: 'revoked', code: 'other', reason: 'says who' }, 'B still serves');
});

test.serial('a peer that stops reading is cut off instead of buffered without bound', async (t) => {
  const { server, kernel, tokens } = await setup(t);
  const code = await kernel.publish('export const big = (ctx, n) => "x".repeat(512 * 1024) + n;');
  const big = await kernel.issue({ code, export: 'big' });
  const socket = new WebSocket(server.url);
  const session = await openSession(socket, { identity: generateIdentity(random), random });
  const node = session.bootstrap() as unknown as { call: (...a: unknown[]) => Promise<unknown> };
  t.deepEqual(await E(node).call(tokens.add, [1, 2]), { status: 'fulfilled', value: 3 }, 'the session is up');
  // Stop reading at the TCP level, then ask for far more than the node will queue for us.
  (socket as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
  for (let i = 0; i < 120; i++) void E(node).call(big, [i]).catch(() => {});
  // Wait while the node makes progress: until every call that reached it has ended and none has reached it for 2 s
  // (it cut the session off, or took all 120), however slowly a loaded machine runs them.
  const progress = async () => {
    const entries = (await journalEntries(kernel.journal));
    const calls = entries.filter((e) => e.kind === 'call' && e.token === big).map((e) => e.seq);
    const ended = new Set(entries.flatMap((e) => (e.kind === 'fulfilled' || e.kind === 'revoked' ? [e.call] : [])));
    return { reached: calls.length, running: calls.some((seq) => !ended.has(seq)) };
  };
  for (let last = -1, quietSince = Date.now(); ; await new Promise((resolve) => setTimeout(resolve, 50))) {
    const { reached, running } = await progress();
    if (reached !== last || running) (last = reached), (quietSince = Date.now());
    else if (reached === 120 || Date.now() - quietSince > 2000) break;
  }
  (socket as unknown as { _socket: { resume(): void } })._socket.resume();
  const cutOff = await Promise.race([session.closed.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 10_000))]);
  t.true(cutOff, 'the node closed the connection of a peer that would not read');
  // And it serves others.
  const other = await connectNode(server.url, { identity: generateIdentity(random), random });
  t.deepEqual(await other.call(tokens.add, [1, 1]), { status: 'fulfilled', value: 2 });
  other.close();
});

test('an unreachable peer is skipped until its backoff passes, and tried again after', async (t) => {
  const { createServer } = await import('node:net');
  // A peer that is "down": it accepts TCP and hangs up at once, counting the attempts.
  let attempts = 0;
  const dead = createServer((socket) => {
    attempts += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
  t.teardown(() => dead.close());
  const deadUrl = `ws://127.0.0.1:${(dead.address() as { port: number }).port}`;
  const identity = generateIdentity(random);
  let now = 0;
  const a = await nodeWith(t);
  const code = await a.kernel.publish('export const one = () => 1;');
  const one = await a.kernel.issue({ code, export: 'one' });
  // Retries are driven by hand here: the timer that would redial is never set off.
  const peers = makePeers([deadUrl, a.server.url], { identity, random, clock: () => now, setTimer: () => () => {} });
  t.teardown(() => peers.close());
  const ask = () => peers.forward({ token: one as never, args: [], path: [identity.principal], deadline: now + 30_000 });
  t.is((await ask())?.answer.outcome.status, 'fulfilled', 'the live peer answers');
  t.is(attempts, 1);
  t.is((await ask())?.answer.outcome.status, 'fulfilled');
  t.is(attempts, 1, 'while it backs off, the dead peer is not dialled');
  now += FIRST_BACKOFF_MS + 10;
  t.is((await ask())?.answer.outcome.status, 'fulfilled');
  t.is(attempts, 2, 'after the backoff it is tried again');
  now += FIRST_BACKOFF_MS + 10;
  await ask();
  t.is(attempts, 2, 'the next wait is longer (twice the first)');
  t.deepEqual(peers.state().map((p) => [p.url, p.connected, p.failures]), [[deadUrl, false, 2], [a.server.url, true, 0]]);
});

test('a replicable closure is fetched with its first answer and keeps answering with its issuer offline', async (t) => {
  const a = await nodeWith(t);
  const code = await a.kernel.publish('export const square = (ctx, x) => x * x; export const cube = (ctx, x) => x * x * x;');
  const square = await a.kernel.issue({ code, export: 'square', replicable: true });
  const cube = await a.kernel.issue({ code, export: 'cube' });
  const revocable = await a.kernel.issue({ code, export: 'square', replicable: true });
  const b = await nodeWith(t, [a.server.url]);
  const client = await connectNode(b.server.url, { identity: generateIdentity(random), random });
  t.teardown(() => client.close());
  t.deepEqual(await client.call(square, [12]), { status: 'fulfilled', value: 144 });
  t.deepEqual(await client.call(cube, [3]), { status: 'fulfilled', value: 27 });
  t.deepEqual(await client.call(revocable, [2]), { status: 'fulfilled', value: 4 });
  t.is((await b.kernel.closure(square)).issuer, a.identity.principal, 'B holds the replica, signed by A');
  await t.throwsAsync(b.kernel.closure(cube), { message: /unknown token/ }, 'a closure that is not replicable stays on A');
  // The issuer revokes a replicated closure: B, which runs it itself, hears of it.
  await a.kernel.revoke(revocable, 'recalled');
  t.deepEqual(await client.call(revocable, [3]), { status: 'revoked', code: 'token-revoked', reason: 'recalled' });
  await a.close();
  // New arguments, so no cache can answer: B runs its replica.
  t.deepEqual(await client.call(square, [13]), { status: 'fulfilled', value: 169 });
  t.deepEqual(await client.call(cube, [4]), { status: 'revoked', code: 'unreachable', reason: 'unreachable' });
  const calls = (await journalEntries(b.kernel.journal)).filter((e) => e.kind === 'call' && e.token === square);
  t.is(calls.length, 2);
  t.false((await journalEntries(b.kernel.journal)).some((e) => e.kind === 'forwarded' && e.call === calls[1]!.seq), 'the call with A offline ran on B');
});

test('a replica that does not match its token, or a closure that is not replicable, is refused', async (t) => {
  const a = await openKernel({ memory: true, limits: { vats: 1 } });
  const b = await openKernel({ memory: true, limits: { vats: 1 } });
  t.teardown(() => Promise.all([a.close(), b.close()]).then(() => {}));
  const code = await a.publish('export const f = (ctx, x) => x + 1;');
  const open = await a.issue({ code, export: 'f', replicable: true });
  const closed = await a.issue({ code, export: 'f' });
  await t.throwsAsync(a.replica(closed, b.principal), { message: /not replicable/ });
  const replica = await a.replica(open, b.principal);
  await t.throwsAsync(b.adopt(open as never, { ...replica, modules: [] }), { message: /lacks module/ });
  const forged = replica.closure.slice();
  forged[forged.length - 1]! ^= 1; // the last field, `replicable: true`, becomes false: the signature no longer covers it
  await t.throwsAsync(b.adopt(open as never, { ...replica, closure: forged }), { message: /replicable|signature/ });
  const other = await a.issue({ code, export: 'f', replicable: true });
  await t.throwsAsync(b.adopt(other as never, replica), { message: /do not hash to/ }, 'a record under another token is refused');
  await t.throwsAsync(b.closure(other), { message: /unknown token/ });
  await b.adopt(open as never, replica);
  t.deepEqual(await b.call(open, [1]), { status: 'fulfilled', value: 2 });
});

test('calls before authentication, and malformed or oversized frames after it, close the connection; the node keeps serving', async (t) => {
  const { server, tokens } = await setup(t);
  // A call sent in place of the handshake.
  const early = rawSocket(server.url);
  await early.opened;
  early.socket.send(encodeCall(0, tokens.add as never, [1, 2], {}));
  t.is(await early.ended, 'closed 1008');

  /** An authenticated session whose socket we then abuse. */
  const authenticated = async () => {
    const socket = new WebSocket(server.url, { maxPayload: 64 * 1024 * 1024 });
    const session = await openSession(socket, { identity: generateIdentity(random), random });
    const ended = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
    return { socket, session, ended };
  };
  const hostile: Array<[string, Uint8Array | string, number]> = [
    ['not CBOR', new Uint8Array([0xff, 0xfe, 0x00]), 1008],
    ['text', 'hello', 1008],
    ['a call whose arguments are not canonical bytes', encodeMessage(tokens.add, 0, [1, 2], {}), 1008],
    ['a reply that is not an answer', encodeMessage(REPLY_PROTOCOL, 0, { status: 'maybe' }), 1008],
    ['a forged revocation notice shape', encodeMessage(REVOCATION_PROTOCOL, 0, { token: tokens.add }), 1008],
    ['a frame over 16 MiB', new Uint8Array(17 * 1024 * 1024), 1009],
  ];
  for (const [what, frame, code] of hostile) {
    const { socket, session, ended } = await authenticated();
    // The session works, then the frame ends it.
    t.is((await session.call(tokens.add as never, [1, 2])).outcome.status, 'fulfilled', what);
    socket.send(frame);
    t.is(await ended, code, what);
  }
  const honest = await connectNode(server.url, { identity: generateIdentity(random), random });
  t.deepEqual(await honest.call(tokens.add, [20, 22]), { status: 'fulfilled', value: 42 });
  honest.close();
});

test('a revocation notice is believed only when signed by the issuer and sent by the node the answers came from', async (t) => {
  const a = await nodeWith(t);
  const code = await a.kernel.publish('export const id = (ctx, x) => x;');
  const token = await a.kernel.issue({ code, export: 'id' });
  const b = await nodeWith(t, [a.server.url]);
  const client = await connectNode(b.server.url, { identity: generateIdentity(random), random });
  t.teardown(() => client.close());
  t.deepEqual(await client.call(token, [1]), { status: 'fulfilled', value: 1 }); // B now caches A's answer
  const stranger = generateIdentity(random);
  const strangerSession = await openSession(new WebSocket(b.server.url), { identity: stranger, random });
  t.teardown(() => strangerSession.close());
  const refusal = async (notice: Awaited<ReturnType<typeof signRevocation>>) => ((await strangerSession.revoke(notice, 2000)).outcome as { reason: string }).reason;
  // Signed by the stranger itself: a valid signature, but not from where B got the token.
  t.regex(await refusal(await signRevocation(token as never, 'mine', stranger)), /did not get it from/);
  // Claiming to be A, with a signature A never made.
  t.regex(await refusal({ ...(await signRevocation(token as never, 'forged', stranger)), by: a.identity.principal }), /signature does not prove/);
  // Truly signed by A, but relayed by a stranger: B only believes the node its answers came from.
  t.regex(await refusal(await signRevocation(token as never, 'replayed', a.identity)), /did not get it from/);
  // A's notice with its reason changed on the way.
  t.regex(await refusal({ ...(await signRevocation(token as never, 'replayed', a.identity)), reason: 'changed' }), /signature does not prove/);
  t.deepEqual(await client.call(token, [1]), { status: 'fulfilled', value: 1 }, 'B still answers');
  t.false(b.kernel.isRevoked(token as never));
});

test('E(node).call pipelines: a call on the further promise of a call not yet answered', async (t) => {
  const { server, kernel } = await setup(t);
  const code = await kernel.publish("export const order = (ctx) => ctx.issue({ export: 'greet' }); export const greet = (ctx, name) => 'hi ' + name;");
  const order = await kernel.issue({ code, export: 'order' });
  const session = await openSession(new WebSocket(server.url), { identity: generateIdentity(random), random });
  t.teardown(() => session.close());
  type Node = { call(token: unknown, args: unknown[]): Promise<{ status: string; token?: string; value?: unknown }> };
  const node = session.bootstrap() as unknown as Promise<Node>;
  const first = E(node).call(order, []);
  // Sent before `first` is answered: the token is a promise for a field of its answer.
  const second = E(node).call(E.get(first).token, ['Ada']);
  t.deepEqual(await second, { status: 'fulfilled', value: 'hi Ada' });
  t.is((await first).status, 'promised');
});

test('the library API: kernel.listen serves a kernel, kernel.call({ via }) calls through another node', async (t) => {
  const a = await openKernel({ memory: true, limits: { vats: 1, callTimeoutMs: 20_000 } });
  const b = await openKernel({ memory: true, limits: { vats: 1, callTimeoutMs: 20_000 } });
  t.teardown(() => Promise.all([a.close(), b.close()]).then(() => {}));
  const code = await a.publish('export const add = (ctx, x, y) => x + y; export const who = (ctx) => ctx.caller;');
  const add = await a.issue({ code, export: 'add' });
  const who = await a.issue({ code, export: 'who' });
  const url = await a.listen({ host: '127.0.0.1', port: 0 });
  t.regex(url, /^ws:\/\/127\.0\.0\.1:\d+$/);
  t.deepEqual(await b.call(add, [2, 3], { via: url }), { status: 'fulfilled', value: 5 });
  t.deepEqual(await b.call(who, [], { via: url }), { status: 'fulfilled', value: b.principal }, 'A sees B as the caller');
  t.deepEqual(await b.call(add, [2, 3]), { status: 'revoked', code: 'unknown-token', reason: 'unknown token' }, 'without via, B has no such token');
  await a.close();
  await new Promise((resolve) => setTimeout(resolve, 200)); // B's end of the connection hears the close
  t.deepEqual(await b.call(add, [2, 3], { via: url }), { status: 'revoked', code: 'unreachable', reason: 'unreachable' });
});

test('a call whose arguments are not grid data is revoked on the caller side; the session goes on', async (t) => {
  const { server, tokens } = await setup(t);
  const remote = await connectNode(server.url, { identity: generateIdentity(random), random });
  t.teardown(() => remote.close());
  const outcome = await remote.call(tokens.add, [() => 1]);
  t.is(outcome.status, 'revoked');
  t.regex((outcome as { reason: string }).reason, /bad arguments: a function is not grid data/);
  t.deepEqual(await remote.call(tokens.add, [1, 2]), { status: 'fulfilled', value: 3 });
});

test('journal records over the wire: checked on arrival, one request at a time per peer, refusals in one line', async (t) => {
  const { server, tokens, kernel } = await setup(t);
  const client = generateIdentity(random);
  const remote = await connectNode(server.url, { identity: client, random });
  t.teardown(() => remote.close());
  t.deepEqual(await remote.call(tokens.add, [2, 3]), { status: 'fulfilled', value: 5 });
  const verified = await remote.records(tokens.add);
  t.is(verified.node, kernel.principal);
  t.deepEqual(verified.flagged, []);
  t.true(verified.entries.some((e) => e.kind === 'call' && e.caller === client.principal));
  // One at a time per peer: asked at the session's handlers so the second surely lands while the first is read
  // (over loopback the first may be answered before the second frame arrives).
  const handlers = new NodeSessions(kernel).handlers(client.principal);
  const [first, second] = await Promise.allSettled([handlers.records!(tokens.add), handlers.records!(tokens.who)]);
  t.is(first.status, 'fulfilled');
  t.is(second.status, 'rejected');
  t.regex(String((second as PromiseRejectedResult).reason?.message), /a records request of yours is being answered/);
  t.is((await handlers.records!(tokens.who)).token, tokens.who, 'and answered again once the first is done');
  t.deepEqual((await remote.records(tokens.who)).flagged, []);
  // Records of a delegation go to its audience only.
  const delegated = await kernel.delegate({ token: tokens.add, to: [kernel.principal] });
  await t.throwsAsync(remote.records(delegated), { message: /only the audience of delegation/ });
});

test('a cancel crosses the wire and the forward: each node ends the call "cancelled by caller" and frees its vat; only its caller can cancel it', async (t) => {
  // Two-minute limits: a spinner the cancel did not stop would hold each node's one vat past the test's timeout.
  t.timeout(60_000);
  const node = async (peers: string[] = []) => {
    const identity = generateIdentity(random);
    const started = await startNode((forward) => openKernel({ memory: true, identity, forward, limits: { vats: 1, callTimeoutMs: 120_000 } }), { identity, random, peers });
    t.teardown(() => started.close());
    return started;
  };
  const a = await node();
  const code = await a.kernel.publish('export const spin = (ctx, n) => { for (;;) {} }; export const add = (ctx, x, y) => x + y;');
  const spin = await a.kernel.issue({ code, export: 'spin' });
  const add = await a.kernel.issue({ code, export: 'add' });
  const b = await node([a.server.url]);
  const caller = await connectNode(b.server.url, { identity: generateIdentity(random), random });
  const strangerSocket = new WebSocket(a.server.url);
  const stranger = await openSession(strangerSocket, { identity: generateIdentity(random), random });
  t.teardown(() => (caller.close(), stranger.close()));
  const until = async (test: () => boolean | Promise<boolean>) => {
    while (!(await test())) await new Promise((resolve) => setTimeout(resolve, 10));
  };
  const ended = async (kernel: Kernel, n: number) => {
    const call = (await journalEntries(kernel.journal)).filter((e) => e.kind === 'call' && e.token === spin)[n];
    return call && (await journalEntries(kernel.journal)).find((e) => e.kind === 'revoked' && e.call === call.seq);
  };

  const controller = new AbortController();
  const spinning = caller.call(spin, [1], { signal: controller.signal });
  await until(async () => (await journalEntries(a.kernel.journal)).some((e) => e.kind === 'call' && e.token === spin));
  // Another session numbers its own requests: a cancel of id 0 there (the caller's call is B's id 0 on A) reaches nothing else.
  strangerSocket.send(encodeCancel(0));
  // Frames are handled in order: once this is answered (no vat needed), the cancel has been.
  t.deepEqual((await stranger.call(asToken('bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'), [])).outcome, { status: 'revoked', code: 'unknown-token', reason: 'unknown token' });
  t.is(await ended(a.kernel, 0), undefined, "the stranger's cancel did not touch the caller's call");
  controller.abort();
  t.deepEqual(await spinning, { status: 'revoked', code: 'cancelled', reason: 'cancelled by caller' });
  await until(async () => (await ended(a.kernel, 0)) !== undefined && (await ended(b.kernel, 0)) !== undefined);
  t.like(await ended(a.kernel, 0), { code: 'cancelled', reason: 'cancelled by caller', cause: 'node' }, 'the node that ran it journals the cancel');
  t.like(await ended(b.kernel, 0), { reason: 'cancelled by caller' }, 'so does the node that forwarded it');
  t.deepEqual(await caller.call(add, [2, 3]), { status: 'fulfilled', value: 5 }, "A's vat is free again");
});
