/**
 * The two Node globals the kernel core leans on, for its code in a tab:
 * esbuild's `inject` (scripts/build-tab.mjs) makes the bundle's free
 * references to `Buffer` and `setImmediate` read these, so no global of the
 * page is touched and the core keeps its Node fast paths unchanged.
 */
export { Buffer } from 'buffer';

/** Callbacks for the next turn, run in order; one message a turn wakes them all. */
let queued: Array<() => void> = [];
const wake = new MessageChannel();
wake.port1.onmessage = () => {
  const now = queued;
  queued = [];
  for (const callback of now) callback();
};

/** A later turn of the event loop, after what is queued now (a timer of 0 ms would be clamped to 4 ms once nested). */
export const setImmediate = (callback: (...args: never[]) => void, ...args: never[]): void => {
  queued.push(() => callback(...args));
  if (queued.length === 1) wake.port2.postMessage(null);
};
