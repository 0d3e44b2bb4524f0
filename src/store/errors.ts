import { GridError } from '../caps/errors.js';

export type StoreErrorCode = 'ERR_NOT_FOUND' | 'ERR_CORRUPT' | 'ERR_UNSUPPORTED_HASH' | 'ERR_MISMATCH' | 'ERR_TOO_LARGE';

export class StoreError extends GridError<StoreErrorCode> {
  constructor(code: StoreErrorCode, message: string) {
    super(code, `store: ${message}`);
  }
}
