/**
 * Property: a kernel reopened from its journal is in the same state as the
 * live kernel that wrote it. Random calls (local closures pure and not,
 * failing and refusing ones, a delegation with a quota, tokens answered by
 * peers cacheably or not), revocations made and heard, by several callers;
 * then the live kernel and one reopened from a copy of its home are asked
 * the same questions: which tokens are revoked, reputation, which peers must
 * hear which revocations, which calls the cache answers, whose revocation
 * notices are believed.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { openKernel, type Kernel, type Outcome } from '../src/index.js';
import type { Forwarder } from '../src/kernel/kernel.js';
import { generateIdentity, type Identity } from '../src/identity/index.js';
import { signRevocation } from '../src/kernel/revocations.js';
import type { Principal, Token } from '../src/interface/ids.js';
import { tempDir, journalEntries } from './_helpers.js';

const SEED = Number(process.env.REPLAY_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** mulberry32: a small seeded generator, so a failing run can be repeated. */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
};
const random = (n: number) => new Uint8Array(randomBytes(n));

/** Made-up tokens that peers answer: each with the peer that answers it and whether cacheably. */
const remote = [
  { token: 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', peer: 0, cacheable: true },
  { token: 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', peer: 1, cacheable: false },
  { token: 'bafyreidfq7gnjnp4iio6tmb5gdptrqw2ugbvtsdbzsgtkdmgq4swyktn5e', peer: 1, cacheable: true },
] as const;

test(`a kernel reopened from its journal answers as the live one did (REPLAY_SEED=${SEED})`, async (t) => {
  const next = seeded(SEED);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const dir = await tempDir(t);
  const peers: Identity[] = [generateIdentity(random), generateIdentity(random)];
  const forward: Forwarder = async ({ token }) => {
    const answering = remote.find((r) => r.token === token);
    if (!answering) return undefined;
    return { answer: { outcome: { status: 'fulfilled', value: token.length }, cacheable: answering.cacheable }, peer: peers[answering.peer]!.principal };
  };
  const live = await openKernel({ home: join(dir, 'live'), create: true, forward });
  const strangers: Principal[] = [generateIdentity(random).principal, generateIdentity(random).principal];
  const callers: Principal[] = [live.principal, ...strangers];
  const code = await live.publish(`
    export const double = (ctx, x) => x * 2;
    export const who = (ctx) => ctx.caller;
    export const fail = (ctx, x) => { throw new Error('no ' + x); };
    export const refuse = (ctx, x) => ctx.revoke('not ' + x);
  `);
  const local: Token[] = [];
  for (const name of ['double', 'who', 'fail', 'refuse']) local.push(await live.issue({ code, export: name }));
  const delegated = await live.delegate({ token: local[0]!, to: strangers, policies: [{ module: 'rate', settings: { uses: 3 } }] });
  const tokens: Token[] = [...local, delegated as Token, ...remote.map((r) => r.token as Token)];

  const calls: Array<{ token: Token; args: unknown[]; caller: Principal }> = [];
  for (let step = 0; step < 80; step += 1) {
    const roll = next();
    if (roll < 0.06) {
      await live.revoke(pick([...local, delegated])).catch(() => {});
    } else if (roll < 0.1) {
      const r = pick(remote);
      await live.hearRevocation(await signRevocation(r.token as Token, 'gone upstream', peers[r.peer]!), peers[r.peer]!.principal).catch(() => false);
    } else {
      const call = { token: pick(tokens), args: [Math.floor(next() * 3)], caller: pick(callers) };
      calls.push(call);
      await live.call(call.token, call.args, { caller: call.caller });
    }
  }
  await live.flush();
  await cp(join(dir, 'live'), join(dir, 'reopened'), { recursive: true });
  const reopened = await openKernel({ home: join(dir, 'reopened'), forward });
  t.teardown(async () => {
    await live.close();
    await reopened.close();
  });

  /** The same questions to each kernel; the answers that change state come last, in the same order on both. */
  const state = async (kernel: Kernel) => {
    const revoked = tokens.map((token) => kernel.isRevoked(token));
    const reputation = kernel.reputation().map((row) => ({ ...row })).sort((a, b) => a.issuer.localeCompare(b.issuer));
    const mustHear = await Promise.all([...strangers, ...peers.map((p) => p.principal)].map(async (p) => (await kernel.revocationsFor(p)).map((notice) => notice.token).sort()));
    // Which earlier calls the cache answers: a hit leaves a `hit` record.
    const answers: Array<{ outcome: Outcome; hit: boolean }> = [];
    for (const call of calls) {
      const before = kernel.journal.length;
      const outcome = await kernel.call(call.token, call.args, { caller: call.caller });
      answers.push({ outcome, hit: (await journalEntries(kernel.journal)).slice(before).some((entry) => entry.kind === 'hit') });
    }
    // Whose notices are believed: the peer that answered a token cacheably, and no one else.
    const believed: boolean[] = [];
    for (const r of remote) {
      for (const peer of peers) believed.push(await kernel.hearRevocation(await signRevocation(r.token as Token, 'probe', peer), peer.principal).catch(() => false));
    }
    return { revoked, reputation, mustHear, answers, believed };
  };
  t.deepEqual(await state(reopened), await state(live));
});
