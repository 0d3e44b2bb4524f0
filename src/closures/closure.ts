/**
 * Closure records. A closure is `{ code, export, env, issuer, nonce }`, signed
 * by its issuer and stored as a dag-cbor block; the block's CID is the token.
 * The nonce makes the token unguessable even when code and env are public, so
 * holding the token — not knowing what it does — is the authority to call it.
 *
 * The signature covers the record without its `sig` field, behind a domain
 * prefix so that a closure signature can never be replayed as any other kind
 * of signed grid statement.
 */
import { CID } from 'multiformats/cid';
import { asModuleId, asPrincipal, DAG_CBOR_CODEC, quote, type ModuleId, type Principal, type Token } from '../interface/ids.js';
import { decode, encode } from '../wire/index.js';
import { blockCid } from '../store/hashing.js';
import { concatBytes, verify, type Identity } from '../identity/identity.js';
import { encodeValue, fromWire, type GridValue } from './values.js';
import { GridError } from '../interface/errors.js';

export const MIN_NONCE_BYTES = 16;
const EXPORT_NAME = /^[A-Za-z_$][\w$]{0,127}$/;
const CLOSURE_DOMAIN = new TextEncoder().encode('promisegrid:closure:v1\n');

export interface Closure {
  readonly token: Token;
  readonly code: ModuleId;
  readonly export: string;
  readonly env: GridValue;
  readonly issuer: Principal;
  /** The issuer's own time limit for a call, in ms; the node's ceiling still applies. */
  readonly timeLimitMs?: number;
  /**
   * The issuer lets any holder of the token fetch the closure (code and env)
   * and run it on its own node: the env is then no secret, and the closure
   * answers while the issuer's node is offline.
   */
  readonly replicable?: true;
}

export class ClosureError extends GridError {}

const signingBytes = (body: Record<string, unknown>) => concatBytes(CLOSURE_DOMAIN, encode(body));

const assertTimeLimit = (ms: unknown): number => {
  if (!Number.isSafeInteger(ms) || (ms as number) <= 0) throw new ClosureError('ERR_BAD_LIMIT', `a time limit is a positive whole number of milliseconds (got ${quote(ms)})`);
  return ms as number;
};

export const assertExportName = (name: unknown): string => {
  if (typeof name !== 'string' || !EXPORT_NAME.test(name)) {
    throw new ClosureError('ERR_BAD_EXPORT', `export name must be a JavaScript identifier (got ${quote(name)})`);
  }
  return name;
};

/** Build and sign a closure record; returns its bytes and token. */
export const makeClosure = async (
  spec: { code: ModuleId; export: string; env: unknown; timeLimitMs?: number; replicable?: boolean },
  issuer: Identity,
  nonce: Uint8Array,
): Promise<{ bytes: Uint8Array; closure: Closure }> => {
  if (nonce.length < MIN_NONCE_BYTES) throw new RangeError(`nonce must be at least ${MIN_NONCE_BYTES} bytes`);
  // Round-trip the env through the codec: it must be grid data, and links in
  // `{ "/": cid }` form become real links in the record.
  const body = {
    code: CID.parse(spec.code),
    export: assertExportName(spec.export),
    env: decode(encodeValue(spec.env)),
    issuer: issuer.principal,
    nonce,
    ...(spec.timeLimitMs === undefined ? {} : { time: assertTimeLimit(spec.timeLimitMs) }),
    ...(spec.replicable ? { replicable: true } : {}),
  };
  const bytes = encode({ ...body, sig: await issuer.sign(signingBytes(body)) });
  const token = blockCid(bytes, DAG_CBOR_CODEC).toString() as Token;
  return { bytes, closure: readClosure(token, bytes) };
};

/**
 * Decode and check a stored closure record. The store already proved the
 * bytes hash to the token; this proves the issuer signed them.
 */
export const readClosure = (token: Token, bytes: Uint8Array): Closure => {
  const record = decode(bytes) as Record<string, unknown>;
  const bad = (why: string) => new ClosureError('ERR_BAD_CLOSURE', `token ${token} is not a valid closure: ${why}`);
  if (record === null || typeof record !== 'object' || Array.isArray(record)) throw bad('not a record');
  const { code, export: exportName, env, issuer, nonce, sig, time, replicable, ...extra } = record;
  if (Object.keys(extra).length > 0) throw bad(`unknown field ${quote(Object.keys(extra)[0])}`);
  const codeCid = CID.asCID(code);
  if (!codeCid) throw bad('code is not a link');
  if (!(nonce instanceof Uint8Array) || nonce.length < MIN_NONCE_BYTES) throw bad('nonce too short');
  if (!(sig instanceof Uint8Array)) throw bad('missing signature');
  let principal: Principal;
  let moduleId: ModuleId;
  try {
    principal = asPrincipal(issuer);
    moduleId = asModuleId(codeCid.toString());
    assertExportName(exportName);
    if (time !== undefined) assertTimeLimit(time);
    if (replicable !== undefined && replicable !== true) throw new TypeError('replicable, when present, is true');
  } catch (error) {
    throw bad((error as Error).message);
  }
  const body = { code: codeCid, export: exportName, env, issuer, nonce, ...(time === undefined ? {} : { time }), ...(replicable ? { replicable } : {}) };
  if (!verify(principal, signingBytes(body), sig)) throw bad(`signature does not verify for issuer ${principal}`);
  return harden({
    token,
    code: moduleId,
    export: exportName as string,
    env: fromWire(env),
    issuer: principal,
    ...(time === undefined ? {} : { timeLimitMs: time as number }),
    ...(replicable ? { replicable: true as const } : {}),
  });
};
