/**
 * `npm run bench`: every figure the README and closing notes quote, each
 * next to its baseline measured in the same run.
 */
import '../dist/perimeter/lockdown.js';
import { benchKernel } from './kernel.js';
import { benchVat, benchWasm } from './vat.js';
import { benchNet } from './net.js';
import { benchWire } from './wire.js';
import { benchStore } from './store.js';
import { benchIdentity } from './identity.js';
import { benchScreener } from './screener.js';
import { benchGraph } from './graph.js';
import { benchHostile } from './hostile.js';
import { benchMemory } from './memory.js';
import { benchMerges } from './merges.js';
import { benchTextMerge } from './text-merge.js';
import { benchDocOps } from './doc-ops.js';
import { benchDocSync } from './doc-sync.js';
import { benchRestart } from './restart.js';
import { benchDurable } from './durable.js';
import { benchGc } from './gc.js';
import { benchDbCompare } from './db-compare.js';
import { benchBrowser } from './browser.js';
import { benchScale } from './scale.js';
import type { Row } from './measure.js';

const suites: Array<[string, () => Promise<Row[]>]> = [
  ['kernel', benchKernel],
  ['vat', benchVat],
  ['wasm', benchWasm],
  ['net', benchNet],
  ['wire', benchWire],
  ['store', benchStore],
  ['identity', benchIdentity],
  ['screener', benchScreener],
  ['graph', benchGraph],
  ['hostile', benchHostile],
  ['memory', benchMemory],
  ['merges', benchMerges],
  ['text-merge', benchTextMerge],
  ['docs', benchDocOps],
  ['docs', benchDocSync],
  ['durable', benchRestart],
  ['durable', benchDurable],
  ['gc', benchGc],
  ['db', benchDbCompare],
  ['browser', benchBrowser],
  ['scale', benchScale],
];

const only = process.argv.slice(2);
const format = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} ms` : n >= 1e3 ? `${(n / 1e3).toFixed(2)} µs` : `${n} ns`);
for (const [suite, run] of suites) {
  if (only.length > 0 && !only.includes(suite)) continue;
  console.log(`\n## ${suite}`);
  for (const r of await run()) {
    if (r.median_ns === 0 && r.ops_per_s === 0) {
      console.log(r.name); // a figure with no median (cores used, say): its name says it
      continue;
    }
    const vs = r.baseline ? `  ${r.ratio}× ${r.baseline}` : '';
    console.log(`${r.name.padEnd(44)} median ${format(r.median_ns).padStart(10)}  ${String(r.ops_per_s).padStart(10)} ops/s${vs}`);
  }
}
