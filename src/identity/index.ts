export {
  generateIdentity,
  identityFromSecret,
  principalFromPublicKey,
  publicKeyFromPrincipal,
  verify,
  verifyPortable,
  type Identity,
} from './identity.js';
export { loadIdentity, loadOrCreateIdentity, KeyFileError, type KeyFileErrorCode } from './key-file.js';
