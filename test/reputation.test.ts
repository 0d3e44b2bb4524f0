/**
 * Reputation measures what an issuer failed to keep, not what its callers
 * asked for: a stranger cannot lower it with bad input or calls crafted to
 * crash or time out, and an issuer cannot raise it by calling its own
 * tokens. Checked on the tally the kernel keeps live, on a pass over the
 * journal, after a restart (replay), and through the `reputation` policy.
 */
import '../src/perimeter/lockdown.js';
import anyTest, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { openKernel, type Kernel, type Outcome, type Principal, type Token } from '../src/index.js';
import { generateIdentity } from '../src/identity/index.js';
import { reputation, weightOfCause } from '../src/journal/reputation.js';
import { readRecord } from '../src/journal/journal.js';
import { encode } from '../src/wire/index.js';
import { tempDir, journalEntries } from './_helpers.js';

// Vat restarts (time limits) are real: one test at a time on a small machine.
const test = anyTest.serial;

const random = (n: number) => new Uint8Array(randomBytes(n));
const stranger = () => generateIdentity(random).principal;

const HOSTILE = `
  export const spin = (ctx, n) => { if (n === 'loop') for (;;) {} return n; };
  export const crash = (ctx, x) => { if (x === 'boom') throw new Error('boom'); return x; };
  export const relay = (ctx, ...args) => ctx.call(ctx.env.target, ...args);
`;

interface Alice {
  kernel: Kernel;
  add: Token;
  spin: Token;
  crash: Token;
  relay: Token;
}

const alice = async (t: ExecutionContext, home?: string): Promise<Alice> => {
  const kernel = await openKernel(home ? { home, limits: { vats: 1 } } : { memory: true, limits: { vats: 1 } });
  t.teardown(() => kernel.close());
  const add = await kernel.issue({ code: await kernel.publish(await readFile('examples/guard.js', 'utf8')), export: 'add' });
  const code = await kernel.publish(HOSTILE);
  const spin = await kernel.issue({ code, export: 'spin', timeLimitMs: 300 });
  const crash = await kernel.issue({ code, export: 'crash' });
  const relay = await kernel.issue({ code, export: 'relay', env: { target: { '/': add } } });
  return { kernel, add, spin, crash, relay };
};

const as = (caller: Principal) => ({ caller });
const reasonOf = (outcome: Outcome) => (outcome.status === 'revoked' ? outcome.reason : `(not revoked: ${JSON.stringify(outcome)})`);
const row = (kernel: Kernel) => kernel.reputation().find((r) => r.issuer === kernel.principal)!;

test('a caller cannot lower an issuer: refusals are kept, limits and crashes count once per caller', async (t) => {
  const { kernel, add, spin, crash, relay } = await alice(t);
  const [bob, mallory, trudy] = [stranger(), stranger(), stranger()];
  for (let i = 0; i < 10; i += 1) t.is((await kernel.call(add, [i, 1], as(bob))).status, 'fulfilled');
  // The README's guard pattern: bad input is refused by the closure, the promise kept.
  for (let i = 0; i < 5; i += 1) t.regex(reasonOf(await kernel.call(add, ['two', i], as(mallory))), /^add expects/);
  t.like(row(kernel), { fulfilled: 10, broken: 0, refused: 5, pending: 0 });
  // A closure that lets a nested refusal escape passes it on: counted where it was refused (here, a call
  // by Alice's own relay on her add, which counts for nothing), not as the relay's crash.
  t.like(await kernel.call(relay, ['x', 1], as(mallory)), { status: 'revoked' });
  t.like(row(kernel), { fulfilled: 10, broken: 0, refused: 5 });
  // Arguments crafted to loop to the time limit, or to crash: a break, but one per caller however many calls.
  for (let i = 0; i < 3; i += 1) t.deepEqual(await kernel.call(spin, ['loop'], as(mallory)), { status: 'revoked', code: 'time-limit', reason: 'time limit' });
  for (let i = 0; i < 3; i += 1) t.regex(reasonOf(await kernel.call(crash, ['boom'], as(mallory))), /boom/);
  t.like(row(kernel), { fulfilled: 10, broken: 1, pending: 0 });
  t.like(await kernel.call(crash, ['boom'], as(trudy)), { status: 'revoked' });
  t.like(row(kernel), { broken: 2 }, 'another caller that met a crash is another broken promise');
  // The issuer revoking a token after issuing it is broken, once; calls on it afterwards count for nobody.
  await kernel.revoke(crash, 'withdrawn');
  for (let i = 0; i < 3; i += 1) t.deepEqual(await kernel.call(crash, [1], as(stranger())), { status: 'revoked', code: 'token-revoked', reason: 'withdrawn' });
  t.like(row(kernel), { fulfilled: 10, broken: 3, refused: 5, pending: 0 });
  t.deepEqual(kernel.reputation(), reputation((await journalEntries(kernel.journal))), 'the live tally agrees with a pass over the journal');
  const causes = (await journalEntries(kernel.journal)).flatMap((e) => (e.kind === 'revoked' ? [e.cause] : []));
  t.deepEqual(causes, ['refused', 'refused', 'refused', 'refused', 'refused', 'refused', 'passed', 'limit', 'limit', 'limit', 'crash', 'crash', 'crash', 'crash', 'revoked', 'revoked', 'revoked']);
});

test('an issuer cannot raise its own record by calling its own tokens', async (t) => {
  const { kernel, add, crash, relay } = await alice(t);
  for (const caller of [stranger(), stranger(), stranger()]) await kernel.call(crash, ['boom'], as(caller));
  await kernel.call(add, [1, 2], as(stranger()));
  t.like(row(kernel), { fulfilled: 1, broken: 3 });
  // Calls as the issuer itself, directly, through the cache, and nested (its relay calling its add).
  for (let i = 0; i < 20; i += 1) t.is((await kernel.call(add, [i, i])).status, 'fulfilled');
  for (let i = 0; i < 5; i += 1) await kernel.call(add, [1, 1]);
  for (let i = 0; i < 5; i += 1) t.is((await kernel.call(relay, [i, 2])).status, 'fulfilled');
  await kernel.call(crash, ['boom']);
  t.like(row(kernel), { fulfilled: 1, broken: 3, refused: 0, pending: 0 }, 'the issuer\'s own calls count for nothing');
  t.deepEqual(kernel.reputation(), reputation((await journalEntries(kernel.journal))));
});

test('the reputation policy: a stranger\'s bad calls do not get an honest delegate refused; self-calls do not rescue a poor record', async (t) => {
  const { kernel, add, spin, crash } = await alice(t);
  const bob = stranger();
  const toBob = await kernel.delegate({ token: add, to: [bob], policies: [{ module: 'reputation', settings: { who: 'issuer', min: 0.9, after: 5 } }] });
  for (let i = 0; i < 10; i += 1) t.is((await kernel.call(toBob, [i, 1], as(bob))).status, 'fulfilled');
  const mallory = stranger();
  for (let i = 0; i < 5; i += 1) await kernel.call(add, [[], i], as(mallory));
  for (let i = 0; i < 5; i += 1) await kernel.call(spin, ['loop'], as(mallory));
  // Before: 10 fulfilled and 10 broken (50%), and Bob refused. Now: 10 fulfilled, 1 broken (91%).
  t.like(row(kernel), { fulfilled: 10, broken: 1, refused: 5 });
  t.deepEqual(await kernel.call(toBob, [20, 22], as(bob)), { status: 'fulfilled', value: 42 });
  // A record poor for real: crashes met by distinct callers. The issuer's own calls do not lift it.
  for (let i = 0; i < 4; i += 1) await kernel.call(crash, ['boom'], as(stranger()));
  for (let i = 0; i < 50; i += 1) await kernel.call(add, [i, 0]);
  t.like(row(kernel), { fulfilled: 11, broken: 5 });
  t.regex(reasonOf(await kernel.call(toBob, [1, 2], as(bob))), /kept 69% of 16 promises \(at least 90% needed\)/);
});

test('replay after a restart weighs every outcome as the live kernel did', async (t) => {
  const home = await tempDir(t);
  const first = await alice(t, home);
  const mallory = stranger();
  await first.kernel.call(first.add, [1, 2], as(stranger()));
  for (let i = 0; i < 3; i += 1) await first.kernel.call(first.add, ['bad', i], as(mallory));
  for (let i = 0; i < 2; i += 1) await first.kernel.call(first.crash, ['boom'], as(mallory));
  await first.kernel.call(first.add, [5, 5]);
  const live = first.kernel.reputation();
  t.like(row(first.kernel), { issued: 4, fulfilled: 1, broken: 1, refused: 3 });
  await first.kernel.close();
  const again = await openKernel({ home, limits: { vats: 1 } });
  t.teardown(() => again.close());
  t.deepEqual(again.reputation(), live);
  // A break by the same caller after the restart still counts once.
  await again.call(first.crash, ['boom'], as(mallory));
  t.like(row(again), { broken: 1 });
});

test('a revoked record written before causes were kept still reads, and counts as a break', (t) => {
  const { entry } = readRecord(encode([3, 7, 1_800_000_000_000, null, 6, 'old reason']));
  t.like(entry, { kind: 'revoked', seq: 7, call: 6, reason: 'old reason' });
  t.is((entry as { cause?: string }).cause, undefined);
  t.is(weightOfCause(undefined), 'broken');
  t.is(weightOfCause('refused'), 'refused');
  t.is(weightOfCause('node'), 'none');
});
