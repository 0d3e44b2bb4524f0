export { encode, decode, DEFAULT_LIMITS, GRID_TAG, type DecodeLimits } from './cbor.js';
export { encodeMessage, decodeMessage, isMessage, leadingCidBytes, type Message } from './envelope.js';
export { WireError, type WireErrorCode } from './errors.js';
