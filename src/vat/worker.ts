/**
 * A vat: a worker thread, locked down with SES, that runs closures for the
 * kernel. Hostile code here can loop, recurse or allocate as it likes; the
 * kernel's thread stays free, and the kernel stops this thread at the call's
 * time limit or when it runs out of its memory budget. Every call still gets
 * a fresh module instance (see closures/modules.ts).
 */
import '../perimeter/lockdown.js';
import { kernelPort as port, receiveMessageOnPort, vatOptions as options } from './vat-env.js';
import { ChannelEnd } from './channel.js';
import { asModuleId, asToken, DAG_CBOR_CODEC, type Principal, type Token } from '../interface/ids.js';
import { blockCid } from '../store/hashing.js';
import { ModuleRunner } from '../closures/runner.js';
import { CLOSURE_API, copyValue, decodeValue, encodeValue, isLink, link, type GridValue, type Link } from '../closures/values.js';
import type { VatOutcome, FromVat, ToVat, WasmRecord } from './protocol.js';
import { runWasm, WasmRevoked } from '../vat-wasm/vat.js';
import { describeThrown } from '../interface/errors.js';
import { revoked, type RevokeCode } from '../interface/outcome.js';


/** Thrown by `ctx.revoke` to end the current call as revoked. */
class RevokeSignal {
  constructor(readonly reason: string) {}
}

const describe = (thrown: unknown) => (thrown instanceof RevokeSignal ? thrown.reason : describeThrown(thrown));

/**
 * Errors `ctx.call` rejected with: a closure that lets one escape passes on
 * the revocation of a call it made, which is counted where that call ran.
 * A WeakSet, not a class, so a closure cannot make one of its own.
 */
const passedOn = new WeakSet<object>();

/** Why a thrown value ended a call: the closure's refusal, a revocation passed on, or a crash. */
const codeOf = (thrown: unknown): RevokeCode =>
  thrown instanceof RevokeSignal ? 'refused' : typeof thrown === 'object' && thrown !== null && passedOn.has(thrown) ? 'passed-on' : 'crash';

const isThenable = (value: unknown): value is PromiseLike<unknown> => {
  try {
    return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';
  } catch {
    return false;
  }
};

interface ClosureInfo {
  readonly token: Token;
  readonly code: ReturnType<typeof asModuleId>;
  readonly export: string;
  readonly env: GridValue;
}

interface RunState {
  readonly run: number;
  readonly caller: Principal;
  readonly closure: ClosureInfo;
  pure: boolean;
  done: boolean;
  fanOut: number;
  nextSub: number;
  readonly waiting: Map<number, (answer: VatOutcome) => void>;
}

/** The channel to the kernel (the `shared-memory` transport): a message goes into the ring at once, and the kernel is woken if it sleeps. */
const channel = options.channel && new ChannelEnd<FromVat, ToVat>(options.channel.memory, 'vat', options.channel.port, () => receiveMessageOnPort(options.channel!.port));
// By postMessage, outgoing messages are batched per turn.
let outbox: FromVat[] = [];
const post = () => {
  if (outbox.length === 0) return;
  const batch = outbox;
  outbox = [];
  port.postMessage(batch);
};
const send = (message: FromVat) => {
  if (!channel) {
    outbox.push(message);
    if (outbox.length === 1) queueMicrotask(post);
    return;
  }
  channel.send(message);
  channel.out.wake();
};
/** Wait until every message sent is in the ring (the kernel reads it soon: it polls, or it is woken), or posted. */
const flush = () => {
  post();
  while (channel && channel.backlogged > 0) {
    if (!channel.flush()) Atomics.wait(channel.out.header, 1, Atomics.load(channel.out.header, 1), 1);
    channel.out.wake();
  }
};

/**
 * A WebAssembly closure cannot await, so its grid.call blocks this thread
 * until the kernel answers on the sync channel. The kernel never sends
 * another call to a blocked vat, and stops it at the call's deadline like
 * any other.
 */
const callSync = (state: RunState, token: string, args: Uint8Array): VatOutcome => {
  state.pure = false;
  const sync = options.sync;
  if (!sync) return revoked('internal', 'a WebAssembly grid.call blocks its vat until the kernel answers, which a vat here cannot do');
  state.fanOut += 1;
  if (state.fanOut > options.maxFanOut) return revoked('call-limit', `fan-out limit: at most ${options.maxFanOut} grid.call per call`);
  const flag = new Int32Array(sync.flag);
  Atomics.store(flag, 0, 0);
  send({ t: 'call', run: state.run, sub: state.nextSub++, token, args, sync: true });
  flush();
  Atomics.wait(flag, 0, 0);
  const reply = receiveMessageOnPort(sync.port);
  return reply ? (reply.message as VatOutcome) : revoked('internal', 'vat: no answer on the sync channel');
};

/**
 * `ctx`, the one object a closure gets besides its arguments. Its methods
 * live on a hardened prototype and its state in a private field, so a closure
 * can neither reach another call's state nor keep using its own after the
 * call has ended.
 */
class CallContext {
  readonly #state: RunState;
  readonly env: GridValue;

  constructor(state: RunState) {
    this.#state = state;
    this.env = state.closure.env;
  }

  /** Who is calling. Reading it makes the call depend on the caller, so not cacheable. */
  get caller(): Principal {
    this.#state.pure = false;
    return this.#state.caller;
  }

  call(token: unknown, ...args: unknown[]): Promise<GridValue> {
    const state = this.#state;
    state.pure = false;
    if (state.done) return Promise.reject(new Error('this call has ended; its ctx can no longer call'));
    state.fanOut += 1;
    if (state.fanOut > options.maxFanOut) {
      return Promise.reject(new RangeError(`fan-out limit: at most ${options.maxFanOut} ctx.call per call`));
    }
    let argsBytes: Uint8Array;
    try {
      argsBytes = encodeValue(args);
    } catch (error) {
      return Promise.reject(new TypeError(`bad arguments: ${(error as Error).message}`));
    }
    const target = isLink(token) ? token['/'] : token;
    if (typeof target !== 'string') return Promise.reject(new TypeError('ctx.call needs a token'));
    return ask(state, { t: 'call', run: state.run, sub: state.nextSub, token: target, args: argsBytes }).then((answer) => {
      if (answer.status === 'fulfilled') return copyValue(answer.value);
      const error = new Error(`revoked: ${answer.status === 'revoked' ? answer.reason : 'unresolved further promise'}`);
      passedOn.add(error);
      throw error;
    });
  }

  revoke(reason: unknown = 'revoked by closure'): never {
    throw new RevokeSignal(typeof reason === 'string' ? reason : 'revoked by closure');
  }

  async issue(spec: { export: string; env?: unknown }): Promise<Link> {
    const state = this.#state;
    state.pure = false;
    if (state.done) throw new Error('this call has ended; its ctx can no longer issue');
    const env = encodeValue(spec?.env ?? {});
    const answer = await ask(state, { t: 'issue', run: state.run, sub: state.nextSub, export: String(spec?.export), env });
    if (answer.status !== 'promised') throw new Error(answer.status === 'revoked' ? answer.reason : 'issue failed');
    return link(answer.token);
  }
}
harden(CallContext);

const ask = (state: RunState, message: FromVat & { sub: number }) =>
  new Promise<VatOutcome>((resolve) => {
    state.nextSub += 1;
    state.waiting.set(message.sub, resolve);
    send(message);
  });

const runner = new ModuleRunner(CLOSURE_API);
const closures = new Map<Token, ClosureInfo>();
const wasmModules = new Map<string, { module: WebAssembly.Module; record: WasmRecord }>();
const runs = new Map<number, RunState>();

const finish = (state: RunState, answer: VatOutcome) => {
  state.done = true;
  runs.delete(state.run);
  send({ t: 'done', run: state.run, answer, pure: state.pure && answer.status === 'fulfilled' });
};

const execute = async (message: Extract<ToVat, { t: 'run' }>) => {
  const closure = closures.get(message.token);
  const state: RunState = {
    run: message.run,
    caller: message.caller,
    closure: closure!,
    pure: true,
    done: false,
    fanOut: 0,
    nextSub: 0,
    waiting: new Map(),
  };
  if (!closure) return finish(state, revoked('internal', 'vat: closure not loaded'));
  runs.set(message.run, state);
  const wasm = wasmModules.get(closure.code);
  if (wasm) return message.fold ? finish(state, revoked('invalid', 'a fold runs JavaScript exports only')) : executeWasm(state, wasm, message.args);
  try {
    const entry = runner.instantiate(closure.code)[closure.export];
    if (typeof entry !== 'function') return finish(state, revoked('crash', `export "${closure.export}" is not a function`));
    if (message.fold) return await fold(state, entry as (...args: unknown[]) => unknown, message.args);
    let result = entry(Object.freeze(new CallContext(state)), ...(copyValue(message.args) as GridValue[]));
    if (isThenable(result)) result = await result;
    if (isLink(result)) return finish(state, { status: 'promised', token: asToken(result['/']) });
    let value: Uint8Array;
    try {
      value = encodeValue(result === undefined ? null : result);
    } catch (error) {
      return finish(state, revoked('crash', `bad result: ${describeThrown(error)}`));
    }
    return finish(state, { status: 'fulfilled', value });
  } catch (error) {
    return finish(state, revoked(codeOf(error), describe(error)));
  }
};

/**
 * Run a reducer over changes in turn, each on the state the one before gave
 * (decoded afresh, as a call would get it): the CID of each state, and where
 * the first refusal came, if one did.
 */
const fold = async (state: RunState, entry: (...args: unknown[]) => unknown, args: Uint8Array) => {
  const [initial, changes] = copyValue(args) as [GridValue, GridValue[]];
  if (!Array.isArray(changes)) return finish(state, revoked('invalid', 'a fold takes [state, changes]'));
  let current = initial;
  const cids: string[] = [];
  for (const [index, change] of changes.entries()) {
    let result: unknown;
    try {
      result = entry(Object.freeze(new CallContext(state)), current, change);
      if (isThenable(result)) result = await result;
      if (isLink(result)) throw new TypeError('a reducer answers with a value, not a further promise');
      const bytes = encodeValue(result === undefined ? null : result);
      cids.push(blockCid(bytes, DAG_CBOR_CODEC).toString());
      current = copyValue(bytes);
    } catch (error) {
      return finish(state, { status: 'fulfilled', value: encodeValue({ cids, refusal: { index, code: codeOf(error), reason: describe(error) } }) });
    }
  }
  return finish(state, { status: 'fulfilled', value: encodeValue({ cids }) });
};

const executeWasm = (state: RunState, wasm: { module: WebAssembly.Module; record: WasmRecord }, args: Uint8Array) => {
  try {
    const { value, usedGrid } = runWasm(wasm.module, wasm.record.shape, state.closure.export, state.closure.env, copyValue(args) as GridValue[], {
      call: (token, callArgs) => callSync(state, token, callArgs),
      log: (line) => send({ t: 'log', run: state.run, line }),
    });
    if (usedGrid) state.pure = false;
    let bytes: Uint8Array;
    try {
      bytes = encodeValue(value);
    } catch (error) {
      return finish(state, revoked('crash', `bad result: ${describeThrown(error)}`));
    }
    return finish(state, { status: 'fulfilled', value: bytes });
  } catch (error) {
    const reason = error instanceof WasmRevoked ? error.message : `trap: ${describeThrown(error)}`;
    // A refusal: the module's own, or arguments that do not fit its export; a trap or a bad answer is a crash.
    return finish(state, revoked(error instanceof WasmRevoked && error.refusal ? 'refused' : 'crash', reason));
  }
};

const handle = (message: ToVat) => {
  switch (message.t) {
    case 'module':
      runner.compile(message.id, message.record);
      break;
    case 'wasm':
      wasmModules.set(message.id, { module: new WebAssembly.Module(message.record.bytes as Uint8Array<ArrayBuffer>), record: message.record });
      break;
    case 'closure':
      closures.set(message.token, { token: message.token, code: message.code, export: message.export, env: decodeValue(message.env) });
      break;
    case 'run':
      void execute(message);
      break;
    case 'reply': {
      const state = runs.get(message.run);
      const resolve = state?.waiting.get(message.sub);
      state?.waiting.delete(message.sub);
      resolve?.(message.answer);
      break;
    }
  }
};

/**
 * Read the ring and handle what came; then let the turn end (the calls'
 * promises settle, their answers go out) and come back. With nothing to
 * read, poll a little longer — the kernel's next call often follows its last
 * answer closely — then sleep until the kernel writes. A closure has no
 * timers or I/O: while this thread sleeps it has nothing to do, and the
 * kernel still stops it at will (terminate interrupts Atomics.wait).
 */
const SPIN_NS = options.spinUs * 1000;
/**
 * A gap this long between two looks at the ring while polling means this
 * thread lost its core: the machine has more to run than cores, and polling
 * takes time from the thread it waits for. Then it sleeps at once, and does
 * not poll again for a while.
 */
const PREEMPTED_NS = 200_000;
const NO_POLLING_NS = 20_000_000;
let lastActive = 0;
let pollAgain = 0;
const now = () => performance.now() * 1e6;
const pump = () => {
  const rings = channel!;
  for (;;) {
    let handled = 0;
    for (let message = rings.next(); message; message = rings.next()) {
      handle(message);
      handled += 1;
    }
    if (rings.backlogged > 0 && rings.flush()) rings.out.wake();
    if (handled > 0) {
      lastActive = now();
      return void setImmediate(pump);
    }
    const ring = rings.in;
    let looked = now();
    if (SPIN_NS > 0 && looked >= pollAgain) {
      for (let spins = 1; !ring.waiting; spins += 1) {
        if ((spins & 127) !== 0) continue;
        const at = now();
        if (at - looked > PREEMPTED_NS) pollAgain = at + NO_POLLING_NS;
        if (at - looked > PREEMPTED_NS || at - lastActive >= SPIN_NS) break;
        looked = at;
      }
    }
    if (ring.waiting) continue;
    ring.sleeping(true);
    const written = ring.written;
    if (!ring.waiting) Atomics.wait(ring.header, 0, written, rings.backlogged > 0 ? 1 : undefined);
    ring.sleeping(false);
    lastActive = now();
  }
};

port.postMessage([{ t: 'ready', run: -1 }]);
if (channel) setImmediate(pump);
else {
  port.on('message', (batch: ToVat[]) => {
    for (const message of batch) handle(message);
  });
}
