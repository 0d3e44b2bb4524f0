/**
 * One kernel per home at a time. The lock is an exclusive `flock` on the
 * home's `lock` file, held through an open descriptor for as long as the
 * kernel is open: the operating system releases it when the descriptor is
 * closed or the process dies however it dies (kill -9 included), so there is
 * no stale lock to detect and nothing to take over.
 *
 * Why flock, through the fs-ext addon (Node has no flock of its own):
 * - The old lock, a file created exclusively and taken over when its pid was
 *   dead, let two waiters that both found a dead owner both take the home
 *   (one removed the other's fresh lock): two writers appended to one
 *   journal and broke its chain. No check-then-replace of a file closes that
 *   window; a lock the kernel holds has none.
 * - It follows the file, not a name: the same home reached through a
 *   symlink, a bind mount or from another network namespace is the same
 *   lock, and only who can open the home's files (mode 0600 in a 0700
 *   folder) can hold it. An abstract-namespace Unix socket (Linux only) is
 *   per network namespace, and its name is listed in /proc/net/unix to every
 *   local user, who could then bind it first and keep the home from opening.
 * - It works on Linux and macOS alike. proper-lockfile's mkdir lock decides
 *   staleness by time: a process paused longer than that (a laptop asleep)
 *   loses the lock while it still writes.
 * The cost is a native addon built from source at install (node-gyp, a C++
 * compiler: present on the machines this project supports).
 *
 * The file is never removed (removing a locked file would let a newcomer
 * lock a fresh file at the same path beside the holder). Once locked, it
 * holds the owner's pid, only to name the owner to a waiter. A waiter polls
 * (a blocking flock would hold a thread-pool thread and cannot be
 * cancelled), and gives up after `waitMs` or when `signal` aborts: the CLI
 * aborts when a node starts serving the home, and goes through it.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';

export class HomeLockedError extends Error {
  readonly code = 'ERR_HOME_LOCKED';
  constructor(home: string, pid: number | undefined) {
    super(`home ${home} is in use by ${pid ? `process ${pid}` : 'another process'}; wait for it to finish or stop it`);
    this.name = 'HomeLockedError';
  }
}

export class HomeLockError extends Error {
  readonly code = 'ERR_HOME_LOCK';
  constructor(message: string) {
    super(message);
    this.name = 'HomeLockError';
  }
}

interface Flock {
  flockSync(fd: number, flags: 'exnb' | 'un'): void;
}

let flock: Flock | undefined;
const loadFlock = (): Flock => {
  try {
    flock ??= createRequire(import.meta.url)('fs-ext') as Flock;
    return flock;
  } catch (error) {
    throw new HomeLockError(`home lock: the fs-ext addon (flock) did not load: ${(error as Error).message.split('\n')[0]}; reinstall with a C++ compiler and python3 at hand (node-gyp builds it)`);
  }
};

/** How long a waiter sleeps between tries, at most. */
const MAX_POLL_MS = 100;
export const DEFAULT_LOCK_WAIT_MS = 10_000;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

const busy = (error: unknown) => {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'EAGAIN' || code === 'EWOULDBLOCK';
};

const ownerPid = async (handle: FileHandle): Promise<number | undefined> => {
  const { buffer, bytesRead } = await handle.read(Buffer.alloc(16), 0, 16, 0);
  const pid = Number.parseInt(buffer.subarray(0, bytesRead).toString('utf8'), 10);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
};

/**
 * Lock `home` (its `lock` file at `lockPath`); resolves with the function
 * that releases it. Throws HomeLockedError after `waitMs` (default 10 s) of
 * another process holding it, or `signal.reason` when `signal` aborts.
 */
export const acquireHomeLock = async (
  home: string,
  lockPath: string,
  options: { waitMs?: number; signal?: AbortSignal } = {},
): Promise<() => Promise<void>> => {
  const { flockSync } = loadFlock();
  const deadline = Date.now() + (options.waitMs ?? DEFAULT_LOCK_WAIT_MS);
  const handle = await open(lockPath, constants.O_RDWR | constants.O_CREAT, 0o600);
  try {
    for (let attempt = 0; ; attempt += 1) {
      options.signal?.throwIfAborted();
      try {
        flockSync(handle.fd, 'exnb');
        break;
      } catch (error) {
        if (!busy(error)) throw error;
      }
      if (Date.now() >= deadline) throw new HomeLockedError(home, await ownerPid(handle));
      await sleep(Math.min(20 * (attempt + 1), MAX_POLL_MS, Math.max(1, deadline - Date.now())), options.signal);
    }
    await handle.truncate(0);
    await handle.write(String(process.pid), 0);
  } catch (error) {
    await handle.close(); // releases the lock if it was taken
    throw error;
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await handle.close();
  };
};
