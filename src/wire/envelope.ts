/**
 * The grid envelope: CBOR tag 1735551332 ("grid") around an array whose
 * first item is a link — the token being called, or the protocol record a
 * response or record belongs to — followed by the payload slots and an
 * optional proof `[signer, signature]`. There is no version field: the
 * leading CID is the protocol.
 */
import { CID } from 'multiformats/cid';
import { decodeFlat, decodeWith, DEFAULT_LIMITS, encode, encodeFlat, GRID_TAG, type DecodeLimits, type RootTag } from './cbor.js';
import { cidOf } from '../interface/ids.js';
import { WireError } from './errors.js';

const ENVELOPE_PREFIX = [0xda, 0x67, 0x72, 0x69, 0x64];
const PREFIX_BYTES = new Uint8Array(ENVELOPE_PREFIX);

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
  return encodeFlat(slots, link, PREFIX_BYTES) ?? encodeEnvelope([link, ...slots]);
};

/*
 * The messages of the hot path — a call, a reply, a cancel — hold a link and
 * then only small unsigned integers, byte strings and ASCII text (and null
 * or a boolean): written and read directly (cbor.ts encodeFlat, decodeFlat),
 * byte for byte what the codec writes and accepts for them,
 * without building the codec's tokens. Any other message (an array, a map,
 * a float, a large integer, text beyond ASCII, too many slots, limits too
 * tight) goes through the codec.
 */

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
  // A flat message (see above) is read directly, inside the envelope's tag.
  const flat = decodeFlat(bytes, ENVELOPE_PREFIX.length, all, 1);
  if (Array.isArray(flat) && flat[0] instanceof CID) return Object.freeze({ cid: flat[0], slots: Object.freeze(flat.slice(1)) });
  const value = decodeWith(bytes, all, ENVELOPE_TAG);
  const items = value instanceof Envelope ? value.items : undefined;
  if (!Array.isArray(items) || items.length === 0 || !CID.asCID(items[0])) {
    throw new WireError('ERR_NOT_A_MESSAGE', 'a grid message is an array whose first item is a link');
  }
  const [cid, ...slots] = items as [CID, ...unknown[]];
  return Object.freeze({ cid, slots: Object.freeze(slots) });
};
