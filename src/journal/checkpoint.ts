/**
 * A journal checkpoint: what lets old segments go (home/retention.ts)
 * without losing what they said or the chain's verifiability. The node signs
 *
 *   start  where the kept journal begins: the record numbered `seq` at
 *          logical byte `offset`, which must link (`prev`) to `head`
 *   state  the CID of a block holding the kernel's snapshot (kernel/snapshot.ts)
 *          at a batch end at or after `start` (`seq`: the record it stands before)
 *
 * in one dag-cbor file, `<home>/journal/checkpoint`, replaced whole (written
 * beside and renamed). Opening verifies the signature with the node's key,
 * checks that the first kept record links to `start.head`, and verifies the
 * hash chain from there on; the snapshot stands for every record before
 * `state.seq`, the dropped ones included.
 */
import { decode, encode } from '../wire/index.js';
import { concatBytes, verify, type Identity } from '../identity/identity.js';
import type { Principal } from '../interface/ids.js';
import { JournalError, MAX_RECORD_BYTES, readRecord, type JournalBytes, type ScanStart } from './journal.js';

export const CHECKPOINT_FORMAT = 1;
const CHECKPOINT_DOMAIN = new TextEncoder().encode('promisegrid:journal-checkpoint:v1\n');
/** A checkpoint file is small; anything longer is not one. */
const MAX_CHECKPOINT_BYTES = 64 * 1024;

export interface Checkpoint {
  readonly format: number;
  readonly node: Principal;
  /** When it was made (ms since the epoch). */
  readonly at: number;
  readonly start: { readonly seq: number; readonly offset: number; readonly head: Uint8Array | null };
  readonly state: { readonly seq: number; readonly snapshot: string };
}

const unsignedBytes = (checkpoint: Checkpoint) =>
  concatBytes(CHECKPOINT_DOMAIN, encode([checkpoint.format, checkpoint.node, checkpoint.at, [checkpoint.start.seq, checkpoint.start.offset, checkpoint.start.head], [checkpoint.state.seq, checkpoint.state.snapshot]]));

/** A checkpoint as the bytes of its file, signed by `identity`. */
export const signCheckpoint = async (fields: Omit<Checkpoint, 'format' | 'node'>, identity: Identity): Promise<Uint8Array> => {
  const checkpoint: Checkpoint = { format: CHECKPOINT_FORMAT, node: identity.principal, ...fields };
  return encode({ ...checkpoint, sig: await identity.sign(unsignedBytes(checkpoint)) });
};

const refuse = (why: string) => new JournalError('ERR_CHECKPOINT', `the checkpoint ${why}; the segments before it are gone, so the journal cannot be verified without it: restore the file from a backup`);

/** A checkpoint file's bytes, checked: its shape, and its signature by `node` (this home's key). Refuses with one line. */
export const readCheckpoint = (bytes: Uint8Array, node: Principal): Checkpoint => {
  if (bytes.length > MAX_CHECKPOINT_BYTES) throw refuse(`is ${bytes.length} bytes (limit ${MAX_CHECKPOINT_BYTES})`);
  let value: Record<string, unknown>;
  try {
    value = decode(bytes) as Record<string, unknown>;
  } catch (error) {
    throw refuse(`does not decode: ${(error as Error).message}`);
  }
  const start = value?.start as Record<string, unknown> | undefined;
  const state = value?.state as Record<string, unknown> | undefined;
  const whole = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
  if (
    value?.format !== CHECKPOINT_FORMAT ||
    typeof value.node !== 'string' ||
    !whole(value.at) ||
    !whole(start?.seq) ||
    !whole(start?.offset) ||
    !(start?.head === null || start?.head instanceof Uint8Array) ||
    !whole(state?.seq) ||
    typeof state?.snapshot !== 'string' ||
    !(value.sig instanceof Uint8Array)
  ) {
    throw refuse('is not a checkpoint of this format');
  }
  const checkpoint: Checkpoint = Object.freeze({
    format: CHECKPOINT_FORMAT,
    node: value.node as Principal,
    at: value.at as number,
    start: Object.freeze({ seq: start!.seq as number, offset: start!.offset as number, head: start!.head as Uint8Array | null }),
    state: Object.freeze({ seq: state!.seq as number, snapshot: state!.snapshot as string }),
  });
  if (checkpoint.node !== node) throw refuse(`is signed by ${checkpoint.node}, not by this node (${node})`);
  if (!verify(node, unsignedBytes(checkpoint), value.sig as Uint8Array)) throw refuse('has a bad signature (it was changed after the node signed it)');
  if (checkpoint.state.seq < checkpoint.start.seq) throw refuse(`stands at record ${checkpoint.state.seq}, before the journal it keeps (${checkpoint.start.seq})`);
  return checkpoint;
};

/** The checkpoint's `start` as where the journal is read from. */
export const startOf = (checkpoint: Checkpoint): ScanStart => ({ seq: checkpoint.start.seq, offset: checkpoint.start.offset, head: checkpoint.start.head });

/** The record at `start.offset` is numbered `start.seq` and links to `start.head`, or this refuses: the kept journal is not the one the checkpoint names. */
export const checkStartRecord = async (file: JournalBytes, start: Checkpoint['start']): Promise<void> => {
  const where = `the first kept record (byte ${start.offset})`;
  if ((await file.size()) < start.offset + 4) {
    if ((await file.size()) === start.offset) return; // nothing kept after it yet
    throw new JournalError('ERR_CORRUPT', `${where} is missing`);
  }
  const header = await file.readRange(start.offset, 4);
  const length = new DataView(header.buffer, header.byteOffset, 4).getUint32(0);
  if (length > MAX_RECORD_BYTES || start.offset + 4 + length > (await file.size())) throw new JournalError('ERR_CORRUPT', `${where} declares ${length} bytes, past the journal's end`);
  let record: ReturnType<typeof readRecord>;
  try {
    record = readRecord(await file.readRange(start.offset + 4, length));
  } catch (error) {
    throw new JournalError('ERR_CORRUPT', `${where} does not decode: ${(error as Error).message}`);
  }
  const { entry, prev } = record;
  const same = prev === start.head || (prev !== null && start.head !== null && prev.length === start.head.length && prev.every((b, i) => b === start.head![i]));
  if (entry.seq !== start.seq || !same) throw new JournalError('ERR_CORRUPT', `${where} is record ${entry.seq}, and does not link to the head the checkpoint names (record ${start.seq})`);
};
