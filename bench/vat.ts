/**
 * The vat hop: a call that executes in a vat worker against a bare
 * postMessage round trip to a worker (back to back, and after work on this
 * thread, as between a document's applies), against a bare round trip on the
 * shared-memory ring vats use (vat/channel.ts), and against the same closure
 * run on this thread; the CPU the channel's polling costs, idle and under
 * load; and the time from a hostile call's deadline to a fresh vat serving
 * again.
 */
import { readFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { openKernel } from '../dist/index.js';
import { medianBatched, medianOf, mediansInTurns, row, throughput, type Row } from './measure.js';
import { channelMemory, Ring } from '../dist/vat/channel.js';
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

/** A worker that answers each frame of the ring with the same frame, polling or sleeping as a vat does. */
const RING_ECHO_WORKER = `
  const { workerData } = require('node:worker_threads');
  import(workerData.channel).then(({ Ring }) => {
    const into = new Ring(workerData.memory, 0);
    const back = new Ring(workerData.memory, 1);
    const spinNs = workerData.spinUs * 1000;
    let last = performance.now() * 1e6;
    for (;;) {
      const frame = into.read();
      if (frame) { back.write(frame); back.wake(); last = performance.now() * 1e6; continue; }
      let spins = 0;
      while (!into.waiting && ((++spins & 127) !== 0 || performance.now() * 1e6 - last < spinNs));
      if (into.waiting) continue;
      into.sleeping(true);
      const written = into.written;
      if (!into.waiting) Atomics.wait(into.header, 0, written);
      into.sleeping(false);
    }
  });
`;

/**
 * A bare round trip on the ring: this thread polls for the answer (each
 * turn serving I/O) for up to \`spinUs\`, then sleeps on Atomics.waitAsync.
 */
const bareRing = async (spinUs: number): Promise<{ ping: () => Promise<void>; close: () => Promise<number> }> => {
  const memory = channelMemory();
  const worker = new Worker(RING_ECHO_WORKER, { eval: true, workerData: { memory, spinUs, channel: new URL('../dist/vat/channel.js', import.meta.url).href } });
  const out = new Ring(memory, 0);
  const back = new Ring(memory, 1);
  const frame = new Uint8Array(64);
  const wait = (Atomics as unknown as { waitAsync: (a: Int32Array, i: number, v: number) => { async: boolean; value: Promise<string> | string } }).waitAsync;
  const ping = async () => {
    out.write(frame);
    out.wake();
    const until = performance.now() + spinUs / 1000;
    while (!back.waiting && performance.now() < until) await new Promise(setImmediate);
    while (!back.waiting) {
      back.sleeping(true);
      const written = back.written;
      if (!back.waiting) {
        const waited = wait(back.header, 0, written);
        if (waited.async) await waited.value;
      }
      back.sleeping(false);
    }
    back.read();
  };
  return { ping, close: () => worker.terminate() };
};

/** Cores this process used (every thread) while `work` ran. */
const coresDuring = async (work: () => Promise<unknown>): Promise<number> => {
  const cpu = process.cpuUsage();
  const start = performance.now();
  await work();
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / 1000 / (performance.now() - start);
};

const idle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const cores = (name: string, value: number): Row => ({ name: `${name}: ${value.toFixed(2)} cores`, median_ns: 0, ops_per_s: 0 });

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

  // The ring alone, both sides polling (the floor), and both sleeping between messages (what postMessage does).
  const polling = await bareRing(50);
  const sleeping = await bareRing(0);
  const ring = await mediansInTurns({ polling: polling.ping, sleeping: sleeping.ping }, { rounds: 10, perRound: 1_000 });
  await polling.close();
  await sleeping.close();
  rows.push(row('bare ring round trip, both sides polling', ring.polling!, baseline));
  rows.push(row('bare ring round trip, both sides sleeping', ring.sleeping!, baseline));

  // The kernel as it ships (its vats' transport: VAT_TRANSPORT), and on the rings, polling and never polling.
  const kernel = await openKernel({ memory: true, limits: { callTimeoutMs: 200 } });
  const code = await kernel.publish(source);
  const greet = await kernel.issue({ code, export: 'greet' });
  const variants: Array<[string, string, Record<string, unknown>]> = [
    ['postMessage', 'by postMessage', { vatTransport: 'postMessage' }],
    ['polling', 'on the rings, polling', { vatTransport: 'shared-memory' }],
    ['sleeping', 'on the rings, never polling', { vatTransport: 'shared-memory', vatSpinUs: 0 }],
  ];
  const kernels = await Promise.all(
    variants.map(async ([, , limits]) => {
      const k = await openKernel({ memory: true, limits: { callTimeoutMs: 200, ...limits } });
      return { k, token: await k.issue({ code: await k.publish(source), export: 'greet' }) };
    }),
  );
  // Distinct arguments: every call misses the cache and executes in a vat.
  const warm = await mediansInTurns(
    Object.fromEntries(variants.map(([key], v) => [key, (i: number) => kernels[v]!.k.call(kernels[v]!.token, [`n${i}`])])),
    { rounds: 10, perRound: 2_000 },
  );
  const inVat = warm[variants[0]![0]]!;
  rows.push(row('call executing in a vat (postMessage)', inVat, baseline));
  rows.push(row('call executing in a vat (postMessage, vs this thread)', inVat, inProcess));
  for (const [key, label] of variants.slice(1)) {
    rows.push(row(`call executing in a vat, ${label}`, warm[key]!, baseline));
    rows.push(row(`  … vs by postMessage`, warm[key]!, { name: 'by postMessage', median_ns: inVat }));
    rows.push(row(`  … vs this thread`, warm[key]!, inProcess));
  }
  for (const [v, [, label]] of variants.entries()) {
    const { k, token } = kernels[v]!;
    const warmCores = await coresDuring(() => medianOf((i) => k.call(token, [`c${i}`]), 5_000, 0));
    let perSecond = 0;
    const loadCores = await coresDuring(async () => (perSecond = await throughput((i) => k.call(token, [`m${i}`]), 50_000, 256)));
    rows.push({ name: `vat calls/s, 256 in flight, ${label}`, median_ns: Math.round(1e9 / perSecond), ops_per_s: Math.round(perSecond) });
    rows.push(cores(`  CPU one call after another`, warmCores), cores(`  CPU 256 in flight`, loadCores));
  }
  await idle(50);
  rows.push(cores('CPU, all four kernels idle for 1 s after calls', await coresDuring(() => idle(1_000))));
  await Promise.all(kernels.map(({ k }) => k.close()));

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
