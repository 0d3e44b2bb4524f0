/**
 * Tokens answered at the other end of a session this node did not dial: a
 * browser tab's closures, above all. A tab cannot be dialled, so forwarding
 * to peers (peers.ts) never reaches it; instead it tells the node which
 * closures it issued, by their signed records, and the node routes calls on
 * them down the tab's session while it is open. Once it is gone, they answer
 * `unreachable` — the answer exists, on a node that is offline — rather than
 * `unknown token`.
 *
 * A record is believed only if it hashes to its token and is signed by the
 * session's own principal: a peer can route to itself, never divert another
 * issuer's tokens. What a stranger can make the node hold is bounded: at
 * most MAX_HOSTED_PER_ISSUER tokens per principal and MAX_HOSTED in all,
 * the least recently announced forgotten first. Nothing here is journaled:
 * a tab announces again each time it connects.
 */
import { DAG_CBOR_CODEC, type Principal, type Token } from '../interface/ids.js';
import { GridError } from '../interface/errors.js';
import { revoked } from '../interface/outcome.js';
import { readClosure } from '../closures/closure.js';
import { blockCid } from '../store/hashing.js';
import type { Forwarder } from '../kernel/types.js';
import type { Answer } from '../wire/shapes.js';
import type { Session } from './session.js';

/** Tokens one principal may have routed to it. */
export const MAX_HOSTED_PER_ISSUER = 10_000;
/** Tokens routed in all, across principals. */
export const MAX_HOSTED = 200_000;
/** Records one announcement may carry (a CapTP message carries at most MAX_CAPTP_VALUES values: session.ts). */
export const MAX_ANNOUNCED = 256;

/** An announcement refused: one line, naming the record. */
export class AnnounceError extends GridError<'ERR_ANNOUNCE'> {
  constructor(message: string) {
    super('ERR_ANNOUNCE', message);
  }
}

const unreachable: Answer = Object.freeze({ outcome: revoked('unreachable', 'unreachable: the tab that answers this token is closed'), cacheable: false });

export interface HostedTokens {
  /**
   * `peer` answers these closures (their records, as the tab's
   * store holds them): how many were taken. Throws, in one line, on the
   * first record that is not a closure it issued.
   */
  announce(peer: Principal, records: readonly Uint8Array[]): number;
  /** Calls on announced tokens, to their issuer's open session; undefined for any other token. */
  readonly forward: Forwarder;
  /** How many of them `principal` announced. */
  announcedBy(principal: Principal): number;
}

export const makeHostedTokens = (powers: {
  /** The open session with `principal` that calls on its tokens go down, if there is one. */
  readonly sessionOf: (principal: Principal) => Session | undefined;
  readonly clock: () => number;
}): HostedTokens => {
  /** Token → its issuer, least recently announced first. */
  const issuerOf = new Map<Token, Principal>();
  /** Each issuer's tokens, least recently announced first. */
  const tokensOf = new Map<Principal, Set<Token>>();

  const forget = (token: Token) => {
    const issuer = issuerOf.get(token);
    if (issuer === undefined) return;
    issuerOf.delete(token);
    const tokens = tokensOf.get(issuer)!;
    tokens.delete(token);
    if (tokens.size === 0) tokensOf.delete(issuer);
  };

  const check = (peer: Principal, bytes: Uint8Array): Token => {
    if (!(bytes instanceof Uint8Array)) throw new AnnounceError('an announced record is bytes');
    const token = blockCid(bytes, DAG_CBOR_CODEC).toString() as Token;
    let closure;
    try {
      closure = readClosure(token, bytes);
    } catch (error) {
      throw new AnnounceError((error as Error).message);
    }
    if (closure.issuer !== peer) throw new AnnounceError(`closure ${token} was issued by ${closure.issuer}, not by ${peer}`);
    return token;
  };

  return {
    announce(peer, records) {
      if (!Array.isArray(records) || records.length > MAX_ANNOUNCED) throw new AnnounceError(`announce a list of at most ${MAX_ANNOUNCED} closure records`);
      const tokens = records.map((bytes) => check(peer, bytes));
      for (const token of tokens) {
        forget(token); // announced again: the most recent now
        const own = tokensOf.get(peer);
        if (own && own.size >= MAX_HOSTED_PER_ISSUER) forget(own.values().next().value!);
        if (issuerOf.size >= MAX_HOSTED) forget(issuerOf.keys().next().value!);
        issuerOf.set(token, peer);
        if (!tokensOf.has(peer)) tokensOf.set(peer, new Set());
        tokensOf.get(peer)!.add(token);
      }
      return tokens.length;
    },

    forward: async ({ token, args, path, deadline, chain, signal }) => {
      const issuer = issuerOf.get(token);
      // Through the issuer already: a loop, for the peers to refuse.
      if (issuer === undefined || path.includes(issuer)) return undefined;
      const session = powers.sessionOf(issuer);
      if (!session) return { answer: unreachable };
      const answer = await session.call(token, args, { path, timeoutMs: Math.max(0, deadline - powers.clock()), ...(chain ? { chain } : {}), ...(signal ? { signal } : {}) });
      // Gone while the call was on its way: the same as gone before it.
      if (answer.outcome.status === 'revoked' && answer.outcome.code === 'disconnected') return { answer: unreachable };
      return { answer, peer: issuer };
    },

    announcedBy: (principal) => tokensOf.get(principal)?.size ?? 0,
  };
};
