/**
 * Applications (DESIGN.md §5): one or more published modules, JS and
 * WebAssembly mixed, that together export `init`, `update` (the document's
 * reducer), `view` and optionally `merge`. Each of the four is taken from
 * the first module, in the order given, that exports it: a later module can
 * fill in what an earlier one lacks, never override it.
 *
 * An app *is* its document. The app's description — its modules, its view's
 * token, a title — rides in the env of the document's reducer closure,
 * which is replicable: every replica of the document (a tab node's
 * included) fetches that closure to replay versions, so it gets the
 * description with it, and nothing else need be stored, listed or synced.
 * The reducer ignores its env. A rules change that gives the document a
 * reducer without one makes it a plain document again.
 */
import { quote, type ModuleId, type Token } from '../interface/ids.js';
import { analyzeModule, moduleKindOf } from '../closures/modules.js';
import { shapeOf } from '../vat-wasm/binary.js';
import type { GridValue } from '../closures/values.js';

/** The exports an app's modules provide, in the order they are looked for. */
export const APP_EXPORTS = ['init', 'update', 'view', 'merge'] as const;
export type AppExport = (typeof APP_EXPORTS)[number];
const REQUIRED: readonly AppExport[] = ['init', 'update', 'view'];
/** Most modules one app is made of, and longest title. */
export const MAX_APP_MODULES = 16;
export const MAX_TITLE = 100;

export class AppError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** What the reducer's env says of its app. */
export interface AppDescription {
  readonly title: string;
  readonly modules: readonly ModuleId[];
  /** The token of the replicable closure over the view export: `view(ctx, state) → UI`. */
  readonly view: Token;
}

/** The function exports of one module: a JS module's as its source declares them, a WebAssembly module's from its export section. */
export const exportsOf = async (bytes: Uint8Array): Promise<readonly string[]> =>
  moduleKindOf(bytes) === 'wasm' ? [...shapeOf(bytes).functions.keys()] : (await analyzeModule(new TextDecoder().decode(bytes))).exports;

/**
 * Which module gives each export: the first that has it. `modules` are in
 * the order given, each with a label for errors (its file name) and its
 * exports. Throws AppError naming what no module exports.
 */
export const pickExports = <M extends { label: string; exports: readonly string[] }>(modules: readonly M[]): Partial<Record<AppExport, M>> => {
  if (modules.length === 0) throw new AppError('ERR_NO_MODULES', 'an app is made of at least one module');
  if (modules.length > MAX_APP_MODULES) throw new AppError('ERR_TOO_MANY', `an app is made of at most ${MAX_APP_MODULES} modules (got ${modules.length})`);
  const picked: Partial<Record<AppExport, M>> = {};
  for (const name of APP_EXPORTS) {
    const from = modules.find((module) => module.exports.includes(name));
    if (from) picked[name] = from;
  }
  const missing = REQUIRED.filter((name) => !picked[name]);
  if (missing.length > 0) {
    throw new AppError('ERR_NOT_AN_APP', `an app exports init, update and view (and may export merge); no module given exports ${missing.map((name) => quote(name)).join(' or ')} (${modules.map((m) => `${m.label}: ${m.exports.join(', ') || 'nothing'}`).join('; ')})`);
  }
  return picked;
};

/** The env a reducer closure carries to make its document an app. */
export const appEnv = (description: AppDescription): GridValue => ({ app: { title: description.title, modules: [...description.modules], view: description.view } });

/** The app a reducer closure's env describes, or undefined if it describes none (or not in this shape). */
export const appOfEnv = (env: unknown): AppDescription | undefined => {
  const app = (env as { app?: unknown } | null)?.app as Record<string, unknown> | undefined;
  if (app === null || typeof app !== 'object') return undefined;
  const { title, modules, view } = app;
  if (typeof title !== 'string' || title.length > MAX_TITLE || typeof view !== 'string') return undefined;
  if (!Array.isArray(modules) || modules.length > MAX_APP_MODULES || !modules.every((m) => typeof m === 'string')) return undefined;
  return { title, modules: modules as ModuleId[], view: view as Token };
};
