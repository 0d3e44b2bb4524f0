/**
 * The file block store against plain fs.writeFile / fs.readFile of the same
 * bytes: what hashing, the temp-file-and-rename and the re-hash on read cost.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CID } from 'multiformats/cid';
import { openFsBlockStore } from '../dist/store/index.js';
import { medianOf, row, type Row } from './measure.js';

export const benchStore = async (): Promise<Row[]> => {
  const dir = await mkdtemp(join(tmpdir(), 'grid-bench-store-'));
  const rows: Row[] = [];
  try {
    const store = openFsBlockStore(join(dir, 'blocks'));
    for (const [label, size, samples, warmup] of [['1 KiB', 1024, 2000, 100], ['1 MiB', 1024 * 1024, 60, 10]] as const) {
      // Fresh content for every write on both sides: each one creates a new file.
      const fresh = () => Array.from({ length: samples + warmup }, () => new Uint8Array(randomBytes(size)));
      const plainBlocks = fresh();
      const storeBlocks = fresh();
      const plainWrite = {
        name: `fs.writeFile ${label}`,
        median_ns: await medianOf((i) => writeFile(join(dir, `plain-${label}-${i}`), plainBlocks[i]!), samples, warmup),
      };
      rows.push(row(plainWrite.name, plainWrite.median_ns));
      const cids: CID[] = [];
      const put = await medianOf(async (i) => cids.push(await store.put(storeBlocks[i]!)), samples, warmup);
      rows.push(row(`store.put ${label} (copy, hash, temp file, rename)`, put, plainWrite));
      const plainRead = {
        name: `fs.readFile ${label}`,
        median_ns: await medianOf((i) => readFile(join(dir, `plain-${label}-${i % (samples + warmup)}`)), samples, warmup),
      };
      rows.push(row(plainRead.name, plainRead.median_ns));
      const get = await medianOf((i) => store.get(cids[i % cids.length]!), samples, warmup);
      rows.push(row(`store.get ${label} (read, re-hash)`, get, plainRead));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return rows;
};
