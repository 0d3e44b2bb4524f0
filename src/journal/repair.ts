/**
 * `grid repair`: a journal whose chain breaks part way (two writers once
 * appended to it, or bytes were changed) keeps the records before the break
 * — every one verified as on open: frame, hash link, sequence, seal — and the
 * bytes from the break on are moved, unchanged, to a file beside the journal
 * named with the time, so nothing is thrown away. The caller holds the
 * home's lock.
 */
import { open, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Principal } from '../interface/ids.js';
import { Journal, type JournalBytes, type JournalFile, type ScanStart } from './journal.js';

/** Bytes moved aside at a time. */
const COPY_WINDOW = 8 * 1024 * 1024;

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

/** Whole length-framed records from `from` to the end, read by their headers only. */
const countFrames = async (file: JournalBytes, from: number, size: number): Promise<number> => {
  let count = 0;
  for (let offset = from; offset + 4 <= size; count++) {
    const header = await file.readRange(offset, 4);
    const end = offset + 4 + new DataView(header.buffer, header.byteOffset, 4).getUint32(0);
    if (end > size) break;
    offset = end;
  }
  return count;
};

/** A name for the moved bytes beside `path`: `journal.broken-2026-11-28T08-41-07.123Z`. */
const asideName = (path: string, now: number) => join(dirname(path), `${basename(path)}.broken-${new Date(now).toISOString().replace(/:/g, '-')}`);

/**
 * Keep the verified prefix of the journal `file` at `path` (sealed by
 * `signer`; read from `floor`, where records before it were dropped behind
 * a checkpoint) and move the rest aside, beside `path`. The moved bytes are written and synced to their own
 * file before the journal is cut, so a crash in between loses nothing (the
 * next repair moves them again, to a newer name).
 */
export const repairJournalFile = async (file: JournalFile, path: string, signer: Principal, now: number, floor?: ScanStart): Promise<RepairReport> => {
  const { entries, goodLength, broken, size } = await Journal.scanFile(file, signer, floor);
  if (!broken) return { kept: entries.length, keptBytes: goodLength, tornBytes: size - goodLength };
  const aside = asideName(path, now);
  const temp = `${aside}.tmp`;
  const out = await open(temp, 'wx', 0o600);
  try {
    for (let offset = goodLength; offset < size; offset += COPY_WINDOW) {
      await out.write(await file.readRange(offset, Math.min(COPY_WINDOW, size - offset)));
    }
    await out.sync();
  } finally {
    await out.close();
  }
  const records = await countFrames(file, goodLength, size);
  // Renamed into place only once whole: a file with this name holds everything that moved.
  await rename(temp, aside);
  await file.truncate(goodLength);
  await file.sync();
  return {
    kept: entries.length,
    keptBytes: goodLength,
    reason: broken.message,
    moved: { records, from: goodLength, to: size, file: aside },
    tornBytes: 0,
  };
};
