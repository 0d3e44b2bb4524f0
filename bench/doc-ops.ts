/**
 * Documents on one node, against their baselines in the same run:
 * - applying a change (the write call, the reducer in a vat, the value,
 *   change and signed version stored, the head journaled) vs a warm
 *   executing call of the same reducer as a plain closure (issue: ≤ 2×);
 * - reading the current value vs a pure-cache hit (issue: ≤ 2×): the
 *   owner's own read (kernel.docs.read on a role token held here) and a
 *   read as a call (what a peer or a delegated token makes);
 * - a merge of two 1,000-change branches by the document's json step
 *   (replica ingest, replay, cascade) vs the same merge called directly;
 * - memory per version stored (heap and ArrayBuffers after GC, over 5,000 versions).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openKernel } from '../dist/index.js';
import { mediansInTurns, row, type Row } from './measure.js';

const COUNTER = `
export const update = (ctx, state, change) => {
  if (!Number.isSafeInteger(change?.add)) ctx.revoke('a change is { add: n }');
  return { n: state.n + change.add, last: change.add };
};`;

const ok = (outcome: { status: string }) => {
  if (outcome.status !== 'fulfilled') throw new Error(`expected a value: ${JSON.stringify(outcome)}`);
  return outcome as { status: 'fulfilled'; value: unknown };
};

const gc = () => (globalThis as { gc?: () => void }).gc?.();

export const benchDocOps = async (): Promise<Row[]> => {
  const rows: Row[] = [];
  const kernel = await openKernel({ memory: true, limits: { vats: 1 } });
  try {
    const code = await kernel.publish(COUNTER);
    const reducer = await kernel.issue({ code, export: 'update' });
    const doc = await kernel.docs.create({ reducer, init: { n: 0, last: 0 } });
    const pure = await kernel.issue({ code: await kernel.publish('export const twice = (ctx, n) => n * 2;'), export: 'twice' });
    ok(await kernel.call(pure, [21]));
    const times = await mediansInTurns(
      {
        // Distinct arguments each time: the reducer as a closure, executed, never a cache hit.
        warm: (i) => kernel.call(reducer, [{ n: i, last: 0 }, { add: 1 }]).then(ok),
        apply: (i) => kernel.docs.apply(doc.write, { add: i + 1 }).then(ok),
        hit: () => kernel.call(pure, [21]).then(ok),
        read: () => kernel.docs.read(doc.read).then(ok),
        readCall: () => kernel.call(doc.read, []).then(ok),
      },
      { rounds: 10, perRound: 100, warmup: 200 },
    );
    const warm = { name: 'warm executing call (the reducer as a closure)', median_ns: times.warm! };
    rows.push(row(warm.name, warm.median_ns));
    rows.push(row('apply a change (reducer in a vat, signed version)', times.apply!, warm));
    const hit = { name: 'pure-cache hit', median_ns: times.hit! };
    rows.push(row(hit.name, hit.median_ns));
    rows.push(row("read the current value (the owner's own: no call)", times.read!, hit));
    rows.push(row('read it as a call (the read of the current version: a cache hit after the first)', times.readCall!, hit));

  } finally {
    await kernel.close();
  }

  // Memory per version, on a home (blocks on disk): heap after GC across 5,000 changes. It counts the
  // journal's records of each change too (the write call, its answer, the head), which every node keeps
  // in memory today (the long-running-node issue moves them out).
  const home = await mkdtemp(join(tmpdir(), 'grid-bench-docs-'));
  const onDisk = await openKernel({ home, create: true, limits: { vats: 1 } });
  try {
    const reducer = await onDisk.issue({ code: await onDisk.publish(COUNTER), export: 'update' });
    const doc = await onDisk.docs.create({ reducer, init: { n: 0, last: 0 } });
    for (let i = 0; i < 200; i++) ok(await onDisk.docs.apply(doc.write, { add: 1 }));
    gc();
    const before = process.memoryUsage();
    for (let i = 0; i < 5000; i++) ok(await onDisk.docs.apply(doc.write, { add: 1 }));
    gc();
    const after = process.memoryUsage();
    const each = (field: 'heapUsed' | 'arrayBuffers') => Math.round((after[field] - before[field]) / 5000);
    console.log(`memory per version stored (home on disk, after GC${(globalThis as { gc?: unknown }).gc ? '' : ': no --expose-gc, so noisy'}): ${each('heapUsed')} bytes of heap, ${each('arrayBuffers')} of ArrayBuffers`);
  } finally {
    await onDisk.close();
    await rm(home, { recursive: true, force: true });
  }

  // Two replicas, 1,000 changes each apart, then one merge by the json step.
  const alice = await openKernel({ memory: true, limits: { vats: 1 } });
  const bob = await openKernel({ memory: true, limits: { vats: 1 } });
  try {
    const todo = await alice.publish(await readFile(new URL('../examples/todo.js', import.meta.url), 'utf8'));
    const reducer = await alice.issue({ code: todo, export: 'update', replicable: true });
    const doc = await alice.docs.create({ reducer, merges: ['json'], init: { items: [] } });
    for (const token of await alice.docs.closuresOf(doc.doc)) await bob.adopt(token as never, await alice.replica(token, bob.principal));
    await bob.docs.ingest(await alice.docs.bundle(doc.doc, []), alice.principal);
    const bobWrite = await alice.delegate({ token: doc.write, to: [bob.principal] });
    await bob.importChain(bobWrite, (await alice.chainBlocks(bobWrite))!);
    // 1,000 changes a side on items of its own: 250 adds, 250 ticked done, 250 removed, 250 more adds (the list holds 500 at most).
    const side = async (kernel: typeof alice, token: string, who: string) => {
      for (const change of ['add', 'done', 'remove']) for (let i = 0; i < 250; i++) ok(await kernel.docs.apply(token, { [change]: `${who} ${i}` }));
      for (let i = 0; i < 250; i++) ok(await kernel.docs.apply(token, { add: `${who} more ${i}` }));
    };
    await side(alice, doc.write, 'alice');
    await side(bob, bobWrite, 'bob');
    const bundle = await bob.docs.bundle(doc.doc, alice.docs.held()[0]!.heads);
    const start = process.hrtime.bigint();
    const taken = await alice.docs.ingest(bundle, bob.principal);
    const ingestNs = Number(process.hrtime.bigint() - start);
    if (taken.accepted !== 1000 || alice.docs.held()[0]!.heads.length !== 1) throw new Error(`merge did not converge: ${JSON.stringify(taken).slice(0, 300)}`);
    rows.push(row('replica takes 1,000 versions (check, replay) and merges', ingestNs));
    rows.push({ name: '  versions taken a second', median_ns: Math.round(ingestNs / 1000), ops_per_s: Math.round(1000 / (ingestNs / 1e9)) });
  } finally {
    await alice.close();
    await bob.close();
  }
  return rows;
};
