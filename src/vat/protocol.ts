/**
 * Messages between the kernel and its vat workers. Both sides send arrays:
 * everything queued in one turn travels in one postMessage, so a busy vat
 * pays for the thread hop once per batch rather than once per call.
 * Arguments, values and env travel as canonical CBOR bytes; the kernel
 * decodes what a vat sends strictly, as it would bytes from a peer.
 */
import type { ModuleId, Principal, Token } from '../caps/ids.js';
import type { ModuleRecord } from '../closures/runner.js';

export type ToVat =
  | { readonly t: 'module'; readonly id: ModuleId; readonly record: ModuleRecord }
  | { readonly t: 'closure'; readonly token: Token; readonly code: ModuleId; readonly export: string; readonly env: Uint8Array }
  | { readonly t: 'run'; readonly run: number; readonly token: Token; readonly args: Uint8Array; readonly caller: Principal }
  | { readonly t: 'reply'; readonly run: number; readonly sub: number; readonly answer: Answer };

export type FromVat =
  | { readonly t: 'ready'; readonly run: -1 }
  | { readonly t: 'done'; readonly run: number; readonly answer: Answer; readonly pure: boolean }
  | { readonly t: 'call'; readonly run: number; readonly sub: number; readonly token: string; readonly args: Uint8Array }
  | { readonly t: 'issue'; readonly run: number; readonly sub: number; readonly export: string; readonly env: Uint8Array };

/** An outcome on the wire between threads: values as bytes. */
export type Answer =
  | { readonly status: 'fulfilled'; readonly value: Uint8Array }
  | { readonly status: 'revoked'; readonly reason: string }
  | { readonly status: 'promised'; readonly token: string };

export interface VatOptions {
  /** How many `ctx.call`s one call may make. */
  readonly maxFanOut: number;
}
