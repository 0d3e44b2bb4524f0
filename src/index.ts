/**
 * `promisegrid`: the library API. Importing it locks down the realm first
 * (see perimeter/lockdown.ts): grid closures run in SES Compartments, which
 * need a hardened realm to be confined at all.
 */
import './perimeter/lockdown.js';

export { openKernel, type OpenKernelOptions } from './home/open.js';
export { collectGarbage, GcError, type GcOptions, type GcReport } from './home/gc.js';
export { Kernel, KernelError, DEFAULT_LIMITS, type Outcome, type KernelLimits, type KernelPowers, type CallOptions, type IssueSpec, type Network, type DelegateSpec, type PendingView, untilSettled } from './kernel/kernel.js';
export type { Answer, Replica, ChainBlocks } from './wire/shapes.js';
export { REVOKE_CODES, type RevokeCode } from './interface/outcome.js';
export { asToken, asModuleId, asPrincipal, asBlockId, isToken, type Token, type ModuleId, type Principal, type BlockId } from './interface/ids.js';
export { isLink, link, type GridValue, type Link } from './closures/values.js';
export { PublishError } from './closures/runner.js';
export type { Closure } from './closures/closure.js';
export type { Entry, EntryKind } from './journal/journal.js';
export { GraphIndex, renderTree, type CallView, type Reach, type Broken, type TreeNode } from './journal/queries.js';
export { renderDot, renderMermaid, renderText } from './journal/graph.js';
export { reputation, type Reputation } from './journal/reputation.js';
export { formatGridUrl, parseGridUrl, type GridUrl } from './net/grid-url.js';
