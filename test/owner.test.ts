/**
 * The owner API is defined once (kernel/owner.ts) and reached two ways: over
 * a kernel in this process, and over CapTP to the running node (net/owner.ts
 * derives the node's facet and the client's form from one table). Both forms
 * must give the same answers, bytes included, and only the node's own
 * principal may use the remote one.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { openKernel } from '../src/index.js';
import { generateIdentity } from '../src/identity/index.js';
import { serveNode } from '../src/net/node.js';
import { connectNode } from '../src/net/client.js';
import { OWNER_OPERATIONS } from '../src/net/owner.js';
import { ownerOf, type NodeOwner } from '../src/kernel/owner.js';

const random = (n: number) => new Uint8Array(randomBytes(n));

const node = async (t: import('ava').ExecutionContext) => {
  const identity = generateIdentity(random);
  const kernel = await openKernel({ memory: true, identity, limits: { vats: 1 } });
  const server = await serveNode(kernel, { identity, random });
  t.teardown(async () => {
    await server.close();
    await kernel.close();
  });
  return { kernel, identity, url: server.url };
};

test('every owner operation but call crosses the owner facet (call travels as a grid message)', (t) => {
  const operations: ReadonlyArray<Exclude<keyof NodeOwner, 'call'>> = ['publish', 'issue', 'delegate', 'revoke', 'chainBlocks', 'importChain', 'revocationNotice', 'pending', 'createDocument', 'documentConflicts', 'vote', 'followDocument', 'reputation'];
  t.deepEqual([...OWNER_OPERATIONS].sort(), [...operations].sort());
});

test('the owner API gives the same answers here and through the running node, bytes included', async (t) => {
  const { kernel, identity, url } = await node(t);
  const local = ownerOf(kernel);
  const remote = await connectNode(url, { identity, random });
  t.teardown(() => remote.close());
  const bob = generateIdentity(random).principal;

  const source = new TextEncoder().encode('export const add = (ctx, a, b) => a + b;');
  const code = await remote.publish(source);
  t.is(await local.publish(source), code, 'module bytes arrive whole');
  const token = await remote.issue({ code, export: 'add' });
  t.deepEqual(await remote.call(token, [2, 3]), { status: 'fulfilled', value: 5 });
  t.deepEqual(await local.call(token, [2, 3]), { status: 'fulfilled', value: 5 });

  const delegated = await remote.delegate({ token, to: [bob], policies: [{ module: 'rate', settings: { uses: 3 } }] });
  const chain = await remote.chainBlocks(delegated);
  t.truthy(chain);
  t.deepEqual(chain, await local.chainBlocks(delegated), 'chain blocks cross as the same bytes');
  t.true(chain!.links.every((block) => block instanceof Uint8Array));
  t.is(await remote.chainBlocks(token), undefined, 'no chain: undefined either way');

  // Another node takes the chain in through its owner.
  const other = await node(t);
  const toOther = await connectNode(other.url, { identity: other.identity, random });
  t.teardown(() => toOther.close());
  await toOther.importChain(delegated, chain!);
  t.deepEqual(await ownerOf(other.kernel).chainBlocks(delegated), chain);

  t.deepEqual(await remote.pending(), await local.pending());
  t.deepEqual(await remote.reputation(), await local.reputation(), 'the tally the node keeps');
  t.like((await local.reputation()).find((row) => row.issuer === kernel.principal), { issued: 2 });
  t.is(await remote.revocationNotice(token), undefined);
  await remote.revoke(token, 'done with it');
  const notice = await remote.revocationNotice(token);
  t.deepEqual(notice, await local.revocationNotice(token), 'the signed notice crosses with its signature bytes');
  t.true(notice!.signature instanceof Uint8Array);
  t.like(await local.call(token, [2, 3]), { status: 'revoked', reason: 'done with it' });
});

test('documents: created and their conflicts listed the same here and through the running node, the initial value\'s bytes and big integers included', async (t) => {
  const { kernel, identity, url } = await node(t);
  const local = ownerOf(kernel);
  const remote = await connectNode(url, { identity, random });
  t.teardown(() => remote.close());
  const code = await remote.publish(new TextEncoder().encode('export const update = (ctx, state, change) => ({ ...state, ...change });\nexport const never = (ctx) => ctx.revoke("cannot merge");\n'));
  const reducer = await remote.issue({ code, export: 'update', replicable: true });
  const never = await remote.issue({ code, export: 'never', replicable: true });
  const init = { big: 1n << 60n, blob: new Uint8Array([1, 2, 3]) };
  const doc = await remote.createDocument({ reducer, merges: [never], init });
  t.deepEqual(Object.keys(doc).sort(), ['admin', 'doc', 'read', 'settle', 'write']);
  t.like(await local.call(doc.read, []), { status: 'fulfilled', value: { version: doc.doc, value: init } }, 'the initial value arrives whole');
  t.deepEqual(await remote.documentConflicts(), []);
  t.deepEqual(await local.documentConflicts(), []);

  // A replica on another kernel writes through a delegation while the document's node writes too: the cascade cannot merge.
  const other = await openKernel({ memory: true, limits: { vats: 1 } });
  t.teardown(() => other.close());
  for (const closure of await kernel.docs.closuresOf(doc.doc)) await other.adopt(closure as never, await kernel.replica(closure, other.principal));
  await other.docs.ingest(await kernel.docs.bundle(doc.doc, []), kernel.principal);
  const otherWrite = await kernel.delegate({ token: doc.write, to: [other.principal] });
  await other.importChain(otherWrite, (await kernel.chainBlocks(otherWrite))!);
  t.like(await remote.call(doc.write, ['apply', { a: 1 }]), { status: 'fulfilled' });
  t.like(await other.docs.apply(otherWrite, { b: 2 }), { status: 'fulfilled' });
  await kernel.docs.ingest(await other.docs.bundle(doc.doc, kernel.docs.held()[0]!.heads), other.principal);
  const conflicts = await remote.documentConflicts();
  t.is(conflicts.length, 1);
  t.deepEqual(conflicts, await local.documentConflicts());
  t.like(conflicts[0]!, { doc: doc.doc, attempts: [{ step: never, code: 'refused', reason: 'cannot merge' }] });
  t.is(conflicts[0]!.heads.length, 2);
  // Settled, it is no longer listed either way.
  t.like(await remote.call(doc.settle, ['resolve', conflicts[0]!.conflict, { pick: conflicts[0]!.heads[0]! }]), { status: 'fulfilled' });
  t.deepEqual(await remote.documentConflicts(), []);
  t.deepEqual(await local.documentConflicts(), []);
});

test('a governed document: created with its governance and voted on the same here and through the running node', async (t) => {
  const { kernel, identity, url } = await node(t);
  const remote = await connectNode(url, { identity, random });
  t.teardown(() => remote.close());
  const reducer = await kernel.issue({ code: await kernel.publish('export const update = (ctx, state, change) => state + change;'), export: 'update' });
  for (const owner of [ownerOf(kernel), remote]) {
    const doc = await owner.createDocument({ reducer, init: 1, governance: { members: 'self', quorum: { k: 1 }, weighted: false, deadlineMs: 60_000 } });
    // The value is the member list's source: a number lists no one, so the proposal is refused with the reason.
    t.like(await owner.call(doc.write, ['propose', 2]), { status: 'revoked', code: 'invalid' });
    t.like(await owner.call(doc.write, ['apply', 2]), { status: 'revoked', code: 'denied' });
  }
  const members = await kernel.issue({ code: await kernel.publish('export const update = (ctx, state, change) => ({ members: [...state.members, change] });'), export: 'update' });
  const local = ownerOf(kernel);
  for (const owner of [local, remote]) {
    const doc = await owner.createDocument({ reducer: members, init: { members: [kernel.principal] }, governance: { members: 'self', quorum: 'majority', weighted: false, deadlineMs: 60_000 } });
    const proposed = await owner.call(doc.write, ['propose', 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK']);
    t.is(proposed.status, 'promised');
    const carried = await owner.vote((proposed as { token: string }).token, 'yes');
    t.like(carried, { status: 'fulfilled', value: { status: 'passed' } });
    t.deepEqual(((await owner.call(doc.read, [])) as unknown as { value: { value: unknown } }).value.value, { members: [kernel.principal, 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'] });
  }
});

test('anyone but the node\'s own principal is refused every owner operation by name, except pending (their own)', async (t) => {
  const { kernel, url } = await node(t);
  const stranger = await connectNode(url, { identity: generateIdentity(random), random });
  t.teardown(() => stranger.close());
  const code = await kernel.publish('export const one = () => 1;');
  const token = await kernel.issue({ code, export: 'one' });
  const attempts: Record<Exclude<keyof NodeOwner, 'call' | 'pending'>, () => Promise<unknown>> = {
    publish: () => stranger.publish(new Uint8Array([1, 2, 3])),
    issue: () => stranger.issue({ code, export: 'one' }),
    delegate: () => stranger.delegate({ token, to: [stranger.session.peer] }),
    revoke: () => stranger.revoke(token),
    chainBlocks: () => stranger.chainBlocks(token),
    importChain: () => stranger.importChain(token, { links: [], modules: [] }),
    revocationNotice: () => stranger.revocationNotice(token),
    createDocument: () => stranger.createDocument({ reducer: token, init: null }),
    documentConflicts: () => stranger.documentConflicts(),
    vote: () => stranger.vote(token, 'yes'),
    followDocument: () => stranger.followDocument(token),
    reputation: () => stranger.reputation(),
  };
  for (const [method, attempt] of Object.entries(attempts)) {
    await t.throwsAsync(attempt, { message: `${method}: only this node's own principal may ${method} through it` }, method);
  }
  t.deepEqual(await stranger.pending(), []);
  t.false(kernel.isRevoked(token));
});
