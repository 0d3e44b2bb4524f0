/**
 * A kernel reopened from its journal is in the state the live kernel was in:
 * what replay derives and what live calls change must agree.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { openKernel } from '../src/index.js';
import type { Forwarder } from '../src/kernel/kernel.js';
import { generateIdentity } from '../src/identity/index.js';
import { signRevocation } from '../src/kernel/revocations.js';
import type { Token } from '../src/interface/ids.js';
import { tempDir } from './_helpers.js';

const random = (n: number) => new Uint8Array(randomBytes(n));
const held = 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku' as Token;

test("a peer that gave only uncacheable answers for a token cannot revoke it, before a restart or after", async (t) => {
  const home = join(await tempDir(t), 'home');
  const peer = generateIdentity(random);
  // The peer answers the token, but not cacheably: this node never relied on it as the token's source.
  const forward: Forwarder = async () => ({ answer: { outcome: { status: 'fulfilled', value: 7 }, cacheable: false }, peer: peer.principal });
  const notice = await signRevocation(held, 'mine now', peer);

  const live = await openKernel({ home, create: true, forward });
  t.deepEqual(await live.call(held), { status: 'fulfilled', value: 7 });
  t.false(await live.hearRevocation(notice, peer.principal), 'not believed live');
  await live.close();

  const reopened = await openKernel({ home, forward });
  t.teardown(() => reopened.close());
  t.false(await reopened.hearRevocation(notice, peer.principal), 'nor after a restart');
  t.deepEqual(await reopened.call(held), { status: 'fulfilled', value: 7 });
});

test('a peer whose cacheable answer this node cached is believed when it revokes, before a restart and after', async (t) => {
  const home = join(await tempDir(t), 'home');
  const peer = generateIdentity(random);
  const forward: Forwarder = async () => ({ answer: { outcome: { status: 'fulfilled', value: 7 }, cacheable: true }, peer: peer.principal });
  const reopenedFor = async (args: unknown[]) => {
    const kernel = await openKernel({ home, create: true, forward });
    t.deepEqual(await kernel.call(held, args), { status: 'fulfilled', value: 7 });
    await kernel.close();
    return openKernel({ home, forward });
  };
  const reopened = await reopenedFor([1]);
  t.teardown(() => reopened.close());
  t.true(await reopened.hearRevocation(await signRevocation(held, 'revoked upstream', peer), peer.principal));
  t.deepEqual(await reopened.call(held, [1]), { status: 'revoked', code: 'token-revoked', reason: 'revoked upstream' });
});

test('a peer handed a replica hears of its revocation, also when the revocation comes after a restart', async (t) => {
  const home = join(await tempDir(t), 'home');
  const peer = generateIdentity(random);
  const live = await openKernel({ home, create: true });
  const token = await live.issue({ code: await live.publish('export const f = () => 1'), export: 'f', replicable: true });
  await live.replica(token, peer.principal);
  await live.close();
  const reopened = await openKernel({ home });
  t.teardown(() => reopened.close());
  t.deepEqual(await reopened.revocationsFor(peer.principal), [], 'nothing revoked yet');
  await reopened.revoke(token, 'withdrawn');
  t.deepEqual((await reopened.revocationsFor(peer.principal)).map((notice) => [notice.token, notice.reason]), [[token, 'withdrawn']]);
});
