/**
 * Waiting for approvals across real `grid` processes, as the README's flow
 * goes: Alice runs a node and delegates to Bob behind 2-of-3 approval; Bob's
 * `grid call` waits past the node's own call limit (5 s) until the approvals
 * come, or until `--timeout`, then exits 4 naming the still-pending promise;
 * calling that promise answers its real state, directly or through Bob's own
 * node; approvers see what waits for them with `grid pending`, and an
 * approval by anyone else is refused and never listed.
 */
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempDir } from './_helpers.js';
import { eventually, gridProcesses } from './_processes.js';

const { grid, ok, startNode } = gridProcesses({ GRID_LOCK_WAIT_MS: '30000' });

test.serial('grid call waits for approvals past the call limit; grid pending shows approvers what waits for them', async (t) => {
  t.timeout(300_000);
  const [alice, bob, p1, p2, p3, mallory, modules] = await Promise.all([tempDir(t), tempDir(t), tempDir(t), tempDir(t), tempDir(t), tempDir(t), tempDir(t)]);
  const [, pb, pp1, pp2, pp3, pm] = await Promise.all([alice, bob, p1, p2, p3, mallory].map((home) => ok(home, ['init'])));
  const addFile = join(modules, 'add.js');
  await writeFile(addFile, 'export const add = (ctx, a, b) => a + b;\n');
  await ok(alice, ['issue', addFile, '--export', 'add', '--name', 'add']);
  const node = await startNode(t, alice);
  const url = await ok(alice, ['delegate', 'add', '--to', pb!, '--approvals', '2', '--approver', pp1!, '--approver', pp2!, '--approver', pp3!]);

  // Bob calls and waits; nothing waits for Mallory, one call waits for each approver.
  const called = Date.now();
  const bobsCall = grid(bob, ['call', url, '20', '22', '--timeout', '150000'], 170_000);
  const listed = await eventually(() => grid(p1, ['pending', '--via', node.url, '--json']), (r) => r.code === 0 && JSON.parse(r.stdout).pending.length === 1, 20_000);
  const [view] = JSON.parse(listed.stdout).pending as Array<{ url: string; caller: string; args: unknown[]; approvers: string[]; approvedBy: string[]; yours: string; reason: string }>;
  t.like(view, { caller: pb, args: [20, 22], approvers: [pp1, pp2, pp3], approvedBy: [], yours: 'approve' });
  t.regex(view!.url, new RegExp(`^grid://bafy[a-z2-7]+\\?via=${encodeURIComponent(node.url).replace(/[.]/g, '\\.')}$`));
  t.regex(view!.reason, /waiting for 2 of 3 approvals \(0 so far\)/);
  t.is((await ok(mallory, ['pending', '--via', node.url])), '(nothing waits for you)');
  const text = await ok(p2, ['pending', '--via', node.url]);
  t.regex(text, new RegExp(`^to approve: grid://bafy[a-z2-7]+\\?via=\\S+\\n {2}did:key:\\S+ called bafy\\S+\\(20,22\\) at \\S+\\n {2}delegation bafy\\S+: waiting for 2 of 3 approvals \\(0 so far\\)$`));

  // An approval by someone not listed is refused and never listed; a listed one counts once.
  const stranger = await grid(mallory, ['call', view!.url, '"approve"']);
  t.is(stranger.code, 3, stranger.stderr);
  t.is(stranger.stderr, `revoked: ${pm} is not one of the approvers this call waits for`);
  t.deepEqual(JSON.parse(await ok(p1, ['call', view!.url, '"approve"'])), { approvedBy: [pp1], status: 'waiting' });
  t.deepEqual(JSON.parse(await ok(p1, ['call', view!.url, '"approve"'])), { approvedBy: [pp1], status: 'waiting' });
  t.is(await ok(p1, ['pending', '--via', node.url]), '(nothing waits for you)', 'it no longer waits for p1');
  // Past the node's 5 s call limit Bob is still waiting (7 s after he called, counting the steps above); the second approval lets the call through.
  await sleep(Math.max(0, called + 7000 - Date.now()));
  t.deepEqual(JSON.parse(await ok(p3, ['call', view!.url, '"approve"'])), { approvedBy: [pp1, pp3], status: 'fulfilled' });
  const waited = await bobsCall;
  t.is(waited.code, 0, waited.stderr);
  t.is(waited.stdout, '42');
  t.true(waited.ms > 7000, `Bob's call waited for the approvals (${waited.ms} ms)`);
  t.is(await ok(p2, ['pending', '--via', node.url]), '(nothing waits for you)');

  // No approvals within --timeout: exit 4, still pending, with the promise's grid URL.
  const gaveUp = await grid(bob, ['call', url, '1', '2', '--timeout', '7000']);
  t.is(gaveUp.code, 4, gaveUp.stderr);
  t.true(gaveUp.ms >= 7000 && gaveUp.ms < 60_000, `gave up at its --timeout (${gaveUp.ms} ms)`);
  const pendingUrl = /^still pending after [\d.]+ s \(call it again for its state\): (grid:\/\/bafy[a-z2-7]+\?via=\S+)$/.exec(gaveUp.stderr)?.[1];
  if (!pendingUrl) return t.fail(`no pending URL in: ${gaveUp.stderr}`);
  const stillPending = await grid(bob, ['call', pendingUrl, '--timeout', '8000']);
  t.is(stillPending.code, 4, 'calling the promise again: still pending');
  t.regex(stillPending.stderr, /^still pending after/);
  t.regex(JSON.parse(await ok(bob, ['pending', '--via', node.url, '--json'])).pending[0].yours, /^collect$/, 'Bob sees the call he may collect');
  // Through Bob's own node (peered with Alice's): forwarded, it answers its state, not "unreachable".
  const bobsNode = await startNode(t, bob, ['--peer', node.url]);
  const token = new URL(pendingUrl).hostname;
  const forwarded = await grid(bob, ['call', token, '--timeout', '12000']);
  t.is(forwarded.code, 4, forwarded.stderr);
  t.regex(forwarded.stderr, new RegExp(`^still pending after [\\d.]+ s \\(call it again for its state\\): grid://${token}\\?via=`), 'through a node too');
  await ok(p2, ['call', pendingUrl, '"approve"']);
  await ok(p3, ['call', pendingUrl, '"approve"']);
  t.is(await ok(bob, ['call', token]), '3', 'the value, through Bob\'s node');
  t.is(await ok(bob, ['call', pendingUrl]), '3', 'and directly');
  const others = await grid(mallory, ['call', pendingUrl]);
  t.is(others.code, 3);
  t.regex(others.stderr, /who made the call, can collect its answer/);
  await bobsNode.stop();
  t.is(await node.stop(), 0);
});
