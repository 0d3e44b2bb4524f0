/**
 * The home directory: `identity` (Ed25519 key, mode 0600), `blocks/` (the
 * content-addressed store), `journal` (the promise graph), `names` (pet
 * names), `lock` (held while a kernel has the home open) and `db/` (state
 * derived from the journal, rebuilt from it when missing).
 */
import { mkdir, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export interface HomePaths {
  readonly root: string;
  readonly identity: string;
  readonly blocks: string;
  readonly journal: string;
  readonly names: string;
  readonly lock: string;
  /** The URL of the node running on this home, while one does. */
  readonly node: string;
  /** Peers the node has been told about, remembered across restarts. */
  readonly peers: string;
  /** Invitations the node has handed out, and whether each was used. */
  readonly invitations: string;
  /** The port the node last listened on, to come back on (peers-file.ts). */
  readonly listen: string;
  /** Module analyses kept so that running a module needs no parser (analyses.ts). */
  readonly analyses: string;
  /** Where the peers said they listen, signed by each (net/addresses.ts). */
  readonly addresses: string;
  /** The embedded database of state derived from the journal (db/database.ts). */
  readonly db: string;
}

export const defaultHome = (env: NodeJS.ProcessEnv = process.env): string =>
  env.GRID_HOME && env.GRID_HOME.length > 0 ? env.GRID_HOME : join(homedir(), '.promisegrid');

export const homePaths = (root: string): HomePaths => {
  const abs = resolve(root);
  return {
    root: abs,
    identity: join(abs, 'identity'),
    blocks: join(abs, 'blocks'),
    journal: join(abs, 'journal'),
    names: join(abs, 'names'),
    lock: join(abs, 'lock'),
    node: join(abs, 'node'),
    peers: join(abs, 'peers'),
    invitations: join(abs, 'invitations'),
    listen: join(abs, 'listen'),
    addresses: join(abs, 'addresses'),
    analyses: join(abs, 'analyses'),
    db: join(abs, 'db'),
  };
};

export class NoHomeError extends Error {
  readonly code = 'ERR_NO_HOME';
  constructor(root: string) {
    super(`no grid home at ${root}; run \`grid init\` first (or pass --home)`);
    this.name = 'NoHomeError';
  }
}

export const homeExists = async (paths: HomePaths): Promise<boolean> =>
  stat(paths.identity).then(
    () => true,
    () => false,
  );

export const createHomeDirs = async (paths: HomePaths): Promise<void> => {
  await mkdir(paths.root, { recursive: true, mode: 0o700 });
  await mkdir(paths.blocks, { recursive: true, mode: 0o700 });
};
