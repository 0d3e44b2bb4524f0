/**
 * The grid messages a session carries after the handshake, besides CapTP.
 * Each is one envelope per WebSocket frame; its leading CID says what it is:
 *
 *   <token>        [id, args, flags, path?, chain?] call the token (args: canonical CBOR of the argument array;
 *                                           flags: 1 follow further promises; path: the nodes a forwarded call passed,
 *                                           null if none; chain: [links, modules], the delegation records and
 *                                           policy modules of a delegated token, for a node that has not seen them)
 *   reply          [id, status, payload, flags, code?]  the answer to request `id`: 0 fulfilled (value bytes),
 *                                           1 revoked (reason, and its code: see REVOKE_CODES; a code that is
 *                                           missing or unknown reads as `other`), 2 promised (token);
 *                                           flags: 1 cacheable, 2 replicable
 *   revocation     [id, notice]             a signed revocation, for nodes that cached the token's answers
 *   fetch          [id, token]              a replicable closure's blocks (answered with { closure, modules })
 *   records        [id, token]              the journal records about a token the node may show the asker
 *                                           (answered with a signed disclosure, see journal/disclosure.ts)
 *   cancel         [id]                     the sender no longer wants the answer to its call `id`: the
 *                                           other side ends it `revoked: cancelled by caller` (and stops its
 *                                           vat); no reply of its own, the call's reply says how it ended
 *   doc-sync       [id, token, doc, haves, chain]  what of a document the sender lacks, given its heads `haves`
 *                                           (answered with a bundle { doc, blocks, more }, docs/sync.ts): `token`
 *                                           reaches the document for the sender (null if the sender issued it),
 *                                           `doc` names it (null: the one `token` reaches), `chain` is null or
 *                                           the delegated token's [links, modules]
 *   doc-heads      [doc, heads, pushed]     a notice: the sender's heads of `doc` changed (sent only to peers
 *                                           that synced `doc` with it); `pushed` is null or the bundle of the
 *                                           versions that made those heads, as a sync answer would carry them,
 *                                           sent to a peer whose own request the sender answered; no reply
 *
 * A call is addressed to the token itself (README.md, "Choices made where
 * the design is silent"): the message
 * is the call. Requests are numbered by their sender; every request gets
 * exactly one reply. This path carries the grid's calls without CapTP's
 * bookkeeping (exports, imports, GC messages), which costs a round trip
 * several times over; CapTP stays for live references and the owner's
 * operations.
 */
import type { CID } from 'multiformats/cid';
import { asPrincipal, asToken, DAG_CBOR_CODEC, tokenOfCid, type Principal, type Token } from '../interface/ids.js';
import { decodeValue, encodeValue, VALUE_LIMITS, type GridValue } from '../closures/values.js';
import { blockCid } from '../store/hashing.js';
import { encode, encodeMessage, type DecodeLimits, type Message } from '../wire/index.js';
import { asRevokeCode, revoked, type Outcome } from '../interface/outcome.js';
import type { Answer, ChainBlocks, Replica } from '../wire/shapes.js';
import type { RevocationNotice } from '../kernel/revocations.js';

/** The protocol records the envelope's first CID names. */
export const protocolCid = (name: string): CID => blockCid(encode({ protocol: name }), DAG_CBOR_CODEC);
export const REPLY_PROTOCOL = protocolCid('promisegrid/reply/v1');
export const REVOCATION_PROTOCOL = protocolCid('promisegrid/revocation/v1');
export const FETCH_PROTOCOL = protocolCid('promisegrid/fetch/v1');
export const RECORDS_PROTOCOL = protocolCid('promisegrid/records/v1');
export const CANCEL_PROTOCOL = protocolCid('promisegrid/cancel/v1');
export const DOC_SYNC_PROTOCOL = protocolCid('promisegrid/doc-sync/v1');
export const DOC_HEADS_PROTOCOL = protocolCid('promisegrid/doc-heads/v1');

/** How a call travels: as the caller's own, or forwarded along `path` (the nodes it passed, first to last). */
export interface WireCallOptions {
  readonly follow?: boolean;
  readonly path?: readonly Principal[];
  readonly chain?: ChainBlocks;
}

/** Most blocks of each kind a call's chain may carry (the kernel checks the chain itself). */
const MAX_CHAIN_BLOCKS = 64;

/*
 * The most CBOR items one envelope of each kind may hold, counted by the
 * strict decoder's header scan before anything is built: a frame is refused
 * for its item count at the cost of scanning that many headers, never of
 * building a million objects. Arguments and values are one byte string in
 * the envelope, whatever they hold; they are decoded apart, under
 * VALUE_LIMITS (closures/values.ts).
 */
/**
 * A call: the root tag, the array and the token's link (3), id, arguments,
 * flags (3), a path of at most 64 principals (1 + 64: session.ts MAX_PATH)
 * and a chain of at most MAX_CHAIN_BLOCKS records and as many modules
 * (3 + 128): 202 at most, rounded up.
 */
export const MAX_CALL_ITEMS = 256;
/**
 * A reply, revocation, fetch, records or cancel: a handful of slots (the
 * largest, a revocation, is 3 + id + a notice map of 4 fields = 13 items).
 */
export const MAX_REQUEST_ITEMS = 32;
/** The strict decoder's limits for an envelope of MAX_CALL_ITEMS or MAX_REQUEST_ITEMS items. */
export const envelopeLimits = (maxItems: number): Partial<DecodeLimits> => Object.freeze({ maxItems, maxDepth: 8 });

export class FrameError extends Error {
  readonly code = 'ERR_FRAME';
}

const bad = (why: string): never => {
  throw new FrameError(why);
};

const requestId = (value: unknown): number =>
  Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : bad(`a request id is a whole number (got ${typeof value})`);

/*
 * Calls and replies are positional arrays, not maps: they are the hot path,
 * and a map's keys cost more to encode (sorted) and decode than the rest of
 * a small message. Flags are bits of one unsigned integer.
 */
const FOLLOW = 1;
const CACHEABLE = 1;
const REPLICABLE = 2;
const STATUSES = ['fulfilled', 'revoked', 'promised'] as const;

export const encodeCall = (id: number, token: Token, args: readonly unknown[], options: WireCallOptions): Uint8Array => {
  const path = options.path ?? [];
  const flags = options.follow ? FOLLOW : 0;
  // Trailing slots are left out when empty: a plain call is [id, args, flags].
  if (options.chain) {
    return encodeMessage(token, id, encodeValue(args), flags, path.length > 0 ? [...path] : null, chainValue(options.chain));
  }
  return encodeMessage(token, id, encodeValue(args), flags, ...(path.length > 0 ? [[...path]] : []));
};

/** A chain as it travels, in a call and in a grid URL: `[links, modules]`. */
export const chainValue = (chain: ChainBlocks): [Uint8Array[], Uint8Array[]] => [[...chain.links], [...chain.modules]];

const isBytesList = (value: unknown): value is Uint8Array[] =>
  Array.isArray(value) && value.length <= MAX_CHAIN_BLOCKS && value.every((item) => item instanceof Uint8Array);

/** `chainValue` read back: undefined unless it is 1 to MAX_CHAIN_BLOCKS records and at most as many modules, all bytes. */
export const chainFrom = (value: unknown): ChainBlocks | undefined =>
  Array.isArray(value) && value.length === 2 && isBytesList(value[0]) && isBytesList(value[1]) && value[0].length > 0 ? { links: value[0], modules: value[1] } : undefined;

const decodeChain = (value: unknown): ChainBlocks =>
  chainFrom(value) ?? bad(`a chain is [links, modules]: 1 to ${MAX_CHAIN_BLOCKS} records and at most ${MAX_CHAIN_BLOCKS} modules, all bytes`);

/** A value beyond VALUE_LIMITS (too many items, too many bytes): a well-formed message asking too much, answered rather than taken for a broken peer. */
const overLimits = (error: unknown) => ['ERR_TOO_MANY_ITEMS', 'ERR_TOO_LARGE'].includes((error as { code?: string }).code ?? '');

/**
 * A call read back. `refusal`: why its arguments are refused though the
 * frame is sound (beyond VALUE_LIMITS); the call is then answered revoked
 * with it, and `args` is empty. Anything else malformed throws.
 */
export const decodeCall = (
  message: Message,
  maxPath: number,
): { id: number; token: Token; args: GridValue[]; argsBytes: Uint8Array; options: WireCallOptions; refusal?: string } => {
  // Slots by index, objects built whole: this is every call's path, and destructuring and spreading cost more here than the rest.
  const { slots } = message;
  const id = slots[0];
  const args = slots[1];
  const flags = slots[2];
  const path = slots[3];
  const chain = slots[4];
  if (slots.length > 5 || !(args instanceof Uint8Array) || !Number.isSafeInteger(flags)) bad('a call is [id, args bytes, flags, path?, chain?]');
  // A null path only makes room for a chain after it.
  const noPath = path === undefined || (path === null && chain !== undefined);
  if (!noPath && (!Array.isArray(path) || path.length === 0 || path.length > maxPath)) bad(`a forwarding path is a list of 1 to ${maxPath} principals`);
  const checkedId = requestId(id);
  const token = tokenOfCid(message.cid);
  const options: { follow: boolean; path?: Principal[]; chain?: ChainBlocks } = { follow: ((flags as number) & FOLLOW) !== 0 };
  if (!noPath) options.path = (path as unknown[]).map((p) => asPrincipal(p));
  if (chain !== undefined) options.chain = decodeChain(chain);
  let decodedArgs: GridValue;
  try {
    decodedArgs = decodeValue(args as Uint8Array, VALUE_LIMITS);
  } catch (error) {
    if (overLimits(error)) return { id: checkedId, token, argsBytes: args as Uint8Array, options, args: [], refusal: `bad arguments: ${(error as Error).message.replace(/^CBOR decode error: /, '')}` };
    throw error;
  }
  if (!Array.isArray(decodedArgs)) bad('call arguments must be an array');
  return { id: checkedId, token, argsBytes: args as Uint8Array, options, args: decodedArgs as GridValue[] };
};

export const encodeReply = (id: number, answer: Answer): Uint8Array => {
  const { outcome } = answer;
  if (outcome.status === 'revoked') return encodeMessage(REPLY_PROTOCOL, id, 1, outcome.reason, 0, asRevokeCode(outcome.code));
  if (outcome.status === 'promised') return encodeMessage(REPLY_PROTOCOL, id, 2, outcome.token, 0);
  const flags = (answer.cacheable ? CACHEABLE : 0) | (answer.replicable ? REPLICABLE : 0);
  return encodeMessage(REPLY_PROTOCOL, id, 0, answer.valueBytes ?? encodeValue(outcome.value), flags);
};

/** A reply's id, once its shape is checked, without decoding its value: a reply nobody waits for is dropped at this cost. */
export const replyId = (message: Message): number => {
  const { slots } = message;
  const id = slots[0];
  const code = slots[1];
  const payload = slots[2];
  const flags = slots[3];
  const status = typeof code === 'number' ? STATUSES[code] : undefined;
  // Only a revocation has a fifth slot, its code.
  if (slots.length > (status === 'revoked' ? 5 : 4) || !status || !Number.isSafeInteger(flags)) bad('a reply is [id, status, payload, flags, code?]');
  if (status === 'fulfilled' ? !(payload instanceof Uint8Array) : status === 'revoked' ? typeof payload !== 'string' : false) bad(`a ${status} reply has the wrong payload`);
  return requestId(id);
};

/**
 * `limits`: the strict decoder's for the value (a call's result: VALUE_LIMITS;
 * a disclosure or a replica, which are larger, the codec's own). A value
 * beyond them ends the request revoked, saying so.
 */
export const decodeReply = (message: Message, limits: Partial<DecodeLimits> = VALUE_LIMITS): { id: number; answer: Answer } => {
  const id = replyId(message);
  const { slots } = message;
  const code = slots[1];
  const payload = slots[2];
  const flags = slots[3];
  const revokeCode = slots[4];
  const status = STATUSES[code as number]!;
  let outcome: Outcome;
  if (status === 'fulfilled' && payload instanceof Uint8Array) {
    try {
      outcome = Object.freeze({ status, value: decodeValue(payload, limits) });
    } catch (error) {
      if (!overLimits(error)) throw error;
      return { id, answer: { outcome: revoked('malformed', `reply refused: ${(error as Error).message.replace(/^CBOR decode error: /, '')}`), cacheable: false } };
    }
    // A peer is untrusted: a code this node does not know (or none) is FALLBACK_CODE, never a refusal of the reply.
  } else if (status === 'revoked' && typeof payload === 'string') outcome = revoked(asRevokeCode(revokeCode), payload);
  else if (status === 'promised') outcome = Object.freeze({ status, token: asToken(payload) });
  else return bad(`a ${status} reply has the wrong payload`);
  // Only a value can be cached or replicated, whatever the flags say.
  const bits = status === 'fulfilled' ? (flags as number) : 0;
  return { id, answer: { outcome, cacheable: (bits & CACHEABLE) !== 0, ...((bits & REPLICABLE) !== 0 ? { replicable: true } : {}) } };
};

export const encodeRevocation = (id: number, notice: RevocationNotice): Uint8Array =>
  encodeMessage(REVOCATION_PROTOCOL, id, { token: notice.token, reason: notice.reason, by: notice.by, signature: notice.signature });

export const decodeRevocation = (message: Message): { id: number; notice: RevocationNotice } => {
  const [id, body, ...extra] = message.slots;
  if (extra.length > 0 || body === null || typeof body !== 'object') bad('a revocation is [id, notice]');
  const { token, reason, by, signature } = body as Record<string, unknown>;
  if (typeof reason !== 'string' || !(signature instanceof Uint8Array)) bad('a revocation notice has a reason and a signature');
  return {
    id: requestId(id),
    notice: Object.freeze({ token: asToken(token), reason: reason as string, by: asPrincipal(by), signature: signature as Uint8Array }),
  };
};

/** A request that names one token: a fetch, or a records request. */
export const encodeTokenRequest = (protocol: CID, id: number, token: Token): Uint8Array => encodeMessage(protocol, id, token);

export const decodeTokenRequest = (message: Message): { id: number; token: Token } => {
  const [id, token, ...extra] = message.slots;
  if (extra.length > 0) bad('a fetch or records request is [id, token]');
  return { id: requestId(id), token: asToken(token) };
};

/**
 * A cancel names one of the sender's own requests: ids are numbered per
 * connection by whoever sent the call, so only the caller that made a call,
 * on the connection it made it on, can cancel it.
 */
export const encodeCancel = (id: number): Uint8Array => encodeMessage(CANCEL_PROTOCOL, id);

export const decodeCancel = (message: Message): number => {
  const [id, ...extra] = message.slots;
  if (extra.length > 0) bad('a cancel is [id]');
  return requestId(id);
};

/** A replica as it travels: grid data `{ closure, modules }`, bytes throughout. */
export const replicaValue = (replica: Replica): GridValue => ({ closure: replica.closure, modules: [...replica.modules] });

export const replicaFrom = (value: GridValue): Replica => {
  const { closure, modules } = (value ?? {}) as { closure?: unknown; modules?: unknown };
  if (!(closure instanceof Uint8Array) || !Array.isArray(modules) || !modules.every((m) => m instanceof Uint8Array)) bad('a replica is { closure: bytes, modules: [bytes…] }');
  return { closure: closure as Uint8Array, modules: modules as Uint8Array[] };
};

/** Most heads a doc-sync request or a doc-heads notice names. */
export const MAX_HAVES = 32;
/**
 * A doc-sync request: the root tag, the array and its CID (3), id, token,
 * doc, haves (1 + MAX_HAVES) and a chain (3 + 2 × MAX_CHAIN_BLOCKS): 168.
 */
export const MAX_DOC_SYNC_ITEMS = 192;
/** A doc-heads notice: 3, the doc, 1 + MAX_HAVES heads and the pushed bundle's bytes. */
export const MAX_DOC_HEADS_ITEMS = 41;
/**
 * A pushed bundle (see doc-heads above): at most this many bytes, and the
 * items of PUSH_MAX_BLOCKS blocks and a few revocations. Decoded only by a
 * receiver that follows the document and lacks one of the heads.
 */
export const MAX_PUSH_BYTES = 256 * 1024;
export const PUSH_MAX_BLOCKS = 64;
const PUSH_LIMITS: Partial<DecodeLimits> = { ...VALUE_LIMITS, maxBytes: MAX_PUSH_BYTES, maxItems: 4 * PUSH_MAX_BLOCKS + 1024 };

/** What a doc-sync request asks (see the table above). */
export interface DocSyncRequest {
  readonly token?: Token;
  readonly doc?: string;
  readonly haves: readonly string[];
  readonly chain?: ChainBlocks;
}

const cidText = (value: unknown, what: string): string => {
  if (typeof value !== 'string' || value.length === 0 || value.length > 128) bad(`${what} is a CID string`);
  return value as string;
};
const headList = (value: unknown, what: string): string[] => {
  if (!Array.isArray(value) || value.length > MAX_HAVES) bad(`${what} is a list of at most ${MAX_HAVES} CIDs`);
  return (value as unknown[]).map((head) => cidText(head, `each of ${what}`));
};

export const encodeDocSync = (id: number, request: DocSyncRequest): Uint8Array =>
  encodeMessage(DOC_SYNC_PROTOCOL, id, request.token ?? null, request.doc ?? null, [...request.haves], request.chain ? chainValue(request.chain) : null);

export const decodeDocSync = (message: Message): { id: number; request: DocSyncRequest } => {
  const [id, token, doc, haves, chain, ...extra] = message.slots;
  if (extra.length > 0 || haves === undefined) bad('a doc-sync request is [id, token, doc, haves, chain]');
  if (token === null && doc === null) bad('a doc-sync request names a token, a document or both');
  return {
    id: requestId(id),
    request: {
      ...(token === null ? {} : { token: asToken(token) }),
      ...(doc === null ? {} : { doc: cidText(doc, 'doc') }),
      haves: headList(haves, 'haves'),
      ...(chain === null || chain === undefined ? {} : { chain: decodeChain(chain) }),
    },
  };
};

export const encodeDocHeads = (doc: string, heads: readonly string[], pushed?: Uint8Array): Uint8Array => encodeMessage(DOC_HEADS_PROTOCOL, doc, [...heads].slice(0, MAX_HAVES), pushed ?? null);

export const decodeDocHeads = (message: Message): { doc: string; heads: string[]; pushed?: Uint8Array } => {
  const [doc, heads, pushed = null, ...extra] = message.slots;
  if (extra.length > 0) bad('a doc-heads notice is [doc, heads, pushed]');
  if (pushed !== null && (!(pushed instanceof Uint8Array) || pushed.length > MAX_PUSH_BYTES)) bad(`a doc-heads notice pushes null or at most ${MAX_PUSH_BYTES} bytes`);
  return { doc: cidText(doc, 'doc'), heads: headList(heads, 'heads'), ...(pushed === null ? {} : { pushed: pushed as Uint8Array }) };
};

/** A pushed bundle's bytes to grid data, within the push's own limits (the bundle's shape is checked by docs/sync.ts bundleFrom). */
export const decodePushed = (bytes: Uint8Array): GridValue => decodeValue(bytes, PUSH_LIMITS);
