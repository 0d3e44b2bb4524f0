/**
 * A document's records: its genesis and its versions, dag-cbor blocks whose
 * CIDs name them. A document is named by its genesis; every version names
 * the document, its parents and the block of the value it leads to, so a
 * document is a hash-linked DAG that any replica can walk and check.
 *
 * Who signs what:
 * - the genesis is signed by the document's issuer: it fixes the reducer,
 *   the merge cascade, the initial value, and the sealed references of the
 *   four role closures (read, write, settle, admin), which is how any
 *   replica tells a write token from a read token without holding either;
 * - a change or a settlement is signed by its author, the node that applied
 *   it; `via` names the delegation its authority came through (none when
 *   the author is the issuer);
 * - a rules change (a new reducer and merge cascade) is signed by the node
 *   that enacted it through the admin role, and carries the consent that
 *   backs it: the proposal's members, quorum and signed votes, each vote
 *   signing a token that commits to the rules and the member list;
 * - a merge is signed by no one: it is what the named cascade step makes of
 *   its two parents from their lowest common ancestor, so every replica
 *   makes the same block (and converges on it) and any replica can check it
 *   by running the step again.
 *
 * Signatures cover the record without `sig`, behind a domain prefix, so no
 * other signed grid statement can pass for one.
 */
import { CID } from 'multiformats/cid';
import { asPrincipal, DAG_CBOR_CODEC, quote, type Principal, type Token } from '../interface/ids.js';
import { GridError } from '../interface/errors.js';
import { decode, encode } from '../wire/index.js';
import { encodeFlatMap } from '../wire/cbor.js';
import { blockCid } from '../store/hashing.js';
import { concatBytes, verify, type Identity } from '../identity/identity.js';
import { MIN_NONCE_BYTES } from '../closures/closure.js';
import { MAX_DEADLINE_MS, MAX_MEMBERS, quorumFromWire, quorumToWire, type Choice, type Governance } from './governance.js';

const DOC_DOMAIN = new TextEncoder().encode('promisegrid:doc:v1\n');

export const ROLES = ['read', 'write', 'settle', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** The merge steps the kernel runs itself, named in a genesis by a string instead of a token. */
export const NATIVE_STEPS = ['text'] as const;
export type NativeStep = (typeof NATIVE_STEPS)[number];
/** One step of a merge cascade: a closure's token, or a step the kernel runs itself. */
export type MergeStep = { readonly token: Token } | { readonly native: NativeStep };

/** Most steps one cascade may have; most parents one version may have. */
export const MAX_STEPS = 16;
const MAX_PARENTS = 16;

export class DocumentError extends GridError {}

export interface Genesis {
  readonly cid: CID;
  /** What the role closures' env names: random, so two documents never share role tokens. */
  readonly id: string;
  /** Role → sealed reference of the closure that holds it (delegation.ts `sealToken`). */
  readonly roles: Readonly<Record<Role, string>>;
  readonly reducer: Token;
  readonly merges: readonly MergeStep[];
  /** The initial value's block. */
  readonly init: CID;
  readonly issuer: Principal;
  readonly at: number;
  /** Present when the document changes only by proposal (docs/governance.ts). */
  readonly governance?: Governance;
}

/** What a document runs: its reducer and merge cascade (the genesis's, until a rules change replaces them). */
export interface Rules {
  readonly reducer: Token;
  readonly merges: readonly MergeStep[];
}
/** The consent a rules change carries: the proposal it was put to (members, weights, quorum, nonce, the member list's version) and the signed votes that carried it. */
export interface Consent {
  readonly nonce: Uint8Array;
  readonly members: readonly Principal[];
  readonly weights: readonly number[];
  readonly quorum: string | number;
  /** The version of the member document the members were read at (absent for an ungoverned document: its issuer alone). */
  readonly base?: CID;
  readonly votes: ReadonlyArray<readonly [Principal, Choice, Uint8Array]>;
}

interface VersionBase {
  readonly cid: CID;
  readonly doc: CID;
  readonly parents: readonly CID[];
  readonly value: CID;
}
/** A change applied through the reducer, a person's settlement of a conflict, or a carried rules change: signed by its author. */
export interface AuthoredVersion extends VersionBase {
  readonly by: 'change' | 'settle' | 'rules';
  /** The change's block (a change), or the conflict's token (a settlement). */
  readonly change?: CID;
  readonly conflict?: Token;
  /** A rules change: the reducer and cascade in force from it on, and the consent behind it. */
  readonly rules?: Rules;
  readonly consent?: Consent;
  readonly author: Principal;
  /** The delegation the author's authority came through; absent when the author issued the document. */
  readonly via?: Token;
  /** Who asked the author's node to make it, when that was someone else (a peer writing through a delegation): the author vouches for it. */
  readonly for?: Principal;
  readonly at: number;
}
/** What cascade step `step` (an index into the genesis's list) made of two heads, from `base`, their lowest common ancestor. */
export interface MergeVersion extends VersionBase {
  readonly by: 'merge';
  readonly step: number;
  readonly base: CID | null;
}
export type Version = AuthoredVersion | MergeVersion;

const signingBytes = (body: Record<string, unknown>) => concatBytes(DOC_DOMAIN, encode(body));

/** A `sig` entry's head: the key "sig", then a 64-byte string. */
const SIG_ENTRY = Uint8Array.from([0x63, 0x73, 0x69, 0x67, 0x58, 0x40]);
/**
 * Where `bytes` hold their `sig` entry with signature `sig`: the entry's
 * offset, or -1 unless `bytes` begin with a one-byte map header and the
 * entry's bytes occur exactly once (they occur at least once, being the
 * entry).
 */
const sigEntryAt = (bytes: Uint8Array, sig: Uint8Array): number => {
  const header = bytes[0]!;
  if (header <= 0xa0 || header > 0xb7 || sig.length !== 64) return -1;
  // A Buffer, not a Uint8Array: the `buffer` package a tab bundles searches only for a Buffer.
  const entry = Buffer.from(concatBytes(SIG_ENTRY, sig));
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = view.indexOf(entry);
  return at >= 1 && view.lastIndexOf(entry) === at ? at : -1;
};

/**
 * `signingBytes` of the record `bytes` hold, cut from them: `bytes` are in
 * core deterministic form (the strict decoder takes nothing else), so the
 * record without the `sig` entry at `at` encodes as the same map with that
 * entry's 70 bytes left out and one entry fewer in its header.
 */
const signedPartAt = (bytes: Uint8Array, at: number): Uint8Array => {
  const length = SIG_ENTRY.length + 64;
  const out = new Uint8Array(DOC_DOMAIN.length + bytes.length - length);
  out.set(DOC_DOMAIN);
  out[DOC_DOMAIN.length] = bytes[0]! - 1;
  out.set(bytes.subarray(1, at), DOC_DOMAIN.length + 1);
  out.set(bytes.subarray(at + length), DOC_DOMAIN.length + at);
  return out;
};

/** `signingBytes` of a record read from `bytes` with signature `sig`, cut from them rather than encoded again; undefined where `sigEntryAt` finds no entry (the caller encodes). */
const signedPartOf = (bytes: Uint8Array, sig: Uint8Array): Uint8Array | undefined => {
  const at = sigEntryAt(bytes, sig);
  return at < 0 ? undefined : signedPartAt(bytes, at);
};

/**
 * `body` signed by `signer`, encoded once: with a blank signature, whose
 * entry is cut out to make what is signed and then filled in with the
 * signature (the same length). Encoded twice where the blank entry cannot
 * be found alone.
 */
const signedRecord = async (body: Record<string, unknown>, signer: Identity): Promise<Uint8Array> => {
  const blank = new Uint8Array(64);
  // A version's fields are all flat (links, text, integers, a list of links): written without cborg's tokens.
  const bytes = encodeFlatMap({ ...body, sig: blank }) ?? encode({ ...body, sig: blank });
  const at = sigEntryAt(bytes, blank);
  if (at < 0) return encode({ ...body, sig: await signer.sign(signingBytes(body)) });
  bytes.set(await signer.sign(signedPartAt(bytes, at)), at + SIG_ENTRY.length);
  return bytes;
};
const dropUndefined = (record: Record<string, unknown>) => Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));

/** How a merge step is named: its token, or a shipped native step's name. */
export const stepName = (step: MergeStep) => ('token' in step ? step.token : step.native);

const stepToWire = (step: MergeStep) => ('token' in step ? CID.parse(step.token) : step.native);
const stepFromWire = (step: unknown, fail: (why: string) => Error): MergeStep => {
  if (typeof step === 'string' && (NATIVE_STEPS as readonly string[]).includes(step)) return { native: step as NativeStep };
  return { token: asLink(step, 'a merge step', fail).toString() as Token };
};
export const rulesToWire = (rules: Rules) => ({ reducer: CID.parse(rules.reducer), merges: rules.merges.map(stepToWire) });
const rulesFromWire = (value: unknown, fail: (why: string) => Error): Rules => {
  if (value === null || typeof value !== 'object') throw fail('rules is a record');
  const { reducer, merges, ...extra } = value as Record<string, unknown>;
  if (Object.keys(extra).length > 0) throw fail(`unknown rules field ${quote(Object.keys(extra)[0])}`);
  if (!Array.isArray(merges) || merges.length > MAX_STEPS) throw fail(`merges is a list of at most ${MAX_STEPS} steps`);
  return Object.freeze({ reducer: asLink(reducer, 'reducer', fail).toString() as Token, merges: Object.freeze(merges.map((step) => stepFromWire(step, fail))) });
};
const consentToWire = (consent: Consent) => ({
  nonce: consent.nonce,
  members: [...consent.members],
  weights: [...consent.weights],
  quorum: consent.quorum,
  ...(consent.base ? { base: consent.base } : {}),
  votes: consent.votes.map((vote) => [...vote]),
});
const consentFromWire = (value: unknown, fail: (why: string) => Error): Consent => {
  if (value === null || typeof value !== 'object') throw fail('consent is a record');
  const { nonce, members, weights, quorum, base, votes, ...extra } = value as Record<string, unknown>;
  if (Object.keys(extra).length > 0) throw fail(`unknown consent field ${quote(Object.keys(extra)[0])}`);
  if (!(nonce instanceof Uint8Array) || nonce.length < 16 || nonce.length > 64) throw fail('consent.nonce is 16 to 64 bytes');
  if (!Array.isArray(members) || members.length === 0 || members.length > MAX_MEMBERS) throw fail(`consent.members is a list of 1 to ${MAX_MEMBERS} members`);
  if (!Array.isArray(weights) || weights.length !== members.length || weights.some((w) => typeof w !== 'number' || !(w > 0) || !Number.isFinite(w))) throw fail('consent.weights is a positive weight per member');
  try {
    quorumFromWire(quorum);
  } catch (error) {
    throw fail((error as Error).message);
  }
  if (!Array.isArray(votes) || votes.length > members.length) throw fail('consent.votes is a list of at most one vote per member');
  const read = votes.map((vote): readonly [Principal, Choice, Uint8Array] => {
    if (!Array.isArray(vote) || vote.length !== 3 || (vote[1] !== 'yes' && vote[1] !== 'no') || !(vote[2] instanceof Uint8Array)) throw fail('a vote is [voter, yes | no, signature]');
    return Object.freeze([asSigner(vote[0], fail), vote[1] as Choice, vote[2]] as const);
  });
  return Object.freeze({
    nonce,
    members: Object.freeze(members.map((member) => asSigner(member, fail))),
    weights: Object.freeze([...(weights as number[])]),
    quorum: quorum as string | number,
    ...(base === undefined ? {} : { base: asLink(base, 'consent.base', fail) }),
    votes: Object.freeze(read),
  });
};
/**
 * The token of a proposal to change `doc`'s rules: it commits to the rules,
 * the members, their weights, the quorum and the member list's version, so
 * a vote (which signs the token) is a vote on all of them.
 */
export const rulesProposalToken = (doc: CID, rules: Rules, consent: Omit<Consent, 'votes'>): Token => {
  const { votes: _votes, ...commit } = consentToWire({ ...consent, votes: [] });
  return blockCid(encode({ proposal: doc, rules: rulesToWire(rules), ...commit }), DAG_CBOR_CODEC).toString() as Token;
};

/** Build and sign a genesis; returns its bytes and the record read back. */
export const makeGenesis = async (spec: Omit<Genesis, 'cid' | 'issuer'>, issuer: Identity): Promise<{ bytes: Uint8Array; genesis: Genesis }> => {
  const body = {
    type: 'doc',
    id: spec.id,
    roles: { ...spec.roles },
    reducer: CID.parse(spec.reducer),
    merges: spec.merges.map(stepToWire),
    init: spec.init,
    issuer: issuer.principal,
    at: spec.at,
    ...(spec.governance ? { governance: governanceToWire(spec.governance) } : {}),
  };
  const bytes = await signedRecord(body, issuer);
  return { bytes, genesis: readGenesis(blockCid(bytes, DAG_CBOR_CODEC), bytes) };
};

const bad = (what: string, cid: CID, why: string) => new DocumentError('ERR_BAD_DOCUMENT', `${what} ${cid} is not valid: ${why}`);
const asRecord = (what: string, cid: CID, bytes: Uint8Array): Record<string, unknown> => {
  let record: unknown;
  try {
    record = decode(bytes);
  } catch (error) {
    throw bad(what, cid, (error as Error).message);
  }
  if (record === null || typeof record !== 'object' || Array.isArray(record)) throw bad(what, cid, 'not a record');
  return record as Record<string, unknown>;
};
const asLink = (value: unknown, name: string, fail: (why: string) => Error): CID => {
  const cid = CID.asCID(value);
  if (!cid) throw fail(`${name} is not a link`);
  return cid;
};
const asTime = (value: unknown, fail: (why: string) => Error): number => {
  if (!Number.isSafeInteger(value) || (value as number) < 0) throw fail(`time ${quote(value)} is not a whole number of milliseconds`);
  return value as number;
};
const asSigner = (value: unknown, fail: (why: string) => Error): Principal => {
  try {
    return asPrincipal(value);
  } catch (error) {
    throw fail((error as Error).message);
  }
};

/** Decode and check a genesis: its shape and its issuer's signature. */
export const readGenesis = (cid: CID, bytes: Uint8Array): Genesis => {
  const fail = (why: string) => bad('document', cid, why);
  const { type, id, roles, reducer, merges, init, issuer, at, sig, governance, ...extra } = asRecord('document', cid, bytes);
  if (type !== 'doc') throw fail('not a document genesis');
  if (Object.keys(extra).length > 0) throw fail(`unknown field ${quote(Object.keys(extra)[0])}`);
  if (typeof id !== 'string' || id.length < MIN_NONCE_BYTES || id.length > 64) throw fail('bad id');
  if (roles === null || typeof roles !== 'object' || Object.keys(roles).sort().join() !== [...ROLES].sort().join()) throw fail(`roles are ${ROLES.join(', ')}`);
  for (const role of ROLES) if (typeof (roles as Record<string, unknown>)[role] !== 'string') throw fail(`role ${role} is not a sealed reference`);
  if (!Array.isArray(merges) || merges.length > MAX_STEPS) throw fail(`merges is a list of at most ${MAX_STEPS} steps`);
  const steps = merges.map((step) => stepFromWire(step, fail));
  const signer = asSigner(issuer, fail);
  if (!(sig instanceof Uint8Array)) throw fail('missing signature');
  const body = { type, id, roles, reducer, merges, init, issuer, at, ...(governance === undefined ? {} : { governance }) };
  if (!verify(signer, signingBytes(body), sig)) throw fail(`signature does not verify for issuer ${signer}`);
  const governed = governance === undefined ? undefined : governanceFromWire(governance, fail);
  return harden({
    cid,
    id,
    roles: { ...(roles as Record<Role, string>) },
    reducer: asLink(reducer, 'reducer', fail).toString() as Token,
    merges: steps,
    init: asLink(init, 'init', fail),
    issuer: signer,
    at: asTime(at, fail),
    ...(governed ? { governance: governed } : {}),
  });
};

const governanceToWire = (governance: Governance) => ({
  members: governance.members,
  quorum: quorumToWire(governance.quorum),
  weighted: governance.weighted,
  deadline: governance.deadlineMs,
});
const governanceFromWire = (value: unknown, fail: (why: string) => Error): Governance => {
  if (value === null || typeof value !== 'object') throw fail('governance is a record');
  const { members, quorum, weighted, deadline, ...extra } = value as Record<string, unknown>;
  if (Object.keys(extra).length > 0) throw fail(`unknown governance field ${quote(Object.keys(extra)[0])}`);
  if (typeof weighted !== 'boolean') throw fail('governance.weighted is true or false');
  if (!Number.isSafeInteger(deadline) || (deadline as number) <= 0 || (deadline as number) > MAX_DEADLINE_MS) throw fail(`governance.deadline is from 1 ms to ${MAX_DEADLINE_MS} ms`);
  try {
    return { members: members === 'self' ? 'self' : asLink(members, 'governance.members', fail), quorum: quorumFromWire(quorum), weighted, deadlineMs: deadline as number };
  } catch (error) {
    throw fail((error as Error).message);
  }
};

/** Parents in one order on every replica: a merge made anywhere of the same heads is the same block. */
export const sortCids = (cids: readonly CID[]): CID[] => [...cids].sort((a, b) => (a.toString() < b.toString() ? -1 : a.toString() > b.toString() ? 1 : 0));

/**
 * A version record, frozen, its fields always set in the same order: V8
 * gives every such object one shape. An object made by spreading another
 * and adding fields (`{ ...spec, cid }`) gets a shape of its own — a new
 * hidden class for every version kept.
 */
const authoredVersion = (cid: CID, fields: Omit<AuthoredVersion, 'cid' | 'parents' | 'author'>, parents: readonly CID[], author: Principal): AuthoredVersion => {
  const version = { cid, doc: fields.doc, parents, value: fields.value, by: fields.by, author, at: fields.at } as { -readonly [K in keyof AuthoredVersion]: AuthoredVersion[K] };
  if (fields.change !== undefined) version.change = fields.change;
  if (fields.conflict !== undefined) version.conflict = fields.conflict;
  if (fields.rules !== undefined) version.rules = fields.rules;
  if (fields.consent !== undefined) version.consent = fields.consent;
  if (fields.via !== undefined) version.via = fields.via;
  if (fields.for !== undefined) version.for = fields.for;
  return Object.freeze(version);
};

/** A signed change or settlement (not read back: the signature was just made). */
export const makeAuthoredVersion = async (spec: Omit<AuthoredVersion, 'cid' | 'author'>, author: Identity): Promise<{ bytes: Uint8Array; version: Version }> => {
  // The fields set, and no others (no `undefined`): the order does not matter, the encoding sorts them.
  const body: Record<string, unknown> = { type: 'version', doc: spec.doc, parents: sortCids(spec.parents), value: spec.value, by: spec.by, author: author.principal, at: spec.at };
  if (spec.change !== undefined) body.change = spec.change;
  if (spec.conflict !== undefined) body.conflict = CID.parse(spec.conflict);
  if (spec.rules !== undefined) body.rules = rulesToWire(spec.rules);
  if (spec.consent !== undefined) body.consent = consentToWire(spec.consent);
  if (spec.via !== undefined) body.via = CID.parse(spec.via);
  if (spec.for !== undefined) body.for = spec.for;
  const bytes = await signedRecord(body, author);
  const version = authoredVersion(blockCid(bytes, DAG_CBOR_CODEC), spec, body.parents as CID[], author.principal);
  return { bytes, version };
};

/** An unsigned merge: the same heads, step and value make the same block on every replica. */
export const makeMergeVersion = (spec: Omit<MergeVersion, 'cid' | 'by'>): { bytes: Uint8Array; version: Version } => {
  const body = { type: 'version', doc: spec.doc, parents: sortCids(spec.parents), value: spec.value, by: 'merge', step: spec.step, base: spec.base };
  const bytes = encode(body);
  return { bytes, version: readVersion(blockCid(bytes, DAG_CBOR_CODEC), bytes) };
};

/** Decode and check a version: its shape, and for a change or settlement its author's signature. Whether it follows from its parents is the docs part's to check. */
export const readVersion = (cid: CID, bytes: Uint8Array, decoded?: unknown): Version => {
  const { version, signed } = readVersionUnverified(cid, bytes, decoded);
  if (signed && !verify(signed.signer, signed.message, signed.signature)) throw signatureRefusal(signed);
  return version;
};

/** What a change's or settlement's author signed, for its version `cid`. */
export interface SignedVersion {
  readonly cid: CID;
  readonly signer: Principal;
  readonly message: Uint8Array;
  readonly signature: Uint8Array;
}

/** The error `readVersion` throws for a version whose signature does not verify. */
export const signatureRefusal = (signed: SignedVersion) => bad('version', signed.cid, `signature does not verify for author ${signed.signer}`);

/**
 * `readVersion` without its last step: the version's shape is checked, and
 * what its author signed is handed back (`signed`, absent for an unsigned
 * merge) for the caller to verify — the docs part verifies a bundle's
 * versions all at once, off the main thread, and takes none before its
 * signature verifies.
 */
export const readVersionUnverified = (cid: CID, bytes: Uint8Array, decoded?: unknown): { version: Version; signed?: SignedVersion } => {
  const fail = (why: string) => bad('version', cid, why);
  if (decoded !== undefined && (decoded === null || typeof decoded !== 'object' || Array.isArray(decoded))) throw fail('not a record');
  // `decoded`: the same bytes already decoded (by the strict decoder) by whoever holds them.
  const record = decoded === undefined ? asRecord('version', cid, bytes) : (decoded as Record<string, unknown>);
  const { type, doc, parents, value, by } = record;
  if (type !== 'version') throw fail('not a document version');
  if (!Array.isArray(parents) || parents.length > MAX_PARENTS) throw fail(`parents is a list of at most ${MAX_PARENTS} links`);
  const parentCids = parents.map((parent) => asLink(parent, 'a parent', fail));
  if (sortCids(parentCids).some((parent, i) => !parent.equals(parentCids[i]) || (i > 0 && parent.equals(parentCids[i - 1]!)))) throw fail('parents are not sorted and distinct');
  const common = { cid, doc: asLink(doc, 'doc', fail), parents: parentCids, value: asLink(value, 'value', fail) };
  if (by === 'merge') {
    const { step, base, ...extra } = record;
    if (Object.keys(extra).some((key) => !['type', 'doc', 'parents', 'value', 'by'].includes(key))) throw fail('a merge has only type, doc, parents, value, by, step and base');
    if (parentCids.length !== 2) throw fail('a merge has two parents');
    if (!Number.isSafeInteger(step) || (step as number) < 0 || (step as number) >= MAX_STEPS) throw fail('bad step');
    // A literal, not a spread of `common`: one shape for every merge (see authoredVersion).
    return { version: Object.freeze({ cid, doc: common.doc, parents: common.parents, value: common.value, by, step: step as number, base: base === null ? null : asLink(base, 'base', fail) }) };
  }
  if (by !== 'change' && by !== 'settle' && by !== 'rules') throw fail(`by is change, merge, settle or rules (got ${quote(by)})`);
  const { change, conflict, rules, consent, author, via, for: asker, at, sig, ...extra } = record;
  if (Object.keys(extra).some((key) => !['type', 'doc', 'parents', 'value', 'by'].includes(key))) throw fail('unknown field');
  const names = { change: [change, 'its change'], settle: [conflict, 'its conflict'], rules: [rules, 'its rules and consent'] } as const;
  if ([change, conflict, rules].some((field) => field !== undefined && field !== names[by][0]) || names[by][0] === undefined || (by === 'rules') !== (consent !== undefined)) {
    throw fail(`a ${by} names ${names[by][1]} and nothing else`);
  }
  if (parentCids.length === 0) throw fail('only the genesis has no parents');
  const signer = asSigner(author, fail);
  if (!(sig instanceof Uint8Array)) throw fail('missing signature');
  // The record is its fields (checked above) and `sig`: what the signature covers is the rest of it.
  const message = signedPartOf(bytes, sig) ?? signingBytes(dropUndefined({ type, doc, parents, value, by, change, conflict, rules, consent, author, via, for: asker, at }));
  // Frozen, not hardened: a version is the docs part's own record, and hardening walks each CID it holds.
  const version = authoredVersion(
    cid,
    {
      doc: common.doc,
      value: common.value,
      by,
      change: change === undefined ? undefined : asLink(change, 'change', fail),
      conflict: conflict === undefined ? undefined : (asLink(conflict, 'conflict', fail).toString() as Token),
      rules: rules === undefined ? undefined : rulesFromWire(rules, fail),
      consent: rules === undefined ? undefined : consentFromWire(consent, fail),
      via: via === undefined ? undefined : (asLink(via, 'via', fail).toString() as Token),
      for: asker === undefined ? undefined : asSigner(asker, fail),
      at: asTime(at, fail),
    },
    common.parents,
    signer,
  );
  return { version, signed: { cid, signer, message, signature: sig } };
};

/** The token a conflict between `heads` of `doc` is named by: the same on every replica that meets it. */
export const conflictToken = (doc: CID, heads: readonly CID[]): Token => blockCid(encode({ conflict: doc, heads: sortCids(heads) }), DAG_CBOR_CODEC).toString() as Token;

const CONSENT_KEY = Buffer.from('consent'); // a Buffer: the `buffer` package a tab bundles searches only for a Buffer
/**
 * The closures the rules changes among `bundle`'s blocks name (their
 * signatures checked): what a replica fetches before it checks versions
 * made under them. Only blocks holding the word `consent` are decoded.
 */
export const rulesClosuresIn = (bundle: { readonly blocks: ReadonlyArray<readonly [string, Uint8Array]> }): Token[] => {
  const tokens = new Set<Token>();
  for (const [key, bytes] of bundle.blocks) {
    if (Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(CONSENT_KEY) < 0) continue;
    try {
      const version = readVersion(CID.parse(key), bytes);
      if (version.by !== 'rules') continue;
      tokens.add(version.rules!.reducer);
      for (const step of version.rules!.merges) if ('token' in step) tokens.add(step.token);
    } catch {
      continue; // not a version: ingest refuses what is bad in it
    }
  }
  return [...tokens];
};
