/**
 * Growing the grid. `invite` hands out a grid URL naming an invitation (a
 * token for this node as introducer, usable once, expiring) and where to
 * reach the node; `join` redeems one: the joiner connects to the introducer,
 * uses the invitation up, and learns the introducer's address and peers,
 * which it keeps connected to and remembers. If the joiner is itself
 * listening, the introducer remembers it in turn, so calls can be forwarded
 * both ways.
 */
import { E } from '@endo/eventual-send';
import { asPrincipal, type Principal } from '../interface/ids.js';
import { parseGridUrl } from './grid-url.js';
import { GridError } from '../interface/errors.js';
import type { Session } from './session.js';

class JoinError extends GridError {}

export const isPeerUrl = (url: string): boolean => /^wss?:\/\/[^/\s]+\/?$/.test(url);

const MAX_LEARNED_PEERS = 64;

/** What a joiner gets back: the introducer and the peers to keep (the introducer's own address first). */
export interface Welcome {
  readonly introducer: Principal;
  readonly peers: readonly string[];
}

/** A connection to another node, as membership uses it (a RemoteNode, client.ts). */
export interface Reached {
  readonly session: Pick<Session, 'bootstrap' | 'peer'>;
  close(): void;
}

/** Redeem an invitation at the node `remote` is connected to. */
export const redeemInvitation = async (remote: Reached, invitation: string, joinerUrl: string | undefined): Promise<Welcome> => {
  let peers: unknown;
  try {
    peers = await E(remote.session.bootstrap() as Promise<{ redeem(token: string, url?: string): Promise<string[]> }>).redeem(invitation, joinerUrl);
  } catch (error) {
    throw new JoinError('ERR_JOIN', `join refused: ${(error as Error).message}`);
  }
  if (!Array.isArray(peers) || peers.length > MAX_LEARNED_PEERS || !peers.every((url) => typeof url === 'string' && isPeerUrl(url))) {
    throw new JoinError('ERR_JOIN', 'the introducer answered with something that is not a list of peer URLs');
  }
  return { introducer: asPrincipal(remote.session.peer), peers };
};

export interface MembershipPowers {
  readonly principal: Principal;
  readonly url: string;
  /** The peers the node keeps (Peers, peers.ts). */
  readonly peers: { add(url: string): void; state(): ReadonlyArray<{ readonly url: string }> };
  /** Where invitations are kept (Invitations, home/invitations.ts). */
  readonly invitations: {
    create(introducer: Principal, expires: number, nonce: Uint8Array): Promise<string>;
    redeem(token: string, now: number): Promise<unknown>;
  };
  readonly clock: () => number;
  readonly random: (n: number) => Uint8Array;
  readonly connect: (url: string) => Promise<Reached>;
  /** Keep these peer URLs across restarts. */
  readonly remember: (urls: readonly string[]) => Promise<void>;
  /** Where the node's control plane listens (src/p2p), handed out with its invitations. */
  readonly multiaddrs?: () => readonly string[];
  /** Reach the introducer's control plane at the addresses its invitation gave. */
  readonly bootstrap?: (addresses: readonly string[], introducer: Principal) => Promise<void>;
}

/** Control-plane addresses an invitation carries, at most. */
const MAX_INVITATION_MULTIADDRS = 8;

export const makeMembership = (powers: MembershipPowers) => {
  const keep = async (urls: readonly string[]) => {
    const fresh = urls.filter((url) => url !== powers.url);
    for (const url of fresh) powers.peers.add(url);
    await powers.remember(fresh);
  };
  return {
    /** A new invitation as a grid URL. */
    invite: async (expiresInMs: number): Promise<{ invitation: string; expires: number }> => {
      const expires = powers.clock() + expiresInMs;
      const token = await powers.invitations.create(powers.principal, expires, powers.random(16));
      // The control plane's addresses ride along (`p2p=`, each ending in the introducer's peer id): a joiner's DHT starts from them.
      const p2p = (powers.multiaddrs?.() ?? []).slice(0, MAX_INVITATION_MULTIADDRS).map((address) => `&p2p=${encodeURIComponent(address)}`);
      return { invitation: `grid://${token}?via=${powers.url}${p2p.join('')}`, expires };
    },
    /** Someone redeems an invitation: strike it off, keep their address, tell them ours and our peers'. */
    redeem: async (token: string, joinerUrl: unknown): Promise<string[]> => {
      await powers.invitations.redeem(String(token), powers.clock());
      if (typeof joinerUrl === 'string' && isPeerUrl(joinerUrl)) await keep([joinerUrl]);
      const known = powers.peers.state().map((peer) => peer.url).filter((url) => url !== joinerUrl);
      return [powers.url, ...known].slice(0, MAX_LEARNED_PEERS);
    },
    /** This node joins through an invitation URL. */
    join: async (invitationUrl: string): Promise<Welcome> => {
      const { token, via } = parseGridUrl(invitationUrl);
      if (!via) throw new JoinError('ERR_GRID_URL', 'the invitation says nowhere to go (no ?via=)');
      const remote = await powers.connect(via);
      try {
        const welcome = await redeemInvitation(remote, token, powers.url);
        await keep(welcome.peers);
        const addresses = new URL(invitationUrl).searchParams.getAll('p2p').slice(0, MAX_INVITATION_MULTIADDRS);
        if (addresses.length > 0) await powers.bootstrap?.(addresses, welcome.introducer);
        return welcome;
      } finally {
        remote.close();
      }
    },
  };
};

export type Membership = ReturnType<typeof makeMembership>;
