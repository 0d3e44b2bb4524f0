/**
 * While `grid start` runs (or `grid repl` has the home open), the home holds
 * a `node` file naming its URL and pid, so other commands on the same home
 * reach the running node instead of waiting for the home's lock.
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';

export interface RunningNode {
  readonly url: string;
  readonly pid: number;
  /** The node's web page, access key included (the file is the owner's alone: mode 0600). */
  readonly web?: string;
}

/** Whether a process with this pid exists (EPERM: it does, and is someone else's). */
export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** The node running on this home, if one is (a file left by a crash is ignored). */
export const runningNode = async (path: string): Promise<RunningNode | undefined> => {
  let record: Partial<RunningNode>;
  try {
    record = JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
  if (typeof record.url !== 'string' || !Number.isInteger(record.pid) || !alive(record.pid!)) return undefined;
  return { url: record.url, pid: record.pid!, ...(typeof record.web === 'string' ? { web: record.web } : {}) };
};

/**
 * Written whole and renamed into place: commands waiting for the home look
 * at this file several times a second, and must never read half of it.
 */
export const announceNode = async (path: string, url: string, web?: string): Promise<void> => {
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify({ url, pid: process.pid, ...(web ? { web } : {}) })}\n`, { mode: 0o600 });
  await rename(temp, path);
};

export const retractNode = (path: string): Promise<void> => rm(path, { force: true });
