/**
 * A snapshot of the kernel's derived state: what every part holds after the
 * journal's records up to a position, as plain data in one deterministic
 * CBOR item. A home keeps the latest one in its database (db/snapshots.ts),
 * so that opening it restores the parts and replays only the records after
 * that position: start time and memory no longer grow with the history.
 *
 * A snapshot is derived state and never the source of truth. It is taken at
 * a batch boundary of the journal (every record up to `position` applied,
 * none after), stored only once that batch is in the file, and thrown away
 * — the kernel rebuilt from the whole journal — when it cannot be read or no
 * longer matches the journal. Each part's `snapshot()` is exactly what its
 * `apply` derived from the records (nothing it learned otherwise, nothing
 * pending to be written), so a restored kernel equals a replayed one: equal
 * state, equal bytes (`Kernel.stateSnapshot`, what the tests compare).
 */
import { equals } from 'multiformats/bytes';
import { decodeTrusted, encode } from '../wire/cbor.js';
import { MAX_RECORD_BYTES, recordCid, type BatchEnd, type JournalBytes } from '../journal/journal.js';
import type { ReputationSnapshot } from '../journal/reputation.js';
import type { DocumentsSnapshot } from '../docs/documents.js';
import type { RevocationSnapshot } from './revocation-table.js';
import type { CallIndex } from './call-index.js';
import type { CacheSnapshot } from './pure-cache.js';
import type { ClosureTable } from './closure-table.js';
import type { Token } from '../interface/ids.js';
import type { GridValue } from '../closures/values.js';

/** Bumped when a part's snapshot changes shape: an older snapshot is then ignored and the kernel rebuilt. */
export const SNAPSHOT_FORMAT = 4;

export interface PartsSnapshot {
  readonly calls: ReturnType<CallIndex['snapshot']>;
  readonly reputation: ReputationSnapshot;
  readonly closures: ReturnType<ClosureTable['snapshot']>;
  readonly revocations: RevocationSnapshot;
  readonly policies: ReadonlyArray<{ layer: Token; index: number; state: GridValue }>;
  readonly docs: DocumentsSnapshot;
  readonly cache: CacheSnapshot;
}

export interface Snapshot {
  readonly format: number;
  /** The journal position the parts stand at: a batch's end (`last` lets an opener check that the journal still holds the record before it). */
  readonly position: BatchEnd;
  readonly parts: PartsSnapshot;
}

/** Where a home keeps its latest snapshot (db/snapshots.ts on Node; anything that holds bytes elsewhere). */
export interface SnapshotStore {
  load(): Uint8Array | undefined;
  save(bytes: Uint8Array): Promise<void>;
}

export const encodeSnapshot = (snapshot: Snapshot): Uint8Array => encode(snapshot);

/** A stored snapshot read back, or undefined if it is of another format or does not decode (the kernel is then rebuilt). */
export const decodeSnapshot = (bytes: Uint8Array): Snapshot | undefined => {
  try {
    const snapshot = decodeTrusted(bytes) as Snapshot;
    const position = snapshot?.position;
    if (snapshot?.format !== SNAPSHOT_FORMAT || !Number.isSafeInteger(position?.seq) || !Number.isSafeInteger(position?.offset) || !Number.isSafeInteger(position?.last)) return undefined;
    return snapshot;
  } catch {
    return undefined;
  }
};

/**
 * A stored snapshot, if the journal still holds the record it stands after
 * (the file reaches its position and the record there hashes to its head);
 * undefined — the kernel then replays the whole journal — if there is none,
 * it does not decode, or the journal lost or changed that record (a torn
 * tail cut, a repair, another journal put in its place). `start`: the
 * file's first byte kept (a checkpoint drops the records before it).
 */
export const snapshotMatching = async (stored: Uint8Array | undefined, file: JournalBytes, start = 0): Promise<Snapshot | undefined> => {
  const snapshot = stored && decodeSnapshot(stored);
  if (!snapshot) return undefined;
  const { offset, last, head } = snapshot.position;
  // One record lies between `last` and `offset`: no more than the longest a record can be is read to check it.
  if (head === null || last < start || last >= offset || offset - last > 4 + MAX_RECORD_BYTES || (await file.size()) < offset) return undefined;
  const frame = await file.readRange(last, offset - last);
  const body = frame.subarray(4);
  if (new DataView(frame.buffer, frame.byteOffset).getUint32(0) !== body.length || !equals(recordCid(body), head)) return undefined;
  return snapshot;
};
