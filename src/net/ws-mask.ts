/**
 * WebSocket masking that stays fast under SES lockdown. Every frame a client
 * sends is XORed with a 4-byte mask, and the server undoes it byte by byte;
 * without the optional native `bufferutil`, ws does it in a JavaScript loop
 * of typed-array stores. Once lockdown has frozen the prototypes, V8 (Node
 * 20) takes a slow path for every such store: about 150 ns a byte, so a
 * 900 KB frame held the event loop 100–350 ms before anything was decoded,
 * and a 16 MiB one would hold it seconds. DataView stores keep their fast
 * path (0.8 ms for 900 KB). ws takes native masking from `http.websocketMask`
 * and `http.websocketUnmask` when they exist as it loads (lib/buffer-util.js);
 * the perimeter imports this module first, so they exist before ws loads.
 */
import { createRequire } from 'node:module';

// The module object ws itself requires (an ESM namespace would be a frozen copy).
const http = createRequire(import.meta.url)('node:http') as object;

const mask = (source: Uint8Array, key: Uint8Array, output: Uint8Array, offset: number, length: number): void => {
  const from = new DataView(source.buffer, source.byteOffset, length);
  const to = new DataView(output.buffer, output.byteOffset + offset, length);
  // Both read big-endian: byte j of each word meets key byte j.
  const word = new DataView(key.buffer, key.byteOffset, 4).getUint32(0);
  let i = 0;
  for (; i + 4 <= length; i += 4) to.setUint32(i, from.getUint32(i) ^ word);
  for (; i < length; i++) to.setUint8(i, from.getUint8(i) ^ key[i & 3]!);
};

const unmask = (buffer: Uint8Array, key: Uint8Array): void => mask(buffer, key, buffer, 0, buffer.length);

const hooks = http as { websocketMask?: typeof mask; websocketUnmask?: typeof unmask };
hooks.websocketMask ??= mask;
hooks.websocketUnmask ??= unmask;
