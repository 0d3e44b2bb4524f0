/**
 * WebAssembly closures. A module gets only what its closure grants: the
 * `grid` imports below, nothing of the host — no WASI, no clock, no memory
 * of anyone else's — and every call runs in a fresh instance with a fresh
 * memory, so, like JS closures, nothing survives a call and calls that make
 * no grid calls are pure.
 *
 * Calling conventions, chosen by the export's signature:
 * - numeric: parameters and result are i32/i64/f32/f64; called with numbers
 *   (i64 as BigInt), each checked to fit its parameter exactly (wasmParam),
 *   the result is the value;
 * - CBOR: `(i32 ptr, i32 len) -> i64` in a module that exports `memory` and
 *   `alloc(len) -> ptr`. The arguments, a CBOR array, are written at memory
 *   the module allocated; the result is `ptr << 32 | len` of a CBOR value in
 *   its memory, or a negative number to revoke the call.
 *
 * Imports a module may ask for (module "grid"):
 * - `call(slot, ptr, len) -> i64`: call `env.tokens[slot]` with the CBOR array
 *   at ptr/len; the answer comes back CBOR ABI style, negative if revoked;
 * - `log(ptr, len)`: a line of UTF-8 text to the node's log.
 */
import { decodeValue, encodeValue, isLink, type GridValue } from '../closures/values.js';
import { quote } from '../interface/ids.js';
import type { Settlement } from '../interface/outcome.js';
import { WasmError, type FunctionType, type WasmShape } from './binary.js';

export const GRID_IMPORTS: Readonly<Record<string, number>> = Object.freeze({ call: 0, log: 0 });

/** Refuse, at publish time, a module that asks for anything the grid does not grant. */
export const assertGrantedImports = (shape: WasmShape): void => {
  for (const imported of shape.imports) {
    if (imported.module !== 'grid' || GRID_IMPORTS[imported.name] !== imported.kind) {
      throw new WasmError('ERR_FORBIDDEN_IMPORT', `forbidden import ${quote(`${imported.module}.${imported.name}`)}: WebAssembly closures may import only grid.call and grid.log`);
    }
  }
};

const NUMERIC = new Set(['i32', 'i64', 'f32', 'f64']);
export type Convention = 'numeric' | 'cbor';

export const conventionOf = (shape: WasmShape, exportName: string): Convention | undefined => {
  const type = shape.functions.get(exportName);
  if (!type) return undefined;
  const isCbor = (t: FunctionType) => t.params.length === 2 && t.params.every((p) => p === 'i32') && t.results.length === 1 && t.results[0] === 'i64';
  if (isCbor(type) && shape.exportsMemory && shape.functions.get('alloc')?.params.join() === 'i32') return 'cbor';
  if (type.params.every((p) => NUMERIC.has(p)) && type.results.length <= 1 && type.results.every((r) => NUMERIC.has(r))) return 'numeric';
  return undefined;
};

/** What a running WebAssembly call may ask of the kernel, synchronously. */
export interface WasmHost {
  call(token: string, args: Uint8Array): Settlement<Uint8Array>;
  log(line: string): void;
}

/**
 * Ends a call revoked with its message. `refusal`: the call's input was
 * refused (arguments that do not fit, or the module's own refusal), a
 * promise kept; otherwise the module misbehaved (a bad answer), a crash.
 */
export class WasmRevoked extends Error {
  constructor(
    message: string,
    readonly refusal = false,
  ) {
    super(message);
  }
}

/** A number as it was given: `-0` keeps its sign, bigints print whole. */
const numberText = (value: number | bigint): string => (Object.is(value, -0) ? '-0' : String(value));

const INTEGER_RANGES = {
  i32: [-(2n ** 31n), 2n ** 31n - 1n],
  i64: [-(2n ** 63n), 2n ** 63n - 1n],
} as const;

/**
 * One argument of a numeric export, as its parameter type holds it, or a
 * revocation saying why it cannot be. The JS API would convert silently —
 * ToInt32 wraps 4294967297 to 1 and truncates 2.9 to 2, BigInt wraps 2^64-1
 * to -1, f32 rounds 16777217 to 16777216 — so every conversion here is exact
 * or refused. Integers are signed, as the JS API reads results: an i32 takes
 * -2^31 … 2^31-1 and an i64 -2^63 … 2^63-1. A float parameter takes any
 * integer it holds exactly; a fraction rounds to the nearest float of the
 * type, as decimal text already rounds to the nearest f64, but never to an
 * infinity or to zero.
 */
export const wasmParam = (exportName: string, index: number, type: string, arg: unknown): number | bigint => {
  if (typeof arg !== 'number' && typeof arg !== 'bigint') throw new WasmRevoked(`argument ${index + 1} must be a number (got ${quote(arg)})`, true);
  const refuse = (what: string): never => {
    throw new WasmRevoked(`argument ${index + 1} of ${exportName} is an ${type}: ${what}`, true);
  };
  if (type === 'i32' || type === 'i64') {
    const [min, max] = INTEGER_RANGES[type];
    const whole = typeof arg === 'bigint' || Number.isInteger(arg);
    const value = whole ? BigInt(arg) : undefined;
    if (value === undefined || value < min || value > max) refuse(`a whole number from ${min} to ${max} (got ${numberText(arg)})`);
    return type === 'i64' ? value! : Number(value);
  }
  const asDouble = typeof arg === 'bigint' ? Number(arg) : arg;
  if (typeof arg === 'bigint' && BigInt(asDouble) !== arg) refuse(`${arg} is not exactly an f64 (nearest ${asDouble})`);
  if (type === 'f64') return asDouble;
  const single = Math.fround(asDouble);
  if (!Number.isFinite(single)) refuse(`${numberText(arg)} is beyond its range (largest ${F32_MAX})`);
  if (single === 0 && asDouble !== 0) refuse(`${numberText(arg)} is too small for it (it would be 0)`);
  if (Number.isInteger(asDouble) && single !== asDouble) refuse(`${numberText(arg)} is not exactly an f32 (nearest ${single})`);
  return single;
};
const F32_MAX = 3.4028234663852886e38;

/** A numeric export's result as grid data: i64 as a number when it is safe, else exact as a bigint; NaN and infinities revoke. */
const wasmResult = (exportName: string, result: unknown): GridValue => {
  if (typeof result === 'bigint') return result >= BigInt(Number.MIN_SAFE_INTEGER) && result <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(result) : result;
  if (typeof result === 'number' && !Number.isFinite(result)) throw new WasmRevoked(`${exportName} returned ${result}, which is not grid data (numbers are finite)`);
  return (result ?? null) as GridValue;
};

const MAX_LOG_LINE = 4096;

/** Run one call of a WebAssembly closure in a fresh instance. Throws to revoke. */
export const runWasm = (
  module: WebAssembly.Module,
  shape: WasmShape,
  exportName: string,
  env: GridValue,
  args: readonly GridValue[],
  host: WasmHost,
): { value: GridValue; usedGrid: boolean } => {
  const convention = conventionOf(shape, exportName);
  if (!convention) throw new WasmRevoked(`export ${quote(exportName)} is not a function vats can call (numeric, or CBOR (i32, i32) -> i64 with memory and alloc)`);
  let usedGrid = false;
  let instance: WebAssembly.Instance | undefined;
  const memoryBytes = (ptr: number, len: number): Uint8Array => {
    const memory = instance!.exports.memory as WebAssembly.Memory | undefined;
    if (!memory) throw new WasmRevoked('module has no exported memory');
    const buffer = new Uint8Array(memory.buffer);
    if (ptr < 0 || len < 0 || ptr + len > buffer.length) {
      throw new WasmRevoked(`out of bounds: ${len} bytes at ${ptr} in a ${buffer.length}-byte memory`);
    }
    return buffer.subarray(ptr, ptr + len);
  };
  const place = (bytes: Uint8Array): bigint => {
    const alloc = instance!.exports.alloc as ((len: number) => number) | undefined;
    if (typeof alloc !== 'function') throw new WasmRevoked('module has no alloc export to receive an answer');
    const ptr = alloc(bytes.length) >>> 0;
    memoryBytes(ptr, bytes.length).set(bytes);
    return (BigInt(ptr) << 32n) | BigInt(bytes.length);
  };
  const tokens = (env as { tokens?: unknown })?.tokens;
  const grid = {
    call: (slot: number, ptr: number, len: number): bigint => {
      usedGrid = true;
      const token = Array.isArray(tokens) ? tokens[slot] : undefined;
      if (!isLink(token)) throw new WasmRevoked(`grid.call: env.tokens[${slot}] is not a token`);
      const answer = host.call(token['/'], memoryBytes(ptr, len).slice());
      return answer.status === 'fulfilled' ? place(answer.value) : -1n;
    },
    log: (ptr: number, len: number): void => {
      host.log(new TextDecoder().decode(memoryBytes(ptr, Math.min(len, MAX_LOG_LINE))));
    },
  };
  if (convention === 'numeric') {
    // Checked before the module is instantiated: a refused call runs none of its code.
    const type = shape.functions.get(exportName)!;
    if (args.length !== type.params.length) throw new WasmRevoked(`${exportName} takes ${type.params.length} numbers (got ${args.length} arguments)`, true);
    const params = args.map((arg, index) => wasmParam(exportName, index, type.params[index]!, arg));
    instance = new WebAssembly.Instance(module, { grid });
    return { value: wasmResult(exportName, (instance.exports[exportName] as (...p: unknown[]) => unknown)(...params)), usedGrid };
  }
  instance = new WebAssembly.Instance(module, { grid });
  const fn = instance.exports[exportName] as (...params: unknown[]) => unknown;
  const input = encodeValue(args);
  const packed = fn(Number(place(input) >> 32n), input.length) as bigint;
  if (packed < 0n) throw new WasmRevoked('revoked by the module', true);
  const bytes = memoryBytes(Number(packed >> 32n), Number(packed & 0xffffffffn)).slice();
  return { value: decodeValue(bytes), usedGrid };
};
