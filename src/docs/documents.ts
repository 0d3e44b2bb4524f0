/**
 * Documents: shared state that changes only by applying a change through
 * its reducer, and merges when replicas meet (records.ts has the blocks,
 * checks.ts what a replica checks of the versions it receives).
 *
 * A document's role tokens are closures over one kernel-native module
 * (ROLE_MODULE_SOURCE): the call pipeline hands a call on one to `answer`
 * here instead of a vat, so delegation, screening, revocation, quotas and
 * the promise graph apply to them as to any token.
 *
 * What this part knows — which documents it holds, their heads, their
 * conflicts, proposals, the revocations its writers' delegations met, the
 * tokens it follows — comes from journal entries through `apply`, on
 * replay and live alike: `doc` (held), `doc-head` (heads after a version
 * landed), `doc-conflict` (a merge every cascade step refused),
 * `doc-settled`, `revoked-at`, `doc-token` (sync.ts), `doc-rules` (a rules
 * change landed), and `proposal`,
 * `vote`, `proposal-ended` (governance.ts). Versions, values and changes
 * are blocks in the store.
 */
import { CID } from 'multiformats/cid';
import { DAG_CBOR_CODEC, RAW_CODEC, asToken, quote, type ModuleId, type Principal, type Token } from '../interface/ids.js';
import { describeThrown } from '../interface/errors.js';
import { fulfilled, promised, revoked, type Outcome, type RevokeCode } from '../interface/outcome.js';
import { decodeValue, encodeValue, VALUE_LIMITS, type GridValue } from '../closures/values.js';
import type { Closure } from '../closures/closure.js';
import type { BlockStore } from '../store/types.js';
import { blockCid, cidText } from '../store/hashing.js';
import { concatBytes, verify, verifyMany, type Identity } from '../identity/identity.js';
import type { Entry, Journal } from '../journal/journal.js';
import type { ChainBlocks, RevocationNotice } from '../wire/shapes.js';
import { isDelegationRecord, sealToken, type Delegation } from '../delegation/delegation.js';
import { encode } from '../wire/index.js';
import { decodeKnowing, encodeFlat, linkKey, scan } from '../wire/cbor.js';
import { ancestors, lowestCommonAncestor, MAX_WALK, WalkTooLong } from './dag.js';
import { describeQuorum, makeProposals, quorumToWire, type Carried, type Governance, type ProposalsSnapshot } from './governance.js';
import { makeVersionChecks, memberList, type Replayed } from './checks.js';
import {
  conflictToken,
  DocumentError,
  makeAuthoredVersion,
  makeGenesis,
  makeMergeVersion,
  MAX_STEPS,
  readGenesis,
  readVersion,
  readVersionUnverified,
  signatureRefusal,
  stepName,
  type SignedVersion,
  ROLES,
  rulesProposalToken,
  sortCids,
  type Genesis,
  type Rules,
  type MergeStep,
  type Role,
  type Version,
} from './records.js';

/** The module every role closure runs: never run in a vat, its exports name the roles. */
export const ROLE_MODULE_SOURCE = `// A document's role tokens: the node that holds the document answers them, never a vat.
${ROLES.map((role) => `export const ${role} = (ctx) => ctx.revoke('a document token is answered by the node that holds the document');`).join('\n')}
`;
export const ROLE_MODULE_ID = blockCid(new TextEncoder().encode(ROLE_MODULE_SOURCE), RAW_CODEC).toString() as ModuleId;

/**
 * What each role may do; `value` is what a call with no arguments does.
 * `replica`, open to every role: the role delegated to the caller, to
 * follow the document with (a tab that opened an app by its URL).
 */
const READS = ['value', 'at', 'log', 'heads', 'conflicts', 'info', 'replica'];
const OPERATIONS: Readonly<Record<Role, readonly string[]>> = {
  read: READS,
  write: [...READS, 'apply', 'propose'],
  settle: [...READS, 'resolve'],
  admin: [...READS, 'apply', 'propose', 'resolve', 'rules'],
};
/** How long a proposal to change an ungoverned document's rules stays open for its issuer's vote. */
const RULES_DEADLINE_MS = 7 * 24 * 60 * 60 * 1000;

/** Most versions `log` lists at once; most blocks one bundle carries. */
const MAX_LOG = 1000;
export const MAX_BUNDLE_VERSIONS = 2000;
/** Most tips a bundle names (the haves a sync request carries). */
export const MAX_TIPS = 32;
/** Signatures a bundle's reader sends to the verifier thread at once, as it reads them. */
const VERIFY_BATCH = 250;
/** Versions a bundle's reader hands the reducer to replay at once, as it reads them. */
const REPLAY_PART = 500;
/** Past this many blocks, ingest readies the reducer's vat before it needs it. */
const WARM_BUNDLE_BLOCKS = 64;
/** Decoded values kept for reads (each document's current one, mostly). */
const VALUE_CACHE = 256;

export interface DocumentTokens {
  readonly doc: string;
  readonly read: Token;
  readonly write: Token;
  readonly settle: Token;
  readonly admin: Token;
}

/** A merge step as `create` takes it: a closure's token, a shipped merge's name (`json`, `union`) or a native one (`text`). */
export type StepSpec = string;

export interface Attempt {
  readonly step: string;
  readonly code: RevokeCode;
  readonly reason: string;
}

export interface ConflictView {
  readonly conflict: Token;
  readonly doc: string;
  readonly heads: readonly string[];
  readonly attempts: readonly Attempt[];
  readonly settled?: string;
  readonly at: number;
}

/** Blocks that carry versions from one replica to another: the genesis, versions (parents first), and what they name. */
export interface Bundle {
  readonly doc: string;
  readonly blocks: ReadonlyArray<readonly [string, Uint8Array]>;
  /** Whether the sender had more than fit. */
  readonly more: boolean;
  /**
   * When `more`: the versions this bundle ends at (those no other version in
   * it builds on), at most MAX_TIPS — what a replica that takes it will
   * hold, so it can ask for the next bundle (naming them as its haves)
   * while it still checks this one. A hint only: nothing is taken on it.
   */
  readonly tips?: readonly string[];
  /**
   * Signed revocations of delegations this document's writers went through,
   * each with the time its revoker signed it happened (when known): a
   * replica refuses what was written through them after then.
   */
  readonly revocations?: ReadonlyArray<{ readonly notice: RevocationNotice; readonly since?: RevokedSince }>;
}

interface DocState {
  readonly cid: CID;
  readonly id: string;
  readonly issuer: Principal;
  heads: CID[];
  /** The head reads answer: the only one, or while a conflict is open the one this replica had. */
  current: CID;
  /** The conflict writes wait for (journal `doc-conflict`, until its `doc-settled`). */
  open?: Token;
  /** Applies and merges are one at a time per document. */
  turn: Promise<unknown>;
  /** Whether a rules change of it has landed here (journal `doc-rules`): until one has, the genesis's rules hold everywhere, with no walk. */
  ruled?: true;
}

export interface DocumentsSnapshot {
  readonly docs: ReadonlyArray<{ doc: string; id: string; issuer: Principal; heads: readonly string[]; current: string; open?: Token; ruled?: true }>;
  /** Each role closure's sealed reference, role, document id and issuer. */
  readonly roles: ReadonlyArray<readonly [string, string, string, Principal]>;
  readonly conflicts: ReadonlyArray<{ token: Token; doc: string; heads: readonly string[]; attempts: readonly Attempt[]; at: number; settled?: string }>;
  readonly revokedSince: ReadonlyArray<readonly [Token, number, Principal, Uint8Array]>;
  readonly followed: ReadonlyArray<readonly [Token, string | null]>;
  readonly proposals: ProposalsSnapshot;
}

interface ConflictState {
  readonly doc: string;
  readonly heads: readonly CID[];
  readonly attempts: readonly Attempt[];
  readonly at: number;
  settled?: CID;
}

/** The call a document token answers: its journal record, deadline and caller, and the delegation this node's authority came through. */
interface DocCallInfo {
  readonly seq: number;
  readonly deadline: number;
  readonly caller: Principal;
  readonly via?: Token;
  /** The call's arguments as the pipeline holds them (canonical: strictly decoded), if it passes them: an apply's change is cut from them rather than encoded again. */
  readonly argsBytes?: Uint8Array;
}

/**
 * Run a reducer or merge step as the node (calls.ts `runAsNode`), nested
 * under the call it serves if any; `fold` runs a reducer over a list of
 * changes in one hop and answers `{ cids, refusal? }`.
 */
export type DocRun = (
  token: Token,
  args: readonly GridValue[],
  options?: { fold?: boolean; parent?: { seq: number; deadline: number }; argsBytes?: Uint8Array },
) => Promise<Outcome & { readonly valueBytes?: Uint8Array }>;

export interface DocumentPowers {
  readonly store: BlockStore;
  readonly identity: Identity;
  readonly journal: Journal;
  readonly clock: () => number;
  readonly randomBytes: (length: number) => Uint8Array;
  readonly publish: (source: string) => Promise<ModuleId>;
  readonly issue: (spec: { code: string; export: string; env?: unknown; replicable?: boolean }) => Promise<Token>;
  readonly run: DocRun;
  /** The delegation chain `token` names, outermost first, down to the link that wraps a closure (delegation-table.ts); empty if `token` is no delegation. */
  readonly chainOf: (token: Token) => Promise<readonly Delegation[]>;
  /** `token` (a role closure issued here) delegated to `to`: the new token and the blocks of its chain. */
  readonly delegate: (token: Token, to: Principal) => Promise<{ token: Token; chain: ChainBlocks }>;
  readonly revokedAt: (token: Token) => number | undefined;
  /** The signed notice of a revocation made or heard here, and taking in one from a replica (revocation-table.ts). */
  readonly revocationNotice: (token: Token) => Promise<RevocationNotice | undefined>;
  readonly hearRevocation: (notice: RevocationNotice, from: Principal) => Promise<boolean>;
  readonly setTimer: (ms: number, callback: () => void) => () => void;
  /** Run `callback` once what is queued now has run (setImmediate): after a reducer's call has gone to its vat, while the main thread waits. */
  readonly soon?: (callback: () => void) => void;
  /** A member's vote weight under a weighted quorum (its reputation here). */
  readonly weightOf: (principal: Principal) => number;
  /** Merge modules shipped with the node (`json`, `union`): name → source, each exporting `merge`. */
  readonly shippedMerges: Readonly<Record<string, string>>;
}

export type Documents = ReturnType<typeof makeDocuments>;

const text = cidText;

/** `bytes` if they pass the strict decoder's value limits (as encodeValue's output must), else undefined. */
const withinValueLimits = (bytes: Uint8Array): Uint8Array | undefined => {
  try {
    scan(bytes, VALUE_LIMITS);
    return bytes;
  } catch {
    return undefined;
  }
};
/** Canonical CBOR around encoded items: an array of two (a reducer's state and change), and a map `{ value, version }` (an apply's answer: its keys in canonical order). */
const ARGS_OF_TWO = Uint8Array.of(0x82);
const ANSWER_VALUE_KEY = concatBytes(Uint8Array.of(0xa2), encode('value'));
const ANSWER_VERSION_KEY = encode('version');
/** How the canonical bytes of the arguments `['apply', change]` begin: the change's own bytes follow, to the end. */
const APPLY_ARGS_HEAD = concatBytes(ARGS_OF_TWO, encode('apply'));
/** The canonical bytes of an ASCII string (a CID's text): the one item of a flat array, without the array's header. */
const asciiText = (ascii: string): Uint8Array => encodeFlat([ascii])?.subarray(1) ?? encode(ascii);
const applyChangeBytes = (argsBytes: Uint8Array | undefined): Uint8Array | undefined =>
  argsBytes && argsBytes.length > APPLY_ARGS_HEAD.length && APPLY_ARGS_HEAD.every((byte, i) => argsBytes[i] === byte) ? argsBytes.subarray(APPLY_ARGS_HEAD.length) : undefined;

const utf8 = (text: string) => new TextEncoder().encode(text);
/**
 * Bytes any version record holds (the entry `type: "version"`, a 4- then a
 * 7-byte text string, adjacent in canonical CBOR) and any delegation record
 * (its key `delegator`, a 9-byte text string).
 */
const RECORD_MARKS = [Buffer.from([0x64, ...utf8('type'), 0x67, ...utf8('version')]), Buffer.from([0x69, ...utf8('delegator')])];

/** What replaying a received change made: its value's CID (as text), or why the reducer refused it. */

const REVOKED_AT_DOMAIN = new TextEncoder().encode('promisegrid:revoked-at:v1\n');
/** When a revocation happened, signed by its revoker: what a replica dates it by. */
export interface RevokedSince {
  readonly at: number;
  readonly signature: Uint8Array;
}
const revokedAtStatement = (token: Token, at: number) => concatBytes(REVOKED_AT_DOMAIN, encode({ token: CID.parse(token), at }));

/** The rules in force at a version, and the version that set them (a rules change, or the genesis). */
interface RulesSource {
  readonly source: CID;
  readonly rules: Rules;
  readonly at: number;
}

export const makeDocuments = (powers: DocumentPowers) => {
  const { store, identity, journal, clock } = powers;
  const docs = new Map<string, DocState>();
  /** Role closures' env names a document by its id. */
  const byId = new Map<string, DocState>();
  const conflicts = new Map<Token, ConflictState>();
  /** Tokens this node presents to sync documents (journal `doc-token`): token → document, undefined until a peer named it. */
  const followed = new Map<Token, string | undefined>();
  /** Revocations of writers' delegations dated by their revokers (journal `revoked-at`). */
  const revokedSince = new Map<Token, { since: number; by: Principal; signature: Uint8Array }>();
  /** Role closures as a replica knows them, by sealed reference: a delegated document token is screened here against them. */
  const sealedRoles = new Map<string, Closure & { sealed: string }>();
  const geneses = new Map<string, Genesis>();
  const versions = new Map<string, Version>();
  /** Values by block, decoded, with their canonical bytes (what a reducer is sent). */
  const values = new Map<string, { readonly value: GridValue; readonly bytes: Uint8Array }>();

  const putBlock = (bytes: Uint8Array) => store.put(bytes, { codec: DAG_CBOR_CODEC });

  const genesisOf = async (state: DocState): Promise<Genesis> => {
    let genesis = geneses.get(text(state.cid));
    if (!genesis) geneses.set(text(state.cid), (genesis = readGenesis(state.cid, await store.get(state.cid))));
    return genesis;
  };

  const parentsOf = (cid: CID): readonly CID[] => versions.get(text(cid))?.parents ?? [];

  /** Versions whose whole ancestry is in memory: where a walk that reads history stops (a version read alone for a value is not). */
  const complete = new Set<string>();
  /** Read every version from `heads` down to the genesis into memory: walks are synchronous. */
  const loadHistory = async (heads: readonly CID[]) => {
    const queue = [...heads];
    const walked = new Set<string>();
    for (let next = queue.pop(); next; next = queue.pop()) {
      const key = text(next);
      if (complete.has(key) || walked.has(key) || geneses.has(key) || docs.has(key)) continue;
      let version = versions.get(key);
      if (!version) versions.set(key, (version = readVersion(next, await store.get(next))));
      walked.add(key);
      queue.push(...version.parents);
    }
    for (const key of walked) complete.add(key);
  };

  /**
   * The rules in force at each version, by CID: a function of the version's
   * ancestry (its CID commits to it), so the same on every replica, and
   * kept as a cache. A change or settlement runs under its parent's rules;
   * a rules change sets them; where two branches meet, the later rules win:
   * those of the rules change that descends from the other, or, between two
   * made apart, the one made later (then the greater CID).
   */
  const rulesFrom = new Map<string, RulesSource>();
  const laterRules = (a: RulesSource, b: RulesSource, parentsIn: (cid: CID) => readonly CID[]): RulesSource => {
    if (a.source.equals(b.source)) return a;
    if (ancestors(b.source, parentsIn).has(text(a.source))) return b;
    if (ancestors(a.source, parentsIn).has(text(b.source))) return a;
    return a.at !== b.at ? (a.at > b.at ? a : b) : text(a.source) > text(b.source) ? a : b;
  };
  /** The rules at `cid`, a version of `genesis`'s document found by `lookup` (held versions, and those being taken in). */
  const rulesIn = (genesis: Genesis, cid: CID, lookup: (key: string) => Version | undefined = (key) => versions.get(key)): RulesSource => {
    const parentsIn = (of: CID) => lookup(text(of))?.parents ?? [];
    const stack = [cid];
    while (stack.length > 0) {
      const top = stack.at(-1)!;
      const key = text(top);
      if (rulesFrom.has(key)) {
        stack.pop();
        continue;
      }
      if (top.equals(genesis.cid)) {
        rulesFrom.set(key, { source: genesis.cid, rules: { reducer: genesis.reducer, merges: genesis.merges }, at: genesis.at });
        continue;
      }
      const version = lookup(key);
      if (!version) throw new DocumentError('ERR_NO_VERSION', `${key} is not a version of document ${genesis.cid} held here`);
      if (version.by === 'rules') {
        rulesFrom.set(key, { source: version.cid, rules: version.rules!, at: version.at });
        continue;
      }
      const pending = version.parents.filter((parent) => !rulesFrom.has(text(parent)));
      if (pending.length > 0) {
        if (stack.length > MAX_WALK) throw new DocumentError('ERR_TOO_DEEP', `a document's history is walked at most ${MAX_WALK} versions deep`);
        stack.push(...pending);
        continue;
      }
      rulesFrom.set(key, version.parents.map((parent) => rulesFrom.get(text(parent))!).reduce((a, b) => laterRules(a, b, parentsIn)));
    }
    return rulesFrom.get(text(cid))!;
  };
  /** The rules at a held version of `state`'s document (its history read first). */
  const rulesAt = async (state: DocState, cid: CID): Promise<Rules> => {
    const genesis = await genesisOf(state);
    if (!state.ruled) return { reducer: genesis.reducer, merges: genesis.merges };
    await loadHistory([cid]);
    return rulesIn(genesis, cid).rules;
  };

  /** A version of `state`'s document, read from the store the first time. */
  const versionOf = async (state: DocState, cid: CID): Promise<Version | undefined> => {
    let version = versions.get(text(cid));
    if (!version && (await store.has(cid))) {
      const read = readVersion(cid, await store.get(cid));
      if (read.doc.equals(state.cid)) versions.set(text(cid), (version = read));
    }
    return version;
  };

  /** The value at version `cid` of `state`'s document, and its block's bytes (strictly decoded, so canonical). */
  const keptAt = async (state: DocState, cid: CID) => {
    const blockOf = text(cid) === text(state.cid) ? (await genesisOf(state)).init : (await versionOf(state, cid).catch(() => undefined))?.value;
    if (!blockOf) throw new DocumentError('ERR_NO_VERSION', `${cid} is not a version of document ${state.cid}`);
    const key = text(blockOf);
    const kept = values.get(key);
    if (kept) return kept;
    const bytes = await store.get(blockOf);
    return remember(key, decodeValue(bytes), bytes);
  };
  const valueAt = async (state: DocState, cid: CID): Promise<GridValue> => (await keptAt(state, cid)).value;

  const remember = (key: string, value: GridValue, bytes: Uint8Array) => {
    // The oldest quarter goes at once: a Map keeps the entries deleted at its front until it is rebuilt,
    // and finding the first live one again after every delete walks past them all.
    if (values.size >= VALUE_CACHE) {
      let evict = VALUE_CACHE / 4;
      for (const old of values.keys()) if ((values.delete(old), --evict === 0)) break;
    }
    const kept = { value, bytes };
    values.set(key, kept);
    return kept;
  };

  const storeValue = (value: GridValue): Promise<CID> => putBlock(encodeValue(value));

  /** Serialize work on one document: a change, a merge, an ingest. */
  const inTurn = <T>(state: DocState, work: () => Promise<T>): Promise<T> => {
    const run = state.turn.then(work, work);
    state.turn = run.catch(() => {});
    return run;
  };

  const landed = (state: DocState, heads: readonly CID[], current: CID) =>
    journal.append({ kind: 'doc-head', doc: text(state.cid), heads: sortCids(heads).map(text), current: text(current) });

  /** Heads after `version` lands: its parents are no longer heads. */
  const headsWith = (heads: readonly CID[], version: Version) => [...heads.filter((head) => !version.parents.some((p) => p.equals(head))), version.cid];

  const stepResult = async (step: MergeStep, base: GridValue, ours: GridValue, theirs: GridValue): Promise<Outcome> => {
    if ('token' in step) return powers.run(step.token, [base, ours, theirs]);
    try {
      if (typeof base !== 'string' || typeof ours !== 'string' || typeof theirs !== 'string') return revoked('refused', 'text merge: the values are not all strings');
      // Loaded on first use: Automerge's WebAssembly costs every process ~0.2 s of CPU to compile.
      const { mergeText } = await import('./text-merge.js');
      return fulfilled(mergeText(base, ours, theirs));
    } catch (error) {
      return revoked('refused', `text merge: ${describeThrown(error)}`);
    }
  };

  /** Run the cascade on two heads: a merge version, or every step's refusal. */
  const mergeTwo = async (state: DocState, a: CID, b: CID): Promise<{ version: Version; bytes: Uint8Array } | { attempts: Attempt[] }> => {
    const genesis = await genesisOf(state);
    const [ours, theirs] = sortCids([a, b]) as [CID, CID];
    const base = lowestCommonAncestor(ours, theirs, parentsOf) ?? state.cid;
    const [baseValue, oursValue, theirsValue] = await Promise.all([valueAt(state, base), valueAt(state, ours), valueAt(state, theirs)]);
    const attempts: Attempt[] = [];
    // The cascade of the later rules of the two: what the merge of them runs under.
    const { merges } = laterRules(rulesIn(genesis, ours), rulesIn(genesis, theirs), parentsOf).rules;
    for (const [index, step] of merges.entries()) {
      const outcome = await stepResult(step, baseValue, oursValue, theirsValue);
      if (outcome.status === 'fulfilled') {
        try {
          const value = await storeValue(outcome.value);
          return makeMergeVersion({ doc: state.cid, parents: [ours, theirs], value, step: index, base });
        } catch (error) {
          attempts.push({ step: stepName(step), code: 'malformed', reason: `merged value refused: ${describeThrown(error)}` });
          continue;
        }
      }
      attempts.push({ step: stepName(step), code: outcome.status === 'revoked' ? outcome.code : 'malformed', reason: outcome.status === 'revoked' ? outcome.reason : 'a merge answered with a further promise' });
    }
    return { attempts };
  };

  /** Merge heads two at a time, in CID order, until one is left or the cascade cannot go on (a conflict). */
  const mergeHeads = async (state: DocState) => {
    // The lowest common ancestor is found by a synchronous walk: every version it may meet is read first.
    await loadHistory(state.heads);
    while (state.heads.length > 1) {
      const [a, b] = sortCids(state.heads) as [CID, CID];
      const conflict = conflictToken(state.cid, [a, b]);
      if (conflicts.has(conflict)) return;
      const merged = await mergeTwo(state, a, b);
      if ('attempts' in merged) {
        journal.append({ kind: 'doc-conflict', doc: text(state.cid), conflict, heads: [a, b].map(text), attempts: merged.attempts });
        return;
      }
      await putBlock(merged.bytes);
      versions.set(text(merged.version.cid), merged.version);
      const current = state.current.equals(a) || state.current.equals(b) ? merged.version.cid : state.current;
      landed(state, headsWith(state.heads, merged.version), current);
    }
  };

  const { replayChains, refusalOf } = makeVersionChecks<DocState>({
    store,
    run: powers.run,
    chainOf: powers.chainOf,
    revokedSince: (token) => revokedSince.get(token)?.since ?? powers.revokedAt(token),
    versions,
    held: (doc) => docs.get(doc),
    parentsOf,
    rulesIn,
    ruled: (doc) => docs.get(text(doc))?.ruled === true,
    valueAt,
    stepResult,
  });

  const view = (token: Token, conflict: ConflictState): ConflictView =>
    harden({ conflict: token, doc: conflict.doc, heads: conflict.heads.map(text), attempts: conflict.attempts, at: conflict.at, ...(conflict.settled ? { settled: text(conflict.settled) } : {}) });
  /** Conflicts this node knows, open ones (or all, with `all`), of one document or every one. */
  const conflictViews = (options: { doc?: string; all?: boolean }): ConflictView[] =>
    [...conflicts].filter(([, c]) => (options.all || !c.settled) && (options.doc === undefined || c.doc === options.doc)).map(([token, c]) => view(token, c));

  const versionView = (version: Version) =>
    harden({
      version: text(version.cid),
      parents: version.parents.map(text),
      by: version.by,
      ...(version.by === 'merge'
        ? { step: version.step, base: version.base && text(version.base) }
        : { author: version.author, at: version.at, ...(version.via ? { via: version.via } : {}), ...(version.for ? { for: version.for } : {}), ...(version.conflict ? { conflict: version.conflict } : {}) }),
    });

  /** Versions from the heads down, newest first (a breadth-first walk), at most `limit`: only those are read. */
  const log = async (state: DocState, limit: number) => {
    const out: GridValue[] = [];
    const seen = new Set<string>();
    const queue = [...state.heads];
    while (queue.length > 0 && out.length < limit) {
      const cid = queue.shift()!;
      if (seen.has(text(cid))) continue;
      seen.add(text(cid));
      // The genesis ends every walk: it is the document, not a version.
      const version = cid.equals(state.cid) ? undefined : await versionOf(state, cid);
      if (!version) continue;
      const change = version.by === 'change' && version.change ? decodeValue(await store.get(version.change)) : undefined;
      const rules: Record<string, GridValue> = version.by === 'rules' ? { rules: rulesToChange(version.rules!) } : {};
      out.push({ ...versionView(version), ...(change === undefined ? {} : { change }), ...rules });
      queue.push(...version.parents);
    }
    return out;
  };

  /** Apply `change` on top of the current head; `caller` is the call it serves (none for a carried proposal). */
  /**
   * Apply `change` on top of the current head; `caller` is the call it
   * serves (none for a carried proposal). A change taken comes with its
   * answer's canonical bytes (`valueBytes`), made from the value's.
   */
  const applyChange = async (
    state: DocState,
    change: GridValue,
    caller: { seq?: number; deadline?: number; via?: Token; caller?: Principal; argsBytes?: Uint8Array },
  ): Promise<Outcome & { readonly valueBytes?: Uint8Array }> => {
    if (state.open) return revoked('conflict', `document ${state.cid} has an open conflict ${state.open}: settle it first (grid doc resolve)`);
    const genesis = await genesisOf(state);
    if (genesis.issuer !== identity.principal && caller.via === undefined) return revoked('denied', 'this node holds the document through no delegation and did not issue it');
    const parent = state.current;
    const nested = caller.seq === undefined || caller.deadline === undefined ? undefined : { seq: caller.seq, deadline: caller.deadline };
    const reducer = (await rulesAt(state, parent)).reducer;
    const current = await keptAt(state, parent);
    // Stored only if the change is taken. Cut from the call's arguments when they are `['apply', change]` (within the value limits, as encodeValue's would be).
    const cut = applyChangeBytes(caller.argsBytes);
    const changeBytes = (cut && withinValueLimits(cut)) ?? encodeValue(change);
    // The reducer's arguments from the value's block as it is (no encoding of the state again); as
    // encodeValue would, only within the value limits (past them, runAsNode encodes and refuses).
    const argsBytes = withinValueLimits(concatBytes(ARGS_OF_TWO, current.bytes, changeBytes));
    const running = powers.run(reducer, [current.value, change], { parent: nested, argsBytes });
    // While the reducer runs, what is journaled so far (this call's own record) is written: the answer then waits for the head's alone.
    powers.soon?.(() => void journal.written().catch(() => {}));
    const outcome = await running;
    if (outcome.status !== 'fulfilled') {
      return outcome.status === 'revoked' ? revoked(outcome.code, `the reducer refused the change: ${outcome.reason}`) : revoked('malformed', 'the reducer answered with a further promise');
    }
    // The vat's bytes (strictly decoded, so canonical) are the value's block, if they are within the value limits as encodeValue's would be.
    const valueBytes = (outcome.valueBytes && withinValueLimits(outcome.valueBytes)) ?? encodeValue(outcome.value);
    const [value, changeCid] = await Promise.all([putBlock(valueBytes), putBlock(changeBytes)]);
    // The next change starts from this value: keep it decoded rather than read it back.
    remember(text(value), outcome.value, valueBytes);
    const asker = caller.caller !== undefined && caller.caller !== identity.principal ? { for: caller.caller } : {};
    const { bytes, version } = await makeAuthoredVersion({ doc: state.cid, parents: [parent], value, by: 'change', change: changeCid, at: clock(), ...(caller.via ? { via: caller.via } : {}), ...asker }, identity);
    // Filed under the CID just made (its text made once, on it), not under another one made by hashing the bytes again.
    await store.putVerified(version.cid, bytes);
    versions.set(text(version.cid), version);
    landed(state, headsWith(state.heads, version), version.cid);
    // An acknowledged change survives a kill -9: its head is in the file before the answer goes.
    await journal.written();
    const answer = fulfilled({ version: text(version.cid), value: outcome.value });
    const answerBytes = withinValueLimits(concatBytes(ANSWER_VALUE_KEY, valueBytes, ANSWER_VERSION_KEY, asciiText(text(version.cid))));
    return answerBytes ? Object.freeze({ ...answer, valueBytes: answerBytes }) : answer;
  };

  const resolve = async (state: DocState, token: Token, choice: GridValue, via: Token | undefined): Promise<Outcome> => {
    const conflict = conflicts.get(token);
    if (!conflict || conflict.doc !== text(state.cid)) return revoked('invalid', `${quote(token)} is not a conflict of document ${state.cid}`);
    if (conflict.settled) return revoked('invalid', `conflict ${token} was settled already, by version ${conflict.settled}`);
    if (choice === null || typeof choice !== 'object' || Array.isArray(choice)) return revoked('invalid', 'settle with { pick: HEAD } or { value: VALUE }');
    const { pick, value } = choice as Record<string, GridValue>;
    let valueCid: CID;
    if (pick !== undefined) {
      const head = conflict.heads.find((h) => text(h) === pick);
      if (!head) return revoked('invalid', `${quote(pick)} is not one of the conflict's heads (${conflict.heads.map(text).join(', ')})`);
      valueCid = (await versionOf(state, head))!.value;
    } else if (value !== undefined) {
      valueCid = await storeValue(value);
    } else return revoked('invalid', 'settle with { pick: HEAD } or { value: VALUE }');
    const { bytes, version } = await makeAuthoredVersion({ doc: state.cid, parents: conflict.heads, value: valueCid, by: 'settle', conflict: token, at: clock(), ...(via ? { via } : {}) }, identity);
    await putBlock(bytes);
    versions.set(text(version.cid), version);
    landed(state, headsWith(state.heads, version), version.cid);
    journal.append({ kind: 'doc-settled', conflict: token, version: text(version.cid) });
    await mergeHeads(state);
    await journal.written();
    return fulfilled({ version: text(version.cid), value: await valueAt(state, version.cid) });
  };

  /** Land a carried rules change on top of the current head: the value stays, the rules in force change from it on. */
  const applyRules = async (state: DocState, rules: Rules, via: Token | undefined, carried: Carried): Promise<Outcome> => {
    if (state.open) return revoked('conflict', `document ${state.cid} has an open conflict ${state.open}: settle it first (grid doc resolve)`);
    const genesis = await genesisOf(state);
    if (genesis.issuer !== identity.principal && via === undefined) return revoked('denied', 'this node holds the document through no delegation and did not issue it');
    const parent = state.current;
    const value = parent.equals(state.cid) ? genesis.init : (await versionOf(state, parent))!.value;
    const { nonce, members, weights, quorum, votes } = carried;
    const consent = { nonce, members, weights, quorum, votes, ...(carried.base ? { base: CID.parse(carried.base) } : {}) };
    const { bytes, version } = await makeAuthoredVersion({ doc: state.cid, parents: [parent], value, by: 'rules', rules, consent, at: clock(), ...(via ? { via } : {}) }, identity);
    await putBlock(bytes);
    versions.set(text(version.cid), version);
    landed(state, headsWith(state.heads, version), version.cid);
    journal.append({ kind: 'doc-rules', doc: text(state.cid), version: text(version.cid) });
    await journal.written();
    return fulfilled({ version: text(version.cid), value: await valueAt(state, parent) });
  };

  /** Merge steps as `create` and a rules change take them: shipped merges are published and issued here (replicable). */
  const stepsOf = async (specs: readonly StepSpec[]): Promise<MergeStep[]> => {
    const merges: MergeStep[] = [];
    for (const step of specs) {
      if (step === 'text') merges.push({ native: 'text' });
      else if (Object.hasOwn(powers.shippedMerges, step)) {
        const code = await powers.publish(powers.shippedMerges[step]!);
        merges.push({ token: await powers.issue({ code, export: 'merge', replicable: true }) });
      } else merges.push({ token: asToken(step) });
    }
    return merges;
  };

  /** Who votes on `state`'s proposals: the `members` list (or the whole value, if a list) of its member document, now. */
  const membersOf = async (state: DocState, governance: Governance): Promise<Principal[]> => {
    const source = governance.members === 'self' ? state : docs.get(text(governance.members));
    if (!source) throw new DocumentError('ERR_NO_DOCUMENT', `the member document ${text(governance.members as CID)} is not held here`);
    return memberList(await valueAt(source, source.current));
  };

  /** The revoker's signed date of a revocation: this node's own (signed now), or one it was given. */
  const sinceOf = async (token: Token, notice: RevocationNotice): Promise<{ since?: RevokedSince }> => {
    const given = revokedSince.get(token);
    if (given) return { since: { at: given.since, signature: given.signature } };
    const at = powers.revokedAt(token);
    if (notice.by !== identity.principal || at === undefined) return {};
    return { since: { at, signature: await identity.sign(revokedAtStatement(token, at)) } };
  };

  const proposals = makeProposals({
    journal,
    identity,
    clock,
    setTimer: powers.setTimer,
    randomBytes: powers.randomBytes,
    enact: (doc, change, via, admin) => {
      const state = docs.get(doc);
      if (!state) return Promise.resolve(revoked('unknown-token', `this node no longer holds document ${doc}`));
      if (admin) return inTurn(state, () => applyRules(state, rulesOfChange(change), via, admin));
      return inTurn(state, () => applyChange(state, change, via ? { via } : {}));
    },
  });

  const propose = async (state: DocState, change: GridValue, call: DocCallInfo): Promise<Outcome> => {
    const governance = (await genesisOf(state)).governance;
    if (!governance) return revoked('denied', `document ${state.cid} is not governed: apply changes to it directly`);
    const members = await membersOf(state, governance);
    const weights = members.map((member) => (governance.weighted ? powers.weightOf(member) : 1));
    return proposals.propose({ doc: text(state.cid), change, proposer: call.caller, members, weights, governance, ...(call.via ? { via: call.via } : {}) });
  };

  /** A rules change as a proposal journals it (its `change`): the reducer's token and the steps' names. */
  const rulesToChange = (rules: Rules): GridValue => ({ reducer: rules.reducer, merges: rules.merges.map(stepName) });
  const rulesOfChange = (change: GridValue): Rules => {
    const { reducer, merges } = change as { reducer: string; merges: string[] };
    return { reducer: asToken(reducer), merges: merges.map((step) => (step === 'text' ? { native: 'text' } : { token: asToken(step) })) };
  };

  /**
   * Put a new reducer and/or merge cascade (`{ reducer?, merges? }`; what is
   * left out stays) to the document's members — an ungoverned document's
   * issuer alone — as a proposal; carried, it lands as a rules version.
   */
  const proposeRules = async (state: DocState, spec: GridValue, call: DocCallInfo): Promise<Outcome> => {
    if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) return revoked('invalid', `a rules change is { reducer?: TOKEN, merges?: [STEP…] } (got ${quote(spec)})`);
    const { reducer, merges, ...extra } = spec as Record<string, GridValue>;
    if (Object.keys(extra).length > 0) return revoked('invalid', `a rules change names reducer and merges only (got ${quote(Object.keys(extra)[0])})`);
    if (reducer === undefined && merges === undefined) return revoked('invalid', 'a rules change names a new reducer, merges, or both');
    if (merges !== undefined && (!Array.isArray(merges) || merges.length > MAX_STEPS || merges.some((step) => typeof step !== 'string'))) return revoked('invalid', `merges is a list of at most ${MAX_STEPS} steps (tokens, or json, union, text)`);
    const genesis = await genesisOf(state);
    const now = await rulesAt(state, state.current);
    const rules: Rules = { reducer: reducer === undefined ? now.reducer : asToken(reducer), merges: merges === undefined ? now.merges : await stepsOf(merges as string[]) };
    const { governance } = genesis;
    let members: Principal[] = [genesis.issuer];
    let base: CID | undefined;
    if (governance) {
      const source = governance.members === 'self' ? state : docs.get(text(governance.members));
      if (!source) throw new DocumentError('ERR_NO_DOCUMENT', `the member document ${text(governance.members as CID)} is not held here`);
      base = source.current;
      members = memberList(await valueAt(source, base));
    }
    const weights = members.map((member) => (governance?.weighted ? powers.weightOf(member) : 1));
    const policy = governance ?? { quorum: { k: 1 }, weighted: false, deadlineMs: RULES_DEADLINE_MS };
    const quorum = quorumToWire(policy.quorum);
    return proposals.propose({
      doc: text(state.cid),
      change: rulesToChange(rules),
      proposer: call.caller,
      members,
      weights,
      governance: policy,
      ...(call.via ? { via: call.via } : {}),
      admin: { ...(base ? { base: text(base) } : {}), tokenOf: (nonce) => rulesProposalToken(state.cid, rules, { nonce, members, weights, quorum, ...(base ? { base } : {}) }) },
    });
  };

  /** An answer that brings its value's canonical bytes (as the pipeline's Invoked does). */
  const answerWithBytes = ({ valueBytes, ...outcome }: Outcome & { readonly valueBytes?: Uint8Array }): { outcome: Outcome; pure: false; valueBytes?: Uint8Array } =>
    ({ outcome: Object.freeze(outcome) as Outcome, pure: false, ...(valueBytes ? { valueBytes } : {}) });

  const readAt = async (state: DocState, version: CID): Promise<Outcome> => fulfilled({ version: text(version), value: await valueAt(state, version) });

  const stateOfClosure = (closure: Closure): DocState | undefined => {
    const env = closure.env as Record<string, GridValue> | null;
    return typeof env?.doc === 'string' ? byId.get(env.doc) : undefined;
  };

  return harden({
    /** Whether `closure` is one of a document's role tokens (answered here, never in a vat). */
    isRole: (closure: Closure) => closure.code === ROLE_MODULE_ID,
    /** The current version of the document role closure `closure` reaches, if held here. */
    currentOf: (closure: Closure): string | undefined => {
      const state = stateOfClosure(closure);
      return state && text(state.current);
    },
    /** Whether `token` is a conflict's further promise this node knows. */
    isConflict: (token: Token) => conflicts.has(token),
    roleBySealed: (sealed: string): Closure | undefined => sealedRoles.get(sealed),
    isProposal: proposals.isProposal,
    /** A call on a proposal's token (a vote, or collecting it), by `caller`. */
    answerProposal: (token: Token, args: readonly GridValue[], caller: Principal) => proposals.answer(token, args, caller),
    proposals: proposals.list,
    close: proposals.close,

    apply(entry: Entry) {
      proposals.apply(entry);
      switch (entry.kind) {
        case 'doc': {
          const cid = CID.parse(entry.doc);
          const state: DocState = { cid, id: entry.id, issuer: entry.issuer, heads: [cid], current: cid, turn: Promise.resolve() };
          docs.set(entry.doc, state);
          byId.set(entry.id, state);
          ROLES.forEach((role, index) => {
            const sealed = entry.roles[index]!;
            sealedRoles.set(sealed, harden({ token: sealed as Token, sealed, code: ROLE_MODULE_ID, export: role, env: { doc: entry.id }, issuer: entry.issuer }));
          });
          break;
        }
        case 'doc-head': {
          const state = docs.get(entry.doc);
          if (!state) break;
          // Live, each head is a version held here: its CID as it is, not parsed again (and kept twice).
          const cidOf = (key: string) => versions.get(key)?.cid ?? (key === entry.doc ? state.cid : CID.parse(key));
          state.heads = entry.heads.map(cidOf);
          state.current = cidOf(entry.current);
          break;
        }
        case 'doc-conflict': {
          conflicts.set(entry.conflict, { doc: entry.doc, heads: entry.heads.map((head) => CID.parse(head)), attempts: entry.attempts as Attempt[], at: entry.at });
          const state = docs.get(entry.doc);
          if (state) state.open ??= entry.conflict;
          break;
        }
        case 'revoked-at':
          revokedSince.set(entry.token, { since: entry.since, by: entry.by, signature: entry.signature });
          break;
        case 'doc-settled': {
          const conflict = conflicts.get(entry.conflict);
          if (!conflict) break;
          conflict.settled = CID.parse(entry.version);
          const state = docs.get(conflict.doc);
          if (state?.open === entry.conflict) delete state.open;
          break;
        }
        case 'doc-token':
          if (entry.doc !== undefined || !followed.has(entry.token)) followed.set(entry.token, entry.doc);
          break;
        case 'doc-rules': {
          const state = docs.get(entry.doc);
          if (state) state.ruled = true;
          break;
        }
        default:
      }
    },

    /** What the journal left here, as plain data (kernel/snapshot.ts). */
    snapshot: (): DocumentsSnapshot => ({
      docs: [...docs.values()].map(({ cid, id, issuer, heads, current, open, ruled }) => ({ doc: text(cid), id, issuer, heads: heads.map(text), current: text(current), ...(open ? { open } : {}), ...(ruled ? { ruled } : {}) })),
      roles: [...sealedRoles.values()].map(({ sealed, export: role, env, issuer }) => [sealed, role, (env as { doc: string }).doc, issuer] as const),
      conflicts: [...conflicts].map(([token, { doc, heads, attempts, at, settled }]) => ({ token, doc, heads: heads.map(text), attempts, at, ...(settled ? { settled: text(settled) } : {}) })),
      revokedSince: [...revokedSince].map(([token, { since, by, signature }]) => [token, since, by, signature] as const),
      followed: [...followed].map(([token, doc]) => [token, doc ?? null] as const),
      proposals: proposals.snapshot(),
    }),
    restore(from: DocumentsSnapshot) {
      for (const { doc, id, issuer, heads, current, open, ruled } of from.docs) {
        const state: DocState = { cid: CID.parse(doc), id, issuer, heads: heads.map((head) => CID.parse(head)), current: CID.parse(current), turn: Promise.resolve(), ...(open ? { open } : {}), ...(ruled ? { ruled } : {}) };
        docs.set(doc, state);
        byId.set(id, state);
      }
      for (const [sealed, role, id, issuer] of from.roles) sealedRoles.set(sealed, harden({ token: sealed as Token, sealed, code: ROLE_MODULE_ID, export: role, env: { doc: id }, issuer }));
      for (const { token, doc, heads, attempts, at, settled } of from.conflicts) conflicts.set(token, { doc, heads: heads.map((head) => CID.parse(head)), attempts, at, ...(settled ? { settled: CID.parse(settled) } : {}) });
      for (const [token, since, by, signature] of from.revokedSince) revokedSince.set(token, { since, by, signature });
      for (const [token, doc] of from.followed) followed.set(token, doc ?? undefined);
      proposals.restore(from.proposals);
    },

    /** Make a document: its genesis and its four role tokens. `reducer` and token steps are closures' tokens. */
    async create(spec: { reducer: string; merges?: readonly StepSpec[]; init: GridValue; governance?: Omit<Governance, 'members'> & { members: string } }): Promise<DocumentTokens> {
      const reducer = asToken(spec.reducer);
      const merges = await stepsOf(spec.merges ?? []);
      await powers.publish(ROLE_MODULE_SOURCE);
      const id = [...powers.randomBytes(16)].map((b) => b.toString(16).padStart(2, '0')).join('');
      const tokens = {} as Record<Role, Token>;
      for (const role of ROLES) tokens[role] = await powers.issue({ code: ROLE_MODULE_ID, export: role, env: { doc: id } });
      const roles = Object.fromEntries(ROLES.map((role) => [role, sealToken(tokens[role])])) as Record<Role, string>;
      const init = await storeValue(spec.init);
      const governance: Governance | undefined = spec.governance && { ...spec.governance, members: spec.governance.members === 'self' ? 'self' : CID.parse(spec.governance.members) };
      if (governance && governance.members !== 'self' && !docs.has(text(governance.members))) throw new DocumentError('ERR_NO_DOCUMENT', `the member document ${governance.members} is not held here`);
      const { bytes, genesis } = await makeGenesis({ id, roles, reducer, merges, init, at: clock(), ...(governance ? { governance } : {}) }, identity);
      await putBlock(bytes);
      geneses.set(text(genesis.cid), genesis);
      journal.append({ kind: 'doc', doc: text(genesis.cid), id, issuer: genesis.issuer, roles: ROLES.map((role) => roles[role]) });
      return harden({ doc: text(genesis.cid), ...tokens });
    },

    /**
     * Answer a call on role closure `closure` (pipeline's route); `seq` is
     * the call's journal record, `via` the delegation the call came through.
     * Only `at` is pure: it names the version it reads.
     */
    async answer(closure: Closure, args: readonly GridValue[], call: DocCallInfo): Promise<{ outcome: Outcome; pure: boolean; valueBytes?: Uint8Array }> {
      const role = closure.export as Role;
      const state = stateOfClosure(closure);
      if (!state || !OPERATIONS[role]) return { outcome: revoked('unknown-token', 'this node does not hold the document'), pure: false };
      const [operation = 'value', ...rest] = args;
      if (operation === 'rules' && role !== 'admin') return { outcome: revoked('denied', `only a document's admin token changes its reducer or merge cascade (this is a ${role} token)`), pure: false };
      if (typeof operation !== 'string' || !OPERATIONS[role].includes(operation)) {
        return { outcome: revoked('denied', `a ${role} token does ${OPERATIONS[role].join(', ')} (got ${quote(operation)})`), pure: false };
      }
      try {
        switch (operation) {
          case 'value':
            return { outcome: await readAt(state, state.current), pure: false };
          case 'at':
            return { outcome: await readAt(state, CID.parse(String(rest[0]))), pure: true };
          case 'info': {
            const genesis = await genesisOf(state);
            const { governance } = genesis;
            // The rules in force at the current head.
            const rules = await rulesAt(state, state.current);
            return {
              outcome: fulfilled({
                doc: text(state.cid),
                issuer: genesis.issuer,
                reducer: rules.reducer,
                merges: rules.merges.map(stepName),
                ...(governance
                  ? { governance: { members: governance.members === 'self' ? 'self' : text(governance.members), quorum: describeQuorum(governance.quorum), weighted: governance.weighted, deadlineMs: governance.deadlineMs } }
                  : {}),
              }),
              pure: false,
            };
          }
          case 'heads':
            return { outcome: fulfilled({ heads: state.heads.map(text), current: text(state.current) }), pure: false };
          case 'log': {
            const limit = Math.min(MAX_LOG, Number((rest[0] as { limit?: number } | undefined)?.limit ?? 100) || 100);
            return { outcome: fulfilled(await log(state, limit)), pure: false };
          }
          case 'conflicts':
            return { outcome: fulfilled(conflictViews({ doc: text(state.cid), all: true }) as unknown as GridValue), pure: false };
          case 'apply':
            if ((await genesisOf(state)).governance) return { outcome: revoked('denied', `document ${state.cid} changes only by proposal (grid propose)`), pure: false };
            return answerWithBytes(await inTurn(state, () => applyChange(state, rest[0] ?? null, call)));
          case 'propose':
            return { outcome: await propose(state, rest[0] ?? null, call), pure: false };
          case 'rules':
            return { outcome: await proposeRules(state, rest[0] ?? null, call), pure: false };
          case 'resolve':
            return { outcome: await inTurn(state, () => resolve(state, asToken(rest[0]), rest[1] ?? null, call.via)), pure: false };
          case 'replica': {
            // A bearer token becomes one held by name: the same role, now the caller's own, which it may present to sync.
            // Through a delegation, the caller holds one already: it follows that.
            if (call.via) return { outcome: revoked('denied', `${call.via} is a delegation already: follow it (it must name ${call.caller} in its audience)`), pure: false };
            if (call.caller === identity.principal) return { outcome: revoked('invalid', 'this node holds the document itself'), pure: false };
            const made = await powers.delegate(closure.token, call.caller);
            return { outcome: fulfilled({ token: made.token, chain: { links: [...made.chain.links], modules: [...made.chain.modules] } }), pure: false };
          }
        }
      } catch (error) {
        return { outcome: revoked(error instanceof DocumentError ? 'invalid' : 'internal', describeThrown(error)), pure: false };
      }
      return { outcome: revoked('denied', `unknown operation ${quote(operation)}`), pure: false };
    },

    /**
     * The owner's own read through role closure `closure` held here: the
     * value now (or at `version`), with no call and so no journal record —
     * it changes nothing and involves no one else. Undefined if this node
     * does not hold the document.
     */
    async read(closure: Closure, version?: string): Promise<Outcome | undefined> {
      const state = stateOfClosure(closure);
      if (!state) return undefined;
      try {
        return await readAt(state, version === undefined ? state.current : CID.parse(version));
      } catch (error) {
        return revoked(error instanceof DocumentError ? 'invalid' : 'internal', describeThrown(error));
      }
    },

    /** A call on a conflict's token: a further promise (itself) until someone settles it, then the settled version and value. */
    async answerConflict(token: Token): Promise<Outcome> {
      const conflict = conflicts.get(token)!;
      if (!conflict.settled) return promised(token);
      const state = docs.get(conflict.doc)!;
      return fulfilled({ version: text(conflict.settled), value: await valueAt(state, conflict.settled) });
    },

    conflicts: (options: { doc?: string; all?: boolean } = {}): ConflictView[] => conflictViews(options),

    /** The closures a replica of `doc` runs to check and merge versions: its reducers and merge steps' tokens, the genesis's and every rules change's. */
    async closuresOf(doc: string): Promise<Token[]> {
      const state = docs.get(doc);
      if (!state) throw new DocumentError('ERR_NO_DOCUMENT', `this node does not hold document ${doc}`);
      const genesis = await genesisOf(state);
      await loadHistory(state.heads);
      const all = [genesis, ...[...versions.values()].flatMap((version) => (version.by === 'rules' && version.doc.equals(state.cid) ? [version.rules!] : []))];
      return [...new Set(all.flatMap((rules) => [rules.reducer, ...rules.merges.flatMap((step) => ('token' in step ? [step.token] : []))]))];
    },

    /**
     * The owner's own view of document `doc` (the web page's): the rules in
     * force, its heads and latest `limit` versions, read here with no call — it
     * changes nothing and involves no one else. Undefined if not held.
     */
    async history(doc: string, limit: number) {
      const state = docs.get(doc);
      if (!state) return undefined;
      const genesis = await genesisOf(state);
      // The rules in force at the current head.
      const rules = await rulesAt(state, state.current);
      return harden({
        doc,
        issuer: genesis.issuer,
        reducer: rules.reducer,
        merges: rules.merges.map(stepName),
        heads: state.heads.map(text),
        current: text(state.current),
        log: await log(state, Math.min(limit, MAX_LOG)),
      });
    },

    /** The documents held here: genesis CID → heads. */
    held(): Array<{ doc: string; heads: string[]; current: string }> {
      return [...docs.values()].map((state) => ({ doc: text(state.cid), heads: state.heads.map(text), current: text(state.current) }));
    },

    /**
     * What `doc` holds that a replica with heads `haves` lacks: the genesis,
     * then versions parents first with their values, changes and the
     * delegation records they name, at most `maxVersions` versions.
     */
    async bundle(doc: string, haves: readonly string[], maxVersions = MAX_BUNDLE_VERSIONS, maxBytes = Infinity): Promise<Bundle> {
      const state = docs.get(doc);
      if (!state) throw new DocumentError('ERR_NO_DOCUMENT', `this node does not hold document ${doc}`);
      await loadHistory(state.heads);
      // What the asker holds: every have held here and its ancestors, in one walk.
      const known = new Set<string>([doc]);
      const below: CID[] = [];
      for (const have of haves) {
        const version = versions.get(have);
        if (!version || known.has(have)) continue;
        known.add(have);
        below.push(version.cid);
      }
      for (let next = below.pop(); next; next = below.pop()) {
        for (const parent of parentsOf(next)) {
          const key = text(parent);
          if (known.has(key)) continue;
          if (known.size > MAX_WALK) throw new WalkTooLong(`a document's history is walked at most ${MAX_WALK} versions deep`);
          known.add(key);
          below.push(parent);
        }
      }
      // Parents first: a depth-first walk from the heads, each version after its parents, until one more than fits is placed.
      const order: Version[] = [];
      const placed = new Set<string>(known);
      const visit = (start: CID) => {
        const stack: CID[] = [start];
        const expanded: boolean[] = [false];
        while (stack.length > 0 && order.length <= maxVersions) {
          const cid = stack.pop()!;
          const done = expanded.pop()!;
          const key = text(cid);
          if (placed.has(key)) continue;
          const version = versions.get(key)!;
          if (done) {
            placed.add(key);
            order.push(version);
            continue;
          }
          stack.push(cid);
          expanded.push(true);
          for (const parent of version.parents) {
            if (placed.has(text(parent))) continue;
            stack.push(parent);
            expanded.push(false);
          }
        }
      };
      for (const head of sortCids(state.heads)) visit(head);
      const genesis = await genesisOf(state);
      const blocks = new Map<string, Uint8Array>([
        [doc, await store.get(state.cid)],
        [text(genesis.init), await store.get(genesis.init)],
      ]);
      const add = async (cid: CID) => {
        if (!blocks.has(text(cid))) blocks.set(text(cid), await store.get(cid));
      };
      /** Delegation links of a version's authority: sent with it; revoked ones' notices go to every replica. */
      const chainOf = async (version: Version) => (version.by !== 'merge' && version.via ? powers.chainOf(version.via) : []);
      // At most maxVersions versions, and no more once maxBytes are reached (one version at least).
      let bytes = 0;
      let sent = 0;
      const added = async (cid: CID) => {
        if (blocks.has(text(cid))) return;
        await add(cid);
        bytes += blocks.get(text(cid))!.length;
      };
      for (const version of order) {
        if (sent >= maxVersions || (sent > 0 && bytes >= maxBytes)) break;
        sent += 1;
        await added(version.cid);
        await added(version.value);
        if (version.by === 'change' && version.change) await added(version.change);
        for (const link of await chainOf(version)) await added(CID.parse(link.token));
      }
      const revocations = new Map<Token, { notice: RevocationNotice; since?: RevokedSince }>();
      // Each delegation a writer went through, once: its chain's revoked links.
      const vias = new Map<Token, Version>();
      for (const version of versions.values()) if (version.by !== 'merge' && version.via && !vias.has(version.via) && version.doc.equals(state.cid)) vias.set(version.via, version);
      for (const version of vias.values()) {
        for (const link of await chainOf(version)) {
          const notice = await powers.revocationNotice(link.token);
          if (notice && !revocations.has(link.token)) revocations.set(link.token, { notice, ...(await sinceOf(link.token, notice)) });
        }
      }
      const more = sent < order.length;
      const taken = order.slice(0, sent);
      const builtOn = new Set(taken.flatMap((version) => version.parents.map(text)));
      const tips = more ? taken.filter((version) => !builtOn.has(text(version.cid))).map((version) => text(version.cid)).slice(-MAX_TIPS) : [];
      // Frozen, not hardened: hardening walks every byte array (most of the time of a large bundle).
      return Object.freeze({ doc, blocks: [...blocks], more, ...(tips.length > 0 ? { tips } : {}), ...(revocations.size > 0 ? { revocations: [...revocations.values()] } : {}) });
    },

    /**
     * Take in versions from another replica: each is checked — its
     * signature, its author's authority, that its value follows from its
     * parents — before it counts, then heads that diverged are merged.
     * Returns how many versions were taken and why others were refused.
     */
    async ingest(bundle: Bundle, from: Principal): Promise<{ accepted: number; refused: Array<{ version: string; reason: string }> }> {
      const blocks = new Map<string, Uint8Array>();
      /** Each block's CID, parsed once. */
      const cids = new Map<string, CID>();
      for (const [key, bytes] of bundle.blocks) {
        // Most blocks are dag-cbor: their CID made and printed costs less than the key parsed.
        const made = blockCid(bytes, DAG_CBOR_CODEC);
        const cid = text(made) === key ? made : CID.parse(key);
        if (cid !== made && !blockCid(bytes, cid.code, 'sha2-256').equals(cid)) throw new DocumentError('ERR_MISMATCH', `block ${key} does not hash to its CID`);
        blocks.set(key, bytes);
        cids.set(key, cid);
      }
      const genesisBytes = blocks.get(bundle.doc);
      let state = docs.get(bundle.doc);
      if (!state) {
        if (!genesisBytes) throw new DocumentError('ERR_NO_DOCUMENT', `the bundle lacks document ${bundle.doc}'s genesis`);
        const genesis = readGenesis(CID.parse(bundle.doc), genesisBytes);
        await store.putVerified(genesis.cid, genesisBytes);
        await store.putVerified(genesis.init, blocks.get(text(genesis.init)) ?? (await store.get(genesis.init)));
        geneses.set(bundle.doc, genesis);
        journal.append({ kind: 'doc', doc: bundle.doc, id: genesis.id, issuer: genesis.issuer, roles: ROLES.map((role) => genesis.roles[role]) });
        state = docs.get(bundle.doc)!;
      }
      const held = state;
      return inTurn(held, async () => {
        const genesis = await genesisOf(held);
        // A large bundle: the reducer's vat is made ready (started, its closure loaded: an empty fold) while the blocks are decoded and read.
        if (blocks.size > WARM_BUNDLE_BLOCKS) void powers.run(genesis.reducer, [null, []], { fold: true }).catch(() => {});
        await loadHistory(held.heads);
        // Each block decoded once, in the order sent: delegation records (stored: versions name them) and
        // versions (read, their signatures sent to be verified). Nothing else is stored before its version is taken.
        const refused: Array<{ version: string; reason: string }> = [];
        // The versions sent, in the order sent (parents first); anything else is a value, a change or a delegation.
        const candidates: Version[] = [];
        // Their signatures are verified off the main thread, VERIFY_BATCH at a time, each batch sent as soon as it
        // is read: the verifier works while the rest are decoded and the reducer replays. No version is taken before its own verifies.
        const verdicts: Array<Promise<Array<readonly [string, string]>>> = [];
        let batch: SignedVersion[] = [];
        const sendBatch = () => {
          const statements = batch;
          batch = [];
          verdicts.push(
            verifyMany(statements.map(({ signer, message, signature }) => [signer, message, signature] as const)).then((verdict) =>
              statements.flatMap((statement, i) => (verdict[i] ? [] : [[text(statement.cid), signatureRefusal(statement).message] as const])),
            ),
          );
        };
        // The reducer replays them REPLAY_PART at a time as they are read (the vat works while the rest are decoded).
        const replays: Array<Promise<Map<string, Replayed>>> = [];
        let replayedTo = 0;
        const replayPart = () => {
          replays.push(replayChains(genesis, candidates, blocks, replayedTo, candidates.length));
          replayedTo = candidates.length;
        };
        // A record's links to the bundle's own blocks are decoded as the CIDs made above (their texts made once).
        const links = new Map<number, CID>();
        for (const cid of cids.values()) links.set(linkKey(cid), cid);
        for (const [key, bytes] of blocks) {
          // The genesis and versions held here already are neither read nor taken again.
          if (key === bundle.doc || versions.has(key)) continue;
          // Only a version or a delegation record is read here: a block whose bytes hold neither mark (most values) cannot be one.
          const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
          if (!RECORD_MARKS.some((mark) => view.includes(mark))) continue;
          let record: unknown;
          try {
            record = decodeKnowing(bytes, links);
          } catch {
            continue; // not a record: a value of some other shape, or junk no version names
          }
          if (isDelegationRecord(record)) {
            await store.putHashed(cids.get(key)!, bytes);
            continue;
          }
          // A record of type `version` means to be one: a bad one is refused rather than taken for a value.
          if (record === null || typeof record !== 'object' || (record as { type?: unknown }).type !== 'version') continue;
          let read: ReturnType<typeof readVersionUnverified>;
          try {
            read = readVersionUnverified(cids.get(key)!, bytes, record);
          } catch (error) {
            refused.push({ version: key, reason: (error as Error).message });
            continue;
          }
          if (!read.version.doc.equals(held.cid)) {
            refused.push({ version: key, reason: `it belongs to document ${read.version.doc}` });
            continue;
          }
          candidates.push(read.version);
          if (read.signed && batch.push(read.signed) >= VERIFY_BATCH) sendBatch();
          if (candidates.length - replayedTo >= REPLAY_PART) {
            replayPart();
            // A turn for the replay just started to reach its vat.
            await new Promise<void>((resolve) => (powers.soon ?? setImmediate)(resolve));
          }
        }
        if (batch.length > 0) sendBatch();
        if (candidates.length > replayedTo) replayPart();
        // Revocations (their delegation records stored above) before any version is checked: a version written through a delegation after its revocation is known here is refused.
        for (const { notice, since } of bundle.revocations ?? []) {
          if (!(await powers.hearRevocation(notice, from).catch(() => false)) && !powers.revokedAt(notice.token)) continue;
          // Its revoker's date, if it signed one, not in the future, and no later than this node's own.
          const known = revokedSince.get(notice.token)?.since ?? Number.POSITIVE_INFINITY;
          if (since && since.at < known && since.at <= clock() && verify(notice.by, revokedAtStatement(notice.token, since.at), since.signature)) {
            journal.append({ kind: 'revoked-at', token: notice.token, since: since.at, by: notice.by, signature: since.signature });
          }
        }
        const [replayed, unsigned] = await Promise.all([
          Promise.all(replays).then((parts) => new Map(parts.flatMap((part) => [...part]))),
          Promise.all(verdicts).then((refusals) => new Map(refusals.flat())),
        ]);
        let accepted = 0;
        let heads = held.heads;
        const settlements: Version[] = [];
        for (const version of candidates) {
          const key = text(version.cid);
          const missing = version.parents.find((p) => !versions.has(text(p)) && !p.equals(held.cid));
          if (missing) {
            refused.push({ version: key, reason: `its parent ${missing} is missing` });
            continue;
          }
          const reason = unsigned.get(key) ?? (await refusalOf(held, genesis, version, blocks, replayed).catch((error: unknown) => describeThrown(error)));
          if (reason) {
            refused.push({ version: key, reason });
            continue;
          }
          // What was sent is stored (hashed to its CID as it arrived, above); a value or change that was not is here already.
          for (const cid of [version.cid, version.value, ...(version.by === 'change' && version.change ? [version.change] : [])]) {
            const sent = blocks.get(text(cid));
            if (sent) await store.putHashed(cids.get(text(cid))!, sent);
          }
          versions.set(key, version);
          // Its whole ancestry in memory when its parents' is: the next walk of history stops here.
          if (version.parents.every((parent) => parent.equals(held.cid) || complete.has(text(parent)))) complete.add(key);
          if (version.by === 'settle') settlements.push(version);
          if (version.by === 'rules') journal.append({ kind: 'doc-rules', doc: text(held.cid), version: key });
          heads = headsWith(heads, version);
          accepted += 1;
        }
        if (accepted > 0) {
          const current = heads.some((head) => head.equals(held.current)) ? held.current : heads.length === 1 ? heads[0]! : (sortCids(heads)[0] as CID);
          landed(held, heads, current);
          // A conflict this replica met too, settled elsewhere: settled here by the same version.
          for (const version of settlements) {
            const token = version.by === 'settle' ? version.conflict : undefined;
            const conflict = token && conflicts.get(token);
            if (conflict && !conflict.settled) journal.append({ kind: 'doc-settled', conflict: token, version: text(version.cid) });
          }
          await mergeHeads(held);
        }
        return { accepted, refused };
      });
    },

    /** Sync (sync.ts): the document a role closure belongs to, if held here. */
    docOf: (closure: Closure): string | undefined => {
      const state = stateOfClosure(closure);
      return state && text(state.cid);
    },
    /** Sync: who issued document `doc`, if held here. */
    issuerOf: (doc: string): Principal | undefined => docs.get(doc)?.issuer,
    /** Sync: the token this node presents for `doc`, if it follows it by one. */
    tokenFor: (doc: string): Token | undefined => [...followed].find(([, held]) => held === doc)?.[0],
    /** Sync: whether version `cid` (or genesis) is held here. */
    knows: async (cid: string): Promise<boolean> => {
      if (versions.has(cid) || docs.has(cid)) return true;
      try {
        return await store.has(CID.parse(cid));
      } catch {
        return false;
      }
    },
    /**
     * Sync: what to tell a peer this replica holds of `doc`, at most `max`:
     * its heads, then the first head's first-parent ancestors 1, 2, 4, 8…
     * versions back, so a peer that lacks the heads still finds a version
     * both hold near them.
     */
    haves: async (doc: string, max: number): Promise<string[]> => {
      const state = docs.get(doc);
      if (!state) return [];
      await loadHistory(state.heads);
      const out = state.heads.map(text).slice(0, max);
      let cid: CID | undefined = state.heads[0];
      for (let step = 1; cid && out.length < max; step *= 2) {
        for (let i = 0; i < step && cid; i++) cid = parentsOf(cid)[0];
        if (!cid || cid.equals(state.cid)) break;
        out.push(text(cid));
      }
      return out;
    },
    /** Sync: every token followed here, with the document each reaches once known. */
    followed: (): Array<{ token: Token; doc?: string }> => [...followed].map(([token, doc]) => (doc === undefined ? { token } : { token, doc })),
  });
};
