/**
 * What a vat is given by the thread that started it: in Node, a worker
 * thread's parent port and `workerData`. A browser tab's bundle puts
 * src/tab/vat-env.ts in its place (scripts/build-tab.mjs), so the same vat
 * code (worker.ts) runs in a Web Worker.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { FromVat, ToVat, VatOptions } from './protocol.js';

export { receiveMessageOnPort };

/** The kernel's side: batches each way. */
export const kernelPort: { postMessage(batch: readonly FromVat[]): void; on(event: 'message', listener: (batch: ToVat[]) => void): unknown } = parentPort!;
export const vatOptions = workerData as VatOptions;
