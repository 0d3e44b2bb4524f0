/**
 * Revocations, and who must hear of them. All of it is read from journal
 * entries (`apply`), live and on replay alike: a token is revoked once a
 * `revoke` (made here) or `revocation` (heard, with its signed notice) is
 * journaled; whoever got a cacheable answer (`fulfilled` pure, `hit`), a
 * replica (`replicated`) or answers calls through a delegation (`wrap`)
 * must hear of its revocation; and the peer that answered a token
 * cacheably is its upstream, whose notices about it are believed.
 */
import type { Principal, Token } from '../interface/ids.js';
import type { Closure } from '../closures/closure.js';
import type { Entry, Journal } from '../journal/journal.js';
import type { Delegation } from '../delegation/delegation.js';
import type { Identity } from '../identity/identity.js';
import { isSignedRevocation, signRevocation, type RevocationNotice } from './revocations.js';
import type { OpenCall } from './call-index.js';
import { KernelError, type RevocationListener } from './types.js';
import { RECORD_BYTES, type QuotaKeeper } from './quota.js';

/** Most revocations of delegations not yet seen here that a node keeps, waiting to see them. */
const MAX_UNSEEN_REVOCATIONS = 10_000;
/** Most signers whose notices for one unseen delegation are kept: a flood of forged ones cannot grow without bound. */
const MAX_SIGNERS_PER_UNSEEN = 16;

export type RevocationTable = ReturnType<typeof makeRevocationTable>;

/** The signed notice a `revocation` or `revocation-early` record keeps. */
const noticeIn = (entry: Extract<Entry, { kind: 'revocation' | 'revocation-early' }>): RevocationNotice =>
  Object.freeze({ token: entry.token, reason: entry.reason, by: entry.by, signature: entry.signature });

export interface RevocationSnapshot {
  /** Each revoked token, why, and when (this node's clock). */
  readonly revoked: ReadonlyArray<readonly [Token, string, number]>;
  readonly notices: readonly RevocationNotice[];
  readonly upstream: ReadonlyArray<readonly [Token, Principal]>;
  readonly mustHear: ReadonlyArray<readonly [Token, readonly Principal[]]>;
  readonly unseen: ReadonlyArray<readonly [Token, ReadonlyArray<{ notice: RevocationNotice; from: Principal }>]>;
}

export const makeRevocationTable = ({
  identity,
  journal,
  delegationOf,
  closureHere,
  quota,
}: {
  identity: Identity;
  journal: Journal;
  delegationOf: (token: Token) => Promise<Delegation | undefined>;
  closureHere: (token: Token) => Promise<Closure | undefined>;
  /** What an early revocation's record costs its sender (quota.ts). */
  quota: QuotaKeeper;
}) => {
  const revoked = new Map<Token, string>();
  /** When this node revoked each token, or heard it revoked (its clock). */
  const revokedAt = new Map<Token, number>();
  /** Signed revocations heard from peers. */
  const notices = new Map<Token, RevocationNotice>();
  /** Notices of this node's own revocations, signed the first time one is asked for. */
  const signedHere = new Map<Token, RevocationNotice>();
  /** The peer whose answers this node cached, per token it holds no closure for: revocations it relays are believed. */
  const upstream = new Map<Token, Principal>();
  /** Per token, who must hear of its revocation: those given cacheable answers or its replica, and a delegation's issuer. */
  const mustHear = new Map<Token, Set<Principal>>();
  /**
   * Signed revocations of delegations not seen here yet (journaled
   * `revocation-early`): believed if the delegation turns up and its
   * delegator signed them. Oldest first, so that the bounds below drop the
   * same ones live and on replay.
   */
  const unseen = new Map<Token, Map<Principal, { notice: RevocationNotice; from: Principal }>>();
  const listeners = new Set<RevocationListener>();

  /** Note that `peer` must hear of `token`'s revocation (this node itself needs no notice). */
  const owesNotice = (token: Token, peer: Principal) => {
    if (peer === identity.principal) return;
    let audience = mustHear.get(token);
    if (!audience) mustHear.set(token, (audience = new Set()));
    audience.add(peer);
  };

  const noticeOf = async (token: Token): Promise<RevocationNotice | undefined> => {
    const notice = notices.get(token) ?? signedHere.get(token);
    const reason = revoked.get(token);
    if (notice || reason === undefined) return notice;
    const signed = await signRevocation(token, reason, identity);
    // Another caller may have signed it meanwhile: keep one notice per token.
    if (!signedHere.has(token)) signedHere.set(token, signed);
    return signedHere.get(token);
  };

  const announce = async (notice: RevocationNotice) => {
    const audience = mustHear.get(notice.token) ?? new Set<Principal>();
    // A listener's failure (a peer gone) must not undo the revocation here.
    await Promise.all([...listeners].map(async (listener) => listener(notice, audience)).map((p) => p.catch(() => {})));
  };

  /** Journal a revocation already proven; false if it was no news. */
  const believe = (notice: RevocationNotice, from: Principal): boolean => {
    if (revoked.has(notice.token)) return false;
    journal.append({ kind: 'revocation', ...notice, from });
    return true;
  };

  return harden({
    apply(entry: Entry, callOf: (seq: number) => OpenCall | undefined) {
      switch (entry.kind) {
        case 'revocation-early': {
          const notice = noticeIn(entry);
          let bySigner = unseen.get(entry.token);
          if (!bySigner) {
            if (unseen.size >= MAX_UNSEEN_REVOCATIONS) unseen.delete(unseen.keys().next().value!);
            unseen.set(entry.token, (bySigner = new Map()));
          }
          if (bySigner.size < MAX_SIGNERS_PER_UNSEEN && !bySigner.has(entry.by)) bySigner.set(entry.by, { notice, from: entry.from });
          break;
        }
        case 'revoke':
        case 'revocation':
          unseen.delete(entry.token);
          revoked.set(entry.token, entry.reason);
          revokedAt.set(entry.token, entry.at);
          if (entry.kind === 'revocation') notices.set(entry.token, noticeIn(entry));
          break;
        case 'fulfilled': {
          const call = entry.pure ? callOf(entry.call) : undefined;
          if (!call) break;
          owesNotice(call.entry.token, call.entry.caller);
          if (call.forwardedTo) upstream.set(call.entry.token, call.forwardedTo);
          break;
        }
        case 'hit':
          owesNotice(entry.token, entry.caller);
          break;
        // The original closure's issuer answers calls through a delegation: it must hear of its revocation.
        case 'wrap':
          owesNotice(entry.token, entry.issuer);
          break;
        case 'replicated':
          owesNotice(entry.token, entry.to);
          break;
        default:
      }
    },

    /** What the journal left here, as plain data (kernel/snapshot.ts). */
    snapshot: (): RevocationSnapshot => ({
      revoked: [...revoked].map(([token, reason]) => [token, reason, revokedAt.get(token)!]),
      notices: [...notices.values()],
      upstream: [...upstream],
      mustHear: [...mustHear].map(([token, audience]) => [token, [...audience]]),
      unseen: [...unseen].map(([token, bySigner]) => [token, [...bySigner.values()]]),
    }),
    restore(from: RevocationSnapshot) {
      for (const [token, reason, at] of from.revoked) {
        revoked.set(token, reason);
        revokedAt.set(token, at);
      }
      for (const notice of from.notices) notices.set(notice.token, notice);
      for (const [token, peer] of from.upstream) upstream.set(token, peer);
      for (const [token, audience] of from.mustHear) mustHear.set(token, new Set(audience));
      for (const [token, early] of from.unseen) unseen.set(token, new Map(early.map((one) => [one.notice.by, one])));
    },

    reasonFor: (token: Token) => revoked.get(token),
    isRevoked: (token: Token) => revoked.has(token),
    /** When `token` was revoked here, or its revocation heard (the node's clock); undefined if it is not revoked. */
    revokedAt: (token: Token) => revokedAt.get(token),

    /** Revoke `token` (the caller checked the authority): on disk before anyone is told, so that no crash undoes it. */
    async revoke(token: Token, reason: string): Promise<void> {
      if (revoked.has(token)) return;
      journal.append({ kind: 'revoke', token, reason, by: identity.principal });
      await journal.flush();
      await announce((await noticeOf(token))!);
    },

    /**
     * A revocation from peer `from`. Believed if its issuer's signature checks
     * out and the issuer is the one this node knows for the token: from the
     * closure record if it holds it, else from the peer whose answers it cached
     * (that peer was this node's only source for the token in the first place).
     * Returns whether it was news; throws what makes it unbelievable.
     */
    async hear(notice: RevocationNotice, from: Principal): Promise<boolean> {
      if (revoked.has(notice.token)) return false;
      if (!isSignedRevocation(notice)) throw new KernelError('ERR_BAD_REVOCATION', `revocation of ${notice.token}: the signature does not prove ${notice.by}`);
      const delegation = await delegationOf(notice.token).catch(() => undefined);
      const closure = delegation ? undefined : await closureHere(notice.token).catch(() => undefined);
      if (!delegation && !closure && !upstream.has(notice.token)) {
        // Most likely a delegation whose calls have not reached this node yet: kept until one does,
        // and believed then if its delegator signed it. On disk, as a revocation is, before the
        // sender is answered: a restart in between must not forget it.
        const bySigner = unseen.get(notice.token);
        if (bySigner?.has(notice.by) || (bySigner?.size ?? 0) >= MAX_SIGNERS_PER_UNSEEN) return false;
        const refusal = quota.take(from, RECORD_BYTES + notice.reason.length + notice.signature.length);
        if (refusal) throw new KernelError('ERR_QUOTA', refusal);
        journal.append({ kind: 'revocation-early', ...notice, from });
        await journal.flush();
        return false;
      }
      const vouched = delegation ? delegation.delegator === notice.by : closure ? closure.issuer === notice.by : upstream.get(notice.token) === from;
      if (!vouched) {
        const why = delegation ? `${notice.by} is not its delegator` : closure ? `${notice.by} is not its issuer` : `this node did not get it from ${from}`;
        throw new KernelError('ERR_BAD_REVOCATION', `revocation of ${notice.token}: ${why}`);
      }
      if (!believe(notice, from)) return false;
      // On disk before the sender hears it was taken, and before anyone else hears it.
      await journal.flush();
      await announce(notice);
      return true;
    },

    /** A delegation seen here for the first time: a revocation of it heard before now applies if its delegator signed it. */
    learned(delegation: Delegation) {
      // Only the delegator's own notice counts: one by anyone else cannot stand in for it or push it out.
      const early = unseen.get(delegation.token)?.get(delegation.delegator);
      if (early) believe(early.notice, early.from);
    },

    /** Revocations that `peer` was given cacheable answers for: what it must hear on connecting. */
    async revocationsFor(peer: Principal): Promise<RevocationNotice[]> {
      const owed = [...mustHear].filter(([token, audience]) => audience.has(peer) && revoked.has(token));
      return Promise.all(owed.map(async ([token]) => (await noticeOf(token))!));
    },

    /** Listen for revocations made or heard here; returns a function that stops listening. */
    onRevocation(listener: RevocationListener): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    /** The signed notice of a revocation made or heard here, to hand to a node that must hear it. */
    noticeOf,
  });
};
