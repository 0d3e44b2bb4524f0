/**
 * The kernel's latest snapshot (kernel/snapshot.ts), kept in the home's
 * database under one key: each save replaces the one before in a single
 * commit, so a crash leaves the old snapshot or the new, never a mix.
 */
import { tableOf, type Database } from './database.js';

const KEY = new TextEncoder().encode('kernel');

/** The kernel's SnapshotStore (kernel/snapshot.ts) over the database: this layer sits below the kernel and names no type of it. */
export const databaseSnapshots = (database: Database): { load(): Uint8Array | undefined; save(bytes: Uint8Array): Promise<void> } => {
  const table = tableOf(database, 'snapshot');
  return {
    load: () => {
      const bytes = table.getBinary(KEY);
      // lmdb hands out a Buffer; the kernel decodes its own Uint8Array.
      return bytes && new Uint8Array(bytes);
    },
    save: async (bytes) => {
      await table.put(KEY, bytes);
    },
  };
};
