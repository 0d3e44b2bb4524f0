export {
  generateIdentity,
  identityFromSecret,
  principalFromPublicKey,
  publicKeyFromPrincipal,
  verify,
  verifyAsync,
  verifyPortable,
  type Identity,
} from './identity.js';
export { loadIdentity, loadOrCreateIdentity, KeyFileError, type KeyFileErrorCode } from './key-file.js';
