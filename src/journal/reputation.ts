/**
 * Reputation: what each issuer kept and broke of its promises, tallied from
 * journal records. The kernel keeps one tally live (policies and screening
 * read it); the CLI and tests tally a journal's entries the same way.
 */
import type { Principal } from '../interface/ids.js';
import type { RevokeCause } from '../interface/outcome.js';
import type { Entry } from './journal.js';

export interface Reputation {
  readonly issuer: Principal;
  /** Tokens issued. */
  issued: number;
  /** Calls by others answered with a value (cache hits included). */
  fulfilled: number;
  /** Tokens the issuer revoked, and calls by others that hit a limit or crashed (each caller counted once: see ReputationTally). */
  broken: number;
  /** Calls by others the closure refused for their input: promises kept, weighed neither way. */
  refused: number;
  /** Calls by others without a final outcome yet (running, or a further promise not yet kept). */
  pending: number;
}

/** How a settled call weighs on its issuer's record. */
type Weight = 'fulfilled' | 'broken' | 'refused' | 'none';

/**
 * What a revoked call's cause means for the issuer whose closure answered
 * it: the one place where causes are weighed, for the kernel live, the
 * kernel replaying its journal, the CLI and the REPL alike. A record
 * written before causes were kept counts as a break (each caller once).
 */
export const weightOfCause = (cause: RevokeCause | undefined): Weight => {
  switch (cause) {
    case 'refused':
      return 'refused';
    case 'limit':
    case 'crash':
    case undefined:
      return 'broken';
    default:
      // revoked (its revocation counts, once), passed (counted where it broke), screened, node, remote, or unknown.
      return 'none';
  }
};

/**
 * Reputation, kept up to date record by record: the kernel feeds it every
 * record it writes, so policies can ask about a principal without a pass
 * over the journal. It measures what an issuer failed to keep, not what its
 * callers asked for:
 *
 * - a value is a promise kept (`fulfilled`); the closure's refusal of its
 *   caller's input (`ctx.revoke`) is a promise kept too (`refused`), which
 *   the ratio policies use (fulfilled against broken) weighs neither way, so
 *   a caller can neither lower nor raise an issuer's record with bad input;
 * - broken: the issuer revoking a token (or a delegator its delegation)
 *   after issuing it, and a call that hit its time or memory limit or
 *   crashed. A caller can craft arguments that make a closure loop or
 *   throw, so each caller costs an issuer at most one such break, however
 *   many calls it makes (its later ones are counted nowhere);
 * - calls on a revoked token, calls refused by a delegation's policies,
 *   revocations passed on from a nested call, and the node's own trouble
 *   count for nobody;
 * - the issuer's own calls count for nothing: an issuer cannot look good
 *   by calling its own tokens (nor do its closures' nested calls on its
 *   other tokens count).
 *
 * A delegation is its delegator's promise too: issued, and broken if its
 * delegator revokes it; the calls through it are counted for the closure
 * that answers them. Memory grows with principals, tokens and (issuer,
 * caller) pairs that broke, not with calls: a call is forgotten once it
 * settles.
 */
/** The row of an issuer the tally has seen nothing of. */
export const noReputation = (issuer: Principal): Reputation => ({ issuer, issued: 0, fulfilled: 0, broken: 0, refused: 0, pending: 0 });

export interface ReputationSnapshot {
  readonly issuerOf: ReadonlyArray<readonly [string, Principal]>;
  readonly delegatorOf: ReadonlyArray<readonly [string, Principal]>;
  readonly open: ReadonlyArray<readonly [number, Principal, string, Principal]>;
  readonly waiting: ReadonlyArray<readonly [string, readonly number[]]>;
  readonly brokeFor: readonly string[];
  readonly table: ReadonlyArray<readonly [Principal, number, number, number, number, number]>;
}

export class ReputationTally {
  readonly #issuerOf = new Map<string, Principal>();
  readonly #delegatorOf = new Map<string, Principal>();
  /** Calls on a known issuer's tokens by others, not settled yet: call → [issuer, token, caller]. */
  readonly #open = new Map<number, readonly [Principal, string, Principal]>();
  /** further token → the calls waiting on it */
  readonly #waiting = new Map<string, number[]>();
  /** `issuer caller` pairs whose one counted break has been counted. */
  readonly #brokeFor = new Set<string>();
  readonly #table = new Map<Principal, Reputation>();

  #row(issuer: Principal): Reputation {
    let r = this.#table.get(issuer);
    if (!r) this.#table.set(issuer, (r = { issuer, issued: 0, fulfilled: 0, broken: 0, refused: 0, pending: 0 }));
    return r;
  }

  #settle(call: number, weight: Weight) {
    const open = this.#open.get(call);
    if (!open) return;
    this.#open.delete(call);
    const [issuer, token, caller] = open;
    const row = this.#row(issuer);
    row.pending -= 1;
    if (weight === 'fulfilled') row.fulfilled += 1;
    else if (weight === 'refused') row.refused += 1;
    else if (weight === 'broken') {
      const pair = `${issuer} ${caller}`;
      if (!this.#brokeFor.has(pair)) {
        this.#brokeFor.add(pair);
        row.broken += 1;
      }
    }
    const waiters = this.#waiting.get(token);
    this.#waiting.delete(token);
    for (const waiter of waiters ?? []) this.#settle(waiter, weight);
  }

  /** How many delegations (`wrap` records, each token once) the tally has seen. */
  get delegations(): number {
    return this.#delegatorOf.size;
  }

  add(entry: Entry): void {
    switch (entry.kind) {
      case 'issue':
        this.#issuerOf.set(entry.token, entry.issuer);
        this.#row(entry.issuer).issued += 1;
        break;
      case 'wrap':
        if (this.#delegatorOf.has(entry.token)) break;
        this.#delegatorOf.set(entry.token, entry.delegator);
        this.#row(entry.delegator).issued += 1;
        break;
      case 'call': {
        const issuer = this.#issuerOf.get(entry.token);
        if (!issuer || entry.caller === issuer) break;
        this.#open.set(entry.seq, [issuer, entry.token, entry.caller]);
        this.#row(issuer).pending += 1;
        break;
      }
      case 'hit': {
        const issuer = this.#issuerOf.get(entry.token);
        if (issuer && entry.caller !== issuer) this.#row(issuer).fulfilled += 1;
        break;
      }
      case 'fulfilled':
        this.#settle(entry.call, 'fulfilled');
        break;
      case 'revoked':
        this.#settle(entry.call, weightOfCause(entry.cause));
        break;
      case 'promised': {
        if (!this.#open.has(entry.call)) break;
        const list = this.#waiting.get(entry.token) ?? [];
        list.push(entry.call);
        this.#waiting.set(entry.token, list);
        break;
      }
      case 'revoke': {
        const issuer = this.#issuerOf.get(entry.token) ?? this.#delegatorOf.get(entry.token);
        if (issuer) this.#row(issuer).broken += 1;
        break;
      }
      case 'seal':
      case 'forwarded':
      case 'revocation':
      case 'revocation-early':
      case 'screened':
      case 'policy-state':
      case 'replicated':
        break;
    }
  }

  /** Everything the records so far left here, as plain data (a snapshot: kernel/snapshot.ts). */
  snapshot(): ReputationSnapshot {
    return {
      issuerOf: [...this.#issuerOf],
      delegatorOf: [...this.#delegatorOf],
      open: [...this.#open].map(([call, [issuer, token, caller]]) => [call, issuer, token, caller]),
      waiting: [...this.#waiting],
      brokeFor: [...this.#brokeFor],
      table: [...this.#table.values()].map(({ issuer, issued, fulfilled, broken, refused, pending }) => [issuer, issued, fulfilled, broken, refused, pending]),
    };
  }

  /** Take back what `snapshot` gave, into a tally that has seen no records. */
  restore(from: ReputationSnapshot): void {
    for (const [token, issuer] of from.issuerOf) this.#issuerOf.set(token, issuer);
    for (const [token, delegator] of from.delegatorOf) this.#delegatorOf.set(token, delegator);
    for (const [call, issuer, token, caller] of from.open) this.#open.set(call, [issuer, token, caller]);
    for (const [token, calls] of from.waiting) this.#waiting.set(token, [...calls]);
    for (const pair of from.brokeFor) this.#brokeFor.add(pair);
    for (const [issuer, issued, fulfilled, broken, refused, pending] of from.table) this.#table.set(issuer, { issuer, issued, fulfilled, broken, refused, pending });
  }

  /** Who issued (or delegated) `token`, if this journal has seen it. */
  issuerOf(token: string): Principal | undefined {
    return this.#issuerOf.get(token) ?? this.#delegatorOf.get(token);
  }

  of(principal: Principal): Reputation {
    return { ...(this.#table.get(principal) ?? noReputation(principal)) };
  }

  rows(): Reputation[] {
    return [...this.#table.values()].map((row) => ({ ...row }));
  }
}

export const reputation = (entries: readonly Entry[]): Reputation[] => {
  const tally = new ReputationTally();
  for (const entry of entries) tally.add(entry);
  return tally.rows();
};
