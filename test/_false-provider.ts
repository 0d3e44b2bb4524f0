/**
 * A hostile DHT peer, run as its own process by test/p2p.test.ts: a libp2p
 * node of the grid's kind (host.ts) with a key of its own, that claims on the
 * DHT to provide a token it does not hold — it was given only the token's
 * DHT key, as any DHT node near that key sees it — and answers the proof
 * request with a made-up proof and its own signed address record pointing
 * at someone else's node. It counts the proof requests it got.
 *
 *     node --import=./test/_preload.mjs --import=tsx test/_false-provider.ts KEY URL MULTIADDR…
 *
 * Prints one JSON line, {principal, peer}, once it has provided KEY; then
 * `asked N` each time it answers a proof request.
 */
import '../src/perimeter/lockdown.js';
import { randomBytes } from 'node:crypto';
import { CID } from 'multiformats/cid';
import { multiaddr } from '@multiformats/multiaddr';
import { identityFromSecret } from '../src/identity/identity.js';
import { signAddress } from '../src/net/addresses.js';
import { encode } from '../src/wire/cbor.js';
import { startHost } from '../src/p2p/host.js';
import { PROVIDER_PROTOCOL } from '../src/p2p/routing.js';

const [keyText, url, ...bootstrap] = process.argv.slice(2);
const seed = new Uint8Array(randomBytes(32));
const identity = identityFromSecret(seed);
const host = await startHost({ seed, host: '127.0.0.1' });
const record = await signAddress(identity, url!, Date.now());
let asked = 0;
await host.handle(PROVIDER_PROTOCOL, async (stream) => {
  for await (const _ of stream); // whatever was asked, the same lie
  asked += 1;
  stream.send(encode({ address: { ...record }, proof: new Uint8Array(randomBytes(32)) }));
  await stream.close();
  process.stdout.write(`asked ${asked}\n`);
});
const identified = new Promise((resolve) => host.addEventListener('peer:identify', resolve, { once: true }));
for (const address of bootstrap) await host.dial(multiaddr(address));
// The DHT takes its new neighbours into its routing table a moment after they are identified.
await identified;
await new Promise((resolve) => setTimeout(resolve, 500));
const key = CID.parse(keyText!);
for (let attempt = 0; ; attempt++) {
  try {
    await host.contentRouting.provide(key as never, { signal: AbortSignal.timeout(5000) });
    break;
  } catch (error) {
    if (attempt >= 5) throw error;
  }
}
process.stdout.write(`${JSON.stringify({ principal: identity.principal, peer: host.peerId.toString() })}\n`);
process.on('SIGTERM', () => void Promise.resolve(host.stop()).then(() => process.exit(0)));
