/**
 * Restarting nodes of a three-node grid of real `grid` processes, none
 * started with --listen: a node comes back on the port its home remembers,
 * so its peers and the grid URLs it handed out still reach it; and when that
 * port is taken, it comes back on another and its peers — and a peer of a
 * peer it does not know — follow it through signed address records.
 */
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { tempDir } from './_helpers.js';
import { eventually, gridProcesses } from './_processes.js';

const { grid, ok, startNode } = gridProcesses({ GRID_LOCK_WAIT_MS: '30000' });

const peersFile = async (home: string): Promise<string[]> => JSON.parse(await readFile(join(home, 'peers'), 'utf8'));
const occupy = (port: number) =>
  new Promise<Server>((resolve, reject) => {
    const server = createServer((socket) => socket.destroy()); // a program that holds the port and talks to nobody
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });

test('a restarted node comes back on its port; one whose port was taken comes back elsewhere and its peers follow', async (t) => {
  t.timeout(180_000);
  const [a, b, c, d, modules] = await Promise.all([tempDir(t), tempDir(t), tempDir(t), tempDir(t), tempDir(t)]);
  const [pa, pb, pc] = await Promise.all([ok(a, ['init']), ok(b, ['init']), ok(c, ['init']), ok(d, ['init'])]);
  const whoFile = join(modules, 'who.js');
  await writeFile(whoFile, 'export const who = (ctx) => ctx.caller;\n');
  // Only A can answer `who` (it reads ctx.caller: nothing caches it).
  const who = await ok(a, ['issue', whoFile, '--export', 'who']);

  let nodeA = await startNode(t, a);
  let nodeB = await startNode(t, b);
  const nodeC = await startNode(t, c);
  t.deepEqual(JSON.parse(await readFile(join(a, 'listen'), 'utf8')), { port: Number(new URL(nodeA.url).port) }, 'the home remembers its port');
  await ok(b, ['join', await ok(a, ['invite'])]);
  await ok(c, ['join', await ok(b, ['invite'])]);
  t.deepEqual([...new Set(await peersFile(c))].sort(), [nodeA.url, nodeB.url].sort());
  t.true((await peersFile(b)).includes(nodeC.url), 'B keeps C (C joined with its node running)');
  t.true((await peersFile(a)).includes(nodeB.url), 'A keeps B');

  // B, the middle node, restarts without --listen: same URL, so C's peers file and a grid URL naming B still work.
  const urlB = nodeB.url;
  t.is(await nodeB.stop(), 0);
  nodeB = await startNode(t, b);
  t.is(nodeB.url, urlB, 'B is back where its peers and URLs expect it');
  const throughB = `grid://${who}?via=${encodeURIComponent(urlB)}`;
  const viaB = await eventually(() => grid(d, ['call', throughB]), (r) => r.code === 0, 30_000, 500);
  t.is(viaB.code, 0, `a call through B after its restart: ${viaB.stderr}`);
  t.is(JSON.parse(viaB.stdout), pb, 'B forwarded it to A');

  // A's port is taken while it is down: it comes back elsewhere and says so.
  const urlA = nodeA.url;
  t.is(await nodeA.stop(), 0);
  const blocker = await occupy(Number(new URL(urlA).port));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  nodeA = await startNode(t, a);
  t.not(nodeA.url, urlA, `A came back at ${nodeA.url}`);
  t.is(nodeA.principal, pa);
  t.regex(nodeA.stderr(), /"event":"port-taken"[^\n]*is taken: listening on \d+ instead/, 'a warning line in its log');
  t.deepEqual(JSON.parse(await readFile(join(a, 'listen'), 'utf8')), { port: Number(new URL(nodeA.url).port) }, 'and remembers the new port');

  // B hears it from A; C, whom A does not know, hears it from B. Both remember it in place of the old URL.
  const follows = async (home: string) => {
    const peers = await peersFile(home);
    return peers.includes(nodeA.url) && !peers.includes(urlA);
  };
  t.true(await eventually(() => follows(b), Boolean, 15_000), `B keeps ${JSON.stringify(await peersFile(b))}`);
  t.true(await eventually(() => follows(c), Boolean, 15_000), `C keeps ${JSON.stringify(await peersFile(c))}`);
  const fromC = await eventually(() => grid(c, ['call', who]), (r) => r.code === 0, 30_000, 500);
  t.is(fromC.code, 0, `who on C after A moved: ${fromC.stderr}`);
  t.true([pb, pc].includes(JSON.parse(fromC.stdout)), `A saw ${fromC.stdout}`);
  t.regex(nodeB.stderr(), /"event":"peer-moved"/, "B's log says A moved");

  for (const node of [nodeA, nodeB, nodeC]) t.is(await node.stop(), 0);
});
