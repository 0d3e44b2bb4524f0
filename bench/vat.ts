/**
 * The vat hop: a call that executes in a vat worker against a bare
 * postMessage round trip to a worker (back to back, and after work on this
 * thread, as between a document's applies), and the time from a hostile
 * call's deadline to a fresh vat serving again.
 */
import { readFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { openKernel } from '../dist/index.js';
import { medianBatched, medianOf, row, throughput, type Row } from './measure.js';
import { analyzeModule } from '../dist/closures/modules.js';
import { ModuleRunner } from '../dist/closures/runner.js';
import type { ModuleId } from '../dist/interface/ids.js';

const ECHO_WORKER = `
  const { parentPort } = require('node:worker_threads');
  parentPort.on('message', (message) => parentPort.postMessage(message));
`;

/** Keep this thread busy for `us` microseconds, as a document's apply does between two vat hops. */
const busyFor = (us: number) => {
  const end = process.hrtime.bigint() + BigInt(us * 1000);
  while (process.hrtime.bigint() < end);
};

const bareRoundTrip = async (): Promise<{ median: number; perSecond: number; afterWork: number }> => {
  const worker = new Worker(ECHO_WORKER, { eval: true });
  const waiting: Array<() => void> = [];
  worker.on('message', () => waiting.shift()?.());
  const ping = () => new Promise<void>((resolve) => (waiting.push(resolve), worker.postMessage(1)));
  const median = await medianOf(ping, 20_000);
  const perSecond = await throughput(ping, 100_000, 256);
  // The same round trip, each after 0.5 ms of work here: the worker has slept longer, and waking it costs more.
  const afterWork = new Float64Array(2_000);
  for (let i = 0; i < afterWork.length; i++) {
    busyFor(500);
    const start = process.hrtime.bigint();
    await ping();
    afterWork[i] = Number(process.hrtime.bigint() - start);
  }
  await worker.terminate();
  return { median, perSecond, afterWork: afterWork.sort()[afterWork.length >> 1]! };
};

export const benchVat = async (): Promise<Row[]> => {
  const bare = await bareRoundTrip();
  const baseline = { name: 'bare worker postMessage round trip', median_ns: bare.median };
  const rows: Row[] = [
    row(baseline.name, bare.median),
    { name: 'bare postMessage/s, 256 in flight', median_ns: Math.round(1e9 / bare.perSecond), ops_per_s: Math.round(bare.perSecond) },
    row('bare round trip, each after 0.5 ms of work on this thread', bare.afterWork, baseline),
  ];

  const source = 'export const greet = (ctx, name) => `hi, ${name}`; export const spin = () => { for (;;) {} };';
  // The in-process path vats replaced: instantiate the module and call it on this thread.
  const runner = new ModuleRunner({});
  runner.compile('bafkreigreet' as ModuleId, await analyzeModule(source));
  const ctx = Object.freeze({ env: {} });
  const inProcess = { name: 'same closure run on this thread (no vat, no journal)', median_ns: medianBatched((i) => (runner.instantiate('bafkreigreet' as ModuleId).greet as (c: unknown, n: string) => string)(ctx, `n${i}`)) };
  rows.push(row(inProcess.name, inProcess.median_ns));

  const kernel = await openKernel({ memory: true, limits: { callTimeoutMs: 200 } });
  const code = await kernel.publish(source);
  const greet = await kernel.issue({ code, export: 'greet' });
  // Distinct arguments: every call misses the cache and executes in a vat.
  const inVat = await medianOf((i) => kernel.call(greet, [`n${i}`]), 20_000);
  rows.push(row('call executing in a vat', inVat, baseline));
  rows.push(row('call executing in a vat (vs this thread)', inVat, inProcess));
  const perSecond = await throughput((i) => kernel.call(greet, [`m${i}`]), 100_000, 256);
  rows.push({ name: 'vat calls/s, 256 in flight', median_ns: Math.round(1e9 / perSecond), ops_per_s: Math.round(perSecond) });

  const spin = await kernel.issue({ code, export: 'spin' });
  const recoveries: number[] = [];
  for (let i = 0; i < 5; i++) {
    const start = process.hrtime.bigint();
    await kernel.call(spin, []); // ends at the 200 ms deadline
    const deadline = process.hrtime.bigint();
    await kernel.call(greet, [`after ${i}`]);
    recoveries.push(Number(process.hrtime.bigint() - deadline));
    void start;
  }
  recoveries.sort((a, b) => a - b);
  rows.push(row('deadline to a fresh vat serving again', recoveries[2]!));
  await kernel.close();
  return rows;
};

/** A numeric WebAssembly export called through a token against calling it directly from JS. */
export const benchWasm = async (): Promise<Row[]> => {
  const wasm = new Uint8Array(await readFile(new URL('../examples/wasm/fib.wasm', import.meta.url)));
  const direct = new WebAssembly.Instance(new WebAssembly.Module(wasm)).exports.fib as (n: number) => number;
  const baseline = { name: 'fib(15) called directly from JS', median_ns: await medianOf(() => direct(15), 5000) };
  const rows = [row(baseline.name, baseline.median_ns)];
  // With the cache off every call executes in a vat; with it on, repeats are hits.
  for (const [label, maxCacheEntries] of [['executes in a vat', 0], ['pure, so a cache hit', 1000]] as const) {
    const kernel = await openKernel({ memory: true, limits: { maxCacheEntries } });
    const fib = await kernel.issue({ code: await kernel.publish(wasm), export: 'fib' });
    rows.push(row(`fib(15) through a token (${label})`, await medianOf(() => kernel.call(fib, [15]), 5000), baseline));
    await kernel.close();
  }
  return rows;
};
