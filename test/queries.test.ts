/** Promise-graph queries: who can reach a token and through whom, what is pending or broken, calls, and a token's tree. */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { openKernel, type Token } from '../src/index.js';
import { GraphIndex, renderTree } from '../src/journal/queries.js';
import { journalEntries } from './_helpers.js';

test('who, pending, broken, calls and show answer from a journal of delegations and calls', async (t) => {
  let now = 1_000;
  const open = () => openKernel({ memory: true, clock: () => now });
  const [alice, bob, carol, dave] = await Promise.all([open(), open(), open(), open()]);
  t.teardown(() => Promise.all([alice, bob, carol, dave].map((k) => k.close())));
  const code = await alice.publish('export const add = (ctx, a, b) => a + b; export const later = (ctx) => ctx.issue({ export: "add" });');
  const add = await alice.issue({ code, export: 'add' });
  const later = await alice.issue({ code, export: 'later' });
  const toBob = await alice.delegate({ token: add, to: [bob.principal] });
  await bob.call(toBob, [], { chain: (await alice.chainBlocks(toBob))! });
  const toCarol = await bob.delegate({ token: toBob, to: [carol.principal] });
  const toDave = await alice.delegate({ token: add, to: [dave.principal], policies: [{ module: 'approval', settings: { k: 1, of: [alice.principal] } }] });

  now = 2_000;
  t.is((await alice.call(add, [1, 1])).status, 'fulfilled');
  now = 3_000;
  t.is((await alice.call(toCarol, [2, 2], { caller: carol.principal, chain: (await bob.chainBlocks(toCarol))! })).status, 'fulfilled');
  t.is((await alice.call(toBob, [3, 3], { caller: carol.principal })).status, 'revoked');
  const waiting = await alice.call(toDave, [4, 4], { caller: dave.principal });
  t.is(waiting.status, 'promised');
  const unkept = await alice.call(later, []);
  t.is(unkept.status, 'promised');

  const index = new GraphIndex();
  for (const entry of (await journalEntries(alice.journal))) index.add(entry);

  const reach = (token: Token) => index.who(token).map((r) => [r.principal, r.through]);
  t.deepEqual(reach(add), [
    [alice.principal, []],
    [bob.principal, [toBob]],
    [carol.principal, [toCarol, toBob]],
    [dave.principal, [toDave]],
  ]);
  t.deepEqual(reach(toBob), [[bob.principal, []], [carol.principal, [toCarol]]], 'a delegation is called directly by its audience');

  // Pending: Dave's call waits for approval; `later` promised a token nobody has called.
  t.deepEqual(index.pending().map((v) => v.call.token).sort(), [later, toDave].sort());
  t.deepEqual(index.broken().map((b) => [b.token, b.caller]), [[toBob, carol.principal]]);
  t.deepEqual(index.calls({ token: add }).map((v) => v.call.args), [[1, 1], [2, 2]]);
  t.deepEqual(
    index.calls({ caller: carol.principal }).map((v) => [v.call.token, v.outcome?.kind]),
    [[toCarol, 'fulfilled'], [add, 'fulfilled'], [toBob, 'revoked']],
    'the closure sees the caller who came through the delegation',
  );
  t.deepEqual(index.calls({ since: 3_000 }).map((v) => v.call.token).filter((tok) => tok === add), [add], 'since a time: only the call through the delegation');

  await alice.revoke(toBob, 'Bob left');
  for (const entry of (await journalEntries(alice.journal)).slice(-2)) index.add(entry);
  t.deepEqual(reach(add).map(([p]) => p), [alice.principal, dave.principal], 'revoking a layer cuts off everyone through it');
  t.is(index.broken().at(-1)!.reason, 'Bob left');

  const tree = renderTree(index.show(add, (id) => (id === add ? 'add' : id === toBob ? 'toBob' : id === toCarol ? 'toCarol' : id.slice(0, 8))));
  t.regex(tree, /^add: issued by did:key: \(bafkreia?[\w]*#add\)|^add: issued by did:key:/);
  t.regex(tree, /├─ call #\d+ by did:key: → fulfilled/);
  t.regex(tree, /delegated as toBob by did:key: to did:key: \(revoked: Bob left\)\n│  ├─ call #\d+ by did:key: → revoked: /);
  t.regex(tree, /│  └─ delegated as toCarol by did:key: to did:key:\n│     └─ call #\d+ by did:key: → fulfilled/);
});
