/**
 * The journal on disk: one append-only file. Opened with O_APPEND so every
 * write lands at the end even if something else moved the file offset.
 */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import type { JournalFile } from './journal.js';

export const openFsJournalFile = async (path: string): Promise<JournalFile> => {
  const handle: FileHandle = await open(path, 'a+', 0o600);
  return {
    read: async () => new Uint8Array(await readFile(path)),
    readRange: async (offset, length) => {
      const out = new Uint8Array(length);
      let read = 0;
      while (read < length) {
        const { bytesRead } = await handle.read(out, read, length - read, offset + read);
        if (bytesRead === 0) throw new Error(`journal file ends before byte ${offset + length}`);
        read += bytesRead;
      }
      return out;
    },
    append: async (bytes) => {
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
