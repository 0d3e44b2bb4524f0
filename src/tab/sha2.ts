/** SHA-2 in a browser tab (in place of src/store/sha2.ts): @noble/hashes, synchronous as the store needs it. */
import { sha256, sha512 } from '@noble/hashes/sha2.js';

export const sha2Digest = (algorithm: 'sha256' | 'sha512') => (algorithm === 'sha256' ? sha256 : sha512);
