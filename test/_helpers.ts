import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { Log } from '../src/net/log.js';

/** A fresh temporary directory, removed when the test ends. */
export const tempDir = async (t: ExecutionContext, prefix = 'grid-test-'): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
};

/** A log (net/log.ts) that keeps every line, for tests to read back. */
export const recordingLog = () => {
  const lines: Array<{ level: string; fields: Record<string, unknown>; message: string }> = [];
  const at =
    (level: string) =>
    (fields: Record<string, unknown>, message: string): void =>
      void lines.push({ level, fields, message });
  const log: Log = { trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), isLevelEnabled: () => true, child: () => log };
  return { log, lines };
};
