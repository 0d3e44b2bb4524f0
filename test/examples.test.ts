import test from 'ava';
import { readFile } from 'node:fs/promises';
import { wat } from './_wat.js';

// Shipped .wasm files must be exactly what their .wat source compiles to.
for (const name of ['counter', 'echo', 'fib', 'gcd']) {
  test(`examples/wasm/${name}.wasm is built from ${name}.wat`, async (t) => {
    const source = await readFile(`examples/wasm/${name}.wat`, 'utf8');
    t.deepEqual(new Uint8Array(await readFile(`examples/wasm/${name}.wasm`)), await wat(source));
  });
}
