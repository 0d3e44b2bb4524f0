/**
 * `grid inspect`: a protocol analyzer. Given bytes, say what they are — a
 * grid message, a closure record, a journal, a CBOR block, a WebAssembly or
 * JS module — and print them readably. It only reads; malformed input gets a
 * report of why it does not decode, never a crash.
 */
import { decode, decodeMessage, isMessage, WireError } from '../wire/index.js';
import { fromWire } from '../closures/values.js';
import { toJsonText } from './format.js';
import { CAPTP_PROTOCOL, HANDSHAKE_PROTOCOL } from '../net/handshake.js';
import { CANCEL_PROTOCOL, FETCH_PROTOCOL, RECORDS_PROTOCOL, REPLY_PROTOCOL, REVOCATION_PROTOCOL } from '../net/frames.js';

export interface InspectReport {
  readonly kind: 'message' | 'closure' | 'journal' | 'cbor' | 'wasm' | 'text' | 'unknown';
  readonly bytes: number;
  readonly value?: unknown;
  readonly error?: string;
  readonly text: string;
}

const CLOSURE_FIELDS = ['code', 'env', 'export', 'issuer', 'nonce', 'sig'];
const OPTIONAL_CLOSURE_FIELDS = ['time', 'replicable'];
const isClosureRecord = (value: object) => {
  const keys = Object.keys(value);
  return CLOSURE_FIELDS.every((key) => keys.includes(key)) && keys.every((key) => CLOSURE_FIELDS.includes(key) || OPTIONAL_CLOSURE_FIELDS.includes(key));
};

/** The protocol records a message's first CID may name; any other CID is the token a call is addressed to. */
const PROTOCOLS = new Map(
  [
    ['handshake', HANDSHAKE_PROTOCOL],
    ['CapTP', CAPTP_PROTOCOL],
    ['reply', REPLY_PROTOCOL],
    ['revocation notice', REVOCATION_PROTOCOL],
    ['replica fetch', FETCH_PROTOCOL],
    ['journal records request', RECORDS_PROTOCOL],
    ['cancel', CANCEL_PROTOCOL],
  ].map(([name, cid]) => [cid!.toString(), name as string]),
);

const journalRecords = (bytes: Uint8Array): unknown[] | undefined => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: unknown[] = [];
  let offset = 0;
  while (offset + 4 <= bytes.length) {
    const end = offset + 4 + view.getUint32(offset);
    if (end > bytes.length) return undefined;
    try {
      records.push(fromWire(decode(bytes.subarray(offset + 4, end))));
    } catch {
      return undefined;
    }
    offset = end;
  }
  return offset === bytes.length && records.length > 0 ? records : undefined;
};

export const inspectBytes = (bytes: Uint8Array): InspectReport => {
  const size = bytes.length;
  if (isMessage(bytes)) {
    try {
      const { cid, slots } = decodeMessage(bytes);
      const to = cid.toString();
      const protocol = PROTOCOLS.get(to) ?? 'call';
      const value = { to, protocol, slots: fromWire(slots) };
      const what = protocol === 'call' ? `call to token ${to}` : `${protocol} (${to})`;
      return { kind: 'message', bytes: size, value, text: `grid message (${size} bytes): ${what}\n${toJsonText(value.slots, 2)}` };
    } catch (error) {
      const message = (error as Error).message;
      return { kind: 'message', bytes: size, error: message, text: `malformed grid message (${size} bytes): ${message}` };
    }
  }
  if (size >= 4 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d) {
    try {
      const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
      const value = { imports: WebAssembly.Module.imports(module), exports: WebAssembly.Module.exports(module) };
      return { kind: 'wasm', bytes: size, value, text: `WebAssembly module (${size} bytes)\n${toJsonText(value, 2)}` };
    } catch (error: unknown) {
      return { kind: 'wasm', bytes: size, error: (error as Error).message, text: `invalid WebAssembly (${size} bytes): ${(error as Error).message}` };
    }
  }
  let cborError: string | undefined;
  try {
    const value = fromWire(decode(bytes));
    const isClosure = value !== null && typeof value === 'object' && isClosureRecord(value);
    const kind = isClosure ? 'closure' : 'cbor';
    return { kind, bytes: size, value, text: `${isClosure ? 'closure record' : 'CBOR'} (${size} bytes)\n${toJsonText(value, 2)}` };
  } catch (error) {
    cborError = error instanceof WireError ? error.message : String(error as Error);
  }
  const records = journalRecords(bytes);
  if (records) {
    return { kind: 'journal', bytes: size, value: records, text: `journal: ${records.length} records (${size} bytes)\n${records.map((r) => toJsonText(r)).join('\n')}` };
  }
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return { kind: 'text', bytes: size, value: text, text: `text (${size} bytes)\n${text}` };
  } catch {
    return { kind: 'unknown', bytes: size, error: cborError, text: `unrecognised ${size} bytes: ${cborError}` };
  }
};
