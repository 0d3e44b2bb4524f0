/**
 * Calls journaled and not yet settled, by sequence number: what a later
 * record about a call (`forwarded`, `fulfilled`…) needs to know of it. An
 * entry goes when its call settles, so live this holds the calls in flight
 * and on replay the ones a crash left open — never the whole history.
 */
import type { Principal } from '../interface/ids.js';
import { entryData, entryFromData, type Entry } from '../journal/journal.js';

export interface OpenCall {
  readonly entry: Extract<Entry, { kind: 'call' }>;
  /** The peer that answered it, if it was forwarded. */
  forwardedTo?: Principal;
}

const SETTLES = new Set(['fulfilled', 'revoked', 'promised']);

export type CallIndex = ReturnType<typeof makeCallIndex>;

export const makeCallIndex = () => {
  const open = new Map<number, OpenCall>();
  return harden({
    of: (seq: number) => open.get(seq),
    /** Take in a call or what it was forwarded to; before the other parts see the entry. */
    opened(entry: Entry) {
      if (entry.kind === 'call') open.set(entry.seq, { entry });
      else if (entry.kind === 'forwarded') {
        const call = open.get(entry.call);
        if (call) call.forwardedTo = entry.to;
      }
    },
    /** The calls open now, as plain data (kernel/snapshot.ts). */
    snapshot: () => [...open.values()].map(({ entry, forwardedTo }) => ({ ...entryData(entry), ...(forwardedTo ? { forwardedTo } : {}) })),
    restore(calls: ReadonlyArray<ReturnType<typeof entryData> & { forwardedTo?: Principal }>) {
      for (const { forwardedTo, ...data } of calls) {
        const entry = entryFromData(data) as OpenCall['entry'];
        open.set(entry.seq, { entry, ...(forwardedTo ? { forwardedTo } : {}) });
      }
    },
    /** Drop a call that settled; after the other parts saw the entry. */
    settled(entry: Entry) {
      if (SETTLES.has(entry.kind)) open.delete((entry as Extract<Entry, { kind: 'fulfilled' | 'revoked' | 'promised' }>).call);
    },
  });
};
