/**
 * The home's key file, one line of JSON:
 *
 *     {"type":"ed25519","secret":"<32-byte seed, base64url>","principal":"did:key:z6Mk…"}
 *
 * The principal is redundant on purpose: a file whose seed and principal
 * disagree was damaged or edited, and is refused rather than silently turned
 * into some other identity. Like ssh, a key file that the group or others can
 * access is refused (on POSIX systems; Windows has no mode bits to check).
 *
 * Creation is exclusive: the file is written and fsynced under a temporary
 * name, then hard-linked into place. `link` refuses to replace an existing
 * file, so when two processes initialise one home at once, the first key
 * wins and the second process loads it instead of overwriting it.
 */
import { constants } from 'node:fs';
import { link, open, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { GridError } from '../interface/errors.js';
import { quote } from '../interface/ids.js';
import { identityFromSecret, type Identity } from './identity.js';

export type KeyFileErrorCode = 'ERR_NO_IDENTITY' | 'ERR_KEY_PERMISSIONS' | 'ERR_KEY_MALFORMED';

export class KeyFileError extends GridError<KeyFileErrorCode> {
  constructor(code: KeyFileErrorCode, message: string) {
    super(code, `identity: ${message}`);
  }
}

/** A key file is about 150 bytes; anything much larger is not one. */
const MAX_KEY_FILE_BYTES = 4096;
const SEED_BASE64URL = /^[A-Za-z0-9_-]{43}$/;
const FIELDS = ['type', 'secret', 'principal'];
const CHECK_MODE = process.platform !== 'win32';

const malformed = (path: string, why: string) => new KeyFileError('ERR_KEY_MALFORMED', `identity key ${path} is malformed: ${why}`);

const errno = (error: unknown): string | undefined => (error as NodeJS.ErrnoException | null)?.code;

/** Read the key file through one handle, so the mode we check is the mode of the file we read. */
const readKeyFile = async (path: string): Promise<string> => {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') throw new KeyFileError('ERR_NO_IDENTITY', `no identity key at ${path}`);
    throw error;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw malformed(path, 'not a regular file');
    if (CHECK_MODE && (info.mode & 0o077) !== 0) {
      const mode = (info.mode & 0o777).toString(8);
      throw new KeyFileError('ERR_KEY_PERMISSIONS', `identity key ${path} is accessible by group or others (mode ${mode}); run: chmod 600 ${path}`);
    }
    if (info.size > MAX_KEY_FILE_BYTES) {
      throw malformed(path, `${info.size} bytes (a key file is under ${MAX_KEY_FILE_BYTES})`);
    }
    const buffer = new Uint8Array(MAX_KEY_FILE_BYTES + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return new TextDecoder('utf-8', { fatal: true }).decode(buffer.subarray(0, bytesRead));
  } catch (error) {
    if (error instanceof TypeError) throw malformed(path, 'not UTF-8 text');
    throw error;
  } finally {
    await handle.close();
  }
};

/** Load the identity whose key file is at `path`. */
export const loadIdentity = async (path: string): Promise<Identity> => (await loadKey(path)).identity;

/**
 * The identity and its 32-byte seed: for the one other key made from it,
 * the node's libp2p key (src/p2p/host.ts), so its peer id and its did:key
 * name one principal. Whoever asks for the seed holds it; nothing else does.
 */
export const loadKey = async (path: string): Promise<{ identity: Identity; seed: Uint8Array }> => {
  if (typeof path !== 'string' || path === '') throw new TypeError(`identity: key path must be a non-empty string (got ${quote(path)})`);
  const text = await readKeyFile(path);
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch {
    throw malformed(path, 'not JSON');
  }
  if (record === null || typeof record !== 'object' || Array.isArray(record)) throw malformed(path, 'expected a JSON object');
  const { type, secret, principal } = record as Record<string, unknown>;
  const extra = Object.keys(record).find((key) => !FIELDS.includes(key));
  if (extra !== undefined) throw malformed(path, `unknown field ${quote(extra)}`);
  if (type !== 'ed25519') throw malformed(path, `type is ${quote(type)}, expected "ed25519"`);
  if (typeof secret !== 'string' || !SEED_BASE64URL.test(secret)) throw malformed(path, 'secret must be a 32-byte seed in unpadded base64url');
  if (typeof principal !== 'string') throw malformed(path, 'principal is missing');
  const seed = new Uint8Array(Buffer.from(secret, 'base64url'));
  const identity = identityFromSecret(seed);
  if (principal !== identity.principal) {
    throw malformed(path, `principal ${quote(principal)} does not match the secret (which is ${identity.principal})`);
  }
  return { identity, seed };
};

const syncDir = async (path: string) => {
  try {
    const handle = await open(path, constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Not every platform can fsync a directory (Windows cannot open one); the file itself is synced.
  }
};

/** Load the key at `path`, or create it (exclusively, mode 0600) if there is none. */
export const loadOrCreateIdentity = async (path: string, randomBytes: (length: number) => Uint8Array): Promise<Identity> => {
  if (typeof randomBytes !== 'function') throw new TypeError(`identity: randomBytes must be a function (got ${quote(randomBytes)})`);
  try {
    return await loadIdentity(path);
  } catch (error) {
    if (!(error instanceof KeyFileError && error.code === 'ERR_NO_IDENTITY')) throw error;
  }
  const secret = randomBytes(32);
  const identity = identityFromSecret(secret);
  const text = `${JSON.stringify({ type: 'ed25519', secret: Buffer.from(secret).toString('base64url'), principal: identity.principal })}\n`;
  const temp = `${path}.${Buffer.from(randomBytes(8)).toString('hex')}.tmp`;
  const handle = await open(temp, 'wx', 0o600);
  try {
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(temp, path);
  } catch (error) {
    if (errno(error) === 'EEXIST') return loadIdentity(path); // another process won the race: use its key
    if (errno(error) !== 'EPERM' && errno(error) !== 'ENOTSUP' && errno(error) !== 'EOPNOTSUPP') throw error;
    // A filesystem without hard links: exclusive create is still exclusive, just not atomic.
    try {
      await writeFile(path, text, { flag: 'wx', mode: 0o600 });
    } catch (fallbackError) {
      if (errno(fallbackError) === 'EEXIST') return loadIdentity(path);
      throw fallbackError;
    }
  } finally {
    await unlink(temp).catch(() => {});
  }
  await syncDir(dirname(path));
  return identity;
};
