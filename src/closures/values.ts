/// <reference types="ses" />
/**
 * Grid data as JavaScript sees it, on both sides of the kernel: null,
 * booleans, numbers, bigints, strings, byte arrays, arrays, plain objects,
 * and links. A link is written `{ "/": "<cid>" }` (the DAG-JSON form), the
 * same way the CLI reads it, so a closure, a library user and a shell script
 * all spell a token the same. On the wire a link is CBOR tag 42.
 *
 * Values cross the compartment boundary only as canonical bytes: every value
 * a closure receives was freshly decoded and hardened, and every value it
 * returns is re-encoded. Nothing mutable is shared — in particular no byte
 * array, which `harden` cannot freeze.
 */
import { CID } from 'multiformats/cid';
import { asToken, isToken } from '../interface/ids.js';
import { decode } from '../wire/index.js';
import { decodeTrusted, DEFAULT_LIMITS, encodeFlat, encodeLinkForm, scan, type DecodeLimits } from '../wire/cbor.js';

export type Link = { readonly '/': string };
export type GridValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Link
  | readonly GridValue[]
  | { readonly [key: string]: GridValue };

export const isLink = (value: unknown): value is Link => {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === '/' && typeof (value as Link)['/'] === 'string';
};

export const link = (cid: string | CID): Link => harden({ '/': cid.toString() });

/** The closure-side API: what `import … from 'promisegrid'` gives a grid module. */
export const CLOSURE_API = harden({
  isToken: (x: unknown): boolean => isLink(x) && isToken(x['/']),
  link: (cid: string): Link => link(asToken(cid)),
});

/**
 * Convert codec output (CID instances) back to links, frozen as it is built.
 * Every node is new and its prototype is a frozen intrinsic, so freezing each
 * node is exactly what `harden` would do, without a second walk. (Byte arrays
 * cannot be frozen; they are fresh copies from the decoder.)
 */
export const fromWire = (value: unknown): GridValue => {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return value as GridValue;
  const cid = CID.asCID(value);
  if (cid) return Object.freeze({ '/': cid.toString() });
  if (Array.isArray(value)) return Object.freeze(value.map(fromWire));
  // Keys are defined, not assigned: under lockdown assigning `constructor` or
  // `hasOwnProperty` throws (Object.prototype's are frozen), and `__proto__`
  // would set the prototype instead of a key.
  return Object.freeze(Object.fromEntries(Object.keys(value).map((key) => [key, fromWire((value as Record<string, unknown>)[key])])));
};

/** The largest argument list or result a call may carry, encoded. */
export const MAX_VALUE_BYTES = 1024 * 1024;

/**
 * The most data items (each number, string, byte string, link, array and
 * map counts one) an argument list or a result may hold. Building a value
 * costs 0.2–1 µs an item (an empty map, one byte on the wire, is the
 * dearest: an object made and frozen), so MAX_VALUE_BYTES of them — a
 * million — held a node's event loop for 0.2–0.9 s per frame. At 8192 the
 * worst value builds in about 2–4 ms on a loaded 2-core machine, which
 * keeps other peers' calls within about twice their unloaded latency while
 * one peer sends its worst. Bulk data travels as byte strings: one item
 * each, whatever their size.
 */
export const MAX_VALUE_ITEMS = 8192;

/** The strict decoder's limits for a value that travels: arguments, results, a closure's environment. */
export const VALUE_LIMITS: DecodeLimits = Object.freeze({ ...DEFAULT_LIMITS, maxBytes: MAX_VALUE_BYTES, maxItems: MAX_VALUE_ITEMS });

/**
 * Grid data (links in `{ "/": cid }` form) to canonical bytes, refusing what
 * the strict decoder would later refuse (too deep, too large, too many
 * items): whatever a call carries is journaled and may travel, and the
 * journal and the peer must always decode it again.
 */
export const encodeValue = (value: unknown): Uint8Array => {
  // A flat array (wire/cbor.ts) is within the limits by its length and size alone: one item each, two a link, one deep.
  const flat = Array.isArray(value) && 2 * value.length + 1 <= MAX_VALUE_ITEMS ? encodeFlat(value) : undefined;
  if (flat && flat.length <= MAX_VALUE_BYTES) return flat;
  const bytes = encodeLinkForm(value);
  try {
    scan(bytes, VALUE_LIMITS);
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_TOO_MANY_ITEMS') throw new RangeError(`a value holds more than ${MAX_VALUE_ITEMS} items (send bulk data as bytes)`);
    throw new RangeError((error as Error).message.replace(/^CBOR decode error: /, ''));
  }
  return bytes;
};
/**
 * A reply that is not a call's value — a replica, a disclosure of up to
 * 10,000 records — to canonical bytes: it was asked for, one at a time, and
 * is bounded by its own limits, so only the codec's (16 MiB, a million items).
 */
export const encodeBulkValue = (value: unknown): Uint8Array => {
  const bytes = encodeLinkForm(value);
  scan(bytes, DEFAULT_LIMITS);
  return bytes;
};

/**
 * Untrusted canonical bytes to frozen grid data; refuses anything
 * non-canonical. `limits`: VALUE_LIMITS for what a peer sends; the codec's
 * own (a million items) by default, so what a journal already holds from
 * before the item bound still reads.
 */
export const decodeValue = (bytes: Uint8Array, limits: Partial<DecodeLimits> = {}): GridValue => fromWire(decode(bytes, limits));
/** Bytes this process just produced with `encodeValue` to a fresh frozen copy. */
export const copyValue = (bytes: Uint8Array): GridValue => fromWire(decodeTrusted(bytes));

/** Node's Buffer where there is one (not in a browser tab), looked up rather than imported. */
export const nodeBuffer = (globalThis as { Buffer?: typeof Buffer }).Buffer;
/** Past this many bytes Buffer's native latin1 decoding beats the loop below (5× at 1 MB; the loop wins under ~64). */
const NATIVE_KEY_BYTES = 64;

/** One char per byte: a compact, exact Map key. */
export const bytesKey = (bytes: Uint8Array): string => {
  if (nodeBuffer && bytes.length > NATIVE_KEY_BYTES) return nodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  let key = '';
  for (let start = 0; start < bytes.length; start += 4096) {
    key += String.fromCharCode.apply(null, bytes.subarray(start, start + 4096) as unknown as number[]);
  }
  return key;
};
