/**
 * A kernel restored from a snapshot of its parts at any record of the
 * journal, then replaying only the records after it, is in the same state as
 * one that replayed the whole journal (kernel/snapshot.ts): the same bytes
 * from `stateSnapshot`. The journal comes from a home that did a bit of
 * everything that leaves state: pure and executing calls by several callers,
 * cache hits, calls answered by peers, a delegation whose rate policy keeps
 * state, revocations made and heard (one early, of a delegation not seen),
 * documents with versions, a conflict settled, a governed one with a
 * proposal and votes, a followed token.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { cp, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { openKernel, type Kernel } from '../src/index.js';
import { Kernel as KernelClass, type Forwarder } from '../src/kernel/kernel.js';
import { Journal, memoryJournalFile, recordCid } from '../src/journal/journal.js';
import { loadIdentity } from '../src/identity/key-file.js';
import { SHIPPED_MERGES, SHIPPED_POLICIES } from '../src/home/open.js';
import { openFsBlockStore } from '../src/store/index.js';
import { generateIdentity } from '../src/identity/index.js';
import { signRevocation } from '../src/kernel/revocations.js';
import { signVote } from '../src/docs/governance.js';
import { decodeTrusted } from '../src/wire/cbor.js';
import { decodeSnapshot, SNAPSHOT_FORMAT, type PartsSnapshot } from '../src/kernel/snapshot.js';
import { openDatabase } from '../src/db/database.js';
import { databaseSnapshots } from '../src/db/snapshots.js';
import type { Token } from '../src/interface/ids.js';
import { source, tempDir, valueOf } from './_helpers.js';

const random = (n: number) => new Uint8Array(randomBytes(n));
const REMOTE = 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku' as Token;

/** A home that did a bit of everything; returns its directory. */
const busyHome = async (dir: string): Promise<string> => {
  const home = join(dir, 'home');
  const upstream = generateIdentity(random);
  const forward: Forwarder = async ({ token }) => (token === REMOTE ? { answer: { outcome: { status: 'fulfilled', value: 7 }, cacheable: true }, peer: upstream.principal } : undefined);
  const kernel: Kernel = await openKernel({ home, create: true, forward });
  const [bob, carol] = [generateIdentity(random), generateIdentity(random)];
  const code = await kernel.publish('export const double = (ctx, x) => x * 2; export const refuse = (ctx) => ctx.revoke("no");');
  const double = await kernel.issue({ code, export: 'double' });
  const refuse = await kernel.issue({ code, export: 'refuse' });
  const limited = await kernel.delegate({ token: double, to: [bob.principal], policies: [{ module: 'rate', settings: { uses: 5 } }] });
  for (let i = 0; i < 12; i++) await kernel.call(i % 3 === 0 ? refuse : double, [i % 4], { caller: i % 2 ? bob.principal : carol.principal });
  for (let i = 0; i < 3; i++) await kernel.call(limited, [i], { caller: bob.principal });
  await kernel.call(REMOTE, [1], { caller: carol.principal });
  await kernel.revoke(refuse, 'enough');
  await kernel.hearRevocation(await signRevocation(REMOTE, 'gone upstream', upstream), upstream.principal);
  // A revocation of a delegation this node has not seen: kept as an early one.
  await kernel.hearRevocation(await signRevocation('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy' as Token, 'early', bob), bob.principal).catch(() => false);

  // A budget whose concurrent edits conflict, settled by a person.
  const other = await openKernel({ memory: true, identity: generateIdentity(random) });
  const reducer = await kernel.issue({ code: await kernel.publish(await source('examples/budget.js')), export: 'update', replicable: true });
  const budget = await kernel.docs.create({ reducer, merges: ['json'], init: { total: 100, lines: {} } });
  for (const token of await kernel.docs.closuresOf(budget.doc)) await other.adopt(token as never, await kernel.replica(token, other.principal));
  await other.docs.ingest(await kernel.docs.bundle(budget.doc, []), kernel.principal);
  const otherWrite = await kernel.delegate({ token: budget.write, to: [other.principal] });
  await other.importChain(otherWrite, (await kernel.chainBlocks(otherWrite))!);
  valueOf(await kernel.docs.apply(budget.write, { set: 120 }));
  valueOf(await other.docs.apply(otherWrite, { set: 90 }));
  await kernel.docs.ingest(await other.docs.bundle(budget.doc, kernel.docs.held().find((held) => held.doc === budget.doc)!.heads), other.principal);
  const [conflict] = kernel.docs.allConflicts();
  valueOf(await kernel.call(budget.settle, ['resolve', conflict!.conflict, { value: { total: 110, lines: {} } }]));
  await other.close();

  // A governed community: a proposal with a vote, still open.
  const community = await kernel.issue({ code: await kernel.publish(await source('examples/community.js')), export: 'update', replicable: true });
  const members = [kernel.principal, bob.principal, carol.principal];
  const governed = await kernel.docs.create({ reducer: community, init: { members, rules: {} }, governance: { members: 'self', quorum: 'majority', weighted: false, deadlineMs: 3_600_000 } });
  const proposed = await kernel.docs.propose(governed.write, { add: generateIdentity(random).principal });
  const proposal = (proposed as { token: Token }).token;
  await kernel.call(proposal, ['vote', 'yes', await signVote(bob, proposal, 'yes')], { caller: bob.principal });
  await kernel.flush();
  await kernel.close();
  return home;
};

test('a kernel restored from a snapshot at any record and replaying the rest equals one that replayed everything', async (t) => {
  const dir = await tempDir(t);
  const home = await busyHome(dir);
  const journalBytes = new Uint8Array(await readFile(join(home, 'journal', '0000000000000000')));
  const identity = await loadIdentity(join(home, 'identity'));
  const store = openFsBlockStore(join(home, 'blocks'));
  const setTimer = (ms: number, callback: () => void) => {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return () => clearTimeout(timer);
  };
  /** A kernel over the first `length` bytes of the journal, restored from `snapshot` if given. */
  const kernelOn = async (length: number, snapshot?: { seq: number; parts: PartsSnapshot }) => {
    const { journal } = await Journal.open({ file: memoryJournalFile(journalBytes.subarray(0, length)), identity, clock: Date.now, schedule: setImmediate });
    return KernelClass.open({
      store,
      identity,
      journal,
      clock: Date.now,
      randomBytes: random,
      setTimer,
      policies: SHIPPED_POLICIES,
      merges: SHIPPED_MERGES,
      ...(snapshot ? { snapshot: { format: SNAPSHOT_FORMAT, position: positionAt(snapshot.seq), parts: snapshot.parts } } : {}),
    });
  };
  const { offsets } = Journal.parse(journalBytes, identity.principal);
  /** Where record `seq` starts, and the record before it. */
  const positionAt = (seq: number) =>
    seq === 0 ? { seq, offset: 0, head: null, last: 0 } : { seq, offset: offsets[seq]!, head: recordCid(journalBytes.subarray(offsets[seq - 1]! + 4, offsets[seq])), last: offsets[seq - 1]! };
  const whole = await kernelOn(journalBytes.length);
  const expected = whole.stateSnapshot();
  await whole.close();
  t.true(offsets.length > 60, `the home wrote ${offsets.length} records`);
  // Every record boundary would be slow to try; every seventh, and the first and last, cover each kind.
  const cuts = [...offsets.keys()].filter((seq) => seq % 7 === 0 || seq === offsets.length - 1);
  for (const seq of cuts) {
    const before = await kernelOn(offsets[seq]!);
    const parts = decodeTrusted(before.stateSnapshot()) as PartsSnapshot;
    await before.close();
    const restored = await kernelOn(journalBytes.length, { seq, parts });
    const state = restored.stateSnapshot();
    await restored.close();
    t.deepEqual(state, expected, `restored at record ${seq} of ${offsets.length}`);
  }
});

test('a home reopens from its snapshot, and from the whole journal when the snapshot is missing, stale, garbled or of another journal: the same state each way', async (t) => {
  const dir = await tempDir(t);
  const home = await busyHome(dir);
  const stateOf = async (at: string) => {
    const kernel = await openKernel({ home: at });
    const state = kernel.stateSnapshot();
    await kernel.close();
    return state;
  };
  const stored = () => {
    const database = openDatabase(join(home, 'db'));
    const bytes = databaseSnapshots(database).load();
    return database.close().then(() => bytes);
  };
  const first = await stored();
  const snapshot = first && decodeSnapshot(first);
  t.truthy(snapshot, 'closing the home left a snapshot');
  t.is(snapshot!.position.offset, (await stat(join(home, 'journal', '0000000000000000'))).size, 'standing at the journal’s end');
  const expected = await stateOf(home);

  const copy = async (name: string, change: (at: string) => Promise<void>) => {
    const at = join(dir, name);
    await cp(home, at, { recursive: true });
    await change(at);
    return stateOf(at);
  };
  t.deepEqual(await copy('no-db', (at) => rm(join(at, 'db'), { recursive: true })), expected, 'rebuilt from the journal');
  t.deepEqual(
    await copy('garbled', async (at) => {
      const database = openDatabase(join(at, 'db'));
      await databaseSnapshots(database).save(new Uint8Array([0xff, 0x00, 0x13]));
      await database.close();
    }),
    expected,
    'a snapshot that does not decode is ignored',
  );
  // A snapshot from before the last records: they are replayed on top of it.
  const early = join(dir, 'early');
  await cp(home, early, { recursive: true });
  const kernel = await openKernel({ home: early });
  const code = await kernel.publish('export const one = () => 1;');
  for (let i = 0; i < 5; i++) await kernel.call(await kernel.issue({ code, export: 'one', env: { i } }), []);
  const later = kernel.stateSnapshot();
  await kernel.flush();
  const journalNow = await readFile(join(early, 'journal', '0000000000000000'));
  await kernel.close();
  await rm(join(early, 'db'), { recursive: true });
  await cp(join(home, 'db'), join(early, 'db'), { recursive: true });
  t.deepEqual(await stateOf(early), later, 'a stale snapshot, the records after it replayed');
  t.notDeepEqual(later, expected);
  // The journal of another home under this one's snapshot: its record at the snapshot's position differs.
  const other = await busyHome(join(dir, 'elsewhere'));
  t.deepEqual(
    await copy('swapped', async (at) => {
      await cp(join(other, 'journal'), join(at, 'journal'), { recursive: true });
      await cp(join(other, 'identity'), join(at, 'identity'));
      await cp(join(other, 'blocks'), join(at, 'blocks'), { recursive: true });
    }),
    await stateOf(other),
    'a snapshot of another journal is ignored',
  );
  t.true(journalNow.length > 0);
});

test('what the web page lists (Kernel.hosted) is state: the closures issued here with the calls asked of each, and the delegations, alike from a snapshot and from a rebuild', async (t) => {
  const dir = await tempDir(t);
  const home = await busyHome(dir);
  const hostedAt = async (at: string) => {
    const kernel = await openKernel({ home: at });
    const hosted = kernel.hosted();
    const revoked = hosted.tokens.filter(({ token }) => kernel.isRevoked(token)).map(({ export: name }) => name);
    await kernel.close();
    return { ...hosted, revoked };
  };
  const fromSnapshot = await hostedAt(home);
  const byName = new Map(fromSnapshot.tokens.map((token) => [token.export, token]));
  // busyHome: twelve calls, every third on `refuse`; the others on `double` (some answered from the cache), and three more through its delegation.
  t.is(byName.get('refuse')?.calls, 4);
  t.is(byName.get('double')?.calls, 8 + 3);
  t.deepEqual(fromSnapshot.revoked, ['refuse']);
  t.is(fromSnapshot.delegations, 2, 'the rate-limited delegation and the budget’s write token delegated to the other node');
  await rm(join(home, 'db'), { recursive: true });
  t.deepEqual(await hostedAt(home), fromSnapshot, 'rebuilt from the whole journal');
});
