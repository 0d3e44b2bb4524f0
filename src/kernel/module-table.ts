/**
 * The modules a kernel can run: JavaScript compiled the way vats will run it,
 * WebAssembly checked and with its memory capped. A module is stored only
 * once it passed those checks, whether it was published here or came from a
 * peer (a replica, a delegation chain). Policies shipped with the node are
 * compiled from the node's own copy. Modules live in the block store, not
 * the journal: this part derives nothing from journal entries.
 */
import { CID } from 'multiformats/cid';
import { asModuleId, RAW_CODEC, type ModuleId } from '../interface/ids.js';
import { blockCid } from '../store/hashing.js';
import type { BlockStore } from '../store/types.js';
import { analyzeModule, asModuleRecord, classifyModule, moduleKindOf, type ModuleAnalyses } from '../closures/modules.js';
import type { ModuleRecord } from '../closures/runner.js';
import { ModuleRunner } from '../closures/runner.js';
import { CLOSURE_API } from '../closures/values.js';
import type { WasmRecord } from '../vat/protocol.js';
import { capMemory, shapeOf } from '../vat-wasm/binary.js';
import { assertGrantedImports } from '../vat-wasm/vat.js';
import { KernelError } from './types.js';

export type ModuleTable = ReturnType<typeof makeModuleTable>;

export const makeModuleTable = ({
  store,
  wasmMaxPages,
  shipped,
  analyses,
}: {
  store: BlockStore;
  wasmMaxPages: number;
  shipped: Readonly<Record<string, string>>;
  analyses?: ModuleAnalyses | undefined;
}) => {
  /** Compiles JS modules at publish time, to refuse what vats would refuse, and runs shipped policies. */
  const runner = new ModuleRunner(CLOSURE_API);
  const wasm = new Map<ModuleId, WasmRecord>();
  /** Shipped policies: module id → source bytes. They run in the kernel's thread, with no vat hop. */
  const shippedPolicies = new Map<ModuleId, Uint8Array>();
  const policyNames = new Map<string, ModuleId>();
  for (const [name, source] of Object.entries(shipped)) {
    const bytes = new TextEncoder().encode(source);
    const id = asModuleId(blockCid(bytes, RAW_CODEC).toString());
    shippedPolicies.set(id, bytes);
    policyNames.set(name, id);
  }

  const isLoaded = (id: ModuleId): boolean => runner.get(id) !== undefined || wasm.has(id);

  // A kept analysis is a cache: failing to read or write one costs a parse, nothing else.
  const keptAnalysis = async (id: ModuleId): Promise<ModuleRecord | undefined> => asModuleRecord(await analyses?.get(id).catch(() => undefined));
  const analyzeAndKeep = async (id: ModuleId, text: string): Promise<ModuleRecord> => {
    const analyzed = await analyzeModule(text);
    await analyses?.put(id, analyzed).catch(() => {});
    return analyzed;
  };

  /** Analyze and compile a module the way vats will run it; throws what would stop it. */
  const prepare = async (id: ModuleId, bytes: Uint8Array, text?: string): Promise<void> => {
    if (moduleKindOf(bytes) === 'wasm') {
      const shape = shapeOf(bytes);
      assertGrantedImports(shape);
      const capped = capMemory(bytes, wasmMaxPages);
      new WebAssembly.Module(capped as Uint8Array<ArrayBuffer>);
      wasm.set(id, { bytes: capped, shape });
      return;
    }
    const analyzed = (await keptAnalysis(id)) ?? (await analyzeAndKeep(id, text ?? new TextDecoder().decode(bytes)));
    for (const dep of analyzed.dependencies) await load(dep);
    runner.compile(id, analyzed);
  };

  const load = async (id: ModuleId): Promise<void> => {
    if (isLoaded(id)) return;
    const bytes = await store.get(CID.parse(id)).catch((error: Error & { code?: string }) => {
      throw new KernelError(error.code === 'ERR_NOT_FOUND' ? 'ERR_UNKNOWN_MODULE' : 'ERR_STORE', error.code === 'ERR_NOT_FOUND' ? `unknown module ${id}` : error.message);
    });
    await prepare(id, bytes);
  };

  return harden({
    runner,
    isLoaded,
    load,
    /** The policies shipped with this node: name → module id. */
    policyNames: policyNames as ReadonlyMap<string, ModuleId>,
    isShipped: (id: ModuleId) => shippedPolicies.has(id),
    /** What a vat runs for module `id` (loaded first). */
    async record(id: ModuleId) {
      await load(id);
      const record = wasm.get(id);
      return record ? { wasm: record } : { js: runner.get(id)!.record };
    },
    wasm: (id: ModuleId) => wasm.get(id),
    /** The names a loaded module exports. */
    exportsOf: (id: ModuleId): readonly string[] => {
      const record = wasm.get(id);
      return record ? [...record.shape.functions.keys()] : runner.get(id)!.exports;
    },

    /** Store a JS or WebAssembly module; returns its CID. Refuses forbidden imports. */
    async publish(payload: string | Uint8Array): Promise<ModuleId> {
      const { bytes, text } = classifyModule(payload);
      // Check and compile before storing, so a module no vat would run is never written.
      await prepare(asModuleId(blockCid(bytes, RAW_CODEC).toString()), bytes, text);
      return asModuleId((await store.put(bytes, { codec: RAW_CODEC })).toString());
    },

    /** Modules that came from a peer (a replica, a chain): checked and compiled as if published here, then stored. */
    async take(modules: readonly Uint8Array[]) {
      for (const bytes of modules) {
        const id = asModuleId(blockCid(bytes, RAW_CODEC).toString());
        if (isLoaded(id)) continue;
        await prepare(id, bytes);
        await store.put(bytes, { codec: RAW_CODEC });
      }
    },

    /** The blocks of modules `ids` and everything they import, dependencies first. */
    async blocks(ids: readonly ModuleId[]): Promise<Uint8Array[]> {
      const modules = new Map<ModuleId, Uint8Array>();
      const collect = async (id: ModuleId) => {
        if (modules.has(id)) return;
        await load(id);
        for (const dependency of wasm.has(id) ? [] : runner.get(id)!.record.dependencies) await collect(dependency);
        modules.set(id, await store.get(CID.parse(id)));
      };
      for (const id of ids) await collect(id);
      return [...modules.values()];
    },

    /** Compile a policy module: a shipped one from the node's own copy, any other from the store. */
    async loadPolicy(id: ModuleId) {
      if (isLoaded(id)) return;
      const source = shippedPolicies.get(id);
      if (source) await prepare(id, source);
      else await load(id);
    },
  });
};
