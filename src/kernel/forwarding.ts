/**
 * Forwarding: a call on a token this node cannot answer goes to its peers,
 * unless it has been around already. A cacheable answer is cached here like
 * one computed here; the peer that gave it is then the token's upstream,
 * whose revocation notices this node believes (revocation-table.ts reads
 * both from the records).
 */
import type { Principal, Token } from '../interface/ids.js';
import { describeThrown } from '../interface/errors.js';
import { fulfilled, revoked, type Outcome } from '../interface/outcome.js';
import { decodeValue, encodeValue, type GridValue } from '../closures/values.js';
import type { Journal } from '../journal/journal.js';
import type { ClosureTable } from './closure-table.js';
import { impure, type CallFrame, type ChainBlocks, type Forwarder, type Invoked, type KernelLimits } from './types.js';

export const makeForwarding = (parts: {
  self: Principal;
  journal: Journal;
  limits: KernelLimits;
  forward?: Forwarder;
  closures: ClosureTable;
  log?: (token: Token, line: string) => void;
}) => {
  const { self, journal, limits, closures } = parts;

  /** Ask the peers; `peer`: the one that answered, if one did. */
  const forward = async (token: Token, argsBytes: Uint8Array, frame: CallFrame, chain?: ChainBlocks): Promise<Invoked & { peer?: Principal }> => {
    const withPeer = (outcome: Outcome, peer?: Principal) => ({ outcome, pure: false, ...(peer ? { peer } : {}) });
    if (frame.path.includes(self)) return impure(revoked('loop', 'forwarding loop'));
    if (frame.path.length >= limits.maxHops) return impure(revoked('call-limit', `hop limit (${limits.maxHops})`));
    const forwarded = await parts.forward!({
      token,
      args: decodeValue(argsBytes) as GridValue[],
      path: [...frame.path, self],
      deadline: frame.deadline,
      ...(chain ? { chain } : {}),
      ...(frame.signal ? { signal: frame.signal } : {}),
    });
    if (!forwarded) return impure(revoked('unknown-token', 'unknown token'));
    const { answer, peer, replica } = forwarded;
    if (replica && peer) {
      // From now on this node answers the token itself.
      await closures.adopt(token, replica).catch((error: unknown) => parts.log?.(token, `replica from ${peer} refused: ${describeThrown(error)}`));
    }
    // Answers through a delegation are screened each time: never cached on the way.
    // The node that ran the call journals why it was revoked; here it is another node's answer.
    if (answer.outcome.status === 'revoked') return withPeer(revoked(answer.outcome.code, answer.outcome.reason, 'remote'), peer);
    if (answer.outcome.status !== 'fulfilled' || chain) return withPeer(answer.outcome, peer);
    let valueBytes: Uint8Array;
    try {
      // A peer's answer is input like any other: it must be grid data within limits.
      valueBytes = encodeValue(answer.outcome.value);
    } catch (error) {
      return withPeer(revoked('malformed', `peer answered with something malformed: ${describeThrown(error)}`), peer);
    }
    return { outcome: fulfilled(decodeValue(valueBytes)), pure: answer.cacheable && peer !== undefined, valueBytes, ...(peer ? { peer } : {}) };
  };

  /** `forward` for call `seq`, journaled already: which peer answered it is journaled too. */
  const forwardCall = async (token: Token, argsBytes: Uint8Array, frame: CallFrame, seq: number, chain?: ChainBlocks): Promise<Invoked> => {
    const forwarded = await forward(token, argsBytes, frame, chain);
    if (forwarded.peer) journal.append({ kind: 'forwarded', call: seq, to: forwarded.peer });
    return forwarded;
  };

  return { forward, forwardCall };
};
