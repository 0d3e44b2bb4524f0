/**
 * `npm run bench -- gc`: `grid gc` on a home of about GC_BLOCKS blocks
 * (default 100,000): closures whose envs link index blocks that link
 * leaves (the live tree), a document with a few hundred versions, and
 * garbage — a tree nothing names and revoked closures — about 40% of it.
 * Timed and measured (peak RSS) as a `grid gc` process, against two
 * baselines in the same run: `grid gc` on a new home (what starting a
 * command costs) and reading and hashing every block file once in this
 * process (the least a collector that verifies what it keeps must do).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openKernel } from '../dist/home/open.js';
import { openFsBlockStore } from '../dist/store/index.js';
import { encode } from '../dist/wire/index.js';
import { DAG_CBOR_CODEC } from '../dist/interface/ids.js';
import { row, type Row } from './measure.js';

const TOTAL = Number(process.env.GC_BLOCKS ?? 100_000);
const FAN = 100;
const bin = join(process.cwd(), 'bin', 'grid.js');
/** Loaded into the `grid gc` process: its resource use, written at exit. */
const PROBE = `data:text/javascript,import{writeFileSync}from'node:fs';process.on('exit',()=>writeFileSync(process.env.GC_PROBE_OUT,JSON.stringify(process.resourceUsage())))`;

const gcOnce = async (home: string, extra: string[] = []) => {
  const out = join(home, 'probe.json');
  const began = process.hrtime.bigint();
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [`--import=${PROBE}`, bin, 'gc', '--json', ...extra, '--home', home], { env: { ...process.env, GRID_HOME: '', GC_PROBE_OUT: out }, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (chunk) => (text += chunk));
    child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`grid gc exited ${code}`))));
  });
  const ns = Number(process.hrtime.bigint() - began);
  const usage = JSON.parse(await readFile(out, 'utf8')) as { maxRSS: number };
  return { ns, maxRss: usage.maxRSS * 1024, report: JSON.parse(stdout) as { total: { blocks: number; bytes: number }; collected: { blocks: number; bytes: number }; ms: number } };
};

const eachBlock = async (dir: string, visit: (path: string) => Promise<void>) => {
  for (const shard of await readdir(dir, { withFileTypes: true })) {
    if (!shard.isDirectory()) continue;
    const names = await readdir(join(dir, shard.name));
    for (let i = 0; i < names.length; i += 16) await Promise.all(names.slice(i, i + 16).map((name) => visit(join(dir, shard.name, name))));
  }
};

/** A home of about `total` blocks, 60% of them live; returns how many blocks are garbage. */
const buildHome = async (home: string, total: number) => {
  const kernel = await openKernel({ home, limits: { vats: 1 } });
  const store = openFsBlockStore(join(home, 'blocks'));
  const putData = async (value: unknown) => (await store.put(encode(value), { codec: DAG_CBOR_CODEC })).toString();
  /** A tree of index blocks over `leaves` leaves; returns the index blocks' CIDs. */
  const tree = async (leaves: number, tag: string) => {
    const indexes: string[] = [];
    for (let i = 0; i < leaves; i += FAN) {
      const batch = await Promise.all(Array.from({ length: Math.min(FAN, leaves - i) }, (_, j) => putData({ tag, leaf: i + j, text: `leaf ${i + j} of ${tag}` })));
      indexes.push(await putData({ tag, links: batch.map((cid) => ({ '/': cid })) }));
    }
    return indexes;
  };
  try {
    const code = await kernel.publish('export const get = (ctx) => ctx.env.index;\nexport const update = (ctx, state, change) => ({ n: state.n + change.add });\n');
    const live = await tree(Math.round(total * 0.6), 'live');
    for (const index of live) await kernel.issue({ code, export: 'get', env: { index: { '/': index } } });
    const reducer = await kernel.issue({ code, export: 'update' });
    const doc = await kernel.docs.create({ reducer, init: { n: 0 } });
    for (let i = 0; i < 300; i++) await kernel.docs.apply(doc.write, { add: 1 });
    const garbageIndexes = await tree(Math.round(total * 0.38), 'garbage');
    let garbage = garbageIndexes.length + Math.round(total * 0.38);
    for (let i = 0; i < 300; i++) {
      const token = await kernel.issue({ code, export: 'get', env: { n: i } });
      await kernel.revoke(token);
      garbage += 1;
    }
    return garbage;
  } finally {
    await kernel.close();
  }
};

const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;

export const benchGc = async (): Promise<Row[]> => {
  const small = await mkdtemp(join(tmpdir(), 'grid-bench-gc-'));
  const home = await mkdtemp(join(tmpdir(), 'grid-bench-gc-'));
  try {
    await (await openKernel({ home: small })).close();
    const base = await gcOnce(small);
    const made = process.hrtime.bigint();
    const garbage = await buildHome(home, TOTAL);
    // Old enough that no grace period keeps anything.
    const then = new Date(Date.now() - 40 * 86_400_000);
    await eachBlock(join(home, 'blocks'), (path) => utimes(path, then, then));
    console.log(`home built in ${(Number(process.hrtime.bigint() - made) / 1e9).toFixed(1)} s`);
    // Baseline: read and hash every block once, in this process.
    const readBegan = process.hrtime.bigint();
    let files = 0;
    await eachBlock(join(home, 'blocks'), async (path) => {
      createHash('sha256').update(await readFile(path)).digest();
      files += 1;
    });
    const readNs = Number(process.hrtime.bigint() - readBegan);
    const dry = await gcOnce(home, ['--dry-run']);
    const once = await gcOnce(home);
    const again = await gcOnce(home);
    const rows = [row('grid gc, a new home', base.ns), row(`read and hash ${files.toLocaleString('en')} block files`, readNs)];
    const baseline = { name: 'read and hash every block', median_ns: readNs };
    rows.push(row(`grid gc, ${files.toLocaleString('en')} blocks, dry run`, dry.ns, baseline));
    rows.push(row(`grid gc, ${files.toLocaleString('en')} blocks`, once.ns, baseline));
    rows.push(row(`grid gc again, ${once.report.total.blocks - once.report.collected.blocks} blocks, nothing to collect`, again.ns, baseline));
    console.log(`a new home: grid gc ${(base.ns / 1e9).toFixed(2)} s, peak RSS ${mib(base.maxRss)}`);
    for (const [label, run] of [['dry run', dry], ['collect', once], ['again', again]] as const) {
      const { total, collected, ms } = run.report;
      console.log(
        `${label}: ${total.blocks.toLocaleString('en')} blocks (${mib(total.bytes)}), ${collected.blocks.toLocaleString('en')} collected (${mib(collected.bytes)}; ${garbage.toLocaleString('en')} made as garbage): ` +
          `process ${(run.ns / 1e9).toFixed(2)} s (gc itself ${(ms / 1000).toFixed(2)} s), peak RSS ${mib(run.maxRss)}`,
      );
    }
    return rows;
  } finally {
    await rm(small, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  }
};
