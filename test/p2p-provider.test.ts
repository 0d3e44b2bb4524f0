/**
 * The provider side of content routing (src/p2p/routing.ts), in one process
 * with real libp2p nodes on loopback and a real kernel: what a node provides
 * as it issues and revokes, and how its proof protocol answers honest and
 * hostile requests.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';
import { openKernel } from '../src/index.js';
import { identityFromSecret } from '../src/identity/identity.js';
import { asToken } from '../src/interface/ids.js';
import { signAddress } from '../src/net/addresses.js';
import { decode, encode } from '../src/wire/cbor.js';
import { principalOfPeer, startHost, type P2pHost } from '../src/p2p/host.js';
import { PROVIDER_PROTOCOL, providerKey, providerProof, startRouting } from '../src/p2p/routing.js';
import { eventually } from './_processes.js';

const random = (n: number) => new Uint8Array(randomBytes(n));

/** Send `request` on the proof protocol and read the answer: its bytes, or the error that ended the stream. */
const ask = async (from: P2pHost, to: P2pHost, request: Uint8Array): Promise<Uint8Array | Error> => {
  try {
    const stream = await from.dialProtocol(to.getMultiaddrs(), PROVIDER_PROTOCOL, { signal: AbortSignal.timeout(10_000) });
    stream.send(request);
    await stream.close();
    const chunks: Uint8Array[] = [];
    for await (const chunk of stream) chunks.push(chunk instanceof Uint8Array ? chunk : chunk.subarray());
    return new Uint8Array(Buffer.concat(chunks));
  } catch (error) {
    return error as Error;
  }
};

test('a node provides what it issues and stops when it revokes; its proof answers only for a token it holds, and refuses hostile requests', async (t) => {
  const seed = random(32);
  const identity = identityFromSecret(seed);
  const kernel = await openKernel({ memory: true, identity, limits: { vats: 1 } });
  const host = await startHost({ seed, host: '127.0.0.1' });
  const callerSeed = random(32);
  const caller = await startHost({ seed: callerSeed, host: '127.0.0.1' });
  const record = await signAddress(identity, 'ws://127.0.0.1:9', Date.now());
  const routing = await startRouting({ host, kernel, identity, random, ownAddress: () => record, connect: () => Promise.reject(new Error('no calls here')) });
  t.teardown(async () => {
    await routing.close();
    await Promise.all([host.stop(), caller.stop()]);
    await kernel.close();
  });

  t.is(principalOfPeer(host.peerId), identity.principal, 'the peer id and the did:key name one key');

  const code = await kernel.publish('export const f = () => 1;');
  const token = asToken(await kernel.issue({ code, export: 'f' }));
  const other = asToken(await kernel.issue({ code, export: 'f' }));
  await eventually(async () => routing.provided(), (tokens) => tokens.includes(token) && tokens.includes(other), 5000, 20);
  t.deepEqual(routing.provided().sort(), [token, other].sort(), 'what it issued, nothing else');

  const key = await providerKey(token);
  t.not(key.toString(), token);
  t.false(Buffer.from(key.bytes).includes(Buffer.from(CID.parse(token).multihash.digest)), 'the DHT key does not carry the token');

  const nonce = random(16);
  const answer = await ask(caller, host, encode({ key: key.bytes, nonce }));
  t.true(answer instanceof Uint8Array, String(answer));
  const { proof, address } = decode(answer as Uint8Array) as { proof: Uint8Array; address: { principal: string; url: string } };
  const callerPrincipal = identityFromSecret(callerSeed).principal;
  t.deepEqual(proof, providerProof(token, nonce, callerPrincipal, identity.principal), 'the proof is keyed by the token and names both ends');
  t.notDeepEqual(proof, providerProof(other, nonce, callerPrincipal, identity.principal));
  t.is(address.principal, identity.principal);
  t.is(address.url, record.url);

  const stranger = asToken(CID.createV1(0x71, await sha256.digest(random(32))).toString());
  const unknown = decode((await ask(caller, host, encode({ key: (await providerKey(stranger)).bytes, nonce }))) as Uint8Array);
  t.false('proof' in (unknown as object), 'no proof for a key it does not provide');

  // Hostile requests: too long, not CBOR, a short nonce. Each ends the stream with nothing answered.
  for (const hostile of [new Uint8Array(300).fill(1), new Uint8Array([0xff, 0x00, 0x13]), encode({ key: key.bytes, nonce: random(4) })]) {
    const got = await ask(caller, host, hostile);
    t.true(got instanceof Error || got.length === 0, `answered ${got instanceof Error ? got.message : got.length} bytes`);
  }

  await kernel.revoke(token, 'gone');
  await eventually(async () => routing.provided(), (tokens) => !tokens.includes(token), 5000, 20);
  t.deepEqual(routing.provided(), [other], 'a revoked token is provided no more');
  const after = decode((await ask(caller, host, encode({ key: key.bytes, nonce }))) as Uint8Array);
  t.false('proof' in (after as object), 'nor proven');
});
