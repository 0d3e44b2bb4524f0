/**
 * Journal records one node shows another principal, so that a promise graph
 * spanning machines can be audited from one place.
 *
 * A node discloses to principal P, asking about token T, the records of its
 * journal that concern T (`entriesAround`) — but only those that hand P no
 * authority it did not have: a record that names a bearer token other than
 * T is withheld unless it belongs to a call P made itself (P sent or received
 * those tokens anyway), and so is the outcome of a withheld call. Delegation
 * tokens are not bearer authority (a chain is checked against its audience),
 * so naming them is fine; a delegation's records go only to its audience and
 * its delegator. Policy state is never disclosed.
 *
 * The records travel as the exact bytes the journal wrote, each naming the
 * record before it by CID, with the list of their CIDs signed by the node
 * (domain-separated, bound to T, P and the time). The journal's own seals
 * next to those records go along: a seal signs the CID of the record before
 * it and reveals nothing else. The receiver recomputes every CID, checks the
 * signature, the hash links between consecutive records, the seals, and that
 * each record concerns T: a record that fails is reported with the reason,
 * never merged.
 */
import { equals } from 'multiformats/bytes';
import { CID } from 'multiformats/cid';
import { asPrincipal, asToken, type Principal, type Token } from '../interface/ids.js';
import { isLink, type GridValue } from '../closures/values.js';
import { concatBytes, verify, type Identity } from '../identity/identity.js';
import { encode } from '../wire/index.js';
import { entriesAround } from './graph.js';
import { readRecord, recordCid, sealVerifies, type Entry, type Journal } from './journal.js';

/** What a disclosure reads through a record index (journal/record-queries.ts): only the records about the token. */
export interface DisclosureIndex {
  around(token: Token): Promise<Entry[]>;
  delegation(token: string): Promise<Extract<Entry, { kind: 'wrap' }> | undefined>;
  isDelegation(token: string): boolean;
  seals(seqs: readonly number[]): Promise<Entry[]>;
  locate(entries: readonly Entry[]): { seq: number; offset: number }[] | undefined;
}

export interface Disclosure {
  readonly node: Principal;
  readonly token: Token;
  readonly requester: Principal;
  /** When the node signed it (its clock, ms since the epoch). */
  readonly at: number;
  /** Each record as written, in journal order. */
  readonly records: readonly Uint8Array[];
  /** Each record's binary CID, as the node signs them. */
  readonly cids: readonly Uint8Array[];
  readonly signature: Uint8Array;
}

/** A record that did not verify, and why. */
export interface Flagged {
  /** Its place in the disclosure, and its sequence number if it could be read. */
  readonly index: number;
  readonly seq?: number;
  readonly reason: string;
}

export interface Verified {
  readonly node: Principal;
  readonly entries: readonly Entry[];
  readonly flagged: readonly Flagged[];
}

/** Most records, and most bytes of records, one disclosure carries: the most recent are kept. */
export const MAX_DISCLOSED = 10_000;
export const MAX_DISCLOSED_BYTES = 8 * 1024 * 1024;

const DOMAIN = new TextEncoder().encode('promisegrid:journal-disclosure:v1\n');

const statement = (d: Omit<Disclosure, 'records' | 'signature'>): Uint8Array =>
  concatBytes(DOMAIN, encode([CID.parse(d.token), d.requester, d.node, d.at, [...d.cids]]));

export class DisclosureError extends Error {
  readonly code = 'ERR_DISCLOSURE';
}

/** Links (`{ "/": cid }`) anywhere inside grid data. */
const linksIn = (value: GridValue | undefined, out: Set<string>): Set<string> => {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return out;
  if (isLink(value)) out.add(value['/']);
  else if (Array.isArray(value)) for (const item of value) linksIn(item as GridValue, out);
  else for (const item of Object.values(value)) linksIn(item as GridValue, out);
  return out;
};

/** The tokens a record names (a wrap's own token and a screened layer are delegations, counted apart). */
const tokensNamed = (entry: Entry): Set<string> => {
  switch (entry.kind) {
    case 'issue':
    case 'revoke':
    case 'revocation':
    case 'hit':
    case 'promised':
      return new Set([entry.token]);
    case 'call':
      return linksIn(entry.args, new Set([entry.token]));
    case 'fulfilled':
      return linksIn(entry.value, new Set());
    case 'wrap':
      return new Set([entry.inner]);
    default:
      return new Set();
  }
};

/**
 * The entries of `entries` that this node may show `requester` about
 * `token`; throws DisclosureError if it may show none at all.
 */
export const disclosable = (entries: readonly Entry[], token: Token, requester: Principal): Entry[] => {
  const delegations = new Map<string, Extract<Entry, { kind: 'wrap' }>>();
  for (const entry of entries) if (entry.kind === 'wrap') delegations.set(entry.token, entry);
  const latest = shownOf(entriesAround(entries, token), token, requester, delegations.get(token), (named) => delegations.has(named));
  return withSeals((seq) => entries[seq], latest);
};

/**
 * What of `around` (the records about `token`) may be shown to `requester`,
 * the latest MAX_DISCLOSED of them: `delegation` is the wrap that made
 * `token` if one did, `isDelegation` says whether a token is a delegation's.
 */
const shownOf = (around: readonly Entry[], token: Token, requester: Principal, delegation: Extract<Entry, { kind: 'wrap' }> | undefined, isDelegation: (token: string) => boolean): Entry[] => {
  if (delegation && delegation.delegator !== requester && !delegation.audience.includes(requester)) {
    throw new DisclosureError(`only the audience of delegation ${token} (and its delegator) may see its records`);
  }
  /** Calls shown, and whether the requester made them (a nested call is its closure's doing, not the caller's). */
  const shownCalls = new Map<number, boolean>();
  const shown: Entry[] = [];
  for (const entry of around) {
    let own = false;
    switch (entry.kind) {
      // Policy state and who holds a replica are this node's business.
      case 'policy-state':
      case 'replicated':
        continue;
      case 'call':
      case 'hit':
        own = entry.caller === requester && entry.parent === undefined;
        break;
      case 'fulfilled':
      case 'revoked':
      case 'promised':
      case 'forwarded':
      case 'screened':
        if (!shownCalls.has(entry.call)) continue;
        own = shownCalls.get(entry.call)!;
        break;
    }
    const foreign = [...tokensNamed(entry)].some((named) => named !== token && !isDelegation(named));
    if (foreign && !own) continue;
    if (entry.kind === 'call') shownCalls.set(entry.seq, own);
    shown.push(entry);
  }
  const latest = shown.slice(-MAX_DISCLOSED);
  const cut = orphans(latest);
  return latest.filter((entry) => !cut.has(entry.seq));
};

/** Records among `entries` about a call that is not among them: what cutting a disclosure to size must drop too. */
const orphans = (entries: readonly Entry[]): Set<number> => {
  const calls = new Set(entries.filter((entry) => entry.kind === 'call').map((entry) => entry.seq));
  return new Set(entries.filter((entry) => 'call' in entry && typeof entry.call === 'number' && !calls.has(entry.call)).map((entry) => entry.seq));
};

/** `shown` with the seals right before or after any of its records, in journal order (`entryAt`: the record numbered so, if known). */
const withSeals = (entryAt: (seq: number) => Entry | undefined, shown: Entry[]): Entry[] => {
  const out: Entry[] = [];
  const seen = new Set<number>();
  const add = (entry: Entry | undefined) => {
    if (entry && !seen.has(entry.seq)) {
      seen.add(entry.seq);
      out.push(entry);
    }
  };
  for (const entry of shown) {
    const before = entryAt(entry.seq - 1);
    if (before?.kind === 'seal') add(before);
    add(entry);
    const after = entryAt(entry.seq + 1);
    if (after?.kind === 'seal') add(after);
  }
  return out;
};

/** What `node` discloses to `requester` about `token`, signed: only the records about the token are read (through the record index). */
export const disclose = async (
  journal: Journal,
  identity: Identity,
  token: Token,
  requester: Principal,
  at: number,
  maxBytes = MAX_DISCLOSED_BYTES,
  records?: DisclosureIndex,
): Promise<Disclosure> => {
  let entries: Entry[];
  let located: ReturnType<DisclosureIndex['locate']>;
  if (records) {
    const around = await records.around(token);
    const shown = shownOf(around, token, requester, await records.delegation(token), (named) => records.isDelegation(named));
    const seals = new Map((await records.seals(shown.flatMap((entry) => [entry.seq - 1, entry.seq + 1]))).map((seal) => [seal.seq, seal]));
    entries = withSeals((seq) => seals.get(seq), shown);
    located = records.locate(entries);
  } else {
    // Without an index, the whole journal is read (and let go).
    const all: Entry[] = [];
    for await (const entry of journal.read(0)) all.push(entry);
    entries = disclosable(all, token, requester);
  }
  const read = located ? latestFitting(await journal.recordsAt(located), maxBytes) : await journal.records(entries.map((entry) => entry.seq), maxBytes);
  const fitting = entries.slice(entries.length - read.length);
  const cut = orphans(fitting);
  const bytes = read.filter((_, i) => !cut.has(fitting[i]!.seq));
  const cids = bytes.map(recordCid);
  const unsigned = { node: identity.principal, token, requester, at, cids };
  return Object.freeze({ ...unsigned, records: bytes, signature: await identity.sign(statement(unsigned)) });
};

/** The latest of `records` that fit in `maxBytes` together (as Journal.records cuts them). */
const latestFitting = (records: Uint8Array[], maxBytes: number): Uint8Array[] => {
  let first = records.length;
  for (let total = 0; first > 0; first--) {
    total += records[first - 1]!.length;
    if (total > maxBytes) break;
  }
  return records.slice(first);
};

/**
 * Check a disclosure from `node` about `token` made for `requester`: the
 * entries that verify, and every record that does not, with the reason.
 */
export const verifyDisclosure = (d: Disclosure, expected: { node: Principal; token: Token; requester: Principal }): Verified => {
  const flagged: Flagged[] = [];
  const flagAll = (reason: string): Verified => ({ node: expected.node, entries: [], flagged: d.records.map((_, index) => ({ index, reason })) });
  if (d.node !== expected.node) return flagAll(`signed as ${d.node}, but the node is ${expected.node}`);
  if (d.token !== expected.token || d.requester !== expected.requester) return flagAll('made for another token or principal');
  if (d.records.length !== d.cids.length) return flagAll('the records and the CIDs the node signed do not match in number');
  if (!verify(d.node, statement(d), d.signature)) return flagAll("the node's signature does not verify");
  const read: Array<{ entry: Entry; prev: Uint8Array | null; sig?: Uint8Array; cid: Uint8Array } | undefined> = d.records.map((bytes, index) => {
    const cid = recordCid(bytes);
    if (!equals(cid, d.cids[index]!)) {
      flagged.push({ index, reason: 'its bytes do not hash to the CID the node signed' });
      return undefined;
    }
    try {
      return { ...readRecord(bytes), cid };
    } catch (error) {
      flagged.push({ index, reason: `not a journal record: ${(error as Error).message}` });
      return undefined;
    }
  });
  /** Records that passed so far, with their place in the disclosure. */
  const good: Array<{ entry: Entry; index: number }> = [];
  let before: { entry: Entry; cid: Uint8Array } | undefined;
  read.forEach((record, index) => {
    if (!record) return;
    const { entry, prev, sig } = record;
    if (before && entry.seq <= before.entry.seq) {
      flagged.push({ index, seq: entry.seq, reason: `out of order (after record ${before.entry.seq})` });
      return;
    }
    // Consecutive records must link; across a gap the withheld records stand between them.
    if (before && entry.seq === before.entry.seq + 1 && !(prev && equals(prev, before.cid))) {
      flagged.push({ index, seq: entry.seq, reason: `does not link to record ${before.entry.seq} before it` });
      return;
    }
    if ((entry.seq === 0) !== (prev === null)) {
      flagged.push({ index, seq: entry.seq, reason: 'its link to the record before it is missing or out of place' });
      return;
    }
    if (entry.kind === 'seal' && (entry.signer !== d.node || !sealVerifies(entry.signer, prev, sig))) {
      flagged.push({ index, seq: entry.seq, reason: "a seal that is not the node's signature over the record before it" });
      return;
    }
    if (entry.kind !== 'seal') good.push({ entry, index });
    before = record;
  });
  const concerned = new Set(entriesAround(good.map(({ entry }) => entry), expected.token).map((entry) => entry.seq));
  const goodSeqs = new Set(good.map(({ entry }) => entry.seq));
  const entries: Entry[] = [];
  for (const { entry, index } of good) {
    if (concerned.has(entry.seq)) {
      entries.push(entry);
      continue;
    }
    const call = 'call' in entry && typeof entry.call === 'number' ? entry.call : undefined;
    const reason = call !== undefined && !goodSeqs.has(call) ? `its call #${call} is not among the verified records` : `does not concern ${expected.token}`;
    flagged.push({ index, seq: entry.seq, reason });
  }
  flagged.sort((a, b) => a.index - b.index);
  return { node: expected.node, entries, flagged };
};

/** A disclosure as grid data (for a reply), and back, refusing anything malformed. */
export const disclosureValue = (d: Disclosure): GridValue => ({
  node: d.node,
  token: { '/': d.token },
  requester: d.requester,
  at: d.at,
  records: [...d.records],
  cids: [...d.cids],
  signature: d.signature,
});

export const disclosureFrom = (value: GridValue): Disclosure => {
  const v = (value ?? {}) as Record<string, GridValue>;
  const bytesList = (x: GridValue) => Array.isArray(x) && x.length <= MAX_DISCLOSED && x.every((item) => item instanceof Uint8Array);
  if (!bytesList(v.records!) || !bytesList(v.cids!) || !(v.signature instanceof Uint8Array) || typeof v.at !== 'number' || !isLink(v.token!)) {
    throw new DisclosureError('a disclosure is { node, token, requester, at, records, cids, signature }');
  }
  return Object.freeze({
    node: asPrincipal(v.node),
    token: asToken(v.token['/']),
    requester: asPrincipal(v.requester),
    at: v.at,
    records: v.records as Uint8Array[],
    cids: v.cids as Uint8Array[],
    signature: v.signature,
  });
};
