export { blockCid, blockCidBytes, blockName, verifyBlock, hashers, asCid, type HashName } from './hashing.js';
export { StoreError, DEFAULT_MAX_BLOCK_BYTES, type StoreErrorCode, type BlockStore, type PutOptions } from './types.js';
export { openFsBlockStore, blockPath, removeStaleTemps, type FsBlockStoreOptions } from './fs-store.js';
export { openMemoryBlockStore, type MemoryBlockStoreOptions } from './memory-store.js';
