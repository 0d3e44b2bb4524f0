// Rebuild the example .wasm files from their .wat sources with the wabt npm
// package (no compiler needed). test/examples.test.ts checks they match.
import wabtInit from 'wabt';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

const wabt = await wabtInit();
const dir = new URL('../examples/wasm/', import.meta.url);
for (const name of readdirSync(dir).filter((file) => file.endsWith('.wat'))) {
  const module = wabt.parseWat(name, readFileSync(new URL(name, dir), 'utf8'));
  writeFileSync(new URL(name.replace(/\.wat$/, '.wasm'), dir), Buffer.from(module.toBinary({}).buffer));
  module.destroy();
  console.log(`built examples/wasm/${name.replace(/\.wat$/, '.wasm')}`);
}
