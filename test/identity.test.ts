import test from 'ava';
import fc from 'fast-check';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  generateIdentity,
  identityFromSecret,
  KeyFileError,
  loadIdentity,
  loadOrCreateIdentity,
  principalFromPublicKey,
  publicKeyFromPrincipal,
  verify,
  verifyMany,
  verifyPortable,
} from '../src/identity/index.js';
import { tempDir } from './_helpers.js';
import { CCTV, cctvAccepted, unhex } from './_ed25519-vectors.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const nodeRandom = (n: number) => new Uint8Array(randomBytes(n));

// RFC 8032 §7.1.
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
    name: 'TEST 1024',
    secret: 'f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5',
    public: '278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e',
    message:
      '08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8' +
      '79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc' +
      '1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e' +
      '06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7' +
      'aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed185ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2' +
      'd17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270' +
      '88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07' +
      '07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128bab27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a' +
      'ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7' +
      '51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8' +
      'ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34dff7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08' +
      'd78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4' +
      '88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e' +
      '6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5fb93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5' +
      '0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d' +
      'b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0',
    signature: '0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03',
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

test('RFC 8032 §7.1 vectors: public keys, signatures and verdicts', async (t) => {
  t.is(unhex(VECTORS[3]!.message).length, 1023);
  for (const v of VECTORS) {
    const identity = identityFromSecret(unhex(v.secret));
    t.is(hex(identity.publicKey), v.public, v.name);
    t.is(hex(await identity.sign(unhex(v.message))), v.signature, v.name);
    for (const signer of [identity.principal, unhex(v.public)]) {
      t.true(verify(signer, unhex(v.message), unhex(v.signature)), `node: ${v.name}`);
      t.true(verifyPortable(signer, unhex(v.message), unhex(v.signature)), `noble: ${v.name}`);
    }
  }
});

const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const withS = (signature: Uint8Array, s: bigint) => {
  const out = signature.slice();
  out.set(unhex(s.toString(16).padStart(64, '0')).reverse(), 32);
  return out;
};
const sOf = (signature: Uint8Array) => BigInt(`0x${hex(signature.subarray(32).slice().reverse())}`);
const flipped = (bytes: Uint8Array, at: number) => {
  const out = bytes.slice();
  out[at]! ^= 1;
  return out;
};
const IDENTITY_POINT = `01${'00'.repeat(31)}`;
const P_PLUS_1 = `ee${'ff'.repeat(30)}7f`; // y = p + 1: a non-canonical encoding of the identity point
const P_PLUS_3 = `f0${'ff'.repeat(30)}7f`; // y = p + 3: non-canonical (3 is on the curve)
const NOT_ON_CURVE = `02${'00'.repeat(31)}`; // y = 2 has no x

test('hostile inputs: node:crypto (in line and off the main thread) and @noble/ed25519 agree with each other and with the expected verdict', async (t) => {
  const v = VECTORS[1]!;
  const publicKey = unhex(v.public);
  const message = unhex(v.message);
  const signature = unhex(v.signature);
  // R = identity, S = 0 verifies [S]B = R + [k]A for *any* message under a low-order key:
  // OpenSSL's bare cofactorless check accepts it; our policy must not.
  const identityForgery = unhex(`${IDENTITY_POINT}${'00'.repeat(32)}`);
  const rows: Array<[string, Uint8Array | string, Uint8Array, Uint8Array, boolean]> = [
    ['valid', publicKey, message, signature, true],
    ['valid, by principal', principalFromPublicKey(publicKey), message, signature, true],
    ['other message', publicKey, unhex('73'), signature, false],
    ['empty message', publicKey, new Uint8Array(0), signature, false],
    ['flipped R', publicKey, message, flipped(signature, 3), false],
    ['flipped S', publicKey, message, flipped(signature, 40), false],
    ['S + L (non-canonical S)', publicKey, message, withS(signature, sOf(signature) + L), false],
    ['S = L', publicKey, message, withS(signature, L), false],
    ['S = 2^256 - 1', publicKey, message, withS(signature, 2n ** 256n - 1n), false],
    ['all-zero signature', publicKey, message, new Uint8Array(64), false],
    ['all-0xff signature', publicKey, message, new Uint8Array(64).fill(0xff), false],
    ['63-byte signature', publicKey, message, signature.subarray(0, 63), false],
    ['65-byte signature', publicKey, message, new Uint8Array([...signature, 0]), false],
    ['empty signature', publicKey, message, new Uint8Array(0), false],
    ['R not on the curve', publicKey, message, unhex(`${NOT_ON_CURVE}${v.signature.slice(64)}`), false],
    ['R non-canonical (y = p + 1)', publicKey, message, unhex(`${P_PLUS_1}${v.signature.slice(64)}`), false],
    ['R = identity', publicKey, message, unhex(`${IDENTITY_POINT}${v.signature.slice(64)}`), false],
    ['flipped key', flipped(publicKey, 0), message, signature, false],
    ['key not on the curve', unhex(NOT_ON_CURVE), message, signature, false],
    ['identity point as key, real signature', unhex(IDENTITY_POINT), message, signature, false],
    ['identity point as key, R = identity, S = 0', unhex(IDENTITY_POINT), message, identityForgery, false],
    ['identity point as key, forgery on another message', unhex(IDENTITY_POINT), unhex('deadbeef'), identityForgery, false],
    ['identity key with sign bit (x = -0), forgery', unhex(`${IDENTITY_POINT.slice(0, 62)}80`), message, unhex(`${IDENTITY_POINT.slice(0, 62)}80${'00'.repeat(32)}`), false],
    ['all-zero key (order 4), all-zero signature', new Uint8Array(32), message, new Uint8Array(64), false],
    ['order-2 key (y = -1), forgery', unhex(`ec${'ff'.repeat(30)}7f`), message, identityForgery, false],
    ['order-8 key, forgery', unhex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'), message, identityForgery, false],
    ['non-canonical key (y = p + 1, the identity), forgery', unhex(P_PLUS_1), message, identityForgery, false],
    ['non-canonical key (y = p + 3)', unhex(P_PLUS_3), message, signature, false],
    ['31-byte key', publicKey.subarray(0, 31), message, signature, false],
    ['33-byte key', new Uint8Array([...publicKey, 0]), message, signature, false],
    ['empty key', new Uint8Array(0), message, signature, false],
    ['garbage principal', 'did:key:z6Mkgarbage', message, signature, false],
    ['empty principal', '', message, signature, false],
    ['secp256k1 did:key', 'did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme', message, signature, false],
  ];
  for (const [name, key, msg, sig, expected] of rows) {
    t.is(verify(key, msg, sig), expected, `node:crypto: ${name}`);
    t.is(verifyPortable(key, msg, sig), expected, `noble: ${name}`);
  }
  // Off the main thread, as a batch: the same verdicts, each in its place.
  t.deepEqual(await verifyMany(rows.map(([, key, msg, sig]) => [key, msg, sig])), rows.map(([, , , , expected]) => expected));
});

test('wrong argument types are TypeErrors, not verdicts', (t) => {
  const v = VECTORS[0]!;
  const [key, sig] = [unhex(v.public), unhex(v.signature)];
  for (const check of [verify, verifyPortable]) {
    t.throws(() => check(key, 'text' as never, sig), { instanceOf: TypeError });
    t.throws(() => check(key, new Uint8Array(0), 'sig' as never), { instanceOf: TypeError });
    t.throws(() => check(42 as never, new Uint8Array(0), sig), { instanceOf: TypeError });
    t.throws(() => check(null as never, new Uint8Array(0), sig), { instanceOf: TypeError });
    t.true(check(Buffer.from(key), Buffer.alloc(0), Buffer.from(sig)), 'Buffers are Uint8Arrays');
  }
  // Off the main thread: the same TypeErrors, thrown before it returns.
  t.throws(() => verifyMany([[key, 'text' as never, sig]]), { instanceOf: TypeError });
  t.throws(() => verifyMany([[key, new Uint8Array(0), 'sig' as never]]), { instanceOf: TypeError });
  t.throws(() => verifyMany([[42 as never, new Uint8Array(0), sig]]), { instanceOf: TypeError });
  t.throws(() => verifyMany([[null as never, new Uint8Array(0), sig]]), { instanceOf: TypeError });
});


test('C2SP/CCTV edge cases: both verifiers accept exactly the cofactorless-valid, non-low-order, canonical ones', async (t) => {
  t.is(CCTV.length, 66);
  let accepted = 0;
  for (const [number, key, sig, msg, flags] of CCTV) {
    const expected = cctvAccepted(flags);
    const message = new TextEncoder().encode(msg);
    t.is(verify(unhex(key), message, unhex(sig)), expected, `node:crypto: vector ${number} [${flags}]`);
    t.is(verifyPortable(unhex(key), message, unhex(sig)), expected, `noble: vector ${number} [${flags}]`);
    if (expected) accepted++;
  }
  t.is(accepted, 3);
  const batch = await verifyMany(CCTV.map(([, key, sig, msg]) => [unhex(key), new TextEncoder().encode(msg), unhex(sig)]));
  t.deepEqual(batch, CCTV.map(([, , , , flags]) => cctvAccepted(flags)), 'off the main thread, as a batch');
});

test('property: node:crypto and noble give the same verdict on mutated and random inputs', async (t) => {
  const signers = [0, 1, 2].map(() => generateIdentity(nodeRandom));
  const lowOrder = [IDENTITY_POINT, P_PLUS_1, '00'.repeat(32), `ec${'ff'.repeat(30)}7f`].map(unhex);
  const input = fc.record({
    who: fc.nat({ max: 2 }),
    message: fc.uint8Array({ maxLength: 64 }),
    mutate: fc.oneof(
      fc.constant({ kind: 'none' as const }),
      fc.record({ kind: fc.constantFrom('sig' as const, 'key' as const, 'msg' as const), at: fc.nat({ max: 63 }), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('random-sig' as const), bytes: fc.uint8Array({ minLength: 64, maxLength: 64 }) }),
      fc.record({ kind: fc.constant('random-key' as const), bytes: fc.uint8Array({ minLength: 32, maxLength: 32 }) }),
      fc.record({ kind: fc.constant('low-order-key' as const), which: fc.nat({ max: 3 }) }),
      fc.record({ kind: fc.constant('big-s' as const), add: fc.bigInt({ min: 1n, max: 15n }) }),
    ),
  });
  let valid = 0;
  await fc.assert(
    fc.asyncProperty(input, async ({ who, message, mutate }) => {
      const signer = signers[who]!;
      let key = signer.publicKey;
      let msg = message;
      let sig = await signer.sign(message);
      switch (mutate.kind) {
        case 'sig':
          sig = sig.slice();
          sig[mutate.at] = mutate.value;
          break;
        case 'key':
          key = key.slice();
          key[mutate.at % 32] = mutate.value;
          break;
        case 'msg':
          msg = new Uint8Array([...message, mutate.value]);
          break;
        case 'random-sig':
          sig = mutate.bytes;
          break;
        case 'random-key':
          key = mutate.bytes;
          break;
        case 'low-order-key':
          key = lowOrder[mutate.which]!;
          break;
        case 'big-s':
          sig = withS(sig, sOf(sig) + mutate.add * L);
          break;
      }
      const node = verify(key, msg, sig);
      if (node) valid++;
      return node === verifyPortable(key, msg, sig);
    }),
    { numRuns: 400 },
  );
  t.true(valid > 0, 'some inputs were valid signatures');
});

test('the key cache stays correct past its bound', async (t) => {
  const identities = Array.from({ length: 1100 }, () => generateIdentity(nodeRandom));
  const message = new Uint8Array([1, 2, 3]);
  const signatures = await Promise.all(identities.map((identity) => identity.sign(message)));
  for (const [i, identity] of identities.entries()) {
    if (!verify(identity.principal, message, signatures[i]!)) t.fail(`identity ${i} did not verify`);
    if (verify(identity.principal, message, signatures[(i + 1) % identities.length]!)) t.fail(`identity ${i} verified another's signature`);
  }
  t.true(verify(identities[0]!.principal, message, signatures[0]!), 'an evicted key is loaded again');
  t.true(verify(identities[0]!.publicKey, message, signatures[0]!));
});

test('did:key principals', (t) => {
  // The all-zero seed: its public key is the well-known 3b6a27bc…, its did:key the one other did:key libraries derive.
  const zero = identityFromSecret(new Uint8Array(32));
  t.is(hex(zero.publicKey), '3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29');
  t.is(zero.principal as string, 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp');
  t.deepEqual(publicKeyFromPrincipal(zero.principal), zero.publicKey);
  t.is(principalFromPublicKey(zero.publicKey) as string, zero.principal);
  // The did:key spec's Ed25519 example round-trips.
  const example = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
  t.is(principalFromPublicKey(publicKeyFromPrincipal(example)) as string, example);
  for (const v of VECTORS) {
    const principal = principalFromPublicKey(unhex(v.public));
    t.regex(principal, /^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$/);
    t.is(hex(publicKeyFromPrincipal(principal)), v.public);
  }
  // Wrong multicodec (secp256k1-pub 0xe7 0x01), wrong method, wrong length, wrong type.
  t.throws(() => publicKeyFromPrincipal('did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme'), { instanceOf: TypeError, message: /did:key/ });
  t.throws(() => publicKeyFromPrincipal('did:web:example.com'), { instanceOf: TypeError });
  t.throws(() => publicKeyFromPrincipal(`${example}x`), { instanceOf: TypeError });
  t.throws(() => publicKeyFromPrincipal(42 as never), { instanceOf: TypeError });
  t.throws(() => principalFromPublicKey(new Uint8Array(31)), { instanceOf: RangeError });
  t.throws(() => principalFromPublicKey('key' as never), { instanceOf: TypeError });
  t.throws(() => identityFromSecret(new Uint8Array(31)), { instanceOf: RangeError });
});

test('identities: randomness is a power; the object is frozen and hands out copies', async (t) => {
  const seed = unhex(VECTORS[0]!.secret);
  const identity = generateIdentity((n) => {
    t.is(n, 32);
    return seed.slice();
  });
  t.is(identity.principal as string, identityFromSecret(seed).principal);
  t.throws(() => generateIdentity(() => new Uint8Array(16)), { instanceOf: RangeError });
  t.throws(() => generateIdentity(undefined as never), { instanceOf: TypeError });
  t.true(Object.isFrozen(identity));
  identity.publicKey.fill(0);
  t.is(hex(identity.publicKey), VECTORS[0]!.public);
  const other = generateIdentity(nodeRandom);
  t.not(other.principal, identity.principal);
  t.true(verify(other.principal, new Uint8Array([1]), await other.sign(new Uint8Array([1]))));
  t.false(verify(identity.principal, new Uint8Array([1]), await other.sign(new Uint8Array([1]))));
});

const codeOf = async (t: import('ava').ExecutionContext, promise: Promise<unknown>) =>
  (await t.throwsAsync(promise, { instanceOf: KeyFileError }))?.code;

test('key file: created exclusively with mode 0600, in the documented format, loaded again', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'identity');
  const created = await loadOrCreateIdentity(path, nodeRandom);
  t.is((await stat(path)).mode & 0o777, 0o600);
  const record = JSON.parse(await readFile(path, 'utf8'));
  t.deepEqual(Object.keys(record), ['type', 'secret', 'principal']);
  t.is(record.type, 'ed25519');
  t.is(record.principal, created.principal);
  t.is(identityFromSecret(new Uint8Array(Buffer.from(record.secret, 'base64url'))).principal, created.principal);
  t.deepEqual(await readdir(dir), ['identity'], 'no temp file left');
  const again = await loadOrCreateIdentity(path, () => t.fail('an existing key must not draw randomness') as never);
  t.is(again.principal, created.principal);
  t.is((await loadIdentity(path)).principal, created.principal);
  const message = new Uint8Array([7]);
  t.true(verify(created.principal, message, await again.sign(message)), 'the loaded key signs as the created one');
});

test('key file: refused when the group or others can access it', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'identity');
  const created = await loadOrCreateIdentity(path, nodeRandom);
  for (const mode of [0o640, 0o604, 0o644, 0o620, 0o601]) {
    await chmod(path, mode);
    const error = await t.throwsAsync(loadIdentity(path), { instanceOf: KeyFileError });
    t.is(error?.code, 'ERR_KEY_PERMISSIONS');
    t.is(error?.message, `identity: identity key ${path} is accessible by group or others (mode ${mode.toString(8)}); run: chmod 600 ${path}`);
    t.is(await codeOf(t, loadOrCreateIdentity(path, nodeRandom)), 'ERR_KEY_PERMISSIONS', 'and not silently replaced');
  }
  await chmod(path, 0o400);
  t.is((await loadIdentity(path)).principal, created.principal, 'owner-only read is fine');
});

test('key file: malformed files are refused with a reason, never replaced', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'identity');
  const good = await loadOrCreateIdentity(path, nodeRandom);
  const secret = JSON.parse(await readFile(path, 'utf8')).secret as string;
  const cases: Array<[string, string | Buffer, RegExp]> = [
    ['empty', '', /not JSON/],
    ['not JSON', 'ed25519 secret', /not JSON/],
    ['an array', '[]', /expected a JSON object/],
    ['wrong type', JSON.stringify({ type: 'rsa', secret, principal: good.principal }), /type is "rsa"/],
    ['short secret', JSON.stringify({ type: 'ed25519', secret: secret.slice(0, 40), principal: good.principal }), /32-byte seed/],
    ['not base64url', JSON.stringify({ type: 'ed25519', secret: `${secret.slice(0, 42)}!`, principal: good.principal }), /32-byte seed/],
    ['missing principal', JSON.stringify({ type: 'ed25519', secret }), /principal is missing/],
    ['other principal', JSON.stringify({ type: 'ed25519', secret, principal: identityFromSecret(new Uint8Array(32)).principal }), /does not match the secret/],
    ['extra field', JSON.stringify({ type: 'ed25519', secret, principal: good.principal, note: 1 }), /unknown field "note"/],
    ['not UTF-8', Buffer.from([0xff, 0xfe, 0x7b]), /not UTF-8/],
    ['huge', ' '.repeat(10_000), /10000 bytes/],
  ];
  for (const [name, content, reason] of cases) {
    await writeFile(path, content, { mode: 0o600 });
    const error = await t.throwsAsync(loadIdentity(path), { instanceOf: KeyFileError }, name);
    t.is(error?.code, 'ERR_KEY_MALFORMED', name);
    t.regex(error!.message, new RegExp(`^identity: identity key ${path} is malformed: `), name);
    t.regex(error!.message, reason, name);
    t.notRegex(error!.message, /\n/, 'one line');
    t.is(await codeOf(t, loadOrCreateIdentity(path, nodeRandom)), 'ERR_KEY_MALFORMED', `${name}: not replaced`);
  }
  const folder = join(dir, 'folder');
  await mkdir(folder, { mode: 0o700 });
  t.is(await codeOf(t, loadIdentity(folder)), 'ERR_KEY_MALFORMED');
  t.is(await codeOf(t, loadIdentity(join(dir, 'none'))), 'ERR_NO_IDENTITY');
  t.is((await t.throwsAsync(loadIdentity(join(dir, 'none'))))?.message, `identity: no identity key at ${join(dir, 'none')}`);
  await t.throwsAsync(loadIdentity('' as never), { instanceOf: TypeError });
});

test('key file: concurrent creators of one key file agree on one key', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'identity');
  const identities = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateIdentity(path, nodeRandom)));
  t.is(new Set(identities.map((i) => i.principal)).size, 1);
  t.is((await loadIdentity(path)).principal, identities[0]!.principal);
  t.deepEqual(await readdir(dir), ['identity']);
});
