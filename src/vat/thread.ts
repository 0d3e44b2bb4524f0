/**
 * Where Node runs a vat: a worker thread with V8 resource limits (its heap
 * and stack budget), started on the vat entry point (worker.ts). This is
 * the pool's one platform module; a browser tab's bundle puts
 * src/tab/vat-thread.ts in its place (scripts/build-tab.mjs), which starts
 * a Web Worker on the same vat code instead.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, type MessagePort } from 'node:worker_threads';
import type { FromVat, ToVat, VatOptions } from './protocol.js';

export { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
export type VatPort = MessagePort;

/** What the pool needs of a vat's thread: Node's Worker has it as it is. */
export interface VatThread {
  postMessage(batch: readonly ToVat[]): void;
  /** Whether the thread keeps the process alive (a vat with calls does, an idle one must not). */
  ref(): void;
  unref(): void;
  terminate(): unknown;
  on(event: 'message', listener: (batch: FromVat[]) => void): unknown;
  /** `code` is `ERR_WORKER_OUT_OF_MEMORY` when the thread exhausted its heap budget. */
  on(event: 'error', listener: (error: Error & { code?: string }) => void): unknown;
  on(event: 'exit', listener: () => void): unknown;
}

/** Whether a vat here can block on a synchronous grid.call (a WebAssembly closure's): it can, with Atomics.wait and receiveMessageOnPort. */
export const BLOCKING_CALLS = true;

/** Node options a vat worker keeps from its process, with a value (`--import=x` or `--import x`). */
const KEPT_WITH_VALUE = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader', '--conditions', '-C', '--disable-warning']);
/** …and without one. */
const KEPT_FLAGS = new Set(['--enable-source-maps', '--no-warnings', '--no-deprecation', '--preserve-symlinks']);

/**
 * The Node options a vat worker starts with, out of its process's
 * `execArgv`. A worker inherits them all by default, `-e`/`-p`'s script and
 * `--input-type` included — then it runs the embedding program's script, not
 * the vat, and every call ends `vat stopped before the call started`. It
 * keeps only what finding and loading modules may need (preloads and loaders:
 * `--import`, `--require`, `--loader`, `--conditions`, `--preserve-symlinks`
 * — Yarn PnP, say, resolves through them) and how warnings and stacks read.
 * V8 and process-wide options (`--expose-gc`, `--max-old-space-size`,
 * `--stack-size`, `--inspect`…) already hold in every thread, and Node
 * refuses them in a worker's `execArgv`; the vat's own memory and stack
 * limits are its `resourceLimits`.
 */
export const vatExecArgv = (execArgv: readonly string[]): string[] => {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i += 1) {
    const arg = execArgv[i]!;
    const equals = arg.indexOf('=');
    const name = equals > 0 ? arg.slice(0, equals) : arg;
    if (KEPT_FLAGS.has(arg)) kept.push(arg);
    else if (KEPT_WITH_VALUE.has(name)) {
      if (equals > 0) kept.push(arg);
      else if (i + 1 < execArgv.length) kept.push(arg, execArgv[++i]!);
    } else if (DROPPED_WITH_VALUE.has(arg)) i += 1; // the script (or type) goes too, whatever it looks like
  }
  return kept;
};
/** Dropped options whose value is the next argument (`-e <script>`): it is skipped, never read as an option. */
const DROPPED_WITH_VALUE = new Set(['-e', '--eval', '-p', '--print', '-pe', '--input-type']);

/**
 * When this module runs from its TypeScript source (under tsx: ava, the
 * tsx command), the compiled vat entry if `npm run build` has compiled the
 * tree since any source file last changed; else undefined. A worker cannot
 * inherit tsx's loader from `--import` on Node 20, so one started on the
 * sources registers tsx itself and compiles every module again: 0.6 s and
 * 1 s of CPU to a vat's first call, against 0.3 s and 0.45 s compiled — and
 * the test suite starts hundreds of vats. Checked once per process.
 */
let compiledEntry: URL | undefined | null = null;
const freshCompiledEntry = (): URL | undefined => {
  if (compiledEntry !== null) return compiledEntry;
  compiledEntry = undefined;
  try {
    const sources = fileURLToPath(new URL('..', import.meta.url));
    const entry = new URL('../../dist/vat/worker.js', import.meta.url);
    const built = statSync(entry).mtimeMs;
    const newest = Math.max(...readdirSync(sources, { recursive: true }).map((name) => statSync(join(sources, String(name))).mtimeMs));
    if (built >= newest) compiledEntry = entry;
  } catch {
    // No compiled tree (or an unreadable one): the sources it is.
  }
  return compiledEntry;
};

/** Start a worker on the vat entry point: compiled, or (under tsx, in development, unless freshly built) from source. */
export const startVatThread = (options: VatOptions, memoryMb: number): VatThread => {
  const resourceLimits = { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: Math.min(32, memoryMb), stackSizeMb: 4 };
  const transferList = [options.sync?.port, options.channel?.port].filter((port) => port !== undefined);
  const execArgv = vatExecArgv(process.execArgv);
  const compiled = import.meta.url.endsWith('.ts') ? freshCompiledEntry() : undefined;
  if (compiled) return new Worker(compiled, { workerData: options, resourceLimits, transferList, execArgv });
  if (import.meta.url.endsWith('.ts')) {
    const entry = new URL('./worker.ts', import.meta.url).href;
    const bootstrap = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
    return new Worker(bootstrap, { eval: true, workerData: options, resourceLimits, transferList, execArgv });
  }
  return new Worker(new URL('./worker.js', import.meta.url), { workerData: options, resourceLimits, transferList, execArgv });
};
