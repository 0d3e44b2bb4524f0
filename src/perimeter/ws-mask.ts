/**
 * WebSocket masking that stays fast under SES lockdown. Every frame a client
 * sends is XORed with a 4-byte mask, and the server undoes it byte by byte;
 * without the optional native `bufferutil`, ws does it in a JavaScript loop
 * of typed-array stores. Once lockdown has frozen the prototypes, V8 (Node
 * 20) takes a slow path for every such store: about 150 ns a byte, so a
 * 900 KB frame held the event loop 100–350 ms before anything was decoded,
 * and a 16 MiB one would hold it seconds. Here a frame is XORed 8 bytes at
 * a time in a tiny WebAssembly module, a MiB at a time through its memory
 * (the copies in and out are native); short frames, or a runtime without
 * WebAssembly, use DataView stores, which keep their fast path (about 3 ns
 * a byte). ws takes native masking from `http.websocketMask`
 * and `http.websocketUnmask` when they exist as it loads (ws's lib/buffer-util.js);
 * the perimeter imports this module first, so they exist before ws loads.
 */
import { createRequire } from 'node:module';

// The module object ws itself requires (an ESM namespace would be a frozen copy).
const http = createRequire(import.meta.url)('node:http') as object;

/**
 * (module (memory (export "memory") 16)
 *   (func (export "xor") (param $len i32) (param $key i64) (local $i i32)
 *     (block $done (loop $next
 *       (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
 *       (i64.store (local.get $i) (i64.xor (i64.load (local.get $i)) (local.get $key)))
 *       (local.set $i (i32.add (local.get $i) (i32.const 8)))
 *       (br $next)))))
 */
const XOR_WASM = 'AGFzbQEAAAABBgFgAn9+AAMCAQAFAwEAEAcQAgZtZW1vcnkCAAN4b3IAAAopAScBAX8CQANAIAIgAE8NASACIAIpAwAgAYU3AwAgAkEIaiECDAALCws=';
/** The module's memory (16 pages): what one pass XORs. A multiple of 8, so the key's phase carries from pass to pass. */
const CHUNK = 16 * 65536;
/** Below this a frame is XORed in JavaScript: copying it through the module would cost more than it saves. */
const WASM_FROM = 1024;

const wasm = (() => {
  try {
    const { exports } = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(XOR_WASM, 'base64')));
    return { memory: new Uint8Array((exports.memory as WebAssembly.Memory).buffer, 0, CHUNK), xor: exports.xor as (length: number, key: bigint) => void };
  } catch {
    return undefined;
  }
})();

const viaDataView = (source: Uint8Array, key: Uint8Array, output: Uint8Array, offset: number, length: number): void => {
  const from = new DataView(source.buffer, source.byteOffset, length);
  const to = new DataView(output.buffer, output.byteOffset + offset, length);
  // Both read big-endian: byte j of each word meets key byte j.
  const word = new DataView(key.buffer, key.byteOffset, 4).getUint32(0);
  let i = 0;
  for (; i + 4 <= length; i += 4) to.setUint32(i, from.getUint32(i) ^ word);
  for (; i < length; i++) to.setUint8(i, from.getUint8(i) ^ key[i & 3]!);
};

const mask = (source: Uint8Array, key: Uint8Array, output: Uint8Array, offset: number, length: number): void => {
  if (!wasm || length < WASM_FROM) return viaDataView(source, key, output, offset, length);
  // The key twice, as the little-endian i64 the module's loads see.
  const word = new DataView(key.buffer, key.byteOffset, 4).getUint32(0, true);
  const key64 = (BigInt(word) << 32n) | BigInt(word);
  for (let done = 0; done < length; done += CHUNK) {
    const n = Math.min(CHUNK, length - done);
    wasm.memory.set(source.subarray(done, done + n));
    // Up to 7 bytes past n are XORed too: left over from before, never copied out.
    wasm.xor(n, key64);
    output.set(wasm.memory.subarray(0, n), offset + done);
  }
};

const unmask = (buffer: Uint8Array, key: Uint8Array): void => mask(buffer, key, buffer, 0, buffer.length);

const hooks = http as { websocketMask?: typeof mask; websocketUnmask?: typeof unmask };
hooks.websocketMask ??= mask;
hooks.websocketUnmask ??= unmask;
