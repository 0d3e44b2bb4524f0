/**
 * Branded identifiers. A token, a module id and a principal are all strings on
 * the wire and in the CLI, but they are different authorities: passing a
 * principal where a token is expected must fail to type-check, and at a trust
 * boundary it must fail at run time with the bad value quoted.
 */
import { CID } from 'multiformats/cid';

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** Any block address: a CIDv1 printed in base32. */
export type BlockId = Brand<string, 'BlockId'>;
/** The CID of a signed closure record: its address and the authority to call it. */
export type Token = Brand<string, 'Token'>;
/** The CID of a stored module (JS source or WebAssembly bytes, codec raw). */
export type ModuleId = Brand<string, 'ModuleId'>;
/** An Ed25519 identity printed as `did:key:z6Mk…`. */
export type Principal = Brand<string, 'Principal'>;

export const RAW_CODEC = 0x55;
export const DAG_CBOR_CODEC = 0x71;

const quote = (x: unknown): string => {
  if (typeof x === 'string') return JSON.stringify(x.length > 80 ? `${x.slice(0, 77)}...` : x);
  if (x === null || typeof x !== 'object') return String(x);
  return Object.prototype.toString.call(x);
};

/**
 * `CID.parse` with a bounded memo: the same tokens recur message after
 * message and record after record, and parsing base32 costs more than the
 * rest of encoding a small message. CIDs are immutable, so sharing is safe.
 */
const parsedCids = new Map<string, CID>();
const MAX_PARSED_CIDS = 4096;
export const cidOf = (text: string): CID => {
  let cid = parsedCids.get(text);
  if (!cid) {
    cid = CID.parse(text);
    if (parsedCids.size >= MAX_PARSED_CIDS) parsedCids.clear();
    parsedCids.set(text, cid);
  }
  return cid;
};

/** Parse a CIDv1 string, or explain in one line why it is not one. */
export const parseCid = (text: unknown, what = 'CID'): CID => {
  if (typeof text !== 'string') throw new TypeError(`${what} must be a string (got ${quote(text)})`);
  let cid: CID;
  try {
    cid = cidOf(text);
  } catch {
    throw new TypeError(`${what} is not a valid CID: ${quote(text)}`);
  }
  if (cid.version !== 1) throw new TypeError(`${what} must be a CIDv1: ${quote(text)}`);
  return cid;
};

const assertCodec = (cid: CID, codec: number, what: string, text: string) => {
  if (cid.code !== codec) {
    throw new TypeError(
      `${what} has the wrong codec (got 0x${cid.code.toString(16)}, expected 0x${codec.toString(16)}): ${quote(text)}`,
    );
  }
};

/** The token a decoded link names (a CIDv1 of a dag-cbor closure record), without printing and parsing it again. */
export const tokenOfCid = (cid: CID): Token => {
  const text = cid.toString();
  if (cid.version !== 1) throw new TypeError(`token must be a CIDv1: ${quote(text)}`);
  assertCodec(cid, DAG_CBOR_CODEC, 'token', text);
  return text as Token;
};

export const asBlockId = (x: unknown): BlockId => parseCid(x, 'block id').toString() as BlockId;

export const asToken = (x: unknown): Token => {
  const cid = parseCid(x, 'token');
  assertCodec(cid, DAG_CBOR_CODEC, 'token', x as string);
  return cid.toString() as Token;
};

export const asModuleId = (x: unknown): ModuleId => {
  const cid = parseCid(x, 'module id');
  assertCodec(cid, RAW_CODEC, 'module id', x as string);
  return cid.toString() as ModuleId;
};

const DID_KEY_ED25519 = /^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44,46}$/;

export const asPrincipal = (x: unknown): Principal => {
  if (typeof x !== 'string' || !DID_KEY_ED25519.test(x)) {
    throw new TypeError(`principal must be an Ed25519 did:key (did:key:z6Mk…): ${quote(x)}`);
  }
  return x as Principal;
};

export const isToken = (x: unknown): x is Token => {
  try {
    asToken(x);
    return true;
  } catch {
    return false;
  }
};

export { quote };
