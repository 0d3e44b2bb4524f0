/**
 * `npm run bench -- scale` (issue 18, item 5, first slice): 25 control planes
 * in 5 processes on loopback, each providing tokens on the DHT; lookups of a
 * random token from a random node, as a share found, median and p99 time to
 * the right provider, median and largest hops (DHT peers that answered before
 * the provider was named), and memory per node. No churn yet.
 * GRID_SCALE_NODES and GRID_SCALE_PROCESSES change the size.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Row } from './measure.js';

const NODES = Number(process.env.GRID_SCALE_NODES ?? 25);
const PROCESSES = Number(process.env.GRID_SCALE_PROCESSES ?? 5);
const TOKENS_PER_NODE = 4;
const LOOKUPS = 200;
const IN_FLIGHT = 8;
const LOOKUP_TIMEOUT_MS = 10_000;

interface Worker {
  child: ChildProcess;
  next(op: string): Promise<Record<string, unknown>>;
}

const startWorker = (): Worker => {
  const child = fork(new URL('./scale-worker.ts', import.meta.url).pathname, [], { execArgv: ['--import=tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map<string, Array<(message: Record<string, unknown>) => void>>();
  const early = new Map<string, Array<Record<string, unknown>>>();
  child.on('message', (message: Record<string, unknown>) => {
    const op = String(message.op);
    if (op === 'error') throw new Error(`scale worker: ${String(message.message)}`);
    const key = op === 'looked' ? `looked:${String(message.id)}` : op;
    const resolve = waiting.get(key)?.shift();
    if (resolve) resolve(message);
    else early.set(key, [...(early.get(key) ?? []), message]);
  });
  return {
    child,
    next: (key) =>
      new Promise((resolve) => {
        const queued = early.get(key)?.shift();
        if (queued) return resolve(queued);
        waiting.set(key, [...(waiting.get(key) ?? []), resolve]);
      }),
  };
};

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN;

export const benchScale = async (): Promise<Row[]> => {
  const workers = Array.from({ length: PROCESSES }, startWorker);
  const baseRss = (await Promise.all(workers.map((worker) => worker.next('ready')))).reduce((sum, message) => sum + Number(message.rss), 0);
  const perProcess = Math.ceil(NODES / PROCESSES);
  const nodes: Array<{ worker: Worker; index: number; peer: string; addresses: string[] }> = [];
  for (const worker of workers) {
    worker.child.send({ op: 'start', nodes: perProcess });
    const { nodes: started } = (await worker.next('started')) as { nodes: Array<{ peer: string; addresses: string[] }> };
    started.forEach((node, index) => nodes.push({ worker, index, ...node }));
  }
  // Each node bootstraps from the first and from one other at random, as a node dials its first peers.
  for (const [i, node] of nodes.entries()) {
    if (i === 0) continue;
    const other = nodes[1 + Math.floor(Math.random() * (nodes.length - 1))]!;
    for (const target of new Set([nodes[0]!, other])) {
      if (target === node) continue;
      node.worker.child.send({ op: 'dial', node: node.index, addresses: target.addresses });
      await node.worker.next('dialled');
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 2_000)); // routing tables fill from identify
  const providedAt = performance.now();
  const provided: Array<{ token: string; provider: string }> = [];
  let rss = 0;
  let failed = 0;
  for (const worker of workers) worker.child.send({ op: 'provide', tokens: TOKENS_PER_NODE });
  for (const worker of workers) {
    const message = (await worker.next('provided')) as { provided: Array<{ token: string; provider: string }>; failed: number; rss: number };
    provided.push(...message.provided);
    failed += message.failed;
    rss += message.rss;
  }
  const provideMs = performance.now() - providedAt;

  const results: Array<{ found: boolean; ms: number; hops: number }> = [];
  let next = 0;
  const lookups = Array.from({ length: IN_FLIGHT }, async () => {
    while (next < LOOKUPS) {
      const id = next++;
      const { token, provider } = provided[Math.floor(Math.random() * provided.length)]!;
      const candidates = nodes.filter((node) => node.peer !== provider);
      const from = candidates[Math.floor(Math.random() * candidates.length)]!;
      from.worker.child.send({ op: 'lookup', id, node: from.index, token, provider, timeoutMs: LOOKUP_TIMEOUT_MS });
      results.push((await from.worker.next(`looked:${id}`)) as unknown as { found: boolean; ms: number; hops: number });
    }
  });
  await Promise.all(lookups);
  for (const worker of workers) worker.child.send({ op: 'stop' });
  await Promise.all(workers.map((worker) => new Promise((resolve) => worker.child.once('exit', resolve))));

  const found = results.filter((result) => result.found);
  const times = found.map((result) => result.ms).sort((a, b) => a - b);
  const hops = found.map((result) => result.hops).sort((a, b) => a - b);
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  return [
    { name: `scale: ${nodes.length} nodes in ${PROCESSES} processes, ${provided.length} tokens provided in ${(provideMs / 1000).toFixed(1)} s (${failed} provides failed)`, median_ns: 0, ops_per_s: 0 },
    { name: `scale: lookups found ${((100 * found.length) / results.length).toFixed(1)}% (${found.length} of ${results.length})`, median_ns: 0, ops_per_s: 0 },
    { name: 'scale: lookup to the right provider', median_ns: Math.round(percentile(times, 50) * 1e6), ops_per_s: Math.round(1000 / percentile(times, 50)) },
    { name: `scale: lookup p99 ${percentile(times, 99).toFixed(1)} ms, hops median ${percentile(hops, 50)}, p99 ${percentile(hops, 99)}`, median_ns: 0, ops_per_s: 0 },
    { name: `scale: memory ${mib((rss - baseRss) / nodes.length)} MiB per node (processes ${mib(rss)} MiB, ${mib(baseRss)} MiB before any node)`, median_ns: 0, ops_per_s: 0 },
  ];
};
