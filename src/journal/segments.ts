/**
 * The journal on disk as segments: `<home>/journal/` holds files of bounded
 * size, each named by the logical byte where it starts (16 digits, zero
 * padded), which together are one logical byte space (a `JournalFile`). An
 * append goes to the last segment; once that is over the segment size, the
 * next batch starts a new one, so a segment holds whole records. Old
 * segments can then be dropped whole behind a checkpoint (checkpoint.ts,
 * home/retention.ts) while logical offsets stay what they were.
 *
 * A home written before segments has one file `<home>/journal`: the writer
 * (holding the home's lock) moves it into the directory as its first
 * segment (`migrateJournalFile`); a reader that finds the file reads it as
 * that one segment.
 */
import { fstatSync } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { JournalError, type JournalFile } from './journal.js';

/** A segment is closed (the next batch starts a new one) once it holds this many bytes. */
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Read segments kept open at once (the last, being written, always is). */
const MAX_OPEN_SEGMENTS = 32;
const NAME_DIGITS = 16;
const SEGMENT_NAME = /^\d{16}$/;

export const segmentName = (start: number): string => String(start).padStart(NAME_DIGITS, '0');

/**
 * The segment size this process uses: GRID_JOURNAL_SEGMENT_BYTES (whole
 * bytes, at least 1 KiB) sets it, so a test can roll segments with little
 * data; else DEFAULT_SEGMENT_BYTES.
 */
export const segmentBytesFromEnv = (env: NodeJS.ProcessEnv = process.env): number => {
  const given = env.GRID_JOURNAL_SEGMENT_BYTES;
  if (given === undefined || given === '') return DEFAULT_SEGMENT_BYTES;
  const bytes = Number(given);
  if (!Number.isSafeInteger(bytes) || bytes < 1024) throw new TypeError(`GRID_JOURNAL_SEGMENT_BYTES is whole bytes, at least 1024 (got ${JSON.stringify(given)})`);
  return bytes;
};

interface Segment {
  readonly start: number;
  size: number;
  readonly path: string;
  handle?: Promise<FileHandle>;
  users: number;
  used: number;
  dropped?: boolean;
}

export interface SegmentInfo {
  readonly start: number;
  readonly size: number;
  readonly path: string;
}

export interface SegmentedJournalFile extends JournalFile {
  /** The segments as they stand, oldest first. */
  segments(): readonly SegmentInfo[];
  /** Where the kept bytes begin: the first segment's start. */
  start(): number;
  /** Whether `close` was called. */
  closed(): boolean;
  /**
   * Remove every segment before the one starting at byte `offset` (never
   * the last): moved into `archive` if given, else deleted. Works after close too.
   */
  dropBefore(offset: number, archive?: string): Promise<SegmentInfo[]>;
}

const syncDir = async (dir: string) => {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
};

/** The segment files in `dir`, oldest first, checked to follow each other with no gap. */
export const listSegments = async (dir: string): Promise<SegmentInfo[]> => {
  const names = (await readdir(dir)).filter((name) => SEGMENT_NAME.test(name)).sort();
  const out: SegmentInfo[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const found = await stat(path).catch((error: NodeJS.ErrnoException) => {
      // Dropped since it was listed (a node letting old segments go while this reads): a gap it leaves is caught below.
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (found) out.push({ start: Number(name), size: found.size, path });
  }
  for (let i = 1; i < out.length; i++) {
    const before = out[i - 1]!;
    if (before.start + before.size !== out[i]!.start) {
      throw new JournalError('ERR_CORRUPT', `segment ${segmentName(out[i]!.start)} starts at byte ${out[i]!.start}, but the one before it ends at byte ${before.start + before.size}: a segment is missing or was cut`);
    }
  }
  return out;
};

/**
 * Move a home's single journal file (the layout before segments) into the
 * directory `path` as its first segment; create the directory if there is
 * neither. Needs the home's lock. Staged through `path.segments` so a crash
 * at any step leaves what the next call finishes.
 */
export const migrateJournalFile = async (path: string): Promise<void> => {
  const staging = `${path}.segments`;
  const found = await lstat(path).catch(() => undefined);
  if (found?.isDirectory()) return;
  if (found?.isFile()) {
    await mkdir(staging, { recursive: true, mode: 0o700 });
    await rename(path, join(staging, segmentName(0)));
    await syncDir(staging);
  }
  const staged = await lstat(staging).catch(() => undefined);
  if (staged?.isDirectory()) await rename(staging, path);
  else await mkdir(path, { recursive: true, mode: 0o700 });
  await syncDir(join(path, '..'));
};

/**
 * The journal at `path` (a segment directory, or a single file from before
 * segments) as one logical file. `write`: this process holds the home's lock
 * and appends (it keeps an account of the last segment's size, and rolls to a
 * new segment past `segmentBytes`); else it reads a journal another process
 * writes, looking again at the segments whenever `size` is asked.
 * `from`: segments wholly before this byte are dropped now (a drop a crash
 * interrupted); a journal that does not reach back to it refuses.
 */
export const openSegmentedJournal = async (path: string, options: { write?: boolean; segmentBytes?: number; from?: number } = {}): Promise<SegmentedJournalFile> => {
  const write = options.write === true;
  const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  const single = (await lstat(path).catch(() => undefined))?.isFile() === true;
  if (single && write) throw new JournalError('ERR_LAYOUT', `the journal at ${path} is one file: migrate it first`);
  let closed = false;
  let segments: Segment[] = [];
  let tick = 0;
  const toSegment = (info: SegmentInfo): Segment => ({ ...info, users: 0, used: 0 });
  const relist = async () => {
    if (single) {
      const size = (await stat(path)).size;
      if (segments.length === 0) segments = [toSegment({ start: 0, size, path })];
      else segments[0]!.size = size;
      return;
    }
    const found = await listSegments(path);
    const byStart = new Map(segments.map((segment) => [segment.start, segment]));
    const next: Segment[] = [];
    for (const info of found) {
      const known = byStart.get(info.start);
      if (known) {
        known.size = info.size;
        next.push(known);
        byStart.delete(info.start);
      } else next.push(toSegment(info));
    }
    for (const gone of byStart.values()) retire(gone);
    segments = next;
  };
  const retire = (segment: Segment) => {
    segment.dropped = true;
    if (segment.users === 0 && segment.handle) {
      void segment.handle.then((handle) => handle.close()).catch(() => {});
      segment.handle = undefined;
    }
  };

  await relist();
  if (options.from !== undefined && options.from > 0) {
    const keep = segments.findIndex((segment) => segment.start === options.from);
    const first = segments[0];
    if (!first || first.start > options.from || (keep < 0 && first.start !== options.from)) {
      throw new JournalError('ERR_CORRUPT', `the checkpoint says the journal starts at byte ${options.from}, but no segment starts there (the first starts at byte ${first?.start ?? 'none'})`);
    }
    if (write && keep > 0) {
      for (const segment of segments.slice(0, keep)) await unlink(segment.path);
      segments = segments.slice(keep);
    }
  }
  let appendHandle: FileHandle | undefined;
  if (write) {
    if (segments.length === 0) {
      const first = join(path, segmentName(0));
      await (await open(first, 'a', 0o600)).close();
      segments = [toSegment({ start: 0, size: 0, path: first })];
    }
    const last = segments.at(-1)!;
    appendHandle = await open(last.path, 'a', 0o600);
    last.size = fstatSync(appendHandle.fd).size;
  }

  const end = () => {
    const last = segments.at(-1);
    return last ? last.start + last.size : 0;
  };
  /** The segment holding byte `offset`: the last that starts at or before it. */
  const segmentAt = (offset: number): number => {
    let low = 0;
    let high = segments.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (segments[mid]!.start <= offset) low = mid;
      else high = mid - 1;
    }
    return low;
  };
  const evict = () => {
    const open = segments.filter((segment) => segment.handle && segment.users === 0);
    if (open.length <= MAX_OPEN_SEGMENTS) return;
    open.sort((a, b) => a.used - b.used);
    for (const segment of open.slice(0, open.length - MAX_OPEN_SEGMENTS)) {
      void segment.handle!.then((handle) => handle.close()).catch(() => {});
      segment.handle = undefined;
    }
  };
  const readIn = async (segment: Segment, at: number, into: Uint8Array): Promise<void> => {
    segment.users += 1;
    segment.used = ++tick;
    try {
      const handle = await (segment.handle ??= open(segment.path, 'r'));
      let read = 0;
      while (read < into.length) {
        const { bytesRead } = await handle.read(into, read, into.length - read, at + read);
        if (bytesRead === 0) throw new Error(`journal segment ${segment.path} ends before byte ${segment.start + at + read}`);
        read += bytesRead;
      }
    } finally {
      segment.users -= 1;
      if (segment.dropped) retire(segment);
      else evict();
    }
  };

  const file: SegmentedJournalFile = {
    size: async () => {
      if (!write) await relist();
      return end();
    },
    readRange: async (offset, length, into) => {
      if (closed) throw new JournalError('ERR_CLOSED', 'the journal file is closed');
      const first = segments[0];
      if (first && offset < first.start) throw new JournalError('ERR_DROPPED', `byte ${offset} is before the checkpoint: the journal keeps bytes from ${first.start}`);
      if (offset + length > end()) throw new Error(`journal ends before byte ${offset + length}`);
      const out = (into ?? new Uint8Array(length)).subarray(0, length);
      let done = 0;
      for (let i = segmentAt(offset); done < length; i++) {
        const segment = segments[i]!;
        const at = offset + done - segment.start;
        const take = Math.min(length - done, segment.size - at);
        await readIn(segment, at, out.subarray(done, done + take));
        done += take;
      }
      return out;
    },
    append: async (bytes, at) => {
      if (closed || !appendHandle) throw new JournalError('ERR_CLOSED', 'the journal file is closed');
      let last = segments.at(-1)!;
      // The home's lock makes this process the only writer; this checks it holds (as a single file did).
      const { size } = fstatSync(appendHandle.fd);
      if (last.start + size !== at || end() !== at) throw new JournalError('ERR_NOT_AT_END', `the journal ends at byte ${last.start + size}, but this process wrote it up to byte ${at}: another process wrote to it`);
      if (last.size >= segmentBytes) {
        // The closed segment is made durable before the next exists: a power loss then never leaves a gap between them.
        await appendHandle.datasync();
        const next = join(path, segmentName(at));
        const handle = await open(next, 'ax', 0o600);
        await syncDir(path);
        await appendHandle.close();
        appendHandle = handle;
        last = toSegment({ start: at, size: 0, path: next });
        segments.push(last);
      }
      let written = 0;
      while (written < bytes.length) {
        const { bytesWritten } = await appendHandle.write(bytes, written, bytes.length - written);
        written += bytesWritten;
      }
      last.size += bytes.length;
    },
    truncate: async (length) => {
      if (!write || !appendHandle) throw new JournalError('ERR_READ_ONLY', 'this journal is read, not written');
      const keep = Math.max(0, segmentAt(length));
      const cut = segments.slice(keep + 1);
      if (cut.length > 0) {
        await appendHandle.close();
        for (const segment of cut) {
          retire(segment);
          await unlink(segment.path);
        }
        segments = segments.slice(0, keep + 1);
        appendHandle = await open(segments.at(-1)!.path, 'a', 0o600);
      }
      const last = segments.at(-1)!;
      await appendHandle.truncate(Math.max(0, length - last.start));
      last.size = Math.max(0, length - last.start);
    },
    sync: async () => {
      await appendHandle?.datasync();
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await appendHandle?.close();
      appendHandle = undefined;
      for (const segment of segments) {
        const handle = segment.handle;
        segment.handle = undefined;
        if (handle) await handle.then((h) => h.close()).catch(() => {});
      }
    },
    segments: () => segments.map(({ start, size, path: at }) => ({ start, size, path: at })),
    start: () => segments[0]?.start ?? 0,
    closed: () => closed,
    dropBefore: async (offset, archive) => {
      if (single) throw new JournalError('ERR_LAYOUT', 'a single-file journal has no segments to drop');
      const keep = segments.findIndex((segment) => segment.start === offset);
      if (keep < 0) throw new RangeError(`no segment starts at byte ${offset}`);
      const gone = segments.slice(0, Math.min(keep, segments.length - 1));
      if (gone.length === 0) return [];
      segments = segments.slice(gone.length);
      if (archive) await mkdir(archive, { recursive: true, mode: 0o700 });
      for (const segment of gone) {
        retire(segment);
        if (archive) await moveFile(segment.path, join(archive, segmentName(segment.start)));
        else await unlink(segment.path);
      }
      await syncDir(path);
      return gone.map(({ start, size, path: at }) => ({ start, size, path: at }));
    },
  };
  return file;
};

/** Rename, or copy and remove where the archive is on another file system. */
const moveFile = async (from: string, to: string) => {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    const { copyFile } = await import('node:fs/promises');
    await copyFile(from, to);
    await rm(from);
  }
};
