/**
 * What one principal may make this node store: journal bytes (a call's
 * arguments, its answer) and blocks (a delegation chain sent with a call),
 * as token buckets — `bytesPerSecond` sustained, `burstBytes` at once — one
 * per caller, and one shared by every caller but the node itself, because a
 * fresh key costs nothing: a stranger who rotates keys gets a fresh bucket
 * each time, and only the shared one bounds them all. The node's own
 * principal (its owner, through the CLI and the REPL) is not counted.
 */
import type { Principal } from '../caps/ids.js';

export interface StorageQuota {
  /** Bytes one caller may add at once, and per second once that is spent. */
  readonly burstBytes: number;
  readonly bytesPerSecond: number;
  /** The same for all callers but the node itself, together. */
  readonly sharedBurstBytes: number;
  readonly sharedBytesPerSecond: number;
}

export const STORAGE_QUOTA: StorageQuota = Object.freeze({
  burstBytes: 32 * 1024 * 1024,
  bytesPerSecond: 1024 * 1024,
  sharedBurstBytes: 128 * 1024 * 1024,
  sharedBytesPerSecond: 8 * 1024 * 1024,
});

/** Callers whose buckets are kept; past it the oldest is forgotten (a forgotten bucket is a full one, as a fresh key's is). */
const MAX_BUCKETS = 10_000;

interface Bucket {
  bytes: number;
  at: number;
}

export interface QuotaKeeper {
  /**
   * Take `bytes` from `caller`'s bucket and the shared one, or take nothing
   * and say why not (one line, for a `revoked` outcome).
   */
  take(caller: Principal, bytes: number): string | undefined;
  /** Count bytes already stored (an answer's value): buckets may go below empty, and refill from there. */
  charge(caller: Principal, bytes: number): void;
}

const mib = (bytes: number) => `${Math.round((bytes / 1024 / 1024) * 10) / 10} MiB`;

export const makeQuotaKeeper = ({ quota, clock, exempt }: { quota: StorageQuota; clock: () => number; exempt: Principal }): QuotaKeeper => {
  const buckets = new Map<Principal, Bucket>();
  const shared: Bucket = { bytes: quota.sharedBurstBytes, at: clock() };
  const refill = (bucket: Bucket, perSecond: number, burst: number) => {
    const now = clock();
    // A clock set back refills nothing (and takes nothing).
    bucket.bytes = Math.min(burst, bucket.bytes + (Math.max(0, now - bucket.at) / 1000) * perSecond);
    bucket.at = now;
  };
  const bucketOf = (caller: Principal): Bucket => {
    let bucket = buckets.get(caller);
    if (bucket) {
      // Most recently used last: the first is the one to forget.
      buckets.delete(caller);
    } else {
      if (buckets.size >= MAX_BUCKETS) buckets.delete(buckets.keys().next().value!);
      bucket = { bytes: quota.burstBytes, at: clock() };
    }
    buckets.set(caller, bucket);
    refill(bucket, quota.bytesPerSecond, quota.burstBytes);
    refill(shared, quota.sharedBytesPerSecond, quota.sharedBurstBytes);
    return bucket;
  };
  return Object.freeze({
    take: (caller: Principal, bytes: number) => {
      if (caller === exempt) return undefined;
      const own = bucketOf(caller);
      if (own.bytes < bytes) return `storage quota: ${caller} may add ${mib(quota.bytesPerSecond)}/s to this node (${mib(quota.burstBytes)} at once); try again later`;
      if (shared.bytes < bytes) return `storage quota: this node takes ${mib(quota.sharedBytesPerSecond)}/s from all its callers together; try again later`;
      own.bytes -= bytes;
      shared.bytes -= bytes;
      return undefined;
    },
    charge: (caller: Principal, bytes: number) => {
      if (caller === exempt) return;
      bucketOf(caller).bytes -= bytes;
      shared.bytes -= bytes;
    },
  });
};
