/**
 * The embedded database of a home (`<home>/db/`): state derived from the
 * journal and kept on disk so that a node's memory and start time do not
 * grow with its history. Nothing here is a source of truth: the journal is.
 * Each part that keeps something here records the journal position it
 * reflects, and what is missing or behind is rebuilt from the journal.
 *
 * lmdb: memory-mapped, crash-safe (copy-on-write B+tree, a commit is one
 * atomic switch of roots), with a prebuilt Node 20 binary in its npm package.
 * Keys and values are raw bytes (`binary`): the parts encode with the
 * grid's own deterministic CBOR, never lmdb's default msgpack.
 */
import { open, type Database as LmdbDatabase, type RootDatabase } from 'lmdb';

export type Database = RootDatabase<Uint8Array, Uint8Array>;
export type Table = LmdbDatabase<Uint8Array, Uint8Array>;

/** Named tables a home's database holds, each owned by one part. */
const MAX_TABLES = 16;

/** `readOnly`: for a process that reads what the home's running node writes (lmdb takes many readers beside one writer). */
export const openDatabase = (dir: string, options: { readOnly?: boolean } = {}): Database =>
  open<Uint8Array, Uint8Array>({ path: dir, encoding: 'binary', keyEncoding: 'binary', maxDbs: MAX_TABLES, compression: false, ...(options.readOnly ? { readOnly: true } : {}) });

/** The table `name` of `database` (created on first use). */
export const tableOf = (database: Database, name: string): Table =>
  database.openDB<Uint8Array, Uint8Array>(name, { encoding: 'binary', keyEncoding: 'binary', compression: false });
