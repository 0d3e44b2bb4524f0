/**
 * How a verb reaches a home: its own kernel opened here, or — when `grid
 * start` is running a node on it — through that node, as the home's own
 * principal.
 */
import { randomBytes } from 'node:crypto';
import type { Principal, Token } from '../interface/ids.js';
import { loadModuleParser } from '../closures/modules.js';
import { homePaths, NoHomeError, type HomePaths } from '../home/home.js';
import { PetNames } from '../home/names.js';
import { loadPeers } from '../home/peers-file.js';
import { announceNode, retractNode, runningNode, type RunningNode } from '../home/running-node.js';
import { loadIdentity } from '../identity/index.js';
import { Journal } from '../journal/journal.js';
import { openSegmentedJournal } from '../journal/segments.js';
import { startOf } from '../journal/checkpoint.js';
import { loadCheckpoint } from '../home/retention.js';
import { RecordQueries } from '../journal/record-queries.js';
import { lmdbListStore, memoryListStore, RecordIndex } from '../db/records.js';
import { followedListStore } from '../db/followed-records.js';
import { openDatabase, tableOf, type Database } from '../db/database.js';
import { DEFAULT_LIMITS, REMOTE_GRACE_MS, type Forwarder, type Kernel, type KernelLimits } from '../kernel/kernel.js';
import { ownerOf, type NodeOwner } from '../kernel/owner.js';
import { openKernel } from '../home/open.js';
import type { RemoteNode } from '../net/client.js';
import { isPeerUrl } from '../net/membership.js';
import { quote } from '../interface/ids.js';
import { UsageError } from './format.js';
import { UnreachableError, type Invocation } from './invocation.js';

/**
 * What a command needs of a home, whether the home's kernel is opened here
 * or a node is already running on it (then the command goes through that
 * node, as the home's own principal, and reads the journal without the lock:
 * it is append-only).
 */
export interface HomeOps extends NodeOwner {
  /** The home's journal and what its records say: the kernel's here, or read from the file the running node writes (only what was appended since the last look). */
  history(): Promise<History>;
  /** The URL of the node running on this home, if one is. */
  readonly nodeUrl?: string;
}

/** How often a command waiting for the home's lock looks whether a node now serves the home. */
const NODE_WATCH_MS = 100;

/** Why a command stopped waiting for the home's lock: a node serves the home now. */
class NodeServesHome extends Error {
  constructor(readonly node: RunningNode) {
    super(`a node now serves this home (${node.url})`);
  }
}

/** Abort `controller` once a node announces itself on the home (`grid start`, or a REPL); `stop` ends the watch. */
const watchForNode = (path: string, controller: AbortController) => {
  let looking = false;
  const timer = setInterval(() => {
    if (looking) return;
    looking = true;
    void runningNode(path)
      .then((node) => node && controller.abort(new NodeServesHome(node)))
      .finally(() => (looking = false));
  }, NODE_WATCH_MS);
  return { stop: () => clearInterval(timer) };
};

/**
 * Serve the home's kernel on loopback and announce it as `grid start` does,
 * so that other commands on the home go through this process instead of
 * waiting for its lock (a REPL holds the home for as long as it is open).
 */
const serveHome = async (kernel: Kernel, nodePath: string): Promise<string> => {
  const url = await kernel.listen({ host: '127.0.0.1', port: 0 });
  await announceNode(nodePath, url);
  return url;
};

/**
 * Run `body` on the home: through the node running on it, else on its
 * kernel opened here. While waiting for the home's lock, a command watches
 * for a node to start serving the home (`grid start` holds the lock while it
 * starts; a REPL holds it while open) and then goes through that node. With
 * `serve`, a kernel opened here serves the home to other commands in turn.
 */
export const withHome = async <T>(
  inv: Invocation,
  body: (home: HomeOps, names: PetNames) => Promise<T>,
  options: { limits?: Partial<KernelLimits>; serve?: boolean; analyzes?: boolean } = {},
): Promise<T> => {
  const paths = homePaths(inv.home);
  let node = await runningNode(paths.node);
  if (!node && options.analyzes) {
    // A command that analyzes modules loads the parser (~0.5 s, seconds on a busy machine) before it
    // takes the home's lock, not while other commands and a starting node wait for it.
    await loadModuleParser();
    node = await runningNode(paths.node);
  }
  if (!node) {
    const served = new AbortController();
    const watching = watchForNode(paths.node, served);
    try {
      return await withKernel(
        inv,
        async (kernel, names) => {
          watching.stop();
          const nodeUrl = options.serve ? await serveHome(kernel, paths.node) : undefined;
          const owner = ownerOf(kernel);
          try {
            return await body(
              {
                ...owner,
                // Publishing analyzes a module: the parser loads first (closures/modules.ts). A call runs the analysis
                // the home kept (home/analyses.ts) and loads the parser only for a module analyzed nowhere yet.
                publish: async (bytes) => (await loadModuleParser(), owner.publish(bytes)),
                issue: async (spec) => (await loadModuleParser(), owner.issue(spec)),
                history: async () => ({ journal: kernel.journal, records: kernel.records }),
                ...(nodeUrl ? { nodeUrl } : {}),
              },
              names,
            );
          } finally {
            if (nodeUrl) await retractNode(paths.node);
          }
        },
        { limits: options.limits, lockSignal: served.signal },
      );
    } catch (error) {
      if (!(error instanceof NodeServesHome)) throw error;
      node = error.node;
    } finally {
      watching.stop();
    }
  }
  const identity = await loadHomeIdentity(paths);
  const follower = await followHome(paths, identity.principal);
  return withOwnNode(inv, async (remote) => {
    const ops: HomeOps = {
      ...remote,
      call: (token, args, callOptions) => remote.call(token, args, { ...callOptions, timeoutMs: (options.limits?.callTimeoutMs ?? DEFAULT_LIMITS.callTimeoutMs) + REMOTE_GRACE_MS }),
      nodeUrl: node.url,
      // The node writes the journal; this follows it, reading only what was appended since the last look.
      history: follower.history,
    };
    return body(ops, await PetNames.open(paths.names));
  }).finally(follower.close);
};

/** A home's journal and what its records say. */
export interface History {
  readonly journal: Journal;
  readonly records: RecordQueries;
}

/**
 * Follow the journal file a running node writes: each look verifies and
 * indexes only the records appended since the last one. The node's own
 * record index (the home's database, read only) answers for the records up
 * to where it stood when this began (db/followed-records.ts); without one,
 * or if it does not match the journal, the journal is indexed here from
 * its first record.
 */
const followHome = async (paths: HomePaths, signer: Principal) => {
  let journal: (Journal & { refresh(): Promise<void> }) | undefined;
  let records: RecordQueries | undefined;
  let database: Database | undefined;
  const start = async (useDatabase: boolean) => {
    const store = (useDatabase && nodeIndex()) || memoryListStore();
    // From the checkpoint's start, if the node dropped older segments.
    const checkpoint = await loadCheckpoint(paths, { principal: signer });
    const file = await openSegmentedJournal(paths.journal, checkpoint ? { from: checkpoint.start.offset } : {});
    const floor = checkpoint && startOf(checkpoint);
    journal = Journal.follow(file, signer, store.position() ?? floor, floor);
    records = new RecordQueries(journal, (await RecordIndex.open(journal, store)).index);
  };
  const nodeIndex = () => {
    try {
      database ??= openDatabase(paths.db, { readOnly: true });
      return followedListStore(lmdbListStore(tableOf(database, 'records')));
    } catch {
      return undefined;
    }
  };
  const close = async () => {
    await journal?.close();
    await database?.close();
    database = undefined;
  };
  return {
    history: async (): Promise<History> => {
      if (!journal) {
        await start(true);
        // The database's position is not in this journal (it is being rebuilt, or belongs to another): index it all here.
        await journal!.refresh().catch(async () => {
          await close();
          await start(false);
        });
      }
      await journal!.refresh();
      return { journal: journal!, records: records! };
    },
    close,
  };
};

export const loadHomeIdentity = (paths: ReturnType<typeof homePaths>) =>
  loadIdentity(paths.identity).catch(() => {
    throw new NoHomeError(paths.root);
  });

/** Connect to the node at `url` as this home's principal; failing to is an UnreachableError (its message through `explain`). */
export const connectAsHome = async (inv: Invocation, url: string, explain = (message: string) => message): Promise<RemoteNode> => {
  const identity = await loadHomeIdentity(homePaths(inv.home));
  // The network stack (ws, CapTP: ~0.3 s to load) is imported only by commands that reach a node.
  const { connectNode } = await import('../net/client.js');
  return connectNode(url, { identity, random: (n) => new Uint8Array(randomBytes(n)) }).catch((error: Error) => {
    throw new UnreachableError(explain(error.message));
  });
};

/** The nodes `--across` asks: the token URL's node, the home's remembered peers, and `--from`; not this home's own node. */
export const nodesToAsk = async (inv: Invocation, via: string | undefined, from: readonly string[], own: string | undefined): Promise<string[]> => {
  for (const url of from) if (!isPeerUrl(url)) throw new UsageError(`--from takes a ws:// or wss:// URL (got ${quote(url)})`);
  // recordsAcross asks each URL once.
  return [...(via ? [via] : []), ...(await loadPeers(homePaths(inv.home).peers)), ...from].filter((url) => url !== own);
};

/** A node's records about `token`, as this home's principal, checked. */
export const askRecords = async (inv: Invocation, url: string, token: Token) => {
  const remote = await connectAsHome(inv, url);
  try {
    return await remote.records(token);
  } finally {
    remote.close();
  }
};

/** Connect to the node running on this home, as the home's own principal (its owner). */
export const withOwnNode = async <T>(inv: Invocation, body: (remote: RemoteNode) => Promise<T>): Promise<T> => {
  const node = await runningNode(homePaths(inv.home).node);
  if (!node) throw new UsageError('no node is running on this home: run `grid start` on it first');
  const remote = await connectAsHome(inv, node.url);
  try {
    return await body(remote);
  } finally {
    remote.close();
  }
};

/** The home's own kernel, its closures' log lines on stderr (or to `log`: a node's go to its log). */
export const openHomeKernel = (
  inv: Invocation,
  options: { create?: boolean; limits?: Partial<KernelLimits>; forward?: Forwarder; lockSignal?: AbortSignal; log?: (token: Token, line: string) => void; keep?: string; archive?: string } = {},
) =>
  openKernel({
    ...(options.keep !== undefined ? { keep: options.keep } : {}),
    ...(options.archive !== undefined ? { archive: options.archive } : {}),
    home: inv.home,
    create: options.create ?? false,
    lockWaitMs: inv.lockWaitMs,
    ...(options.lockSignal ? { lockSignal: options.lockSignal } : {}),
    limits: options.limits,
    forward: options.forward,
    log: options.log ?? ((token, line) => inv.io.err(`[${token.slice(0, 10)}…${token.slice(-6)}] ${line}`)),
  });

export const withKernel = async <T>(
  inv: Invocation,
  body: (kernel: Kernel, names: PetNames) => Promise<T>,
  options: { create?: boolean; limits?: Partial<KernelLimits>; lockSignal?: AbortSignal } = {},
): Promise<T> => {
  const node = await runningNode(homePaths(inv.home).node);
  if (node) {
    // A node that announced itself since withHome looked: withHome (the one caller waiting on lockSignal) goes through it.
    if (options.lockSignal) throw new NodeServesHome(node);
    throw new UsageError(`a node is running on this home (${node.url}, pid ${node.pid}); stop it first`);
  }
  const kernel = await openHomeKernel(inv, options);
  try {
    const names = await PetNames.open(homePaths(inv.home).names);
    return await body(kernel, names);
  } finally {
    await kernel.close();
  }
};
