/// <reference types="ses" />
/**
 * A connection: a WebSocket that first authenticates (handshake.ts) and then
 * carries grid messages, one per binary frame: calls addressed to tokens,
 * their replies and revocation notices (frames.ts), and CapTP messages in
 * envelopes addressed to the CapTP protocol record. Before authentication a frame may
 * be at most MAX_HANDSHAKE_FRAME bytes (a node also bounds the raw bytes,
 * node.ts) and the whole handshake must finish within its deadline, or the
 * TCP connection is closed at once; after it, frames are limited by the socket's
 * maxPayload and the strict decoder. A dropped connection breaks every
 * promise that depended on it, with the reason `disconnected`.
 */
import { equals } from 'multiformats/bytes';
import { makeCapTP } from '@endo/captp';
import type WebSocket from 'ws';

/**
 * What a session needs of its WebSocket: ws's, or a browser's shaped like it
 * (a tab node's: net/browser-socket.ts).
 */
export type SessionSocket = Pick<WebSocket, 'on' | 'off' | 'once' | 'send' | 'readyState' | 'OPEN' | 'bufferedAmount' | 'terminate' | 'close' | 'pause' | 'resume'>;

/** The end of this turn: Node's nextTick (before promise jobs, which the cork below is measured with); a microtask where there is no Node. */
const afterThisTurn: (callback: () => void) => void = (globalThis as { process?: { nextTick?: (callback: () => void) => void } }).process?.nextTick ?? queueMicrotask;
/** A later turn, after I/O: setImmediate, or a zero timeout where there is none (a browser). */
export const laterTurn: (callback: () => void) => void = (globalThis as { setImmediate?: (callback: () => void) => void }).setImmediate ?? ((callback) => void setTimeout(callback, 0));
import type { Duplex } from 'node:stream';
import type { CID } from 'multiformats/cid';
import type { Principal, Token } from '../interface/ids.js';
import { describeThrown } from '../interface/errors.js';
import { encodeBulkValue, MAX_VALUE_ITEMS, type GridValue } from '../closures/values.js';
import type { Identity } from '../identity/identity.js';
import type { Answer, Replica } from '../wire/shapes.js';
import type { RevocationNotice } from '../kernel/revocations.js';
import { decodeMessage, encodeMessage, leadingCidBytes, type DecodeLimits, type Message } from '../wire/index.js';
import { disclosureFrom, disclosureValue, type Disclosure } from '../journal/disclosure.js';
import { aborted, CANCELLED, DROPPED, onAbort } from '../interface/cancel.js';
import { failed, revoked, type Outcome, type Revoked, type RevokeCode } from '../interface/outcome.js';
import {
  CANCEL_PROTOCOL,
  decodeCall,
  decodeDocHeads,
  decodeDocSync,
  DOC_HEADS_PROTOCOL,
  DOC_SYNC_PROTOCOL,
  encodeDocHeads,
  encodeDocSync,
  MAX_DOC_HEADS_ITEMS,
  MAX_DOC_SYNC_ITEMS,
  type DocSyncRequest,
  decodeCancel,
  decodeTokenRequest,
  decodeReply,
  decodeRevocation,
  encodeCall,
  encodeCancel,
  encodeTokenRequest,
  encodeReply,
  encodeRevocation,
  envelopeLimits,
  FETCH_PROTOCOL,
  MAX_CALL_ITEMS,
  MAX_REQUEST_ITEMS,
  RECORDS_PROTOCOL,
  replicaFrom,
  replicaValue,
  REPLY_PROTOCOL,
  replyId,
  REVOCATION_PROTOCOL,
  type WireCallOptions,
} from './frames.js';
import { CAPTP_PROTOCOL, clientHandshake, HandshakeError, MAX_HANDSHAKE_FRAME, MAX_PREAUTH_BYTES, serverHandshake, type FrameChannel } from './handshake.js';

export const DEFAULT_HANDSHAKE_MS = 5000;
/** Largest frame after authentication; the strict decoder's own limit. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;
/**
 * Bytes we may have queued for a peer that is not reading. Past this the
 * connection is closed: its calls end `disconnected` rather than the node
 * buffering without bound for a peer that never drains.
 */
export const MAX_BUFFERED_BYTES = 32 * 1024 * 1024;

export interface Session {
  /** The authenticated principal at the other end. */
  readonly peer: Principal;
  /** The other side's bootstrap object, for `E(...)`. */
  readonly bootstrap: () => Promise<unknown>;
  /**
   * Call a token the other side answers; past `timeoutMs` the call ends
   * `unreachable`. When `signal` aborts, the other side is told to cancel
   * it and the call ends `cancelled by caller` at once. Never rejects.
   */
  call(token: Token, args: readonly unknown[], options?: WireCallOptions & { timeoutMs?: number; signal?: AbortSignal }): Promise<Answer>;
  /** Tell the other side of a revocation; resolves with its acknowledgement or refusal. */
  revoke(notice: RevocationNotice, timeoutMs: number): Promise<Answer>;
  /** A replicable closure's blocks from the other side; rejects with its refusal. */
  fetch(token: Token, timeoutMs: number): Promise<Replica>;
  /** The other side's journal records about `token` that it may show this side (not yet verified); rejects with its refusal. */
  records(token: Token, timeoutMs: number): Promise<Disclosure>;
  /** What of a document this side lacks (a bundle, docs/sync.ts, not yet checked), or the other side's refusal. Never rejects. */
  docSync(request: DocSyncRequest, timeoutMs: number): Promise<Outcome>;
  /** Tell the other side this side's heads of `doc` changed (no answer); `pushed`: the encoded bundle of the versions that did it (frames.ts doc-heads). */
  docHeads(doc: string, heads: readonly string[], pushed?: Uint8Array): void;
  close(): void;
  readonly closed: Promise<void>;
}

const toBytes = (data: WebSocket.RawData): Uint8Array =>
  new Uint8Array(Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? Buffer.from(data) : data);

/**
 * Count the bytes `tcp` delivers until the returned function is called, and
 * call `overrun` once they pass MAX_PREAUTH_BYTES: without it, ws would
 * hold a frame up to its maxPayload (16 MiB) from a peer that never
 * authenticates. The count sees each read after ws's receiver has taken it,
 * and Node reads at most 64 KiB at a time: what a peer can make this side
 * hold before authenticating is the budget plus one read.
 */
export const meterBeforeAuthentication = (tcp: Duplex, overrun: (read: number) => void): (() => void) => {
  let read = 0;
  const count = (chunk: Buffer) => {
    read += chunk.length;
    if (read <= MAX_PREAUTH_BYTES) return;
    tcp.off('data', count);
    overrun(read);
  };
  tcp.on('data', count);
  return () => tcp.off('data', count);
};

/**
 * Frames during the handshake: bounded in size, in time and — on the dialling
 * side, whose socket emits 'upgrade' (a node meters its own: node.ts) — in
 * the bytes the other side sends.
 */
const handshakeChannel = (socket: SessionSocket, deadline: number): FrameChannel & { stop(): void } => {
  const queue: Uint8Array[] = [];
  let waiting: { resolve: (bytes: Uint8Array) => void; reject: (error: Error) => void } | undefined;
  let failure: Error | undefined;
  const fail = (error: Error) => {
    failure ??= error;
    waiting?.reject(failure);
    waiting = undefined;
  };
  const onMessage = (data: WebSocket.RawData, isBinary: boolean) => {
    const bytes = toBytes(data);
    if (!isBinary || bytes.length > MAX_HANDSHAKE_FRAME) return fail(new HandshakeError(`frames before authentication are binary and at most ${MAX_HANDSHAKE_FRAME} bytes`));
    if (waiting) {
      waiting.resolve(bytes);
      waiting = undefined;
    } else queue.push(bytes);
  };
  const onClose = () => fail(new HandshakeError('connection closed during the handshake'));
  const onError = (error: Error) => fail(new HandshakeError(`connection failed: ${error.message}`));
  const timer = setTimeout(() => fail(new HandshakeError(`not finished within ${deadline} ms`)), deadline);
  let stopMetering = () => {};
  // Metered from 'open', once ws listens to the TCP socket: a listener
  // before ws's would set the socket flowing and take the bytes ws read with
  // the upgrade's response (which it puts back for itself) from under it.
  const onUpgrade = (response: { socket: Duplex }) =>
    socket.once('open', () => {
      stopMetering = meterBeforeAuthentication(response.socket, (read) => {
        fail(new HandshakeError(`the node sent ${read} bytes before authenticating (limit ${MAX_PREAUTH_BYTES})`));
        socket.terminate();
      });
    });
  // Listen from the start: ws may deliver the peer's first frame in the same
  // turn as 'open', before any later listener would be attached.
  socket.on('message', onMessage);
  socket.on('close', onClose);
  socket.on('error', onError);
  socket.once('upgrade', onUpgrade);
  return {
    send: (bytes) => socket.send(bytes, { binary: true }),
    receive: () => {
      if (failure) return Promise.reject(failure);
      const next = queue.shift();
      if (next) return Promise.resolve(next);
      return new Promise((resolve, reject) => (waiting = { resolve, reject }));
    },
    stop: () => {
      clearTimeout(timer);
      stopMetering();
      socket.off('message', onMessage);
      socket.off('close', onClose);
      socket.off('error', onError);
      socket.off('upgrade', onUpgrade);
    },
  };
};

/**
 * Requests one peer (one principal, counted across all its sessions with
 * this node: more connections under the same key buy no more) may have this
 * side answer at once; past it a request is answered revoked at once
 * instead of queueing behind the others. Each holds its arguments (at most
 * MAX_VALUE_BYTES) and a place in a vat's queue while it runs, and its
 * answer until written to the socket, where MAX_BUFFERED_BYTES bounds what
 * waits; 1024 leaves an honest client four times the 256 calls in flight
 * the benchmarks use.
 */
export const MAX_CALLS_PER_PEER = 1024;
/**
 * Argument bytes one peer's requests in flight may hold together: with
 * MAX_CALLS_PER_PEER alone, 1024 calls of 1 MiB would hold a GiB.
 */
export const MAX_ARGS_BYTES_PER_PEER = 64 * 1024 * 1024;

/**
 * What each principal has in flight with this side, shared by all its
 * sessions (a node gives every session the same one, NodeSessions); a
 * principal with nothing in flight is forgotten.
 */
export class PeerLoad {
  readonly #load = new Map<Principal, { calls: number; bytes: number }>();

  /** A place for a request of `bytes` argument bytes from `peer`: the function that gives it back, or why there is none. */
  take(peer: Principal, bytes: number): (() => void) | string {
    const load = this.#load.get(peer) ?? { calls: 0, bytes: 0 };
    if (load.calls >= MAX_CALLS_PER_PEER) return `too many calls in flight (limit ${MAX_CALLS_PER_PEER} per peer)`;
    if (load.bytes + bytes > MAX_ARGS_BYTES_PER_PEER) return `too many argument bytes in flight (limit ${MAX_ARGS_BYTES_PER_PEER} per peer)`;
    load.calls += 1;
    load.bytes += bytes;
    this.#load.set(peer, load);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      load.calls -= 1;
      load.bytes -= bytes;
      if (load.calls === 0 && this.#load.get(peer) === load) this.#load.delete(peer);
    };
  }

  /** Requests `peer` has in flight here (for tests and the curious). */
  calls(peer: Principal): number {
    return this.#load.get(peer)?.calls ?? 0;
  }
}

/** How many nodes a forwarded call may name in its path. */
const MAX_PATH = 64;

/**
 * A CapTP message is JSON-like: a record of a few fields, its arguments or
 * result inside one `body` string, and one slot per reference it passes.
 */
const MAX_CAPTP_ITEMS = 1024;

/**
 * JSON values a CapTP message may carry in its strings — its arguments or
 * result, in CapTP's `body` — counted (brackets, braces and commas outside
 * string literals) before CapTP parses them. Unmarshalling costs 2–17 µs a
 * value, a record being the dearest (300k empty records in one 0.9 MB
 * message held the event loop 5 s), so 512 keeps a stranger's worst message
 * within a few ms. A call with larger arguments goes as a grid call
 * (frames.ts; MAX_VALUE_ITEMS). A node's own principal (its CLI issuing
 * with an environment), and the node a client or node chose to dial, may
 * send MAX_CAPTP_VALUES_TRUSTED.
 */
export const MAX_CAPTP_VALUES = 512;
export const MAX_CAPTP_VALUES_TRUSTED = MAX_VALUE_ITEMS + 64;

/** JSON values in `text`, counted as brackets, braces and commas outside string literals; stops once past `limit`. */
const jsonValues = (text: string, limit: number): number => {
  let count = 0;
  let inString = false;
  for (let i = 0; i < text.length && count <= limit; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i += 1; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b || c === 0x2c) count += 1;
  }
  return count;
};

/** JSON values in every string of a decoded CapTP message (at most MAX_CAPTP_ITEMS items to walk). */
const captpValues = (value: unknown, limit: number): number => {
  if (typeof value === 'string') return jsonValues(value, limit);
  if (value === null || typeof value !== 'object') return 0;
  let count = 0;
  for (const item of Array.isArray(value) ? value : Object.values(value)) {
    count += captpValues(item, limit - count);
    if (count > limit) break;
  }
  return count;
};

/**
 * The strict decoder's limits for each kind of envelope, chosen by its
 * leading CID before anything is decoded; a token (a call) is any other.
 */
const KIND_LIMITS: ReadonlyArray<readonly [CID, Partial<DecodeLimits>]> = [
  [REPLY_PROTOCOL, envelopeLimits(MAX_REQUEST_ITEMS)],
  [CANCEL_PROTOCOL, envelopeLimits(MAX_REQUEST_ITEMS)],
  [REVOCATION_PROTOCOL, envelopeLimits(MAX_REQUEST_ITEMS)],
  [FETCH_PROTOCOL, envelopeLimits(MAX_REQUEST_ITEMS)],
  [RECORDS_PROTOCOL, envelopeLimits(MAX_REQUEST_ITEMS)],
  [DOC_SYNC_PROTOCOL, envelopeLimits(MAX_DOC_SYNC_ITEMS)],
  [DOC_HEADS_PROTOCOL, envelopeLimits(MAX_DOC_HEADS_ITEMS)],
  [CAPTP_PROTOCOL, Object.freeze({ maxItems: MAX_CAPTP_ITEMS })],
];
const CALL_LIMITS = envelopeLimits(MAX_CALL_ITEMS);
const limitsFor = (bytes: Uint8Array): Partial<DecodeLimits> => {
  const lead = leadingCidBytes(bytes);
  if (lead) for (const [cid, limits] of KIND_LIMITS) if (equals(lead, cid.bytes)) return limits;
  return CALL_LIMITS;
};

/**
 * How long one peer's frames may hold the event loop before the session
 * stops reading that peer until every other connection has had a turn: a
 * costly frame (one of MAX_VALUE_ITEMS items takes 2–4 ms to build) then
 * delays other peers by about one frame's cost, not a queue of them.
 */
const FRAME_BUDGET_MS = 2;
/**
 * A peer that sent a frame costing more than FRAME_BUDGET_MS is then not
 * read for REST_FACTOR times as long as that frame took (at most
 * MAX_REST_MS): costly frames get at most a fifth of the event loop, so
 * others' calls meet one of them now and then, not at every turn. (The
 * call after a costly one waits 10–20 ms more; a peer sending 1 MiB values
 * back to back gets a fifth of the loop.) Many cheap frames past the budget
 * only give up the turn, and so does a frame under COSTLY_FRAME_BYTES that
 * took long: with at most one item a byte it cannot cost much of its own,
 * so its time was a collection or another thread's (resting a pipelining
 * client for those halved its calls per second).
 */
const COSTLY_FRAME_BYTES = 4096;
/**
 * What a frame cost before its handler saw it — the TCP reads, ws assembling
 * and unmasking it, the copy — counted by its size: ~3 ns a byte (a 16 MiB
 * frame took 40–60 ms to receive). Without it a peer streaming big frames
 * that are refused cheaply never looks costly, yet takes the node's time.
 */
const RECEIVED_MS_PER_BYTE = 3e-6;
const REST_FACTOR = 4;
const MAX_REST_MS = 1000;

/** What a session does with requests from its peer; a side without a handler refuses that kind. */
export interface SessionHandlers {
  /**
   * `argsBytes`: the arguments as they arrived (canonical CBOR), for whoever
   * can use them as they are; `signal` aborts when the peer cancels the call.
   */
  call?(token: Token, args: GridValue[], options: WireCallOptions, argsBytes: Uint8Array, signal: AbortSignal): Promise<Answer>;
  /**
   * The answer to a call when it can be given at once (a cache hit), else
   * undefined and the call goes to `call`: asked first, under the same
   * per-peer quota, so such a call costs no AbortSignal and no turn.
   */
  answerNow?(token: Token, args: GridValue[], options: WireCallOptions, argsBytes: Uint8Array): Answer | undefined;
  /** JSON values a CapTP message from this peer may carry: MAX_CAPTP_VALUES for a peer that dialled this side, else MAX_CAPTP_VALUES_TRUSTED. */
  readonly captpValues?: number;
  /** What each principal has in flight, shared by the sessions of one node; without it, each session counts its own peer's requests. */
  readonly load?: PeerLoad;
  /** Apply a revocation notice; throw to refuse it (the reason goes back to the sender). */
  revocation?(notice: RevocationNotice): Promise<void>;
  /** A replicable closure's blocks; throw to refuse. */
  fetch?(token: Token): Promise<Replica>;
  /** The journal records about `token` this side may show the peer; throw to refuse. */
  records?(token: Token): Promise<Disclosure>;
  /** A document's bundle for the peer (fulfilled, its value the bundle), or a refusal; `session` is the one asking. */
  docSync?(request: DocSyncRequest, session: Session): Promise<Outcome>;
  /** The peer's heads of `doc` changed. */
  docHeads?(doc: string, heads: readonly string[], session: Session, pushed?: Uint8Array): void;
}

const refused = (outcome: Revoked): Answer => ({ outcome, cacheable: false });
const DONE: Answer = Object.freeze({ outcome: Object.freeze({ status: 'fulfilled', value: null }), cacheable: false });

/**
 * The TCP socket under a ws WebSocket, to cork while a turn's frames are
 * sent, or undefined (then each frame is its own write: slower, never wrong).
 * ws 8 has no public way to batch frames: `send` writes each frame at once
 * (its Sender corks only a frame's header and payload together), and
 * `createWebSocketStream`'s cork has no `_writev`, so each chunk is still
 * its own `send`. So this reaches for ws's private `_socket`, checked to be
 * something corkable: if a later ws renames or hides it, frames go uncorked.
 * Worth it, measured on a shared 2-core machine: grid calls across
 * processes executed in a vat, 256 in flight, were 2481, 2131, 2517 calls/s
 * corked and 1300, 2665, 1787 not (bench/net.ts, 3 runs each, alternated);
 * measured in turns against two nodes from one process, the corked side made
 * more calls a second in each of five rounds (+14 to +50%, median +21%).
 * Cache hits (5117, 6272, 4269 vs 3402, 4661, 3985 a second; in turns +22,
 * -20, +13, 0, -11%) were within the noise.
 */
export const corkable = (socket: SessionSocket): { cork(): void; uncork(): void } | undefined => {
  const tcp: unknown = (socket as unknown as { _socket?: unknown })._socket;
  if (typeof tcp !== 'object' || tcp === null) return undefined;
  const { cork, uncork } = tcp as { cork?: unknown; uncork?: unknown };
  return typeof cork === 'function' && typeof uncork === 'function' ? (tcp as { cork(): void; uncork(): void }) : undefined;
};

/** After the handshake: grid calls and CapTP, each frame a grid envelope. */
const startSession = (socket: SessionSocket, name: string, bootstrap: unknown, handlers: SessionHandlers, peer: Principal): Session => {
  // A lone frame leaves at once; frames sent after it in the same turn are
  // held until the turn ends and leave in one write. One call in flight then
  // pays no extra tick, and many in flight pay a system call per turn, not
  // per frame.
  const tcp = corkable(socket);
  let sentThisTurn = false;
  let corked = false;
  const endTurn = () => {
    sentThisTurn = false;
    if (corked) {
      corked = false;
      tcp!.uncork();
    }
  };
  const send = (bytes: Uint8Array) => {
    if (socket.readyState !== socket.OPEN) return;
    if (!sentThisTurn) {
      sentThisTurn = true;
      afterThisTurn(endTurn);
    } else if (tcp && !corked) {
      corked = true;
      tcp.cork();
    }
    socket.send(bytes, { binary: true });
    if (socket.bufferedAmount > MAX_BUFFERED_BYTES) socket.terminate();
  };
  const { dispatch, getBootstrap, abort } = makeCapTP(
    name,
    // CapTP messages are JSON-able by contract; the JSON pass drops the
    // `undefined` fields CBOR has no place for.
    (message: Record<string, unknown>) => send(encodeMessage(CAPTP_PROTOCOL, JSON.parse(JSON.stringify(message)))),
    bootstrap,
    { onReject: () => {} },
  );

  /** Requests sent and not yet answered, by id, with the limits their answer's value is decoded under (a call's: VALUE_LIMITS, the default). */
  const waiting = new Map<number, (answer: Answer) => void>();
  const replyLimits = new Map<number, Partial<DecodeLimits>>();
  let nextId = 0;
  let open = true;
  const request = (frame: (id: number) => Uint8Array, timeout?: { ms: number; code: RevokeCode; reason: string }, signal?: AbortSignal, limits?: Partial<DecodeLimits>): Promise<Answer> => {
    if (!open) return Promise.resolve(refused(revoked('disconnected', 'disconnected')));
    if (signal?.aborted) return Promise.resolve(refused(aborted(signal)));
    const id = nextId++;
    let bytes: Uint8Array;
    try {
      bytes = frame(id);
    } catch (error) {
      return Promise.resolve(refused(revoked('invalid', `bad arguments: ${describeThrown(error)}`)));
    }
    return new Promise<Answer>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let stopListening = () => {};
      const settle = (answer: Answer) => {
        clearTimeout(timer);
        stopListening();
        waiting.delete(id);
        replyLimits.delete(id);
        resolve(answer);
      };
      // The other side's reply to a cancelled call still comes; nobody waits for it then.
      const cancel = () => {
        if (!waiting.has(id)) return;
        send(encodeCancel(id));
        settle(refused(signal ? aborted(signal) : revoked('cancelled', CANCELLED)));
      };
      if (timeout) timer = setTimeout(() => waiting.has(id) && settle(refused(revoked(timeout.code, timeout.reason))), Math.max(0, timeout.ms));
      waiting.set(id, settle);
      if (limits) replyLimits.set(id, limits);
      if (signal) stopListening = onAbort(signal, cancel);
      send(bytes);
    });
  };

  /** A request naming `token`, answered with a value; rejects with the refusal. */
  const requestValue = async (protocol: CID, token: Token, timeoutMs: number) => {
    // A replica or a disclosure may be larger than a call's value: it was asked for, one at a time, so the codec's own limits.
    const { outcome } = await request((id) => encodeTokenRequest(protocol, id, token), { ms: timeoutMs, code: 'unreachable', reason: 'unreachable' }, undefined, {});
    if (outcome.status !== 'fulfilled') throw new Error(outcome.status === 'revoked' ? outcome.reason : 'a further promise where an answer was due');
    return outcome.value;
  };

  const load = handlers.load ?? new PeerLoad();
  const captpLimit = handlers.captpValues ?? (name === 'node' ? MAX_CAPTP_VALUES : MAX_CAPTP_VALUES_TRUSTED);
  /** The peer's calls being answered, by the peer's id: what its `cancel` aborts. */
  const cancellable = new Map<number, AbortController>();
  /** All of them, whatever ids the peer reused: what a dropped connection aborts. */
  const running = new Set<AbortController>();
  const serve = (id: number, work: () => Promise<Answer>, controller?: () => AbortController, argsBytes = 0, now?: () => Answer | undefined) => {
    const done = load.take(peer, argsBytes);
    if (typeof done === 'string') return send(encodeReply(id, refused(revoked('quota', done))));
    if (now) {
      let answer: Answer | undefined;
      try {
        answer = now();
      } catch (error) {
        answer = refused(failed(error));
      }
      if (answer) {
        done();
        return send(encodeReply(id, answer));
      }
    }
    // A peer that reuses an id in flight can cancel only the latest call under it.
    const cancel = controller?.();
    if (cancel) {
      cancellable.set(id, cancel);
      running.add(cancel);
    }
    work()
      .catch((error: unknown) => refused(failed(error)))
      .then((answer) => {
        done();
        if (cancel) {
          running.delete(cancel);
          if (cancellable.get(id) === cancel) cancellable.delete(id);
        }
        send(encodeReply(id, answer));
      });
  };

  /** A replica or a disclosure as an answer: larger than a call's value may be (VALUE_LIMITS), and decoded by its asker under the codec's limits. */
  const bulk = (value: GridValue): Answer => ({ outcome: Object.freeze({ status: 'fulfilled', value }), cacheable: false, valueBytes: encodeBulkValue(value) });

  const receive = (message: Message) => {
    const { cid } = message;
    if (cid.equals(CAPTP_PROTOCOL)) {
      if (message.slots.length !== 1) throw new Error('not a CapTP message');
      if (captpValues(message.slots[0], captpLimit) > captpLimit) throw new Error(`a CapTP message carries more than ${captpLimit} JSON values (larger arguments go as a grid call)`);
      return dispatch(message.slots[0] as Record<string, unknown>);
    }
    if (cid.equals(REPLY_PROTOCOL)) {
      // A reply nobody waits for (to a call cancelled or timed out) is dropped before its value is decoded.
      const id = replyId(message);
      if (!waiting.has(id)) return;
      return waiting.get(id)?.(decodeReply(message, replyLimits.get(id)).answer);
    }
    if (cid.equals(REVOCATION_PROTOCOL)) {
      const { id, notice } = decodeRevocation(message);
      return serve(id, async () => {
        if (!handlers.revocation) return refused(revoked('denied', 'this side keeps no cache'));
        await handlers.revocation(notice);
        return DONE;
      });
    }
    if (cid.equals(FETCH_PROTOCOL)) {
      const { id, token } = decodeTokenRequest(message);
      return serve(id, async () => {
        if (!handlers.fetch) return refused(revoked('denied', 'this side keeps no closures'));
        return bulk(replicaValue(await handlers.fetch(token)));
      });
    }
    if (cid.equals(RECORDS_PROTOCOL)) {
      const { id, token } = decodeTokenRequest(message);
      return serve(id, async () => {
        if (!handlers.records) return refused(revoked('denied', 'this side keeps no journal'));
        return bulk(disclosureValue(await handlers.records(token)));
      });
    }
    if (cid.equals(DOC_SYNC_PROTOCOL)) {
      const { id, request } = decodeDocSync(message);
      return serve(id, async () => {
        if (!handlers.docSync) return refused(revoked('denied', 'this side keeps no documents'));
        const outcome = await handlers.docSync(request, self);
        return outcome.status === 'fulfilled' ? bulk(outcome.value) : refused(outcome.status === 'revoked' ? outcome : revoked('internal', 'a further promise where a bundle was due'));
      });
    }
    if (cid.equals(DOC_HEADS_PROTOCOL)) {
      const { doc, heads, pushed } = decodeDocHeads(message);
      return handlers.docHeads?.(doc, heads, self, pushed);
    }
    if (cid.equals(CANCEL_PROTOCOL)) {
      // A call already answered (or never made) has nothing to cancel.
      return cancellable.get(decodeCancel(message))?.abort();
    }
    // Any other leading CID is a token: the message is a call on it.
    const { id, token, args, argsBytes, options, refusal } = decodeCall(message, MAX_PATH);
    if (refusal !== undefined) return send(encodeReply(id, refused(revoked('invalid', refusal))));
    // Made only for a call that is not answered at once: an AbortSignal costs more than a cache hit's lookup.
    let controller: AbortController;
    serve(
      id,
      async () => (handlers.call ? handlers.call(token, args, options, argsBytes, controller.signal) : refused(revoked('denied', 'this side answers no calls'))),
      () => (controller = new AbortController()),
      argsBytes.length,
      handlers.answerNow && (() => handlers.answerNow!(token, args, options, argsBytes)),
    );
  };

  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => (markClosed = resolve));
  const handle = (data: WebSocket.RawData, isBinary: boolean) => {
    if (!open) return;
    try {
      if (!isBinary) throw new Error('text frames are not grid messages');
      // A view of ws's buffer, not a copy (16 MiB could cost ~15 ms): what is kept of a frame, the decoder copies out.
      const bytes = data instanceof Uint8Array ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : toBytes(data);
      receive(decodeMessage(bytes, limitsFor(bytes)));
    } catch (error) {
      // Malformed input closes the connection: a peer that sends it is broken or hostile.
      socket.close(1008, String((error as Error).message).slice(0, 120));
    }
  };
  // Past FRAME_BUDGET_MS of work on this peer's frames, stop reading its
  // socket and let every other connection have its turns (the poll phase
  // reads them) while this one rests; what ws had already read waits in
  // `backlog`, and is handled a budget's worth at a time.
  const backlog: Array<[WebSocket.RawData, boolean]> = [];
  let spent = 0;
  /** The costliest frame since the peer last gave up the turn. */
  let dearest = 0;
  let yielding = false;
  const timed = (data: WebSocket.RawData, isBinary: boolean) => {
    const start = performance.now();
    handle(data, isBinary);
    const bytes = (data as { length?: number }).length ?? 0;
    const cost = performance.now() - start + bytes * RECEIVED_MS_PER_BYTE;
    spent += cost;
    if (bytes >= COSTLY_FRAME_BYTES) dearest = Math.max(dearest, cost);
  };
  const rest = () => {
    const ms = dearest > FRAME_BUDGET_MS ? Math.min(MAX_REST_MS, dearest * REST_FACTOR) : 0;
    spent = 0;
    dearest = 0;
    if (ms < 1) laterTurn(drain);
    else setTimeout(drain, ms);
  };
  const drain = () => {
    while (backlog.length > 0 && spent <= FRAME_BUDGET_MS) timed(...backlog.shift()!);
    if (!open) return void (backlog.length = 0);
    if (spent > FRAME_BUDGET_MS) return rest();
    yielding = false;
    socket.resume();
  };
  socket.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
    if (yielding) return void backlog.push([data, isBinary]);
    timed(data, isBinary);
    if (spent <= FRAME_BUDGET_MS || !open) return;
    yielding = true;
    socket.pause();
    rest();
  });
  socket.on('close', () => {
    open = false;
    backlog.length = 0;
    // The peer can no longer hear its answers: every call it started here
    // ends `revoked: disconnected`, queued or running (its vat stopped), as if cancelled.
    for (const controller of running) controller.abort(DROPPED);
    running.clear();
    cancellable.clear();
    abort(Error('disconnected'));
    for (const answer of [...waiting.values()]) answer(refused(revoked('disconnected', 'disconnected')));
    markClosed();
  });
  let bootstrapPromise: Promise<unknown> | undefined;
  const bootstrapOnce = () => {
    if (!bootstrapPromise) {
      bootstrapPromise = getBootstrap();
      // A disconnect rejects it whether or not anyone still waits: not an unhandled rejection.
      bootstrapPromise.catch(() => {});
    }
    return bootstrapPromise;
  };
  const self: Session = harden({
    peer,
    bootstrap: bootstrapOnce,
    call: (token: Token, args: readonly unknown[], options: WireCallOptions & { timeoutMs?: number; signal?: AbortSignal } = {}) =>
      request((id) => encodeCall(id, token, args, options), options.timeoutMs === undefined ? undefined : { ms: options.timeoutMs, code: 'unreachable', reason: 'unreachable' }, options.signal),
    revoke: (notice: RevocationNotice, timeoutMs: number) => request((id) => encodeRevocation(id, notice), { ms: timeoutMs, code: 'unreachable', reason: 'no acknowledgement' }),
    fetch: async (token: Token, timeoutMs: number) => replicaFrom(await requestValue(FETCH_PROTOCOL, token, timeoutMs)),
    records: async (token: Token, timeoutMs: number) => disclosureFrom(await requestValue(RECORDS_PROTOCOL, token, timeoutMs)),
    // A bundle is larger than a call's value may be: decoded under the codec's own limits, like a replica.
    docSync: async (asked: DocSyncRequest, timeoutMs: number) =>
      (await request((id) => encodeDocSync(id, asked), { ms: timeoutMs, code: 'unreachable', reason: 'unreachable' }, undefined, {})).outcome,
    docHeads: (doc: string, heads: readonly string[], pushed?: Uint8Array) => send(encodeDocHeads(doc, heads, pushed)),
    close: () => socket.close(1000),
    closed,
  });
  return self;
};

export interface SessionOptions {
  readonly identity: Identity;
  readonly random: (n: number) => Uint8Array;
  /** What this side offers the authenticated peer: a CapTP bootstrap object and request handlers. */
  readonly offer?: (peer: Principal) => { bootstrap?: unknown; handlers?: SessionHandlers };
  readonly handshakeMs?: number;
}

const handshakeThenSession =
  (role: 'node' | 'client', handshake: typeof serverHandshake) =>
  async (socket: SessionSocket, options: SessionOptions): Promise<Session> => {
    const channel = handshakeChannel(socket, options.handshakeMs ?? DEFAULT_HANDSHAKE_MS);
    try {
      const peer = await handshake(channel, options.identity, options.random);
      channel.stop();
      const offered = options.offer?.(peer) ?? {};
      return startSession(socket, role, offered.bootstrap, offered.handlers ?? {}, peer);
    } catch (error) {
      channel.stop();
      // The reason goes out if it can (the close frame is written at once);
      // then the TCP connection closes now, not once ws's closing timeout
      // (30 s) gives up waiting for the peer's answering close frame: a
      // stalled stranger would hold its descriptor, and its place among the
      // node's unauthenticated connections, that long.
      socket.close(1008, String((error as Error).message).slice(0, 120));
      socket.terminate();
      throw error;
    }
  };

/** Authenticate an incoming connection, then serve CapTP on it. */
export const acceptSession = handshakeThenSession('node', serverHandshake);

/** Open a session on a socket that may still be connecting: call it right after creating the socket. */
export const openSession = handshakeThenSession('client', clientHandshake);
