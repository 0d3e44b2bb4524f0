/**
 * The grid messages a session carries after the handshake, besides CapTP.
 * Each is one envelope per WebSocket frame; its leading CID says what it is:
 *
 *   <token>        [id, args, options]      call the token (args: canonical CBOR of the argument array)
 *   reply          [id, answer]             the answer to request `id`
 *   revocation     [id, notice]             a signed revocation, for nodes that cached the token's answers
 *   fetch          [id, token]              a replicable closure's blocks (answered with { closure, modules })
 *
 * A call is addressed to the token itself, as DESIGN.md has it: the message
 * is the call. Requests are numbered by their sender; every request gets
 * exactly one reply. This path carries the grid's calls without CapTP's
 * bookkeeping (exports, imports, GC messages), which costs a round trip
 * several times over; CapTP stays for live references and the owner's
 * operations.
 */
import type { CID } from 'multiformats/cid';
import { asPrincipal, asToken, DAG_CBOR_CODEC, type Principal, type Token } from '../caps/ids.js';
import { decodeValue, encodeValue, type GridValue } from '../closures/values.js';
import { blockCid } from '../store/hashing.js';
import { encode, encodeMessage, type Message } from '../wire/index.js';
import type { Answer, Outcome, Replica } from '../kernel/kernel.js';
import type { RevocationNotice } from '../kernel/revocations.js';

/** The protocol records the envelope's first CID names. */
export const protocolCid = (name: string): CID => blockCid(encode({ protocol: name }), DAG_CBOR_CODEC);
export const REPLY_PROTOCOL = protocolCid('promisegrid/reply/v1');
export const REVOCATION_PROTOCOL = protocolCid('promisegrid/revocation/v1');
export const FETCH_PROTOCOL = protocolCid('promisegrid/fetch/v1');

/** How a call travels: as the caller's own, or forwarded along `path` (the nodes it passed, first to last). */
export interface CallOptions {
  readonly follow?: boolean;
  readonly path?: readonly Principal[];
}

export class FrameError extends Error {
  readonly code = 'ERR_FRAME';
}

const bad = (why: string): never => {
  throw new FrameError(why);
};

const requestId = (value: unknown): number =>
  Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : bad(`a request id is a whole number (got ${typeof value})`);

export const encodeCall = (id: number, token: Token, args: readonly unknown[], options: CallOptions): Uint8Array => {
  const wireOptions: Record<string, unknown> = {};
  if (options.follow) wireOptions.follow = true;
  if (options.path && options.path.length > 0) wireOptions.path = [...options.path];
  return encodeMessage(token, id, encodeValue(args), wireOptions);
};

export const decodeCall = (message: Message, maxPath: number): { id: number; token: Token; args: GridValue[]; options: CallOptions } => {
  const [id, args, options, ...extra] = message.slots;
  if (extra.length > 0 || !(args instanceof Uint8Array) || options === null || typeof options !== 'object') bad('a call is [id, args bytes, options]');
  const decodedArgs = decodeValue(args as Uint8Array);
  if (!Array.isArray(decodedArgs)) bad('call arguments must be an array');
  const { follow, path } = options as { follow?: unknown; path?: unknown };
  if (path !== undefined && (!Array.isArray(path) || path.length > maxPath)) bad(`a forwarding path is a list of at most ${maxPath} principals`);
  return {
    id: requestId(id),
    token: asToken(message.cid.toString()),
    args: decodedArgs as GridValue[],
    options: { follow: follow === true, ...(path ? { path: (path as unknown[]).map((p) => asPrincipal(p)) } : {}) },
  };
};

export const encodeReply = (id: number, answer: Answer): Uint8Array => {
  const { outcome } = answer;
  const body =
    outcome.status === 'fulfilled'
      ? { status: 'fulfilled', value: encodeValue(outcome.value), ...(answer.cacheable ? { cacheable: true } : {}), ...(answer.replicable ? { replicable: true } : {}) }
      : outcome.status === 'revoked'
        ? { status: 'revoked', reason: outcome.reason }
        : { status: 'promised', token: outcome.token };
  return encodeMessage(REPLY_PROTOCOL, id, body);
};

export const decodeReply = (message: Message): { id: number; answer: Answer } => {
  const [id, body, ...extra] = message.slots;
  if (extra.length > 0 || body === null || typeof body !== 'object') bad('a reply is [id, answer]');
  const { status, value, reason, token, cacheable, replicable } = body as Record<string, unknown>;
  let outcome: Outcome;
  if (status === 'fulfilled' && value instanceof Uint8Array) outcome = Object.freeze({ status, value: decodeValue(value) });
  else if (status === 'revoked' && typeof reason === 'string') outcome = Object.freeze({ status, reason });
  else if (status === 'promised') outcome = Object.freeze({ status, token: asToken(token) });
  else return bad(`not an answer (status ${String(status)})`);
  const fulfilled = status === 'fulfilled';
  return { id: requestId(id), answer: { outcome, cacheable: fulfilled && cacheable === true, ...(fulfilled && replicable === true ? { replicable: true } : {}) } };
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

export const encodeFetch = (id: number, token: Token): Uint8Array => encodeMessage(FETCH_PROTOCOL, id, token);

export const decodeFetch = (message: Message): { id: number; token: Token } => {
  const [id, token, ...extra] = message.slots;
  if (extra.length > 0) bad('a fetch is [id, token]');
  return { id: requestId(id), token: asToken(token) };
};

/** A replica as it travels: grid data `{ closure, modules }`, bytes throughout. */
export const replicaValue = (replica: Replica): GridValue => ({ closure: replica.closure, modules: [...replica.modules] });

export const replicaFrom = (value: GridValue): Replica => {
  const { closure, modules } = (value ?? {}) as { closure?: unknown; modules?: unknown };
  if (!(closure instanceof Uint8Array) || !Array.isArray(modules) || !modules.every((m) => m instanceof Uint8Array)) bad('a replica is { closure: bytes, modules: [bytes…] }');
  return { closure: closure as Uint8Array, modules: modules as Uint8Array[] };
};
