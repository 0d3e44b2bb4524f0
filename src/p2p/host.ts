/**
 * The grid's control plane on libp2p: one libp2p node per grid node, for
 * finding who answers a token (Kad-DHT), reaching nodes behind NAT (circuit
 * relay v2, DCUtR, AutoNAT) and, later, gossip (gossipsub). Calls never
 * travel here: they keep the grid's own authenticated WebSocket session,
 * which costs a fraction of a libp2p stream per message (issue 18).
 *
 * The libp2p key is made from the node's own Ed25519 seed, so the peer id and
 * the node's `did:key` name one principal: `principalOfPeer` turns one into
 * the other, and whoever authenticates as a peer id over noise has proven the
 * same key the grid's handshake asks for.
 *
 * The DHT speaks `/promisegrid/kad/1.0.0`, not IPFS's `/ipfs/kad/1.0.0`: the
 * grid's records stay among grid nodes, and a grid node never becomes a
 * server for the public IPFS DHT.
 */
import { createLibp2p, type Libp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { webSockets } from '@libp2p/websockets';
import { noise } from '@libp2p/noise';
import { yamux } from '@libp2p/yamux';
import { identify } from '@libp2p/identify';
import { ping } from '@libp2p/ping';
import { kadDHT, passthroughMapper, type KadDHT } from '@libp2p/kad-dht';
import { gossipsub } from '@libp2p/gossipsub';
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2';
import { dcutr } from '@libp2p/dcutr';
import { autoNAT } from '@libp2p/autonat';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { peerIdFromString } from '@libp2p/peer-id';
import type { PeerId } from '@libp2p/interface';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { principalFromPublicKey } from '../identity/identity.js';
import type { Principal } from '../interface/ids.js';

export const DHT_PROTOCOL = '/promisegrid/kad/1.0.0';

/**
 * Connection caps: a node keeps few long-lived connections (its peers, its
 * DHT neighbours, relays), so these are generous for an honest grid and
 * small against a stranger opening many. `perAddressPerSecond`: new inbound
 * connections one host may open a second (libp2p's own rate limiter, whose
 * default this is).
 */
export interface P2pLimits {
  readonly maxConnections: number;
  readonly maxIncomingPending: number;
  readonly perAddressPerSecond: number;
}

export const P2P_LIMITS: P2pLimits = Object.freeze({
  maxConnections: 256,
  maxIncomingPending: 32,
  perAddressPerSecond: 5,
});

export interface HostOptions {
  /** The node's 32-byte Ed25519 seed (its key file's), from which its peer id comes. */
  readonly seed: Uint8Array;
  /** The host libp2p listens on (the grid node's); a port is taken freely for TCP and for WebSockets. */
  readonly host: string;
  /** Serve as a circuit relay v2 for nodes that cannot be dialled (`grid start --relay`). */
  readonly relay?: boolean;
  /** Other caps than P2P_LIMITS: many nodes on one host (a benchmark on loopback) all come from one address. */
  readonly limits?: Partial<P2pLimits>;
}

export type P2pHost = Libp2p<{ dht: KadDHT } & Record<string, unknown>>;

const listenAddress = (host: string) => (host.includes(':') ? `/ip6/${host}` : /^\d+\.\d+\.\d+\.\d+$/.test(host) ? `/ip4/${host}` : `/dns/${host}`);

export const startHost = async (options: HostOptions): Promise<P2pHost> => {
  const privateKey = await generateKeyPairFromSeed('Ed25519', options.seed);
  const limits = { ...P2P_LIMITS, ...options.limits };
  const base = listenAddress(options.host);
  return (await createLibp2p({
    privateKey,
    // Not `/p2p-circuit`: listening there sends the node on an endless random walk of the DHT looking for a
    // relay, which on a grid without one only burns CPU (it slowed every lookup). The transport is kept, to dial
    // relayed addresses; a node behind NAT will listen on its relay's once it knows one (issue 18, item 3).
    addresses: { listen: [`${base}/tcp/0`, `${base}/tcp/0/ws`] },
    transports: [tcp(), webSockets(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      maxConnections: limits.maxConnections,
      maxIncomingPendingConnections: limits.maxIncomingPending,
      inboundConnectionThreshold: limits.perAddressPerSecond,
    },
    services: {
      identify: identify(),
      ping: ping(),
      // Grid nodes meet on LANs and loopback too: their private addresses are kept, not filtered as on the public IPFS DHT.
      dht: kadDHT({ protocol: DHT_PROTOCOL, clientMode: false, peerInfoMapper: passthroughMapper }),
      pubsub: gossipsub(),
      dcutr: dcutr(),
      autonat: autoNAT(),
      ...(options.relay ? { relay: circuitRelayServer() } : {}),
    },
  })) as unknown as P2pHost;
};

/** The principal a peer id names: only an Ed25519 peer id names one. */
export const principalOfPeer = (peer: PeerId): Principal | undefined =>
  peer.type === 'Ed25519' && peer.publicKey ? principalFromPublicKey(peer.publicKey.raw) : undefined;

/**
 * A multiaddr another node gave for itself, if it is one: parsed, and
 * ending in the `/p2p/` id of `principal`, so a peer can only point at
 * itself. Undefined for anything else.
 */
export const ownMultiaddr = (text: unknown, principal: Principal): Multiaddr | undefined => {
  if (typeof text !== 'string' || text.length > 512) return undefined;
  try {
    const address = multiaddr(text);
    const id = address.getComponents().findLast((component) => component.name === 'p2p')?.value;
    if (id === undefined) return undefined;
    const peer = peerIdFromString(id);
    return principalOfPeer(peer) === principal ? address : undefined;
  } catch {
    return undefined;
  }
};
