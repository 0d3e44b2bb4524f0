/**
 * Node wiring for the kernel core: real files, the real clock, real
 * randomness and real timers for a home directory, or memory for tests.
 */
import { randomBytes } from 'node:crypto';
import { openFsBlockStore, openMemoryBlockStore } from '../store/index.js';
import { generateIdentity, loadOrCreateIdentity, loadIdentity, type Identity } from '../identity/index.js';
import { Journal, memoryJournalFile } from '../journal/journal.js';
import { openFsJournalFile } from '../journal/fs-file.js';
import { acquireHomeLock } from '../home/lock.js';
import { createHomeDirs, homeExists, homePaths, NoHomeError } from '../home/home.js';
import { Kernel, type Forwarder, type KernelLimits } from './kernel.js';
import type { Token } from '../caps/ids.js';

interface CommonOptions {
  limits?: Partial<KernelLimits>;
  /** Where lines that closures log (grid.log) go. */
  log?: (token: Token, line: string) => void;
  /** Peers to ask about tokens this node holds no closure for. */
  forward?: Forwarder;
}
export type OpenKernelOptions =
  | (CommonOptions & { home: string; create?: boolean; lockWaitMs?: number })
  | (CommonOptions & { memory: true; identity?: Identity });

const nodeRandomBytes = (length: number) => new Uint8Array(randomBytes(length));
const setTimer = (ms: number, callback: () => void) => {
  const timer = setTimeout(callback, ms);
  return () => clearTimeout(timer);
};
/** The journal's seal timer: it must not keep a process alive (close seals anyway). */
const setBackgroundTimer = (ms: number, callback: () => void) => {
  const timer = setTimeout(callback, ms);
  timer.unref();
  return () => clearTimeout(timer);
};

export const openKernel = async (options: OpenKernelOptions): Promise<Kernel> => {
  const known = new Set(['home', 'memory', 'identity', 'create', 'lockWaitMs', 'limits', 'log', 'forward']);
  for (const key of Object.keys(options)) if (!known.has(key)) throw new TypeError(`openKernel: unknown option ${JSON.stringify(key)}`);
  if ('memory' in options) {
    const identity: Identity = options.identity ?? generateIdentity(nodeRandomBytes);
    const { journal } = await Journal.open({ file: memoryJournalFile(), identity, clock: Date.now, schedule: setImmediate, setTimer: setBackgroundTimer });
    return new Kernel({ store: openMemoryBlockStore(), identity, journal, clock: Date.now, randomBytes: nodeRandomBytes, setTimer, limits: options.limits, log: options.log, forward: options.forward });
  }
  if (typeof options.home !== 'string' || options.home.length === 0) throw new TypeError('openKernel: home must be a directory path');
  const paths = homePaths(options.home);
  if (!(await homeExists(paths))) {
    if (options.create === false) throw new NoHomeError(paths.root);
    await createHomeDirs(paths);
    await loadOrCreateIdentity(paths.identity, nodeRandomBytes);
  }
  const release = await acquireHomeLock(paths.root, paths.lock, { waitMs: options.lockWaitMs });
  try {
    const identity = await loadIdentity(paths.identity);
    const { journal, droppedBytes } = await Journal.open({
      file: await openFsJournalFile(paths.journal),
      identity,
      clock: Date.now,
      schedule: setImmediate,
      setTimer: setBackgroundTimer,
    });
    if (droppedBytes > 0) process.emitWarning(`journal: cut off a torn tail of ${droppedBytes} bytes left by a crash`);
    return new Kernel({
      store: openFsBlockStore(paths.blocks),
      identity,
      journal,
      clock: Date.now,
      randomBytes: nodeRandomBytes,
      setTimer,
      limits: options.limits,
      log: options.log,
      forward: options.forward,
      onClose: release,
    });
  } catch (error) {
    await release();
    throw error;
  }
};
