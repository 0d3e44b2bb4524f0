/**
 * `grid run`: a WASI preview1 command module with its arguments and the
 * terminal's stdin/stdout/stderr — and nothing else. No directories are
 * preopened, the environment is empty, there are no sockets, and the clock
 * and randomness calls answer ENOTCAPABLE unless the run grants them. The
 * module's memory is capped like any vat's. Its exit code is returned.
 */
import { quote } from '../interface/ids.js';
import { capMemory, shapeOf, WasmError } from './binary.js';

const WASI_MODULE = 'wasi_snapshot_preview1';
const ERRNO_NOTCAPABLE = 76;

export interface WasiRunOptions {
  readonly args: readonly string[];
  /** Let the program read the real clock. */
  readonly clock?: boolean;
  /** Let the program read host randomness. */
  readonly random?: boolean;
  readonly maxPages: number;
  readonly stdin?: number;
  readonly stdout?: number;
  readonly stderr?: number;
}

export const runWasiCommand = async (bytes: Uint8Array, options: WasiRunOptions): Promise<number> => {
  const shape = shapeOf(bytes);
  for (const imported of shape.imports) {
    if (imported.module !== WASI_MODULE) {
      throw new WasmError('ERR_FORBIDDEN_IMPORT', `forbidden import ${quote(`${imported.module}.${imported.name}`)}: a command may import only ${WASI_MODULE}`);
    }
  }
  if (!shape.functions.has('_start')) throw new WasmError('ERR_NOT_A_COMMAND', 'not a WASI command: it exports no _start');
  // Loaded on use: node:wasi warns that it is experimental as soon as it loads.
  const { WASI } = await import('node:wasi');
  const module = await WebAssembly.compile(capMemory(bytes, options.maxPages) as Uint8Array<ArrayBuffer>);
  const wasi = new WASI({
    version: 'preview1',
    args: ['grid-run', ...options.args],
    env: {},
    preopens: {},
    returnOnExit: true,
    stdin: options.stdin ?? 0,
    stdout: options.stdout ?? 1,
    stderr: options.stderr ?? 2,
  });
  const imports = wasi.getImportObject() as Record<string, Record<string, unknown>>;
  const granted = { ...imports[WASI_MODULE] };
  const refuse = () => ERRNO_NOTCAPABLE;
  if (!options.clock) Object.assign(granted, { clock_time_get: refuse, clock_res_get: refuse, poll_oneoff: refuse });
  if (!options.random) granted.random_get = refuse;
  for (const name of ['sock_accept', 'sock_recv', 'sock_send', 'sock_shutdown']) granted[name] = refuse;
  const instance = await WebAssembly.instantiate(module, { [WASI_MODULE]: granted } as WebAssembly.Imports);
  return wasi.start(instance);
};
