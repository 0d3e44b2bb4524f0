/**
 * Content routing on the DHT: who answers a token.
 *
 * A node provides the tokens it can answer — closures it issued, delegations
 * it made, document tokens — and stops providing a token when it revokes it.
 * What goes on the DHT is not the token: a token is an authority (holding
 * its CID is enough to call it), and every DHT node near a key sees the key.
 * The key is `providerKey(token)`, a hash of the token under a domain of its
 * own: whoever holds the token can compute it, nobody can turn it back into
 * the token. No closure bytes, no arguments, no issuer are announced.
 *
 * A node that lacks a token, and whose peers do not have it either, asks the
 * DHT for providers. Anyone can claim to provide a key it saw, so before the
 * call (and with it the token) goes anywhere, the provider must prove it
 * holds the token: on a libp2p stream the caller sends a fresh nonce, the
 * provider answers an HMAC keyed by the token over the nonce and both
 * principals, with its signed address record (net/addresses.ts). A provider
 * whose proof fails is cut off: never called, so never cached from, for
 * CUT_OFF_MS. The call itself then goes over the grid's own authenticated
 * WebSocket session to the URL in that record — one long-lived session per
 * provider, kept in a small pool — and the session must authenticate as the
 * provider's principal (its peer id and did:key are one key, host.ts). Only
 * the node where a call began asks the DHT: a forwarded call's origin does
 * its own lookup.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { PeerId, Stream } from '@libp2p/interface';
import { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';
import type { Identity } from '../identity/identity.js';
import { concatBytes } from '../identity/identity.js';
import type { Principal, Token } from '../interface/ids.js';
import type { Forwarder, Kernel } from '../kernel/kernel.js';
import { addressShape, verifyAddress, type AddressRecord } from '../net/addresses.js';
import type { RemoteNode } from '../net/client.js';
import { askRemote } from '../net/peers.js';
import { silentLog, type Log } from '../net/log.js';
import { decode, encode } from '../wire/cbor.js';
import { ownMultiaddr, principalOfPeer, type P2pHost } from './host.js';

export const PROVIDER_PROTOCOL = '/promisegrid/provider/1.0.0';

const KEY_DOMAIN = new TextEncoder().encode('promisegrid:provide:v1\n');
const PROOF_DOMAIN = new TextEncoder().encode('promisegrid:provider-proof:v1\n');
/** CIDv1, codec raw: what the DHT's provider records are keyed by. */
const RAW = 0x55;

export const ROUTING_LIMITS = Object.freeze({
  /** A proof request is a key and a nonce; an answer adds an address record. */
  maxRequestBytes: 256,
  maxAnswerBytes: 2048,
  nonceBytes: 16,
  /** How long a proof exchange may take, at most (less if the call has less left). */
  proofMs: 5_000,
  /** Providers asked for one token before giving up. */
  providersPerLookup: 8,
  /** Sessions to providers kept open; past it the least recently used closes. */
  providerSessions: 32,
  /** Tokens whose last proven provider is remembered, to be asked first next time. */
  answeredBy: 10_000,
  /** Providers cut off (failed proofs) remembered; past it the oldest is forgotten. */
  cutOff: 4_096,
  /** How long a provider whose proof failed is not asked again. */
  cutOffMs: 60 * 60_000,
  /** Re-provide every token this often (a provider record lives 48 h on the DHT). */
  reprovideMs: 12 * 60 * 60_000,
  /** How long one provide may take, and how many run at once. */
  provideMs: 20_000,
  provideConcurrency: 8,
});

/** The DHT key for `token`: sha2-256 of the token's CID bytes under the provide domain. */
export const providerKey = async (token: Token): Promise<CID> =>
  CID.createV1(RAW, await sha256.digest(concatBytes(KEY_DOMAIN, CID.parse(token).bytes)));

/** The proof that `provider` holds `token`, for `caller`'s `nonce`. */
export const providerProof = (token: Token, nonce: Uint8Array, caller: Principal, provider: Principal): Uint8Array =>
  new Uint8Array(
    createHmac('sha256', CID.parse(token).bytes)
      .update(PROOF_DOMAIN)
      .update(nonce)
      .update(`${caller}\n${provider}\n`)
      .digest(),
  );

const bytesOf = (chunk: Uint8Array | { subarray(): Uint8Array }) => (chunk instanceof Uint8Array ? chunk : chunk.subarray());

/** Everything the other end sends until it closes its side, at most `max` bytes (then the stream is aborted). */
const readAll = async (stream: Stream, max: number): Promise<Uint8Array> => {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of stream) {
    const bytes = bytesOf(chunk);
    length += bytes.length;
    if (length > max) {
      const error = new Error(`more than ${max} bytes`);
      stream.abort(error);
      throw error;
    }
    chunks.push(bytes);
  }
  return concatBytes(...chunks);
};

const field = (value: unknown, name: string): unknown => (typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[name] : undefined);

export interface RoutingPowers {
  readonly host: P2pHost;
  readonly kernel: Kernel;
  readonly identity: Identity;
  /** The node's own signed address record, once it listens. */
  readonly ownAddress: () => AddressRecord | undefined;
  /** An authenticated session to the node at `url` (client.ts `connectNode`, tracked by the node's sessions). */
  readonly connect: (url: string) => Promise<RemoteNode>;
  readonly random: (n: number) => Uint8Array;
  readonly clock?: () => number;
  readonly log?: Log;
  readonly limits?: Partial<typeof ROUTING_LIMITS>;
}

export interface Routing {
  /** The DHT's answer for a token no peer had: a proven provider's, over a grid session. */
  readonly forward: Forwarder;
  /** Where this node's libp2p side can be dialled, each ending in its peer id. */
  multiaddrs(): string[];
  /** Dial the libp2p side of `principal` at the multiaddrs it gave for itself (any naming another peer are dropped). */
  bootstrap(addresses: readonly unknown[], principal: Principal): Promise<void>;
  /** Tokens this node provides now. */
  provided(): Token[];
  close(): Promise<void>;
}

export const startRouting = async (powers: RoutingPowers): Promise<Routing> => {
  const { host, kernel, identity } = powers;
  const limits = { ...ROUTING_LIMITS, ...powers.limits };
  const clock = powers.clock ?? Date.now;
  const log = powers.log ?? silentLog;
  const self = identity.principal;
  let closed = false;

  // What this node provides: the DHT key's text → the token. The proof handler finds a token by its key here.
  const provided = new Map<string, Token>();
  /** Provided here but not yet on the DHT: a provide with no DHT neighbour hangs until its time is up, so it waits for one. */
  const pending = new Set<Token>();
  let flushing: Promise<void> | undefined;
  const flush = (): Promise<void> =>
    (flushing ??= (async () => {
      while (pending.size > 0 && !closed && host.getConnections().length > 0) {
        const batch = [...pending].slice(0, limits.provideConcurrency);
        await Promise.all(
          batch.map(async (token) => {
            pending.delete(token);
            if (kernel.isRevoked(token)) return;
            try {
              await host.contentRouting.provide((await providerKey(token)) as never, { signal: AbortSignal.timeout(limits.provideMs) });
              log.debug({ event: 'p2p-provided', token }, `providing ${token} on the DHT`);
            } catch (error) {
              log.debug({ event: 'p2p-provide-failed', token, err: error }, `could not provide ${token} yet`);
              failed.add(token);
            }
          }),
        );
      }
    })().finally(() => (flushing = undefined)));
  /** Provides that failed: tried again with the next neighbour or the schedule, not in a loop. */
  const failed = new Set<Token>();
  const provide = async (token: Token) => {
    provided.set((await providerKey(token)).toString(), token);
    pending.add(token);
    void flush();
  };
  const unprovide = async (token: Token) => {
    const key = await providerKey(token);
    pending.delete(token);
    failed.delete(token);
    if (!provided.delete(key.toString())) return;
    await host.contentRouting.cancelReprovide(key as never).catch(() => {});
    log.info({ event: 'p2p-unprovided', token }, `no longer providing ${token}: revoked`);
  };
  const retry = (tokens: Iterable<Token>) => {
    for (const token of tokens) pending.add(token);
    failed.clear();
    void flush();
  };

  for (const { token } of kernel.hosted().tokens) if (!kernel.isRevoked(token)) await provide(token);
  kernel.journal.onAppend((entry) => {
    if (closed) return;
    if ((entry.kind === 'issue' && entry.issuer === self) || (entry.kind === 'wrap' && entry.delegator === self) || entry.kind === 'doc-token') void provide(entry.token);
    else if (entry.kind === 'revoke') void unprovide(entry.token);
  });

  await host.handle(PROVIDER_PROTOCOL, async (stream, connection) => {
    try {
      const request = decode(await readAll(stream, limits.maxRequestBytes));
      const key = field(request, 'key');
      const nonce = field(request, 'nonce');
      const caller = principalOfPeer(connection.remotePeer);
      if (!(key instanceof Uint8Array) || !(nonce instanceof Uint8Array) || nonce.length !== limits.nonceBytes || !caller) throw new Error('not a proof request');
      let token: Token | undefined;
      try {
        token = provided.get(CID.decode(key).toString());
      } catch {}
      const own = powers.ownAddress();
      const proof = token && !kernel.isRevoked(token) ? providerProof(token, nonce, caller, self) : undefined;
      stream.send(encode({ ...(own ? { address: { ...own } } : {}), ...(proof ? { proof } : {}) }));
      await stream.close();
    } catch (error) {
      stream.abort(error as Error);
    }
  });

  const cutOff = new Map<Principal, number>();
  const isCutOff = (principal: Principal) => {
    const until = cutOff.get(principal);
    if (until === undefined) return false;
    if (until > clock()) return true;
    cutOff.delete(principal);
    return false;
  };
  const cut = (principal: Principal, why: string) => {
    if (cutOff.size >= limits.cutOff) cutOff.delete(cutOff.keys().next().value!);
    cutOff.set(principal, clock() + limits.cutOffMs);
    sessions.get(principal)?.close();
    log.warn({ event: 'p2p-cut-off', peer: principal, why }, `provider ${principal} cut off: ${why}`);
  };

  /**
   * Ask `peer` to prove it holds `token`: its address record if it does,
   * undefined if it says it does not provide the token. A proof that fails,
   * or an answer that is not one, cuts it off (and is undefined too).
   */
  const prove = async (peer: PeerId, principal: Principal, token: Token, key: CID, signal: AbortSignal): Promise<AddressRecord | undefined> => {
    const nonce = powers.random(limits.nonceBytes);
    let answer: unknown;
    try {
      const stream = await host.dialProtocol(peer, PROVIDER_PROTOCOL, { signal });
      stream.send(encode({ key: key.bytes, nonce }));
      await stream.close({ signal });
      answer = decode(await readAll(stream, limits.maxAnswerBytes));
    } catch (error) {
      // Not reached, or the stream broke: not proof of anything either way.
      log.debug({ event: 'p2p-provider-unreachable', peer: principal, err: error }, `provider ${principal} not reached`);
      return undefined;
    }
    const proof = field(answer, 'proof');
    if (proof === undefined) return undefined;
    const expected = providerProof(token, nonce, self, principal);
    if (!(proof instanceof Uint8Array) || proof.length !== expected.length || !timingSafeEqual(proof, expected)) {
      cut(principal, 'its proof of the token is false');
      return undefined;
    }
    let record: AddressRecord;
    try {
      record = addressShape(field(answer, 'address'));
    } catch (error) {
      cut(principal, `its address record is malformed: ${(error as Error).message}`);
      return undefined;
    }
    if (record.principal !== principal || !verifyAddress(record)) {
      cut(principal, 'its address record is not its own');
      return undefined;
    }
    return record;
  };

  /** Tokens → the provider that proved and answered each last, least recently used first. */
  const answeredBy = new Map<Token, Principal>();
  /** Sessions to providers, least recently used first. */
  const sessions = new Map<Principal, RemoteNode>();
  const sessionTo = async (principal: Principal, url: string): Promise<RemoteNode> => {
    const kept = sessions.get(principal);
    if (kept) {
      sessions.delete(principal);
      sessions.set(principal, kept);
      return kept;
    }
    const remote = await powers.connect(url);
    if (remote.session.peer !== principal) {
      remote.close();
      cut(principal, `the node at ${url} is ${remote.session.peer}`);
      throw new Error('not the provider');
    }
    if (sessions.size >= limits.providerSessions) {
      const [oldest, session] = sessions.entries().next().value!;
      sessions.delete(oldest);
      session.close();
    }
    sessions.set(principal, remote);
    void remote.session.closed.then(() => {
      if (sessions.get(principal) === remote) sessions.delete(principal);
    });
    return remote;
  };

  const forward: Forwarder = async (request) => {
    const { token, path, deadline } = request;
    // Only where the call began: a node it was forwarded to leaves the lookup to its origin.
    if (closed || path.length > 1) return undefined;
    const left = deadline - clock();
    if (left <= 0) return undefined;
    const key = await providerKey(token);
    const signal = request.signal ? AbortSignal.any([request.signal, AbortSignal.timeout(left)]) : AbortSignal.timeout(left);
    let asked = 0;
    const began = clock();
    // The provider that answered this token last, proven then: asked first, without a lookup.
    const known = answeredBy.get(token);
    const remote = known === undefined ? undefined : sessions.get(known);
    if (known !== undefined) answeredBy.delete(token);
    if (remote && !path.includes(remote.session.peer)) {
      const answered = await askRemote(remote, request, clock);
      if (answered !== 'not-here' && answered !== 'missed') {
        answeredBy.set(token, remote.session.peer);
        return answered;
      }
    }
    // With no neighbour the DHT has nobody to ask, and would only wait out the call's time.
    if (host.getConnections().length === 0) return undefined;
    try {
      for await (const provider of host.contentRouting.findProviders(key as never, { signal })) {
        const principal = principalOfPeer(provider.id);
        if (!principal || principal === self || path.includes(principal) || isCutOff(principal)) continue;
        if (++asked > limits.providersPerLookup) break;
        if (provider.multiaddrs.length > 0) await host.peerStore.merge(provider.id, { multiaddrs: provider.multiaddrs }).catch(() => {});
        // Proven for this token, each time it is looked up: a session open for another token proves nothing of this one.
        const proofSignal = AbortSignal.any([signal, AbortSignal.timeout(limits.proofMs)]);
        const record = await prove(provider.id, principal, token, key, proofSignal);
        const remote = record ? await sessionTo(principal, record.url).catch(() => undefined) : undefined;
        if (!remote) continue;
        log.info({ event: 'p2p-found', token, peer: principal, ms: clock() - began }, `${token} answered by ${principal}, found on the DHT`);
        // Not here or missed: the next provider is asked; if none answers, the peers' verdict stands (node.ts).
        const answered = await askRemote(remote, request, clock);
        if (answered !== 'not-here' && answered !== 'missed') {
          if (answeredBy.size >= limits.answeredBy) answeredBy.delete(answeredBy.keys().next().value!);
          answeredBy.set(token, principal);
          return answered;
        }
      }
    } catch (error) {
      if (!signal.aborted) log.debug({ event: 'p2p-lookup-failed', token, err: error }, `DHT lookup of ${token} failed`);
    }
    return undefined;
  };

  const reprovide = setInterval(() => retry(provided.values()), limits.reprovideMs);
  (reprovide as { unref?: () => void }).unref?.();
  // A new neighbour (a bootstrap, or one met on the DHT) gives what waits or failed a place to go; a moment
  // later, so the DHT has taken it into its routing table.
  let soon: ReturnType<typeof setTimeout> | undefined;
  const identified = () => {
    if (soon || (pending.size === 0 && failed.size === 0)) return;
    soon = setTimeout(() => {
      soon = undefined;
      retry(failed);
    }, 500);
  };
  host.addEventListener('peer:identify', identified);

  return {
    forward,
    multiaddrs: () => host.getMultiaddrs().map(String),
    bootstrap: async (addresses, principal) => {
      const own = addresses.map((text) => ownMultiaddr(text, principal)).filter((address) => address !== undefined);
      if (own.length === 0 || closed) return;
      try {
        await host.dial(own, { signal: AbortSignal.timeout(10_000) });
        log.debug({ event: 'p2p-bootstrap', peer: principal }, `libp2p connected to ${principal}`);
      } catch (error) {
        log.debug({ event: 'p2p-bootstrap-failed', peer: principal, err: error }, `libp2p could not reach ${principal}`);
      }
    },
    provided: () => [...provided.values()],
    close: async () => {
      closed = true;
      clearInterval(reprovide);
      clearTimeout(soon);
      host.removeEventListener('peer:identify', identified);
      for (const session of sessions.values()) session.close();
      sessions.clear();
    },
  };
};
