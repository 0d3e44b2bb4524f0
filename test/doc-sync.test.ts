/**
 * Documents synced between real nodes over real WebSockets on loopback
 * (startNode, as `grid start` runs them): replicas that were apart catch up
 * by themselves when the link comes back, conflicts reach both sides and so
 * does their settlement, three nodes in a line converge, and hostile peers —
 * one with no token for the document, one offering a malformed or oversized
 * DAG — are refused with their reasons.
 */
import '../src/perimeter/lockdown.js';
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { WebSocketServer } from 'ws';
import { openKernel, type Kernel } from '../src/index.js';
import { generateIdentity, loadIdentity, type Identity } from '../src/identity/index.js';
import { homePaths } from '../src/home/home.js';
import { NodeSessions, startNode, type GridNode } from '../src/net/node.js';
import { NOTICE_QUIET_MS } from '../src/net/doc-sync.js';
import { connectNode } from '../src/net/client.js';
import { acceptSession } from '../src/net/session.js';
import { fulfilled } from '../src/interface/outcome.js';
import { encodeBulkValue, type GridValue } from '../src/closures/values.js';
import { bundleValue, MAX_BUNDLE_BLOCKS } from '../src/docs/sync.js';
import type { Bundle } from '../src/docs/documents.js';
import { readDoc as read, source, tempDir, valueOf } from './_helpers.js';
import { decodeMessage, encodeMessage } from '../src/wire/index.js';
import { decodeDocHeads, decodeDocSync, decodePushed, DOC_HEADS_PROTOCOL, DOC_SYNC_PROTOCOL, encodeDocHeads, encodeDocSync, MAX_HAVES, MAX_PUSH_BYTES } from '../src/net/frames.js';

const random = (n: number) => new Uint8Array(randomBytes(n));

const headsOf = (kernel: Kernel, doc: string) => kernel.docs.held().find((held) => held.doc === doc)?.heads ?? [];

/** Wait until `check` holds (polled), or fail saying what was awaited: convergence has no fixed time. */
const until = async (what: string, check: () => boolean | Promise<boolean>, ms = 20_000) => {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

/** A home on disk (created once) and its identity, so a node can stop and come back as itself. */
const makeHome = async (t: ExecutionContext) => {
  const home = await tempDir(t);
  await (await openKernel({ home, create: true })).close();
  return { home, identity: await loadIdentity(homePaths(home).identity) };
};

const started: GridNode[] = [];
/** Each node's log lines, kept. */
const logged = new Map<GridNode, string[]>();
const nodeOn = async (t: ExecutionContext, where: { home: string; identity: Identity } | Identity, peers: string[] = []) => {
  const identity = 'home' in where ? where.identity : where;
  const lines: string[] = [];
  const say = (_f: unknown, line: string) => {
    lines.push(line);
    if (process.env.SYNC_DEBUG) console.log(identity.principal.slice(-6), line);
  };
  const log = { trace: say, debug: say, info: say, warn: say, error: say, fatal: say } as never;
  const node = await startNode((forward) => openKernel('home' in where ? { home: where.home, forward } : { memory: true, identity, forward }), { identity, random, peers, log });
  t.teardown(() => node.close());
  started.push(node);
  logged.set(node, lines);
  return node;
};

/** A document over an example's `update`, its reducer replicable so replicas can check versions while its issuer is away. */
const createDoc = async (kernel: Kernel, example: string, merges: string[], init: GridValue) => {
  const code = await kernel.publish(await source(`examples/${example}`));
  const reducer = await kernel.issue({ code, export: 'update', replicable: true });
  return kernel.docs.create({ reducer, merges, init });
};

/** `to` may write `doc` through a delegation it holds (the chain handed over as a grid URL would). */
const delegateWrite = async (from: Kernel, to: Kernel, write: string) => {
  const token = await from.delegate({ token: write, to: [to.principal] });
  await to.importChain(token, (await from.chainBlocks(token))!);
  return token;
};

const open = (kernel: Kernel) => kernel.docs.allConflicts().filter((c) => !c.settled).length;

const converged = (kernels: Kernel[], doc: string) => {
  const heads = kernels.map((kernel) => JSON.stringify(headsOf(kernel, doc)));
  return heads.every((h) => h === heads[0]) && headsOf(kernels[0]!, doc).length === 1;
};

test.serial('two nodes edit while the link is down and converge by themselves when it comes back', async (t) => {
  t.timeout(90_000);
  const aliceHome = await makeHome(t);
  const bobHome = await makeHome(t);
  const alice = await nodeOn(t, aliceHome);
  let bob = await nodeOn(t, bobHome, [alice.server.url]);
  const doc = await createDoc(alice.kernel, 'todo.js', ['json'], { items: [] });
  valueOf(await alice.kernel.docs.apply(doc.write, { add: 'bread' }));
  const bobWrite = await delegateWrite(alice.kernel, bob.kernel, doc.write);
  t.deepEqual(await bob.kernel.docs.follow(bobWrite), { token: bobWrite });
  // A role token itself is not followed (it would be shown to every peer asked), nor someone else's delegation.
  await t.throwsAsync(bob.kernel.docs.follow(doc.read), { code: 'ERR_NOT_DELEGATED', message: /is not a delegation this node holds/ });
  const notBobs = await alice.kernel.delegate({ token: doc.read, to: [alice.kernel.principal] });
  await bob.kernel.importChain(notBobs, (await alice.kernel.chainBlocks(notBobs))!).catch(() => undefined);
  await t.throwsAsync(bob.kernel.docs.follow(notBobs), { message: /not a delegation this node holds|not for this node/ });
  await until('Bob to hold the document', () => converged([alice.kernel, bob.kernel], doc.doc));
  t.deepEqual(await read(bob.kernel, bobWrite), { items: [{ text: 'bread', done: false }] });
  t.deepEqual(bob.kernel.docs.following(), [{ token: bobWrite, doc: doc.doc }]);

  // The link dies: Bob's node stops. Both edit apart; Bob's edit is made offline, on his home alone.
  await bob.close();
  valueOf(await alice.kernel.docs.apply(doc.write, { add: 'milk' }));
  const offline = await openKernel({ home: bobHome.home });
  valueOf(await offline.docs.apply(bobWrite, { add: 'eggs' }));
  await offline.close();
  t.notDeepEqual(headsOf(alice.kernel, doc.doc), headsOf(offline, doc.doc));

  // Bob's node comes back: no one asks, and both sides end on one head and one value.
  bob = await nodeOn(t, bobHome, [alice.server.url]);
  t.deepEqual(bob.kernel.docs.following(), [{ token: bobWrite, doc: doc.doc }], 'the token followed survives the restart (journal doc-token)');
  await until('both sides to converge', () => converged([alice.kernel, bob.kernel], doc.doc));
  const value = await read(alice.kernel, doc.read);
  t.deepEqual(await read(bob.kernel, bobWrite), value);
  t.deepEqual(
    (value as { items: Array<{ text: string }> }).items.map((item) => item.text).sort(),
    ['bread', 'eggs', 'milk'],
  );
  // While connected, a change reaches the other side through a notice.
  valueOf(await bob.kernel.docs.apply(bobWrite, { done: 'milk' }));
  await until('Alice to see Bob’s change', () => converged([alice.kernel, bob.kernel], doc.doc) && headsOf(alice.kernel, doc.doc)[0] === headsOf(bob.kernel, doc.doc)[0]);
  await until('the value to follow', async () => JSON.stringify(await read(alice.kernel, doc.read)) === JSON.stringify(await read(bob.kernel, bobWrite))).catch(async (e) => {
    console.log(JSON.stringify(await read(alice.kernel, doc.read)), JSON.stringify(await read(bob.kernel, bobWrite)), headsOf(alice.kernel, doc.doc), headsOf(bob.kernel, doc.doc));
    throw e;
  });
  t.regex(JSON.stringify(await read(alice.kernel, doc.read)), /"done":true,"text":"milk"/);
});

test.serial('a conflict no merge settles reaches both sides; the settlement made on one reaches the other', async (t) => {
  t.timeout(90_000);
  const aliceHome = await makeHome(t);
  const bobHome = await makeHome(t);
  const alice = await nodeOn(t, aliceHome);
  let bob = await nodeOn(t, bobHome, [alice.server.url]);
  const doc = await createDoc(alice.kernel, 'budget.js', ['json'], { total: 100, lines: {} });
  const bobWrite = await delegateWrite(alice.kernel, bob.kernel, doc.write);
  await bob.kernel.docs.follow(bobWrite);
  await until('Bob to hold the document', () => converged([alice.kernel, bob.kernel], doc.doc));

  await bob.close();
  valueOf(await alice.kernel.docs.apply(doc.write, { set: 120 }));
  const offline = await openKernel({ home: bobHome.home });
  valueOf(await offline.docs.apply(bobWrite, { set: 90 }));
  await offline.close();
  bob = await nodeOn(t, bobHome, [alice.server.url]);

  await until('the conflict on both sides', () => open(alice.kernel) > 0 && open(bob.kernel) > 0);
  const [conflict] = alice.kernel.docs.allConflicts();
  t.deepEqual(bob.kernel.docs.allConflicts().map((c) => c.conflict), [conflict!.conflict], 'the same conflict token on both sides');
  t.regex(conflict!.attempts[0]!.reason, /\/total/);
  t.deepEqual([...headsOf(alice.kernel, doc.doc)].sort(), [...headsOf(bob.kernel, doc.doc)].sort());
  t.is(headsOf(bob.kernel, doc.doc).length, 2);
  // A writer cannot go on while the conflict is open, on either side.
  t.is(((await bob.kernel.docs.apply(bobWrite, { set: 1 })) as { code: string }).code, 'conflict');

  // Alice settles it (she holds the settle token); Bob's node gets the settlement while connected.
  const settled = valueOf(await alice.kernel.docs.resolve(doc.settle, conflict!.conflict, { pick: conflict!.heads[1]! })) as { version: string; value: GridValue };
  await until('the settlement on Bob’s side', () => open(bob.kernel) === 0 && headsOf(bob.kernel, doc.doc)[0] === settled.version);
  t.deepEqual(headsOf(bob.kernel, doc.doc), [settled.version]);
  t.deepEqual(await read(bob.kernel, bobWrite), settled.value);
  t.is(bob.kernel.docs.allConflicts()[0]!.settled, settled.version);
});

test.serial('three nodes in a line converge: A–B–C, edits at both ends', async (t) => {
  t.timeout(90_000);
  const [ia, ib, ic] = [generateIdentity(random), generateIdentity(random), generateIdentity(random)];
  const a = await nodeOn(t, ia);
  const b = await nodeOn(t, ib, [a.server.url]);
  const doc = await createDoc(a.kernel, 'todo.js', ['json'], { items: [] });
  const bWrite = await delegateWrite(a.kernel, b.kernel, doc.write);
  // C reaches only B; it follows before B holds the document, and gets it once B does.
  const c = await nodeOn(t, ic, [b.server.url]);
  const cWrite = await delegateWrite(a.kernel, c.kernel, doc.write);
  await c.kernel.docs.follow(cWrite);
  await b.kernel.docs.follow(bWrite);
  await until('all three to hold the document', () => converged([a.kernel, b.kernel, c.kernel], doc.doc), 30_000);
  valueOf(await a.kernel.docs.apply(doc.write, { add: 'from A' }));
  valueOf(await c.kernel.docs.apply(cWrite, { add: 'from C' }));
  await until(
    'one head everywhere, with both edits',
    () => converged([a.kernel, b.kernel, c.kernel], doc.doc) && a.kernel.docs.held()[0]!.heads[0] !== undefined && headsOf(a.kernel, doc.doc)[0] !== headsOf(a.kernel, doc.doc)[1],
    30_000,
  ).catch((e) => {
    console.log([a, b, c].map((n) => headsOf(n.kernel, doc.doc)), [a, b, c].map((n) => n.kernel.docs.allConflicts().length));
    throw e;
  });
  await until('both edits in every value', async () => {
    const values = await Promise.all([read(a.kernel, doc.read), read(b.kernel, bWrite), read(c.kernel, cWrite)]);
    return values.every((value) => JSON.stringify(value) === JSON.stringify(values[0]) && (value as { items: unknown[] }).items.length === 2);
  });
  t.true(converged([a.kernel, b.kernel, c.kernel], doc.doc));

  // B writes once, then A revokes B's write: the revocation reaches B and, through B, C (which holds B's delegation from B's version).
  valueOf(await b.kernel.docs.apply(bWrite, { add: 'from B' }));
  await until('B’s version everywhere', () => converged([a.kernel, b.kernel, c.kernel], doc.doc) && headsOf(c.kernel, doc.doc)[0] === headsOf(b.kernel, doc.doc)[0]);
  await a.kernel.revoke(bWrite);
  await until('the revocation on B and C', () => b.kernel.isRevoked(bWrite as never) && c.kernel.isRevoked(bWrite as never));
  // A sync answer carries it too, for a peer that was away when it was pushed.
  const answer = valueOf(await a.kernel.syncBundle({ doc: doc.doc, haves: [] }, a.kernel.principal)) as { revocations?: Array<{ token: string }> };
  t.deepEqual(answer.revocations?.map((notice) => notice.token), [bWrite]);
  const refused = await b.kernel.docs.apply(bWrite, { add: 'too late' });
  t.is(refused.status, 'revoked');
  t.regex((refused as { reason: string }).reason, /revoked/);
});

test.serial('a peer without a token for the document, or with someone else’s, another document’s or a revoked one, is refused with a reason', async (t) => {
  const alice = await nodeOn(t, generateIdentity(random));
  const doc = await createDoc(alice.kernel, 'todo.js', ['json'], { items: [] });
  const bob = generateIdentity(random);
  const bobWrite = await alice.kernel.delegate({ token: doc.write, to: [bob.principal] });
  const im = generateIdentity(random);
  const mallory = await connectNode(alice.server.url, { identity: im, random });
  t.teardown(() => mallory.close());
  const ask = async (request: Parameters<typeof mallory.session.docSync>[0]) => {
    const outcome = await mallory.session.docSync(request, 5000);
    return outcome.status === 'revoked' ? { code: outcome.code, reason: outcome.reason } : { code: 'none', reason: JSON.stringify(outcome).slice(0, 200) };
  };
  const noToken = await ask({ doc: doc.doc, haves: [] });
  t.is(noToken.code, 'denied');
  t.regex(noToken.reason, /only the document's issuer syncs without a token/);
  const someoneElses = await ask({ token: bobWrite, haves: [] });
  t.is(someoneElses.code, 'denied');
  t.regex(someoneElses.reason, new RegExp(`was made for ${bob.principal}, not for ${im.principal}`));
  const [reducer] = await alice.kernel.docs.closuresOf(doc.doc);
  const notADocument = await ask({ token: reducer as never, haves: [] });
  t.is(notADocument.code, 'unknown-token');
  t.regex(notADocument.reason, /holds no document that .* reaches/);
  const other = await createDoc(alice.kernel, 'todo.js', ['json'], { items: [] });
  const otherDocument = await ask({ token: other.read as never, doc: doc.doc, haves: [] });
  t.is(otherDocument.code, 'denied');
  t.regex(otherDocument.reason, /reaches document .*, not /);
  // A delegation made for Mallory is served (its chain held by Alice, who made it); once revoked, refused.
  const malloryRead = await alice.kernel.delegate({ token: doc.read, to: [im.principal] });
  const served = await mallory.session.docSync({ token: malloryRead, haves: [] }, 5000);
  t.is(served.status, 'fulfilled');
  t.is((valueOf(served) as { doc: string }).doc, doc.doc);
  // A peer's requests are answered one at a time, a few more wait; past that, refused at once.
  const burst = await Promise.all(Array.from({ length: 24 }, () => mallory.session.docSync({ token: malloryRead, haves: [] }, 10_000)));
  const quota = burst.filter((outcome) => outcome.status === 'revoked' && outcome.code === 'quota');
  t.true(quota.length > 0 && burst.some((outcome) => outcome.status === 'fulfilled'));
  t.regex((quota[0] as { reason: string }).reason, /too many sync requests in flight \(limit 9 per peer\)/);
  await alice.kernel.revoke(malloryRead);
  const revokedOne = await ask({ token: malloryRead, haves: [] });
  t.is(revokedOne.code, 'token-revoked');
  t.regex(revokedOne.reason, /revoked/);
  // A delegation past its expiry serves no sync either.
  const lapsed = await alice.kernel.delegate({ token: doc.read, to: [im.principal], policies: [{ module: 'expiry', settings: { until: Date.now() - 1000 } }] });
  const expired = await ask({ token: lapsed, haves: [] });
  t.is(expired.code, 'screened');
  t.regex(expired.reason, /expired at/);
  // A chain that does not hold up: a record that is not a delegation.
  const badChain = await ask({ token: malloryRead, haves: [], chain: { links: [new Uint8Array([1, 2, 3])], modules: [] } });
  t.is(badChain.code, 'invalid');
  t.regex(badChain.reason, /does not hold/);
});

test.serial('a hostile peer offering another document, a cycle, a missing parent, too many blocks or endless `more` is bounded and refused', async (t) => {
  const alice = await openKernel({ memory: true });
  t.teardown(() => alice.close());
  const doc = await createDoc(alice, 'todo.js', ['json'], { items: [] });
  const other = await createDoc(alice, 'todo.js', ['json'], { items: [] });
  valueOf(await alice.docs.apply(doc.write, { add: 'a' }));
  valueOf(await alice.docs.apply(doc.write, { add: 'b' }));
  const bobId = generateIdentity(random);
  const bob = await openKernel({ memory: true, identity: bobId });
  t.teardown(() => bob.close());
  const bobWrite = await delegateWrite(alice, bob, doc.write);
  await bob.docs.follow(bobWrite);
  const honest = await alice.docs.bundle(doc.doc, []);
  const { readVersion } = await import('../src/docs/records.js');
  const { CID } = await import('multiformats/cid');
  const versionKeys = honest.blocks.flatMap(([key, bytes]) => {
    try {
      readVersion(CID.parse(key), bytes);
      return [key];
    } catch {
      return [];
    }
  });
  if (versionKeys.length !== 2) console.log(JSON.stringify(honest.blocks.map(([k, b]) => [k, versionKeys.includes(k), new TextDecoder().decode(b).slice(0, 80)])));
  t.is(versionKeys.length, 2);
  const [v1, v2] = versionKeys as [string, string];

  // The hostile peer answers whatever `offer` says, and hands out the document's closures.
  let offer: () => Bundle = () => honest;
  let asked = 0;
  const hostile = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  t.teardown(() => new Promise<void>((resolve) => hostile.close(() => resolve())));
  await new Promise((resolve) => hostile.once('listening', resolve));
  const mallory = generateIdentity(random);
  hostile.on('connection', (socket) => {
    socket.on('error', () => {});
    acceptSession(socket, {
      identity: mallory,
      random,
      offer: () => ({
        handlers: {
          docSync: async () => {
            asked += 1;
            return fulfilled(bundleValue(offer()));
          },
          fetch: (token) => alice.replica(token, bobId.principal),
        },
      }),
    }).catch(() => {});
  });
  const bobLines: string[] = [];
  const keep = (_fields: unknown, line: string) => void bobLines.push(line);
  const sessions = new NodeSessions(bob, { trace: keep, debug: keep, info: keep, warn: keep, error: keep, fatal: keep } as never);
  t.teardown(() => sessions.close());
  const remote = await connectNode(`ws://127.0.0.1:${(hostile.address() as { port: number }).port}`, { identity: bobId, random, offer: (peer) => sessions.offer(peer) });
  t.teardown(() => remote.close());
  const pull = (target: { doc?: string }) => sessions.docSync.pullOnce(remote.session, { token: bobWrite, ...target });

  // Another document than the token reaches: refused before anything is fetched or stored.
  offer = () => ({ ...honest, doc: other.doc, blocks: [[other.doc, honest.blocks[0]![1]]] as never });
  const wrongGenesis = await pull({});
  t.is(wrongGenesis.code, 'malformed');
  t.regex(wrongGenesis.reason!, /genesis does not hash/);
  offer = () => ({ doc: other.doc, blocks: [], more: false });
  t.regex((await pull({})).reason!, /lacks document .* genesis/);
  t.deepEqual(bob.docs.held(), []);

  // A cycle: v2's bytes (whose parent is v1) offered as v1 itself, and v1's as v2. Hash links cannot close a cycle, so the bundle is refused for it.
  offer = () => ({ ...honest, blocks: honest.blocks.map(([key, bytes]) => [key, key === v1 ? honest.blocks.find(([k]) => k === v2)![1] : key === v2 ? honest.blocks.find(([k]) => k === v1)![1] : bytes] as const) });
  const cycle = await pull({});
  t.is(cycle.code, 'malformed');
  t.regex(cycle.reason!, /does not hash to its CID/);

  // Too many blocks for one answer: refused whole, before any is decoded.
  offer = () => ({ ...honest, blocks: [...honest.blocks, ...Array.from({ length: MAX_BUNDLE_BLOCKS }, (_, i) => [`filler${i}`, new Uint8Array(1)] as const)] });
  const huge = await pull({});
  t.is(huge.code, 'malformed');
  t.regex(huge.reason!, new RegExp(`more than the ${MAX_BUNDLE_BLOCKS} one answer may`));
  t.deepEqual(bob.docs.held(), []);

  // Tips that are not CIDs (the haves a pull would ask with next): refused whole.
  offer = () => ({ ...honest, more: true, tips: ['not a cid'] });
  const badTips = await pull({});
  t.is(badTips.code, 'malformed');
  t.regex(badTips.reason!, /a bundle's tip "not a cid" is not a CID/);
  t.deepEqual(bob.docs.held(), []);

  // A missing parent: v2 without v1. The document is taken (its genesis checks out), v2 is refused with the reason.
  offer = () => ({ ...honest, blocks: honest.blocks.filter(([key]) => key !== v1) });
  const orphan = await pull({});
  t.is(orphan.code, undefined);
  t.is(orphan.accepted, 0);
  t.deepEqual(orphan.refused.map((r) => r.version), [v2]);
  t.regex(orphan.refused[0]!.reason, new RegExp(`its parent ${v1} is missing`));
  t.deepEqual(headsOf(bob, doc.doc), [doc.doc]);

  // Endless `more`: the pull stops at the first answer that brings nothing new.
  offer = () => ({ ...honest, more: true });
  asked = 0;
  const endless = await pull({ doc: doc.doc });
  t.is(endless.accepted, 2, 'accepted');
  t.is(endless.rounds, 2, 'rounds');
  t.is(asked, 2, 'asked');
  t.deepEqual(headsOf(bob, doc.doc), headsOf(alice, doc.doc));
  // A flood of notices naming heads Bob lacks: pulls are coalesced (one running, one more queued), and after a pull that brought nothing the next waits.
  asked = 0;
  offer = () => ({ ...honest, more: false });
  const unknownHead = other.doc;
  for (let i = 0; i < 200; i++) void sessions.docSync.heard(doc.doc, [unknownHead], remote.session);
  await until('the pulls the flood set off to end', async () => {
    await new Promise((resolve) => setTimeout(resolve, 50));
    return asked > 0;
  });
  t.true(asked <= 2, `${asked} requests for 200 notices`);
  // A flood of notices pushing junk (another document's bundle): the first is refused, and the rest find this peer's pushes quieted.
  await new Promise((resolve) => setTimeout(resolve, NOTICE_QUIET_MS));
  const junk = encodeBulkValue(bundleValue({ doc: other.doc, blocks: [], more: false }));
  const refusedBefore = bobLines.filter((line) => line.includes('pushed by')).length;
  await Promise.all(Array.from({ length: 200 }, () => sessions.docSync.heard(doc.doc, [unknownHead], remote.session, junk)));
  const pushRefusals = bobLines.filter((line) => line.includes('pushed by')).slice(refusedBefore);
  t.is(pushRefusals.length, 1, pushRefusals.join('\n'));
  t.regex(pushRefusals[0]!, /is of document .*, not of .* as asked/);
  t.deepEqual(headsOf(bob, doc.doc), headsOf(alice, doc.doc));
  // A bundle of another document than asked for.
  offer = () => ({ doc: other.doc, blocks: [], more: false });
  t.regex((await pull({ doc: doc.doc })).reason!, /is of document .*, not of .* as asked/);

  // The serving side bounds its answers too: versions and bytes.
  t.like(await alice.docs.bundle(doc.doc, [], 1), { more: true });
  const byBytes = await alice.docs.bundle(doc.doc, [], 2000, 1);
  t.true(byBytes.more);
  t.is(byBytes.blocks.length, honest.blocks.length - 3, 'one version (with its value and change) and no more');
});

test.serial('an edit reaches a live replica inside its notice: the versions pushed and taken with no request; a reader revoked since is pushed nothing', async (t) => {
  t.timeout(90_000);
  const a = await nodeOn(t, generateIdentity(random));
  const b = await nodeOn(t, generateIdentity(random), [a.server.url]);
  const doc = await createDoc(a.kernel, 'todo.js', ['json'], { items: [] });
  const bRead = await a.kernel.delegate({ token: doc.read, to: [b.kernel.principal] });
  await b.kernel.importChain(bRead, (await a.kernel.chainBlocks(bRead))!);
  await b.kernel.docs.follow(bRead);
  await until('B to hold the document', () => converged([a.kernel, b.kernel], doc.doc));
  // A first edit, then a pause: whatever pulls following set off (one more after notices that came meanwhile) are over.
  valueOf(await a.kernel.docs.apply(doc.write, { add: 'bread' }));
  await until('B to take the first edit', () => headsOf(b.kernel, doc.doc)[0] === headsOf(a.kernel, doc.doc)[0]);
  await new Promise((resolve) => setTimeout(resolve, 2 * NOTICE_QUIET_MS));
  const bLines = logged.get(b)!;
  const since = bLines.length;
  const linesSince = () => bLines.slice(since);
  for (const item of ['milk', 'eggs', 'butter']) {
    valueOf(await a.kernel.docs.apply(doc.write, { add: item }));
    await until(`B to take ${item}`, () => headsOf(b.kernel, doc.doc)[0] === headsOf(a.kernel, doc.doc)[0]);
  }
  t.deepEqual(await read(b.kernel, bRead), await read(a.kernel, doc.read));
  t.is(linesSince().filter((line) => line.startsWith(`took 1 pushed versions of ${doc.doc} from ${a.kernel.principal}`)).length, 3, linesSince().join('\n'));
  t.false(linesSince().some((line) => /^took \d+ versions of/.test(line)), 'no pull was needed');
  // Revoked: Alice's notice carries no versions, and B's pull on hearing it is refused.
  await a.kernel.revoke(bRead);
  const revokedAt = bLines.length;
  valueOf(await a.kernel.docs.apply(doc.write, { add: 'secret' }));
  await until('B to be refused', () => bLines.slice(revokedAt).some((line) => line.includes('refused (token-revoked)')));
  t.false(bLines.slice(revokedAt).some((line) => line.includes('pushed versions')), bLines.slice(revokedAt).join('\n'));
  t.notDeepEqual(headsOf(b.kernel, doc.doc), headsOf(a.kernel, doc.doc));
});

test('doc-sync and doc-heads frames round-trip; malformed ones are refused', (t) => {
  const token = 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku' as never;
  const request = { token, doc: 'bafyreia5uy476e4jimbp7e6byfwwejwg7hde2nvjpcb65cx4i2r4sfyl3a', haves: ['bafyreia5uy476e4jimbp7e6byfwwejwg7hde2nvjpcb65cx4i2r4sfyl3a'] };
  t.deepEqual(decodeDocSync(decodeMessage(encodeDocSync(7, request))), { id: 7, request });
  t.deepEqual(decodeDocSync(decodeMessage(encodeDocSync(1, { doc: request.doc, haves: [] }))), { id: 1, request: { doc: request.doc, haves: [] } });
  t.deepEqual(decodeDocHeads(decodeMessage(encodeDocHeads(request.doc, request.haves))), { doc: request.doc, heads: request.haves });
  const pushed = Uint8Array.of(0xa0);
  t.deepEqual(decodeDocHeads(decodeMessage(encodeDocHeads(request.doc, request.haves, pushed))), { doc: request.doc, heads: request.haves, pushed });
  t.deepEqual(decodeDocHeads(decodeMessage(encodeMessage(DOC_HEADS_PROTOCOL, request.doc, request.haves))), { doc: request.doc, heads: request.haves }, 'a notice from before pushes is still read');
  t.throws(() => decodeDocHeads(decodeMessage(encodeMessage(DOC_HEADS_PROTOCOL, request.doc, request.haves, new Uint8Array(MAX_PUSH_BYTES + 1)))), { message: new RegExp(`at most ${MAX_PUSH_BYTES} bytes`) });
  t.throws(() => decodeDocHeads(decodeMessage(encodeMessage(DOC_HEADS_PROTOCOL, request.doc, request.haves, 'bytes?'))), { message: /pushes null or at most/ });
  t.throws(() => decodePushed(encodeBulkValue(Array.from({ length: 5_000 }, () => 0))), { message: /more than \d+ items/ });
  t.throws(() => decodeDocSync(decodeMessage(encodeMessage(DOC_SYNC_PROTOCOL, 1, null, null, [], null))), { message: /names a token, a document or both/ });
  t.throws(() => decodeDocSync(decodeMessage(encodeMessage(DOC_SYNC_PROTOCOL, 1, token, null, Array.from({ length: MAX_HAVES + 1 }, () => request.doc), null))), { message: new RegExp(`at most ${MAX_HAVES}`) });
  t.throws(() => decodeDocSync(decodeMessage(encodeMessage(DOC_SYNC_PROTOCOL, 1, token, null, [7], null))), { message: /CID string/ });
  t.throws(() => decodeDocHeads(decodeMessage(encodeMessage(DOC_HEADS_PROTOCOL, request.doc, 'not a list'))), { message: /list of at most/ });
});

test.serial('a rules change syncs: the follower fetches the new reducer from its peer and replays every version under the rules of its ancestry', async (t) => {
  t.timeout(90_000);
  // Alice's node dials Bob's, which knows hers only by the session she opens, once Bob follows her document.
  const bob = await nodeOn(t, generateIdentity(random));
  const aliceHome = await makeHome(t);
  const issuing = await openKernel({ home: aliceHome.home });
  const doc = await createDoc(issuing, 'todo.js', ['json'], { items: [] });
  valueOf(await issuing.docs.apply(doc.write, { add: 'bread' }));
  const bobWrite = await delegateWrite(issuing, bob.kernel, doc.write);
  await issuing.close();
  await bob.kernel.docs.follow(bobWrite);
  const alice = await nodeOn(t, aliceHome, [bob.server.url]);
  await until('Bob to hold the document', () => converged([alice.kernel, bob.kernel], doc.doc));
  const shout = await alice.kernel.issue({
    code: await alice.kernel.publish('export const update = (ctx, state, change) => ({ items: [...state.items, { text: change.add.toUpperCase(), done: false }] });'),
    export: 'update',
    replicable: true,
  });
  const proposal = ((await alice.kernel.docs.rules(doc.admin, { reducer: shout })) as { token: string }).token;
  t.like(valueOf(await alice.kernel.docs.vote(proposal, 'yes')), { status: 'passed' });
  valueOf(await alice.kernel.docs.apply(doc.write, { add: 'milk' }));
  await until('Bob to take the rules change and the change after it', () => converged([alice.kernel, bob.kernel], doc.doc) && headsOf(alice.kernel, doc.doc)[0] === headsOf(bob.kernel, doc.doc)[0]);
  t.deepEqual(await read(bob.kernel, bobWrite), { items: [{ text: 'bread', done: false }, { text: 'MILK', done: false }] });
  // Bob's node holds the new reducer itself: with Alice's node gone, his own next change runs it.
  await alice.close();
  t.deepEqual(((valueOf(await bob.kernel.docs.apply(bobWrite, { add: 'eggs' })) as { value: { items: Array<{ text: string }> } }).value.items.map((item) => item.text)), ['bread', 'MILK', 'EGGS']);
});
