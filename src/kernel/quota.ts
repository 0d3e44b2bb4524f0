/**
 * What one principal may make this node store: journal bytes (a call's
 * arguments, its answer) and blocks (a delegation chain sent with a call),
 * as token buckets — `bytesPerSecond` sustained, `burstBytes` at once — one
 * per caller, and one shared by every caller but the node itself, because a
 * fresh key costs nothing: a stranger who rotates keys gets a fresh bucket
 * each time, and only the shared one bounds them all. The node's own
 * principal (its owner, through the CLI and the REPL) is not counted.
 */
import type { Principal, Token } from '../interface/ids.js';

export interface StorageQuota {
  /** Bytes one caller may add at once, and per second once that is spent. */
  readonly burstBytes: number;
  readonly bytesPerSecond: number;
  /** The same for all callers but the node itself, together. */
  readonly sharedBurstBytes: number;
  readonly sharedBytesPerSecond: number;
}

/*
 * A peer node forwarding its users' calls is one caller here, so one
 * caller's rate must carry a busy node's traffic: 4 MiB/s is some 40,000
 * small calls a second (more than a node answers), or four 1 MB arguments.
 * What it still bounds is the flood: a day of it is 340 GB, not the 2 GiB a
 * minute that 1 MB calls as fast as the wire goes would be.
 */
export const STORAGE_QUOTA: StorageQuota = Object.freeze({
  burstBytes: 64 * 1024 * 1024,
  bytesPerSecond: 4 * 1024 * 1024,
  sharedBurstBytes: 256 * 1024 * 1024,
  sharedBytesPerSecond: 16 * 1024 * 1024,
});

/** What a record costs besides its arguments or value (its kind, numbers, principal, links), roughly: a cache hit's whole record. */
export const RECORD_BYTES = 100;

/** Callers whose buckets are kept; past it the oldest is forgotten (a forgotten bucket is a full one, as a fresh key's is). */
const MAX_BUCKETS = 10_000;
/** Tokens whose last answer's size is kept; past it the oldest is forgotten (expected as nothing again). */
const MAX_ANSWER_SIZES = 10_000;

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
  /** Count bytes stored past what was taken (or give back what was not used, if negative): buckets may go below empty, and refill from there. */
  charge(caller: Principal, bytes: number): void;
  /**
   * What a call on `token` is likely to store for its answer: the size of
   * the last answer it gave. Taken with the call, so that many calls in
   * flight cannot each be admitted on a quota their answers then overrun.
   */
  expected(token: Token): number;
  /** `token` answered with a value of `bytes` bytes. */
  answered(token: Token, bytes: number): void;
}

const mib = (bytes: number) => `${Math.round((bytes / 1024 / 1024) * 10) / 10} MiB`;

export const makeQuotaKeeper = ({ quota, clock, exempt }: { quota: StorageQuota; clock: () => number; exempt: Principal }): QuotaKeeper => {
  const buckets = new Map<Principal, Bucket>();
  const answerSizes = new Map<Token, number>();
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
    expected: (token: Token) => answerSizes.get(token) ?? 0,
    answered: (token: Token, bytes: number) => {
      if (answerSizes.get(token) === bytes) return;
      answerSizes.delete(token);
      if (answerSizes.size >= MAX_ANSWER_SIZES) answerSizes.delete(answerSizes.keys().next().value!);
      answerSizes.set(token, bytes);
    },
  });
};
