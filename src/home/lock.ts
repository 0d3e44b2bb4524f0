/**
 * One kernel per home at a time. The lock is a file created exclusively and
 * holding the owner's pid; a lock whose owner is gone is stale and taken
 * over. A second process waits briefly (CLI commands are short) and then
 * refuses with the pid of the holder, rather than risk interleaved journal
 * writes.
 */
import { link, readFile, unlink, writeFile } from 'node:fs/promises';

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
      // Write the pid first, then link the file into place: link refuses an
      // existing lock, and a lock that exists always names its owner (no
      // window in which a waiter could read it empty and call it stale).
      const temp = `${lockPath}.${process.pid}.${attempt}.tmp`;
      await writeFile(temp, String(process.pid), { mode: 0o600 });
      try {
        await link(temp, lockPath);
      } finally {
        await unlink(temp).catch(() => {});
      }
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
      // A lock without a live owner was left by a crash: take it over. (Two
      // waiters finding the same stale lock can still race here; the link
      // above settles which of them gets the home, but the loser may have
      // removed the winner's lock first. Rare: it needs a crash and two
      // waiters at once.)
      await unlink(lockPath).catch(() => {});
      continue;
    }
    if (Date.now() >= deadline) throw new HomeLockedError(home, pid);
    await sleep(Math.min(50 * (attempt + 1), 250));
  }
};
