import { GridError } from '../interface/errors.js';

/** Every refusal of the codec: a stable `code` and a message with the prefix `CBOR decode error: `. */
export type WireErrorCode =
  | 'ERR_TOO_LARGE'
  | 'ERR_TOO_DEEP'
  | 'ERR_TOO_MANY_ITEMS'
  | 'ERR_TRUNCATED'
  | 'ERR_TRAILING_BYTES'
  | 'ERR_INDEFINITE_LENGTH'
  | 'ERR_NON_CANONICAL'
  | 'ERR_DUPLICATE_KEY'
  | 'ERR_BAD_KEY'
  | 'ERR_BAD_TAG'
  | 'ERR_BAD_LINK'
  | 'ERR_BAD_SIMPLE'
  | 'ERR_BAD_FLOAT'
  | 'ERR_NOT_A_MESSAGE'
  | 'ERR_MALFORMED';

export class WireError extends GridError<WireErrorCode> {
  constructor(code: WireErrorCode, message: string) {
    super(code, `CBOR decode error: ${message}`);
  }
}
