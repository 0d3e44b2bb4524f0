import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { Log } from '../src/net/log.js';
import type { Kernel, Outcome } from '../src/index.js';
import type { GridValue } from '../src/closures/values.js';
import type { Entry, Journal } from '../src/journal/journal.js';

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

/** A fulfilled outcome's value; anything else fails the test with the outcome. */
export const valueOf = (outcome: Outcome): GridValue => {
  if (outcome.status !== 'fulfilled') throw new Error(`expected a value, got ${JSON.stringify(outcome, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`);
  return outcome.value;
};

/** A closure's refusal (`revoked`, code `refused`): its reason; anything else fails the test with the outcome. */
export const refusalOf = (outcome: Outcome): string => {
  if (outcome.status !== 'revoked' || outcome.code !== 'refused') throw new Error(`expected a refusal, got ${JSON.stringify(outcome, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`);
  return outcome.reason;
};

/** A file of this repository, as text (an example, a shipped merge). */
export const source = (file: string) => readFile(new URL(`../${file}`, import.meta.url), 'utf8');

/** A document's current value, read through `token`. */
export const readDoc = async (kernel: Kernel, token: string) => (valueOf(await kernel.docs.read(token)) as { value: GridValue }).value;

/** Every record of a journal, read from its file (the journal keeps none in memory). */
export const journalEntries = async (journal: Journal): Promise<Entry[]> => {
  const entries: Entry[] = [];
  for await (const entry of journal.read(0)) entries.push(entry);
  return entries;
};
