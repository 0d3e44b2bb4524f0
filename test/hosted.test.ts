/**
 * A node that cannot be dialled (a browser tab, here a kernel in this
 * process that listens nowhere) joins a node: its closures are called
 * through that node while it is connected, and answer `unreachable` once it
 * is gone. Two such nodes call each other's closures through it.
 */
import '../src/perimeter/lockdown.js';
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { E } from '@endo/far';
import { base64 } from 'multiformats/bases/base64';
import { openKernel, type Kernel } from '../src/index.js';
import { readDoc, source, valueOf } from './_helpers.js';
import { generateIdentity } from '../src/identity/index.js';
import { startNode, type GridNode } from '../src/net/node.js';
import { connectNode } from '../src/net/client.js';
import { joinNode, type JoinedNode } from '../src/net/join.js';
import { MAX_ANNOUNCED } from '../src/net/hosted.js';
import type { Forwarder } from '../src/kernel/kernel.js';

const random = (n: number) => new Uint8Array(randomBytes(n));
// Generous: a call here crosses three kernels, each starting a vat, on a machine that may be busy.

const gridNode = async (t: ExecutionContext): Promise<GridNode> => {
  const identity = generateIdentity(random);
  const node = await startNode((forward) => openKernel({ memory: true, identity, forward, limits: { vats: 1, callTimeoutMs: 60_000 } }), { identity, random });
  t.teardown(() => node.close());
  return node;
};

/** A kernel of its own principal, listening nowhere, joined to `url`. */
const tabNode = async (t: ExecutionContext, url: string): Promise<{ kernel: Kernel; joined: JoinedNode }> => {
  const identity = generateIdentity(random);
  let joined: JoinedNode | undefined;
  const forward: Forwarder = async (request) => joined?.forward(request);
  const kernel = await openKernel({ memory: true, identity, forward, limits: { vats: 1, callTimeoutMs: 60_000 } });
  joined = joinNode(kernel, url, { identity, random });
  t.teardown(async () => {
    joined!.close();
    await kernel.close();
  });
  await joined.connected();
  return { kernel, joined };
};

test('a closure issued where nothing can dial is called through the node it joined; once it is gone, unreachable', async (t) => {
  const node = await gridNode(t);
  const tab = await tabNode(t, node.server.url);
  const code = await tab.kernel.publish('export const greet = (ctx, name) => `hi ${name}, from the tab`;');
  const before = await tab.kernel.issue({ code, export: 'greet' });
  const callerIdentity = generateIdentity(random);
  const caller = await connectNode(node.server.url, { identity: callerIdentity, random });
  t.teardown(() => caller.close());
  t.like(await caller.call(before, ['Ada']), { status: 'revoked', code: 'unknown-token' }, 'issued after connecting and not announced: the node has not heard of it');
  await tab.joined.announce([before]);
  t.deepEqual(await caller.call(before, ['Ada']), { status: 'fulfilled', value: 'hi Ada, from the tab' });

  // Closures issued before a connect are announced by it.
  tab.joined.session()!.close();
  await tab.joined.connected();
  const later = await tab.kernel.issue({ code, export: 'greet' });
  tab.joined.session()!.close();
  const session = await tab.joined.connected();
  const greeted = { status: 'fulfilled', value: 'hi Bo, from the tab' };
  t.deepEqual(await eventuallyEqual<unknown>(() => caller.call(later, ['Bo']), greeted), greeted);

  // Gone: the node knows whose token it is, and says the answer is out of reach, not unknown.
  tab.joined.close();
  await session.closed;
  t.like(await caller.call(before, ['Cy']), { status: 'revoked', code: 'unreachable' });
  t.deepEqual(await caller.call(before, ['Ada']), { status: 'fulfilled', value: 'hi Ada, from the tab' }, 'a pure answer the node cached still stands');
});

test("a peer announces only closures it issued, in bounded batches of well-formed records", async (t) => {
  const node = await gridNode(t);
  const tab = await tabNode(t, node.server.url);
  const code = await tab.kernel.publish('export const f = () => 1;');
  const token = await tab.kernel.issue({ code, export: 'f' });
  const record = base64.baseEncode(await tab.kernel.issuedRecord(token));
  const mallory = await connectNode(node.server.url, { identity: generateIdentity(random), random });
  t.teardown(() => mallory.close());
  type Facet = Promise<{ announce(records: unknown): Promise<number> }>;
  /** What the node answers an announcement: a count, or its refusal's message. */
  const announce = (records: unknown, by = mallory.session) => E(by.bootstrap() as Facet).announce(records).catch((refusal: { message: string }) => refusal.message);
  t.regex(String(await announce([record])), /^closure \w+ was issued by did:key:\w+, not by did:key:\w+$/, "another's closure cannot be diverted");
  const tampered = await tab.kernel.issuedRecord(token);
  tampered[tampered.length - 1]! ^= 1;
  t.regex(String(await announce([base64.baseEncode(tampered)], tab.joined.session())), /is not a valid closure|does not decode/, 'a record changed after signing');
  t.regex(String(await announce(['!not base64'])), /^(an announced closure record is base64 text|CBOR decode error: .*)$/);
  t.is(await announce([42]), 'an announced closure record is base64 text');
  t.is(await announce('not a list'), `announce a list of at most ${MAX_ANNOUNCED} closure records`);
  t.is(await announce(Array.from({ length: MAX_ANNOUNCED + 1 }, () => record)), `announce a list of at most ${MAX_ANNOUNCED} closure records`);
  t.is(await announce([record], tab.joined.session()), 1, 'its issuer may');
  t.like(await mallory.call(token, []), { status: 'fulfilled', value: 1 }, 'the tab still answers its own token');
  await t.throwsAsync(tab.kernel.issuedRecord(await node.kernel.issue({ code: await node.kernel.publish('export const g = () => 2;'), export: 'g' })), { message: /not found|is not|unknown/ });
});

test("two nodes that cannot be dialled call each other's closures through the node they joined", async (t) => {
  const node = await gridNode(t);
  const alice = await tabNode(t, node.server.url);
  const bob = await tabNode(t, node.server.url);
  const aliceAdd = await alice.kernel.issue({ code: await alice.kernel.publish('export const add = (ctx, x, y) => x + y;'), export: 'add' });
  const bobTwice = await bob.kernel.issue({ code: await bob.kernel.publish('export const twice = async (ctx, x) => 2 * (await ctx.call(ctx.env.add, x, x));'), export: 'twice', env: { add: { '/': aliceAdd } } });
  await alice.joined.announce([aliceAdd]);
  await bob.joined.announce([bobTwice]);
  t.deepEqual(await alice.kernel.call(bobTwice, [5]), { status: 'fulfilled', value: 20 }, "alice → node → bob, whose closure calls alice's → node → alice");
});

test('a tab given a role token by URL asks for it by name, replicates the document, changes it while cut off, and the node has the change once it is back', async (t) => {
  const node = await gridNode(t);
  const code = await node.kernel.publish(await source('examples/todo.js'));
  const reducer = await node.kernel.issue({ code, export: 'update', replicable: true });
  const doc = await node.kernel.docs.create({ reducer, merges: ['json'], init: { items: [] } });
  valueOf(await node.kernel.docs.apply(doc.write, { add: 'bread' }));
  const tab = await tabNode(t, node.server.url);
  // The bearer token the URL carried, asked through the node for a delegation naming the tab.
  const replica = valueOf(await tab.kernel.call(doc.write, ['replica'])) as { token: string; chain: { links: Uint8Array[]; modules: Uint8Array[] } };
  t.true(await tab.kernel.importChain(replica.token, replica.chain));
  await tab.kernel.docs.follow(replica.token);
  const items = async (kernel: Kernel, token: string) => ((await readDoc(kernel, token)) as { items: Array<{ text: string }> }).items.map((item) => item.text);
  // Held here: from now on reads and changes are the tab's own, not calls to the node.
  const held = async () => (await tab.kernel.docs.held()).some((h) => h.doc === doc.doc);
  t.true(await eventuallyEqual(held, true), 'the replica arrived');
  t.deepEqual(await eventuallyEqual(() => items(tab.kernel, replica.token), ['bread']), ['bread']);
  // Live: a change at the node reaches the tab by notice.
  valueOf(await node.kernel.docs.apply(doc.write, { add: 'milk' }));
  t.deepEqual(await eventuallyEqual(() => items(tab.kernel, replica.token), ['bread', 'milk']), ['bread', 'milk']);
  // Cut off: the tab still changes its replica, signed as itself through its delegation.
  tab.joined.session()!.close();
  valueOf(await tab.kernel.docs.apply(replica.token, { add: 'eggs' }));
  valueOf(await node.kernel.docs.apply(doc.write, { add: 'jam' }));
  await tab.joined.connected();
  const all = ['bread', 'eggs', 'jam', 'milk'];
  t.deepEqual((await eventuallyEqual(async () => (await items(node.kernel, doc.read)).sort(), all)), all, 'merged at the node');
  t.deepEqual((await eventuallyEqual(async () => (await items(tab.kernel, replica.token)).sort(), all)), all, 'and in the tab');
  t.like(await tab.kernel.call(replica.token, ['replica']), { status: 'revoked', code: 'denied' }, 'a delegation is followed as it is, not delegated again this way');
});

const eventuallyEqual = async <T>(probe: () => Promise<T>, expected: T, ms = 15_000): Promise<T> => {
  const until = Date.now() + ms;
  let last = await probe();
  while (JSON.stringify(last) !== JSON.stringify(expected) && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    last = await probe();
  }
  return last;
};
