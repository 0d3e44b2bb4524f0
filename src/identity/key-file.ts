/**
 * The home's key file: `{"type":"ed25519","secret":"<base64url seed>","principal":"did:key:…"}`,
 * mode 0600. Like ssh, a key file that others can read is refused.
 */
import { link, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { identityFromSecret, type Identity } from './identity.js';
import { GridError } from '../caps/errors.js';

export class KeyFileError extends GridError<'ERR_NO_IDENTITY' | 'ERR_KEY_PERMISSIONS' | 'ERR_KEY_MALFORMED'> {}

export const loadIdentity = async (path: string): Promise<Identity> => {
  let mode: number;
  try {
    mode = (await stat(path)).mode;
  } catch {
    throw new KeyFileError('ERR_NO_IDENTITY', `no identity key at ${path}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new KeyFileError('ERR_KEY_PERMISSIONS', `identity key ${path} is readable by others (mode ${(mode & 0o777).toString(8)}); run chmod 600 on it`);
  }
  const malformed = (why: string) => new KeyFileError('ERR_KEY_MALFORMED', `identity key ${path} is malformed: ${why}`);
  let record: { type?: unknown; secret?: unknown; principal?: unknown };
  try {
    record = JSON.parse(await readFile(path, 'utf8'));
  } catch {
    throw malformed('not JSON');
  }
  if (record?.type !== 'ed25519' || typeof record.secret !== 'string') throw malformed('expected {"type":"ed25519","secret":…}');
  const secret = new Uint8Array(Buffer.from(record.secret, 'base64url'));
  if (secret.length !== 32) throw malformed(`secret is ${secret.length} bytes, expected 32`);
  const identity = identityFromSecret(secret);
  if (record.principal !== identity.principal) throw malformed('principal does not match the secret');
  return identity;
};

/** Load the key, or create it (exclusively, mode 0600) if there is none. */
export const loadOrCreateIdentity = async (path: string, randomBytes: (length: number) => Uint8Array): Promise<Identity> => {
  try {
    return await loadIdentity(path);
  } catch (error) {
    if ((error as KeyFileError).code !== 'ERR_NO_IDENTITY') throw error;
  }
  const secret = randomBytes(32);
  const identity = identityFromSecret(secret);
  const text = `${JSON.stringify({ type: 'ed25519', secret: Buffer.from(secret).toString('base64url'), principal: identity.principal })}\n`;
  // Write the whole file under a temporary name, then link it into place:
  // link refuses to replace, so if another process created a key first, its
  // key wins and we load it.
  const temp = `${path}.${Buffer.from(randomBytes(8)).toString('hex')}.tmp`;
  await writeFile(temp, text, { mode: 0o600, flag: 'wx' });
  try {
    await link(temp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return loadIdentity(path);
  } finally {
    await unlink(temp).catch(() => {});
  }
  return identity;
};
