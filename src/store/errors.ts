export type StoreErrorCode = 'ERR_NOT_FOUND' | 'ERR_CORRUPT' | 'ERR_UNSUPPORTED_HASH' | 'ERR_MISMATCH' | 'ERR_TOO_LARGE';

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string) {
    super(`store: ${message}`);
    this.name = 'StoreError';
    this.code = code;
  }
}
