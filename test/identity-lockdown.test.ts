/**
 * The identity code under real SES lockdown (frozen intrinsics),
 * as the kernel runs it: nothing in it may need a mutable global.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { generateIdentity, KeyFileError, loadIdentity, loadOrCreateIdentity, verify, verifyPortable } from '../src/identity/index.js';
import { tempDir } from './_helpers.js';

const nodeRandom = (n: number) => new Uint8Array(randomBytes(n));

test('the realm is locked down', (t) => {
  t.true(Object.isFrozen(Object.prototype));
  t.is(typeof (globalThis as { harden?: unknown }).harden, 'function');
});

test('identities sign and both verifiers verify under lockdown', async (t) => {
  const identity = generateIdentity(nodeRandom);
  const message = new TextEncoder().encode('locked down');
  const signature = await identity.sign(message);
  t.true(verify(identity.principal, message, signature));
  t.true(verifyPortable(identity.principal, message, signature));
  signature[40]! ^= 1;
  t.false(verify(identity.principal, message, signature));
  t.false(verifyPortable(identity.principal, message, signature));
});

test('key files are created, loaded and refused under lockdown', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'identity');
  const created = await loadOrCreateIdentity(path, nodeRandom);
  t.is((await loadIdentity(path)).principal, created.principal);
  const error = await t.throwsAsync(loadIdentity(join(dir, 'none')), { instanceOf: KeyFileError });
  t.is(error?.code, 'ERR_NO_IDENTITY');
});
