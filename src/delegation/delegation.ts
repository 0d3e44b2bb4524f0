/**
 * Delegation records. Delegating a token is issuing a screener around it: a
 * record `{ inner, audience, policies, delegator, nonce }`, signed by the
 * delegator and stored as a dag-cbor block whose CID is the new token. It is
 * a closure in the model's sense — its code is the policy modules, its env
 * the inner token and their settings — but any node can check it on its own,
 * which is what lets a delegated token be used while its delegator is offline.
 *
 * The link that wraps the original closure does not name its token: that
 * token is a bearer capability, and the chain travels with every delegate.
 * It names the closure's *sealed reference* instead — a raw-codec CID of
 * sha2-256 over a domain prefix and the token's bytes — which the node that
 * holds the closure can match and nobody else can invert.
 *
 * A chain is the list of records from the token called (outermost) down to
 * the one that wraps the original closure. It is valid when every link is
 * signed by its delegator, names the next link (or the closure) as its inner
 * token, and was made by someone the link it wraps was delegated to; the
 * innermost link must be made by the closure's issuer. Each refusal names
 * the link at fault.
 */
import { CID } from 'multiformats/cid';
import { asModuleId, asPrincipal, DAG_CBOR_CODEC, parseCid, quote, RAW_CODEC, type ModuleId, type Principal, type Token } from '../interface/ids.js';
import { GridError } from '../interface/errors.js';
import { decode, encode } from '../wire/index.js';
import { blockCid } from '../store/hashing.js';
import { concatBytes, verify, type Identity } from '../identity/identity.js';
import { MIN_NONCE_BYTES } from '../closures/closure.js';
import { encodeValue, fromWire, type GridValue } from '../closures/values.js';

const DELEGATION_DOMAIN = new TextEncoder().encode('promisegrid:delegation:v1\n');
const SEALED_DOMAIN = new TextEncoder().encode('promisegrid:sealed-token:v1\n');

/** Sealed references computed lately: every screened call checks its chain's against its closure. */
const sealedMemo = new Map<string, string>();
const MAX_SEALED_MEMO = 4096;

/** The sealed reference to a closure's token, as the innermost link of a chain names it. */
export const sealToken = (token: string): string => {
  let sealed = sealedMemo.get(token);
  if (sealed) return sealed;
  sealed = blockCid(concatBytes(SEALED_DOMAIN, parseCid(token, 'token').bytes), RAW_CODEC).toString();
  if (sealedMemo.size >= MAX_SEALED_MEMO) sealedMemo.clear();
  sealedMemo.set(token, sealed);
  return sealed;
};
/** Most principals one delegation may name as its audience. */
export const MAX_AUDIENCE = 64;
/** Most policies one layer may apply. */
export const MAX_POLICIES = 16;
/** Longest chain of delegations a call may travel through. */
export const MAX_CHAIN = 32;

/** One policy of a layer: a module exporting `screen`, and the settings it is given as `ctx.env`. */
export interface PolicyRef {
  readonly module: ModuleId;
  readonly settings: GridValue;
}

export interface Delegation {
  readonly token: Token;
  /** What this layer wraps: another delegation's token, or the original closure's sealed reference. */
  readonly inner: string;
  /** Who may call through this layer. */
  readonly audience: readonly Principal[];
  readonly policies: readonly PolicyRef[];
  readonly delegator: Principal;
}

export class DelegationError extends GridError {}

const signingBytes = (body: Record<string, unknown>) => concatBytes(DELEGATION_DOMAIN, encode(body));

export interface DelegationSpec {
  /** A delegation's token, or the sealed reference of a closure's (`sealToken`). */
  readonly inner: string;
  readonly audience: readonly string[];
  readonly policies?: ReadonlyArray<{ readonly module: string; readonly settings?: unknown }>;
}

/** Build and sign a delegation record; returns its bytes and the new token. */
export const makeDelegation = async (spec: DelegationSpec, delegator: Identity, nonce: Uint8Array): Promise<{ bytes: Uint8Array; delegation: Delegation }> => {
  if (nonce.length < MIN_NONCE_BYTES) throw new RangeError(`nonce must be at least ${MIN_NONCE_BYTES} bytes`);
  const body = {
    inner: parseCid(spec.inner, 'inner'),
    audience: [...new Set(spec.audience.map((p) => asPrincipal(p)))].sort(),
    // Settings go through the codec: grid data only, links as real links.
    policies: (spec.policies ?? []).map((p) => [CID.parse(asModuleId(p.module)), decode(encodeValue(p.settings ?? null))]),
    delegator: delegator.principal,
    nonce,
  };
  const bytes = encode({ ...body, sig: await delegator.sign(signingBytes(body)) });
  const token = blockCid(bytes, DAG_CBOR_CODEC).toString() as Token;
  return { bytes, delegation: readDelegation(token, bytes) };
};

/** Does this record look like a delegation (rather than a closure)? Cheap; proves nothing. */
export const isDelegationRecord = (record: unknown): boolean =>
  record !== null && typeof record === 'object' && !Array.isArray(record) && 'delegator' in record && 'inner' in record;

/**
 * Decode and check a delegation record that hashes to `token` (the caller
 * proves that): its shape, limits, and the delegator's signature.
 */
export const readDelegation = (token: Token, bytes: Uint8Array): Delegation => {
  const bad = (why: string) => new DelegationError('ERR_BAD_DELEGATION', `delegation ${token} is not valid: ${why}`);
  let record: Record<string, unknown>;
  try {
    record = decode(bytes) as Record<string, unknown>;
  } catch (error) {
    throw bad((error as Error).message);
  }
  if (!isDelegationRecord(record)) throw bad('not a delegation record');
  const { inner, audience, policies, delegator, nonce, sig, ...extra } = record;
  if (Object.keys(extra).length > 0) throw bad(`unknown field ${quote(Object.keys(extra)[0])}`);
  const innerCid = CID.asCID(inner);
  if (!innerCid || (innerCid.code !== DAG_CBOR_CODEC && innerCid.code !== RAW_CODEC)) throw bad('inner is neither a token link nor a sealed reference');
  if (!Array.isArray(audience) || audience.length === 0 || audience.length > MAX_AUDIENCE) throw bad(`the audience names 1 to ${MAX_AUDIENCE} principals`);
  if (!Array.isArray(policies) || policies.length > MAX_POLICIES) throw bad(`a layer has at most ${MAX_POLICIES} policies`);
  if (!(nonce instanceof Uint8Array) || nonce.length < MIN_NONCE_BYTES) throw bad('nonce too short');
  if (!(sig instanceof Uint8Array)) throw bad('missing signature');
  let checked: { delegator: Principal; audience: Principal[]; policies: PolicyRef[] };
  try {
    checked = {
      delegator: asPrincipal(delegator),
      audience: audience.map((p) => asPrincipal(p)),
      policies: policies.map((entry) => {
        const moduleCid = Array.isArray(entry) && entry.length === 2 ? CID.asCID(entry[0]) : null;
        if (!moduleCid) throw new TypeError('a policy is [module link, settings]');
        return harden({ module: asModuleId(moduleCid.toString()), settings: fromWire((entry as unknown[])[1]) });
      }),
    };
  } catch (error) {
    throw bad((error as Error).message);
  }
  const body = { inner, audience, policies, delegator, nonce };
  if (!verify(checked.delegator, signingBytes(body), sig)) throw bad(`signature does not verify for delegator ${checked.delegator}`);
  return harden({ token, inner: innerCid.toString(), ...checked });
};

/** Short form of a token for messages: enough to tell links apart. */
const short = (token: string) => `${token.slice(0, 12)}…${token.slice(-6)}`;

/**
 * Check a chain (outermost first) against the closure it leads to. Throws a
 * DelegationError naming the first bad link; `revokedReason` says whether a
 * link has been revoked (and why).
 */
export const verifyChain = (
  chain: readonly Delegation[],
  root: { readonly token: Token; readonly issuer: Principal; readonly sealed?: string },
  revokedReason: (token: Token) => string | undefined,
): void => {
  // A node that holds no closure (a document's replica checking a writer) knows it by its sealed reference only.
  const sealed = root.sealed ?? sealToken(root.token);
  if (chain.length === 0) throw new DelegationError('ERR_BAD_CHAIN', 'a delegation chain has at least one link');
  if (chain.length > MAX_CHAIN) throw new DelegationError('ERR_BAD_CHAIN', `a delegation chain has at most ${MAX_CHAIN} links (got ${chain.length})`);
  chain.forEach((link, index) => {
    const name = `delegation link ${index + 1} of ${chain.length} (${short(link.token)})`;
    const below = chain[index + 1];
    if (below && link.inner !== below.token) {
      throw new DelegationError('ERR_BAD_CHAIN', `${name} wraps ${short(link.inner)}, not the next link ${short(below.token)}`);
    }
    // Refusals name no closure token: whoever sent the chain may not hold it.
    if (!below && link.inner !== sealed) throw new DelegationError('ERR_BAD_CHAIN', `${name} does not wrap the token called`);
    if (below && !below.audience.includes(link.delegator)) {
      throw new DelegationError('ERR_BAD_CHAIN', `${name} was made by ${link.delegator}, who is not in the audience of the link it wraps`);
    }
    if (!below && link.delegator !== root.issuer) {
      throw new DelegationError('ERR_BAD_CHAIN', `${name} was made by ${link.delegator}, but the token's issuer is ${root.issuer}`);
    }
    const reason = revokedReason(link.token);
    if (reason !== undefined) throw new DelegationError('ERR_REVOKED', `${name} is revoked: ${reason}`);
  });
};
