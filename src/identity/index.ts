export {
  generateIdentity,
  identityFromSecret,
  principalFromPublicKey,
  publicKeyFromPrincipal,
  verify,
  verifyMany,
  type SignatureCheck,
  verifyPortable,
  type Identity,
} from './identity.js';
export { loadIdentity, loadKey, loadOrCreateIdentity, KeyFileError, type KeyFileErrorCode } from './key-file.js';
