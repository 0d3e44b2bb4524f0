/**
 * A journal file on disk (a home keeps its journal as segments of these: segments.ts). Opened with O_APPEND so every
 * write lands at the end even if something else moved the file offset.
 */
import { fstatSync } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Principal } from '../interface/ids.js';
import { Journal, JournalError, type Entry, type JournalBytes, type JournalFile, type ScanStart } from './journal.js';
import { openSegmentedJournal } from './segments.js';
import { readCheckpoint, startOf } from './checkpoint.js';

/** Up to `length` bytes from `offset` (into `into` when given): fewer only where the file ends. */
const readAt = async (handle: FileHandle, offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> => {
  const out = into ?? new Uint8Array(length);
  let read = 0;
  while (read < length) {
    const { bytesRead } = await handle.read(out, read, length - read, offset + read);
    if (bytesRead === 0) break;
    read += bytesRead;
  }
  return out.subarray(0, read);
};

/** A journal file's bytes through an open descriptor, a range at a time. */
export const journalBytes = (handle: FileHandle): JournalBytes => ({
  size: async () => (await handle.stat()).size,
  readRange: async (offset, length, into) => {
    const bytes = await readAt(handle, offset, length, into);
    if (bytes.length < length) throw new Error(`journal file ends before byte ${offset + length}`);
    return bytes;
  },
});

export const openFsJournalFile = async (path: string): Promise<JournalFile> => {
  const handle: FileHandle = await open(path, 'a+', 0o600);
  return {
    ...journalBytes(handle),
    append: async (bytes, at) => {
      // The home's lock makes this process the only writer; this checks it
      // holds: bytes that appeared (or vanished) since the journal was read
      // mean another writer, and appending would break the chain. fstat is a
      // system call on the descriptor, not a thread-pool round trip.
      const { size } = fstatSync(handle.fd);
      if (size !== at) throw new JournalError('ERR_NOT_AT_END', `the journal file is ${size} bytes, but this process wrote it up to byte ${at}: another process wrote to it`);
      let written = 0;
      while (written < bytes.length) {
        const { bytesWritten } = await handle.write(bytes, written, bytes.length - written);
        written += bytesWritten;
      }
    },
    truncate: (length) => handle.truncate(length),
    sync: () => handle.datasync(),
    close: () => handle.close(),
  };
};

/**
 * Read a journal another process (the home's running node) is writing, as it
 * grows — its segment directory (segments.ts), or a single file from before
 * segments: each call parses and verifies only the records appended since
 * the last, so a REPL's query costs what was written since, not the journal.
 * A record still being written is left for the next call. A journal with a
 * checkpoint (checkpoint.ts) is read from where it keeps records.
 */
export const followJournalFile = (path: string, signer: Principal): { entries(): Promise<readonly Entry[]> } => {
  const entries: Entry[] = [];
  let next: ScanStart | undefined;
  let floor = 0;
  let reading: Promise<readonly Entry[]> | undefined;
  const readMore = async (): Promise<readonly Entry[]> => {
    if (!next) {
      const checkpoint = await readFile(join(path, 'checkpoint')).then((bytes) => readCheckpoint(new Uint8Array(bytes), signer), (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
        throw error;
      });
      next = checkpoint ? startOf(checkpoint) : { seq: 0, offset: 0, head: null };
      floor = next.offset ?? 0;
    }
    const bytes = await openSegmentedJournal(path, { from: floor });
    try {
      if ((await bytes.size()) < (next.offset ?? 0)) throw new Error(`journal ${path} shrank while being read`);
      const parsed = await Journal.scanFile(bytes, signer, next);
      if (parsed.broken) throw parsed.broken;
      for (const entry of parsed.entries) entries.push(entry);
      next = { seq: next.seq + parsed.count, offset: parsed.goodLength, head: parsed.head };
      return entries;
    } finally {
      await bytes.close();
    }
  };
  // One read at a time: two at once would parse the same bytes twice.
  return { entries: () => (reading = (reading ?? Promise.resolve(entries)).then(readMore, readMore)) };
};
