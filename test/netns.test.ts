/**
 * Nodes on their own addresses: the real `grid` binary in two Linux network
 * namespaces joined by a veth pair, so a node is reached the way it would be
 * on another machine (10.77.X.1 and 10.77.X.2), not on loopback.
 *
 * Needs `ip` (iproute2) and root (CAP_NET_ADMIN and CAP_SYS_ADMIN). Where namespaces cannot be
 * made, the test is skipped and its title says why: it never passes without
 * asserting anything.
 *
 * All traffic stays inside the namespaces this file makes: the host is only
 * ever asked to connect to its own loopback.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './_helpers.js';

const BIN = join(process.cwd(), 'bin', 'grid.js');

/** `ip` is in /usr/sbin on Debian, which a non-login PATH may lack. */
const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((path) => existsSync(path)) ?? 'ip';
const ip = (...args: string[]) => spawnSync(IP, args, { encoding: 'utf8', timeout: 10_000 });

/** Namespaces this file makes are named pgnet-<pid of the test worker>-<role>. */
const PREFIX = 'pgnet-';
const nsName = (role: string) => `${PREFIX}${process.pid}-${role}`;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Delete namespaces left by earlier runs whose worker has died (a crash, a kill -9). */
const removeLeftovers = () => {
  const listed = ip('netns', 'list');
  if (listed.status !== 0) return;
  for (const line of listed.stdout.split('\n')) {
    const match = new RegExp(`^(${PREFIX}(\\d+)-[a-z0-9]+)\\b`).exec(line);
    if (match && (Number(match[2]) === process.pid || !alive(Number(match[2])))) ip('netns', 'del', match[1]!);
  }
};

/**
 * Can this machine make a namespace, a veth pair in it, and run node there?
 * Returns undefined if so, else the reason it cannot.
 */
const netnsUnavailable = (): string | undefined => {
  if (process.platform !== 'linux') return `network namespaces are Linux only (this is ${process.platform})`;
  removeLeftovers();
  const probe = nsName('probe');
  const added = ip('netns', 'add', probe);
  if (added.error) return `cannot run ${IP}: ${added.error.message} (install iproute2)`;
  if (added.status !== 0) return `\`ip netns add\` failed: ${added.stderr.trim()} (needs root: CAP_NET_ADMIN and CAP_SYS_ADMIN)`;
  try {
    const veth = ip('-n', probe, 'link', 'add', 'pa', 'type', 'veth', 'peer', 'name', 'pb');
    if (veth.status !== 0) return `cannot make a veth pair: ${veth.stderr.trim()}`;
    const exec = spawnSync(IP, ['netns', 'exec', probe, process.execPath, '-e', ''], { encoding: 'utf8', timeout: 30_000 });
    if (exec.status !== 0) return `\`ip netns exec\` cannot run node: ${(exec.stderr || String(exec.error)).trim()}`;
    return undefined;
  } finally {
    ip('netns', 'del', probe);
  }
};

const unavailable = netnsUnavailable();
const canUseNetns = unavailable === undefined;
if (!canUseNetns) console.log(`netns.test.ts: skipping the network-namespace test: ${unavailable}`);

interface Result {
  code: number;
  /** The signal that ended it: SIGKILL when it outlived its limit. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * `grid ARGS --home HOME`, in namespace NS (or on the host when ns is undefined); killed after limitMs.
 * The limits are roomy: on a loaded 2-core machine starting node alone can take seconds.
 */
const grid = (ns: string | undefined, home: string, args: string[], limitMs = 45_000): Promise<Result> =>
  new Promise((resolve, reject) => {
    const command = [process.execPath, BIN, ...args, '--home', home];
    const began = Date.now();
    const child = ns === undefined ? spawn(command[0]!, command.slice(1), options()) : spawn(IP, ['netns', 'exec', ns, ...command], options());
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, signal, stdout: stdout.trim(), stderr: stderr.trim(), ms: Date.now() - began });
    });
  });

const options = () => ({ env: { ...process.env, GRID_HOME: '' }, stdio: ['ignore', 'pipe', 'pipe'] as ('ignore' | 'pipe')[] });

const ok = async (ns: string | undefined, home: string, args: string[]) => {
  const result = await grid(ns, home, args);
  if (result.code !== 0) throw new Error(`grid ${args.join(' ')} ${result.signal ? `killed by ${result.signal} after ${result.ms} ms` : `exited ${result.code}`}: ${result.stderr}`);
  return result.stdout;
};

/** `grid start --json` inside namespace NS; resolves with its URL once it listens. */
const startNode = async (ns: string, home: string, extra: string[]) => {
  const child = spawn(IP, ['netns', 'exec', ns, process.execPath, BIN, 'start', '--home', home, '--json', ...extra], options());
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  const started = new Promise<{ url: string }>((resolve, reject) => {
    let stdout = '';
    child.stdout!.on('data', (d) => {
      stdout += d;
      if (stdout.includes('\n')) resolve(JSON.parse(stdout.split('\n')[0]!));
    });
    void exited.then((code) => reject(new Error(`grid start exited ${code}: ${stderr}`)));
    setTimeout(() => reject(new Error(`grid start did not listen within 45 s: ${stderr}`)), 45_000).unref();
  });
  /** SIGTERM, then SIGKILL if it has not stopped within 5 s; resolves with its exit code. */
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    return exited;
  };
  try {
    return { url: (await started).url, stop };
  } catch (error) {
    await stop();
    throw error;
  }
};

const title = 'two nodes in their own network namespaces: a call crosses a veth pair; an absent address and loopback are unreachable';

(canUseNetns ? test : test.skip)(canUseNetns ? title : `${title} (skipped: ${unavailable})`, async (t) => {
  // Two namespaces joined by a veth pair: 10.77.X.1 in the first, 10.77.X.2 in the second, no routes elsewhere.
  const subnet = `10.77.${(process.pid % 250) + 1}`;
  const [ns1, ns2] = [nsName('n1'), nsName('n2')];
  t.teardown(() => {
    for (const ns of [ns1, ns2]) ip('netns', 'del', ns);
    removeLeftovers();
  });
  const must = (...args: string[]) => {
    const result = ip(...args);
    if (result.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${result.stderr || String(result.error)}`);
  };
  must('netns', 'add', ns1);
  must('netns', 'add', ns2);
  // Made inside ns1 with its peer sent straight to ns2, so nothing is ever left in the host's namespace.
  must('-n', ns1, 'link', 'add', 'veth1', 'type', 'veth', 'peer', 'name', 'veth2', 'netns', ns2);
  must('-n', ns1, 'addr', 'add', `${subnet}.1/24`, 'dev', 'veth1');
  must('-n', ns2, 'addr', 'add', `${subnet}.2/24`, 'dev', 'veth2');
  for (const [ns, dev] of [[ns1, 'veth1'], [ns2, 'veth2']] as const) {
    must('-n', ns, 'link', 'set', 'lo', 'up');
    must('-n', ns, 'link', 'set', dev, 'up');
  }
  t.log(`namespaces ${ns1} (${subnet}.1) and ${ns2} (${subnet}.2)`);

  const home1 = await tempDir(t);
  const home2 = await tempDir(t);
  await Promise.all([ok(ns1, home1, ['init']), ok(ns2, home2, ['init'])]);
  const module = join(home1, 'add.js');
  await writeFile(module, 'export const add = (ctx, a, b) => a + b;\n');
  const token = await ok(ns1, home1, ['issue', module, '--export', 'add', '--name', 'add']);
  t.regex(token, /^bafy[a-z2-7]+$/);

  const node = await startNode(ns1, home1, ['--listen', `${subnet}.1:0`]);
  t.teardown(() => node.stop());
  const escaped = subnet.replaceAll('.', '\\.');
  t.regex(node.url, new RegExp(`^ws://${escaped}\\.1:\\d+$`), 'the node listens on its namespace address');
  const port = new URL(node.url).port;

  t.is(await ok(ns2, home2, ['call', token, '2', '3', '--via', node.url]), '5', 'a call from the other namespace crosses the veth pair');

  // Nobody answers ARP for .9, so the connection fails (EHOSTUNREACH after ~3 s) or the handshake times out (5 s).
  // The call must give up by itself: if it hung, the 30 s limit would kill it and the signal would say so.
  const absent = await grid(ns2, home2, ['call', token, '2', '3', '--via', `ws://${subnet}.9:${port}`, '--timeout', '3000'], 30_000);
  t.is(absent.signal, null, `a call to an address nobody has gives up by itself (killed after ${absent.ms} ms)`);
  t.is(absent.code, 4, `and exits 4, unreachable (stderr: ${absent.stderr})`);
  t.regex(absent.stderr, new RegExp(`^grid: cannot reach ws://${escaped}\\.9:${port}`));
  t.log(`the call to ${subnet}.9 gave up after ${absent.ms} ms, process start included`);

  const hostLoopback = await grid(undefined, home2, ['call', token, '2', '3', '--via', `ws://127.0.0.1:${port}`]);
  t.is(hostLoopback.code, 4, "the host's loopback does not reach a node in a namespace");
  t.regex(hostLoopback.stderr, new RegExp(`^grid: cannot reach ws://127\\.0\\.0\\.1:${port}`));
  const ownLoopback = await grid(ns1, home2, ['call', token, '2', '3', '--via', `ws://127.0.0.1:${port}`]);
  t.is(ownLoopback.code, 4, "nor does its own namespace's loopback: it listens on its address alone");
  t.regex(ownLoopback.stderr, new RegExp(`^grid: cannot reach ws://127\\.0\\.0\\.1:${port}`));

  t.is(await node.stop(), 0, 'SIGTERM stops the node cleanly');
  const journal = await ok(ns1, home1, ['graph']);
  t.regex(journal, /add\(2, 3\) by did:key:/, "the remote call is in the first node's journal");
  t.regex(journal, /fulfilled #\d+ -> 5/);
});
