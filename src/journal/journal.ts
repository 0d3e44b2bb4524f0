/// <reference types="ses" />
/**
 * The promise graph's durable record: an append-only file of dag-cbor records,
 * each framed by a 4-byte big-endian length, each naming the CID of the one
 * before (`prev`). Written records are sealed within SEAL_INTERVAL_MS (and
 * at every flush) by a `seal` record in which the node signs the CID of the
 * record before it; through the hash links that one signature vouches for
 * every earlier record. Signing per batch instead of
 * per record keeps Ed25519 off the call path (a signature costs more than a
 * whole warm call) without weakening what a reader can check.
 *
 * Appends are buffered and written as one batch per turn of the event loop
 * (or when the buffer fills): a call never waits for the disk. `flush()` and
 * `close()` make everything appended so far durable. A crash can lose the
 * last unflushed batch and can tear the last frame; on open a torn tail is cut
 * off and reported, while damage anywhere before the tail — a frame that does
 * not decode, a broken hash link, a bad seal — refuses to open: that is
 * tampering, not a crash, and silently dropping records would lose history.
 */
import { equals } from 'multiformats/bytes';
import { CID } from 'multiformats/cid';
import { cidOf, DAG_CBOR_CODEC, type Principal, type Token, type ModuleId } from '../interface/ids.js';
import { decode, encode } from '../wire/index.js';
import { LinkBytes } from '../wire/cbor.js';
import { blockCidBytes } from '../store/hashing.js';
import { concatBytes, verify, type Identity } from '../identity/identity.js';
import { decodeValue, nodeBuffer, type GridValue } from '../closures/values.js';
import { GridError } from '../interface/errors.js';
import { asRevokeCode, type RevokeCause, type RevokeCode } from '../interface/outcome.js';

/** Storage for the journal: a file on disk, or memory in tests and browsers. */
export interface JournalFile extends JournalBytes {
  /**
   * Add `bytes` at the end, which must be byte `at`: a file that is longer
   * or shorter than the journal in memory has had another writer (or lost
   * bytes), and appending to it would break the chain, so it refuses.
   */
  append(bytes: Uint8Array, at: number): Promise<void>;
  truncate(length: number): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A journal's bytes, read a window at a time: a journal is never read whole,
 * so its size meets no limit of one read (Node's 2 GiB for `readFile`) and
 * reading it holds one window of raw bytes at a time.
 */
export interface JournalBytes {
  size(): Promise<number>;
  /** `length` bytes from `offset` (already written); into `into` (at least `length` long) when given, which is then overwritten. */
  readRange(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
}

interface Base {
  readonly seq: number;
  /** Milliseconds since the epoch, from the kernel's clock. */
  readonly at: number;
}
/**
 * One record's facts. Three kinds name revocations, and they are different
 * facts (the names are the journal's format, kept so existing homes open):
 * `revoked` is a call's outcome, beside `fulfilled` and `promised`; `revoke`
 * is this node revoking a token it issued or delegated; `revocation` is a
 * peer's signed revocation this node heard and believed.
 */
export type EntryBody =
  | { kind: 'issue'; token: Token; code: ModuleId; export: string; issuer: Principal }
  | { kind: 'call'; token: Token; caller: Principal; args: readonly GridValue[]; parent?: number }
  | { kind: 'fulfilled'; call: number; value: GridValue; pure: boolean }
  /**
   * Call `call` ended revoked.
   * `cause`: why, as reputation weighs it (see RevokeCause); absent in records written before it was kept.
   * `code`: what happened (see RevokeCode); records written before codes were kept, or with a code this node does not know, read as FALLBACK_CODE.
   */
  | { kind: 'revoked'; call: number; reason: string; cause?: RevokeCause; code: RevokeCode }
  | { kind: 'promised'; call: number; token: Token }
  /** This node revoked `token`, which `by` (its issuer or delegator) made here. */
  | { kind: 'revoke'; token: Token; reason: string; by: Principal }
  /** A call answered from the cache; `from` is the `fulfilled` entry that answered it (its call has the arguments). */
  | { kind: 'hit'; token: Token; caller: Principal; from: number; parent?: number }
  | { kind: 'seal'; signer: Principal }
  /** The call was answered by a peer this node forwarded it to. */
  | { kind: 'forwarded'; call: number; to: Principal }
  /** A revocation heard from peer `from`, signed by the token's issuer `by`: this node answers the token no more. */
  | { kind: 'revocation'; token: Token; reason: string; by: Principal; signature: Uint8Array; from: Principal }
  /**
   * The same, of a delegation this node has not seen yet: kept (so that no
   * restart forgets it) until the delegation turns up, and believed then if
   * its delegator is `by`.
   */
  | { kind: 'revocation-early'; token: Token; reason: string; by: Principal; signature: Uint8Array; from: Principal }
  /**
   * A delegation: `delegator` wrapped `inner` in the screener `token` for
   * `audience`, applying `policies` (module ids); `issuer` is the original
   * closure's, who must hear of the delegation's revocation. `inner` is a
   * closure's token on a node that holds it, else its sealed reference.
   */
  | { kind: 'wrap'; token: Token; inner: string; delegator: Principal; audience: readonly Principal[]; policies: readonly ModuleId[]; issuer: Principal }
  /** Call `call` passed through audited delegation layer `token`, called there by `caller`. */
  | { kind: 'screened'; call: number; token: Token; caller: Principal }
  /** The state policy `index` of delegation layer `token` keeps between calls (a rate window, a quota count), as of now. */
  | { kind: 'policy-state'; token: Token; index: number; state: GridValue }
  /** Peer `to` was given the blocks of replicable closure `token`: it must hear of the token's revocation. */
  | { kind: 'replicated'; token: Token; to: Principal }
  /**
   * This node holds document `doc` (its genesis's CID); `id` is what the env
   * of its role closures names, `roles` their sealed references (read, write,
   * settle, admin), `issuer` the document's.
   */
  | { kind: 'doc'; doc: string; id: string; issuer: Principal; roles: readonly string[] }
  /** Document `doc`'s heads once a version landed; `current` is the head reads answer. */
  | { kind: 'doc-head'; doc: string; heads: readonly string[]; current: string }
  /** Every step of `doc`'s merge cascade refused to merge `heads` (`attempts`: each step, code and reason): a further promise, `conflict`, that a person settles. */
  | { kind: 'doc-conflict'; doc: string; conflict: Token; heads: readonly string[]; attempts: readonly { step: string; code: RevokeCode; reason: string }[] }
  /** Conflict `conflict` was settled by `version`. */
  | { kind: 'doc-settled'; conflict: Token; version: string }
  /** Delegation `token` was revoked at `since` by `by`, who signed that time (docs/documents.ts): a document's replica refuses what was written through it after then. */
  | { kind: 'revoked-at'; token: Token; since: number; by: Principal; signature: Uint8Array }
  /** `proposer` put `change` to document `doc`'s `members` (with their `weights`) under `quorum` (see docs/governance.ts) until `deadline`. */
  | { kind: 'proposal'; proposal: Token; doc: string; change: GridValue; proposer: Principal; members: readonly Principal[]; weights: readonly number[]; quorum: string | number; deadline: number; via?: Token; admin?: { nonce: Uint8Array; base?: string } }
  /** Member `voter` voted on `proposal`, signing its choice. */
  | { kind: 'vote'; proposal: Token; voter: Principal; choice: 'yes' | 'no'; signature: Uint8Array }
  /** `proposal` ended: carried (its change made `version`), rejected by the votes, or expired. */
  | { kind: 'proposal-ended'; proposal: Token; status: 'passed' | 'rejected' | 'expired'; reason: string; version?: string }
  /** This node replicates the document `token` reaches, presenting `token` to its peers; `doc` once a peer has named it. */
  | { kind: 'doc-token'; token: Token; doc?: string }
  /** A rules change (a new reducer or merge cascade, documents.ts) of `doc` landed here: version `version`. */
  | { kind: 'doc-rules'; doc: string; version: string };
export type Entry = Base & EntryBody;
export type EntryKind = Entry['kind'];

/**
 * What `append` takes: a `call` or `fulfilled` entry brings its arguments or
 * value already encoded (the kernel has those bytes anyway), and the entry
 * decodes them only if someone reads them.
 */
export type AppendBody =
  | Exclude<EntryBody, { kind: 'call' } | { kind: 'fulfilled' } | { kind: 'seal' }>
  | { kind: 'call'; token: Token; caller: Principal; args: Uint8Array; parent?: number }
  /** `decoded`: the value the bytes encode, when the writer has it, so that no reader decodes them again. */
  | { kind: 'fulfilled'; call: number; value: Uint8Array; pure: boolean; decoded?: GridValue };

export class JournalError extends GridError {
  constructor(code: string, message: string) {
    super(code, `journal: ${message}`);
  }
}

const FRAME_HEADER = 4;
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;
/** Flush without waiting for the next turn once this many records are pending. */
const MAX_PENDING = 1024;
const SEAL_DOMAIN = new TextEncoder().encode('promisegrid:journal-seal:v1\n');
/*
 * Records are positional arrays, not maps: [kind code, seq, at, prev, ...fields].
 * A record is written once per call on the hot path; arrays skip encoding and
 * sorting key strings, and arguments and values are embedded as the canonical
 * CBOR bytes the kernel already holds. The layout below is the schema.
 */
const LAYOUT: Readonly<Record<EntryKind, readonly string[]>> = {
  issue: ['token', 'code', 'export', 'issuer'],
  call: ['token', 'caller', 'args', 'parent'],
  fulfilled: ['call', 'value', 'pure'],
  revoked: ['call', 'reason', 'cause', 'code'],
  promised: ['call', 'token'],
  revoke: ['token', 'reason', 'by'],
  hit: ['token', 'caller', 'from', 'parent'],
  seal: ['signer', 'sig'],
  forwarded: ['call', 'to'],
  revocation: ['token', 'reason', 'by', 'signature', 'from'],
  wrap: ['token', 'inner', 'delegator', 'audience', 'policies', 'issuer'],
  screened: ['call', 'token', 'caller'],
  'policy-state': ['token', 'index', 'state'],
  replicated: ['token', 'to'],
  doc: ['doc', 'id', 'issuer', 'roles'],
  'doc-head': ['doc', 'heads', 'current'],
  'doc-conflict': ['doc', 'conflict', 'heads', 'attempts'],
  'doc-settled': ['conflict', 'version'],
  proposal: ['proposal', 'doc', 'change', 'proposer', 'members', 'weights', 'quorum', 'deadline', 'via', 'admin'],
  vote: ['proposal', 'voter', 'choice', 'signature'],
  'proposal-ended': ['proposal', 'status', 'reason', 'version'],
  'revoked-at': ['token', 'since', 'by', 'signature'],
  'doc-token': ['token', 'doc'],
  'doc-rules': ['doc', 'version'],
  'revocation-early': ['token', 'reason', 'by', 'signature', 'from'],
};
const KIND_CODES: readonly EntryKind[] = ['issue', 'call', 'fulfilled', 'revoked', 'promised', 'revoke', 'hit', 'seal', 'forwarded', 'revocation', 'wrap', 'screened', 'policy-state', 'replicated', 'doc', 'doc-head', 'doc-conflict', 'doc-settled', 'proposal', 'vote', 'proposal-ended', 'revoked-at', 'doc-token', 'doc-rules', 'revocation-early'];
const CODE_OF = new Map(KIND_CODES.map((kind, code) => [kind, code]));
/** Trailing fields added to a kind after records of it were written: older records lack them. */
const ADDED_FIELDS: Partial<Record<EntryKind, number>> = { revoked: 2, proposal: 1 };
const LINK_FIELDS = new Set(['token', 'code', 'inner']);
/** Whether field `name` of a `kind` record is a link: a `revoked` record's `code` is its revoke code (a string), an `issue` record's its module. */
const isLink = (kind: EntryKind, name: string) => LINK_FIELDS.has(name) && kind !== 'revoked';
const ENCODED_FIELDS = new Set(['args', 'value']);

/** What a seal signs: the binary CID of the record before it, behind a domain prefix. */
const sealBytes = (prev: Uint8Array) => concatBytes(SEAL_DOMAIN, prev);

const sameLink = (a: Uint8Array | null, b: Uint8Array | null) => a === b || (a !== null && b !== null && equals(a, b));

/** A MiB of zeros to compare against, made the first time a tail must be checked. */
let zeroMiB: Uint8Array | undefined;

/**
 * Whether every byte is zero, for the tail a crash can leave: compared a MiB
 * at a time against zeros with Buffer.compare (native memcmp) where there is
 * a Buffer; elsewhere read four at a time (30× faster than byte by byte).
 * With the window read into again (#zerosToEnd), opening a 2.1 GiB sparse
 * journal went from 6.4 s to 4.8 s.
 */
const allZeros = (bytes: Uint8Array): boolean => {
  if (nodeBuffer) {
    const zeros = (zeroMiB ??= new Uint8Array(1 << 20));
    for (let at = 0; at < bytes.length; at += zeros.length) {
      const part = bytes.subarray(at, at + zeros.length);
      if (nodeBuffer.compare(part, zeros.subarray(0, part.length)) !== 0) return false;
    }
    return true;
  }
  // Byte by byte up to a 4-byte boundary, by words after it, byte by byte at the end.
  const head = Math.min(bytes.length, (4 - (bytes.byteOffset % 4)) % 4);
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset + head, (bytes.length - head) >>> 2);
  for (let i = 0; i < head; i++) if (bytes[i] !== 0) return false;
  for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
  for (let i = head + words.length * 4; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
};

const frame = (bytes: Uint8Array) => {
  const out = new Uint8Array(FRAME_HEADER + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, FRAME_HEADER);
  return out;
};


/**
 * Journal entries are frozen instances whose `args` (a call's) or `value` (a
 * fulfilment's) are kept as the canonical bytes they were written with and
 * decoded only if someone reads them: most entries are written and never
 * looked at again, and a private field is cheaper to keep than a decoded
 * value or a WeakMap entry. `toJSON` gives the plain record.
 */
class JournalEntry {
  readonly #payload: Uint8Array | undefined;
  #decoded: GridValue | undefined;

  constructor(fields: Record<string, unknown>, payload: Uint8Array | undefined, decoded?: GridValue) {
    for (const key of Object.keys(fields)) {
      const value = fields[key];
      if (value !== undefined && !ENCODED_FIELDS.has(key) && key !== 'decoded') (this as unknown as Record<string, unknown>)[key] = value;
    }
    this.#payload = payload;
    this.#decoded = decoded;
    Object.freeze(this);
  }

  get payload(): Uint8Array | undefined {
    return this.#payload;
  }

  #decode(): GridValue | undefined {
    if (this.#decoded === undefined && this.#payload) this.#decoded = decodeValue(this.#payload);
    return this.#decoded;
  }

  get args(): GridValue | undefined {
    return (this as unknown as Entry).kind === 'call' ? this.#decode() : undefined;
  }

  get value(): GridValue | undefined {
    return (this as unknown as Entry).kind === 'fulfilled' ? this.#decode() : undefined;
  }

  toJSON(): Record<string, unknown> {
    const kind = (this as unknown as Entry).kind;
    const field = kind === 'call' ? 'args' : kind === 'fulfilled' ? 'value' : undefined;
    const plain: Record<string, unknown> = { ...(this as object) };
    if (field) plain[field] = this.#decode();
    return plain;
  }
}
harden(JournalEntry);

const makeEntry = (fields: Record<string, unknown>, payload?: Uint8Array, decoded?: GridValue): Entry =>
  new JournalEntry(fields, payload, decoded) as unknown as Entry;

/** The canonical bytes behind a `call` entry's args or a `fulfilled` entry's value. */
export const encodedPayload = (entry: Entry): Uint8Array | undefined => (entry as unknown as JournalEntry).payload;

const toRecord = (entry: Entry, prev: Uint8Array | null, sig?: Uint8Array): unknown[] => {
  const fields = entry as unknown as Record<string, unknown>;
  const record: unknown[] = [CODE_OF.get(entry.kind), entry.seq, entry.at, prev && new LinkBytes(prev)];
  for (const name of LAYOUT[entry.kind]) {
    if (name === 'sig') record.push(sig);
    else if (ENCODED_FIELDS.has(name)) record.push(encodedPayload(entry));
    else if (isLink(entry.kind, name)) record.push(cidOf(fields[name] as string));
    else record.push(fields[name] ?? null);
  }
  return record;
};

/** One record's bytes as an entry, with the binary CID of the record before it (and a seal's signature). */
export const readRecord = (bytes: Uint8Array): { entry: Entry; prev: Uint8Array | null; sig?: Uint8Array } => fromRecord(decode(bytes));

/** Whether a seal record (its `prev` and `sig` as read) is `signer`'s signature over the record before it. */
export const sealVerifies = (signer: Principal, prev: Uint8Array | null, sig: Uint8Array | undefined): boolean =>
  prev !== null && sig !== undefined && verify(signer, sealBytes(prev), sig);

/** A record's own binary CID: what the record after it names as `prev`, and what a seal signs. */
export const recordCid = (bytes: Uint8Array): Uint8Array => blockCidBytes(bytes, DAG_CBOR_CODEC);

const fromRecord = (record: unknown): { entry: Entry; prev: Uint8Array | null; sig?: Uint8Array } => {
  const bad = (why: string) => new JournalError('ERR_BAD_RECORD', `record is not a journal entry: ${why}`);
  if (!Array.isArray(record) || record.length < 4) throw bad('not an array of at least 4 items');
  const [code, seq, at, prev, ...rest] = record as [unknown, unknown, unknown, unknown, ...unknown[]];
  const kind = typeof code === 'number' ? KIND_CODES[code] : undefined;
  if (!kind) throw bad(`unknown kind ${String(code)}`);
  if (typeof seq !== 'number' || typeof at !== 'number') throw bad('seq and at must be numbers');
  const layout = LAYOUT[kind];
  if (rest.length > layout.length || rest.length < layout.length - (ADDED_FIELDS[kind] ?? 0)) throw bad(`${kind} has ${rest.length} fields, expected ${layout.length}`);
  const fields: Record<string, unknown> = { seq, at, kind };
  let payload: Uint8Array | undefined;
  let sig: Uint8Array | undefined;
  layout.forEach((name, index) => {
    const value = rest[index];
    if (name === 'sig') sig = value as Uint8Array;
    else if (ENCODED_FIELDS.has(name)) {
      if (!(value instanceof Uint8Array)) throw bad(`${name} must be bytes`);
      decodeValue(value); // refuse a payload that is not canonical grid data now, not on first read
      payload = value;
    } else if (isLink(kind, name)) fields[name] = String(CID.asCID(value) ?? value);
    else fields[name] = value === null ? undefined : value;
  });
  if (kind === 'revoked') fields.code = asRevokeCode(fields.code);
  const prevCid = prev === null ? null : CID.asCID(prev);
  if (prev !== null && !prevCid) throw bad('prev must be a link or null');
  return { entry: makeEntry(fields, payload), prev: prevCid ? prevCid.bytes : null, sig };
};

export interface JournalPowers {
  file: JournalFile;
  identity: Identity;
  clock: () => number;
  /** Run a callback on a later turn (setImmediate in Node). */
  schedule: (callback: () => void) => void;
  /**
   * Run a callback after `ms` (must not keep the process alive); returns a
   * cancel function. With it, batches are sealed at most every
   * SEAL_INTERVAL_MS; without it, every batch ends with a seal.
   */
  setTimer?: (ms: number, callback: () => void) => () => void;
}

/**
 * Most time records stay unsealed. A seal is an Ed25519 signature — more
 * than a whole cache hit costs — so under a steady trickle of calls sealing
 * every batch would sign once per call; this bounds it to a few dozen a
 * second, whatever the load, and `flush`/`close` seal at once.
 */
const SEAL_INTERVAL_MS = 50;

/** Where a scan starts: the record numbered `seq`, which links to `head`, at byte `offset` (0 if absent). */
export interface ScanStart {
  readonly head: Uint8Array | null;
  readonly seq: number;
  readonly offset?: number;
}
const START: ScanStart = Object.freeze({ head: null, seq: 0 });

/** Where a batch ends: the next record is numbered `seq` and starts at byte `offset`, linking to `head`, the record before it, which starts at byte `last`. */
export interface BatchEnd {
  readonly seq: number;
  readonly offset: number;
  readonly head: Uint8Array | null;
  readonly last: number;
}
/** Bytes read at a time when a journal is opened or followed: room for the longest record. */
const READ_WINDOW = FRAME_HEADER + MAX_RECORD_BYTES;

export interface OpenedJournal {
  journal: Journal;
  /** Bytes of a torn tail that were cut off at open (0 if none). */
  droppedBytes: number;
}

export class Journal {
  readonly #powers: JournalPowers;
  readonly #entries: Entry[] = [];
  #pending: Entry[] = [];
  /** Binary CID of the last record written. */
  #head: Uint8Array | null;
  #nextSeq: number;
  #scheduled = false;
  /** Records written since the last seal, and when that seal was made. */
  #unsealed = 0;
  #lastSeal = Number.NEGATIVE_INFINITY;
  #cancelSeal: (() => void) | undefined;
  #writing: Promise<void> = Promise.resolve();
  #failure: Error | undefined;
  #closed = false;
  /** Where each record's frame starts in the file, by sequence number, and where the next will. */
  readonly #offsets: number[];
  #fileLength: number;
  readonly #listeners: Array<(entry: Entry) => void> = [];
  readonly #batchListeners: Array<(end: BatchEnd, written: Promise<void>) => void> = [];
  /** Where the last record cut into a batch starts. */
  #lastStart = 0;

  private constructor(powers: JournalPowers, entries: Entry[], head: Uint8Array | null, offsets: number[], fileLength: number) {
    this.#powers = powers;
    this.#entries = entries;
    this.#head = head;
    this.#offsets = offsets;
    this.#fileLength = fileLength;
    this.#nextSeq = entries.length === 0 ? 0 : entries[entries.length - 1]!.seq + 1;
    this.#lastStart = offsets.at(-1) ?? 0;
  }

  static async open(powers: JournalPowers): Promise<OpenedJournal> {
    let parsed: Awaited<ReturnType<typeof Journal.scanFile>>;
    try {
      parsed = await Journal.scanFile(powers.file, powers.identity.principal);
      if (parsed.broken) throw parsed.broken;
    } catch (error) {
      await powers.file.close();
      throw error;
    }
    const { entries, head, goodLength, unsealed, offsets, size } = parsed;
    const droppedBytes = size - goodLength;
    if (droppedBytes > 0) await powers.file.truncate(goodLength);
    const journal = new Journal(powers, entries, head, offsets, goodLength);
    // Records that made it to disk after the last seal are intact (their
    // links check out) but unsigned: vouch for them now.
    journal.#unsealed = unsealed;
    if (unsealed > 0) await journal.flush();
    return { journal, droppedBytes };
  }

  /**
   * Parse and verify a journal's bytes: frames, hash links, sequence, and
   * seals (by `signer` when given — a node's own journal is sealed by it).
   * `after` continues from records already read: the bytes then start at the
   * record numbered `after.seq`, which must link to `after.head`.
   */
  static parse(bytes: Uint8Array, signer?: Principal, after: ScanStart = START) {
    const { broken, ...parsed } = Journal.scan(bytes, signer, after);
    if (broken) throw broken;
    return parsed;
  }

  /**
   * `parse` that stops at the first record that fails to verify instead of
   * throwing: what it returns is the verified prefix (`goodLength` bytes),
   * and `broken` says why the record at `goodLength` failed (absent when
   * the bytes end, whole or with a torn tail). `grid repair` keeps the prefix.
   * Offsets (in `offsets` and in messages) count from `after.offset`.
   */
  static scan(bytes: Uint8Array, signer?: Principal, after: ScanStart = START) {
    let broken: JournalError | undefined;
    const corrupt = (message: string) => new JournalError('ERR_CORRUPT', message);
    const entries: Entry[] = [];
    const offsets: number[] = [];
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const base = after.offset ?? 0;
    let offset = 0;
    let head: Uint8Array | null = after.head;
    let unsealed = 0;
    while (offset < bytes.length) {
      const remaining = bytes.length - offset;
      const length = remaining >= FRAME_HEADER ? view.getUint32(offset) : -1;
      const end = offset + FRAME_HEADER + length;
      if (length < 0 || end > bytes.length) break; // torn tail
      if (length > MAX_RECORD_BYTES) {
        broken = corrupt(`record at byte ${base + offset} declares ${length} bytes (limit ${MAX_RECORD_BYTES})`);
        break;
      }
      const body = bytes.subarray(offset + FRAME_HEADER, end);
      let parsed: ReturnType<typeof fromRecord>;
      try {
        parsed = fromRecord(decode(body));
      } catch (error) {
        // A crash leaves a short frame (handled above) or zeros where the
        // file grew before its data landed. A whole frame that does not
        // decode was changed after it was written.
        if (allZeros(bytes.subarray(offset))) break;
        broken = corrupt(`record at byte ${base + offset} does not decode: ${(error as Error).message}`);
        break;
      }
      const { entry, prev, sig } = parsed;
      if (!sameLink(prev, head)) {
        broken = corrupt(`record ${entry.seq} at byte ${base + offset} does not link to the record before it`);
        break;
      }
      if (entry.seq !== after.seq + entries.length) {
        broken = corrupt(`record at byte ${base + offset} has sequence ${entry.seq}, expected ${after.seq + entries.length}`);
        break;
      }
      if (entry.kind === 'seal' && signer !== undefined && entry.signer !== signer) {
        broken = corrupt(`seal ${entry.seq} at byte ${base + offset} is signed by ${entry.signer}, not by this node (${signer})`);
        break;
      }
      if (entry.kind === 'seal') {
        if (!sealVerifies(entry.signer, prev, sig)) {
          broken = corrupt(`seal ${entry.seq} at byte ${base + offset} has a bad signature`);
          break;
        }
        unsealed = 0;
      } else {
        unsealed += 1;
      }
      entries.push(entry);
      offsets.push(base + offset);
      head = recordCid(body);
      offset = end;
    }
    return { entries, head, goodLength: offset, unsealed, offsets, broken };
  }

  /**
   * `scan` over a journal file, a window at a time, from byte `after.offset`
   * (the record numbered `after.seq`, linking to `after.head`) to its end.
   * `goodLength` is where the verified prefix ends, counted from the file's
   * start; `size`, the file's length when it was read.
   */
  static async scanFile(file: JournalBytes, signer?: Principal, after: ScanStart = START) {
    const size = await file.size();
    const entries: Entry[] = [];
    const offsets: number[] = [];
    let { head } = after;
    let offset = after.offset ?? 0;
    let unsealed = 0;
    let broken: JournalError | undefined;
    while (offset < size) {
      const length = Math.min(READ_WINDOW, size - offset);
      const part = Journal.scan(await file.readRange(offset, length), signer, { head, seq: after.seq + entries.length, offset });
      for (const entry of part.entries) entries.push(entry);
      for (const at of part.offsets) offsets.push(at);
      // `part.unsealed` counts from its last seal, or from its start if it has none.
      unsealed = part.entries.some((entry) => entry.kind === 'seal') ? part.unsealed : unsealed + part.unsealed;
      head = part.head;
      offset += part.goodLength;
      broken = part.broken;
      if (broken || offset + (length - part.goodLength) >= size) break; // broken, or the end: whole or torn
      // A window holds the longest record there can be, so a window with
      // nothing whole in it starts a run of zeros: a torn tail if it runs to the end.
      if (part.goodLength === 0) {
        broken = await Journal.#zerosToEnd(file, offset, size);
        break;
      }
    }
    return { entries, head, goodLength: offset, unsealed, offsets, broken, size };
  }

  /** Undefined if only zeros follow byte `from`; else why the record there is corrupt. */
  static async #zerosToEnd(file: JournalBytes, from: number, size: number): Promise<JournalError | undefined> {
    // One window, read into again and again: a long tail of zeros (a sparse file after a crash can be
    // gigabytes of them) would otherwise be a fresh 16 MiB buffer per window for the collector.
    const window = new Uint8Array(Math.min(READ_WINDOW, size - from));
    for (let offset = from; offset < size; offset += READ_WINDOW) {
      const bytes = await file.readRange(offset, Math.min(READ_WINDOW, size - offset), window);
      if (!allZeros(bytes)) return new JournalError('ERR_CORRUPT', `record at byte ${from} does not decode`);
    }
    return undefined;
  }

  /** Every entry so far, in order (including those not yet on disk). */
  entries(): readonly Entry[] {
    return this.#entries;
  }

  get length(): number {
    return this.#entries.length;
  }

  /** Be told of every record appended from now on (the kernel keeps its reputation tally so). */
  onAppend(listener: (entry: Entry) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Be told of every batch as it is cut, synchronously: every record
   * appended so far is in it (so state derived from them stands exactly at
   * `end`), and `written` resolves once it is in the file. The kernel takes
   * its snapshots so (kernel/snapshot.ts).
   */
  onBatch(listener: (end: BatchEnd, written: Promise<void>) => void): void {
    this.#batchListeners.push(listener);
  }

  /** Where the last batch cut ends (or the journal as opened, if none was cut since). */
  batchEnd(): BatchEnd {
    return { seq: this.#nextSeq, offset: this.#fileLength, head: this.#head, last: this.#lastStart };
  }

  append(body: AppendBody): Entry {
    if (this.#closed) throw new JournalError('ERR_CLOSED', 'journal is closed');
    const payload = body.kind === 'call' ? body.args : body.kind === 'fulfilled' ? body.value : undefined;
    const entry = makeEntry({ seq: this.#nextSeq++, at: this.#powers.clock(), ...body }, payload, body.kind === 'fulfilled' ? body.decoded : undefined);
    this.#entries.push(entry);
    for (const listener of this.#listeners) listener(entry);
    this.#pending.push(entry);
    if (this.#pending.length >= MAX_PENDING) void this.#startWrite();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      this.#powers.schedule(() => {
        this.#scheduled = false;
        void this.#startWrite();
      });
    }
    return entry;
  }

  /**
   * The exact bytes of the records numbered `seqs` (in journal order), as
   * written: each names the one before it. Past `maxBytes` in all, the
   * earliest are left out — the latest that fit are returned.
   */
  async records(seqs: readonly number[], maxBytes = Number.POSITIVE_INFINITY): Promise<Uint8Array[]> {
    if (seqs.some((seq) => !Number.isSafeInteger(seq) || seq < 0 || seq >= this.#entries.length)) throw new RangeError('no such record');
    // Those still pending go out now; the batches before them are queued already.
    await this.#startWrite();
    if (this.#failure) throw this.#failure;
    const frameOf = (seq: number) => {
      const start = this.#offsets[seq]!;
      return { start, length: (seq + 1 < this.#offsets.length ? this.#offsets[seq + 1]! : this.#fileLength) - start };
    };
    let first = seqs.length;
    for (let total = 0; first > 0; first--) {
      total += frameOf(seqs[first - 1]!).length - FRAME_HEADER;
      if (total > maxBytes) break;
    }
    const file = this.#powers.file;
    return Promise.all(
      seqs.slice(first).map(async (seq) => {
        const { start, length } = frameOf(seq);
        return (await file.readRange(start, length)).subarray(FRAME_HEADER);
      }),
    );
  }

  /**
   * Resolve once everything appended so far is in the file: what a `kill -9`
   * cannot take back (a power loss still can, until `flush`). Rejects if a
   * write failed. Concurrent waiters share the batch being written.
   */
  async written(): Promise<void> {
    await this.#startWrite();
    if (this.#failure) throw this.#failure;
  }

  /** Make everything appended so far durable and sealed; rejects if a write failed. */
  async flush(): Promise<void> {
    await this.#startWrite(true);
    await this.#powers.file.sync();
    if (this.#failure) throw this.#failure;
  }

  /** Flush and close; the file is closed even when the flush fails (a write refused, say), which then rejects. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.flush();
    } finally {
      this.#closed = true;
      this.#cancelSeal?.();
      await this.#powers.file.close();
    }
  }

  /**
   * Encode and link the pending batch synchronously (so sequence order is
   * file order), seal it if a seal is due (or `sealNow`), then queue one
   * write for it. If no seal was due, one is set for later.
   */
  #startWrite(sealNow = false): Promise<void> {
    const batch = this.#pending;
    if (batch.length === 0 && (!sealNow || this.#unsealed === 0)) return this.#writing;
    this.#pending = [];
    const at = this.#fileLength;
    const frames: Uint8Array[] = [];
    let head = this.#head;
    let last = 0;
    const push = (entry: Entry, sig?: Uint8Array) => {
      const bytes = encode(toRecord(entry, head, sig));
      last = this.#fileLength;
      this.#offsets[entry.seq] = this.#fileLength;
      this.#fileLength += FRAME_HEADER + bytes.length;
      frames.push(frame(bytes));
      head = recordCid(bytes);
    };
    for (const entry of batch) push(entry);
    this.#unsealed += batch.length;
    const now = this.#powers.clock();
    const setTimer = this.#powers.setTimer;
    if (head && this.#unsealed > 0 && (sealNow || !setTimer || now - this.#lastSeal >= SEAL_INTERVAL_MS)) {
      const seal = makeEntry({ seq: this.#nextSeq++, at: now, kind: 'seal', signer: this.#powers.identity.principal });
      push(seal, this.#powers.identity.sign(sealBytes(head)));
      this.#entries.push(seal);
      this.#unsealed = 0;
      this.#lastSeal = now;
      this.#cancelSeal?.();
      this.#cancelSeal = undefined;
    } else if (this.#unsealed > 0 && setTimer && !this.#cancelSeal) {
      this.#cancelSeal = setTimer(SEAL_INTERVAL_MS, () => {
        this.#cancelSeal = undefined;
        if (!this.#closed) void this.#startWrite(true);
      });
    }
    this.#head = head;
    const total = frames.reduce((n, f) => n + f.length, 0);
    const out = new Uint8Array(total);
    let offset = 0;
    for (const f of frames) {
      out.set(f, offset);
      offset += f.length;
    }
    this.#writing = this.#writing.then(async () => {
      if (this.#failure) return;
      try {
        await this.#powers.file.append(out, at);
      } catch (error) {
        this.#failure = new JournalError('ERR_WRITE', `could not write: ${(error as Error).message}`);
      }
    });
    this.#lastStart = last;
    if (this.#batchListeners.length > 0) {
      const end = this.batchEnd();
      const written = this.#writing.then(() => {
        if (this.#failure) throw this.#failure;
      });
      written.catch(() => {}); // a listener that does not wait for it must not leave it unhandled
      for (const listener of this.#batchListeners) listener(end, written);
    }
    return this.#writing;
  }
}

/** An in-memory journal file, for tests and memory kernels. */
export const memoryJournalFile = (initial: Uint8Array = new Uint8Array()): JournalFile & { bytes(): Uint8Array } => {
  let chunks: Uint8Array[] = [initial.slice()];
  let length = initial.length;
  /** The appended chunks as one array, joined only when something was appended since. */
  const joined = () => {
    if (chunks.length > 1) chunks = [concatBytes(...chunks)];
    return chunks[0]!;
  };
  const bytes = () => joined().slice();
  return {
    size: async () => length,
    readRange: async (offset, length, into) => {
      const bytes = joined().subarray(offset, offset + length);
      if (!into) return bytes.slice();
      into.set(bytes);
      return into.subarray(0, bytes.length);
    },
    append: async (more, at) => {
      if (at !== length) throw new JournalError('ERR_NOT_AT_END', `the journal file ends at byte ${length}, not ${at}`);
      chunks.push(more.slice());
      length += more.length;
    },
    truncate: async (to) => {
      chunks = [joined().slice(0, to)];
      length = chunks[0]!.length;
    },
    sync: async () => {},
    close: async () => {},
    bytes,
  };
};

/** An entry as plain data (its fields, and a call's arguments or a fulfilment's value as their bytes), and back: what a snapshot keeps of the calls still open. */
export const entryData = (entry: Entry): { fields: Record<string, unknown>; payload?: Uint8Array } => {
  const payload = encodedPayload(entry);
  return { fields: { ...(entry as object) }, ...(payload ? { payload } : {}) };
};
export const entryFromData = (data: { fields: Record<string, unknown>; payload?: Uint8Array }): Entry => makeEntry(data.fields, data.payload);
