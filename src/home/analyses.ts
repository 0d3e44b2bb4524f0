/**
 * A home's kept module analyses: one file per module under
 * `analyses/<analyzer>/`, where the analyzer names the parser's version and
 * the record's format, so an upgrade starts a fresh folder rather than read
 * records an older parser made. Written to a temporary file and renamed, so
 * a reader sees a whole record or none.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ANALYSIS_FORMAT, type ModuleAnalyses } from '../closures/modules.js';
import type { ModuleRecord } from '../closures/runner.js';
import type { ModuleId } from '../interface/ids.js';
import { decode, encode } from '../wire/index.js';

/** The parser's package version, read without loading the parser (loading it is what the analyses save). */
const parserVersion = (): string => {
  const entry = fileURLToPath(import.meta.resolve('@endo/module-source'));
  return (JSON.parse(readFileSync(join(dirname(entry), 'package.json'), 'utf8')) as { version: string }).version;
};

const ANALYZER = `module-source-${parserVersion()}-format-${ANALYSIS_FORMAT}`;

export const openModuleAnalyses = (folder: string): ModuleAnalyses => {
  const dir = join(folder, ANALYZER);
  let made = false;
  return {
    async get(id: ModuleId) {
      try {
        return decode(new Uint8Array(await readFile(join(dir, id))));
      } catch {
        return undefined;
      }
    },
    async put(id: ModuleId, record: ModuleRecord) {
      if (!made) await mkdir(dir, { recursive: true }), (made = true);
      const temp = join(dir, `${id}.${process.pid}.tmp`);
      await writeFile(temp, encode(record));
      await rename(temp, join(dir, id));
    },
  };
};
