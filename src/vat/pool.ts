/**
 * The kernel's side of its vats: a small pool of worker threads that run
 * closures. A call is sent to the least busy vat together with whatever that
 * vat has not seen yet (module sources, the closure's env). A vat that passes
 * a call's deadline is terminated — a spinning closure cannot be interrupted
 * any other way — and so is one that exhausts its heap; the calls it held end
 * revoked with the reason, and the next call starts a fresh vat. Nothing a
 * vat does blocks the kernel's thread.
 */
import { BLOCKING_CALLS, MessageChannel, receiveMessageOnPort, startVatThread, type VatPort, type VatThread } from './thread.js';
import type { ModuleId, Principal, Token } from '../interface/ids.js';
import type { Closure } from '../closures/closure.js';
import type { ModuleRecord } from '../closures/runner.js';
import { encodeValue } from '../closures/values.js';
import { abortReason, aborted, CANCELLED, onAbort } from '../interface/cancel.js';
import { failed, revoked, type RevokeCode } from '../interface/outcome.js';
import type { VatOutcome, FromVat, ToVat, VatTransport, WasmRecord } from './protocol.js';
import { ChannelEnd, ChannelError, channelMemory } from './channel.js';

export interface VatLimits {
  /** Worker threads; each runs many calls. */
  readonly vats: number;
  /** Heap budget of one vat (V8 old generation), in MiB. */
  readonly vatMemoryMb: number;
  readonly maxFanOut: number;
  /**
   * How long, in microseconds, each side of a vat's channel keeps polling
   * after its last message before it sleeps (see VAT_SPIN_US); 0 never polls.
   */
  readonly vatSpinUs?: number;
  /** How messages travel between the kernel and its vats (VAT_TRANSPORT by default). */
  readonly vatTransport?: VatTransport;
}

/**
 * postMessage: on the 2-core development machine, shared by other work, the
 * rings measured no faster through the kernel (a warm executing call 10–50%
 * slower in A/B runs, calls in flight no better), though a bare ring round trip beats a
 * bare postMessage one; see the README's performance section.
 */
export const VAT_TRANSPORT: VatTransport = 'postMessage';

/**
 * Polling the rings rather than sleeping on them: a warm call's answer
 * comes back without waking a sleeping thread, which costs about as much as
 * a postMessage round trip. Only while calls are in flight (the kernel) or
 * just after the last message (a vat); then both sleep until woken.
 */
export const VAT_SPIN_US = 50;
/**
 * Two polls this far apart with nothing heard: the thread was kept from its
 * core (more threads ready than cores), and polling would take time from the
 * vat it waits for. Then both sides sleep at once for a while (NO_POLLING_MS).
 */
const POLL_PREEMPTED_MS = 0.2;
const NO_POLLING_MS = 20;

/** What a vat needs from the kernel while a call runs. */
export interface RunRequest {
  readonly closure: Closure;
  readonly args: Uint8Array;
  readonly caller: Principal;
  /**
   * How long the call may run, counted from when its vat has it: starting a
   * vat (hundreds of milliseconds) is the node's cost, not the closure's.
   */
  readonly timeLimitMs: number;
  /**
   * Made by a call already running in a vat (`ctx.call`). Its parent's time
   * limit is running, so it takes a vat that is ready over waiting for one to
   * start.
   */
  readonly nested?: boolean;
  /** Run the export over a list of changes (see ToVat `run`). */
  readonly fold?: boolean;
  /** Told when the call's time limit starts (its vat has it). */
  readonly started?: () => void;
  /** The caller's cancel: the call ends `cancelled by caller` and its vat is stopped (see #cancel). */
  readonly signal?: AbortSignal;
  /** `ctx.call` from inside the call. */
  readonly call: (token: string, args: Uint8Array) => Promise<VatOutcome>;
  /** `ctx.issue` from inside the call; answers `promised` with the new token. */
  readonly issue: (exportName: string, env: Uint8Array) => Promise<VatOutcome>;
  /** A line a WebAssembly closure logged. */
  readonly log: (line: string) => void;
}

export interface RunResult {
  readonly answer: VatOutcome;
  readonly pure: boolean;
}

export interface VatHost {
  /** A module's record (JS: its direct dependencies included), as the kernel analyzed it. */
  moduleRecord(id: ModuleId): Promise<{ js: ModuleRecord } | { wasm: WasmRecord }>;
  readonly setTimer: (ms: number, callback: () => void) => () => void;
}

interface PendingRun {
  readonly request: RunRequest;
  readonly resolve: (result: RunResult) => void;
  readonly cancelTimer: () => void;
  /** Whether the call has asked the kernel for anything (ctx.call, ctx.issue). */
  acted: boolean;
  /** Cancelled, but left running in its vat until it ends or hits its time limit (see #cancel). */
  detached?: boolean;
}

/** The kernel's end of a vat's shared-memory channel, and the port for what does not fit in it (the `shared-memory` transport only). */
interface KernelChannel {
  readonly end: ChannelEnd<ToVat, FromVat>;
  readonly port: VatPort;
}

class Vat {
  readonly worker: VatThread;
  /** Where answers to a blocked vat's synchronous calls go, and the flag that wakes it (where a vat can block: BLOCKING_CALLS). */
  readonly sync: { readonly port: VatPort; readonly flag: Int32Array } | undefined;
  readonly channel: KernelChannel | undefined;
  /** The kernel waits (Atomics.waitAsync) for the vat to write. */
  waiting = false;
  /** Blocked in a synchronous grid.call: it cannot take other calls now. */
  blocked = 0;
  readonly ready: Promise<void>;
  readonly stopped: Promise<void>;
  #markReady!: () => void;
  #markStopped!: () => void;
  readonly runs = new Map<number, PendingRun>();
  readonly modules = new Map<ModuleId, Promise<void>>();
  readonly closures = new Set<Token>();
  #wakeQueued = false;
  readonly #sent: () => void;
  /** Batches by postMessage instead (VatTransport). */
  readonly #post: boolean;
  #outbox: ToVat[] = [];
  dead = false;

  constructor(worker: VatThread, sync: { port: VatPort; flag: SharedArrayBuffer } | undefined, channel: { memory: SharedArrayBuffer; port: VatPort } | undefined, sent: () => void) {
    this.#post = channel === undefined;
    this.worker = worker;
    this.sync = sync && { port: sync.port, flag: new Int32Array(sync.flag) };
    this.channel = channel && { end: new ChannelEnd<ToVat, FromVat>(channel.memory, 'kernel', channel.port, () => receiveMessageOnPort(channel.port)), port: channel.port };
    this.#sent = sent;
    this.ready = new Promise((resolve) => (this.#markReady = resolve));
    this.stopped = new Promise((resolve) => (this.#markStopped = resolve));
  }

  #busy = 0;

  /** Calls given to this vat and not yet settled, including those still being prepared. */
  get load(): number {
    return this.#busy;
  }

  /** A vat with calls keeps the process alive; an idle one must not. */
  busy(delta: number) {
    this.#busy += delta;
    if (this.#busy === 0) this.worker.unref();
    else if (delta > 0 && this.#busy === 1) this.worker.ref();
  }

  markStopped() {
    this.dead = true;
    this.#markStopped();
  }

  isReady = false;

  markReady() {
    this.isReady = true;
    this.#markReady();
  }

  /**
   * By postMessage: everything queued in one turn as one batch. On the rings:
   * into the ring now (a polling vat starts on it at once), and the vat, if
   * it sleeps, is woken once a turn.
   */
  send(message: ToVat) {
    if (this.dead) return;
    if (this.#post) {
      this.#outbox.push(message);
      if (this.#outbox.length === 1) {
        queueMicrotask(() => {
          const batch = this.#outbox;
          this.#outbox = [];
          if (!this.dead) this.worker.postMessage(batch);
        });
      }
      return;
    }
    const channel = this.channel!.end;
    channel.send(message);
    this.#sent();
    if (this.#wakeQueued) return;
    this.#wakeQueued = true;
    queueMicrotask(() => {
      this.#wakeQueued = false;
      if (!this.dead) channel.out.wake();
    });
  }
}

/** Node 20 has it; TypeScript's library for this target does not declare it yet. */
const waitAsync = (Atomics as unknown as { waitAsync(array: Int32Array, index: number, value: number): { async: false; value: string } | { async: true; value: Promise<string> } }).waitAsync;

const CANCELLED_ANSWER: VatOutcome = revoked('cancelled', CANCELLED);
/** A cancelled call is the caller's doing: no cause of the closure's (the kernel journals it as the node's). */
const CANCELLED_RESULT: RunResult = Object.freeze({ answer: CANCELLED_ANSWER, pure: false });
/** The same, under the code and reason its signal gives (`disconnected` when the caller's connection dropped). */
const cancelled = (signal: AbortSignal | undefined): RunResult => (abortReason(signal) === CANCELLED ? CANCELLED_RESULT : { answer: aborted(signal), pure: false });

/** The answer to a vat's request; a failure on the kernel's side is a revoked answer, never an unhandled rejection. */
const answerOf = async (ask: () => Promise<VatOutcome>): Promise<VatOutcome> => {
  try {
    return await ask();
  } catch (error) {
    return failed(error);
  }
};

export class VatPool {
  readonly #host: VatHost;
  readonly #limits: VatLimits;
  readonly #vats: Vat[] = [];
  #nextRun = 0;
  #closed = false;
  readonly #retried = new WeakSet<RunRequest>();

  constructor(host: VatHost, limits: VatLimits) {
    this.#host = host;
    this.#limits = limits;
  }

  /** Run a call in a vat. Never rejects: failures are revoked answers. */
  async run(request: RunRequest): Promise<RunResult> {
    if (this.#closed) return { answer: revoked('shut-down', 'vats are shut down'), pure: false };
    if (request.signal?.aborted) return cancelled(request.signal);
    const vat = this.#pick(request.nested === true);
    vat.busy(+1);
    try {
      return await this.#runOn(vat, request);
    } finally {
      vat.busy(-1);
    }
  }

  async #runOn(vat: Vat, request: RunRequest): Promise<RunResult> {
    try {
      await Promise.race([vat.ready, vat.stopped]);
      await this.#prepare(vat, request.closure);
    } catch (error) {
      return { answer: revoked('internal', `vat: ${(error as Error).message}`), pure: false };
    }
    if (vat.dead) {
      // It stopped before the call reached it: nothing ran, so try another vat once.
      if (this.#retried.has(request)) return { answer: revoked('internal', 'vat stopped before the call started'), pure: false };
      this.#retried.add(request);
      return this.run(request);
    }
    if (request.signal?.aborted) return cancelled(request.signal);
    const run = this.#nextRun++;
    return new Promise<RunResult>((settle) => {
      const cancelTimer = this.#host.setTimer(Math.max(0, request.timeLimitMs), () => this.#stop(vat, run, 'time-limit', 'time limit'));
      const stopListening = request.signal ? onAbort(request.signal, () => this.#cancel(vat, run)) : () => {};
      const resolve = (result: RunResult) => {
        stopListening();
        settle(result);
      };
      request.started?.();
      vat.runs.set(run, { request, resolve, cancelTimer, acted: false });
      vat.send({ t: 'run', run, token: request.closure.token, args: request.args, caller: request.caller, ...(request.fold ? { fold: true as const } : {}) });
    });
  }

  /**
   * An idle vat if there is one; else a new vat while the pool is not full
   * (so a call never queues behind a closure that is spinning); else the
   * least busy. Vats blocked in a synchronous grid.call are passed over, and
   * if every vat is blocked one more starts, beyond the pool size: the call
   * may be the very one they are waiting for. A nested call takes the least
   * busy vat that is ready rather than wait for one to start (which still
   * starts, for the calls after it).
   */
  #pick(nested: boolean): Vat {
    let best: Vat | undefined;
    let bestReady: Vat | undefined;
    let open = 0;
    for (const vat of this.#vats) {
      if (vat.blocked > 0) continue;
      open += 1;
      if (!best || vat.load < best.load) best = vat;
      if (vat.isReady && (!bestReady || vat.load < bestReady.load)) bestReady = vat;
    }
    if (best && best.load === 0) return best;
    if (!best || this.#vats.length < this.#limits.vats || open === 0) {
      const started = this.#start();
      return nested && bestReady ? bestReady : started;
    }
    return best;
  }

  #start(): Vat {
    const spinUs = this.#limits.vatSpinUs ?? VAT_SPIN_US;
    const transport = this.#limits.vatTransport ?? VAT_TRANSPORT;
    // Shared memory only where it is used: the rings for that transport, the flag for vats that can block.
    const sync = BLOCKING_CALLS ? { ports: new MessageChannel(), flag: new SharedArrayBuffer(4) } : undefined;
    const channel = transport === 'shared-memory' ? { ports: new MessageChannel(), memory: channelMemory() } : undefined;
    const worker = startVatThread(
      {
        maxFanOut: this.#limits.maxFanOut,
        ...(sync ? { sync: { port: sync.ports.port2, flag: sync.flag } } : {}),
        ...(channel ? { channel: { memory: channel.memory, port: channel.ports.port2 } } : {}),
        spinUs,
        transport,
      },
      this.#limits.vatMemoryMb,
    );
    const vat = new Vat(worker, sync && { port: sync.ports.port1, flag: sync.flag }, channel && { memory: channel.memory, port: channel.ports.port1 }, this.#sent);
    if (channel) this.#sleepOn(vat);
    worker.on('message', (batch: FromVat[]) => {
      for (const message of batch) this.#receive(vat, message);
    });
    worker.on('error', (error: Error & { code?: string }) => {
      this.#retire(vat, error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'memory limit' : `vat failed: ${error.message}`, error.code === 'ERR_WORKER_OUT_OF_MEMORY');
    });
    worker.on('exit', () => this.#retire(vat, 'vat exited'));
    this.#vats.push(vat);
    return vat;
  }

  async #prepare(vat: Vat, closure: Closure) {
    await this.#loadModule(vat, closure.code);
    if (!vat.closures.has(closure.token)) {
      vat.closures.add(closure.token);
      vat.send({ t: 'closure', token: closure.token, code: closure.code, export: closure.export, env: encodeValue(closure.env) });
    }
  }

  /** Send a module, after its dependencies, once per vat. */
  #loadModule(vat: Vat, id: ModuleId): Promise<void> {
    let loading = vat.modules.get(id);
    if (!loading) {
      loading = this.#host.moduleRecord(id).then(async (record) => {
        if ('wasm' in record) return vat.send({ t: 'wasm', id, record: record.wasm });
        for (const dependency of record.js.dependencies) await this.#loadModule(vat, dependency);
        vat.send({ t: 'module', id, record: record.js });
      });
      vat.modules.set(id, loading);
    }
    return loading;
  }

  /** Calls in vats now. */
  #inFlight(): number {
    let count = 0;
    for (const vat of this.#vats) count += vat.runs.size;
    return count;
  }

  #pollQueued = false;
  #lastHeard = 0;
  #lastPoll = 0;
  /** Polling stopped until then: it found this thread kept from its core (see POLL_PREEMPTED_MS). */
  #pollAgain = 0;
  get #spinMs(): number {
    if ((this.#limits.vatTransport ?? VAT_TRANSPORT) === 'postMessage') return 0;
    return (this.#limits.vatSpinUs ?? VAT_SPIN_US) / 1000;
  }

  /** Something was sent to a vat: listen closely for its answer. */
  readonly #sent = () => {
    if (this.#spinMs === 0) return; // every ring is slept on already (or it is postMessage)
    this.#lastHeard = performance.now();
    this.#pollSoon();
  };

  #pollSoon() {
    if (this.#pollQueued) return;
    this.#pollQueued = true;
    setImmediate(this.#poll);
  }

  /**
   * Read every vat's ring. While calls are in flight and a message came (or
   * went) within the spin time, read again next turn — each turn still
   * serves timers and I/O; else sleep on each ring (Atomics.waitAsync) until
   * its vat writes.
   */
  readonly #poll = () => {
    this.#pollQueued = false;
    this.#pollNow();
  };

  #pollNow() {
    let heard = false;
    let backlog = false;
    for (const vat of [...this.#vats]) {
      if (this.#drain(vat)) heard = true;
      if (vat.channel && vat.channel.end.backlogged > 0) backlog = true;
    }
    const now = performance.now();
    if (heard) this.#lastHeard = now;
    else if (now - this.#lastPoll > POLL_PREEMPTED_MS && now - this.#lastHeard < this.#spinMs) this.#pollAgain = now + NO_POLLING_MS;
    this.#lastPoll = now;
    if (this.#inFlight() > 0 && now - this.#lastHeard < this.#spinMs && now >= this.#pollAgain) return this.#pollSoon();
    for (const vat of this.#vats) this.#sleepOn(vat);
    // A ring that was full: try again soon, without keeping this thread busy.
    if (backlog && !this.#pollQueued) {
      this.#pollQueued = true;
      setTimeout(this.#poll, 1);
    }
  }

  /** Everything the vat has written; false if nothing. A vat that writes what is not a frame has failed. */
  #drain(vat: Vat): boolean {
    let heard = false;
    const channel = vat.channel?.end;
    if (!channel) return false;
    try {
      if (channel.backlogged > 0 && channel.flush()) channel.out.wake();
      for (let message = channel.next(); message && !vat.dead; message = channel.next()) {
        heard = true;
        this.#receive(vat, message);
      }
    } catch (error) {
      if (!(error instanceof ChannelError)) throw error;
      this.#retire(vat, `vat failed: ${error.message}`);
    }
    return heard;
  }

  #sleepOn(vat: Vat) {
    if (vat.dead || !vat.channel) return;
    const ring = vat.channel.end.in;
    ring.sleeping(true);
    if (ring.waiting) {
      ring.sleeping(false);
      return this.#pollSoon();
    }
    if (vat.waiting) return;
    const wait = waitAsync(ring.header, 0, ring.written);
    if (!wait.async) {
      ring.sleeping(false);
      return this.#pollSoon();
    }
    vat.waiting = true;
    void wait.value.then(() => {
      vat.waiting = false;
      if (vat.dead) return;
      ring.sleeping(false);
      this.#pollNow();
    });
  }

  #receive(vat: Vat, message: FromVat) {
    if (message.t === 'ready') return vat.markReady();
    const pending = vat.runs.get(message.run);
    if (!pending) return;
    switch (message.t) {
      case 'done':
        vat.runs.delete(message.run);
        pending.cancelTimer();
        pending.resolve({ answer: message.answer, pure: message.pure });
        break;
      case 'call':
        pending.acted = true;
        if (message.sync) {
          const sync = vat.sync;
          if (!sync) return this.#retire(vat, 'vat failed: a blocking call from a vat that cannot block');
          vat.blocked += 1;
          void answerOf(() => (pending.detached ? Promise.resolve(CANCELLED_ANSWER) : pending.request.call(message.token, message.args))).then((answer) => {
            vat.blocked -= 1;
            if (vat.dead) return;
            sync.port.postMessage(answer);
            Atomics.store(sync.flag, 0, 1);
            Atomics.notify(sync.flag, 0);
          });
        } else {
          void answerOf(() => (pending.detached ? Promise.resolve(CANCELLED_ANSWER) : pending.request.call(message.token, message.args))).then((answer) => vat.send({ t: 'reply', run: message.run, sub: message.sub, answer }));
        }
        break;
      case 'log':
        try {
          pending.request.log(message.line);
        } catch {
          // A failing log sink must not take the vat's calls down.
        }
        break;
      case 'issue':
        pending.acted = true;
        void answerOf(() => (pending.detached ? Promise.resolve(CANCELLED_ANSWER) : pending.request.issue(message.export, message.env))).then((answer) => vat.send({ t: 'reply', run: message.run, sub: message.sub, answer }));
        break;
    }
  }

  /**
   * The caller cancelled a call its vat has. A closure cannot be interrupted
   * short of stopping its thread, so the vat is stopped as at a time limit:
   * the other calls there that have not acted run again elsewhere, unharmed.
   * But stopping it would end, for another caller, a call that has acted
   * (it cannot safely run twice): then this call alone ends now, and is left
   * to finish in its vat or meet its time limit there, getting nothing more
   * from the kernel meanwhile.
   */
  #cancel(vat: Vat, run: number) {
    const pending = vat.runs.get(run);
    if (!pending || pending.detached) return;
    const othersActed = [...vat.runs.values()].some((other) => other !== pending && other.acted && !other.detached);
    if (othersActed) {
      pending.detached = true;
      return pending.resolve(cancelled(pending.request.signal));
    }
    vat.runs.delete(run);
    pending.cancelTimer();
    pending.resolve(cancelled(pending.request.signal));
    this.#retire(vat, 'vat restarted: another call on it was cancelled by its caller');
  }

  /** A call passed its deadline: stop its vat; the other calls there end too. */
  #stop(vat: Vat, run: number, code: RevokeCode, reason: string) {
    const pending = vat.runs.get(run);
    if (!pending) return;
    vat.runs.delete(run);
    pending.resolve({ answer: revoked(code, reason), pure: false });
    this.#retire(vat, `vat restarted: another call on it hit its ${reason}`);
  }

  /**
   * `overLimit`: the vat ran out of memory. Which call did it is known only
   * when it held one (code `memory-limit`); otherwise the calls it ends were
   * the node's misfortune (`code`, by default `internal`), not broken
   * promises of their closures.
   */
  #retire(vat: Vat, reason: string, overLimit = false, code: RevokeCode = 'internal') {
    if (vat.dead) return;
    if (overLimit && vat.runs.size === 1) code = 'memory-limit';
    vat.markStopped();
    this.#vats.splice(this.#vats.indexOf(vat), 1);
    for (const pending of vat.runs.values()) {
      pending.cancelTimer();
      // A call that has not asked the kernel for anything has had no effect
      // outside its vat: run it again elsewhere rather than fail it for what
      // another call did. (Calls that acted might act twice; they end.)
      // Once: a call that itself brings vats down must not take a second vat's calls with it forever.
      if (!pending.acted && !this.#closed && !this.#retried.has(pending.request)) {
        this.#retried.add(pending.request);
        void this.run(pending.request).then(pending.resolve);
      } else {
        pending.resolve({ answer: revoked(code, reason), pure: false });
      }
    }
    vat.runs.clear();
    void vat.worker.terminate();
    vat.sync?.port.close();
    if (vat.channel) {
      vat.channel.port.close();
      // Let go of the wait on its ring.
      Atomics.notify(vat.channel.end.in.header, 0);
    }
    // Replace it now, so the next call does not wait for a vat to start.
    if (!this.#closed) this.#start();
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#vats].map((vat) => (this.#retire(vat, 'vats are shut down', false, 'shut-down'), vat.worker.terminate())));
  }
}
