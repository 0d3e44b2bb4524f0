/**
 * The grid envelope: CBOR tag 1735551332 ("grid") around an array whose
 * first item is a link — the token being called, or the protocol record a
 * response or record belongs to — followed by the payload slots and an
 * optional proof `[signer, signature]`. There is no version field: the
 * leading CID is the protocol.
 */
import { CID } from 'multiformats/cid';
import { decodeWith, DEFAULT_LIMITS, encode, GRID_TAG, type DecodeLimits, type RootTag } from './cbor.js';
import { cidOf } from '../caps/ids.js';
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
  return encodeEnvelope([link, ...slots]);
};

export const isMessage = (bytes: Uint8Array): boolean =>
  bytes.length > ENVELOPE_PREFIX.length && ENVELOPE_PREFIX.every((byte, index) => bytes[index] === byte);

export interface Message {
  readonly cid: CID;
  readonly slots: readonly unknown[];
}

export const decodeMessage = (bytes: Uint8Array, limits: Partial<DecodeLimits> = {}): Message => {
  if (!isMessage(bytes)) throw new WireError('ERR_NOT_A_MESSAGE', 'not a grid message (expected tag 1735551332 first)');
  const value = decodeWith(bytes, { ...DEFAULT_LIMITS, ...limits }, ENVELOPE_TAG);
  const items = value instanceof Envelope ? value.items : undefined;
  if (!Array.isArray(items) || items.length === 0 || !CID.asCID(items[0])) {
    throw new WireError('ERR_NOT_A_MESSAGE', 'a grid message is an array whose first item is a link');
  }
  const [cid, ...slots] = items as [CID, ...unknown[]];
  return Object.freeze({ cid, slots: Object.freeze(slots) });
};
