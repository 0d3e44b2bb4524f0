/**
 * What a stranger — a fresh key, over a real WebSocket — can make a node
 * store: nothing for calls on tokens the node does not know (no journal
 * record, no block), and within its storage quota for tokens it does.
 */
import '../src/perimeter/lockdown.js';
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { openKernel, type Kernel } from '../src/index.js';
import { generateIdentity, loadIdentity } from '../src/identity/index.js';
import { serveNode } from '../src/net/node.js';
import { connectNode } from '../src/net/client.js';
import { makeDelegation, sealToken } from '../src/delegation/delegation.js';
import { RECORD_BYTES, STORAGE_QUOTA } from '../src/kernel/quota.js';
import { signRevocation } from '../src/kernel/revocations.js';
import { blockCid } from '../src/store/hashing.js';
import { DAG_CBOR_CODEC } from '../src/interface/ids.js';
import type { Forwarder } from '../src/kernel/kernel.js';
import { tempDir, journalEntries } from './_helpers.js';

const random = (n: number) => new Uint8Array(randomBytes(n));
const MB = 1_000_000;
const made = 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku';

/** A node on a home of its own, served on loopback, and a stranger connected to it. */
const nodeAndStranger = async (t: ExecutionContext, options: { forward?: Forwarder; storage?: Partial<typeof STORAGE_QUOTA> } = {}) => {
  const home = join(await tempDir(t), 'home');
  const kernel = await openKernel({
    home,
    create: true,
    ...(options.forward ? { forward: options.forward } : {}),
    limits: { vats: 1, storage: { ...STORAGE_QUOTA, ...options.storage } },
  });
  const server = await serveNode(kernel, { identity: await loadIdentity(join(home, 'identity')), random });
  const strangerIdentity = generateIdentity(random);
  const stranger = await connectNode(server.url, { identity: strangerIdentity, random });
  t.teardown(async () => {
    stranger.close();
    await server.close();
    await kernel.close();
  });
  const journalBytes = async () => {
    await kernel.flush();
    return (await stat(join(home, 'journal', '0000000000000000'))).size;
  };
  return { kernel, stranger, strangerIdentity, journalBytes };
};

const echo = async (kernel: Kernel) => kernel.issue({ code: await kernel.publish('export const echo = (ctx, value) => value.length'), export: 'echo' });

for (const [name, forward] of [
  ['with no peers', undefined],
  ['with peers that do not know the token', (async () => undefined) as Forwarder],
] as const) {
  test(`calls on a made-up token, ${name}, leave nothing in the journal`, async (t) => {
    const { kernel, stranger, journalBytes } = await nodeAndStranger(t, forward ? { forward } : {});
    const before = { bytes: await journalBytes(), records: kernel.journal.length };
    for (let i = 0; i < 20; i += 1) {
      t.deepEqual(await stranger.session.call(made as never, [new Uint8Array(MB - 100)]), { outcome: { status: 'revoked', code: 'unknown-token', reason: 'unknown token' }, cacheable: false });
    }
    t.is(kernel.journal.length, before.records, 'no record of them');
    t.is(await journalBytes(), before.bytes);
  });
}

test("a stranger holding a token stores at most its quota's burst, then is refused in one line; the owner is not counted", async (t) => {
  const burstBytes = 5 * MB;
  const { kernel, stranger, strangerIdentity, journalBytes } = await nodeAndStranger(t, { storage: { burstBytes, bytesPerSecond: 1 } });
  const token = await echo(kernel);
  const before = await journalBytes();
  const outcomes = [];
  // Each call different, so that none is answered from the cache.
  for (let i = 0; i < 10; i += 1) outcomes.push((await stranger.session.call(token, [new Uint8Array(MB).fill(i)])).outcome);
  const served = outcomes.filter((outcome) => outcome.status === 'fulfilled').length;
  t.is(served, 4, 'four 1 MB calls and their answers leave less than 1 MB of the 5 MB burst');
  t.deepEqual(outcomes.at(-1), {
    status: 'revoked',
    code: 'quota',
    reason: `storage quota: ${strangerIdentity.principal} may add 0 MiB/s to this node (4.8 MiB at once); try again later`,
  });
  const grown = (await journalBytes()) - before;
  t.true(grown <= burstBytes + 64 * 1024, `the journal grew ${grown} bytes`);
  t.is((await kernel.call(token, [new Uint8Array(MB)])).status, 'fulfilled', "the node's own calls are not counted");
});

test('a chain a stranger sends is stored only if it ends at a closure held here and holds up', async (t) => {
  const { kernel, stranger, strangerIdentity } = await nodeAndStranger(t);
  const root = await echo(kernel);
  // A chain the stranger made over a closure of its own, held nowhere near this node.
  const elsewhere = await makeDelegation({ inner: sealToken(made), audience: [strangerIdentity.principal] }, strangerIdentity, random(16));
  const passed = await stranger.session.call(elsewhere.delegation.token, [[]], { chain: { links: [elsewhere.bytes], modules: [] } });
  t.deepEqual(passed.outcome, { status: 'revoked', code: 'unknown-token', reason: 'unknown token' });
  t.is(await kernel.chainBlocks(elsewhere.delegation.token), undefined, 'not stored');
  // A chain over this node's closure, made by someone who is not its issuer.
  const forged = await makeDelegation({ inner: sealToken(root), audience: [strangerIdentity.principal] }, strangerIdentity, random(16));
  const refused = await stranger.session.call(forged.delegation.token, [[]], { chain: { links: [forged.bytes], modules: [] } });
  t.like(refused.outcome, { status: 'revoked', code: 'invalid' });
  t.regex((refused.outcome as { reason: string }).reason, /was made by did:key:\S+, but the token's issuer is did:key:/);
  t.is(await kernel.chainBlocks(forged.delegation.token), undefined, 'not stored');
  t.false((await journalEntries(kernel.journal)).some((entry) => entry.kind === 'wrap'), 'no delegation recorded');
});

test("answers from the cache count too: a stranger repeating one call is refused once it has spent its quota's burst on records", async (t) => {
  const { kernel, stranger } = await nodeAndStranger(t, { storage: { burstBytes: RECORD_BYTES * 50, bytesPerSecond: 1 } });
  const token = await echo(kernel);
  let answered = 0;
  let outcome;
  for (; answered < 200; answered += 1) {
    outcome = (await stranger.session.call(token, ['same'])).outcome;
    if (outcome.status !== 'fulfilled') break;
  }
  t.regex((outcome as { reason?: string }).reason ?? '', /^storage quota: /);
  t.true(answered < 50, `${answered} answered`);
  t.true((await journalEntries(kernel.journal)).filter((entry) => entry.kind === 'hit').length < 50);
});

test("revocations a stranger signs of delegations the node has not seen are kept on disk, one per signer and token, within the stranger's quota", async (t) => {
  const { kernel, stranger, strangerIdentity } = await nodeAndStranger(t, { storage: { burstBytes: RECORD_BYTES * 40, bytesPerSecond: 1 } });
  const early = async () => (await journalEntries(kernel.journal)).filter((entry) => entry.kind === 'revocation-early').length;
  const notice = (token: string) => signRevocation(token as never, 'gone', strangerIdentity);
  const madeUp = () => blockCid(random(32), DAG_CBOR_CODEC).toString();
  const first = await notice(made);
  t.like(await stranger.session.revoke(first, 5000), { outcome: { status: 'fulfilled' } });
  t.like(await stranger.session.revoke(first, 5000), { outcome: { status: 'fulfilled' } });
  t.is(await early(), 1, 'the same notice again is not stored again');
  let refusal: string | undefined;
  for (let i = 0; i < 100 && !refusal; i += 1) {
    const { outcome } = await stranger.session.revoke(await notice(madeUp()), 5000);
    if (outcome.status === 'revoked') refusal = outcome.reason;
  }
  t.regex(refusal ?? '(never refused)', /storage quota: /);
  const kept = await early();
  t.true(kept < 40, `${kept} kept`);
});

test('calls in flight cannot each be let in on a quota their answers then overrun: an answer as big as the last is taken with the call', async (t) => {
  const burstBytes = 2 * MB;
  const { kernel, stranger, journalBytes } = await nodeAndStranger(t, { storage: { burstBytes, bytesPerSecond: 1 } });
  const token = await kernel.issue({ code: await kernel.publish('export const big = (ctx, n) => new Uint8Array(200000).fill(n % 256)'), export: 'big' });
  const before = await journalBytes();
  t.is((await stranger.session.call(token, [0])).outcome.status, 'fulfilled', 'the first answer shows how big they are');
  const outcomes = await Promise.all(Array.from({ length: 40 }, (_, i) => stranger.session.call(token, [i + 1]).then((answer) => answer.outcome)));
  const served = outcomes.filter((outcome) => outcome.status === 'fulfilled').length;
  t.true(served > 0 && served < 10, `${served} of 40 served`);
  t.true(outcomes.some((outcome) => outcome.status === 'revoked' && outcome.reason.startsWith('storage quota: ')));
  const grown = (await journalBytes()) - before;
  t.true(grown <= burstBytes + 64 * 1024, `the journal grew ${grown} bytes`);
});
