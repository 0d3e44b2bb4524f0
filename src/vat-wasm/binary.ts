/**
 * Just enough of the WebAssembly binary format to hold a module to the
 * grid's terms before it runs: which imports it asks for, the signature of
 * each export (to pick a calling convention), and its memory, whose maximum
 * is rewritten to the node's cap. A module that declares no maximum would
 * otherwise be free to grow to 4 GiB; one whose minimum is over the cap is
 * refused. The engine has already validated the bytes; this reader only
 * trusts them that far.
 */
import { GridError } from '../interface/errors.js';

export class WasmError extends GridError {
  constructor(code: string, message: string) {
    super(code, `wasm: ${message}`);
  }
}

export type ValueType = 'i32' | 'i64' | 'f32' | 'f64' | 'other';
export interface FunctionType {
  readonly params: readonly ValueType[];
  readonly results: readonly ValueType[];
}
export interface WasmImport {
  readonly module: string;
  readonly name: string;
  /** 0 function, 1 table, 2 memory, 3 global, 4 tag */
  readonly kind: number;
}
export interface WasmShape {
  readonly imports: readonly WasmImport[];
  /** Function exports and their signatures. */
  readonly functions: ReadonlyMap<string, FunctionType>;
  readonly exportsMemory: boolean;
}

const VALUE_TYPES: Record<number, ValueType> = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64' };

class Reader {
  offset: number;
  constructor(
    readonly bytes: Uint8Array,
    offset = 0,
  ) {
    this.offset = offset;
  }

  byte(): number {
    if (this.offset >= this.bytes.length) throw new WasmError('ERR_BAD_WASM', 'unexpected end of module');
    return this.bytes[this.offset++]!;
  }

  u32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
    }
    throw new WasmError('ERR_BAD_WASM', 'LEB128 number too long');
  }

  name(): string {
    const length = this.u32();
    const text = new TextDecoder().decode(this.bytes.subarray(this.offset, this.offset + length));
    this.offset += length;
    return text;
  }

  skipLimits(): { min: number; max: number | undefined; flags: number } {
    const flags = this.byte();
    const min = this.u32();
    const max = flags & 1 ? this.u32() : undefined;
    return { min, max, flags };
  }
}

const encodeU32 = (value: number): number[] => {
  const out: number[] = [];
  do {
    let b = value & 0x7f;
    value = Math.floor(value / 128);
    if (value > 0) b |= 0x80;
    out.push(b);
  } while (value > 0);
  return out;
};

interface Section {
  readonly id: number;
  readonly start: number; // of the section id byte
  readonly body: number;
  readonly end: number;
}

const sections = (bytes: Uint8Array): Section[] => {
  const reader = new Reader(bytes, 8);
  const out: Section[] = [];
  while (reader.offset < bytes.length) {
    const start = reader.offset;
    const id = reader.byte();
    const size = reader.u32();
    const body = reader.offset;
    reader.offset += size;
    out.push({ id, start, body, end: reader.offset });
  }
  return out;
};

/** Imports, export signatures and memory exports of a (validated) module. */
export const shapeOf = (bytes: Uint8Array): WasmShape => {
  const types: FunctionType[] = [];
  const functionTypes: number[] = [];
  const imports: WasmImport[] = [];
  const functions = new Map<string, FunctionType>();
  let exportsMemory = false;
  for (const section of sections(bytes)) {
    const reader = new Reader(bytes, section.body);
    if (section.id === 1) {
      for (let count = reader.u32(); count > 0; count--) {
        if (reader.byte() !== 0x60) throw new WasmError('ERR_BAD_WASM', 'unknown type form');
        const params = Array.from({ length: reader.u32() }, () => VALUE_TYPES[reader.byte()] ?? 'other');
        const results = Array.from({ length: reader.u32() }, () => VALUE_TYPES[reader.byte()] ?? 'other');
        types.push({ params, results });
      }
    } else if (section.id === 2) {
      for (let count = reader.u32(); count > 0; count--) {
        const module = reader.name();
        const name = reader.name();
        const kind = reader.byte();
        imports.push({ module, name, kind });
        if (kind === 0) functionTypes.push(reader.u32());
        else if (kind === 1) (reader.byte(), reader.skipLimits());
        else if (kind === 2) reader.skipLimits();
        else if (kind === 3) (reader.byte(), reader.byte());
        else if (kind === 4) (reader.byte(), reader.u32());
      }
    } else if (section.id === 3) {
      for (let count = reader.u32(); count > 0; count--) functionTypes.push(reader.u32());
    } else if (section.id === 7) {
      for (let count = reader.u32(); count > 0; count--) {
        const name = reader.name();
        const kind = reader.byte();
        const index = reader.u32();
        if (kind === 0) functions.set(name, types[functionTypes[index]!] ?? { params: [], results: [] });
        if (kind === 2) exportsMemory = true;
      }
    }
  }
  return { imports, functions, exportsMemory };
};

/**
 * The module with every memory's maximum set to at most `maxPages`. Refuses
 * shared and 64-bit memories and a minimum over the cap. (Imported memories
 * never get here: a vat's memory is its own, and the import is refused.)
 */
export const capMemory = (bytes: Uint8Array, maxPages: number): Uint8Array => {
  const memory = sections(bytes).find((section) => section.id === 5);
  if (!memory) return bytes;
  const reader = new Reader(bytes, memory.body);
  const entries: number[] = [];
  const count = reader.u32();
  for (let i = 0; i < count; i++) {
    const { flags, min, max } = reader.skipLimits();
    if (flags !== 0 && flags !== 1) throw new WasmError('ERR_MEMORY', `memory ${i} is shared or 64-bit, which vats do not run`);
    if (min > maxPages) throw new WasmError('ERR_MEMORY', `memory ${i} starts at ${min} pages, over the cap of ${maxPages}`);
    entries.push(0x01, ...encodeU32(min), ...encodeU32(Math.min(max ?? maxPages, maxPages)));
  }
  const body = [...encodeU32(count), ...entries];
  const section = [5, ...encodeU32(body.length), ...body];
  const out = new Uint8Array(bytes.length - (memory.end - memory.start) + section.length);
  out.set(bytes.subarray(0, memory.start));
  out.set(section, memory.start);
  out.set(bytes.subarray(memory.end), memory.start + section.length);
  return out;
};
