/**
 * A browser's WebSocket in the shape a session uses (session.ts
 * SessionSocket, the part of ws's API it calls): so a tab node runs the
 * same handshake and session code as a Node one.
 *
 * What a browser does not offer is left out, not faked: it cannot pause
 * reading (the session's backlog still bounds the work per turn), has no
 * TCP socket to cork, and does not expose the upgrade; `terminate` is a
 * close. Text frames arrive as not binary, so the session refuses them as
 * it does from any peer.
 */
import type { SessionSocket } from './session.js';

type Listener = (...args: never[]) => void;
type Event = 'message' | 'close' | 'error' | 'open' | 'upgrade';

export const browserSocket = (url: string): SessionSocket => {
  const socket = new WebSocket(url);
  socket.binaryType = 'arraybuffer';
  const listeners = new Map<Event, Set<{ listener: Listener; once: boolean }>>();
  const emit = (event: Event, ...args: unknown[]) => {
    for (const entry of [...(listeners.get(event) ?? [])]) {
      if (entry.once) listeners.get(event)!.delete(entry);
      (entry.listener as (...args: unknown[]) => void)(...args);
    }
  };
  socket.addEventListener('open', () => emit('open'));
  socket.addEventListener('message', (event: MessageEvent) => {
    const { data } = event;
    if (data instanceof ArrayBuffer) emit('message', new Uint8Array(data), true);
    else emit('message', new TextEncoder().encode(String(data)), false);
  });
  socket.addEventListener('close', (event: CloseEvent) => emit('close', event.code, event.reason));
  socket.addEventListener('error', () => emit('error', new Error(`WebSocket to ${url} failed`)));
  const add = (event: Event, listener: Listener, once: boolean) => {
    if (!listeners.has(event)) listeners.set(event, new Set());
    listeners.get(event)!.add({ listener, once });
  };
  const shaped = {
    on(event: Event, listener: Listener) {
      add(event, listener, false);
      return shaped;
    },
    once(event: Event, listener: Listener) {
      add(event, listener, true);
      return shaped;
    },
    off(event: Event, listener: Listener) {
      for (const entry of listeners.get(event) ?? []) if (entry.listener === listener) listeners.get(event)!.delete(entry);
      return shaped;
    },
    send(bytes: Uint8Array) {
      socket.send(bytes);
    },
    get readyState() {
      return socket.readyState;
    },
    OPEN: WebSocket.OPEN,
    get bufferedAmount() {
      return socket.bufferedAmount;
    },
    terminate() {
      socket.close();
    },
    close(code?: number, reason?: string) {
      // A browser may only send 1000 or 3000–4999; the node reads any close as a disconnect.
      socket.close(code === 1000 || (code !== undefined && code >= 3000 && code <= 4999) ? code : 1000, reason?.slice(0, 120));
    },
    pause() {},
    resume() {},
  };
  return shaped as unknown as SessionSocket;
};
