/**
 * `grid repair`: a journal whose chain breaks part way (two writers once
 * appended to it, or bytes were changed) keeps the records before the break
 * — every one verified as on open: frame, hash link, sequence, seal — and the
 * bytes from the break on are moved, unchanged, to a file beside the journal
 * named with the time, so nothing is thrown away. The caller holds the
 * home's lock.
 */
import { open, readFile, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Principal } from '../caps/ids.js';
import { Journal } from './journal.js';

export interface RepairReport {
  /** Records kept: the verified prefix. */
  readonly kept: number;
  readonly keptBytes: number;
  /** Why the record after the prefix failed; absent when the journal was whole. */
  readonly reason?: string;
  /** What was moved aside, if anything. */
  readonly moved?: {
    /** Whole frames in the moved bytes (they do not all verify: that is why they moved). */
    readonly records: number;
    /** Byte range [from, to) of the journal as it was. */
    readonly from: number;
    readonly to: number;
    readonly file: string;
  };
  /** A torn last frame left by a crash, cut off as any open does (not moved). */
  readonly tornBytes: number;
}

/** Whole length-framed records in `bytes`, read by their headers only. */
const countFrames = (bytes: Uint8Array): number => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let count = 0;
  for (let offset = 0; offset + 4 <= bytes.length; count++) {
    const end = offset + 4 + view.getUint32(offset);
    if (end > bytes.length) break;
    offset = end;
  }
  return count;
};

/** A name for the moved bytes beside `path`: `journal.broken-2026-11-28T08-41-07.123Z`. */
const asideName = (path: string, now: number) => join(dirname(path), `${basename(path)}.broken-${new Date(now).toISOString().replace(/:/g, '-')}`);

/**
 * Keep the verified prefix of the journal at `path` (sealed by `signer`) and
 * move the rest aside. The moved bytes are written and synced to their own
 * file before the journal is cut, so a crash in between loses nothing (the
 * next repair moves them again, to a newer name).
 */
export const repairJournalFile = async (path: string, signer: Principal, now: number): Promise<RepairReport> => {
  const bytes = new Uint8Array(
    await readFile(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return new Uint8Array(); // a home that never wrote a record
      throw error;
    }),
  );
  const { entries, goodLength, broken } = Journal.scan(bytes, signer);
  if (!broken) return { kept: entries.length, keptBytes: goodLength, tornBytes: bytes.length - goodLength };
  const rest = bytes.subarray(goodLength);
  const file = asideName(path, now);
  const temp = `${file}.tmp`;
  const aside = await open(temp, 'wx', 0o600);
  try {
    await aside.write(rest);
    await aside.sync();
  } finally {
    await aside.close();
  }
  // Renamed into place only once whole: a file with this name holds everything that moved.
  await rename(temp, file);
  const journal = await open(path, 'r+');
  try {
    await journal.truncate(goodLength);
    await journal.sync();
  } finally {
    await journal.close();
  }
  return {
    kept: entries.length,
    keptBytes: goodLength,
    reason: broken.message,
    moved: { records: countFrames(rest), from: goodLength, to: bytes.length, file },
    tornBytes: 0,
  };
};
