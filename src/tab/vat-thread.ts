/**
 * Where a tab runs a vat (in place of src/vat/thread.ts): a module Web
 * Worker on the vat bundle (vat.js beside this bundle, built from
 * src/vat/worker.ts, the same vat code as Node's), given its options as its
 * first message.
 *
 * What a browser worker cannot do that a Node worker thread does, and what
 * stands in:
 * - no `resourceLimits`: a worker's heap is bounded only by the browser's
 *   own per-isolate limit, and a closure that allocates past it can take the
 *   tab's renderer down. The call's time limit is what bounds it here (a
 *   closure allocates only as long as it runs), with WebAssembly memory
 *   capped as in Node (wasmMaxPages), and the number of vats is the pool's;
 * - no blocking call: a WebAssembly closure's synchronous grid.call needs
 *   `Atomics.wait` on shared memory and a synchronous read of a port, which a
 *   page that is not cross-origin isolated does not have, so it ends revoked
 *   with that reason (BLOCKING_CALLS);
 * - no shared-memory rings: messages go by postMessage, the transport Node's
 *   vats use by default too.
 * A looping closure is stopped as in Node: the kernel terminates its worker
 * at the time limit, and the page's thread never ran it.
 */
import type { FromVat, ToVat, VatOptions } from '../vat/protocol.js';
import type { VatThread } from '../vat/thread.js';

export type { VatThread };
export type VatPort = MessagePort;
export const BLOCKING_CALLS = false;
export const { MessageChannel } = globalThis;

/** Only the shared-memory transport reads a port synchronously, and a tab never uses it. */
export const receiveMessageOnPort = (): never => {
  throw new TypeError('a vat in a tab has no synchronous port');
};

const VAT_ENTRY = new URL('./vat.js', import.meta.url);

export const startVatThread = (options: VatOptions, _memoryMb: number): VatThread => {
  if (options.transport !== 'postMessage' || options.channel || options.sync) {
    throw new TypeError(`a vat in a tab talks by postMessage only (got transport ${JSON.stringify(options.transport)})`);
  }
  const worker = new Worker(VAT_ENTRY, { type: 'module', name: 'promisegrid vat' });
  worker.postMessage(options);
  const thread: VatThread = {
    postMessage: (batch: readonly ToVat[]) => worker.postMessage(batch),
    // A page has no event loop to keep alive.
    ref: () => {},
    unref: () => {},
    terminate: () => worker.terminate(),
    on(event: 'message' | 'error' | 'exit', listener: (value: never) => void) {
      if (event === 'message') worker.addEventListener('message', (message: MessageEvent<FromVat[]>) => listener(message.data as never));
      else if (event === 'error') {
        // A worker that cannot load (or throws at its top level) reports here; the pool retires it and its calls end revoked.
        worker.addEventListener('error', (error: ErrorEvent) => listener(new Error(error.message || 'the vat worker failed to start') as never));
        worker.addEventListener('messageerror', () => listener(new Error('a message from the vat could not be read') as never));
      }
      // 'exit': a Web Worker ends only when terminated, and the pool has retired it by then.
      return thread;
    },
  } as VatThread;
  return thread;
};
