/**
 * The perimeter. Importing this module locks down the realm (SES `lockdown`)
 * and installs `HandledPromise` for eventual send. Every entry point imports it
 * first: ESM evaluates imports in order, so nothing of ours runs in an
 * unhardened realm. It is the only module in the tree with a side effect on
 * import (besides ws-mask.ts, which it imports so that ws, loaded later,
 * masks frames without the store loop lockdown makes slow, and
 * array-buffer-detached.ts, which it imports before lockdown so that
 * WebAssembly glue, Automerge's, sees its memory grow on Node 20, and
 * ./node20.ts, what libp2p needs of Node 22).
 */
import './array-buffer-detached.js';
import './node20.js';
import '@endo/init';
import './ws-mask.js';
