/**
 * The control plane (src/p2p) with real `grid start` processes on loopback:
 * A and C each keep only B as a peer, and B keeps none, so forwarding
 * through peers can never reach A from C — only the DHT can. A hostile
 * process claims on the DHT to provide a token it does not hold.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { asToken } from '../src/interface/ids.js';
import { providerKey } from '../src/p2p/routing.js';
import { tempDir } from './_helpers.js';
import { eventually, gridProcesses } from './_processes.js';

const { grid, ok, entries, startNode } = gridProcesses({ GRID_LOG_LEVEL: 'debug' });

/** The node's log lines of one event. */
const events = (stderr: string, event: string): Array<Record<string, unknown>> =>
  stderr
    .split('\n')
    .filter((line) => line.includes(`"event":"${event}"`))
    .map((line) => JSON.parse(line) as Record<string, unknown>);

/** The false provider (test/_false-provider.ts), running until the test ends. */
const falseProvider = async (t: import('ava').ExecutionContext, key: string, url: string, bootstrap: string[]) => {
  const child = spawn(process.execPath, ['--import=./test/_preload.mjs', '--import=tsx', 'test/_false-provider.ts', key, url, ...bootstrap], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on('close', resolve));
  t.teardown(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  const ready = await eventually(async () => stdout, (text) => text.includes('\n') || child.exitCode !== null, 60_000, 100);
  if (!ready.includes('\n')) throw new Error(`the false provider did not start: ${stderr}`);
  return { ...(JSON.parse(ready.slice(0, ready.indexOf('\n'))) as { principal: string; peer: string }), asked: () => (stdout.match(/^asked /gm) ?? []).length };
};

test('C finds A through the DHT alone, calls it over its own session; a revoked token is no longer provided; a false provider is never called', async (t) => {
  t.timeout(120_000);
  const [a, b, c, d, modules] = await Promise.all([tempDir(t), tempDir(t), tempDir(t), tempDir(t), tempDir(t)]);
  const [pa, , pc] = await Promise.all([ok(a, ['init']), ok(b, ['init']), ok(c, ['init']), ok(d, ['init'])]);
  // Reading ctx.caller makes `who` uncacheable, and names whoever called A: C only if C called A directly.
  const whoFile = join(modules, 'who.js');
  await writeFile(whoFile, 'export const who = (ctx) => ctx.caller;\n');
  const who = await ok(a, ['issue', whoFile, '--export', 'who']);
  const gone = await ok(a, ['issue', whoFile, '--export', 'who']);
  // A token whose node never runs: only the false provider claims it.
  const orphan = await ok(d, ['issue', whoFile, '--export', 'who']);

  const began = Date.now();
  const phase = (name: string) => t.log(`${name}: ${Date.now() - began} ms`);
  const nodeB = await startNode(t, b);
  const bAddresses = (await eventually(async () => events(nodeB.stderr(), 'p2p-listening'), (lines) => lines.length > 0, 10_000))[0]!.addresses as string[];
  // A false provider, started now as it takes a while: it holds the orphan's DHT key (as DHT nodes near it do), not the token, and names B's URL as its own.
  const [nodeA, nodeC, liar] = await Promise.all([
    startNode(t, a, ['--peer', nodeB.url]),
    startNode(t, c, ['--peer', nodeB.url]),
    providerKey(asToken(orphan)).then((key) => falseProvider(t, key.toString(), nodeB.url, bAddresses)),
  ]);
  t.deepEqual(nodeC.peers, [nodeB.url], 'C keeps B alone: no invitation, no peer list names A');
  phase('three nodes up');

  // B is C's only peer and holds nothing: forwarding alone ends "unknown token"; the DHT finds A once A has provided.
  await eventually(async () => events(nodeA.stderr(), 'p2p-provided'), (lines) => lines.some((line) => line.token === who), 30_000, 100);
  phase('A provided');
  const called = await eventually(() => grid(c, ['call', who, '--json', '--timeout', '20000']), (result) => result.code === 0, 30_000, 300);
  if (called.code !== 0) t.log(called.stdout, called.stderr, nodeC.stderr().split('\n').filter((line) => line.includes('p2p')).join('\n'), nodeA.stderr().split('\n').filter((line) => line.includes('p2p')).join('\n'));
  t.is(called.code, 0, called.stderr);
  phase('C called A');
  t.is(JSON.parse(called.stdout).value, pc, 'A saw C itself as the caller: the call went straight to A, not through B');
  const found = events(nodeC.stderr(), 'p2p-found').filter((line) => line.token === who);
  t.true(found.length >= 1 && found.every((line) => line.peer === pa), `C found A on the DHT: ${JSON.stringify(found)}`);
  t.true(events(nodeC.stderr(), 'p2p-bootstrap').some((line) => line.peer !== pa), 'C bootstrapped its DHT from B');
  const onC = await entries(c);
  const bySeq = new Map(onC.map((entry) => [entry.seq, entry]));
  t.deepEqual(
    onC.filter((entry) => entry.kind === 'forwarded' && bySeq.get(entry.call!)?.token === who).map((entry) => entry.to),
    [pa],
    'C journaled the call as forwarded to A',
  );

  // A revokes `gone` before anyone asked for it: A stops providing it, so C never reaches A for it.
  await ok(a, ['revoke', gone]);
  await eventually(async () => events(nodeA.stderr(), 'p2p-unprovided'), (lines) => lines.some((line) => line.token === gone), 5000);
  phase('A unprovided');
  const revokedCall = await grid(c, ['call', gone, '--json', '--timeout', '20000']);
  phase('C called the revoked token');
  t.is(revokedCall.code, 3, revokedCall.stderr);
  t.regex(revokedCall.stderr + revokedCall.stdout, /unknown token/, 'nobody proves it: C never calls A for it (A would answer "revoked")');
  t.false(
    (await entries(a)).some((entry) => entry.kind === 'call' && entry.token === gone),
    'A got no call on the revoked token',
  );

  const lied = await grid(c, ['call', orphan, '--json', '--timeout', '20000']);
  phase('C called the orphan');
  t.is(lied.code, 3, lied.stderr);
  t.regex(lied.stderr + lied.stdout, /unknown token/);
  t.true(liar.asked() >= 1, 'C asked the false provider for its proof');
  const cut = events(nodeC.stderr(), 'p2p-cut-off');
  t.true(cut.some((line) => line.peer === liar.principal), `C cut the false provider off: ${JSON.stringify(cut)}`);
  t.false(events(nodeC.stderr(), 'p2p-found').some((line) => line.token === orphan), 'no provider of the orphan was called');
  for (const home of [a, b]) t.false((await entries(home)).some((entry) => entry.kind === 'call' && entry.token === orphan), 'no node got a call on the orphan');
  // Asked again, the liar is not even asked for a proof: it stays cut off.
  const before = liar.asked();
  t.is((await grid(c, ['call', orphan, '--json', '--timeout', '20000'])).code, 3);
  t.is(liar.asked(), before, 'a provider cut off is not asked again');

  // An invitation carries where the introducer's control plane listens, each address ending in its own peer id.
  const { invitation } = JSON.parse(await ok(a, ['invite', '--json'])) as { invitation: string };
  const aPeer = events(nodeA.stderr(), 'p2p-listening')[0]!.peer as string;
  const carried = new URL(invitation).searchParams.getAll('p2p');
  t.true(carried.length >= 2 && carried.every((address) => address.endsWith(`/p2p/${aPeer}`)), invitation);
  t.is(new URL(invitation).searchParams.get('via'), nodeA.url);

  await Promise.all([nodeA.stop(), nodeB.stop(), nodeC.stop()]);
});
