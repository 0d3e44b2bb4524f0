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
import { decode, encode } from '../wire/index.js';
import { quote } from '../caps/ids.js';

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

const MAX_DEPTH = 64;

export const isLink = (value: unknown): value is Link => {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === '/' && typeof (value as Link)['/'] === 'string';
};

export const link = (cid: string | CID): Link => harden({ '/': cid.toString() });

/** Convert the link form to CID instances for the codec. */
export const toWire = (value: unknown, path = '$', depth = 0): unknown => {
  if (depth > MAX_DEPTH) throw new TypeError(`value nests deeper than ${MAX_DEPTH} at ${path}`);
  if (value === null || typeof value !== 'object') {
    if (value === undefined) throw new TypeError(`undefined is not grid data at ${path}`);
    if (typeof value === 'function' || typeof value === 'symbol') {
      throw new TypeError(`a ${typeof value} is not grid data at ${path}`);
    }
    return value;
  }
  if (value instanceof Uint8Array) return value;
  if (value instanceof CID) return value;
  if (Array.isArray(value)) return value.map((item, index) => toWire(item, `${path}[${index}]`, depth + 1));
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`only plain objects are grid data (got ${quote(value)} at ${path})`);
  }
  if (isLink(value)) {
    try {
      return CID.parse(value['/']);
    } catch {
      throw new TypeError(`not a valid link ${quote(value['/'])} at ${path}`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = toWire((value as Record<string, unknown>)[key], `${path}.${key}`, depth + 1);
  return out;
};

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
  const out: Record<string, GridValue> = {};
  for (const key of Object.keys(value)) out[key] = fromWire((value as Record<string, unknown>)[key]);
  return Object.freeze(out);
};

export const encodeValue = (value: unknown): Uint8Array => encode(toWire(value));
export const decodeValue = (bytes: Uint8Array): GridValue => fromWire(decode(bytes));

/** One char per byte: a compact, exact Map key (portable; no Buffer). */
export const bytesKey = (bytes: Uint8Array): string => {
  let key = '';
  for (let start = 0; start < bytes.length; start += 4096) {
    key += String.fromCharCode.apply(null, bytes.subarray(start, start + 4096) as unknown as number[]);
  }
  return key;
};
