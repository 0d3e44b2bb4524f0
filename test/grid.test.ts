/**
 * A small grid of real `grid` processes on loopback, put together the way
 * people would: A invites B, B invites C. A call made on C is answered by A
 * through the peers C learned; when A crashes, what a cache can answer still
 * is, what only A can answer fails promptly as `unreachable`, and once A is
 * back on the same URL it is answered again. No node loses a record on the way.
 */
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './_helpers.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually, freePort, gridProcesses, type GraphEntry } from './_processes.js';

const { grid, ok, entries, startNode } = gridProcesses();

/** Who each forwarded call of `token` was forwarded to (a `forwarded` record names its call, the call names the token). */
const forwardedTo = (list: GraphEntry[], token: string): string[] => {
  const bySeq = new Map(list.map((e) => [e.seq, e]));
  return list.filter((e) => e.kind === 'forwarded' && bySeq.get(e.call!)?.token === token).map((e) => e.to!);
};

/** Calls of `token` that this node itself answered with a value. */
const fulfilledCalls = (list: GraphEntry[], token: string) => {
  const fulfilled = new Set(list.filter((e) => e.kind === 'fulfilled').map((e) => e.call));
  return list.filter((e) => e.kind === 'call' && e.token === token && fulfilled.has(e.seq)).length;
};

const hits = (list: GraphEntry[], token: string) => list.filter((e) => e.kind === 'hit' && e.token === token).length;

const peersFile = async (home: string): Promise<string[]> => JSON.parse(await readFile(join(home, 'peers'), 'utf8'));

const viaOf = (invitation: string) => new URL(invitation).searchParams.get('via');

test('three homes joined by invitations: forwarding, caching, the answering node crashing and coming back', async (t) => {
  t.timeout(120_000);
  const [a, b, c, modules] = await Promise.all([tempDir(t), tempDir(t), tempDir(t), tempDir(t)]);
  const [pa, pb, pc] = await Promise.all([ok(a, ['init']), ok(b, ['init']), ok(c, ['init'])]);
  const squareFile = join(modules, 'square.js');
  const whoFile = join(modules, 'who.js');
  await writeFile(squareFile, 'export const square = (ctx, x) => x * x;\n');
  // Reading ctx.caller makes `who` uncacheable: only A can ever answer it.
  await writeFile(whoFile, 'export const who = (ctx) => ctx.caller;\n');
  const square = await ok(a, ['issue', squareFile, '--export', 'square']);
  const who = await ok(a, ['issue', whoFile, '--export', 'who']);

  // A on a fixed port, so that after the crash it comes back on the URL B and C remember.
  const port = await freePort();
  const listen = ['--listen', `127.0.0.1:${port}`];
  let nodeA = await startNode(t, a, listen);
  t.is(nodeA.url, `ws://127.0.0.1:${port}`);
  t.is(nodeA.principal, pa);

  const inviteA = JSON.parse(await ok(a, ['invite', '--json']));
  t.regex(inviteA.invitation, /^grid:\/\/b[a-z2-7]+\?via=/);
  t.is(viaOf(inviteA.invitation), nodeA.url);
  t.true(typeof inviteA.expires === 'number' && inviteA.expires > Date.now(), `expires ${inviteA.expires}`);

  const nodeB = await startNode(t, b);
  t.deepEqual(nodeB.peers, []);
  const joinedB = JSON.parse(await ok(b, ['join', inviteA.invitation, '--json']));
  t.is(joinedB.introducer, pa);
  t.true(joinedB.peers.includes(nodeA.url), `B learned ${JSON.stringify(joinedB.peers)}`);
  t.true((await peersFile(b)).includes(nodeA.url), 'B remembers A');

  const inviteB = JSON.parse(await ok(b, ['invite', '--json']));
  t.is(viaOf(inviteB.invitation), nodeB.url);
  const nodeC = await startNode(t, c);
  const joinedC = JSON.parse(await ok(c, ['join', inviteB.invitation, '--json']));
  t.is(joinedC.introducer, pb);
  t.deepEqual([...new Set<string>(joinedC.peers)].sort(), [nodeA.url, nodeB.url].sort(), 'C learned B, and A from B');
  t.deepEqual([...new Set(await peersFile(c))].sort(), [nodeA.url, nodeB.url].sort(), 'C remembers both');

  // C holds neither closure; its running node (joined just now, not restarted) must forward both calls.
  t.is(await ok(c, ['call', square, '12']), '144');
  const caller = JSON.parse(await ok(c, ['call', who]));
  t.true([pb, pc].includes(caller), `who answered ${caller}: A sees the node that forwarded the call`);

  const onC = await eventually(() => entries(c), (list) => forwardedTo(list, square).length > 0 && forwardedTo(list, who).length > 0, 5000);
  const onB = await entries(b);
  for (const [name, token] of [['square', square], ['who', who]] as const) {
    const to = forwardedTo(onC, token);
    t.is(to.length, 1, `C's journal records forwarding ${name} once`);
    if (to[0] === pb) t.deepEqual(forwardedTo(onB, token), [pa], `B passed ${name} on to A, and recorded it`);
    else t.is(to[0], pa, `C forwarded ${name} to A or B`);
  }

  // What was on record before the crash; A's journal is read from disk while its node runs.
  const beforeA = await eventually(() => entries(a), (list) => fulfilledCalls(list, square) > 0 && fulfilledCalls(list, who) > 0, 5000);
  t.is(fulfilledCalls(beforeA, square), 1, 'A computed square(12)');
  t.is(fulfilledCalls(beforeA, who), 1, 'A answered who');
  const beforeB = await entries(b);
  const beforeC = await entries(c);
  const hitsBefore = hits(beforeB, square) + hits(beforeC, square);

  t.is(await nodeA.crash(), 'SIGKILL');

  t.is(await ok(c, ['call', square, '12']), '144', 'a pure answer outlives the node that computed it');
  const hitsAfter = await eventually(
    async () => hits(await entries(b), square) + hits(await entries(c), square),
    (n) => n > hitsBefore,
    5000,
  );
  t.true(hitsAfter > hitsBefore, 'answered from the cache on B or C');

  // A long call timeout, so that failing fast is the node's doing, not the CLI giving up.
  const down = await grid(c, ['call', who, '--timeout', '30000'], 45_000);
  t.true(down.code === 3 || down.code === 4, `exit ${down.code}: ${down.stderr}`);
  t.regex(down.stderr, /unreachable/);
  t.true(down.ms < 20_000, `the failure took ${down.ms} ms`);

  nodeA = await startNode(t, a, listen);
  t.is(nodeA.url, `ws://127.0.0.1:${port}`, 'A is back where B and C remember it');
  const back = await eventually(() => grid(c, ['call', who]), (r) => r.code === 0, 30_000, 500);
  t.is(back.code, 0, `who on C after A came back: ${back.stderr}`);
  t.true([pb, pc].includes(JSON.parse(back.stdout || 'null')));

  for (const node of [nodeA, nodeB, nodeC]) t.is(await node.stop(), 0, 'SIGTERM stops a node cleanly');

  const [afterA, afterB, afterC] = await Promise.all([entries(a), entries(b), entries(c)]);
  for (const [name, before, after] of [['A', beforeA, afterA], ['B', beforeB, afterB], ['C', beforeC, afterC]] as const) {
    t.true(after.length >= before.length, `${name}'s journal went from ${before.length} to ${after.length} records`);
    t.deepEqual(after.slice(0, before.length), before, `${name}'s journal kept every record it had`);
  }
  t.deepEqual(afterA.filter((e) => e.kind === 'issue').map((e) => e.token).sort(), [square, who].sort(), "A's issue records survived the crash");
  t.is(fulfilledCalls(afterA, who), 2, 'the call after the restart is on record beside the one before the crash');
});

test('an invitation is good for one join, and not after it expires; a home that joined offline uses its peers when it starts', async (t) => {
  t.timeout(90_000);
  const [a, d, modules] = await Promise.all([tempDir(t), tempDir(t), tempDir(t)]);
  await Promise.all([a, d].map((home) => ok(home, ['init'])));
  const squareFile = join(modules, 'square.js');
  await writeFile(squareFile, 'export const square = (ctx, x) => x * x;\n');
  const square = await ok(a, ['issue', squareFile, '--export', 'square']);
  const nodeA = await startNode(t, a);

  const invitation = await ok(a, ['invite']);
  t.regex(invitation, /^grid:\/\/b[a-z2-7]+\?via=/);
  t.is(viaOf(invitation), nodeA.url);
  // D's node is not running: join opens D's home itself.
  t.regex(await ok(d, ['join', invitation]), /^joined /);
  const remembered = await peersFile(d);
  t.true(remembered.includes(nodeA.url), `D remembers ${JSON.stringify(remembered)}`);

  const reused = await grid(d, ['join', invitation]);
  t.is(reused.code, 1, 'an invitation is usable once');
  t.regex(reused.stderr, /^grid: [^\n]+$/);

  const asked = Date.now();
  const short = JSON.parse(await ok(a, ['invite', '--expires', '1s', '--json']));
  const answered = Date.now();
  t.true(short.expires >= asked + 500 && short.expires <= answered + 1500, `expires ${short.expires - asked} ms after asking`);
  await sleep(Math.max(0, short.expires - Date.now()) + 500);
  const late = await grid(d, ['join', short.invitation]);
  t.is(late.code, 1, 'an expired invitation is refused');
  t.regex(late.stderr, /^grid: [^\n]+$/);
  t.deepEqual(await peersFile(d), remembered, 'refused joins leave the remembered peers alone');

  const nodeD = await startNode(t, d);
  t.true(nodeD.peers.includes(nodeA.url), `D started with peers ${JSON.stringify(nodeD.peers)}`);
  t.is(await ok(d, ['call', square, '9']), '81', "D's node forwards to the peer it joined");
  t.is(await nodeD.stop(), 0);
  t.is(await nodeA.stop(), 0);
});
