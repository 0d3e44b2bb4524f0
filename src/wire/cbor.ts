/**
 * Deterministic CBOR (RFC 8949 §4.2.1 core deterministic encoding) over
 * cborg, with CIDs as tag 42 links.
 *
 * Decoding is strict in two passes. A header-only scan walks the item
 * structure without allocating anything: it enforces the size, depth and
 * item-count limits, refuses indefinite lengths, foreign tags, non-string
 * map keys, `undefined`, other simple values and non-finite floats, and
 * checks every declared length against the bytes that remain — so a hostile
 * length of 2^64 costs nothing. Only then does cborg build values. Last, the
 * value is encoded again and must reproduce the input byte for byte: that
 * one comparison rejects every non-shortest form and every mis-sorted map,
 * and makes `encode(decode(b)) = b` true by construction for every accepted
 * `b`.
 */
import { equals } from 'multiformats/bytes';
import { decode as cborgDecode, encode as cborgEncode, Token, Type } from 'cborg';
import { CID } from 'multiformats/cid';
import { cidOf } from '../interface/ids.js';
import { WireError } from './errors.js';

export interface DecodeLimits {
  /** Largest input accepted, in bytes. */
  readonly maxBytes: number;
  /** Deepest nesting of arrays, maps and tags. */
  readonly maxDepth: number;
  /** Most data items in one input. */
  readonly maxItems: number;
}

export const DEFAULT_LIMITS: DecodeLimits = Object.freeze({
  maxBytes: 16 * 1024 * 1024,
  maxDepth: 64,
  maxItems: 1_000_000,
});

const LINK_TAG = 42;
export const GRID_TAG = 0x67726964; // "grid"

const describe = (value: unknown) =>
  value === null ? 'null' : typeof value === 'object' ? Object.prototype.toString.call(value).slice(8, -1) : typeof value;

const refuse = (value: unknown): never => {
  if (typeof value === 'number') throw new TypeError(`${value} is not grid data (numbers are finite)`);
  if (typeof value === 'object' && value !== null) {
    throw new TypeError(`only plain objects are grid data (got ${describe(value)})`);
  }
  throw new TypeError(`${typeof value === 'function' ? 'a function' : describe(value)} is not grid data`);
};

/** CBOR's integers (major types 0 and 1) span -2^64 … 2^64-1; a bigint beyond has no integer form. */
export const MIN_INTEGER = -(2n ** 64n);
export const MAX_INTEGER = 2n ** 64n - 1n;
const refuseInteger = (value: bigint): never => {
  throw new RangeError(`integer ${value} is beyond the grid's integers (-2^64 to 2^64-1)`);
};

const linkTokens = (cid: CID) => {
  const bytes = new Uint8Array(cid.bytes.length + 1);
  bytes.set(cid.bytes, 1);
  return [new Token(Type.tag, LINK_TAG), new Token(Type.bytes, bytes)];
};

/** A link given as binary CID bytes, encoded as tag 42 without building a CID object. */
export class LinkBytes {
  constructor(readonly cid: Uint8Array) {}
}

/** `{ "/": "<cid>" }`, the DAG-JSON spelling of a link. */
const linkText = (value: object): string | undefined => {
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === '/' && typeof (value as { '/': unknown })['/'] === 'string'
    ? (value as { '/': string })['/']
    : undefined;
};

const makeEncodeOptions = (linkForm: boolean) => ({
  typeEncoders: {
    Object: (value: object) => {
      if (value instanceof LinkBytes) {
        const bytes = new Uint8Array(value.cid.length + 1);
        bytes.set(value.cid, 1);
        return [new Token(Type.tag, LINK_TAG), new Token(Type.bytes, bytes)];
      }
      const cid = CID.asCID(value);
      if (cid) return linkTokens(cid);
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) refuse(value);
      const text = linkForm ? linkText(value) : undefined;
      if (text === undefined) return null;
      try {
        return linkTokens(cidOf(text));
      } catch {
        throw new TypeError(`not a valid link: ${JSON.stringify(text.slice(0, 80))}`);
      }
    },
    // -0 is a float: its shortest form is the half float 0xf98000 (RFC 8949
    // §4.2.2), not the integer 0 cborg would write, which would lose its sign.
    number: (value: number) => (Object.is(value, -0) ? [new Token(Type.float, -0)] : Number.isFinite(value) ? null : refuse(value)),
    bigint: (value: bigint) => (value >= MIN_INTEGER && value <= MAX_INTEGER ? null : refuseInteger(value)),
    undefined: refuse,
    Function: refuse,
    symbol: refuse,
    Map: refuse,
    Set: refuse,
    Date: refuse,
    RegExp: refuse,
    DataView: refuse,
    ArrayBuffer: refuse,
  },
});

/*
 * Map keys are text strings only (the decoder refuses others). For text
 * keys, RFC 8949's bytewise order of encoded keys is the same as cborg's
 * default order — shorter UTF-8 first, then bytewise — because a string's
 * header grows with its length. The default sorter compares without
 * encoding every key a second time, which the RFC 8949 sorter does; the
 * tests hold the two to the same bytes.
 */
const encodeOptions = makeEncodeOptions(false);
const linkFormOptions = makeEncodeOptions(true);

/**
 * Bytes that own their memory: `bytes` if they do, else a copy. cborg hands
 * back a small encoding (up to 256 bytes) as a view into Node's shared
 * 8 KiB Buffer pool: kept (a journal record, a block, a cache entry) it
 * would pin the whole pool, and posted to a thread it would copy it.
 */
export const owned = (bytes: Uint8Array): Uint8Array => (bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes)); // not .slice(): on a Buffer that is a view too

/*
 * Flat arrays — safe integers, ASCII text, byte strings, null, booleans and
 * links, nothing nested — are what the hot paths write: a journal record,
 * a call's arguments, a call or a reply (envelope.ts). They are written
 * here directly, the same bytes cborg writes for them (the codec's tests
 * hold the two to it), without building cborg's tokens; anything else
 * (a float, -0, a bigint, text beyond ASCII, a nested value) goes to cborg.
 */

/** Bytes of a header whose argument is `n` (0 ≤ n ≤ 2^53), in shortest form. */
const headerBytes = (n: number): number => (n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9);

/**
 * Write the header of major type `major` with argument `n` at `at`; returns
 * where it ends. Bytes are stored through a DataView: under lockdown V8 takes
 * a slow path for every indexed store into a typed array (~150 ns a byte; a
 * DataView's stay ~3 ns, perimeter/ws-mask.ts).
 */
const writeHeader = (view: DataView, at: number, major: number, n: number): number => {
  const type = major << 5;
  if (n < 24) {
    view.setUint8(at, type | n);
    return at + 1;
  }
  if (n < 0x100) {
    view.setUint8(at, type | 24);
    view.setUint8(at + 1, n);
    return at + 2;
  }
  if (n < 0x10000) {
    view.setUint8(at, type | 25);
    view.setUint16(at + 1, n);
    return at + 3;
  }
  if (n < 0x100000000) {
    view.setUint8(at, type | 26);
    view.setUint32(at + 1, n);
    return at + 5;
  }
  view.setUint8(at, type | 27);
  view.setUint32(at + 1, Math.floor(n / 0x100000000));
  view.setUint32(at + 5, n >>> 0);
  return at + 9;
};

const isAscii = (text: string): boolean => {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) return false;
  return true;
};

/** A link's CID bytes, if `item` is a link written flat (a CID of this multiformats, or LinkBytes). */
const flatLink = (item: object): Uint8Array | undefined => (item instanceof CID ? item.bytes : item instanceof LinkBytes ? item.cid : undefined);

/** Bytes `item` takes written flat, or -1 if it is not flat. */
const flatBytes = (item: unknown): number => {
  switch (typeof item) {
    case 'number':
      return Number.isSafeInteger(item) && !Object.is(item, -0) ? headerBytes(item >= 0 ? item : -1 - item) : -1;
    case 'string':
      return isAscii(item) ? headerBytes(item.length) + item.length : -1;
    case 'boolean':
      return 1;
    case 'object': {
      if (item === null) return 1;
      if (item instanceof Uint8Array) return headerBytes(item.length) + item.length;
      const link = flatLink(item);
      // Tag 42 (two bytes), then a byte string of 0x00 and the CID.
      return link ? 2 + headerBytes(link.length + 1) + link.length + 1 : -1;
    }
    default:
      return -1;
  }
};

const writeFlat = (out: Uint8Array, view: DataView, at: number, item: unknown): number => {
  if (typeof item === 'number') return item >= 0 ? writeHeader(view, at, 0, item) : writeHeader(view, at, 1, -1 - item);
  if (typeof item === 'string') {
    at = writeHeader(view, at, 3, item.length);
    for (let i = 0; i < item.length; i++) view.setUint8(at + i, item.charCodeAt(i));
    return at + item.length;
  }
  if (item === null || typeof item === 'boolean') {
    view.setUint8(at, item === null ? 0xf6 : item ? 0xf5 : 0xf4);
    return at + 1;
  }
  if (item instanceof Uint8Array) {
    at = writeHeader(view, at, 2, item.length);
    out.set(item, at);
    return at + item.length;
  }
  const link = flatLink(item as object)!;
  view.setUint8(at, 0xd8);
  view.setUint8(at + 1, LINK_TAG);
  at = writeHeader(view, at + 2, 2, link.length + 1);
  view.setUint8(at, 0);
  out.set(link, at + 1);
  return at + 1 + link.length;
};

/** Bytes a flat item, or a flat array of flat items (one level), takes written flat; -1 if it is neither. */
const nestedBytes = (item: unknown): number => {
  if (!Array.isArray(item)) return flatBytes(item);
  let length = headerBytes(item.length);
  for (let i = 0; i < item.length; i++) {
    const n = flatBytes(item[i]);
    if (n < 0) return -1;
    length += n;
  }
  return length;
};
const writeNested = (out: Uint8Array, view: DataView, at: number, item: unknown): number => {
  if (!Array.isArray(item)) return writeFlat(out, view, at, item);
  at = writeHeader(view, at, 4, item.length);
  for (let i = 0; i < item.length; i++) at = writeFlat(out, view, at, item[i]);
  return at;
};

/**
 * The array `[lead, ...items]` (`[...items]` when `lead` is absent) written
 * flat after `prefix`, or undefined if any item is not flat; with `nested`,
 * an item may also be a flat array of flat items (one level: a journal
 * record's list of heads, say).
 */
export const encodeFlat = (items: readonly unknown[], lead?: object, prefix?: Uint8Array, nested = false): Uint8Array | undefined => {
  const count = items.length + (lead ? 1 : 0);
  const leadBytes = lead ? flatBytes(lead) : 0;
  if (leadBytes < 0) return undefined;
  const size = nested ? nestedBytes : flatBytes;
  let length = (prefix?.length ?? 0) + headerBytes(count) + leadBytes;
  for (let i = 0; i < items.length; i++) {
    const n = size(items[i]);
    if (n < 0) return undefined;
    length += n;
  }
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  if (prefix) out.set(prefix);
  let at = writeHeader(view, prefix?.length ?? 0, 4, count);
  if (lead) at = writeFlat(out, view, at, lead);
  const write = nested ? writeNested : writeFlat;
  for (let i = 0; i < items.length; i++) at = write(out, view, at, items[i]);
  return out;
};

/** Canonical order of ASCII map keys: shorter first, then bytewise (the same as cborg's, see above). */
const byKeyOrder = (a: string, b: string) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);

/**
 * A plain object whose keys are ASCII text and whose values are flat items
 * or flat arrays of them (one level) — a signed record, say — written flat,
 * its keys in canonical order: the same bytes `encode` writes (the codec's
 * tests hold the two to it). Undefined if anything in it is not flat.
 */
export const encodeFlatMap = (record: object): Uint8Array | undefined => {
  const proto = Object.getPrototypeOf(record);
  if (proto !== Object.prototype && proto !== null) return undefined;
  const keys = Object.keys(record).sort(byKeyOrder);
  const values = record as Record<string, unknown>;
  let length = headerBytes(keys.length);
  for (const key of keys) {
    if (!isAscii(key)) return undefined;
    const n = nestedBytes(values[key]);
    if (n < 0) return undefined;
    length += headerBytes(key.length) + key.length + n;
  }
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  let at = writeHeader(view, 0, 5, keys.length);
  for (const key of keys) {
    at = writeNested(out, view, writeFlat(out, view, at, key), values[key]);
  }
  return out;
};

/** Encode grid data in core deterministic form. Throws TypeError on what is not grid data. */
export const encode = (value: unknown): Uint8Array => (Array.isArray(value) ? encodeFlat(value, undefined, undefined, true) : undefined) ?? owned(cborgEncode(value, encodeOptions as never));

/** As `encode`, also reading `{ "/": "<cid>" }` objects as links (the kernel's value form). */
export const encodeLinkForm = (value: unknown): Uint8Array => (Array.isArray(value) ? encodeFlat(value) : undefined) ?? owned(cborgEncode(value, linkFormOptions as never));

/** cborg hands a tag decoder a control that decodes the tagged content. */
type TagDecodeControl = () => unknown;
const tagDecoder = (decodeContent: (content: unknown) => unknown) => (control: TagDecodeControl) => decodeContent(control());

/**
 * Links decoded lately, by the last four bytes of their digest (uniformly
 * random, so a cheap key), checked in full on a hit. The same few tokens
 * arrive message after message; one CID instance per token also keeps its
 * printed form, which costs more to make than the rest of decoding a small
 * call. CIDs are immutable and never reach confined code (it sees
 * `{ "/": text }`).
 */
const recentLinks = new Map<number, CID>();
const MAX_RECENT_LINKS = 4096;
/** Links the caller of `decodeKnowing` holds already, by linkKey; undefined outside it. */
let knownLinks: ReadonlyMap<number, CID> | undefined;

/** The key a link is known by: its CID's last four bytes (of its digest). */
export const linkKey = (cid: CID): number => {
  const bytes = cid.bytes;
  const n = bytes.length;
  return n >= 4 ? (bytes[n - 1]! << 24) | (bytes[n - 2]! << 16) | (bytes[n - 3]! << 8) | bytes[n - 4]! : -1;
};

const decodeLink = (content: unknown) => {
  if (!(content instanceof Uint8Array) || content.length < 2 || content[0] !== 0) {
    throw new WireError('ERR_BAD_LINK', 'tag 42 must wrap a byte string 0x00 followed by a CID');
  }
  return linkOf(content, false);
};

/**
 * A link's CID from tag 42's content (0x00 and the CID's bytes, checked by
 * the caller): the one decoded lately if any, else checked and kept —
 * from a copy when `view` (content that is a view into bytes not ours to keep).
 */
export const linkOf = (content: Uint8Array, view: boolean): CID => {
  const n = content.length;
  const key = n >= 5 ? ((content[n - 1]! << 24) | (content[n - 2]! << 16) | (content[n - 3]! << 8) | content[n - 4]!) : -1;
  const mine = knownLinks?.get(key);
  if (mine && equals(mine.bytes, content.subarray(1))) return mine;
  const known = recentLinks.get(key);
  if (known && equals(known.bytes, content.subarray(1))) return known;
  const cid = checkedLink(view ? new Uint8Array(content) : content);
  if (recentLinks.size >= MAX_RECENT_LINKS) recentLinks.clear();
  recentLinks.set(key, cid);
  return cid;
};

const checkedLink = (content: Uint8Array): CID => {
  let cid: CID;
  try {
    cid = CID.decode(content.subarray(1));
  } catch (error) {
    throw new WireError('ERR_BAD_LINK', `tag 42 does not hold a valid CID (${(error as Error).message})`);
  }
  // CID.decode reads some malformed prefixes as another CID (e.g. a version
  // byte 0 as CIDv0): a link is canonical only if it is the CID's own bytes.
  if (!equals(cid.bytes, content.subarray(1))) throw new WireError('ERR_BAD_LINK', 'tag 42 holds bytes that are not a CID in its own encoding');
  return cid;
};

const decodeOptions = {
  strict: true,
  allowIndefinite: false,
  allowUndefined: false,
  allowInfinity: false,
  allowNaN: false,
  rejectDuplicateMapKeys: true,
  tags: Object.assign([], { [LINK_TAG]: tagDecoder(decodeLink) }),
};

/** Refuses what is not well-formed UTF-8 (overlongs, surrogates, past U+10FFFF), as the Encoding standard has it. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const isUtf8 = (bytes: Uint8Array, from: number, to: number): boolean => {
  // Most strings (every map key) are ASCII: checked here without a call into the decoder.
  let ascii = true;
  for (let i = from; i < to && ascii; i++) ascii = bytes[i]! < 0x80;
  if (ascii) return true;
  try {
    utf8.decode(bytes.subarray(from, to));
    return true;
  } catch {
    return false;
  }
};

/** Frame of the structure scan: children still expected, whether it is a map, and where its last key was. */
interface Open {
  remaining: number;
  map: boolean;
  keyStart: number;
  keyEnd: number;
}

/** Bytewise order of two encoded keys in `bytes`: negative if the first sorts first. */
const compareKeys = (bytes: Uint8Array, aStart: number, aEnd: number, bStart: number, bEnd: number): number => {
  const length = Math.min(aEnd - aStart, bEnd - bStart);
  for (let i = 0; i < length; i++) {
    const difference = bytes[aStart + i]! - bytes[bStart + i]!;
    if (difference !== 0) return difference;
  }
  return aEnd - aStart - (bEnd - bStart);
};

/** Smallest argument each header size may carry in core deterministic form. */
const MIN_ARGUMENT = [24, 256, 65536, 2 ** 32];

/**
 * Walk item headers only, enforcing limits before anything is allocated, and
 * the parts of core deterministic form that headers show: every argument in
 * its shortest form, map keys in strictly increasing bytewise order (so no
 * duplicates). `rootTag` says which tag may appear at the root (the
 * envelope); tag 42 is allowed anywhere. Returns whether the input holds a
 * float, whose shortest form only a re-encoding can check.
 */
export const scan = (bytes: Uint8Array, limits: DecodeLimits, rootTag?: number): { floats: boolean } => {
  if (bytes.length > limits.maxBytes) {
    throw new WireError('ERR_TOO_LARGE', `input is ${bytes.length} bytes (limit ${limits.maxBytes})`);
  }
  // Made at the first header longer than a byte: most small values have none.
  let dataView: DataView | undefined;
  const stack: Open[] = [];
  let pos = 0;
  let items = 0;
  let floats = false;
  for (;;) {
    if (pos >= bytes.length) throw new WireError('ERR_TRUNCATED', `input ends inside an item at byte ${pos}`);
    const parent = stack[stack.length - 1];
    const atKey = parent !== undefined && parent.map && parent.remaining % 2 === 0;
    const initial = bytes[pos]!;
    const major = initial >> 5;
    const minor = initial & 31;
    const start = pos;
    pos += 1;
    if (++items > limits.maxItems) throw new WireError('ERR_TOO_MANY_ITEMS', `more than ${limits.maxItems} items`);
    if (atKey && major !== 3) throw new WireError('ERR_BAD_KEY', `map key at byte ${start} is not a text string (major type ${major})`);
    let argument = minor;
    if (minor === 31) {
      throw new WireError('ERR_INDEFINITE_LENGTH', `indefinite length or break at byte ${start}`);
    } else if (minor >= 28) {
      throw new WireError('ERR_MALFORMED', `reserved additional information ${minor} at byte ${start}`);
    } else if (minor >= 24) {
      const size = 1 << (minor - 24);
      if (pos + size > bytes.length) throw new WireError('ERR_TRUNCATED', `header at byte ${start} needs ${size} more bytes`);
      const view = (dataView ??= new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      if (major === 7) {
        if (minor === 24) throw new WireError('ERR_BAD_SIMPLE', `simple value at byte ${start} (only false, true and null are grid data)`);
        const finite =
          minor === 25
            ? (view.getUint16(pos) & 0x7c00) !== 0x7c00
            : minor === 26
              ? (view.getUint32(pos) & 0x7f800000) !== 0x7f800000
              : (view.getUint32(pos) & 0x7ff00000) !== 0x7ff00000;
        if (!finite) throw new WireError('ERR_BAD_FLOAT', `NaN or infinity at byte ${start}`);
        pos += size;
        argument = -1;
        floats = true;
      } else {
        argument = size === 1 ? view.getUint8(pos) : size === 2 ? view.getUint16(pos) : size === 4 ? view.getUint32(pos) : view.getUint32(pos) * 2 ** 32 + view.getUint32(pos + 4);
        if (argument < MIN_ARGUMENT[minor - 24]!) throw new WireError('ERR_NON_CANONICAL', `argument at byte ${start} is not in its shortest form`);
        pos += size;
      }
    } else if (major === 7 && (minor < 20 || minor === 23)) {
      throw new WireError('ERR_BAD_SIMPLE', minor === 23 ? `undefined at byte ${start}` : `simple value ${minor} at byte ${start}`);
    }
    const remainingBytes = bytes.length - pos;
    let children = 0;
    switch (major) {
      case 2:
      case 3:
        if (argument > remainingBytes) {
          throw new WireError('ERR_TRUNCATED', `string at byte ${start} declares ${argument} bytes but ${remainingBytes} remain`);
        }
        if (major === 3 && !isUtf8(bytes, pos, pos + argument)) {
          throw new WireError('ERR_MALFORMED', `text string at byte ${start} is not valid UTF-8`);
        }
        pos += argument;
        if (atKey) {
          const order = parent.keyEnd > parent.keyStart ? compareKeys(bytes, parent.keyStart, parent.keyEnd, start, pos) : -1;
          if (order === 0) throw new WireError('ERR_DUPLICATE_KEY', `map key at byte ${start} repeats the one before it`);
          if (order > 0) throw new WireError('ERR_NON_CANONICAL', `map key at byte ${start} is out of order (core deterministic form sorts keys bytewise)`);
          parent.keyStart = start;
          parent.keyEnd = pos;
        }
        break;
      case 4:
      case 5:
        children = major === 5 ? argument * 2 : argument;
        if (children > remainingBytes) {
          throw new WireError('ERR_TRUNCATED', `${major === 5 ? 'map' : 'array'} at byte ${start} declares ${argument} entries but ${remainingBytes} bytes remain`);
        }
        break;
      case 6:
        if (argument !== LINK_TAG && !(argument === rootTag && start === 0)) {
          throw new WireError('ERR_BAD_TAG', `tag ${argument} at byte ${start} (only 42, a link, is grid data)`);
        }
        children = 1;
        break;
      default:
        break;
    }
    if (children > 0) {
      if (stack.length + 1 > limits.maxDepth) throw new WireError('ERR_TOO_DEEP', `nesting deeper than ${limits.maxDepth} at byte ${start}`);
      stack.push({ remaining: children, map: major === 5, keyStart: 0, keyEnd: 0 });
      continue;
    }
    // The item is complete: close every container it completes.
    for (;;) {
      const top = stack[stack.length - 1];
      if (!top) {
        if (pos !== bytes.length) throw new WireError('ERR_TRAILING_BYTES', `${bytes.length - pos} bytes after the item (got ${bytes.length}, expected ${pos})`);
        return { floats };
      }
      top.remaining -= 1;
      if (top.remaining > 0) break;
      stack.pop();
    }
  }
};

const classify = (error: unknown): WireError => {
  if (error instanceof WireError) return error;
  const message = String((error as Error)?.message ?? error).replace(/^CBOR decode error:\s*/, '');
  if (/duplicate|repeat map key/i.test(message)) return new WireError('ERR_DUPLICATE_KEY', message);
  if (/more bytes than necessary|minimal|canonical/i.test(message)) return new WireError('ERR_NON_CANONICAL', message);
  return new WireError('ERR_MALFORMED', message);
};

/** A tag allowed only at the root, with its decoder and the encoder that must reproduce the input. */
export interface RootTag {
  readonly tag: number;
  readonly decode: (inner: unknown) => unknown;
  readonly encode: (value: unknown) => Uint8Array;
}

/** Decode options for each root tag, made once: building them per message cost as much as decoding it. */
const rootOptions = new WeakMap<RootTag, typeof decodeOptions>();
const optionsWithRoot = (root: RootTag) => {
  let options = rootOptions.get(root);
  if (!options) {
    options = { ...decodeOptions, tags: Object.assign([], decodeOptions.tags, { [root.tag]: tagDecoder(root.decode) }) };
    rootOptions.set(root, options);
  }
  return options;
};

/** Maps decoded as Maps, turned into plain objects whose keys are defined. */
const keysDefined = (value: unknown): unknown => {
  if (value instanceof Map) return Object.fromEntries([...value].map(([key, entry]) => [key, keysDefined(entry)]));
  if (Array.isArray(value)) return value.map(keysDefined);
  return value;
};

/**
 * cborg builds a map by assigning its keys. Under lockdown most of
 * Object.prototype's properties are frozen, so assigning a key such as
 * `constructor` or `hasOwnProperty` throws (a TypeError): such a value is
 * decoded again with maps as Maps, whose entries become defined keys. The
 * common case pays nothing.
 */
const cborgDecodeObjects = (bytes: Uint8Array, root?: RootTag): unknown => {
  try {
    return cborgDecode(bytes, (root ? optionsWithRoot(root) : decodeOptions) as never);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    // A root tag's decoder sees its content with keys defined too.
    const tags = root ? Object.assign([], decodeOptions.tags, { [root.tag]: tagDecoder((inner) => root.decode(keysDefined(inner))) }) : decodeOptions.tags;
    return keysDefined(cborgDecode(bytes, { ...decodeOptions, tags, useMaps: true } as never));
  }
};

/** The argument of the header at `at` if it is in shortest form and at most 4 bytes long, and where its item's content starts. */
const shortHeader = (bytes: Uint8Array, at: number): { n: number; next: number } | undefined => {
  const minor = bytes[at]! & 31;
  if (minor < 24) return { n: minor, next: at + 1 };
  if (minor === 24) {
    const n = bytes[at + 1];
    return n !== undefined && n >= 24 ? { n, next: at + 2 } : undefined;
  }
  if (minor === 25) {
    if (at + 3 > bytes.length) return undefined;
    const n = (bytes[at + 1]! << 8) | bytes[at + 2]!;
    return n >= 0x100 ? { n, next: at + 3 } : undefined;
  }
  if (minor === 26) {
    if (at + 5 > bytes.length) return undefined;
    const n = bytes[at + 1]! * 0x1000000 + ((bytes[at + 2]! << 16) | (bytes[at + 3]! << 8) | bytes[at + 4]!);
    return n >= 0x10000 ? { n, next: at + 5 } : undefined;
  }
  return undefined;
};

/**
 * A flat item — an integer within 32 bits, ASCII text, a byte string,
 * null, a boolean or a link — or an array of up to 23 of them, from `start`
 * to the end of `bytes`, read directly; undefined if the bytes hold
 * anything else (the codec then reads them, and refuses what it refuses).
 * What this accepts the codec accepts too, giving the same value: shortest
 * headers only, links checked as the codec checks them, byte strings copied
 * out, nothing after the item, within `limits` (`enclosing`: the
 * containers around it — an envelope's tag — counted as items and depth).
 */
export const decodeFlat = (bytes: Uint8Array, start: number, limits: DecodeLimits, enclosing = 0): unknown => {
  if (bytes.length > limits.maxBytes || start >= bytes.length) return undefined;
  const head = bytes[start]!;
  const array = head >= 0x80 && head <= 0x97;
  const count = array ? head - 0x80 : 1;
  const out: unknown[] | undefined = array ? [] : undefined;
  let single: unknown;
  let at = array ? start + 1 : start;
  let items = enclosing + (array ? 1 : 0);
  let links = false;
  for (let i = 0; i < count; i++) {
    if (at >= bytes.length) return undefined;
    const initial = bytes[at]!;
    const major = initial >> 5;
    let value: unknown;
    if (major === 7) {
      if (initial < 0xf4 || initial > 0xf6) return undefined;
      value = initial === 0xf6 ? null : initial === 0xf5;
      at += 1;
    } else if (major === 6) {
      // Tag 42 over a byte string: 0x00 and the CID.
      if (initial !== 0xd8 || bytes[at + 1] !== LINK_TAG || bytes[at + 2] === undefined || bytes[at + 2]! >> 5 !== 2) return undefined;
      const header = shortHeader(bytes, at + 2);
      if (!header || header.n < 2 || header.next + header.n > bytes.length || bytes[header.next] !== 0) return undefined;
      at = header.next + header.n;
      try {
        value = linkOf(bytes.subarray(header.next, at), true);
      } catch {
        return undefined;
      }
      items += 1;
      links = true;
    } else {
      const header = shortHeader(bytes, at);
      if (!header) return undefined;
      if (major === 0) value = header.n;
      else if (major === 1) value = -1 - header.n;
      else if (major === 2 || major === 3) {
        const end = header.next + header.n;
        if (end > bytes.length) return undefined;
        if (major === 2) value = new Uint8Array(bytes.subarray(header.next, end));
        else {
          let text = '';
          for (let j = header.next; j < end; j++) {
            const c = bytes[j]!;
            if (c >= 0x80) return undefined;
            text += String.fromCharCode(c);
          }
          value = text;
        }
        header.next = end;
      } else return undefined;
      at = header.next;
    }
    items += 1;
    if (out) out.push(value);
    else single = value;
  }
  if (at !== bytes.length || items > limits.maxItems || enclosing + (array ? 1 : 0) + (links ? 1 : 0) > limits.maxDepth) return undefined;
  return out ?? single;
};

export const decodeWith = (bytes: Uint8Array, limits: DecodeLimits, root?: RootTag): unknown => {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`decode expects a Uint8Array (got ${describe(bytes)})`);
  if (!root) {
    const flat = decodeFlat(bytes, 0, limits);
    if (flat !== undefined) return flat;
  }
  const { floats } = scan(bytes, limits, root?.tag);
  let value: unknown;
  try {
    value = cborgDecodeObjects(bytes, root);
  } catch (error) {
    throw classify(error);
  }
  // The scan proved every header shortest and every map sorted; only a
  // float's width needs the encoder's word (shortest of half, single or
  // double that holds the value exactly; integral values as integers).
  if (floats) {
    let again: Uint8Array;
    try {
      again = root ? root.encode(value) : encode(value);
    } catch (error) {
      throw new WireError('ERR_MALFORMED', (error as Error).message);
    }
    if (!equals(again, bytes)) {
      throw new WireError('ERR_NON_CANONICAL', 'input is not in core deterministic form (a float not in its shortest form)');
    }
  }
  return value;
};

/**
 * Decode bytes this process encoded itself a moment ago (a call's arguments
 * on their way into a closure): the strict checks would only re-prove what
 * `encode` guarantees.
 */
export const decodeTrusted = (bytes: Uint8Array): unknown => cborgDecodeObjects(bytes);

/**
 * `decode`, but a link to one of `links` (CIDs the caller holds, by
 * `linkKey`: say the blocks of a bundle it has just hashed) is that CID
 * itself, checked byte for byte, instead of a new one: the same value.
 */
export const decodeKnowing = (bytes: Uint8Array, links: ReadonlyMap<number, CID>): unknown => {
  knownLinks = links;
  try {
    return decodeWith(bytes, DEFAULT_LIMITS);
  } finally {
    knownLinks = undefined;
  }
};

/** Strictly decode one grid data item. */
export const decode = (bytes: Uint8Array, limits: Partial<DecodeLimits> = {}): unknown =>
  decodeWith(bytes, { ...DEFAULT_LIMITS, ...limits });
