/**
 * The kernel's latest snapshot (kernel/snapshot.ts), kept in the home's
 * database under one key: each save replaces the one before in a single
 * commit, so a crash leaves the old snapshot or the new, never a mix.
 */
import type { SnapshotStore } from '../kernel/snapshot.js';
import { tableOf, type Database } from './database.js';

const KEY = new TextEncoder().encode('kernel');

export const databaseSnapshots = (database: Database): SnapshotStore => {
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
    clear: async () => {
      await table.remove(KEY);
    },
  };
};
