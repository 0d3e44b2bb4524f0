/**
 * What a node keeps of delegations across a restart: policy state (a quota
 * used up stays used up), revocations of layers, and the wraps in its graph.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { openKernel } from '../src/index.js';
import { tempDir, journalEntries } from './_helpers.js';
import type { RevocationNotice } from '../src/kernel/revocations.js';

test('a quota used up, a revoked layer and the wraps survive a restart of the answering node', async (t) => {
  const home = await tempDir(t);
  const bob = await openKernel({ memory: true });
  t.teardown(() => bob.close());
  let alice = await openKernel({ home, create: true });
  const add = await alice.issue({ code: await alice.publish('export const add = (ctx, a, b) => a + b;'), export: 'add' });
  const limited = await alice.delegate({ token: add, to: [bob.principal], policies: [{ module: 'rate', settings: { uses: 2 } }] });
  const other = await alice.delegate({ token: add, to: [bob.principal] });
  t.deepEqual(await alice.call(limited, [1, 1], { caller: bob.principal }), { status: 'fulfilled', value: 2 });
  await alice.revoke(other, 'changed my mind');
  await alice.close();

  alice = await openKernel({ home });
  t.teardown(() => alice.close());
  t.deepEqual(await alice.call(limited, [1, 2], { caller: bob.principal }), { status: 'fulfilled', value: 3 }, 'the second of two uses');
  t.deepEqual(await alice.call(limited, [1, 3], { caller: bob.principal }), { status: 'revoked', code: 'screened', reason: `delegation ${limited.slice(0, 12)}…: quota of 2 calls used up` });
  t.deepEqual(await alice.call(other, [1, 1], { caller: bob.principal }), { status: 'revoked', code: 'token-revoked', reason: 'changed my mind' });
  const kinds = (await journalEntries(alice.journal)).map((entry) => entry.kind);
  t.is(kinds.filter((kind) => kind === 'wrap').length, 2);
  t.true(kinds.includes('policy-state'));
});

test('a revocation heard before its delegation is seen survives a restart, and holds when the delegation turns up', async (t) => {
  const home = await tempDir(t);
  let alice = await openKernel({ home, create: true });
  const bob = await openKernel({ memory: true });
  const carol = await openKernel({ memory: true });
  t.teardown(() => Promise.all([bob.close(), carol.close()]));
  const add = await alice.issue({ code: await alice.publish('export const add = (ctx, a, b) => a + b;'), export: 'add' });
  const toBob = await alice.delegate({ token: add, to: [bob.principal] });
  // Bob takes in his layer, then passes it on to Carol and revokes that before Alice ever sees Carol's layer.
  t.like(await bob.call(toBob, [], { chain: (await alice.chainBlocks(toBob))! }), { status: 'revoked', code: 'unknown-token' });
  const toCarol = await bob.delegate({ token: toBob, to: [carol.principal] });
  const notices: RevocationNotice[] = [];
  bob.onRevocation((notice) => void notices.push(notice));
  await bob.revoke(toCarol, 'Carol left');
  t.false(await alice.hearRevocation(notices[0]!, bob.principal), 'kept until the delegation is seen');
  await alice.close();

  alice = await openKernel({ home });
  t.teardown(() => alice.close());
  const outcome = await alice.call(toCarol, [1, 2], { caller: carol.principal, chain: (await bob.chainBlocks(toCarol))! });
  t.like(outcome, { status: 'revoked', code: 'token-revoked', reason: 'Carol left' }, 'the restart did not forget it');
  t.like(
    (await journalEntries(alice.journal)).find((entry) => entry.kind === 'revocation'),
    { token: toCarol, by: bob.principal, from: bob.principal },
    'believed once the delegation turned up',
  );
});
