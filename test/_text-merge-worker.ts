// A worker thread set up like a vat (src/vat/pool.ts): locked down first,
// then it loads the text merge and answers merge requests.
import '../src/perimeter/lockdown.js';
import { parentPort } from 'node:worker_threads';

const port = parentPort!;
const started = Date.now();
const { mergeText } = await import('../src/docs/text-merge.js');
const loadMs = Date.now() - started;
port.on('message', (message: { base: string; ours: string; theirs: string }) => {
  try {
    port.postMessage({ ok: mergeText(message.base, message.ours, message.theirs), locked: Object.isFrozen(Object.prototype), loadMs });
  } catch (error) {
    port.postMessage({ error: String((error as Error).message), code: (error as { code?: string }).code });
  }
});
port.postMessage({ ready: true });
