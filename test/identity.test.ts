import test from 'ava';
import { chmod, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  generateIdentity,
  identityFromSecret,
  loadIdentity,
  loadOrCreateIdentity,
  principalFromPublicKey,
  publicKeyFromPrincipal,
  verify,
  verifyPortable,
} from '../src/identity/index.js';
import { tempDir } from './_helpers.js';

const unhex = (text: string) => new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

// RFC 8032 §7.1
const VECTORS = [
  {
    name: 'TEST 1',
    secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    public: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'TEST 2',
    secret: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    public: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'TEST 3',
    secret: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    public: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
  {
    name: 'TEST SHA(abc)',
    secret: '833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42',
    public: 'ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf',
    message:
      'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    signature: 'dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704',
  },
];

test('RFC 8032 vectors: keys, signatures and verdicts', async (t) => {
  for (const v of VECTORS) {
    const identity = identityFromSecret(unhex(v.secret));
    t.is(hex(identity.publicKey), v.public, v.name);
    t.is(hex(identity.sign(unhex(v.message))), v.signature, v.name);
    t.true(verify(identity.principal, unhex(v.message), unhex(v.signature)), v.name);
    t.true(await verifyPortable(identity.principal, unhex(v.message), unhex(v.signature)), v.name);
  }
});

const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const addLToS = (signature: Uint8Array) => {
  const s = BigInt(`0x${hex(signature.subarray(32).slice().reverse())}`) + L;
  const out = signature.slice();
  const bytes = unhex(s.toString(16).padStart(64, '0')).reverse();
  out.set(bytes, 32);
  return out;
};

test('node:crypto and @noble/ed25519 give the same verdict on hostile inputs', async (t) => {
  const v = VECTORS[1]!;
  const publicKey = unhex(v.public);
  const message = unhex(v.message);
  const signature = unhex(v.signature);
  const flipped = (bytes: Uint8Array, at: number) => {
    const out = bytes.slice();
    out[at]! ^= 1;
    return out;
  };
  const rows: Array<[string, Uint8Array, Uint8Array, Uint8Array, boolean]> = [
    ['valid', publicKey, message, signature, true],
    ['other message', publicKey, unhex('73'), signature, false],
    ['flipped R', publicKey, message, flipped(signature, 3), false],
    ['flipped S', publicKey, message, flipped(signature, 40), false],
    ['S + L (non-canonical S)', publicKey, message, addLToS(signature), false],
    ['all-zero signature', publicKey, message, new Uint8Array(64), false],
    ['short signature', publicKey, message, signature.subarray(0, 63), false],
    ['long signature', publicKey, message, new Uint8Array([...signature, 0]), false],
    ['flipped key', flipped(publicKey, 0), message, signature, false],
    ['identity point as key', unhex(`01${'00'.repeat(31)}`), message, signature, false],
    ['all-zero key', new Uint8Array(32), message, new Uint8Array(64), false],
    ['non-canonical y (p + 1)', unhex(`eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f`), message, signature, false],
    ['short key', publicKey.subarray(0, 31), message, signature, false],
  ];
  for (const [name, key, msg, sig, expected] of rows) {
    t.is(verify(key, msg, sig), expected, `node: ${name}`);
    t.is(await verifyPortable(key, msg, sig), expected, `noble: ${name}`);
  }
  t.throws(() => verify(publicKey, 'text' as never, signature), { instanceOf: TypeError });
});

test('did:key principals', (t) => {
  const identity = identityFromSecret(new Uint8Array(32));
  t.regex(identity.principal, /^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/);
  t.deepEqual(publicKeyFromPrincipal(identity.principal), identity.publicKey);
  t.is(principalFromPublicKey(identity.publicKey), identity.principal);
  // The did:key spec's Ed25519 example round-trips.
  const example = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
  t.is(principalFromPublicKey(publicKeyFromPrincipal(example)) as string, example);
  t.throws(() => publicKeyFromPrincipal('did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme'), { message: /did:key/ });
  t.throws(() => publicKeyFromPrincipal('did:web:example.com'), { instanceOf: TypeError });
  const random = generateIdentity((n) => new Uint8Array(randomBytes(n)));
  t.true(verify(random.principal, new Uint8Array([1]), random.sign(new Uint8Array([1]))));
  t.false(verify(identity.principal, new Uint8Array([1]), random.sign(new Uint8Array([1]))));
});

test('key file: created 0600, loaded again, refused when others can read it or it is malformed', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'identity');
  const created = await loadOrCreateIdentity(path, (n) => new Uint8Array(randomBytes(n)));
  t.is((await stat(path)).mode & 0o777, 0o600);
  t.is((await loadOrCreateIdentity(path, () => new Uint8Array(32))).principal, created.principal);
  t.is((await loadIdentity(path)).principal, created.principal);
  await chmod(path, 0o644);
  const open = await t.throwsAsync(loadIdentity(path));
  t.is((open as { code?: string }).code, 'ERR_KEY_PERMISSIONS');
  t.regex(open!.message, /readable by others \(mode 644\)/);
  await writeFile(path, '{"type":"rsa"}', { mode: 0o600 });
  await chmod(path, 0o600);
  t.is(((await t.throwsAsync(loadIdentity(path))) as { code?: string }).code, 'ERR_KEY_MALFORMED');
  await writeFile(path, JSON.stringify({ type: 'ed25519', secret: Buffer.alloc(32).toString('base64url'), principal: created.principal }));
  t.regex((await t.throwsAsync(loadIdentity(path)))!.message, /principal does not match the secret/);
  t.is(((await t.throwsAsync(loadIdentity(join(dir, 'none')))) as { code?: string }).code, 'ERR_NO_IDENTITY');
});

test('concurrent creators of one key file agree on one key', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'identity');
  const identities = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateIdentity(path, (n) => new Uint8Array(randomBytes(n)))));
  t.is(new Set(identities.map((i) => i.principal)).size, 1);
});
