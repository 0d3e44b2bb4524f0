// Loaded into a node by bench/memory.ts (`node --expose-gc --import=…/memory-probe.mjs bin/grid.js start`):
// on SIGHUP, collect garbage and append the process's memory figures to $MEMORY_PROBE_OUT as one JSON line.
import { readFileSync, writeFileSync } from 'node:fs';
import v8 from 'node:v8';

process.on('SIGHUP', () => {
  for (let i = 0; i < 3; i++) globalThis.gc?.();
  const m = process.memoryUsage();
  const h = v8.getHeapStatistics();
  const anon = Number(/RssAnon:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024;
  const line = { rss: m.rss, anon, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, malloced: h.malloced_memory };
  writeFileSync(process.env.MEMORY_PROBE_OUT, `${JSON.stringify(line)}\n`, { flag: 'a' });
});
