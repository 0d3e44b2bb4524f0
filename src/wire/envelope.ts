/**
 * The grid envelope: CBOR tag 1735551332 ("grid") around an array whose
 * first item is a link — the token being called, or the protocol record a
 * response or record belongs to — followed by the payload slots and an
 * optional proof `[signer, signature]`. There is no version field: the
 * leading CID is the protocol.
 */
import { CID } from 'multiformats/cid';
import { decodeWith, DEFAULT_LIMITS, encode, GRID_TAG, linkOf, type DecodeLimits, type RootTag } from './cbor.js';
import { cidOf } from '../interface/ids.js';
import { WireError } from './errors.js';

const ENVELOPE_PREFIX = [0xda, 0x67, 0x72, 0x69, 0x64];

/** A decoded envelope, before the envelope tag is checked for shape. */
class Envelope {
  constructor(readonly items: unknown) {}
}

const encodeEnvelope = (items: unknown): Uint8Array => {
  const body = encode(items);
  const out = new Uint8Array(ENVELOPE_PREFIX.length + body.length);
  out.set(ENVELOPE_PREFIX);
  out.set(body, ENVELOPE_PREFIX.length);
  return out;
};

const ENVELOPE_TAG: RootTag = Object.freeze({
  tag: GRID_TAG,
  decode: (inner: unknown) => new Envelope(inner),
  encode: (decoded: unknown) => encodeEnvelope((decoded as Envelope).items),
});

export const encodeMessage = (cid: CID | string, ...slots: unknown[]): Uint8Array => {
  const link = typeof cid === 'string' ? cidOf(cid) : CID.asCID(cid);
  if (!link) throw new TypeError('encodeMessage: the first slot must be a CID');
  return encodeFlat(link, slots) ?? encodeEnvelope([link, ...slots]);
};

/*
 * The messages of the hot path — a call, a reply, a cancel — hold a link and
 * then only small unsigned integers, byte strings and ASCII text (and null
 * or a boolean): written and read here directly, byte for byte what the
 * codec writes and accepts for them, without building the codec's tokens.
 * Any other message (an array, a map, a float, a large integer, text beyond
 * ASCII, too many slots, limits too tight) goes through the codec.
 */

/** Bytes of the header of major type `major` with argument `n` (0 ≤ n < 2^32), shortest form. */
const headerLength = (n: number): number => (n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5);
const writeHeader = (out: Uint8Array, at: number, major: number, n: number): number => {
  const type = major << 5;
  if (n < 24) {
    out[at] = type | n;
    return at + 1;
  }
  if (n < 0x100) {
    out[at] = type | 24;
    out[at + 1] = n;
    return at + 2;
  }
  if (n < 0x10000) {
    out[at] = type | 25;
    out[at + 1] = n >>> 8;
    out[at + 2] = n & 0xff;
    return at + 3;
  }
  out[at] = type | 26;
  out[at + 1] = n >>> 24;
  out[at + 2] = (n >>> 16) & 0xff;
  out[at + 3] = (n >>> 8) & 0xff;
  out[at + 4] = n & 0xff;
  return at + 5;
};
/** The most slots a flat message may have: its array's header is then one byte. */
const MAX_FLAT_SLOTS = 22;
const MAX_FLAT_ARGUMENT = 2 ** 32 - 1;

const isAscii = (text: string): boolean => {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) return false;
  return true;
};

/** Bytes one slot takes written flat, or -1 if it is not one the flat form writes. */
const flatLength = (slot: unknown): number => {
  if (typeof slot === 'number') return Number.isInteger(slot) && slot >= 0 && slot <= MAX_FLAT_ARGUMENT && !Object.is(slot, -0) ? headerLength(slot) : -1;
  if (slot instanceof Uint8Array) return slot.length <= MAX_FLAT_ARGUMENT ? headerLength(slot.length) + slot.length : -1;
  if (typeof slot === 'string') return slot.length <= MAX_FLAT_ARGUMENT && isAscii(slot) ? headerLength(slot.length) + slot.length : -1;
  return slot === null || slot === true || slot === false ? 1 : -1;
};

const encodeFlat = (link: CID, slots: readonly unknown[]): Uint8Array | undefined => {
  if (slots.length > MAX_FLAT_SLOTS) return undefined;
  const cid = link.bytes;
  // The link: tag 42 (2 bytes), then a byte string of 0x00 and the CID.
  let length = ENVELOPE_PREFIX.length + 1 + 2 + headerLength(cid.length + 1) + cid.length + 1;
  for (const slot of slots) {
    const n = flatLength(slot);
    if (n < 0) return undefined;
    length += n;
  }
  const out = new Uint8Array(length);
  out.set(ENVELOPE_PREFIX);
  let at = ENVELOPE_PREFIX.length;
  out[at++] = 0x80 | (slots.length + 1);
  out[at++] = 0xd8;
  out[at++] = 42;
  at = writeHeader(out, at, 2, cid.length + 1);
  out[at++] = 0;
  out.set(cid, at);
  at += cid.length;
  for (const slot of slots) {
    if (typeof slot === 'number') at = writeHeader(out, at, 0, slot);
    else if (slot instanceof Uint8Array) {
      at = writeHeader(out, at, 2, slot.length);
      out.set(slot, at);
      at += slot.length;
    } else if (typeof slot === 'string') {
      at = writeHeader(out, at, 3, slot.length);
      for (let i = 0; i < slot.length; i++) out[at + i] = slot.charCodeAt(i);
      at += slot.length;
    } else out[at++] = slot === null ? 0xf6 : slot ? 0xf5 : 0xf4;
  }
  return out;
};

/** The argument of the header at `at` in shortest form (up to 4 bytes), with where the item's content starts, or undefined. */
const readHeader = (bytes: Uint8Array, at: number): { n: number; next: number } | undefined => {
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
 * A flat message read directly, or undefined if `bytes` are not one (the
 * codec then reads them, and refuses them if they are not a message at all).
 * What it accepts the codec accepts too, giving the same message: shortest
 * headers only, the link checked as the codec checks it, byte strings
 * copied out, nothing after the last slot.
 */
const decodeFlat = (bytes: Uint8Array, limits: DecodeLimits): Message | undefined => {
  const count = bytes[ENVELOPE_PREFIX.length]! - 0x80;
  // Items: the root tag, the array, tag 42, the link's bytes and one per slot; three deep.
  if (count < 1 || count > MAX_FLAT_SLOTS + 1 || bytes.length > limits.maxBytes || count + 3 > limits.maxItems || limits.maxDepth < 3) return undefined;
  let at = ENVELOPE_PREFIX.length + 1;
  if (bytes[at] !== 0xd8 || bytes[at + 1] !== 42 || bytes[at + 2]! >> 5 !== 2) return undefined;
  const linkHeader = readHeader(bytes, at + 2);
  if (!linkHeader || linkHeader.n < 2 || linkHeader.next + linkHeader.n > bytes.length || bytes[linkHeader.next] !== 0) return undefined;
  at = linkHeader.next + linkHeader.n;
  let cid: CID;
  try {
    cid = linkOf(bytes.subarray(linkHeader.next, at), true);
  } catch {
    return undefined;
  }
  const slots: unknown[] = [];
  for (let i = 1; i < count; i++) {
    if (at >= bytes.length) return undefined;
    const initial = bytes[at]!;
    const major = initial >> 5;
    if (major === 7) {
      if (initial < 0xf4 || initial > 0xf6) return undefined;
      slots.push(initial === 0xf6 ? null : initial === 0xf5);
      at += 1;
      continue;
    }
    if (major !== 0 && major !== 2 && major !== 3) return undefined;
    const header = readHeader(bytes, at);
    if (!header) return undefined;
    if (major === 0) {
      slots.push(header.n);
      at = header.next;
      continue;
    }
    const end = header.next + header.n;
    if (end > bytes.length) return undefined;
    if (major === 2) slots.push(new Uint8Array(bytes.subarray(header.next, end)));
    else {
      let text = '';
      for (let j = header.next; j < end; j++) {
        const c = bytes[j]!;
        if (c >= 0x80) return undefined;
        text += String.fromCharCode(c);
      }
      slots.push(text);
    }
    at = end;
  }
  if (at !== bytes.length) return undefined;
  return Object.freeze({ cid, slots: Object.freeze(slots) });
};

export const isMessage = (bytes: Uint8Array): boolean =>
  bytes.length > ENVELOPE_PREFIX.length && ENVELOPE_PREFIX.every((byte, index) => bytes[index] === byte);

/**
 * The leading CID's bytes, read from the first headers alone (nothing is
 * decoded or copied), so a reader can choose the limits for the kind of
 * message before decoding it; undefined when the bytes do not begin like an
 * envelope whose first item is a link (the decoder then says what is wrong).
 */
export const leadingCidBytes = (bytes: Uint8Array): Uint8Array | undefined => {
  if (!isMessage(bytes)) return undefined;
  let pos = ENVELOPE_PREFIX.length;
  const head = bytes[pos]!;
  // An array of 1 to 23 items has a one-byte header; 0x98–0x9b give its length in 1, 2, 4 or 8 more bytes.
  if (head >= 0x81 && head <= 0x97) pos += 1;
  else if (head >= 0x98 && head <= 0x9b) pos += 1 + (1 << (head - 0x98));
  else return undefined;
  // Tag 42, then a byte string of 1 to 255 bytes: 0x00 (the identity multibase prefix) and the CID.
  if (bytes[pos] !== 0xd8 || bytes[pos + 1] !== 42) return undefined;
  pos += 2;
  const string = bytes[pos];
  let length: number;
  if (string !== undefined && string > 0x40 && string < 0x58) {
    length = string - 0x40;
    pos += 1;
  } else if (string === 0x58 && pos + 1 < bytes.length) {
    length = bytes[pos + 1]!;
    pos += 2;
  } else return undefined;
  if (length < 2 || pos + length > bytes.length || bytes[pos] !== 0) return undefined;
  return bytes.subarray(pos + 1, pos + length);
};

export interface Message {
  readonly cid: CID;
  readonly slots: readonly unknown[];
}

export const decodeMessage = (bytes: Uint8Array, limits: Partial<DecodeLimits> = {}): Message => {
  if (!isMessage(bytes)) throw new WireError('ERR_NOT_A_MESSAGE', 'not a grid message (expected tag 1735551332 first)');
  const all = { ...DEFAULT_LIMITS, ...limits };
  const flat = decodeFlat(bytes, all);
  if (flat) return flat;
  const value = decodeWith(bytes, all, ENVELOPE_TAG);
  const items = value instanceof Envelope ? value.items : undefined;
  if (!Array.isArray(items) || items.length === 0 || !CID.asCID(items[0])) {
    throw new WireError('ERR_NOT_A_MESSAGE', 'a grid message is an array whose first item is a link');
  }
  const [cid, ...slots] = items as [CID, ...unknown[]];
  return Object.freeze({ cid, slots: Object.freeze(slots) });
};
