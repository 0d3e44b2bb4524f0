/**
 * Documents in real kernels: changes through the reducer (in a vat),
 * versions that survive a reopen, replicas that take each other's versions
 * only when they follow from their parents and come from someone who may
 * write, merges by the cascade, conflicts settled by a person.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { CID } from 'multiformats/cid';
import { openKernel, type Kernel } from '../src/index.js';
import { DAG_CBOR_CODEC } from '../src/interface/ids.js';
import { encodeValue, type GridValue } from '../src/closures/values.js';
import { generateIdentity, type Identity } from '../src/identity/identity.js';
import { randomBytes } from 'node:crypto';
import { makeAuthoredVersion, readVersion, rulesProposalToken, type AuthoredVersion, type Version } from '../src/docs/records.js';
import { blockCid } from '../src/store/hashing.js';
import { decode, encode } from '../src/wire/index.js';
import { signVote } from '../src/docs/governance.js';
import { readDoc as read, source, tempDir, valueOf, journalEntries } from './_helpers.js';
import { entriesAround, renderText } from '../src/journal/graph.js';
import type { Token } from '../src/interface/ids.js';



/** A document over an example's `update`, its reducer replicable so replicas can check versions while its issuer is away. */
const createDoc = async (kernel: Kernel, example: string, merges: string[], init: GridValue) => {
  const code = await kernel.publish(await source(`examples/${example}`));
  const reducer = await kernel.issue({ code, export: 'update', replicable: true });
  return { reducer, ...(await kernel.docs.create({ reducer, merges, init })) };
};

/** Give `to` what `from` holds of a document, and the replicable closures its versions need. */
const sync = async (from: Kernel, to: Kernel, doc: string) => {
  const haves = to.docs.held().find((held) => held.doc === doc)?.heads ?? [];
  return to.docs.ingest(await from.docs.bundle(doc, haves), from.principal);
};
const adopt = async (from: Kernel, to: Kernel, tokens: readonly string[]) => {
  for (const token of tokens) await to.adopt(token as never, await from.replica(token, to.principal));
};

test('a change goes through the reducer; reads, log and history survive a reopen', async (t) => {
  const home = await tempDir(t);
  const kernel = await openKernel({ home, create: true });
  const doc = await createDoc(kernel, 'todo.js', ['json'], { items: [] });
  t.deepEqual(await read(kernel, doc.read), { items: [] });
  const first = valueOf(await kernel.docs.apply(doc.write, { add: 'buy milk' })) as { version: string; value: GridValue };
  t.deepEqual(first.value, { items: [{ text: 'buy milk', done: false }] });
  await kernel.docs.apply(doc.write, { done: 'buy milk' });
  // A change the reducer refuses leaves the document as it was.
  const refused = await kernel.docs.apply(doc.write, { frobnicate: 1 });
  t.is(refused.status, 'revoked');
  t.is((refused as { code: string }).code, 'refused');
  // A read token cannot write.
  const denied = await kernel.docs.apply(doc.read, { add: 'x' });
  t.is((denied as { code: string }).code, 'denied');
  t.deepEqual(await read(kernel, doc.read), { items: [{ text: 'buy milk', done: true }] });
  t.deepEqual(valueOf(await kernel.docs.read(doc.read, first.version)), { version: first.version, value: first.value });
  const log = valueOf(await kernel.docs.log(doc.read)) as Array<{ by: string; change: GridValue }>;
  t.deepEqual(
    log.map((entry) => entry.change),
    [{ done: 'buy milk' }, { add: 'buy milk' }],
  );
  // A peer's change is made and signed by this node, which names who asked for it.
  const peer = generateIdentity((n) => new Uint8Array(randomBytes(n))).principal;
  valueOf(await kernel.call(doc.write, ['apply', { remove: 'buy milk' }], { caller: peer }));
  t.like((valueOf(await kernel.docs.log(doc.read, { limit: 1 })) as unknown[])[0], { by: 'change', author: kernel.principal, for: peer });
  valueOf(await kernel.docs.apply(doc.write, { add: 'buy milk' }));
  valueOf(await kernel.docs.apply(doc.write, { done: 'buy milk' }));
  await kernel.close();
  const reopened = await openKernel({ home });
  t.deepEqual(await read(reopened, doc.read), { items: [{ text: 'buy milk', done: true }] });
  t.deepEqual(valueOf(await reopened.docs.apply(doc.write, { add: 'eggs' })), {
    version: (valueOf(await reopened.docs.read(doc.read)) as { version: string }).version,
    value: { items: [{ text: 'buy milk', done: true }, { text: 'eggs', done: false }] },
  });
  await reopened.close();
});

/** Alice's document, Bob's replica holding a write delegation: both write while apart. */
const twoReplicas = async (t: { teardown(fn: () => Promise<void>): void }, example: string, merges: string[], init: GridValue) => {
  const alice = await openKernel({ memory: true });
  const bobIdentity = generateIdentity((n) => new Uint8Array(randomBytes(n)));
  const bob = await openKernel({ memory: true, identity: bobIdentity });
  t.teardown(async () => {
    await alice.close();
    await bob.close();
  });
  const doc = await createDoc(alice, example, merges, init);
  await adopt(alice, bob, await alice.docs.closuresOf(doc.doc));
  await bob.docs.ingest(await alice.docs.bundle(doc.doc, []), alice.principal);
  const bobWrite = await alice.delegate({ token: doc.write, to: [bob.principal] });
  await bob.importChain(bobWrite, (await alice.chainBlocks(bobWrite))!);
  return { alice, bob, doc, bobWrite, bobIdentity };
};

test('two replicas edit apart and converge through the json merge', async (t) => {
  const { alice, bob, doc, bobWrite } = await twoReplicas(t, 'todo.js', ['json'], { items: [] });
  valueOf(await alice.docs.apply(doc.write, { add: 'milk' }));
  valueOf(await bob.docs.apply(bobWrite, { add: 'eggs' }));
  t.like(await sync(bob, alice, doc.doc), { accepted: 1, refused: [] });
  t.like(await sync(alice, bob, doc.doc), { refused: [] });
  const aliceHeads = alice.docs.held()[0]!;
  const bobHeads = bob.docs.held()[0]!;
  t.deepEqual(aliceHeads.heads, bobHeads.heads);
  t.is(aliceHeads.heads.length, 1);
  const merged = await read(alice, doc.read);
  t.deepEqual(await read(bob, bobWrite), merged);
  t.is((merged as { items: unknown[] }).items.length, 2);
});

test('a branched history sent in small bundles (each naming the tips it ends at, as sync asks) arrives parents first, every version once', async (t) => {
  const { alice, bob, doc, bobWrite } = await twoReplicas(t, 'todo.js', ['json'], { items: [] });
  for (let i = 0; i < 4; i++) valueOf(await alice.docs.apply(doc.write, { add: `a${i}` }));
  for (let i = 0; i < 3; i++) valueOf(await bob.docs.apply(bobWrite, { add: `b${i}` }));
  await sync(bob, alice, doc.doc);
  valueOf(await alice.docs.apply(doc.write, { add: 'after the merge' }));
  const carol = await openKernel({ memory: true });
  t.teardown(() => carol.close());
  await adopt(alice, carol, await alice.docs.closuresOf(doc.doc));
  let tips: readonly string[] = [];
  let pages = 0;
  const before = new Set<string>([doc.doc]);
  for (;;) {
    const bundle = await alice.docs.bundle(doc.doc, [...tips, ...(await carol.syncHaves(doc.doc, 32))], 3);
    pages += 1;
    const versions = bundle.blocks.filter(([, bytes]) => (decode(bytes) as { type?: string }).type === 'version').map(([key, bytes]) => readVersion(CID.parse(key), bytes));
    t.true(versions.length <= 3);
    // Parents first: each version's parents came in an earlier bundle or before it in this one.
    for (const version of versions) {
      for (const parent of version.parents) t.true(before.has(parent.toString()), `a parent of ${version.cid} came first`);
      before.add(version.cid.toString());
    }
    // (A page may end with two branches' heads, which the replica merges meanwhile: its own merge, not one sent.)
    t.like(await carol.docs.ingest(bundle, alice.principal), { refused: [] }, `page ${pages}`);
    if (!bundle.more) break;
    if (pages >= 6) return t.fail('the pages do not end');
    tips = bundle.tips ?? [];
  }
  // Nine versions (four, three, their merge, one after) three at a time; one page more where the replica's own merge hid a branch from its haves.
  t.true(pages === 3 || pages === 4, `${pages} pages`);
  t.is(before.size - 1, 9, 'every version, once');
  t.true(carol.docs.held()[0]!.heads.every((head) => head !== doc.doc));
});

test('a conflict no step merges waits for a person; the settlement reaches the other replica', async (t) => {
  const { alice, bob, doc, bobWrite } = await twoReplicas(t, 'budget.js', ['json'], { total: 100, lines: {} });
  valueOf(await alice.docs.apply(doc.write, { set: 120 }));
  valueOf(await bob.docs.apply(bobWrite, { set: 90 }));
  await sync(bob, alice, doc.doc);
  await sync(alice, bob, doc.doc);
  const [conflict] = alice.docs.allConflicts();
  t.truthy(conflict);
  t.is(conflict!.heads.length, 2);
  t.regex(conflict!.attempts[0]!.reason, /\/total/);
  t.deepEqual(bob.docs.allConflicts().map((c) => c.conflict), [conflict!.conflict]);
  // The conflict is a further promise until someone settles it; writes wait for it too.
  t.deepEqual(await alice.call(conflict!.conflict), { status: 'promised', token: conflict!.conflict });
  t.is(((await alice.docs.apply(doc.write, { set: 1 })) as { code: string }).code, 'conflict');
  const settled = valueOf(await alice.docs.resolve(doc.settle, conflict!.conflict, { pick: conflict!.heads[1]! })) as { version: string; value: GridValue };
  t.deepEqual(valueOf(await alice.call(conflict!.conflict)), settled);
  await sync(alice, bob, doc.doc);
  t.deepEqual(bob.docs.held()[0]!.heads, [settled.version]);
  t.deepEqual(await read(bob, bobWrite), settled.value);
  t.deepEqual(valueOf(await bob.docs.conflicts()), []);
  // The promise graph shows the document's conflict, every attempt, and how it was settled.
  const story = renderText(entriesAround([...(await journalEntries(alice.journal))], doc.doc as Token));
  t.regex(story, /conflict .* between .* json merge: conflicting changes at \/total/);
  t.regex(story, /conflict .* settled by version/);
});

test('a replica refuses forged versions, strangers and a writer after revocation', async (t) => {
  const { alice, bob, doc, bobWrite, bobIdentity } = await twoReplicas(t, 'todo.js', ['json'], { items: [] });
  valueOf(await bob.docs.apply(bobWrite, { add: 'eggs' }));
  const honest = await bob.docs.bundle(doc.doc, []);
  const [honestKey, honestBytes] = honest.blocks.find(([, bytes]) => (decode(bytes) as { type?: unknown }).type === 'version')!;
  const { via, ...unsigned } = readVersion(CID.parse(honestKey), honestBytes) as AuthoredVersion;
  const falseValue = encodeValue({ items: [{ text: 'free money', done: false }] });
  const falseValueCid = blockCid(falseValue, DAG_CBOR_CODEC);
  /** Bob's bundle with its one version swapped for `version` (and the false value beside it). */
  const offer = (version: { version: Version; bytes: Uint8Array }, from: string) =>
    alice.docs.ingest({ doc: doc.doc, blocks: [...honest.blocks.filter(([key]) => key !== honestKey), [version.version.cid.toString(), version.bytes], [falseValueCid.toString(), falseValue]], more: false }, from);
  // Signed by Bob, who may write, through his delegation: but the value does not follow from the change (only replay catches it).
  const lie = await offer(await makeAuthoredVersion({ ...unsigned, via, value: falseValueCid }, bobIdentity), bob.principal);
  t.is(lie.accepted, 0);
  t.regex(lie.refused[0]!.reason, /does not follow from its parent and change/);
  // Bob's honest version with its signature swapped for a stranger's, claiming Bob's delegation.
  const mallory = generateIdentity((n) => new Uint8Array(randomBytes(n)));
  const resignedResult = await offer(await makeAuthoredVersion({ ...unsigned, via }, mallory), bob.principal);
  t.is(resignedResult.accepted, 0);
  t.regex(resignedResult.refused[0]!.reason, /was not made for did:key/);
  // A stranger with no write token signs a version of its own.
  const stranger = generateIdentity((n) => new Uint8Array(randomBytes(n)));
  const strangerResult = await offer(await makeAuthoredVersion({ ...unsigned, value: falseValueCid }, stranger), stranger.principal);
  t.is(strangerResult.accepted, 0);
  t.regex(strangerResult.refused[0]!.reason, /did not issue the document and names no delegation/);
  t.deepEqual(await read(alice, doc.read), { items: [] });
  // Alice revokes Bob's write: what Bob made before stays acceptable, what he makes after does not.
  t.like(await alice.docs.ingest(honest, bob.principal), { accepted: 1 });
  await alice.revoke(bobWrite);
  await new Promise((resolve) => setTimeout(resolve, 5));
  valueOf(await bob.docs.apply(bobWrite, { add: 'late' }));
  const lateBundle = await bob.docs.bundle(doc.doc, alice.docs.held()[0]!.heads);
  const late = await alice.docs.ingest(lateBundle, bob.principal);
  t.is(late.accepted, 0);
  t.regex(late.refused[0]!.reason, /revoked before this version was made/);
  // Carol, a third replica, hears of the revocation from Alice with the document, dated and signed by Alice:
  // she refuses what Bob made after it, even what he made before she heard.
  const carol = await openKernel({ memory: true });
  t.teardown(() => carol.close());
  await adopt(alice, carol, await alice.docs.closuresOf(doc.doc));
  t.like(await carol.docs.ingest(await alice.docs.bundle(doc.doc, []), alice.principal), { accepted: 1 });
  t.true(carol.isRevoked(bobWrite as Token));
  const carolLate = await carol.docs.ingest(lateBundle, bob.principal);
  t.is(carolLate.accepted, 0);
  t.regex(carolLate.refused[0]!.reason, /revoked before this version was made/);
});

/** A value as a block: its CID and bytes. */
const valueBlock = (value: GridValue) => {
  const bytes = encodeValue(value);
  return { cid: blockCid(bytes, DAG_CBOR_CODEC), bytes };
};

/**
 * A version of `doc` by `author` from `parent`, `change` making `value`, its
 * signature spoiled if `badSignature`: its value's, change's and own blocks
 * pushed onto `blocks`; its CID.
 */
const pushVersion = async (blocks: Array<readonly [string, Uint8Array]>, author: Identity, doc: string, parent: CID, change: GridValue, value: GridValue, badSignature: boolean): Promise<CID> => {
  const changeBlock = valueBlock(change);
  const kept = valueBlock(value);
  let { bytes } = await makeAuthoredVersion({ doc: CID.parse(doc), parents: [parent], value: kept.cid, by: 'change', change: changeBlock.cid, at: Date.now() }, author);
  if (badSignature) {
    const record = decode(bytes) as { sig: Uint8Array };
    bytes = encode({ ...record, sig: Uint8Array.from(record.sig, (byte, i) => (i === 10 ? byte ^ 1 : byte)) });
  }
  const cid = blockCid(bytes, DAG_CBOR_CODEC);
  blocks.push([kept.cid.toString(), kept.bytes], [changeBlock.cid.toString(), changeBlock.bytes], [cid.toString(), bytes]);
  return cid;
};

test('a bad version in the middle of a bundle is refused with its reason; those before it are taken, those built on it are not', async (t) => {
  const aliceIdentity = generateIdentity((n) => new Uint8Array(randomBytes(n)));
  const alice = await openKernel({ memory: true, identity: aliceIdentity });
  t.teardown(() => alice.close());
  const doc = await createDoc(alice, 'todo.js', ['json'], { items: [] });
  for (const text of ['a', 'b']) valueOf(await alice.docs.apply(doc.write, { add: text }));
  const honest = await alice.docs.bundle(doc.doc, []);
  const tip = CID.parse(alice.docs.held()[0]!.heads[0]!);
  const item = (text: string) => ({ text, done: false });
  /** Alice's versions on top of `tip`, the third of five made bad by `spoil`, each after its value and change. */
  const offer = async (spoil: 'signature' | 'value' | 'change') => {
    const blocks: Array<readonly [string, Uint8Array]> = [...honest.blocks];
    let parent = tip;
    const items = [item('a'), item('b')];
    const ids: string[] = [];
    for (const [index, text] of ['c', 'd', 'e'].entries()) {
      const bad = index === 0;
      const change: GridValue = bad && spoil === 'change' ? { frobnicate: 1 } : { add: text };
      if (!(bad && spoil === 'change')) items.push(item(text));
      const value = bad && spoil === 'value' ? { items: [item('free money')] } : { items: [...items] };
      parent = await pushVersion(blocks, aliceIdentity, doc.doc, parent, change, value, bad && spoil === 'signature');
      ids.push(parent.toString());
    }
    const carol = await openKernel({ memory: true });
    t.teardown(() => carol.close());
    await adopt(alice, carol, await alice.docs.closuresOf(doc.doc));
    const result = await carol.docs.ingest({ doc: doc.doc, blocks, more: false }, alice.principal);
    // The two before it are taken, and nothing after them.
    t.is(result.accepted, 2, spoil);
    t.like(carol.docs.held()[0], { heads: [tip.toString()], current: tip.toString() }, spoil);
    t.deepEqual(
      result.refused.map((refusal) => refusal.version),
      ids,
      spoil,
    );
    t.regex(result.refused[1]!.reason, new RegExp(`its parent ${ids[0]} is missing`), spoil);
    t.regex(result.refused[2]!.reason, new RegExp(`its parent ${ids[1]} is missing`), spoil);
    return result.refused[0]!.reason;
  };
  t.regex(await offer('signature'), /signature does not verify for author/);
  t.regex(await offer('value'), /its value does not follow from its parent and change/);
  t.regex(await offer('change'), /the reducer refuses its change/);
});

test('a long bundle is checked in parts as it is read: a bad version past the first parts is refused, those before it taken, those after it not', async (t) => {
  const aliceIdentity = generateIdentity((n) => new Uint8Array(randomBytes(n)));
  const alice = await openKernel({ memory: true, identity: aliceIdentity });
  t.teardown(() => alice.close());
  const doc = await createDoc(alice, 'todo.js', ['json'], { items: [] });
  const honest = await alice.docs.bundle(doc.doc, []);
  const COUNT = 610;
  const BAD = 520; // past the first part replayed (500) and the first two batches of signatures (250 each)
  const offer = async (spoil: 'signature' | 'value') => {
    const blocks: Array<readonly [string, Uint8Array]> = [...honest.blocks];
    let parent = CID.parse(doc.doc);
    const ids: string[] = [];
    for (let index = 0; index < COUNT; index++) {
      const bad = index === BAD;
      // An item added, then removed: the list stays short.
      const added = index % 2 === 0;
      const change: GridValue = added ? { add: `item ${index}` } : { remove: `item ${index - 1}` };
      const value = bad && spoil === 'value' ? { items: [{ text: 'free money', done: false }] } : { items: added ? [{ text: `item ${index}`, done: false }] : [] };
      parent = await pushVersion(blocks, aliceIdentity, doc.doc, parent, change, value, bad && spoil === 'signature');
      ids.push(parent.toString());
    }
    const carol = await openKernel({ memory: true });
    t.teardown(() => carol.close());
    await adopt(alice, carol, await alice.docs.closuresOf(doc.doc));
    const result = await carol.docs.ingest({ doc: doc.doc, blocks, more: false }, alice.principal);
    t.is(result.accepted, BAD, `${spoil}: ${result.refused[0]?.reason}`);
    t.deepEqual(carol.docs.held()[0]!.heads, [ids[BAD - 1]], spoil);
    t.deepEqual(
      result.refused.map((refusal) => refusal.version),
      ids.slice(BAD),
      spoil,
    );
    t.regex(result.refused.at(-1)!.reason, new RegExp(`its parent ${ids.at(-2)} is missing`), spoil);
    return result.refused[0]!.reason;
  };
  t.regex(await offer('signature'), /signature does not verify for author/);
  t.regex(await offer('value'), /its value does not follow from its parent and change/);
});

test('a governed document changes by proposal: members vote once, signed; the quorum carries or breaks it', async (t) => {
  const home = await tempDir(t);
  const kernel = await openKernel({ home, create: true });
  const [bob, carol, mallory] = [0, 1, 2].map(() => generateIdentity((n) => new Uint8Array(randomBytes(n))));
  const code = await kernel.publish(await source('examples/community.js'));
  const reducer = await kernel.issue({ code, export: 'update', replicable: true });
  const members = [kernel.principal, bob!.principal, carol!.principal];
  const doc = await kernel.docs.create({ reducer, init: { members, rules: {} }, governance: { members: 'self', quorum: 'majority', weighted: false, deadlineMs: 60_000 } });
  t.is(((await kernel.docs.apply(doc.write, { add: mallory!.principal })) as { code: string }).code, 'denied');
  const proposed = await kernel.docs.propose(doc.write, { add: mallory!.principal });
  t.is(proposed.status, 'promised');
  const proposal = (proposed as { token: string }).token;
  const voteAs = async (who: typeof bob, choice: 'yes' | 'no', signer = who) =>
    kernel.call(proposal, ['vote', choice, await signVote(signer!, proposal as never, choice)], { caller: who!.principal });
  t.is(((await voteAs(mallory, 'yes')) as { code: string }).code, 'denied');
  t.is(((await voteAs(bob, 'yes', carol)) as { code: string }).code, 'invalid');
  t.deepEqual(await voteAs(bob, 'yes'), { status: 'promised', token: proposal });
  t.is(((await voteAs(bob, 'no')) as { code: string }).code, 'denied');
  await kernel.close();
  // Votes survive a restart: one more yes carries it.
  const reopened = await openKernel({ home });
  const carried = await reopened.docs.vote(proposal, 'yes');
  t.is(carried.status, 'fulfilled');
  t.true(((await read(reopened, doc.read)) as { members: string[] }).members.includes(mallory!.principal));
  t.like(valueOf(await reopened.call(proposal)), { status: 'passed' });
  // A proposal the members turn down breaks; one nobody votes on expires at its deadline.
  const second = ((await reopened.docs.propose(doc.admin, { remove: bob!.principal })) as { token: string }).token;
  const voteOn = async (who: typeof bob, choice: 'yes' | 'no') => reopened.call(second, ['vote', choice, await signVote(who!, second as never, choice)], { caller: who!.principal });
  await voteOn(bob, 'no');
  const rejected = await voteOn(carol, 'no');
  t.is(rejected.status, 'revoked');
  t.regex((rejected as { reason: string }).reason, /rejected/);
  t.deepEqual(reopened.docs.proposals().map((p) => p.proposal), []);
  const story = renderText(entriesAround([...(await journalEntries(reopened.journal))], doc.doc as Token));
  t.regex(story, /proposes .* by did:key/);
  t.regex(story, /votes yes on .* \(signed\)/);
  t.regex(story, /passed: carried \(version/);
  t.regex(story, /rejected: rejected/);
  await reopened.close();
});

test('a proposal that reaches no quorum by its deadline expires', async (t) => {
  const kernel = await openKernel({ memory: true });
  t.teardown(() => kernel.close());
  const code = await kernel.publish(await source('examples/community.js'));
  const reducer = await kernel.issue({ code, export: 'update' });
  const other = generateIdentity((n) => new Uint8Array(randomBytes(n)));
  const doc = await kernel.docs.create({ reducer, init: { members: [kernel.principal, other.principal], rules: {} }, governance: { members: 'self', quorum: 'unanimity', weighted: false, deadlineMs: 300 } });
  const proposal = ((await kernel.docs.propose(doc.write, { add: generateIdentity((n) => new Uint8Array(randomBytes(n))).principal })) as { token: string }).token;
  t.is((await kernel.docs.vote(proposal, 'yes')).status, 'promised');
  await new Promise((resolve) => setTimeout(resolve, 600));
  const ended = await kernel.call(proposal);
  t.is((ended as { code: string }).code, 'expired');
  t.is(((await kernel.call(proposal, ['vote', 'yes', await signVote(other, proposal as never, 'yes')], { caller: other.principal })) as { code: string }).code, 'expired');
});

test('a reducer or merge step that throws, loops or answers non-data leaves the document as it was', async (t) => {
  const kernel = await openKernel({ memory: true, limits: { callTimeoutMs: 1500 } });
  t.teardown(() => kernel.close());
  const code = await kernel.publish(`
    export const update = (ctx, state, change) => {
      if (change === 'throw') throw new TypeError('boom');
      if (change === 'loop') for (;;);
      if (change === 'function') return () => 1;
      return state + change;
    };`);
  const reducer = await kernel.issue({ code, export: 'update' });
  const doc = await kernel.docs.create({ reducer, init: 1 });
  valueOf(await kernel.docs.apply(doc.write, 1));
  const before = valueOf(await kernel.docs.read(doc.read));
  for (const [change, code] of [
    ['throw', 'crash'],
    ['loop', 'time-limit'],
    ['function', 'crash'],
  ] as const) {
    const outcome = await kernel.docs.apply(doc.write, change);
    t.is((outcome as { code: string }).code, code, change);
    t.regex((outcome as { reason: string }).reason, /^the reducer refused the change: /);
  }
  t.deepEqual(valueOf(await kernel.docs.read(doc.read)), before);
  t.is((valueOf(await kernel.docs.log(doc.read)) as unknown[]).length, 1);
});

test('the cascade goes on past a step that fails, and asks another token where a language model would plug in', async (t) => {
  const alice = await openKernel({ memory: true, limits: { callTimeoutMs: 2000 } });
  const bob = await openKernel({ memory: true, limits: { callTimeoutMs: 2000 } });
  t.teardown(async () => {
    await alice.close();
    await bob.close();
  });
  const steps = await alice.publish(`
    export const loops = () => { for (;;); };
    export const refuses = (ctx) => ctx.revoke('not my kind of change');
    // The stand-in for an outside service: both sides' additions after the base, ours first.
    export const oracle = (ctx, { base, ours, theirs }) => ours + theirs.slice(base.length);`);
  const issue = async (exportName: string, env?: unknown) => alice.issue({ code: steps, export: exportName, replicable: true, ...(env ? { env } : {}) });
  const oracle = await issue('oracle');
  const translate = await alice.issue({ code: await alice.publish(await source('examples/translate-merge.js')), export: 'merge', env: { oracle }, replicable: true });
  const doc = await createDoc(alice, 'text.js', [await issue('loops'), await issue('refuses'), translate], 'Dear team,');
  await adopt(alice, bob, [...(await alice.docs.closuresOf(doc.doc)), oracle]);
  await bob.docs.ingest(await alice.docs.bundle(doc.doc, []), alice.principal);
  const bobWrite = await alice.delegate({ token: doc.write, to: [bob.principal] });
  await bob.importChain(bobWrite, (await alice.chainBlocks(bobWrite))!);
  valueOf(await alice.docs.apply(doc.write, { set: 'Dear team, lunch at noon.' }));
  valueOf(await bob.docs.apply(bobWrite, { set: 'Dear team, bring cake.' }));
  await sync(bob, alice, doc.doc);
  await sync(alice, bob, doc.doc);
  const merged = await read(alice, doc.read);
  t.deepEqual(await read(bob, bobWrite), merged);
  t.true(merged === 'Dear team, lunch at noon. bring cake.' || merged === 'Dear team, bring cake. lunch at noon.', String(merged));
  const log = valueOf(await alice.docs.log(doc.read, { limit: 1 })) as Array<{ by: string; step: number }>;
  t.like(log[0], { by: 'merge', step: 2 });
});

test('a closure in a vat reads, applies and proposes through document tokens in its env', async (t) => {
  // A closure's budget covers the calls it makes; a loaded machine must not end it early.
  const kernel = await openKernel({ memory: true, limits: { callTimeoutMs: 30_000 } });
  t.teardown(() => kernel.close());
  const plain = await createDoc(kernel, 'todo.js', ['json'], { items: [] });
  const code = await kernel.publish(await source('examples/community.js'));
  const reducer = await kernel.issue({ code, export: 'update' });
  const other = generateIdentity((n) => new Uint8Array(randomBytes(n)));
  const governed = await kernel.docs.create({ reducer, init: { members: [kernel.principal, other.principal], rules: {} }, governance: { members: 'self', quorum: 'unanimity', weighted: false, deadlineMs: 60_000 } });
  const app = await kernel.publish(`
    export const addAndCount = async (ctx, text) => {
      await ctx.call(ctx.env.todo, 'apply', { add: text });
      const { value } = await ctx.call(ctx.env.todo);
      return value.items.length;
    };
    // A proposal is a further promise: the closure hands it on as its answer.
    export const invite = (ctx, who) => ctx.call(ctx.env.community, 'propose', { add: who }).catch((error) => ctx.revoke(String(error.message)));
  `);
  const addAndCount = await kernel.issue({ code: app, export: 'addAndCount', env: { todo: plain.write } });
  t.deepEqual(await kernel.call(addAndCount, ['milk']), { status: 'fulfilled', value: 1 });
  t.deepEqual(await kernel.call(addAndCount, ['eggs']), { status: 'fulfilled', value: 2 });
  const invite = await kernel.issue({ code: app, export: 'invite', env: { community: governed.write } });
  // ctx.call follows a further promise within the call: a proposal still waiting for votes ends the call unresolved.
  const invited = await kernel.call(invite, [generateIdentity((n) => new Uint8Array(randomBytes(n))).principal]);
  t.is(invited.status, 'revoked');
  t.regex((invited as { reason: string }).reason, /unresolved further promise/);
  t.is(kernel.docs.proposals().length, 1);
});

/** A reducer that shouts: `{ add: text }` appends the text in capitals (a rules change swaps it in for todo.js's). */
const SHOUT = `export const update = (ctx, state, change) => {
  if (typeof change?.add !== 'string') ctx.revoke('shout: a change is { add: text }');
  return { items: [...state.items, { text: change.add.toUpperCase(), done: false }] };
};`;
const texts = (value: GridValue) => (value as { items: Array<{ text: string }> }).items.map((item) => item.text);

test('the admin token changes the reducer by proposal: the next change runs it, here, on a replica, and across a merge', async (t) => {
  const { alice, bob, doc, bobWrite } = await twoReplicas(t, 'todo.js', ['json'], { items: [] });
  const shout = await alice.issue({ code: await alice.publish(SHOUT), export: 'update', replicable: true });
  // Only the admin token administers: the others are refused in one line with a stable code.
  for (const token of [doc.read, doc.write, doc.settle]) {
    const refused = await alice.docs.rules(token, { reducer: shout });
    t.like(refused, { status: 'revoked', code: 'denied' });
    t.regex((refused as { reason: string }).reason, /^only a document's admin token changes its reducer or merge cascade \(this is a (read|write|settle) token\)$/);
  }
  t.like(await bob.docs.rules(bobWrite, { reducer: shout }), { status: 'revoked', code: 'denied' });
  t.like(await alice.docs.rules(doc.admin, {}), { status: 'revoked', code: 'invalid' });
  // An ungoverned document: the proposal is put to its issuer alone, and waits for that vote.
  const proposed = await alice.docs.rules(doc.admin, { reducer: shout });
  t.is(proposed.status, 'promised');
  const proposal = (proposed as { token: string }).token;
  t.deepEqual(alice.docs.proposals().map((p) => p.members), [[alice.principal]]);
  t.deepEqual(texts((valueOf(await alice.docs.apply(doc.write, { add: 'milk' })) as { value: GridValue }).value), ['milk']);
  const carried = valueOf(await alice.docs.vote(proposal, 'yes')) as { status: string; version: string };
  t.is(carried.status, 'passed');
  t.like((valueOf(await alice.docs.log(doc.read, { limit: 1 })) as unknown[])[0], { version: carried.version, by: 'rules', author: alice.principal, rules: { reducer: shout, merges: [(await alice.docs.closuresOf(doc.doc))[1]] } });
  t.like(valueOf(await alice.call(doc.read, ['info'])), { reducer: shout });
  t.like(await alice.docs.history(doc.doc, 10), { reducer: shout });
  t.deepEqual(texts((valueOf(await alice.docs.apply(doc.write, { add: 'bread' })) as { value: GridValue }).value), ['milk', 'BREAD']);
  // Bob wrote apart under the old rules: his change stays lowercase, the merge joins both, and from it on the new reducer runs on his node too.
  valueOf(await bob.docs.apply(bobWrite, { add: 'eggs' }));
  t.true((await alice.docs.closuresOf(doc.doc)).includes(shout));
  await adopt(alice, bob, [shout]);
  t.like(await sync(alice, bob, doc.doc), { refused: [] });
  t.like(await sync(bob, alice, doc.doc), { refused: [] });
  t.deepEqual(alice.docs.held()[0]!.heads, bob.docs.held()[0]!.heads);
  t.deepEqual(texts(await read(bob, bobWrite)).sort(), ['BREAD', 'eggs', 'milk']);
  t.deepEqual(texts((valueOf(await bob.docs.apply(bobWrite, { add: 'ham' })) as { value: GridValue }).value).at(-1), 'HAM');
  t.like(await sync(bob, alice, doc.doc), { accepted: 1, refused: [] });
  t.deepEqual(await read(alice, doc.read), await read(bob, bobWrite));
  // A replica that starts from nothing replays every version, each under the rules of its ancestry.
  const carol = await openKernel({ memory: true });
  t.teardown(() => carol.close());
  await adopt(alice, carol, await alice.docs.closuresOf(doc.doc));
  t.like(await carol.docs.ingest(await alice.docs.bundle(doc.doc, []), alice.principal), { refused: [] });
  t.deepEqual(carol.docs.held()[0]!.heads, alice.docs.held()[0]!.heads);
});

test('rules survive a restart, an open proposal of them too', async (t) => {
  const home = await tempDir(t);
  const kernel = await openKernel({ home, create: true });
  const doc = await createDoc(kernel, 'todo.js', ['json'], { items: [] });
  const shout = await kernel.issue({ code: await kernel.publish(SHOUT), export: 'update', replicable: true });
  const proposal = ((await kernel.docs.rules(doc.admin, { reducer: shout, merges: ['union', 'json'] })) as { token: string }).token;
  await kernel.close();
  // The open proposal survives the restart, its vote carries it there.
  const reopened = await openKernel({ home });
  t.like(valueOf(await reopened.docs.vote(proposal, 'yes')), { status: 'passed' });
  await reopened.close();
  const again = await openKernel({ home });
  t.teardown(() => again.close());
  const info = valueOf(await again.call(doc.read, ['info'])) as { reducer: string; merges: string[] };
  t.is(info.reducer, shout);
  t.is(info.merges.length, 2);
  t.deepEqual(texts((valueOf(await again.docs.apply(doc.write, { add: 'tea' })) as { value: GridValue }).value), ['TEA']);
  t.is(((await again.call(proposal)) as { status: string }).status, 'fulfilled');
  // The promise graph tells it: the proposal of the new rules, the vote, and the version that changed them.
  const story = renderText(entriesAround([...(await journalEntries(again.journal))], doc.doc as Token));
  t.regex(story, /proposes \{"merges":\["bafyrei\w+/);
  t.regex(story, /rules changed by version/);
});

test('a replica refuses a forged rules version: signed by a writer, or backed by no carried proposal', async (t) => {
  const aliceIdentity = generateIdentity((n) => new Uint8Array(randomBytes(n)));
  const alice = await openKernel({ memory: true, identity: aliceIdentity });
  const bobIdentity = generateIdentity((n) => new Uint8Array(randomBytes(n)));
  const bob = await openKernel({ memory: true, identity: bobIdentity });
  t.teardown(async () => {
    await alice.close();
    await bob.close();
  });
  const doc = await createDoc(alice, 'todo.js', ['json'], { items: [] });
  const shout = await alice.issue({ code: await alice.publish(SHOUT), export: 'update', replicable: true });
  await adopt(alice, bob, [...(await alice.docs.closuresOf(doc.doc)), shout]);
  valueOf(await alice.docs.apply(doc.write, { add: 'milk' }));
  await sync(alice, bob, doc.doc);
  const bobWrite = await alice.delegate({ token: doc.write, to: [bob.principal] });
  await bob.importChain(bobWrite, (await alice.chainBlocks(bobWrite))!);
  const head = (valueOf(await alice.docs.read(doc.read)) as { version: string }).version;
  const [headKey, headBytes] = (await alice.docs.bundle(doc.doc, [])).blocks.find(([key]) => key === head)!;
  const parent = readVersion(CID.parse(headKey), headBytes);
  const rules = { reducer: shout as Token, merges: [] };
  const nonce = new Uint8Array(randomBytes(16));
  const consentFor = (votes: Array<readonly [string, 'yes' | 'no', Uint8Array]>) => ({ nonce, members: [alice.principal], weights: [1], quorum: 1, votes: votes as never });
  const forge = async (signer: typeof aliceIdentity, votes: Array<readonly [string, 'yes' | 'no', Uint8Array]>, via?: string) =>
    await makeAuthoredVersion({ doc: parent.doc, parents: [parent.cid], value: parent.value, by: 'rules', rules, consent: consentFor(votes), at: Date.now(), ...(via ? { via: via as Token } : {}) }, signer);
  const offer = (to: Kernel, forged: { version: Version; bytes: Uint8Array }) => to.docs.ingest({ doc: doc.doc, blocks: [[forged.version.cid.toString(), forged.bytes]], more: false }, bob.principal);
  // Bob may write, not administer: his rules change is refused wherever it goes, even with a vote of Alice's.
  const token = rulesProposalToken(parent.doc, rules, consentFor([]));
  const aliceYes = [alice.principal, 'yes', await signVote(aliceIdentity, token, 'yes')] as const;
  const byWriter = await offer(alice, await forge(bobIdentity, [aliceYes], bobWrite));
  t.is(byWriter.accepted, 0);
  t.regex(byWriter.refused[0]!.reason, /does not lead to a token that may administer/);
  // Signed by the issuer but carried by no one's vote, by a stranger's, or by a vote on another proposal: refused.
  t.regex((await offer(bob, await forge(aliceIdentity, []))).refused[0]!.reason, /its votes do not carry the quorum .*no carried proposal backs it/);
  const stranger = generateIdentity((n) => new Uint8Array(randomBytes(n)));
  t.regex((await offer(bob, await forge(aliceIdentity, [[stranger.principal, 'yes', await signVote(stranger, token, 'yes')]]))).refused[0]!.reason, /is not a member the proposal was put to/);
  const elsewhere = [alice.principal, 'yes', await signVote(aliceIdentity, rulesProposalToken(parent.doc, { ...rules, merges: [{ native: 'text' }] }, consentFor([])), 'yes')] as const;
  t.regex((await offer(bob, await forge(aliceIdentity, [elsewhere]))).refused[0]!.reason, /is not signed by .* for this proposal/);
  t.deepEqual(bob.docs.held()[0]!.heads, [head]);
  // The same version with the issuer's vote on it is taken, and the next change replays under the new reducer.
  const carried = await forge(aliceIdentity, [aliceYes]);
  t.like(await offer(bob, carried), { accepted: 1, refused: [] });
  // Its consent carries that one version: replayed further on, it is refused.
  const replay = await makeAuthoredVersion({ doc: parent.doc, parents: [carried.version.cid], value: parent.value, by: 'rules', rules, consent: consentFor([aliceYes]), at: Date.now() }, aliceIdentity);
  t.regex((await offer(bob, replay)).refused[0]!.reason, /its proposal .* carried version .* already/);
  t.deepEqual(texts((valueOf(await bob.docs.apply(bobWrite, { add: 'jam' })) as { value: GridValue }).value), ['milk', 'JAM']);
});

test('a governed document\'s rules change is put to its members; a replica checks the members against the document', async (t) => {
  const aliceIdentity = generateIdentity((n) => new Uint8Array(randomBytes(n)));
  const alice = await openKernel({ memory: true, identity: aliceIdentity });
  const dave = await openKernel({ memory: true });
  t.teardown(async () => {
    await alice.close();
    await dave.close();
  });
  const [bob, carol] = [0, 1].map(() => generateIdentity((n) => new Uint8Array(randomBytes(n))));
  const reducer = await alice.issue({ code: await alice.publish(await source('examples/community.js')), export: 'update', replicable: true });
  const doc = await alice.docs.create({ reducer, init: { members: [alice.principal, bob!.principal, carol!.principal], rules: {} }, governance: { members: 'self', quorum: 'majority', weighted: false, deadlineMs: 60_000 } });
  const proposal = ((await alice.docs.rules(doc.admin, { merges: ['json'] })) as { token: string }).token;
  t.deepEqual(alice.docs.proposals()[0]!.members, [alice.principal, bob!.principal, carol!.principal]);
  t.deepEqual(await alice.docs.vote(proposal, 'yes'), { status: 'promised', token: proposal });
  const carried = await alice.call(proposal, ['vote', 'yes', await signVote(bob!, proposal as Token, 'yes')], { caller: bob!.principal });
  t.like(valueOf(carried), { status: 'passed' });
  t.is((valueOf(await alice.call(doc.read, ['info'])) as { merges: string[] }).merges.length, 1);
  await adopt(alice, dave, await alice.docs.closuresOf(doc.doc));
  const bundle = await alice.docs.bundle(doc.doc, []);
  t.like(await dave.docs.ingest(bundle, alice.principal), { accepted: 1, refused: [] });
  // The issuer alone, claiming to be the only member and carrying its own majority: the document lists three.
  const rulesVersion = readVersion(...((([key, bytes]) => [CID.parse(key), bytes] as const)(bundle.blocks.find(([key]) => key === (valueOf(carried) as { version: string }).version)!))) as AuthoredVersion;
  const consent = { ...rulesVersion.consent!, members: [alice.principal], weights: [1] };
  const rules = { ...rulesVersion.rules!, merges: [] };
  const token = rulesProposalToken(rulesVersion.doc, rules, consent);
  const forged = await makeAuthoredVersion({ doc: rulesVersion.doc, parents: [rulesVersion.cid], value: rulesVersion.value, by: 'rules', rules, consent: { ...consent, votes: [[alice.principal, 'yes', await signVote(aliceIdentity, token, 'yes')]] }, at: Date.now() }, aliceIdentity);
  const refused = await dave.docs.ingest({ doc: doc.doc, blocks: [[forged.version.cid.toString(), forged.bytes]], more: false }, alice.principal);
  t.is(refused.accepted, 0);
  t.regex(refused.refused[0]!.reason, /its proposal's members are not those the member document listed at/);
});

test('a new merge cascade merges what is made after it: an empty one sends concurrent edits to a person', async (t) => {
  const { alice, bob, doc, bobWrite } = await twoReplicas(t, 'todo.js', ['json'], { items: [] });
  const proposal = ((await alice.docs.rules(doc.admin, { merges: [] })) as { token: string }).token;
  valueOf(await alice.docs.vote(proposal, 'yes'));
  t.like(await sync(alice, bob, doc.doc), { accepted: 1, refused: [] });
  valueOf(await alice.docs.apply(doc.write, { add: 'milk' }));
  valueOf(await bob.docs.apply(bobWrite, { add: 'eggs' }));
  await sync(bob, alice, doc.doc);
  // Under the genesis's json step these two would merge; under the new, empty cascade they wait for a person.
  const [conflict] = alice.docs.allConflicts();
  t.truthy(conflict);
  t.deepEqual(conflict!.attempts, []);
  t.is(alice.docs.held()[0]!.heads.length, 2);
});

test('a read of the current value as a call is the pure read of the version now current: a cache hit until the document changes, never kept by the caller', async (t) => {
  const kernel = await openKernel({ memory: true });
  t.teardown(() => kernel.close());
  const doc = await createDoc(kernel, 'todo.js', ['json'], { items: [] });
  // Reading the journal writes what is pending, which may add a seal after the records: the last record other than a seal.
  const lastKind = async () => (await journalEntries(kernel.journal)).filter((entry) => entry.kind !== 'seal').at(-1)!.kind;
  const first = valueOf(await kernel.call(doc.read, [])) as { version: string; value: GridValue };
  const call = (await journalEntries(kernel.journal)).findLast((entry) => entry.kind === 'call')!;
  t.deepEqual(call.kind === 'call' && call.args, ['at', doc.doc], 'journaled as the read of the version it read');
  t.deepEqual(valueOf(await kernel.call(doc.read, ['value'])), first);
  t.is(await lastKind(), 'hit');
  // A change: the next read reads the new version, not the cached one.
  const changed = valueOf(await kernel.docs.apply(doc.write, { add: 'milk' })) as { version: string; value: GridValue };
  t.deepEqual(valueOf(await kernel.call(doc.read, [])), changed);
  t.not(await lastKind(), 'hit');
  // Whoever asked (a peer, say) is told the answer is not theirs to cache: the value now changes.
  const answer = await kernel.answer(doc.read, [], { caller: generateIdentity((n) => new Uint8Array(randomBytes(n))).principal });
  t.deepEqual(valueOf(answer.outcome), changed);
  t.false(answer.cacheable);
  t.true((await kernel.answer(doc.read, ['at', changed.version])).cacheable, 'the read of a named version is');
});
