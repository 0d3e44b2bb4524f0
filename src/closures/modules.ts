/// <reference types="ses" />
/**
 * Grid modules: what may be published, and how a published module is run.
 *
 * A JS grid module is parsed once with `@endo/module-source`, which rewrites
 * it into a *functor*: a function whose body is the module body. We evaluate
 * that functor once per module in a confined Compartment and then call it
 * afresh for every closure call. Each call therefore gets its own module
 * instance — its own top-level `let`s, Maps and counters — and nothing a call
 * does to module state survives it or reaches any other call. That is what
 * makes "pure by confinement" true: a call's outcome depends only on the
 * module's code, the closure's env and the arguments, so it can be cached.
 * Instantiating a parsed module this way costs about a microsecond, against
 * ~20 µs for a fresh Compartment.
 *
 * The Compartment is shared by all modules and gets no endowments; its global
 * object is hardened, so there is no global slot through which two calls could
 * talk. `Date.now()` and `Math.random()` throw in it (SES), so there is no
 * clock or entropy either.
 */
import type { ModuleSource as ModuleSourceClass } from '@endo/module-source';
import { asModuleId, quote, type ModuleId } from '../interface/ids.js';
import { CLOSURE_API_SPECIFIER, PublishError, type ModuleRecord } from './runner.js';

const isWasm = (bytes: Uint8Array) =>
  bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;

export type ModuleKind = 'js' | 'wasm';

/** Decide what a published payload is: WebAssembly bytes or JS source text. */
/** Largest module accepted, checked before parsing or compiling it. */
export const MAX_MODULE_BYTES = 8 * 1024 * 1024;

export const classifyModule = (payload: string | Uint8Array): { kind: ModuleKind; bytes: Uint8Array; text?: string } => {
  if (typeof payload === 'string') payload = new TextEncoder().encode(payload);
  if (!(payload instanceof Uint8Array)) {
    throw new TypeError(`publish: a module is source text or bytes (got ${quote(payload)})`);
  }
  if (payload.length > MAX_MODULE_BYTES) {
    throw new PublishError('ERR_TOO_LARGE', `module is ${payload.length} bytes (limit ${MAX_MODULE_BYTES})`);
  }
  if (isWasm(payload)) {
    if (!WebAssembly.validate(payload as Uint8Array<ArrayBuffer>)) throw new PublishError('ERR_BAD_WASM', 'invalid WebAssembly module');
    return { kind: 'wasm', bytes: payload };
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(payload);
  } catch {
    throw new PublishError('ERR_NOT_UTF8', 'module is neither WebAssembly nor UTF-8 JavaScript source');
  }
  return { kind: 'js', bytes: payload, text };
};

export const moduleKindOf = (bytes: Uint8Array): ModuleKind => (isWasm(bytes) ? 'wasm' : 'js');

let parser: Promise<typeof ModuleSourceClass> | undefined;

/**
 * `@endo/module-source` and the Babel under it take ~0.5 s to load, and only
 * analyzing a JS module needs them: most `grid` commands never do, so they are
 * loaded on first use. Under `tsx`, Babel loaded after lockdown comes out
 * broken (tsx's CommonJS interop loses `@babel/types`' re-exported names);
 * the check on a one-line module turns that into one clear error instead of a
 * "does not parse" for every module. The tests preload it (ava's
 * `nodeArguments`, test/_preload.mjs); compiled code under plain node is fine.
 * Callers with a deadline to keep load it beforehand (the CLI before a
 * publish, issue or call on a home), so it is not taken out of a call's time.
 */
export const loadModuleParser = (): Promise<typeof ModuleSourceClass> =>
  (parser ??= import('@endo/module-source').then(({ ModuleSource }) => {
    try {
      new ModuleSource('export const ok = 1;');
    } catch (error) {
      throw new Error(`the module parser (@endo/module-source) did not load correctly: ${String((error as Error)?.message ?? error)}; under tsx, import it before lockdown (node --import=@endo/module-source --import=tsx)`);
    }
    return ModuleSource;
  }));

/**
 * Check a JS module against the grid's rules. Everything refused here would
 * otherwise fail later, at call time, far from the author: refuse early and
 * quote the offending specifier.
 */
export const analyzeModule = async (text: string): Promise<ModuleRecord> => {
  const ModuleSource = await loadModuleParser();
  let source: ModuleSourceClass;
  try {
    source = new ModuleSource(text);
  } catch (error) {
    const detail = String((error as Error)?.message ?? error).replace(/\s+/g, ' ');
    throw new PublishError('ERR_SYNTAX', `module does not parse: ${detail}`);
  }
  if (source.__needsImport__) {
    throw new PublishError('ERR_DYNAMIC_IMPORT', 'dynamic import() is not allowed in grid modules');
  }
  if (source.__needsImportMeta__) {
    throw new PublishError('ERR_IMPORT_META', 'import.meta is not available to grid modules');
  }
  const live = Object.keys(source.__liveExportMap__);
  if (live.length > 0) {
    throw new PublishError(
      'ERR_LIVE_EXPORT',
      `exports must be constant bindings; ${quote(live[0])} is reassigned after export`,
    );
  }
  const dependencies: ModuleId[] = [];
  for (const specifier of source.imports) {
    if (specifier === CLOSURE_API_SPECIFIER) continue;
    try {
      dependencies.push(asModuleId(specifier));
    } catch {
      throw new PublishError(
        'ERR_FORBIDDEN_IMPORT',
        `forbidden import ${quote(specifier)}: grid modules may import only ${quote(CLOSURE_API_SPECIFIER)} and modules by CID`,
      );
    }
  }
  if (source.reexports.includes(CLOSURE_API_SPECIFIER)) {
    throw new PublishError('ERR_FORBIDDEN_IMPORT', `re-exporting ${quote(CLOSURE_API_SPECIFIER)} is not allowed`);
  }
  const reexportNamed: Array<[ModuleId, string, string]> = [];
  for (const [from, pairs] of Object.entries(source.__reexportMap__)) {
    for (const [importName, exportName] of pairs) reexportNamed.push([from as ModuleId, importName, exportName]);
  }
  return {
    program: source.__syncModuleProgram__,
    exports: source.exports,
    dependencies,
    fixedExports: Object.entries(source.__fixedExportMap__).map(([exportName, [localName]]) => [exportName, localName as string] as const),
    reexportAll: source.reexports as ModuleId[],
    reexportNamed,
  };
};

/**
 * Analyses kept between processes, so a module runs again without loading
 * the parser (~0.5 s of CPU a process). A miss, or anything unreadable, is
 * `undefined`: the module is analyzed again. Keyed by module id, the hash of
 * the source the record was made from.
 */
export interface ModuleAnalyses {
  get(id: ModuleId): Promise<unknown>;
  put(id: ModuleId, record: ModuleRecord): Promise<void>;
}

/** The shape of a kept analysis; a new one (a changed ModuleRecord) must not read an old one. */
export const ANALYSIS_FORMAT = 1;

const isStringList = (x: unknown): x is string[] => Array.isArray(x) && x.every((item) => typeof item === 'string');
const isTupleList = (x: unknown, width: number): x is string[][] => Array.isArray(x) && x.every((item) => isStringList(item) && item.length === width);

/** A kept analysis read back, if it has a module record's shape (else undefined: analyze again). */
export const asModuleRecord = (value: unknown): ModuleRecord | undefined => {
  if (typeof value !== 'object' || value === null) return undefined;
  const { program, exports, dependencies, fixedExports, reexportAll, reexportNamed } = value as Record<string, unknown>;
  if (typeof program !== 'string' || !isStringList(exports) || !isStringList(dependencies) || !isStringList(reexportAll)) return undefined;
  if (!isTupleList(fixedExports, 2) || !isTupleList(reexportNamed, 3)) return undefined;
  try {
    return {
      program,
      exports,
      dependencies: dependencies.map(asModuleId),
      fixedExports: fixedExports as Array<[string, string]>,
      reexportAll: reexportAll.map(asModuleId),
      reexportNamed: reexportNamed.map(([from, importName, exportName]) => [asModuleId(from), importName!, exportName!] as const),
    };
  } catch {
    return undefined;
  }
};

