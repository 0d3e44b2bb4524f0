/**
 * Messages between the kernel and its vat workers. They travel as frames in
 * a shared-memory ring each way (channel.ts); what does not fit a frame
 * goes by postMessage, its place in the ring kept.
 * Arguments, values and env travel as canonical CBOR bytes; the kernel
 * decodes what a vat sends strictly, as it would bytes from a peer.
 */
import type { MessagePort } from 'node:worker_threads';
import type { ModuleId, Principal, Token } from '../interface/ids.js';
import type { Settlement } from '../interface/outcome.js';
import type { ModuleRecord } from '../closures/runner.js';
import type { WasmShape } from '../vat-wasm/binary.js';

export type ToVat =
  | { readonly t: 'module'; readonly id: ModuleId; readonly record: ModuleRecord }
  | { readonly t: 'wasm'; readonly id: ModuleId; readonly record: WasmRecord }
  | { readonly t: 'closure'; readonly token: Token; readonly code: ModuleId; readonly export: string; readonly env: Uint8Array }
  /**
   * `fold`: args are `[state, changes]`; the export runs once per change on
   * the state the last one gave, and the answer is the CID (text) of each
   * state in turn — a document's versions checked in one hop (docs/documents.ts).
   */
  | { readonly t: 'run'; readonly run: number; readonly token: Token; readonly args: Uint8Array; readonly caller: Principal; readonly fold?: true }
  | { readonly t: 'reply'; readonly run: number; readonly sub: number; readonly answer: VatOutcome };

export type FromVat =
  | { readonly t: 'ready'; readonly run: -1 }
  | { readonly t: 'done'; readonly run: number; readonly answer: VatOutcome; readonly pure: boolean }
  /** `sync`: the vat is blocked until the answer arrives on its sync channel (a WebAssembly grid.call). */
  | { readonly t: 'call'; readonly run: number; readonly sub: number; readonly token: string; readonly args: Uint8Array; readonly sync?: true }
  | { readonly t: 'log'; readonly run: number; readonly line: string }
  | { readonly t: 'issue'; readonly run: number; readonly sub: number; readonly export: string; readonly env: Uint8Array };

/**
 * An outcome on the wire between threads: values as bytes; a revocation
 * carries its code, from which the kernel reads its cause (see RevokeCode).
 */
export type VatOutcome = Settlement<Uint8Array>;

/** A WebAssembly module as vats run it: memory capped, shape read. */
export interface WasmRecord {
  readonly bytes: Uint8Array;
  readonly shape: WasmShape;
}

/** `shared-memory`: the rings of channel.ts; `postMessage`: one structured-clone batch per turn each way. */
export type VatTransport = 'shared-memory' | 'postMessage';

export interface VatOptions {
  /** How many `ctx.call`s one call may make. */
  readonly maxFanOut: number;
  /** The channel a vat blocked in a synchronous grid.call reads its answer from, and the flag that wakes it; none where a vat cannot block (a browser tab's). */
  readonly sync?: { readonly port: MessagePort; readonly flag: SharedArrayBuffer };
  /** The shared-memory channel (channel.ts): its rings, and the port for messages that do not go in a frame; the `shared-memory` transport only. */
  readonly channel?: { readonly memory: SharedArrayBuffer; readonly port: MessagePort };
  /** How messages travel: in the channel's rings, or every batch by postMessage on the worker's port. */
  readonly transport: VatTransport;
  /** How long the vat keeps polling its ring after its last message before it sleeps, in microseconds. */
  readonly spinUs: number;
}
