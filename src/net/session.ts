/// <reference types="ses" />
/**
 * A connection: a WebSocket that first authenticates (handshake.ts) and then
 * carries CapTP, one CapTP message per binary frame, each in a grid envelope
 * addressed to the CapTP protocol record. Before authentication a frame may
 * be at most MAX_HANDSHAKE_FRAME bytes and the whole handshake must finish
 * within its deadline; after it, frames are limited by the socket's
 * maxPayload and the strict decoder. A dropped connection breaks every
 * promise that depended on it, with the reason `disconnected`.
 */
import { makeCapTP } from '@endo/captp';
import type WebSocket from 'ws';
import type { Principal } from '../caps/ids.js';
import type { Identity } from '../identity/identity.js';
import { decodeMessage, encodeMessage } from '../wire/index.js';
import { CAPTP_PROTOCOL, clientHandshake, HandshakeError, MAX_HANDSHAKE_FRAME, serverHandshake, type FrameChannel } from './handshake.js';

export const DEFAULT_HANDSHAKE_MS = 5000;
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
  close(): void;
  readonly closed: Promise<void>;
}

const toBytes = (data: WebSocket.RawData): Uint8Array =>
  new Uint8Array(Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? Buffer.from(data) : data);

/** Frames during the handshake: bounded in size and in time. */
const handshakeChannel = (socket: WebSocket, deadline: number): FrameChannel & { stop(): void } => {
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
  // Listen from the start: ws may deliver the peer's first frame in the same
  // turn as 'open', before any later listener would be attached.
  socket.on('message', onMessage);
  socket.on('close', onClose);
  socket.on('error', onError);
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
      socket.off('message', onMessage);
      socket.off('close', onClose);
      socket.off('error', onError);
    },
  };
};

/** After the handshake: CapTP over grid envelopes. */
const startCapTP = (socket: WebSocket, name: string, bootstrap: unknown, peer: Principal): Session => {
  const { dispatch, getBootstrap, abort } = makeCapTP(
    name,
    (message: Record<string, unknown>) => {
      // CapTP messages are JSON-able by contract; the JSON pass drops the
      // `undefined` fields CBOR has no place for.
      if (socket.readyState !== socket.OPEN) return;
      socket.send(encodeMessage(CAPTP_PROTOCOL, JSON.parse(JSON.stringify(message))), { binary: true });
      if (socket.bufferedAmount > MAX_BUFFERED_BYTES) socket.terminate();
    },
    bootstrap,
    { onReject: () => {} },
  );
  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => (markClosed = resolve));
  socket.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
    try {
      if (!isBinary) throw new Error('text frames are not grid messages');
      const message = decodeMessage(toBytes(data));
      if (!message.cid.equals(CAPTP_PROTOCOL) || message.slots.length !== 1) throw new Error('not a CapTP message');
      dispatch(message.slots[0] as Record<string, unknown>);
    } catch (error) {
      // Malformed input closes the connection: a peer that sends it is broken or hostile.
      socket.close(1008, String((error as Error).message).slice(0, 120));
    }
  });
  socket.on('close', () => {
    abort(Error('disconnected'));
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
  return harden({ peer, bootstrap: bootstrapOnce, close: () => socket.close(1000), closed });
};

export interface SessionOptions {
  readonly identity: Identity;
  readonly random: (n: number) => Uint8Array;
  readonly bootstrap?: (peer: Principal) => unknown;
  readonly handshakeMs?: number;
}

const handshakeThenCapTP =
  (role: 'node' | 'client', handshake: typeof serverHandshake) =>
  async (socket: WebSocket, options: SessionOptions): Promise<Session> => {
    const channel = handshakeChannel(socket, options.handshakeMs ?? DEFAULT_HANDSHAKE_MS);
    try {
      const peer = await handshake(channel, options.identity, options.random);
      channel.stop();
      return startCapTP(socket, role, options.bootstrap?.(peer), peer);
    } catch (error) {
      channel.stop();
      socket.close(1008, String((error as Error).message).slice(0, 120));
      throw error;
    }
  };

/** Authenticate an incoming connection, then serve CapTP on it. */
export const acceptSession = handshakeThenCapTP('node', serverHandshake);

/** Open a session on a socket that may still be connecting: call it right after creating the socket. */
export const openSession = handshakeThenCapTP('client', clientHandshake);
