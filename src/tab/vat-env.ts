/**
 * What a vat in a tab is given (in place of src/vat/vat-env.ts): the Web
 * Worker's own scope is its port to the kernel, and its options come as the
 * first message (src/tab/vat-thread.ts sends them before anything else).
 */
import type { FromVat, ToVat, VatOptions } from '../vat/protocol.js';

interface WorkerScope {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void, options?: { once: boolean }): void;
}
const scope = globalThis as unknown as WorkerScope;

export const vatOptions: VatOptions = await new Promise<VatOptions>((resolve) => scope.addEventListener('message', (event) => resolve(event.data as VatOptions), { once: true }));

export const kernelPort = {
  postMessage: (batch: readonly FromVat[]) => scope.postMessage(batch),
  on: (_event: 'message', listener: (batch: ToVat[]) => void) => scope.addEventListener('message', (event) => listener(event.data as ToVat[])),
};

/** Read only on the shared-memory transport and by a blocking call, neither of which a tab's vat has. */
export const receiveMessageOnPort = (): never => {
  throw new TypeError('a vat in a tab has no synchronous port');
};
