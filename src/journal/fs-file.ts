/**
 * The journal on disk: one append-only file. Opened with O_APPEND so every
 * write lands at the end even if something else moved the file offset.
 */
import { fstatSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Principal } from '../interface/ids.js';
import { Journal, JournalError, type Entry, type JournalBytes, type JournalFile } from './journal.js';

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
 * Read a journal file another process (the home's running node) is writing,
 * as it grows: each call parses and verifies only the records appended since
 * the last, so a REPL's query costs what was written since, not the journal.
 * A record still being written is left for the next call.
 */
export const followJournalFile = (path: string, signer: Principal): { entries(): Promise<readonly Entry[]> } => {
  const entries: Entry[] = [];
  let offset = 0;
  let head: Uint8Array | null = null;
  let reading: Promise<readonly Entry[]> | undefined;
  const readMore = async (): Promise<readonly Entry[]> => {
    const handle = await open(path, 'r');
    try {
      const bytes = journalBytes(handle);
      if ((await bytes.size()) < offset) throw new Error(`journal ${path} shrank while being read`);
      const parsed = await Journal.scanFile(bytes, signer, { head, seq: entries.length, offset });
      if (parsed.broken) throw parsed.broken;
      for (const entry of parsed.entries) entries.push(entry);
      offset = parsed.goodLength;
      head = parsed.head;
      return entries;
    } finally {
      await handle.close();
    }
  };
  // One read at a time: two at once would parse the same bytes twice.
  return { entries: () => (reading = (reading ?? Promise.resolve(entries)).then(readMore, readMore)) };
};
