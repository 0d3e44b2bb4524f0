/**
 * One kernel per home at a time. The lock is a file created exclusively and
 * holding the owner's pid; a lock whose owner is gone is stale and taken
 * over. A second process waits briefly (CLI commands are short) and then
 * refuses with the pid of the holder, rather than risk interleaved journal
 * writes.
 */
import { open, readFile, unlink } from 'node:fs/promises';

export class HomeLockedError extends Error {
  readonly code = 'ERR_HOME_LOCKED';
  constructor(home: string, pid: number) {
    super(`home ${home} is in use by process ${pid}; wait for it to finish or stop it`);
    this.name = 'HomeLockedError';
  }
}

import { alive } from './running-node.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const acquireHomeLock = async (
  home: string,
  lockPath: string,
  options: { waitMs?: number } = {},
): Promise<() => Promise<void>> => {
  const deadline = Date.now() + (options.waitMs ?? 10_000);
  for (let attempt = 0; ; attempt += 1) {
    try {
      const handle = await open(lockPath, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        await unlink(lockPath).catch(() => {});
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const pid = Number.parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10);
    if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) {
      // A lock file without a live owner (a crash, or a write torn before the
      // pid landed): take it over. Only the unlink of the stale file races,
      // and the exclusive create above settles who wins.
      if (!Number.isInteger(pid) && attempt === 0) {
        await sleep(20); // the owner may be between create and write
        continue;
      }
      await unlink(lockPath).catch(() => {});
      continue;
    }
    if (Date.now() >= deadline) throw new HomeLockedError(home, pid);
    await sleep(Math.min(50 * (attempt + 1), 250));
  }
};
