/// <reference types="ses" />
/**
 * Runs grid modules: each module record's functor is evaluated once in a
 * confined Compartment, then called afresh for every closure call, so every
 * call gets its own module instance (see modules.ts for why).
 *
 * The Compartment is shared by all modules and gets no endowments; its global
 * object is hardened, so there is no global slot through which two calls could
 * talk. `Date.now()` and `Math.random()` throw in it (SES), so there is no
 * clock or entropy either. This file does not load the parser: vats run
 * module records the kernel analyzed.
 */
import { quote, type ModuleId } from '../interface/ids.js';
import { GridError } from '../interface/errors.js';

/** The one bare specifier grid modules may import: the closure-side API. */
export const CLOSURE_API_SPECIFIER = 'promisegrid';

export class PublishError extends GridError {
  constructor(code: string, message: string) {
    super(code, `publish: ${message}`);
  }
}

/**
 * A module as the runner needs it, produced by `analyzeModule` and plain data,
 * so a vat can run modules without loading the parser.
 */
export interface ModuleRecord {
  /** The functor program `@endo/module-source` rewrote the module into. */
  readonly program: string;
  readonly exports: readonly string[];
  /** Module ids this module imports or re-exports (not the closure API). */
  readonly dependencies: readonly ModuleId[];
  readonly fixedExports: ReadonlyArray<readonly [exportName: string, localName: string]>;
  readonly reexportAll: readonly ModuleId[];
  readonly reexportNamed: ReadonlyArray<readonly [from: ModuleId, importName: string, exportName: string]>;
}


type Functor = (bindings: {
  imports: (plan: ImportPlan) => void;
  liveVar: object;
  onceVar: object;
  import: undefined;
  importMeta: object;
}) => void;
type ImportPlan = Array<[string, Array<[string, Array<(value: unknown) => void>]>]>;

export interface CompiledModule extends ModuleRecord {
  readonly id: ModuleId;
  /** Every module this one needs, in instantiation order (post-order, deduplicated), self excluded. */
  readonly dependencies: readonly ModuleId[];
  /** The record as analyzed, with only its direct dependencies (what a vat is sent). */
  readonly record: ModuleRecord;
  readonly functor: Functor;
}

/**
 * Compiles analyzed modules into functors inside one confined Compartment and
 * instantiates them per call.
 */
export class ModuleRunner {
  readonly #compartment: Compartment;
  readonly #compiled = new Map<ModuleId, CompiledModule>();
  readonly #closureApi: object;

  constructor(closureApi: object) {
    this.#compartment = new Compartment({ __options__: true, globals: {} });
    harden(this.#compartment.globalThis);
    this.#closureApi = harden(closureApi);
  }

  get(id: ModuleId): CompiledModule | undefined {
    return this.#compiled.get(id);
  }

  /**
   * Compile a module whose dependencies are already compiled. Throws
   * PublishError when SES refuses the source (e.g. an HTML comment).
   */
  compile(id: ModuleId, record: ModuleRecord): CompiledModule {
    const existing = this.#compiled.get(id);
    if (existing) return existing;
    let functor: Functor;
    try {
      functor = this.#compartment.evaluate(record.program) as Functor;
    } catch (error) {
      const message = String((error as Error)?.message ?? error).split('\n')[0]!;
      // Each call instantiates its module synchronously, so a module body cannot await.
      if (/await is only valid/.test(message)) throw new PublishError('ERR_TOP_LEVEL_AWAIT', 'top-level await is not supported in grid modules');
      throw new PublishError('ERR_REFUSED_SOURCE', message);
    }
    const order: ModuleId[] = [];
    const seen = new Set<ModuleId>();
    for (const dep of record.dependencies) {
      const compiledDep = this.#compiled.get(dep);
      if (!compiledDep) throw new PublishError('ERR_MISSING_IMPORT', `imports unknown module ${quote(dep)}; publish it first`);
      for (const id2 of [...compiledDep.dependencies, dep]) {
        if (!seen.has(id2)) {
          seen.add(id2);
          order.push(id2);
        }
      }
    }
    const compiled: CompiledModule = harden({ ...record, id, dependencies: order, record, functor });
    this.#compiled.set(id, compiled);
    return compiled;
  }

  /**
   * A fresh instance of the module and its dependencies: returns its frozen
   * namespace. Synchronous; everything it needs is already compiled.
   */
  instantiate(id: ModuleId): Record<string, unknown> {
    const root = this.#compiled.get(id);
    if (!root) throw new Error(`module ${quote(id)} is not loaded`);
    const instances = new Map<string, Record<string, unknown>>();
    instances.set(CLOSURE_API_SPECIFIER, this.#closureApi as Record<string, unknown>);
    for (const dep of root.dependencies) instances.set(dep, this.#instantiateOne(this.#compiled.get(dep)!, instances));
    return this.#instantiateOne(root, instances);
  }

  #instantiateOne(module: CompiledModule, instances: Map<string, Record<string, unknown>>) {
    const namespace: Record<string, unknown> = Object.create(null);
    const onceVar: Record<string, (value: unknown) => void> = Object.create(null);
    for (const [exportName, localName] of module.fixedExports) {
      onceVar[localName] = (value) => {
        namespace[exportName] = value;
      };
    }
    const imports = (plan: ImportPlan) => {
      for (const [specifier, bindings] of plan) {
        const source = instances.get(specifier);
        if (!source) throw new Error(`module ${quote(specifier)} is not loaded`);
        for (const [importName, updaters] of bindings) {
          const value = importName === '*' ? source : source[importName];
          for (const update of updaters) update(value);
        }
      }
    };
    module.functor({ imports, liveVar: {}, onceVar, import: undefined, importMeta: {} });
    for (const from of module.reexportAll) {
      for (const [name, value] of Object.entries(instances.get(from)!)) {
        if (name !== 'default' && !(name in namespace)) namespace[name] = value;
      }
    }
    for (const [from, importName, exportName] of module.reexportNamed) {
      namespace[exportName] = instances.get(from)![importName];
    }
    return Object.freeze(namespace);
  }
}
