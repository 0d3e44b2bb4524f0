/**
 * What js-libp2p 3 takes from Node 22 and Node 20 lacks, installed before
 * lockdown (lockdown.ts here imports this first), since after it
 * `Promise` is frozen. libp2p and its helpers (p-retry, nanoid, it-*) call
 * `Promise.withResolvers` (ES2024); @libp2p/websockets dials with the global
 * `WebSocket`, which Node 20 has only behind a flag: ws's client stands in,
 * the same one the grid's own sessions use, made to drop unheard errors.
 * Where the runtime has either, this leaves it alone.
 */
import { createRequire } from 'node:module';
import type WsWebSocket from 'ws';

if (typeof (Promise as { withResolvers?: unknown }).withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    enumerable: false,
    // A method, not a function expression: SES refuses an intrinsic with a `prototype` it does not expect.
    value: {
      withResolvers<T>(this: PromiseConstructor) {
        let resolve!: (value: T | PromiseLike<T>) => void;
        let reject!: (reason?: unknown) => void;
        const promise = new this<T>((yes, no) => {
          resolve = yes;
          reject = no;
        });
        return { promise, resolve, reject };
      },
    }.withResolvers,
  });
}

/**
 * ws's client as the WHATWG WebSocket a browser has, in the one way that
 * matters here: ws's socket is an EventEmitter, which throws an 'error' no
 * listener is left for, where a browser's drops it. libp2p stops listening
 * to a dial it gave up on; the refused connection then arrived as an
 * uncaught exception and took the node down (seen when a peer died).
 *
 * ws is loaded on first use, not here: every `grid` command passes through
 * this file, and only those that reach a node should pay for ws (~0.3 s),
 * which must also load after ./ws-mask.ts.
 */
let whatwg: unknown;
const whatwgWebSocket = (): unknown => {
  if (whatwg) return whatwg;
  const WebSocket = createRequire(import.meta.url)('ws') as typeof WsWebSocket;
  whatwg = class WhatwgWebSocket extends WebSocket {
    constructor(address: string | URL, protocols?: string | string[]) {
      super(address, protocols);
      this.on('error', () => {});
    }
  };
  return whatwg;
};

if (!('WebSocket' in globalThis)) {
  Object.defineProperty(globalThis, 'WebSocket', {
    configurable: true,
    enumerable: false,
    get: whatwgWebSocket,
    set(value: unknown) {
      Object.defineProperty(globalThis, 'WebSocket', { configurable: true, writable: true, enumerable: false, value });
    },
  });
}
