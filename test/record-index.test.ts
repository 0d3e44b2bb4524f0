/**
 * Issue 16: the record index in the home's database. Queries answered from
 * it equal the same queries over the whole journal; an index left behind
 * (a kill between the journal's write and the database's commit) is caught
 * up at open, and one that is missing, ahead or not this journal's is
 * rebuilt from the journal.
 */
import '../src/perimeter/lockdown.js';
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { cp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { openKernel, type Kernel, type Token } from '../src/index.js';
import { entriesAround } from '../src/journal/graph.js';
import { GraphIndex } from '../src/journal/queries.js';
import { Journal, memoryJournalFile, type Entry } from '../src/journal/journal.js';
import { openFsJournalFile } from '../src/journal/fs-file.js';
import { RecordQueries } from '../src/journal/record-queries.js';
import { lmdbListStore, memoryListStore, RecordIndex } from '../src/db/records.js';
import { openDatabase, tableOf } from '../src/db/database.js';
import { followedListStore } from '../src/db/followed-records.js';
import { generateIdentity, loadIdentity } from '../src/identity/index.js';
import { homePaths } from '../src/home/home.js';
import { journalEntries, tempDir } from './_helpers.js';

const MODULE = `
  export const add = (ctx, a, b) => a + b;
  export const relay = (ctx, x) => ctx.call(ctx.env.target, x, 1);
  export const later = (ctx) => ctx.issue({ export: 'add' });
  export const fail = (ctx) => ctx.revoke('no');`;

/** Tokens of a small promise graph: delegations, nested calls, cache hits, a further promise, a refusal, a revocation. */
const activity = async (alice: Kernel, bob: Kernel, round: number, tokens?: Record<string, Token>) => {
  const code = await alice.publish(MODULE);
  const add = tokens?.add ?? (await alice.issue({ code, export: 'add' }));
  const relay = tokens?.relay ?? (await alice.issue({ code, export: 'relay', env: { target: { '/': add } } }));
  const later = tokens?.later ?? (await alice.issue({ code, export: 'later' }));
  const fail = tokens?.fail ?? (await alice.issue({ code, export: 'fail' }));
  const toBob = tokens?.toBob ?? (await alice.delegate({ token: add, to: [bob.principal] }));
  for (let i = 0; i < 30; i++) await alice.call(add, [i % 7, round]); // repeats are cache hits
  await alice.call(relay, [round]);
  await alice.call(toBob, [round, 2], { caller: bob.principal });
  await alice.call(fail, [round]);
  const promised = await alice.call(later, [round]);
  if (round > 0 && promised.status === 'promised') await alice.call(promised.token, [1, 2]);
  const spare = await alice.issue({ code, export: 'add' });
  await alice.call(spare, [round, round]);
  await alice.revoke(spare, `round ${round} over`);
  return { add, relay, later, fail, toBob, spare };
};

/** Every answer the queries give, from the index. */
const answers = async (records: RecordQueries, tokens: readonly Token[], callers: readonly string[]) => ({
  shows: await Promise.all(tokens.map((token) => records.show(token, undefined, 5))),
  who: await Promise.all(tokens.map((token) => records.who(token))),
  callsOn: await Promise.all(tokens.map((token) => records.calls({ token }))),
  callsBy: await Promise.all(callers.map((caller) => records.calls({ caller }))),
  allCalls: await records.calls({ since: 0 }),
  pending: await records.pending(),
  broken: await records.broken(),
  around: await Promise.all(tokens.map((token) => records.around(token))),
});

/** The same answers from the whole journal. */
const expected = (entries: readonly Entry[], tokens: readonly Token[], callers: readonly string[]) => {
  const graph = new GraphIndex();
  for (const entry of entries) graph.add(entry);
  return {
    shows: tokens.map((token) => graph.show(token, undefined, 5)),
    who: tokens.map((token) => graph.who(token)),
    callsOn: tokens.map((token) => graph.calls({ token })),
    callsBy: callers.map((caller) => graph.calls({ caller })),
    allCalls: graph.calls({ since: 0 }),
    pending: graph.pending(),
    broken: [...graph.broken()],
    around: tokens.map((token) => entriesAround(entries, token)),
  };
};

const plain = (value: unknown) => JSON.parse(JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)));

const home = async (t: ExecutionContext) => {
  const dir = await tempDir(t);
  const bob = await openKernel({ memory: true });
  t.teardown(() => bob.close());
  return { dir, bob };
};

/** Open the home's journal and its index in the database as a kernel does: how the index was brought up to date, and its queries. */
const openIndex = async (dir: string) => {
  const paths = homePaths(dir);
  const identity = await loadIdentity(paths.identity);
  const { journal } = await Journal.open({ file: await openFsJournalFile(join(paths.journal, '0000000000000000')), identity, clock: Date.now, schedule: setImmediate });
  const database = openDatabase(paths.db);
  const opened = await RecordIndex.open(journal, lmdbListStore(tableOf(database, 'records')));
  const records = new RecordQueries(journal, opened.index);
  return {
    ...opened,
    journal,
    records,
    close: async () => {
      await journal.close();
      await opened.index.settled();
      await database.close();
    },
  };
};

test('queries answered from the index in the database equal the same queries over the whole journal, and in memory too', async (t) => {
  const { dir, bob } = await home(t);
  const alice = await openKernel({ home: dir });
  const tokens = await activity(alice, bob, 0);
  await activity(alice, bob, 1, tokens);
  const list = Object.values(tokens);
  const callers = [alice.principal, bob.principal];
  const entries = await journalEntries(alice.journal);
  t.deepEqual(plain(await answers(alice.records, list, callers)), plain(expected(entries, list, callers)));
  t.true((await alice.records.broken()).length >= 4);
  t.true((await alice.records.pending()).length >= 1);
  // Paginated: pages after a record number, of a given size, make up the whole.
  const broken = await alice.records.broken();
  const firstPage = await alice.records.broken({ limit: 2 });
  const rest = await alice.records.broken({ after: firstPage.at(-1)!.seq });
  t.deepEqual([...firstPage, ...rest], broken);
  // So do a token's calls, and a caller's.
  for (const filter of [{ token: tokens.add }, { caller: alice.principal }]) {
    const all = await alice.records.calls(filter);
    t.true(all.length > 10, `more calls than a page (${JSON.stringify(filter)})`);
    const pages = [];
    for (let after: number | undefined; ; ) {
      const page = await alice.records.calls({ ...filter, limit: 7, ...(after === undefined ? {} : { after }) });
      if (page.length === 0) break;
      t.true(page.length <= 7);
      pages.push(...page);
      after = page.at(-1)!.call.seq;
    }
    t.deepEqual(pages, all, `pages make up the whole (${JSON.stringify(filter)})`);
  }
  await alice.close();

  // The same journal indexed in memory gives the same answers.
  const again = await openIndex(dir);
  t.is(again.rebuilt, undefined);
  t.is(again.caughtUp, 0, 'an index up to date reads no record at open');
  const inMemory = await openKernel({ memory: true });
  t.teardown(() => inMemory.close());
  const memoryIndex = (await RecordIndex.open(again.journal, memoryListStore())).index;
  t.deepEqual(plain(await answers(new RecordQueries(again.journal, memoryIndex), list, callers)), plain(await answers(again.records, list, callers)));
  await again.close();
});

test('an index left behind by a kill between the journal write and the database commit is caught up from its position', async (t) => {
  const { dir, bob } = await home(t);
  const paths = homePaths(dir);
  let alice = await openKernel({ home: dir });
  const tokens = await activity(alice, bob, 0);
  await alice.close();
  // The database as it was then: what a kill leaves when the journal got further than the database.
  await cp(paths.db, join(dir, 'db-behind'), { recursive: true });
  alice = await openKernel({ home: dir });
  await activity(alice, bob, 1, tokens);
  await alice.close();
  await rm(paths.db, { recursive: true });
  await cp(join(dir, 'db-behind'), paths.db, { recursive: true });

  const opened = await openIndex(dir);
  t.is(opened.rebuilt, undefined, 'caught up, not rebuilt');
  t.true(opened.caughtUp > 0 && opened.caughtUp < opened.journal.length, `${opened.caughtUp} of ${opened.journal.length} records read`);
  const { seq, offset, head } = opened.journal.position();
  t.deepEqual(opened.index.position(), { seq, offset, head });
  const list = Object.values(tokens);
  const callers = [bob.principal];
  const entries = await journalEntries(opened.journal);
  t.deepEqual(plain(await answers(opened.records, list, callers)), plain(expected(entries, list, callers)));
  await opened.close();
});

test('an index that is missing, ahead of the journal, or not this journal is rebuilt from the journal', async (t) => {
  const { dir, bob } = await home(t);
  const paths = homePaths(dir);
  let alice = await openKernel({ home: dir });
  const tokens = await activity(alice, bob, 0);
  await alice.close();
  await cp(paths.journal, join(dir, 'journal-then'), { recursive: true });
  alice = await openKernel({ home: dir });
  await activity(alice, bob, 1, tokens);
  await alice.close();
  const list = Object.values(tokens);
  const check = async (why: RegExp) => {
    const opened = await openIndex(dir);
    t.regex(opened.rebuilt ?? '', why);
    t.is(opened.caughtUp, opened.journal.length);
    const entries = await journalEntries(opened.journal);
    t.deepEqual(plain(await answers(opened.records, list, [bob.principal])), plain(expected(entries, list, [bob.principal])));
    await opened.close();
  };
  // Missing.
  await rm(paths.db, { recursive: true });
  await check(/missing/);
  // Ahead: the journal is the older copy, the database has indexed more.
  const newer = join(dir, 'journal-newer');
  await cp(paths.journal, newer, { recursive: true });
  await cp(join(dir, 'journal-then'), paths.journal, { recursive: true });
  await check(/ahead/);
  // Not this journal: a database from the longer journal over a journal of the same length that differs.
  await cp(newer, paths.journal, { recursive: true });
  const other = await tempDir(t);
  const stranger = await openKernel({ home: other });
  await activity(stranger, bob, 0);
  await stranger.close();
  await rm(paths.db, { recursive: true });
  await cp(homePaths(other).db, paths.db, { recursive: true });
  const opened = await openIndex(dir);
  t.truthy(opened.rebuilt, `rebuilt (${opened.rebuilt})`);
  await opened.close();
  // A kernel over the home answers as the journal says.
  alice = await openKernel({ home: dir });
  t.deepEqual(plain(await alice.records.show(tokens.add, undefined, 5)), plain(expected(await journalEntries(alice.journal), [tokens.add], []).shows[0]));
  await alice.close();
});

test('a process following a running node’s home answers from the node’s index up to where it stood, and indexes only the records after it: the same answers', async (t) => {
  const { dir, bob } = await home(t);
  const paths = homePaths(dir);
  let alice = await openKernel({ home: dir });
  const tokens = await activity(alice, bob, 0);
  await alice.close();
  const before = new Uint8Array(await readFile(join(paths.journal, '0000000000000000')));
  alice = await openKernel({ home: dir });
  await activity(alice, bob, 1, tokens);
  await alice.close();
  const after = new Uint8Array(await readFile(join(paths.journal, '0000000000000000')));
  const identity = await loadIdentity(paths.identity);
  const opened = async (bytes: Uint8Array) => (await Journal.open({ file: memoryJournalFile(bytes), identity, clock: Date.now, schedule: setImmediate })).journal;

  // The node's index when the follower looks first; then the node goes on indexing (settling calls pending before).
  const nodeStore = memoryListStore();
  await (await RecordIndex.open(await opened(before), nodeStore)).index.settled();
  const followed = followedListStore(nodeStore);
  const stoodAt = nodeStore.position()!;
  await (await RecordIndex.open(await opened(after), nodeStore)).index.settled();

  const journal = Journal.follow(memoryJournalFile(after), identity.principal, stoodAt);
  const { index, caughtUp, rebuilt } = await RecordIndex.open(journal, followed);
  t.is(rebuilt, undefined);
  t.is(caughtUp, 0);
  await journal.refresh();
  await index.settled();
  t.is(journal.length, (await journalEntries(await opened(after))).length);
  const list = Object.values(tokens);
  const callers = [alice.principal, bob.principal];
  t.deepEqual(plain(await answers(new RecordQueries(journal, index), list, callers)), plain(expected(await journalEntries(await opened(after)), list, callers)));
  t.true((await new RecordQueries(journal, index).pending()).length >= 1, 'a call pending in the node’s index and settled after is still seen settled here');
});

test('batches written while the index commits go in together, in one transaction: a fast journal does not queue a commit per batch', async (t) => {
  const identity = generateIdentity((n) => new Uint8Array(randomBytes(n)));
  const { journal } = await Journal.open({ file: memoryJournalFile(), identity, clock: Date.now, schedule: setImmediate });
  // A store whose commits wait until let go, as a database does on a busy machine.
  const inner = memoryListStore();
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const transactions: number[] = [];
  const store = { ...inner, transact: async (writes: Parameters<typeof inner.transact>[0], position: Parameters<typeof inner.transact>[1]) => {
    transactions.push(position.seq);
    await gate;
    return inner.transact(writes, position);
  } };
  const { index } = await RecordIndex.open(journal, store);
  const records = new RecordQueries(journal, index);
  const token = 'bafyreibcdy2b325hnjnx723xdtmoozr63o6cq4y5as6i5j46swgizq7w2e' as Token;
  for (let batch = 0; batch < 10; batch++) {
    const call = journal.append({ kind: 'call', token, caller: identity.principal, args: new Uint8Array([0x82, batch, 1]) });
    journal.append({ kind: 'fulfilled', call: call.seq, value: new Uint8Array([batch]), pure: true });
    await journal.written();
  }
  release();
  await index.settled();
  t.is(transactions.length, 2, 'the first batch, then the nine written while it committed');
  t.deepEqual(index.position(), (({ seq, offset, head }) => ({ seq, offset, head }))(journal.position()));
  const entries = await journalEntries(journal);
  t.deepEqual(plain(await answers(records, [token], [identity.principal])), plain(expected(entries, [token], [identity.principal])));
  await journal.close();
});
