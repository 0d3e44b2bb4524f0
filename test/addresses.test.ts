/**
 * Where nodes listen: signed address records (net/addresses.ts), and peers
 * that follow a node which had to come back on another port.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { openKernel } from '../src/index.js';
import { generateIdentity, type Identity } from '../src/identity/index.js';
import { startNode, type GridNode } from '../src/net/node.js';
import { AddressError, dialable, makeAddressBook, signAddress, verifyAddress, type AddressRecord } from '../src/net/addresses.js';
import { eventually, freePort } from './_processes.js';

const random = (n: number) => new Uint8Array(randomBytes(n));

test('an address record is believed only when signed by its principal, newer, and about a kept peer', async (t) => {
  const me = generateIdentity(random);
  const peer = generateIdentity(random);
  const stranger = generateIdentity(random);
  let now = 1_000_000;
  const kept = [{ url: 'ws://127.0.0.1:4001', principal: peer.principal }];
  const moves: Array<[string, string, readonly string[]]> = [];
  let saved: readonly AddressRecord[] = [];
  const book = makeAddressBook({
    identity: me,
    clock: () => now,
    peers: () => kept,
    move: async (principal, url, former) => void moves.push([principal, url, former]),
    save: async (records) => void (saved = records),
  });
  const own = await book.listening('ws://127.0.0.1:4000');
  t.true(verifyAddress(own));
  t.is(book.own(), own);

  const first = await signAddress(peer, 'ws://127.0.0.1:4001', now - 10);
  t.is((await book.hear(first)).heard, 'newer', 'same URL: believed, nothing moves');
  t.deepEqual(moves, []);
  const moved = await signAddress(peer, 'ws://127.0.0.1:4002', now);
  t.is((await book.hear(moved)).heard, 'moved');
  t.deepEqual(moves, [[peer.principal, 'ws://127.0.0.1:4002', ['ws://127.0.0.1:4001']]]);
  t.deepEqual(saved.map((r) => r.url).sort(), ['ws://127.0.0.1:4000', 'ws://127.0.0.1:4002']);
  t.is((await book.hear(first)).heard, 'ignored', 'a replayed older record changes nothing');
  t.is((await book.hear(moved)).heard, 'ignored', 'the same record twice changes nothing');

  t.is((await book.hear(await signAddress(stranger, 'ws://127.0.0.1:4009', now))).heard, 'ignored', "a stranger's record is not kept");
  const forged = { ...(await signAddress(stranger, 'ws://127.0.0.1:4003', now + 1)), principal: peer.principal };
  await t.throwsAsync(book.hear(forged), { instanceOf: AddressError, message: /does not prove/ });
  await t.throwsAsync(book.hear({ principal: peer.principal, url: 'http://x', at: 1, signature: '' }), { instanceOf: AddressError, message: /ws:\/\// });
  await t.throwsAsync(book.hear(await signAddress(peer, 'ws://127.0.0.1:4004', now + 3_600_000)), { instanceOf: AddressError, message: /ahead/ });
  now += 5;
  t.is(moves.length, 1);
  t.is(book.urlOf(peer.principal), 'ws://127.0.0.1:4002');
  t.is(dialable('ws://0.0.0.0:5000', 'ws://10.1.2.3:4000'), 'ws://10.1.2.3:5000', 'a node on every interface says its port; the host is the one it was reached at');
});

const occupy = (port: number) =>
  new Promise<Server>((resolve, reject) => {
    const server = createServer((socket) => socket.destroy()); // a program that holds the port and talks to nobody
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });

const node = async (t: import('ava').ExecutionContext, identity: Identity, options: { peers?: string[]; port?: number; fallbackPort?: boolean } = {}) => {
  const moved: Array<{ former: readonly string[]; url: string }> = [];
  let saved: readonly AddressRecord[] = [];
  const started: GridNode = await startNode((forward) => openKernel({ memory: true, identity, forward, limits: { vats: 1, callTimeoutMs: 20_000 } }), {
    identity,
    random,
    ...options,
    addresses: { known: [], save: async (records) => void (saved = records) },
    moved: async (former, url) => void moved.push({ former, url }),
  });
  t.teardown(() => started.close());
  return { ...started, moved, saved: () => saved };
};

test('a node whose port was taken comes back on another; its peers, and a peer of a peer, follow it', async (t) => {
  t.timeout(60_000);
  const [ia, ib, ic] = [generateIdentity(random), generateIdentity(random), generateIdentity(random)];
  const port = await freePort();
  let a = await node(t, ia, { port });
  const b = await node(t, ib, { peers: [a.server.url] });
  const c = await node(t, ic, { peers: [a.server.url, b.server.url] });
  b.peers.add(c.server.url); // B keeps C as C's join would have it
  a.peers.add(b.server.url); // and A keeps B
  const connected = (n: GridNode, url: string) => n.peers.state().some((p) => p.url === url && p.connected);
  await eventually(async () => connected(b, a.server.url) && connected(c, a.server.url) && connected(b, c.server.url) && connected(a, b.server.url), Boolean, 10_000, 50);
  const oldUrl = a.server.url;

  await a.close();
  const blocker = await occupy(port);
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  await t.throwsAsync(node(t, ia, { port, peers: [b.server.url] }), { code: 'EADDRINUSE' }, 'without the fallback a taken port is an error');
  a = await node(t, ia, { port, fallbackPort: true, peers: [b.server.url] });
  const newUrl = a.server.url;
  t.not(newUrl, oldUrl, `A came back at ${newUrl}`);

  const follows = (n: typeof b) => n.peers.state().some((p) => p.url === newUrl) && !n.peers.state().some((p) => p.url === oldUrl);
  await eventually(async () => follows(b) && follows(c), Boolean, 10_000, 50);
  t.true(follows(b), `B keeps ${JSON.stringify(b.peers.state().map((p) => p.url))}`);
  t.true(follows(c), `C, which A does not know, keeps ${JSON.stringify(c.peers.state().map((p) => p.url))}`);
  t.deepEqual(b.moved, [{ former: [oldUrl], url: newUrl }], 'B remembers the move');
  t.deepEqual(c.moved, [{ former: [oldUrl], url: newUrl }], 'so does C');
  t.true(b.saved().some((r) => r.principal === ia.principal && r.url === newUrl), "B keeps A's signed record");

  // Calls reach A where it is now: only A can answer `who`.
  const code = await a.kernel.publish('export const who = (ctx) => ctx.caller;');
  const who = await a.kernel.issue({ code, export: 'who' });
  const outcome = await c.kernel.call(who, []);
  t.is(outcome.status, 'fulfilled', JSON.stringify(outcome));
});
