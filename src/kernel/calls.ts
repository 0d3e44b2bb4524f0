/**
 * The call pipeline: a call is looked up in the pure-call cache, journaled
 * once it is known to concern this node, then screened (through a
 * delegation), run in a vat (a closure held here), answered by a waiting
 * call, or forwarded to the peers (forwarding.ts); its end is journaled, and the journal
 * entries — not this code — update what the kernel knows (kernel.ts
 * applies each entry to every part). Never throws: every failure is a
 * revoked outcome.
 */
import { asToken, type Principal, type Token } from '../interface/ids.js';
import { describeThrown, GridError } from '../interface/errors.js';
import { CANCELLED } from '../interface/cancel.js';
import { asRevokeCode, causeOf, failed, fulfilled, promised, revoked, type Outcome } from '../interface/outcome.js';
import type { Closure } from '../closures/closure.js';
import { decodeValue, encodeValue, MAX_VALUE_BYTES, type GridValue } from '../closures/values.js';
import type { Journal } from '../journal/journal.js';
import type { Delegation } from '../delegation/delegation.js';
import type { Screening } from '../delegation/screen.js';
import type { VatPool } from '../vat/pool.js';
import type { VatOutcome } from '../vat/protocol.js';
import type { Approvals, ScreenedCall } from './approvals.js';
import type { ClosureTable } from './closure-table.js';
import type { DelegationTable } from './delegation-table.js';
import type { ModuleTable } from './module-table.js';
import type { Policies } from './policies.js';
import type { PureCallCache } from './pure-cache.js';
import type { QuotaKeeper } from './quota.js';
import { RECORD_BYTES } from './quota.js';
import type { RevocationTable } from './revocation-table.js';
import { impure, type Answer, type AnswerOptions, type CallFrame, type ChainBlocks, type Forwarder, type Invoked, type KernelLimits } from './types.js';
import { makeForwarding } from './forwarding.js';
import type { Documents } from '../docs/documents.js';

const toVatAnswer = (outcome: Outcome): VatOutcome => (outcome.status === 'fulfilled' ? { status: 'fulfilled', value: encodeValue(outcome.value) } : outcome);

export type CallPipeline = ReturnType<typeof makeCallPipeline>;

export const makeCallPipeline = (parts: {
  self: Principal;
  journal: Journal;
  clock: () => number;
  limits: KernelLimits;
  forward?: Forwarder;
  log?: (token: Token, line: string) => void;
  vats: VatPool;
  modules: ModuleTable;
  closures: ClosureTable;
  delegations: DelegationTable;
  revocations: RevocationTable;
  approvals: () => Approvals;
  docs: () => Documents;
  policies: Policies;
  cache: PureCallCache;
  quota: QuotaKeeper;
  closed: () => boolean;
}) => {
  const { self, journal, clock, limits, vats, modules, closures, delegations, revocations, cache, quota } = parts;
  const { forward, forwardCall } = makeForwarding(parts);

  /** Whether `token` names something this node holds or knows of: a closure, a delegation, a revocation, a call waiting for approvals, a document's conflict or proposal. */
  const concernsHere = async (token: Token): Promise<boolean> => {
    if (closures.loaded(token) || delegations.known(token) || revocations.isRevoked(token) || parts.approvals().has(token) || parts.docs().isConflict(token) || parts.docs().isProposal(token)) return true;
    try {
      return (await closures.tokenBlock(token)) !== undefined;
    } catch {
      return true; // the store's trouble, which `run` reports
    }
  };

  /**
   * Journal how call `seq` ended (the cache keeps a pure answer, from the
   * record); `reserved`: what was taken for its answer with the call, set
   * right now against what the answer stores.
   */
  const settle = (seq: number, token: Token, caller: Principal, reserved: number, { outcome, pure, valueBytes }: Invoked): Invoked => {
    if (outcome.status === 'fulfilled') {
      const value = valueBytes ?? encodeValue(outcome.value);
      quota.charge(caller, RECORD_BYTES + value.length - reserved);
      quota.answered(token, value.length);
      journal.append({ kind: 'fulfilled', call: seq, value, pure, decoded: outcome.value });
      // A revocation may have landed while the call ran: then the answer is no longer one to keep.
      if (pure && !revocations.isRevoked(token)) return { outcome, pure: true, valueBytes: value };
      return impure(outcome);
    }
    quota.charge(caller, RECORD_BYTES - reserved);
    if (outcome.status === 'revoked') journal.append({ kind: 'revoked', call: seq, reason: outcome.reason, cause: causeOf(outcome), code: outcome.code });
    else journal.append({ kind: 'promised', call: seq, token: outcome.token });
    return impure(outcome);
  };

  /** Act on a screening: refuse, answer, wait for approvals, or call the original closure. */
  const afterScreening = async (screening: Screening, call: ScreenedCall, frame: CallFrame): Promise<Outcome> => {
    switch (screening.kind) {
      case 'refuse':
        return revoked('screened', screening.reason);
      case 'answer':
        try {
          return fulfilled(decodeValue(encodeValue(screening.value)));
        } catch (error) {
          return revoked('malformed', `a policy answered with something that is not grid data: ${describeThrown(error)}`);
        }
      case 'wait':
        return parts.approvals().wait(call, screening);
      case 'pass': {
        for (const layer of screening.audited) journal.append({ kind: 'screened', call: call.call, token: layer.token, caller: layer.caller });
        // The link this node was delegated, if any: its own authority for what the call makes (a document version).
        const via = call.chain.find((link) => link.audience.includes(self))?.token;
        // A document's replica holds its roles by sealed reference only: the docs part answers, as the call through the chain.
        if (parts.docs().isRole(call.root)) return (await parts.docs().answer(call.root, call.args, { seq: call.call, deadline: frame.deadline, caller: call.caller, ...(via ? { via } : {}) })).outcome;
        const inner: CallFrame = { caller: call.caller, path: frame.path, depth: frame.depth + 1, parent: call.call, deadline: frame.deadline, signal: frame.signal, ...(via ? { via } : {}) };
        return (await invoke(call.root.token, call.args, inner)).outcome;
      }
    }
  };

  /** A call on delegation `outer`: screened here if this node holds the original closure, else forwarded with its chain. */
  const screened = async (outer: Delegation, argsBytes: Uint8Array, frame: CallFrame, seq: number): Promise<Invoked> => {
    let found: Awaited<ReturnType<DelegationTable['screenable']>>;
    try {
      found = await delegations.screenable(outer);
    } catch (error) {
      return impure(failed(error));
    }
    if (!found) {
      if (!parts.forward) return impure(revoked('unknown-token', 'unknown token'));
      // Screening is the business of the node that holds the closure, not of whoever passes the call on.
      return impure((await forwardCall(outer.token, argsBytes, frame, seq, await delegations.chainBlocks(outer.token))).outcome);
    }
    const args = decodeValue(argsBytes) as GridValue[];
    const screening = await parts.policies.screens.screen(found.chain, frame.caller, args);
    return impure(await afterScreening(screening, { chain: found.chain, root: found.root, caller: frame.caller, args, call: seq }, frame));
  };

  /** Run a closure held here in a vat. */
  const runHere = async (closure: Closure, argsBytes: Uint8Array, frame: CallFrame, seq: number | undefined, fold?: boolean): Promise<Invoked> => {
    const timeLimitMs = Math.min(frame.deadline - clock(), closure.timeLimitMs ?? Number.POSITIVE_INFINITY);
    // Nested calls share this call's deadline, which starts when its vat has it.
    const nested: CallFrame = { caller: closure.issuer, path: [], depth: frame.depth + 1, parent: seq, deadline: frame.deadline, signal: frame.signal };
    const { answer, pure } = await vats.run({
      closure,
      args: argsBytes,
      caller: frame.caller,
      nested: frame.depth > 0,
      timeLimitMs,
      ...(fold ? { fold } : {}),
      ...(frame.signal ? { signal: frame.signal } : {}),
      started: () => (nested.deadline = clock() + timeLimitMs),
      call: async (target, args) => toVatAnswer(await invokeNested(target, decodeValue(args) as GridValue[], nested)),
      log: (line) => parts.log?.(closure.token, line),
      issue: async (exportName, env) => {
        try {
          return { status: 'promised', token: await closures.issueFor(closure, { export: exportName, env: decodeValue(env) }) };
        } catch (error) {
          return failed(error);
        }
      },
    });
    // A vat is hostile territory: what it sends back is checked like input from a peer.
    try {
      if (answer.status === 'revoked') {
        // A code the vat should not send is the closure's crash, as any malformed answer.
        const code = asRevokeCode(answer.code, 'crash');
        // A call made by a closure that ran out of its caller's remaining time did not fail on its own budget.
        const passed = code === 'time-limit' && frame.depth > 0 && timeLimitMs < Math.min(limits.callTimeoutMs, closure.timeLimitMs ?? Infinity);
        return impure(revoked(code, String(answer.reason), passed ? 'passed' : undefined));
      }
      if (answer.status === 'promised') return impure(promised(asToken(answer.token)));
      return { outcome: fulfilled(decodeValue(answer.value)), pure, valueBytes: answer.value };
    } catch (error) {
      return impure(revoked('crash', `vat answered with something malformed: ${describeThrown(error)}`));
    }
  };

  /** Route a call journaled as `seq` (its invoke began at `since`), on a token that concerns this node, to what answers it: a revocation, approvals, a delegation's screening, a closure here, or a peer. */
  const route = async (token: Token, argsBytes: Uint8Array, frame: CallFrame, seq: number, since: number): Promise<Invoked> => {
    const reason = revocations.reasonFor(token);
    if (reason !== undefined) return impure(revoked('token-revoked', reason));
    if (parts.approvals().has(token)) return impure(await parts.approvals().answer(token, argsBytes, frame));
    if (parts.docs().isConflict(token)) return impure(await parts.docs().answerConflict(token));
    if (parts.docs().isProposal(token)) return impure(await parts.docs().answerProposal(token, decodeValue(argsBytes) as GridValue[], frame.caller));
    // A warm call on a closure held here does not wait a turn to learn it is not a delegation.
    if (!closures.loaded(token)) {
      let delegation: Delegation | undefined;
      try {
        delegation = await delegations.delegationOf(token);
      } catch (error) {
        return impure(failed(error));
      }
      if (delegation) return screened(delegation, argsBytes, frame, seq);
    }
    let closure: Closure | undefined;
    try {
      // Warm calls find closure and module in memory and never await here.
      closure = closures.loaded(token) ?? (await closures.here(token));
      if (closure && !modules.isLoaded(closure.code)) await modules.load(closure.code);
    } catch (error) {
      if (error instanceof GridError) return impure(failed(error, error.message));
      return impure(revoked('internal', `could not load closure: ${describeThrown(error)}`));
    }
    // Finding and loading a closure and its module (reading blocks, a parse where no analysis was kept) is
    // the node's cost, as starting a vat is: the call's time does not pay for it.
    frame.deadline += clock() - since;
    if (!closure) return parts.forward ? forwardCall(token, argsBytes, frame, seq) : impure(revoked('unknown-token', 'unknown token'));
    // A document's role token: the docs part answers it, no vat.
    if (parts.docs().isRole(closure)) {
      return parts.docs().answer(closure, decodeValue(argsBytes) as GridValue[], { seq, deadline: frame.deadline, caller: frame.caller, argsBytes, ...(frame.via ? { via: frame.via } : {}) });
    }
    return runHere(closure, argsBytes, frame, seq);
  };

  /** A call answered from the pure-call cache (charged and journaled as a hit), or undefined if its answer is not kept. */
  const fromCache = (token: Token, argsBytes: Uint8Array, caller: Principal, parent: number | undefined): Invoked | undefined => {
    const hit = cache.get(token, argsBytes);
    if (!hit) return undefined;
    const refusal = quota.take(caller, RECORD_BYTES);
    if (refusal) return impure(revoked('quota', refusal));
    // The arguments are those of the call that `from` answered: same bytes, same key.
    journal.append({ kind: 'hit', token, caller, from: hit.from, parent });
    return { outcome: hit.outcome, pure: true, valueBytes: hit.valueBytes };
  };

  /** The version a read of the current value on `token` reads, if `token` is a document's role held here and `args` ask for that. */
  const currentVersionRead = (token: Token, args: unknown): string | undefined => {
    if (!Array.isArray(args) || args.length > 1 || (args.length === 1 && args[0] !== 'value')) return undefined;
    const closure = closures.loaded(token);
    return closure && parts.docs().isRole(closure) ? parts.docs().currentOf(closure) : undefined;
  };

  /** One call, without following further promises; `pure` if its answer may be cached (its value's bytes come with it). */
  const invoke = async (tokenText: unknown, args: readonly unknown[], frame: CallFrame, encodedArgs?: Uint8Array, chain?: ChainBlocks): Promise<Invoked> => {
    const since = clock();
    let token: Token;
    if (typeof tokenText === 'string' && closures.loaded(tokenText as Token)) {
      token = tokenText as Token; // already checked when its closure was loaded
    } else {
      try {
        token = asToken(tokenText);
      } catch (error) {
        return impure(revoked('invalid', (error as Error).message));
      }
    }
    // A read of a document's current value is the pure read of the version
    // now current: once made, it is a cache hit until the document changes.
    // Only here: whoever asked for the value now may not keep it as pure.
    const current = currentVersionRead(token, args);
    if (current !== undefined) return { ...(await invoke(token, ['at', current], frame, undefined, chain)), pure: false };
    let argsBytes: Uint8Array;
    try {
      if (!Array.isArray(args)) throw new TypeError('arguments must be an array');
      argsBytes = encodedArgs && encodedArgs.length <= MAX_VALUE_BYTES ? encodedArgs : encodeValue(args);
    } catch (error) {
      return impure(revoked('invalid', `bad arguments: ${(error as Error).message}`));
    }
    const hit = fromCache(token, argsBytes, frame.caller, frame.parent);
    if (hit) return hit;
    // Nothing is journaled before it is known to concern this node: a
    // stranger's calls on made-up tokens leave no record to fill its disk.
    const here = chain === undefined && (await concernsHere(token));
    if (!here && !parts.forward) return impure(revoked('unknown-token', 'unknown token'));
    // The call's record and its answer's, the answer as big as the token's last one.
    const reserved = RECORD_BYTES + quota.expected(token);
    const refusal = quota.take(frame.caller, RECORD_BYTES + argsBytes.length + reserved);
    if (refusal) return impure(revoked('quota', refusal));
    if (!here) {
      const forwarded = await forward(token, argsBytes, frame, chain);
      // No peer answered: the call concerned no node this one knows.
      if (!forwarded.peer) {
        quota.charge(frame.caller, -reserved);
        return forwarded;
      }
      const call = journal.append({ kind: 'call', token, caller: frame.caller, args: argsBytes, parent: frame.parent });
      journal.append({ kind: 'forwarded', call: call.seq, to: forwarded.peer });
      return settle(call.seq, token, frame.caller, reserved, forwarded);
    }
    const call = journal.append({ kind: 'call', token, caller: frame.caller, args: argsBytes, parent: frame.parent });
    return settle(call.seq, token, frame.caller, reserved, await route(token, argsBytes, frame, call.seq, since));
  };

  /** `ctx.call`: nested calls follow further promises within the same deadline. */
  const invokeNested = async (token: unknown, args: readonly unknown[], frame: CallFrame): Promise<Outcome> => {
    if (frame.depth > limits.maxCallDepth) return revoked('call-limit', `call depth limit (${limits.maxCallDepth})`);
    let { outcome } = await invoke(token, args, frame);
    for (let hops = 0; outcome.status === 'promised' && hops < limits.maxFollow; hops += 1) {
      ({ outcome } = await invoke(outcome.token, [], frame));
    }
    return outcome;
  };

  return harden({
    afterScreening,

    /**
     * Run a closure as this node, on its own behalf and unjournaled: a
     * document's reducer or merge step recomputing what a version records
     * (the version is the record). A closure not held here is called
     * through the pipeline instead (journaled, forwarded); `fold` (see the
     * vat protocol) needs it held here. `argsBytes`: `args` already encoded
     * (canonical, within the value limits). A value from a vat comes with
     * its canonical bytes (`valueBytes`), as the vat sent them.
     */
    async runAsNode(token: Token, args: readonly GridValue[], options: { fold?: boolean; parent?: { seq: number; deadline: number }; argsBytes?: Uint8Array } = {}): Promise<Outcome & { readonly valueBytes?: Uint8Array }> {
      const { parent } = options;
      const frame: CallFrame = { caller: self, path: [], depth: parent ? 1 : 0, parent: parent?.seq, deadline: parent?.deadline ?? clock() + limits.callTimeoutMs };
      let closure: Closure | undefined;
      try {
        closure = closures.loaded(token) ?? (await closures.here(token));
        if (closure && !modules.isLoaded(closure.code)) await modules.load(closure.code);
      } catch (error) {
        return failed(error);
      }
      if (!closure) return options.fold ? revoked('unknown-token', `closure ${token} is not held here`) : invokeNested(token, args, frame);
      try {
        const { outcome, valueBytes } = await runHere(closure, options.argsBytes ?? encodeValue(args), frame, parent?.seq, options.fold);
        return valueBytes && outcome.status === 'fulfilled' ? Object.freeze({ ...outcome, valueBytes }) : outcome;
      } catch (error) {
        return revoked('invalid', `bad arguments: ${describeThrown(error)}`);
      }
    },

    /**
     * `answer` for a call the pure-call cache answers, given at once, or
     * undefined (then `answer` it): the same outcome, quota charge and `hit`
     * record, without the turns, the frame and the cancel signal a call
     * that may run needs. `args` decoded from `argsBytes` (canonical, the
     * strict decoder's); no chain to import, not forwarded (no path).
     */
    answerCached(token: Token, args: readonly GridValue[], argsBytes: Uint8Array, caller: Principal): Answer | undefined {
      if (parts.closed() || argsBytes.length > MAX_VALUE_BYTES || currentVersionRead(token, args) !== undefined) return undefined;
      let hit: Invoked | undefined;
      try {
        hit = fromCache(token, argsBytes, caller, undefined);
      } catch (error) {
        return { outcome: revoked('internal', `kernel: ${describeThrown(error)}`), cacheable: false };
      }
      if (!hit) return undefined;
      const replicable = hit.outcome.status === 'fulfilled' && closures.loaded(token)?.replicable === true;
      return { outcome: hit.outcome, cacheable: hit.pure, ...(replicable ? { replicable } : {}), ...(hit.valueBytes ? { valueBytes: hit.valueBytes } : {}) };
    },

    /** A call, and whether whoever receives the outcome may cache it (the answer a node gives a peer). */
    async answer(token: string, args: readonly unknown[], options: AnswerOptions): Promise<Answer> {
      if (parts.closed()) return { outcome: revoked('shut-down', 'kernel is closed'), cacheable: false };
      const frame = (): CallFrame => ({
        caller: options.caller ?? self,
        path: options.path ?? [],
        depth: 0,
        parent: undefined,
        deadline: clock() + limits.callTimeoutMs,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      // Cancelled before it started: no call was made, so none is journaled.
      if (options.signal?.aborted) return { outcome: revoked('cancelled', CANCELLED), cacheable: false };
      try {
        // A chain whose closure is held elsewhere is passed on with the call, not stored here.
        let passOnChain: ChainBlocks | undefined;
        if (options.chain) {
          try {
            if (!(await delegations.importChain(token, options.chain, options.caller))) passOnChain = options.chain;
          } catch (error) {
            return { outcome: failed(error), cacheable: false };
          }
        }
        const first = await invoke(token, args, frame(), options.argsBytes, passOnChain);
        let outcome = first.outcome;
        // A call on a waiting call's own token that answers with that token again has waited already: it is the answer for now.
        for (let hops = 0; options.follow && outcome.status === 'promised' && outcome.token !== token; hops += 1) {
          if (options.signal?.aborted) return { outcome: revoked('cancelled', CANCELLED), cacheable: false };
          if (hops >= limits.maxFollow) return { outcome: revoked('call-limit', `further promises nested deeper than ${limits.maxFollow}`), cacheable: false };
          const next = (await invoke(outcome.token, [], frame())).outcome;
          // The same promise again: it is still waiting (for approvals), and it is the answer for now.
          if (next.status === 'promised' && next.token === outcome.token) break;
          outcome = next;
        }
        const replicable = outcome.status === 'fulfilled' && closures.loaded(token as Token)?.replicable === true;
        const own = outcome === first.outcome;
        return { outcome, cacheable: own && first.pure, ...(replicable ? { replicable } : {}), ...(own && first.valueBytes ? { valueBytes: first.valueBytes } : {}) };
      } catch (error) {
        // Only the kernel's own failures land here (e.g. closed mid-call);
        // closures' failures are outcomes already.
        return { outcome: revoked('internal', `kernel: ${describeThrown(error)}`), cacheable: false };
      }
    },
  });
};
