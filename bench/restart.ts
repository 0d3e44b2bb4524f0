/**
 * `npm run bench -- durable`: how long a node takes to start, and what it
 * holds after, as its journal grows (issue 16: ≤ 1 s to listening at 1M and
 * 10M records, RSS independent of the journal's length).
 *
 * For each size in RESTART_RECORDS (default 100,000 and 1,000,000; the
 * README quotes a 10,000,000 run too): a home with a real closure, then that
 * many records appended straight to its journal by the journal itself —
 * calls on the closure by a few callers and their pure answers, sealed as a
 * node seals them — so the journal is the one a busy node leaves, without
 * spending an hour making it. Then `grid start` three times, each timed from
 * spawn to its first line (it prints once listening) and probed for memory
 * (bench/memory-probe.mjs: RSS and anonymous RSS after a collection, 2 s after start):
 * first with no database (a rebuild from the whole journal, as after
 * `grid repair` or on a home from before the database), then twice from
 * the snapshot the node before it kept at its shutdown. Baseline: the same
 * `grid start` on a home of a few records.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal } from '../dist/journal/journal.js';
import { listSegments, openSegmentedJournal } from '../dist/journal/segments.js';
import { loadIdentity, generateIdentity } from '../dist/identity/index.js';
import { encodeValue } from '../dist/closures/values.js';
import { row, type Row } from './measure.js';

const SIZES = (process.env.RESTART_RECORDS ?? '100000,1000000').split(',').map(Number);
const random = (n: number) => new Uint8Array(randomBytes(n));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const bin = join(process.cwd(), 'bin', 'grid.js');

const grid = (home: string, args: string[]) =>
  new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args, '--home', home], { env: { ...process.env, GRID_HOME: '' }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`grid ${args[0]} exited ${code}`))));
  });

/** Append `count` records to the home's journal: calls on `token` by a few callers, each answered (pure). */
const synthesize = async (home: string, token: string, count: number) => {
  const identity = await loadIdentity(join(home, 'identity'));
  const { journal } = await Journal.open({ file: await openSegmentedJournal(join(home, 'journal'), { write: true }), identity, clock: Date.now, schedule: (write) => void setImmediate(write) });
  const callers = Array.from({ length: 8 }, () => generateIdentity(random).principal);
  for (let i = 0; i < count / 2; i++) {
    const call = journal.append({ kind: 'call', token: token as never, caller: callers[i % callers.length]!, args: encodeValue([i, 1]) });
    journal.append({ kind: 'fulfilled', call: call.seq, value: encodeValue(i + 1), pure: true });
    if (i % 512 === 511) await journal.written();
  }
  await journal.close();
};

/** Start a node on `home`: time to its first line (listening), memory 2 s later (after a collection), then a clean stop. */
const startOnce = async (home: string) => {
  const out = join(home, 'probe.jsonl');
  await rm(out, { force: true });
  const began = process.hrtime.bigint();
  const node = spawn(process.execPath, ['--expose-gc', `--import=${join(process.cwd(), 'bench', 'memory-probe.mjs')}`, bin, 'start', '--home', home, '--json'], {
    env: { ...process.env, GRID_HOME: '', MEMORY_PROBE_OUT: out },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    node.stdout!.once('data', () => resolve());
    node.once('exit', (code) => reject(new Error(`grid start exited ${code}`)));
  });
  const startNs = Number(process.hrtime.bigint() - began);
  await sleep(2_000);
  node.kill('SIGHUP');
  let figures: { rss: number; anon: number; heapUsed: number } | undefined;
  while (!figures) {
    await sleep(100);
    const line = (await readFile(out, 'utf8').catch(() => '')).trim();
    if (line) figures = JSON.parse(line);
  }
  node.kill('SIGTERM');
  await new Promise((resolve) => node.once('exit', resolve));
  return { startNs, ...figures };
};

const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;

export const benchRestart = async (): Promise<Row[]> => {
  const rows: Row[] = [];
  const small = await mkdtemp(join(tmpdir(), 'grid-bench-restart-'));
  try {
    await grid(small, ['init']);
    const base = await startOnce(small);
    const baseline = { name: 'grid start, a new home (to listening)', median_ns: base.startNs };
    rows.push(row(baseline.name, base.startNs));
    console.log(`a new home: RSS ${mib(base.rss)} (anonymous ${mib(base.anon)}), heap ${mib(base.heapUsed)}`);
    for (const size of SIZES) {
      const home = await mkdtemp(join(tmpdir(), 'grid-bench-restart-'));
      try {
        await grid(home, ['init']);
        await writeFile(join(home, 'add.js'), 'export const add = (ctx, a, b) => a + b;');
        const token = await grid(home, ['issue', join(home, 'add.js'), '--export', 'add']);
        const made = process.hrtime.bigint();
        await synthesize(home, token, size);
        const journalBytes = (await listSegments(join(home, 'journal'))).reduce((n, segment) => n + segment.size, 0);
        console.log(`${size.toLocaleString('en')} records: journal ${mib(journalBytes)} (${Math.round(journalBytes / size)} B a record), written in ${(Number(process.hrtime.bigint() - made) / 1e9).toFixed(1)} s`);
        const label = `${size.toLocaleString('en')} records`;
        for (const run of ['rebuild (no database)', 'restart', 'restart again'] as const) {
          const once = await startOnce(home);
          rows.push(row(`grid start, ${label}, ${run}`, once.startNs, baseline));
          console.log(`  ${run}: to listening ${(once.startNs / 1e9).toFixed(2)} s; RSS ${mib(once.rss)} (anonymous ${mib(once.anon)}), heap ${mib(once.heapUsed)}`);
        }
        const dbBytes = await stat(join(home, 'db', 'data.mdb')).then((s) => s.size, () => 0);
        console.log(`  database ${mib(dbBytes)} (${Math.round(dbBytes / size)} B a record)`);
      } finally {
        await rm(home, { recursive: true, force: true });
      }
    }
  } finally {
    await rm(small, { recursive: true, force: true });
  }
  return rows;
};
