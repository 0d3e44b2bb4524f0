/**
 * Issue 16: a journal of N synthetic records (calls on 1,000 tokens by 200
 * callers, mostly fulfilled, some hits, revoked and promised, delegations)
 * written to a home, then measured:
 *
 *   write DIR N      make the home and its journal
 *   open DIR         heap and RSS after `Journal.open` (GRID_SRC=/other/src measures another tree's journal)
 *   index DIR        build the record index in the home's database, reopen it, time the queries
 *
 * node --expose-gc --import=./test/_preload.mjs --import=tsx bench/journal-index.ts write /tmp/j1m 1000000
 */
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { stat } from 'node:fs/promises';

const SRC = process.env.GRID_SRC ?? new URL('../src/', import.meta.url).pathname;
const load = (path: string) => import(pathToFileURL(join(SRC, path)).href);

const [phase, dir, countText] = process.argv.slice(2);
if (!phase || !dir) throw new Error('usage: journal-index.ts write|open|index DIR [N]');

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const memory = () => {
  global.gc?.();
  global.gc?.();
  const { heapUsed, rss } = process.memoryUsage();
  return `heap ${mib(heapUsed)}, RSS ${mib(rss)}`;
};
const ms = (started: bigint) => `${(Number(process.hrtime.bigint() - started) / 1e6).toFixed(1)} ms`;

await load('perimeter/lockdown.ts');
const { homePaths } = await load('home/home.ts');
const { loadIdentity } = await load('identity/index.ts');
const { Journal } = await load('journal/journal.ts');
const { listSegments, openSegmentedJournal } = await load('journal/segments.ts');
const paths = homePaths(dir);

if (phase === 'write') {
  const { openKernel } = await load('home/open.ts');
  const { encodeValue } = await load('closures/values.ts');
  const { blockCid } = await load('store/hashing.ts');
  const { encode } = await load('wire/index.ts');
  (await openKernel({ home: dir, create: true })).close();
  const identity = await loadIdentity(paths.identity);
  const { journal } = await Journal.open({ file: await openSegmentedJournal(paths.journal, { write: true }), identity, clock: Date.now, schedule: setImmediate });
  const count = Number(countText ?? 1_000_000);
  const tokens = Array.from({ length: 1000 }, (_, i) => blockCid(encode({ closure: i }), 0x71).toString());
  const callers = Array.from({ length: 200 }, (_, i) => `did:key:z6Mk${String(i).padStart(44, 'x')}`);
  const code = blockCid(encode({ module: 0 }), 0x55).toString();
  for (let i = 0; i < 1000; i++) {
    journal.append({ kind: 'issue', token: tokens[i], code, export: 'f', issuer: identity.principal });
    journal.append({ kind: 'wrap', token: blockCid(encode({ wrap: i }), 0x71).toString(), inner: tokens[i], delegator: identity.principal, audience: [callers[i % 200]], policies: [], issuer: identity.principal });
  }
  const started = process.hrtime.bigint();
  for (let n = 0; journal.length < count; n++) {
    const token = tokens[n % 1000];
    const caller = callers[n % 200];
    if (n % 5 === 4) {
      journal.append({ kind: 'hit', token, caller, from: 2001 });
      continue;
    }
    const call = journal.append({ kind: 'call', token, caller, args: encodeValue([n, 'x']) });
    if (n % 100 === 7) journal.append({ kind: 'promised', call: call.seq, token });
    else if (n % 20 === 3) journal.append({ kind: 'revoked', call: call.seq, reason: 'no', code: 'other' });
    else journal.append({ kind: 'fulfilled', call: call.seq, value: encodeValue(n), pure: true });
    if (n % 2000 === 0) await journal.written();
  }
  await journal.close();
  console.log(`wrote ${journal.length} records, ${mib((await listSegments(paths.journal)).reduce((n: number, segment: { size: number }) => n + segment.size, 0))} in ${ms(started)}`);
} else if (phase === 'open') {
  console.log(`before open: ${memory()}`);
  const identity = await loadIdentity(paths.identity);
  const started = process.hrtime.bigint();
  const { journal } = await Journal.open({ file: await openSegmentedJournal(paths.journal, { write: true }), identity, clock: Date.now, schedule: setImmediate });
  const took = ms(started);
  console.log(`${SRC}: Journal.open of ${journal.length} records in ${took}; after: ${memory()}`);
  await journal.close();
} else if (phase === 'index') {
  const { openDatabase, tableOf } = await load('db/database.ts');
  const { lmdbListStore, RecordIndex } = await load('db/records.ts');
  const { RecordQueries } = await load('journal/record-queries.ts');
  const { GraphIndex, renderTree } = await load('journal/queries.ts');
  const { entriesAround } = await load('journal/graph.ts');
  const identity = await loadIdentity(paths.identity);
  const openAll = async () => {
    const { journal } = await Journal.open({ file: await openSegmentedJournal(paths.journal, { write: true }), identity, clock: Date.now, schedule: setImmediate });
    const database = openDatabase(paths.db);
    const started = process.hrtime.bigint();
    const opened = await RecordIndex.open(journal, lmdbListStore(tableOf(database, 'records')));
    console.log(`index open (${opened.rebuilt ? `rebuilt: ${opened.rebuilt}` : 'up to date'}, ${opened.caughtUp} records read): ${ms(started)}; ${memory()}`);
    return { journal, database, records: new RecordQueries(journal, opened.index) };
  };
  let { journal, database, records } = await openAll();
  await journal.close();
  await database.close();
  ({ journal, database, records } = await openAll());
  const size = async (path: string) => (await stat(path)).size;
  console.log(`journal ${mib((await listSegments(paths.journal)).reduce((n: number, segment: { size: number }) => n + segment.size, 0))}, database ${mib(await size(join(paths.db, 'data.mdb')))}`);
  const [token] = (await records.calls({ caller: 'did:key:z6Mk' + '7'.padStart(44, 'x') })).map((v: { call: { token: string } }) => v.call.token);
  const time = async (name: string, op: () => Promise<unknown>, runs = 5) => {
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const started = process.hrtime.bigint();
      await op();
      times.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    times.sort((a, b) => a - b);
    console.log(`${name}: median ${times[Math.floor(runs / 2)]!.toFixed(1)} ms (first ${times[0]!.toFixed(1)}, last ${times.at(-1)!.toFixed(1)})`);
  };
  await time('show(token)', async () => renderTree(await records.show(token)));
  await time('who(token)', () => records.who(token));
  await time('origin(token)', () => records.origin(token));
  await time('calls({ token })', () => records.calls({ token }));
  await time('calls({ caller })', () => records.calls({ caller: 'did:key:z6Mk' + '7'.padStart(44, 'x') }));
  await time('pending({ limit: 100 })', () => records.pending({ limit: 100 }));
  await time('broken({ limit: 100 })', () => records.broken({ limit: 100 }));
  await time('around(token) (grid graph TOKEN)', () => records.around(token), 3);
  await time('disclosure-size around(wrap)', async () => records.around((await records.who(token))[1]?.through[0] ?? token), 3);
  console.log(`after the queries: ${memory()}`);
  // Before: every record read into memory, indexed, then asked.
  const started = process.hrtime.bigint();
  const all: unknown[] = [];
  for await (const entry of journal.read(0)) all.push(entry);
  const graph = new GraphIndex();
  for (const entry of all) graph.add(entry);
  console.log(`before (whole journal in memory + GraphIndex): ${ms(started)} to load; ${memory()}`);
  await time('before: show(token)', async () => renderTree(graph.show(token)));
  await time('before: entriesAround(all as never, token)', async () => entriesAround(all, token), 3);
  await journal.close();
  await database.close();
}
