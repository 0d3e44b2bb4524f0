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
/** Bytes `read` takes from the file at a time (a longer record is read whole on its own). */
const STREAM_WINDOW = 256 * 1024;
/** The latest records kept in memory for `recent` (the web page's tail); older ones are read from the file. */
export const RECENT_RECORDS = 4096;
/** Where every MARK_STRIDE-th record starts is kept in memory: finding any other costs reading at most this many frame headers. */
export const MARK_STRIDE = 256;
/** Bytes read for a record whose length is not known yet: most records fit. */
const RECORD_GUESS = 1024;
/** Records this close together are read in one read by `recordsAt`. */
const COALESCE_BYTES = 64 * 1024;

/** One batch as it landed in the file: its records (seals included), where each starts, and the position after it. */
export interface WrittenBatch {
  readonly entries: readonly Entry[];
  readonly offsets: readonly number[];
  readonly position: ScanStart;
}

export interface OpenedJournal {
  journal: Journal;
  /** Bytes of a torn tail that were cut off at open (0 if none). */
  droppedBytes: number;
}

export class Journal {
  readonly #powers: JournalPowers;
  #pending: Entry[] = [];
  /** The latest records (at most RECENT_RECORDS after a trim), oldest first. */
  #recent: Entry[] = [];
  /** Binary CID of the last record encoded for writing. */
  #head: Uint8Array | null;
  #nextSeq: number;
  #scheduled = false;
  /** Records written since the last seal, and when that seal was made. */
  #unsealed = 0;
  #lastSeal = Number.NEGATIVE_INFINITY;
  #cancelSeal: (() => void) | undefined;
  /** The seal being signed, while it is: no batch is cut until it lands. */
  #signing: Promise<void> | undefined;
  #writing: Promise<void> = Promise.resolve();
  #failure: Error | undefined;
  #closed = false;
  /** Where record `k * MARK_STRIDE` starts, by k (and where the scan at open started); the rest are found by walking frames. */
  readonly #marks = new Map<number, { seq: number; offset: number }>();
  /** The end of the records encoded so far (the file's length once their writes land). */
  #fileLength: number;
  /** The position after the last record whose write has resolved. */
  #written: ScanStart;
  readonly #listeners: Array<(entry: Entry) => void> = [];
  readonly #batchListeners: Array<(end: BatchEnd, written: Promise<void>) => void> = [];
  /** Where the last record cut into a batch starts. */
  #lastStart = 0;
  readonly #writtenListeners: Array<(batch: WrittenBatch) => void> = [];

  /** The first record kept: those before it were dropped behind a checkpoint (segments.ts); the start of the journal if none were. */
  #floor: ScanStart = START;

  private constructor(powers: JournalPowers, position: ScanStart & { last?: number }, floor: ScanStart = START) {
    this.#powers = powers;
    this.#head = position.head;
    this.#nextSeq = position.seq;
    this.#fileLength = position.offset ?? 0;
    this.#written = position;
    this.#floor = floor;
    this.#mark(floor.seq, floor.offset ?? 0);
    this.#lastStart = position.last ?? 0;
  }

  /**
   * Open a journal file, verifying its records from `from` (the record
   * numbered `from.seq`, at byte `from.offset`, linking to `from.head`) to
   * the end; from the start by default. Nothing of the records is kept but
   * the position at the end (and a sparse table of where records start).
   * `floor`: where the kept records begin when older ones were dropped behind
   * a checkpoint (the record numbered `floor.seq` at byte `floor.offset`):
   * nothing before it is read; `from` defaults to it.
   */
  static async open(powers: JournalPowers, options: { from?: ScanStart; floor?: ScanStart } = {}): Promise<OpenedJournal> {
    const floor = options.floor ?? START;
    const from = options.from ?? floor;
    if (from.seq < floor.seq) throw new RangeError(`journal: cannot open from record ${from.seq}, before the first kept (${floor.seq})`);
    const marks: Array<{ seq: number; offset: number }> = [];
    // Where the last record starts: a snapshot's position says so when nothing follows it.
    let lastStart = (from as Partial<BatchEnd>).last ?? 0;
    let parsed: Awaited<ReturnType<typeof Journal.scanFile>>;
    try {
      parsed = await Journal.scanFile(powers.file, powers.identity.principal, from, (part) => {
        lastStart = part.offsets.at(-1) ?? lastStart;
        part.entries.forEach((entry, i) => {
          if (entry.seq % MARK_STRIDE === 0) marks.push({ seq: entry.seq, offset: part.offsets[i]! });
        });
      });
      if (parsed.broken) throw parsed.broken;
    } catch (error) {
      await powers.file.close();
      throw error;
    }
    const { head, goodLength, unsealed, size, count, last } = parsed;
    const droppedBytes = size - goodLength;
    if (droppedBytes > 0) await powers.file.truncate(goodLength);
    const journal = new Journal(powers, { seq: from.seq + count, offset: goodLength, head, last: lastStart }, floor);
    journal.#mark(from.seq, from.offset ?? 0);
    for (const mark of marks) journal.#mark(mark.seq, mark.offset);
    if (last) journal.#recent.push(...last);
    // Records that made it to disk after the last seal are intact (their
    // links check out) but unsigned: vouch for them now.
    journal.#unsealed = unsealed;
    if (unsealed > 0) await journal.flush();
    return { journal, droppedBytes };
  }

  /**
   * A journal file another process (the home's running node) writes, read
   * as it grows: `refresh` verifies the records appended since the last
   * look and hands them to `onWritten` listeners (a record index), keeping
   * none. It is read only: `append` refuses. From `from` (a position the
   * home's record index stands at), only the records after it are read;
   * `floor`: where the kept records begin (a checkpoint's start).
   */
  static follow(file: JournalBytes & { close(): Promise<void> }, signer: Principal, from: ScanStart = START, floor: ScanStart = START): Journal & { refresh(): Promise<void> } {
    const refuse = async () => {
      throw new JournalError('ERR_READ_ONLY', 'this journal is followed, not written');
    };
    const identity = { principal: signer, publicKey: new Uint8Array(), sign: () => new Uint8Array() } as unknown as Identity;
    // From a position at or after the first record kept (`floor`: records before it were dropped behind a checkpoint).
    const start = from.seq < floor.seq ? floor : from;
    const journal = new Journal({ file: { ...file, append: refuse, truncate: refuse, sync: async () => {} }, identity, clock: Date.now, schedule: setTimeout }, start, floor);
    journal.#mark(start.seq, start.offset ?? 0);
    journal.#following = true;
    return Object.assign(journal, { refresh: () => (journal.#refreshing = journal.#refreshing.then(() => journal.#refresh(), () => journal.#refresh())) });
  }

  #following = false;
  #refreshing: Promise<void> = Promise.resolve();

  async #refresh(): Promise<void> {
    const file = this.#powers.file;
    const from = this.#written;
    if ((await file.size()) < (from.offset ?? 0)) throw new JournalError('ERR_CORRUPT', `the journal file shrank below byte ${from.offset} while being followed`);
    const parsed = await Journal.scanFile(file, this.#powers.identity.principal, from, (part) => {
      part.entries.forEach((entry, i) => {
        if (entry.seq % MARK_STRIDE === 0) this.#mark(entry.seq, part.offsets[i]!);
      });
      for (const entry of part.entries.slice(-RECENT_RECORDS)) this.#remember(entry);
      this.#written = part.position;
      this.#nextSeq = part.position.seq;
      this.#head = part.position.head;
      this.#fileLength = part.position.offset ?? 0;
      for (const listener of this.#writtenListeners) listener(part);
    });
    if (parsed.broken) throw parsed.broken;
  }

  #mark(seq: number, offset: number) {
    const k = Math.floor(seq / MARK_STRIDE);
    const known = this.#marks.get(k);
    if (!known || known.seq > seq) this.#marks.set(k, { seq, offset });
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
  static async scanFile(file: JournalBytes, signer?: Principal, after: ScanStart = START, each?: (part: WrittenBatch) => void) {
    const size = await file.size();
    const entries: Entry[] = [];
    const offsets: number[] = [];
    /** With `each`, the records go to it instead (with where each starts) and only the last window's stay, in `last`. */
    let last: Entry[] | undefined;
    let count = 0;
    let { head } = after;
    let offset = after.offset ?? 0;
    let unsealed = 0;
    let broken: JournalError | undefined;
    while (offset < size) {
      const length = Math.min(READ_WINDOW, size - offset);
      const part = Journal.scan(await file.readRange(offset, length), signer, { head, seq: after.seq + count, offset });
      count += part.entries.length;
      if (each) {
        if (part.entries.length > 0) {
          each({ entries: part.entries, offsets: part.offsets, position: { seq: after.seq + count, offset: offset + part.goodLength, head: part.head } });
          last = part.entries.slice(-RECENT_RECORDS);
        }
      } else {
        for (const entry of part.entries) entries.push(entry);
        for (const at of part.offsets) offsets.push(at);
      }
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
    return { entries, head, goodLength: offset, unsealed, offsets, broken, size, count, last };
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

  /** The number of records so far (including those not yet on disk): the next record's sequence number. */
  get length(): number {
    return this.#nextSeq;
  }

  /** The position after the last record written to the file: the next record's number, where it will start, and the CID it will link to. */
  position(): ScanStart {
    return this.#written;
  }

  /** The first record kept (its number, where it starts, the CID it links to): records before it were dropped behind a checkpoint. */
  floor(): ScanStart {
    return this.#floor;
  }

  /**
   * Records before `floor` are no longer read (their segments are being
   * dropped behind a checkpoint that summarizes them): reads start there,
   * and asking for an earlier record finds none.
   */
  dropBefore(floor: ScanStart): void {
    if (floor.seq <= this.#floor.seq) return;
    if (floor.seq > this.#written.seq) throw new RangeError(`journal: record ${floor.seq} is not written yet`);
    this.#floor = Object.freeze({ seq: floor.seq, offset: floor.offset ?? 0, head: floor.head });
    for (const [k, mark] of this.#marks) if (mark.seq < floor.seq) this.#marks.delete(k);
    this.#mark(floor.seq, floor.offset ?? 0);
  }

  /** The latest `n` records (at most RECENT_RECORDS), oldest first, including those not yet on disk. */
  recent(n: number = RECENT_RECORDS): readonly Entry[] {
    return n <= 0 ? [] : this.#recent.slice(-Math.min(n, RECENT_RECORDS));
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

  /** Be told of every batch once its write to the file has resolved (seals included), in file order. */
  onWritten(listener: (batch: WrittenBatch) => void): void {
    this.#writtenListeners.push(listener);
  }

  append(body: AppendBody): Entry {
    if (this.#closed) throw new JournalError('ERR_CLOSED', 'journal is closed');
    if (this.#following) throw new JournalError('ERR_READ_ONLY', 'this journal is followed, not written');
    const payload = body.kind === 'call' ? body.args : body.kind === 'fulfilled' ? body.value : undefined;
    const entry = makeEntry({ seq: this.#nextSeq++, at: this.#powers.clock(), ...body }, payload, body.kind === 'fulfilled' ? body.decoded : undefined);
    this.#remember(entry);
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

  #remember(entry: Entry) {
    this.#recent.push(entry);
    if (this.#recent.length >= 2 * RECENT_RECORDS) this.#recent = this.#recent.slice(-RECENT_RECORDS);
  }

  /**
   * Every record from `from` (a sequence number, or a position: the record
   * numbered `from.seq` at byte `from.offset`) to the last appended, read
   * from the file a window at a time; what is still pending is written first.
   * Nothing is kept: a reader that holds on to the records pays for them.
   */
  async *read(from: ScanStart | number = 0): AsyncGenerator<Entry, void, undefined> {
    for await (const batch of this.batches(from)) yield* batch.entries;
  }

  /**
   * `read` a window at a time: each batch with where its records start and
   * the position after it. From a position (not a number), the first
   * record must link to `from.head`, else this refuses (ERR_CORRUPT): the
   * position is not this journal's.
   */
  async *batches(from: ScanStart | number = 0): AsyncGenerator<WrittenBatch, void, undefined> {
    if (this.#closed) throw new JournalError('ERR_CLOSED', 'journal is closed');
    // Records dropped behind a checkpoint are not there to read: a read from before the floor starts at it.
    if ((typeof from === 'number' ? from : from.seq) < this.#floor.seq) from = this.#floor;
    const target = typeof from === 'number' ? from : from.seq;
    if (!Number.isSafeInteger(target) || target < 0) throw new RangeError(`no such record: ${String(target)}`);
    if (target >= this.#nextSeq) return;
    await this.#landed(target);
    let { seq, offset } = typeof from === 'number' ? await this.#locate(target) : { seq: from.seq, offset: from.offset ?? 0 };
    let linkTo = typeof from === 'number' ? undefined : from.head;
    const file = this.#powers.file;
    while (seq < this.#nextSeq) {
      if (seq >= this.#written.seq) await this.#landed(seq);
      const end = this.#written.offset ?? 0;
      if (!Number.isSafeInteger(offset) || offset < 0 || offset + FRAME_HEADER > end) throw new JournalError('ERR_CORRUPT', `no record ${seq} at byte ${offset}: the journal's records end at byte ${end}`);
      let window = await file.readRange(offset, Math.min(STREAM_WINDOW, end - offset));
      const first = new DataView(window.buffer, window.byteOffset, window.byteLength).getUint32(0);
      if (first > MAX_RECORD_BYTES || offset + FRAME_HEADER + first > end) throw new JournalError('ERR_CORRUPT', `record ${seq} at byte ${offset} declares ${first} bytes, past the journal's end`);
      // A record longer than the window is read on its own.
      if (FRAME_HEADER + first > window.length) window = await file.readRange(offset, FRAME_HEADER + first);
      const view = new DataView(window.buffer, window.byteOffset, window.byteLength);
      const entries: Entry[] = [];
      const offsets: number[] = [];
      let at = 0;
      let body: Uint8Array | undefined;
      while (at + FRAME_HEADER <= window.length) {
        const length = view.getUint32(at);
        if (at + FRAME_HEADER + length > window.length) break;
        body = window.subarray(at + FRAME_HEADER, at + FRAME_HEADER + length);
        const { entry, prev } = readRecord(body);
        if (entry.seq !== seq) throw new JournalError('ERR_CORRUPT', `record at byte ${offset + at} has sequence ${entry.seq}, expected ${seq}`);
        if (linkTo !== undefined) {
          if (!sameLink(prev, linkTo)) throw new JournalError('ERR_CORRUPT', `record ${seq} at byte ${offset + at} does not link to the position given`);
          linkTo = undefined;
        }
        if (seq >= target) {
          entries.push(entry);
          offsets.push(offset + at);
        }
        at += FRAME_HEADER + length;
        seq += 1;
      }
      offset += at;
      yield { entries, offsets, position: { seq, offset, head: recordCid(body!) } };
    }
  }

  /** The exact bytes of the records at `locations` (each numbered `seq`, its frame at byte `offset`, as an index recorded them), in that order. */
  async recordsAt(locations: readonly { seq: number; offset: number }[]): Promise<Uint8Array[]> {
    if (locations.some(({ seq }) => !Number.isSafeInteger(seq) || seq < 0 || seq >= this.#nextSeq)) throw new RangeError('no such record');
    const dropped = locations.find(({ seq }) => seq < this.#floor.seq);
    if (dropped) throw new JournalError('ERR_DROPPED', `record ${dropped.seq} is before the checkpoint: the journal keeps records from ${this.#floor.seq}`);
    if (locations.some(({ seq }) => seq >= this.#written.seq)) await this.#startWrite();
    if (this.#failure) throw this.#failure;
    const file = this.#powers.file;
    const end = this.#written.offset ?? 0;
    for (const { seq, offset } of locations) {
      if (!Number.isSafeInteger(offset) || offset < 0 || offset + FRAME_HEADER > end) throw new JournalError('ERR_CORRUPT', `no record ${seq} at byte ${offset}: the journal's records end at byte ${end}`);
    }
    // Records near each other (a call and what settled it, mostly) are read in one read of the range they span.
    const order = locations.map((_, i) => i).sort((a, b) => locations[a]!.offset - locations[b]!.offset);
    const out = new Array<Uint8Array>(locations.length);
    const groups: Array<{ from: number; to: number; start: number }> = [];
    for (let i = 0; i < order.length; ) {
      const start = locations[order[i]!]!.offset;
      let j = i;
      while (j + 1 < order.length && locations[order[j + 1]!]!.offset + RECORD_GUESS - start <= COALESCE_BYTES) j++;
      groups.push({ from: i, to: j, start });
      i = j + 1;
    }
    await Promise.all(
      groups.map(async ({ from, to, start }) => {
        const bytes = await file.readRange(start, Math.min(end, locations[order[to]!]!.offset + RECORD_GUESS) - start);
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        for (let k = from; k <= to; k++) {
          const { seq, offset } = locations[order[k]!]!;
          const at = offset - start;
          const length = view.getUint32(at);
          if (offset + FRAME_HEADER + length > end) throw new JournalError('ERR_CORRUPT', `record ${seq} at byte ${offset} declares ${length} bytes, past the journal's end`);
          // A longer record than the read took is read on its own.
          out[order[k]!] =
            at + FRAME_HEADER + length <= bytes.length ? bytes.slice(at + FRAME_HEADER, at + FRAME_HEADER + length) : (await file.readRange(offset + FRAME_HEADER, length));
        }
      }),
    );
    return out;
  }

  /** Until record `seq` is in the file (written first if it is still pending); rejects if a write failed. */
  async #landed(seq: number): Promise<void> {
    if (seq < this.#written.seq) return;
    await this.#startWrite();
    if (this.#failure) throw this.#failure;
    if (seq >= this.#written.seq) throw new JournalError('ERR_CLOSED', `record ${seq} was not written`);
  }

  /**
   * Where else to find where records start (a record index, which keeps
   * every MARK_STRIDE-th): the nearest it knows at or before `seq`. A journal
   * opened from a position knows none before it.
   */
  locateWith(locator: (seq: number) => { seq: number; offset: number } | undefined): void {
    this.#locator = locator;
  }
  #locator: ((seq: number) => { seq: number; offset: number } | undefined) | undefined;

  /** Where record `seq` (already in the file) starts: from the nearest mark before it, walking frame headers. */
  async #locate(seq: number): Promise<{ seq: number; offset: number }> {
    const floor = { seq: this.#floor.seq, offset: this.#floor.offset ?? 0 };
    if (seq < floor.seq) throw new JournalError('ERR_DROPPED', `record ${seq} is before the checkpoint: the journal keeps records from ${floor.seq}`);
    const lowest = Math.floor(floor.seq / MARK_STRIDE);
    let k = Math.floor(seq / MARK_STRIDE);
    let mark = this.#marks.get(k);
    while (!mark || mark.seq > seq || mark.seq < floor.seq) {
      if (k <= lowest) {
        mark = floor;
        break;
      }
      mark = this.#marks.get(--k);
    }
    const known = seq - mark.seq > 0 ? this.#locator?.(seq) : undefined;
    if (known && known.seq <= seq && known.seq > mark.seq) mark = known;
    let { seq: at, offset } = mark;
    const header = new Uint8Array(FRAME_HEADER);
    const file = this.#powers.file;
    // Frame headers read a window at a time.
    let window: Uint8Array = new Uint8Array(0);
    let windowStart = 0;
    while (at < seq) {
      if (offset < windowStart || offset + FRAME_HEADER > windowStart + window.length) {
        windowStart = offset;
        window = await file.readRange(offset, Math.min(STREAM_WINDOW, (this.#written.offset ?? 0) - offset));
        if (window.length < FRAME_HEADER) window = await file.readRange(offset, FRAME_HEADER, header);
      }
      const length = new DataView(window.buffer, window.byteOffset, window.byteLength).getUint32(offset - windowStart);
      offset += FRAME_HEADER + length;
      at += 1;
      if (at % MARK_STRIDE === 0) this.#mark(at, offset);
    }
    return { seq, offset };
  }

  /**
   * The exact bytes of the records numbered `seqs` (in journal order), as
   * written: each names the one before it. Past `maxBytes` in all, the
   * earliest are left out — the latest that fit are returned. Records
   * dropped behind a checkpoint are left out too (they are the earliest).
   */
  async records(seqs: readonly number[], maxBytes = Number.POSITIVE_INFINITY): Promise<Uint8Array[]> {
    if (seqs.some((seq) => !Number.isSafeInteger(seq) || seq < 0 || seq >= this.#nextSeq)) throw new RangeError('no such record');
    seqs = seqs.filter((seq) => seq >= this.#floor.seq);
    // Those still pending go out now; the batches before them are queued already.
    await this.#startWrite();
    if (this.#failure) throw this.#failure;
    const file = this.#powers.file;
    const frames: Array<{ start: number; length: number }> = [];
    const header = new Uint8Array(FRAME_HEADER);
    for (const seq of seqs) {
      const { offset } = await this.#locate(seq);
      const bytes = await file.readRange(offset, FRAME_HEADER, header);
      frames.push({ start: offset, length: FRAME_HEADER + new DataView(bytes.buffer, bytes.byteOffset, FRAME_HEADER).getUint32(0) });
    }
    let first = seqs.length;
    for (let total = 0; first > 0; first--) {
      total += frames[first - 1]!.length - FRAME_HEADER;
      if (total > maxBytes) break;
    }
    return Promise.all(frames.slice(first).map(async ({ start, length }) => (await file.readRange(start, length)).subarray(FRAME_HEADER)));
  }

  /** The records numbered `seqs`, read from the file (in the order given). */
  async recordsBySeq(seqs: readonly number[]): Promise<Entry[]> {
    return (await this.records(seqs)).map((bytes) => readRecord(bytes).entry);
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
   *
   * Signing is asynchronous (a tab's key is reachable only through
   * WebCrypto), and the next batch links to the seal's CID, which includes
   * its signature: so while a seal is being signed no further batch is cut,
   * and the batch with its seal is committed as one once the signature comes.
   */
  #startWrite(sealNow = false): Promise<void> {
    if (this.#signing) return this.#signing.then(() => this.#startWrite(sealNow));
    const batch = this.#pending;
    if (batch.length === 0 && (!sealNow || this.#unsealed === 0)) return this.#writing;
    this.#pending = [];
    const at = this.#fileLength;
    const frames: Uint8Array[] = [];
    const written: Entry[] = [];
    const offsets: number[] = [];
    let head = this.#head;
    let last = 0;
    const push = (entry: Entry, sig?: Uint8Array) => {
      const bytes = encode(toRecord(entry, head, sig));
      last = this.#fileLength;
      written.push(entry);
      offsets.push(this.#fileLength);
      if (entry.seq % MARK_STRIDE === 0) this.#mark(entry.seq, this.#fileLength);
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
      // Among the recent records in its place, before any appended while it is signed.
      this.#remember(seal);
      this.#unsealed = 0;
      this.#lastSeal = now;
      this.#cancelSeal?.();
      this.#cancelSeal = undefined;
      const signing = this.#powers.identity.sign(sealBytes(head)).then(
        (signature) => {
          push(seal, signature);
          this.#commit(at, frames, written, offsets, head, last);
        },
        (error: unknown) => {
          this.#failure ??= new JournalError('ERR_WRITE', `could not seal: ${(error as Error)?.message ?? String(error)}`);
        },
      );
      this.#signing = signing.finally(() => {
        this.#signing = undefined;
      });
      return this.#signing.then(() => this.#writing);
    }
    if (this.#unsealed > 0 && setTimer && !this.#cancelSeal) {
      this.#cancelSeal = setTimer(SEAL_INTERVAL_MS, () => {
        this.#cancelSeal = undefined;
        if (!this.#closed) void this.#startWrite(true);
      });
    }
    this.#commit(at, frames, written, offsets, head, last);
    return this.#writing;
  }

  /** Make a cut batch the journal's end: queue its write at byte `at` and tell the batch listeners. */
  #commit(at: number, frames: readonly Uint8Array[], written: readonly Entry[], offsets: readonly number[], head: Uint8Array | null, last: number): void {
    this.#head = head;
    const total = frames.reduce((n, f) => n + f.length, 0);
    const out = new Uint8Array(total);
    let offset = 0;
    for (const f of frames) {
      out.set(f, offset);
      offset += f.length;
    }
    // Where this batch ends, which is not the journal's end when records were appended while its seal was signed.
    const end: BatchEnd = { seq: written.at(-1)!.seq + 1, offset: this.#fileLength, head, last };
    const position: ScanStart = Object.freeze({ seq: end.seq, offset: end.offset, head });
    this.#writing = this.#writing.then(async () => {
      if (this.#failure) return;
      try {
        await this.#powers.file.append(out, at);
      } catch (error) {
        this.#failure = new JournalError('ERR_WRITE', `could not write: ${(error as Error).message}`);
        return;
      }
      this.#written = position;
      const landed: WrittenBatch = Object.freeze({ entries: written, offsets, position });
      for (const listener of this.#writtenListeners) {
        try {
          listener(landed);
        } catch {
          // A listener's failure is its own (an index rebuilt at the next open): the journal has the records.
        }
      }
    });
    this.#lastStart = last;
    // Listeners derive state standing exactly at `end` (a snapshot): not so if records came after it meanwhile, which were taken in as they came; a later batch will do.
    if (this.#batchListeners.length > 0 && end.seq === this.#nextSeq) {
      const inFile = this.#writing.then(() => {
        if (this.#failure) throw this.#failure;
      });
      inFile.catch(() => {}); // a listener that does not wait for it must not leave it unhandled
      for (const listener of this.#batchListeners) listener(end, inFile);
    }
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
