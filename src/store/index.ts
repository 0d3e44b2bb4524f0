export { blockCid, blockCidBytes, verifyBlock, type HashName } from './hashing.js';
export { StoreError, type StoreErrorCode } from './errors.js';
export type { BlockStore } from './types.js';
export { openFsBlockStore, blockPath, DEFAULT_MAX_BLOCK_BYTES } from './fs-store.js';
export { openMemoryBlockStore } from './memory-store.js';
