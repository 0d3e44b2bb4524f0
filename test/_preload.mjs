// Loads the module parser (@endo/module-source, and Babel under it) before
// lockdown in ava's test processes (package.json "ava" nodeArguments, ahead of
// tsx): Babel evaluated after lockdown under tsx's loader comes out broken,
// and src/closures/modules.ts loads it lazily, on first use. Vat workers
// inherit this preload and never parse modules, so they skip it.
import { isMainThread } from 'node:worker_threads';

if (isMainThread) await import('@endo/module-source');
