/**
 * The shipped merge steps (merges/json.js, merges/union.js): a 3-way JSON
 * merge of two 1,000-change branches (the issue's target: ≤ 50 ms), as plain
 * JS on this thread and through kernel.call (published, issued, run in a vat,
 * journaled), against the same function called directly in the same run.
 *
 * A call's arguments hold at most 8,192 items (MAX_VALUE_ITEMS), so the
 * 5,000-element and 5,000-key cases fit only the direct call; through the
 * kernel the case is a 2,000-element list where each branch changes 1,000
 * elements (every other one).
 */
import { readFile } from 'node:fs/promises';
import { openKernel } from '../dist/index.js';
import { medianOf, mediansInTurns, row, type Row } from './measure.js';

const ctx = Object.freeze({
  revoke: (reason: string) => {
    throw new Error(reason);
  },
});
type Merge = (ctx: unknown, base: unknown, ours: unknown, theirs: unknown) => unknown;
// The grid modules themselves, imported as plain ES modules (they import nothing).
const shipped = async (file: string) => ((await import(new URL(`../merges/${file}`, import.meta.url).href)) as { merge: Merge }).merge;
const json = await shipped('json.js');
const union = await shipped('union.js');

/** A 5,000-item todo list; ours edits 500 items and inserts 500, theirs edits 500 and deletes 500, never at the same place. */
const listCase = () => {
  const base = Array.from({ length: 5000 }, (_, i) => ({ id: i, title: `item ${i}`, done: false }));
  const ours: unknown[] = [];
  const theirs: unknown[] = [];
  base.forEach((item, i) => {
    // ours: 500 edits (i ≡ 0 mod 10) and 500 inserts (after i ≡ 5); theirs: 500 edits (i ≡ 3) and 500 deletes (i ≡ 8).
    ours.push(i % 10 === 0 ? { ...item, done: true } : item);
    if (i % 10 === 5) ours.push({ id: 10_000 + i, title: `new ${i}`, done: false });
    if (i % 10 === 3) theirs.push({ ...item, title: `edited ${i}` });
    else if (i % 10 !== 8) theirs.push(item);
  });
  return { base, ours, theirs, expectedLength: 5000 + 500 - 500 };
};

/** A 5,000-key record; each side changes or adds 1,000 keys of its own. */
const recordCase = () => {
  const base: Record<string, unknown> = {};
  for (let i = 0; i < 5000; i++) base[`k${i}`] = { n: i, note: `note ${i}` };
  const ours: Record<string, unknown> = { ...base };
  const theirs: Record<string, unknown> = { ...base };
  for (let i = 0; i < 1000; i++) {
    ours[`k${2 * i}`] = { n: -i, note: `ours ${i}` };
    if (i % 2 === 0) theirs[`k${2 * i + 1}`] = { n: i, note: `theirs ${i}` };
    else theirs[`new${i}`] = i;
  }
  return { base, ours, theirs, expectedKeys: 5000 + 500 };
};

/** What fits a call: a 2,000-element list, each branch changing 1,000 elements (ours the even ones, theirs the odd). */
const callCase = (i: number) => {
  const base = Array.from({ length: 2000 }, (_, k) => `e${k}`);
  const ours = base.map((e, k) => (k % 2 === 0 ? `o${k}` : e));
  const theirs = base.map((e, k) => (k % 2 === 1 ? `t${k}` : e));
  ours[0] = `o0-${i}`; // distinct arguments each time: no call is a pure-cache hit
  return [base, ours, theirs] as const;
};

/** A 1,000-message log; each side appends 1,000 messages. */
const unionCase = (i: number) => {
  const base = Array.from({ length: 1000 }, (_, k) => `m${k}`);
  const ours = [...base, ...Array.from({ length: 1000 }, (_, k) => `a${k}`)];
  const theirs = [...base, ...Array.from({ length: 1000 }, (_, k) => `b${k}`)];
  ours[ours.length - 1] = `a-last-${i}`;
  return [base, ours, theirs] as const;
};

export const benchMerges = async (): Promise<Row[]> => {
  const rows: Row[] = [];
  const list = listCase();
  const merged = json(ctx, list.base, list.ours, list.theirs) as unknown[];
  if (merged.length !== list.expectedLength) throw new Error(`list merge: ${merged.length} items, expected ${list.expectedLength}`);
  rows.push(row('json merge, 5,000-item list, 2 × 1,000 changes (direct)', await medianOf(() => json(ctx, list.base, list.ours, list.theirs), 30, 5)));
  const record = recordCase();
  const keys = Object.keys(json(ctx, record.base, record.ours, record.theirs) as object).length;
  if (keys !== record.expectedKeys) throw new Error(`record merge: ${keys} keys, expected ${record.expectedKeys}`);
  rows.push(row('json merge, 5,000-key record, 2 × 1,000 changes (direct)', await medianOf(() => json(ctx, record.base, record.ours, record.theirs), 30, 5)));

  const kernel = await openKernel({ memory: true, limits: { vats: 1 } });
  try {
    const issue = async (file: string) => {
      const code = await kernel.publish(await readFile(new URL(`../merges/${file}`, import.meta.url), 'utf8'));
      return kernel.issue({ code, export: 'merge' });
    };
    const jsonToken = await issue('json.js');
    const unionToken = await issue('union.js');
    const viaKernel = async (token: Awaited<ReturnType<typeof issue>>, args: readonly unknown[]) => {
      const outcome = await kernel.call(token, args as never);
      if (outcome.status !== 'fulfilled') throw new Error(`merge through the kernel: ${JSON.stringify(outcome)}`);
    };
    // What carrying the same arguments and a result of the same size costs without merging.
    const echoToken = await kernel.issue({ code: await kernel.publish('export const echo = (ctx, base, ours) => ours;'), export: 'echo' });
    let n = 0;
    const jsonTimes = await mediansInTurns(
      { direct: () => json(ctx, ...callCase(n++)), kernel: () => viaKernel(jsonToken, callCase(n++)), echo: () => viaKernel(echoToken, callCase(n++)) },
      { rounds: 5, perRound: 10, warmup: 5 },
    );
    const direct = { name: 'json merge, 2,000-item list, 2 × 1,000 changes (direct)', median_ns: jsonTimes.direct! };
    rows.push(row(direct.name, direct.median_ns));
    rows.push(row('  the same through kernel.call (vat, journal)', jsonTimes.kernel!, direct));
    const echo = { name: '  a closure returning ours, same arguments', median_ns: jsonTimes.echo! };
    rows.push(row(echo.name, echo.median_ns));
    rows.push(row('  the merge through kernel.call vs that', jsonTimes.kernel!, echo));
    const unionTimes = await mediansInTurns(
      { direct: () => union(ctx, ...unionCase(n++)), kernel: () => viaKernel(unionToken, unionCase(n++)) },
      { rounds: 5, perRound: 10, warmup: 5 },
    );
    const unionDirect = { name: 'union merge, 1,000-message log, 2 × 1,000 appended (direct)', median_ns: unionTimes.direct! };
    rows.push(row(unionDirect.name, unionDirect.median_ns));
    rows.push(row('  the same through kernel.call (vat, journal)', unionTimes.kernel!, unionDirect));
  } finally {
    await kernel.close();
  }
  return rows;
};
