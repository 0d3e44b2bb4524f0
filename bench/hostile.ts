/**
 * `npm run bench -- hostile`: what one stranger can do to a node's honest
 * clients (issue 13). For each attacker of bench/hostile-attackers.ts, on a
 * fresh node in its own process: HONEST_CLIENTS clients call a pure closure
 * one call at a time each, first with no attacker (the unloaded figures),
 * then while the attacker (in a process of its own) does its worst; then the
 * node sits idle for HOSTILE_SETTLE_MS (default 60 s) and its RSS and open
 * descriptors are read again (while the next attack runs on its own node). Also: a durable revocation against a
 * group-committed call record, in one process with a home on disk.
 *
 * Environment: HOSTILE_SETTLE_MS (default 60000), HOSTILE_PHASE_MS (how
 * long each load phase lasts, default 8000), HOSTILE_ONLY (a comma list of
 * attack names, to run some only).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateIdentity } from '../dist/identity/index.js';
import { connectNode, type RemoteNode } from '../dist/net/client.js';
import { openKernel } from '../dist/index.js';
import { medianOf, row, type Row } from './measure.js';

const SETTLE_MS = Number(process.env.HOSTILE_SETTLE_MS ?? 60_000);
const PHASE_MS = Number(process.env.HOSTILE_PHASE_MS ?? 8_000);
const ONLY = process.env.HOSTILE_ONLY?.split(',').filter(Boolean);
const HONEST_CLIENTS = 4;

const CLOSURES = `
export const add = (ctx, a, b) => a + b;
export const big = (ctx, i) => String(i) + 'x'.repeat(200000);
`;

const random = (n: number) => new Uint8Array(randomBytes(n));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Start a child process that prints one JSON line once it is ready. */
const startChild = (args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ child: ChildProcess; info: Record<string, string>; lines: string[] }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const lines: string[] = [];
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr = (stderr + chunk).slice(-2000)));
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      for (let end = out.indexOf('\n'); end >= 0; end = out.indexOf('\n')) {
        lines.push(out.slice(0, end));
        out = out.slice(end + 1);
        if (lines.length === 1) resolve({ child, info: JSON.parse(lines[0]!), lines });
      }
    });
    child.once('exit', (code) => reject(new Error(`${args.slice(0, 3).join(' ')} exited ${code}: ${stderr.trim()}`)));
  });

const gridBin = () => join(process.cwd(), 'bin', 'grid.js');

const grid = (home: string, args: string[]) =>
  new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [gridBin(), ...args, '--home', home], { env: { ...process.env, GRID_HOME: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (err += chunk));
    child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`grid ${args[0]} exited ${code}: ${err.trim()}`))));
  });

/** A process's resident memory (MB) and open descriptors, from /proc. */
export const processStats = async (pid: number): Promise<{ rssMb: number; fds: number }> => {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { rssMb: Math.round(kb / 1024), fds: (await readdir(`/proc/${pid}/fd`)).length };
};

/** CPU time a process has used (user + system, ms), from /proc: clock ticks are 100 a second on Linux. */
const cpuMs = async (pid: number): Promise<number> => {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
};

/** A file's size, or a directory's files' (the journal's segments) together. */
const fileSize = async (path: string): Promise<number> => {
  const found = await stat(path).catch(() => undefined);
  if (!found?.isDirectory()) return found?.size ?? 0;
  let total = 0;
  for (const name of await readdir(path)) total += await fileSize(join(path, name));
  return total;
};

/** Honest clients, each with one call in flight at a time, timed while `measuring`. */
const honestLoad = (clients: RemoteNode[], token: string) => {
  let latencies: number[] = [];
  let running = true;
  let measuring = false;
  let failures = 0;
  /** Why honest calls failed, by reason (the first few kinds). */
  let failedFor = new Map<string, number>();
  let windowStart = process.hrtime.bigint();
  const loops = clients.map(async (client, c) => {
    let i = 0;
    while (running) {
      if (!measuring) {
        await sleep(20);
        continue;
      }
      const start = process.hrtime.bigint();
      const outcome = await client.call(token, [c, i++], { timeoutMs: 30_000 });
      if (!measuring) continue;
      if (outcome.status === 'fulfilled') latencies.push(Number(process.hrtime.bigint() - start));
      else {
        // Counted apart, and not in a tight loop: a dropped client fails at once.
        failures += 1;
        if (outcome.status === 'revoked' && (failedFor.size < 4 || failedFor.has(outcome.reason))) failedFor.set(outcome.reason, (failedFor.get(outcome.reason) ?? 0) + 1);
        await sleep(10);
      }
    }
  });
  return {
    begin: () => {
      latencies = [];
      failures = 0;
      failedFor = new Map();
      windowStart = process.hrtime.bigint();
      measuring = true;
    },
    /** Stop timing; the figures of the window since `begin`. */
    end: () => {
      measuring = false;
      const seconds = Number(process.hrtime.bigint() - windowStart) / 1e9;
      const sorted = Float64Array.from(latencies).sort();
      const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]! : NaN);
      const why = [...failedFor].map(([reason, n]) => `${n}× ${reason.slice(0, 80)}`).join('; ');
      return { p50: at(0.5), p99: at(0.99), max: sorted.length ? sorted[sorted.length - 1]! : NaN, perSecond: latencies.length / seconds, failures: failures ? `${failures} (${why})` : '0' };
    },
    stop: async () => {
      running = false;
      measuring = false;
      await Promise.all(loops);
    },
  };
};

interface Phase {
  name: string;
  attack: string;
  options: (tokens: { add: string; big: string }) => object;
}

const ITEMS: Array<{ item: string; phases: Phase[] }> = [
  { item: '1 made-up tokens', phases: [{ name: 'calls on made-up tokens, 1 MB args', attack: 'made-up-tokens', options: () => ({ argBytes: 1_000_000, inFlight: 4 }) }] },
  {
    item: '2 before authentication',
    phases: [
      { name: '30 unauthenticated 16 MiB frames', attack: 'big-unauthenticated-frames', options: () => ({ connections: 30, frameBytes: 16 * 1024 * 1024 }) },
      { name: '250 stalled handshakes', attack: 'stalled-handshakes', options: () => ({ connections: 250 }) },
    ],
  },
  {
    item: '3 decode amplification',
    phases: [
      { name: '900k empty maps as call args', attack: 'empty-maps', options: () => ({ maps: 900_000, where: 'args', inFlight: 2 }) },
      { name: '900k empty maps as an envelope slot', attack: 'empty-maps', options: () => ({ maps: 900_000, where: 'slot' }) },
    ],
  },
  { item: '4 non-reader', phases: [{ name: '3,000 calls of 200 KB, never read', attack: 'non-reader', options: ({ big }) => ({ token: big, calls: 3_000, holdMs: PHASE_MS }) }] },
];

const ms = (ns: number) => (ns / 1e6).toFixed(2);

/** One fresh node, its unloaded figures, then each phase of `item`, then its state after settling. */
/**
 * One fresh node, its unloaded figures, then each phase of `item`. Resolves
 * when the phases are done with `settled`, which resolves once the node has
 * sat idle for SETTLE_MS and its state after is in `table` (so the next item
 * can run meanwhile: an idle node's memory does not depend on another's load).
 */
const benchItem = async (item: { item: string; phases: Phase[] }, rows: Row[], table: string[]): Promise<{ settled: Promise<void> }> => {
  const home = await mkdtemp(join(tmpdir(), 'grid-bench-hostile-'));
  const children: ChildProcess[] = [];
  const clients: RemoteNode[] = [];
  const cleanUp = async () => {
    for (const client of clients) client.close();
    for (const child of children) child.kill('SIGKILL');
    await sleep(300);
    await rm(home, { recursive: true, force: true });
  };
  try {
    await grid(home, ['init']);
    await writeFile(join(home, 'closures.js'), CLOSURES);
    const add = await grid(home, ['issue', join(home, 'closures.js'), '--export', 'add']);
    const big = await grid(home, ['issue', join(home, 'closures.js'), '--export', 'big']);
    const node = await startChild([gridBin(), 'start', '--home', home, '--json'], { ...process.env, GRID_HOME: '' });
    children.push(node.child);
    const pid = node.child.pid!;
    const url = node.info.url!;
    for (let c = 0; c < HONEST_CLIENTS; c++) clients.push(await connectNode(url, { identity: generateIdentity(random), random }));
    const load = honestLoad(clients, add);
    const journal = join(home, 'journal');

    // Warm up, then the unloaded figures on this node.
    load.begin();
    await sleep(1_000);
    load.end();
    const before = await processStats(pid);
    load.begin();
    await sleep(PHASE_MS);
    const unloaded = load.end();
    const unloadedP50 = { name: 'unloaded p50', median_ns: unloaded.p50 };
    const unloadedP99 = { name: 'unloaded p99', median_ns: unloaded.p99 };
    table.push(
      `${item.item}: unloaded  p50 ${ms(unloaded.p50)} ms  p99 ${ms(unloaded.p99)} ms  max ${ms(unloaded.max)} ms  ${Math.round(unloaded.perSecond)} calls/s  RSS ${before.rssMb} MB  fds ${before.fds}`,
    );

    for (const phase of item.phases) {
      if (ONLY && !ONLY.includes(phase.attack)) continue;
      const journalBefore = await fileSize(journal);
      const attacker = await startChild(['--import=tsx', join(process.cwd(), 'bench', 'hostile-attackers.ts'), phase.attack, JSON.stringify(phase.options({ add, big }))], {
        ...process.env,
        GRID_URL: url,
      });
      children.push(attacker.child);
      const began = Date.now();
      const cpuBefore = { node: await cpuMs(pid), attacker: await cpuMs(attacker.child.pid!), honest: process.cpuUsage() };
      load.begin();
      let peak = await processStats(pid);
      while (Date.now() - began < PHASE_MS) {
        await sleep(250);
        const now = await processStats(pid).catch(() => peak);
        peak = { rssMb: Math.max(peak.rssMb, now.rssMb), fds: Math.max(peak.fds, now.fds) };
      }
      const loaded = load.end();
      const elapsed = Date.now() - began;
      const share = (usedMs: number) => `${Math.round((usedMs / elapsed) * 100)}%`;
      const honestCpu = process.cpuUsage(cpuBefore.honest);
      const cpu =
        `node ${share((await cpuMs(pid)) - cpuBefore.node)}, attacker ${share((await cpuMs(attacker.child.pid!).catch(() => cpuBefore.attacker)) - cpuBefore.attacker)}, ` +
        `honest clients ${share((honestCpu.user + honestCpu.system) / 1000)}`;
      const journalAdded = (await fileSize(journal)) - journalBefore;
      const seconds = (Date.now() - began) / 1000;
      const report = new Promise<string>((resolve) => {
        attacker.child.once('exit', () => resolve(attacker.lines[1] ?? '{}'));
      });
      attacker.child.stdin!.end();
      const said = await Promise.race([report, sleep(15_000).then(() => (attacker.child.kill('SIGKILL'), '{"report":"none: killed"}'))]);
      const during = await processStats(pid);
      rows.push(
        { ...row(`${phase.name}: honest p50`, loaded.p50, unloadedP50), ops_per_s: Math.round(loaded.perSecond) },
        { ...row(`${phase.name}: honest p99`, loaded.p99, unloadedP99), ops_per_s: Math.round(loaded.perSecond) },
      );
      table.push(
        `  ${phase.name}: p50 ${ms(loaded.p50)} ms (${(loaded.p50 / unloaded.p50).toFixed(2)}×)  p99 ${ms(loaded.p99)} ms (${(loaded.p99 / unloaded.p99).toFixed(2)}×)  ` +
          `max ${ms(loaded.max)} ms  ${Math.round(loaded.perSecond)} calls/s (${(loaded.perSecond / unloaded.perSecond).toFixed(2)}×)  honest failures ${loaded.failures}`,
        `    node during: peak RSS ${peak.rssMb} MB, peak fds ${peak.fds}; at attack end RSS ${during.rssMb} MB, fds ${during.fds}; journal +${Math.round(journalAdded / seconds / 1024)} KiB/s (${(journalAdded / 2 ** 20).toFixed(1)} MiB)`,
        `    attacker: ${said}`,
        `    CPU during the attack, of one core (the machine has ${availableParallelism()}): ${cpu}`,
      );
    }
    await load.stop();
    const settled = (async () => {
      try {
        await sleep(SETTLE_MS);
        const after = await processStats(pid);
        table.push(`  ${SETTLE_MS / 1000} s after, idle: RSS ${after.rssMb} MB (was ${before.rssMb} before the attacks), fds ${after.fds} (was ${before.fds}; honest clients still connected, idle)`);
      } finally {
        await cleanUp();
      }
    })();
    return { settled };
  } catch (error) {
    await cleanUp();
    throw error;
  }
};

/** A durable revocation against a call whose record is group-committed, in one process with a home on disk. */
const benchRevocation = async (rows: Row[]) => {
  const home = await mkdtemp(join(tmpdir(), 'grid-bench-revoke-'));
  try {
    const kernel = await openKernel({ home, create: true });
    const code = await kernel.publish(CLOSURES);
    const tokens: string[] = [];
    for (let i = 0; i < 600; i++) tokens.push(await kernel.issue({ code, export: 'add', env: { i } }));
    const warm = tokens[0]!;
    await kernel.call(warm, [1, 1]);
    const hit = { name: 'cache hit on a warm token (group-committed record)', median_ns: await medianOf(() => kernel.call(warm, [1, 1]), 5_000, 500) };
    rows.push(row(hit.name, hit.median_ns));
    const executes = { name: 'call that executes (group-committed records)', median_ns: await medianOf((i) => kernel.call(warm, [i, 2]), 2_000, 200) };
    rows.push(row(executes.name, executes.median_ns, hit));
    let next = 1;
    rows.push(row('kernel.revoke round trip (durable revocation)', await medianOf(() => kernel.revoke(tokens[next++]!), 500, 50), hit));
    await kernel.close();
  } finally {
    await rm(home, { recursive: true, force: true });
  }
};

export const benchHostile = async (): Promise<Row[]> => {
  const rows: Row[] = [];
  const settling: Promise<void>[] = [];
  for (const item of ITEMS) {
    if (ONLY && !item.phases.some((phase) => ONLY.includes(phase.attack))) continue;
    const table: string[] = [];
    const { settled } = await benchItem(item, rows, table);
    settling.push(settled.then(() => console.log(table.join('\n'))));
  }
  if (!ONLY || ONLY.includes('revoke')) await benchRevocation(rows);
  await Promise.all(settling);
  return rows;
};
