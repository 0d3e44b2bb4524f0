/**
 * The vat hop: a call that executes in a vat worker against a bare
 * postMessage round trip to a worker, and the time from a hostile call's
 * deadline to a fresh vat serving again.
 */
import { Worker } from 'node:worker_threads';
import { openKernel } from '../dist/index.js';
import { medianOf, row, throughput, type Row } from './measure.js';

const ECHO_WORKER = `
  const { parentPort } = require('node:worker_threads');
  parentPort.on('message', (message) => parentPort.postMessage(message));
`;

const bareRoundTrip = async (): Promise<{ median: number; perSecond: number }> => {
  const worker = new Worker(ECHO_WORKER, { eval: true });
  const waiting: Array<() => void> = [];
  worker.on('message', () => waiting.shift()?.());
  const ping = () => new Promise<void>((resolve) => (waiting.push(resolve), worker.postMessage(1)));
  const median = await medianOf(ping, 20_000);
  const perSecond = await throughput(ping, 100_000, 256);
  await worker.terminate();
  return { median, perSecond };
};

export const benchVat = async (): Promise<Row[]> => {
  const bare = await bareRoundTrip();
  const baseline = { name: 'bare worker postMessage round trip', median_ns: bare.median };
  const rows: Row[] = [row(baseline.name, bare.median), { name: 'bare postMessage/s, 256 in flight', median_ns: Math.round(1e9 / bare.perSecond), ops_per_s: Math.round(bare.perSecond) }];

  const kernel = await openKernel({ memory: true, limits: { callTimeoutMs: 200 } });
  const code = await kernel.publish('export const greet = (ctx, name) => `hi, ${name}`; export const spin = () => { for (;;) {} };');
  const greet = await kernel.issue({ code, export: 'greet' });
  // Distinct arguments: every call misses the cache and executes in a vat.
  rows.push(row('call executing in a vat', await medianOf((i) => kernel.call(greet, [`n${i}`]), 20_000), baseline));
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
