/**
 * Running a call through the layers of a delegation chain, outermost first.
 * Each layer checks that its caller is in its audience, then asks each of its
 * policies for a verdict: forward (on to the next policy, then the next layer,
 * then the original closure), refuse, answer in the inner token's place, or
 * wait (for approvals). The caller each layer sees is the one it was
 * delegated to: the real caller for the outermost, the delegator of the layer
 * above for the others — so Bob's limits hold for everything Carol does
 * through Bob.
 *
 * A policy is a module exporting `screen(ctx, request)`: `ctx.env` is its
 * settings and `ctx.caller` the layer's caller; `request` is
 * `{ args, now, state, approvals, layer: { token, delegator, audience }, reputation }`,
 * where `reputation` gives this node's record (`{ issuer: principal, issued,
 * fulfilled, broken, pending }`) of the layer's `caller`, its `delegator`, the
 * original closure's `issuer`, and the issuers of tokens passed as `arguments`
 * (those this node knows).
 * Policies keep no state of their own (a fresh instance runs every call); a
 * verdict may carry a new `state`, which the next call through that policy of
 * that layer is given. Calls through one policy are screened one at a time,
 * so a quota cannot be overrun by calls that race.
 */
import { quote, type Principal, type Token } from '../interface/ids.js';
import { describeThrown } from '../interface/errors.js';
import { isLink, type GridValue } from '../closures/values.js';
import type { Reputation } from '../journal/reputation.js';
import type { Delegation, PolicyRef } from './delegation.js';

export interface PolicyRequest {
  readonly args: readonly GridValue[];
  readonly now: number;
  readonly state: GridValue;
  readonly approvals: readonly Principal[];
  readonly layer: { readonly token: Token; readonly delegator: Principal; readonly audience: readonly Principal[] };
  readonly reputation: {
    readonly caller: Reputation;
    readonly delegator: Reputation;
    readonly issuer: Reputation;
    readonly arguments: readonly Reputation[];
  };
}

export type Verdict =
  | { readonly forward: true; readonly state?: GridValue; readonly audit?: boolean }
  | { readonly refuse: string; readonly state?: GridValue }
  | { readonly answer: GridValue; readonly state?: GridValue }
  /** `approvers`: whose approval this policy counts, when it knows; the node then takes approvals from them only, and lists them to whoever asks what waits for them. */
  | { readonly wait: string; readonly state?: GridValue; readonly approvers?: readonly Principal[] };

/** Most approvers a waiting policy may name. */
export const MAX_APPROVERS = 256;

/** Where in a chain screening stopped: layer index, then policy index within it. */
export interface Position {
  readonly layer: number;
  readonly policy: number;
}

export type Screening =
  /** Every layer let the call through; `audited` are the layers that asked for it to be recorded. */
  | { readonly kind: 'pass'; readonly audited: ReadonlyArray<{ readonly token: Token; readonly caller: Principal }> }
  | { readonly kind: 'refuse'; readonly reason: string }
  | { readonly kind: 'answer'; readonly value: GridValue }
  | { readonly kind: 'wait'; readonly at: Position; readonly reason: string; readonly approvers?: readonly Principal[] };

export interface ScreenHost {
  readonly clock: () => number;
  /** Told when a policy's state changes, so it can be kept durably. */
  stateChanged(layer: Token, index: number, state: GridValue): void;
  /** Ask one policy for its verdict (in the kernel's thread for shipped policies, in a vat otherwise). */
  runPolicy(policy: PolicyRef, caller: Principal, request: PolicyRequest): Promise<unknown>;
  /** The promise graph's record of a principal, and who issued a token, as far as this node knows. */
  reputation(principal: Principal): Reputation;
  issuerOf(token: string): Principal | undefined;
}

const VERDICT_KEYS = ['forward', 'refuse', 'answer', 'wait'] as const;

/** A policy is untrusted code: its verdict is checked like any other input. */
export const asVerdict = (value: unknown): Verdict => {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TypeError(`a verdict is a record (got ${quote(value)})`);
  const record = value as Record<string, unknown>;
  const kinds = VERDICT_KEYS.filter((key) => key in record);
  if (kinds.length !== 1) throw new TypeError('a verdict has exactly one of forward, refuse, answer, wait');
  const [kind] = kinds;
  if (kind === 'forward' && record.forward !== true) throw new TypeError('forward, when given, is true');
  if ((kind === 'refuse' || kind === 'wait') && typeof record[kind] !== 'string') throw new TypeError(`${kind} gives a reason as a string`);
  if (kind === 'wait' && record.approvers !== undefined) {
    const { approvers } = record;
    if (!Array.isArray(approvers) || approvers.length > MAX_APPROVERS || !approvers.every((p) => typeof p === 'string' && p.startsWith('did:key:'))) {
      throw new TypeError(`approvers, when given, is a list of at most ${MAX_APPROVERS} principals (got ${quote(approvers)})`);
    }
  }
  return record as Verdict;
};

export class Screens {
  readonly #host: ScreenHost;
  /** Each policy's state, per layer: `${layer token} ${policy index}`. */
  readonly #state = new Map<string, GridValue>();
  /** The tail of each policy's queue: calls through one policy are screened in turn. */
  readonly #queues = new Map<string, Promise<unknown>>();
  /** What policies are told of each layer, made once per delegation. */
  readonly #views = new WeakMap<Delegation, PolicyRequest['layer']>();

  constructor(host: ScreenHost) {
    this.#host = host;
  }

  async screen(
    chain: readonly Delegation[],
    caller: Principal,
    args: readonly GridValue[],
    from: Position = { layer: 0, policy: 0 },
    approvals: readonly Principal[] = [],
  ): Promise<Screening> {
    // Whose reputation a policy may weigh besides the layer's own: the original issuer, and the issuers of tokens passed along.
    const issuer = this.#host.reputation(chain.at(-1)!.delegator);
    const argumentIssuers = new Set<Principal>();
    for (const arg of args) {
      const argIssuer = isLink(arg) ? this.#host.issuerOf(arg['/']) : undefined;
      if (argIssuer) argumentIssuers.add(argIssuer);
    }
    // Requests are frozen a level at a time, each part once per call (or once per delegation): a deep
    // harden of every request was most of what a layer cost. Shipped policies are the node's own code;
    // any other gets a copy in its vat.
    const concerned = { issuer: Object.freeze(issuer), arguments: Object.freeze([...argumentIssuers].map((p) => Object.freeze(this.#host.reputation(p)))) };
    const frozenApprovals = Object.freeze([...approvals]);
    const audited: Array<{ token: Token; caller: Principal }> = [];
    for (let layerIndex = from.layer; layerIndex < chain.length; layerIndex += 1) {
      const layer = chain[layerIndex]!;
      // The outermost layer is called by the caller; each other layer by the delegator of the layer above it.
      const layerCaller = layerIndex === 0 ? caller : chain[layerIndex - 1]!.delegator;
      const name = `delegation ${layer.token.slice(0, 12)}…`;
      // Checked on every layer entered from its start (verifyChain vouches for the inner ones too).
      if ((layerIndex > from.layer || from.policy === 0) && !layer.audience.includes(layerCaller)) {
        return { kind: 'refuse', reason: `${name} is not delegated to ${layerCaller}` };
      }
      const firstPolicy = layerIndex === from.layer ? from.policy : 0;
      if (firstPolicy >= layer.policies.length) continue;
      const context = {
        view: this.#viewOf(layer),
        reputation: Object.freeze({
          caller: Object.freeze(this.#host.reputation(layerCaller)),
          delegator: Object.freeze(this.#host.reputation(layer.delegator)),
          ...concerned,
        }),
      };
      for (let policyIndex = firstPolicy; policyIndex < layer.policies.length; policyIndex += 1) {
        const policy = layer.policies[policyIndex]!;
        let verdict: Verdict;
        try {
          verdict = await this.#ask(layer, policyIndex, policy, layerCaller, args, frozenApprovals, context);
        } catch (error) {
          return { kind: 'refuse', reason: `${name}: policy ${policy.module.slice(0, 12)}… failed: ${describeThrown(error)}` };
        }
        if ('refuse' in verdict) return { kind: 'refuse', reason: `${name}: ${verdict.refuse}` };
        if ('answer' in verdict) return { kind: 'answer', value: verdict.answer };
        if ('wait' in verdict) {
          const approvers = verdict.approvers && Object.freeze([...verdict.approvers]);
          return { kind: 'wait', at: { layer: layerIndex, policy: policyIndex }, reason: `${name}: ${verdict.wait}`, ...(approvers ? { approvers } : {}) };
        }
        if (verdict.audit === true) audited.push({ token: layer.token, caller: layerCaller });
      }
    }
    return { kind: 'pass', audited };
  }

  /** What a policy is told of its layer. */
  #viewOf(layer: Delegation): PolicyRequest['layer'] {
    let view = this.#views.get(layer);
    if (!view) this.#views.set(layer, (view = harden({ token: layer.token, delegator: layer.delegator, audience: [...layer.audience] })));
    return view;
  }

  /** A policy's state as it was kept (when the node restarts). */
  restore(layer: Token, index: number, state: GridValue) {
    this.#state.set(`${layer} ${index}`, state);
  }

  /** One policy's verdict, its state carried to the next call. */
  #ask(
    layer: Delegation,
    index: number,
    policy: PolicyRef,
    caller: Principal,
    args: readonly GridValue[],
    approvals: readonly Principal[],
    context: { view: PolicyRequest['layer']; reputation: PolicyRequest['reputation'] },
  ): Promise<Verdict> {
    const key = `${layer.token} ${index}`;
    const run = async () => {
      const request: PolicyRequest = Object.freeze({
        args,
        now: this.#host.clock(),
        state: this.#state.get(key) ?? null,
        approvals,
        layer: context.view,
        reputation: context.reputation,
      });
      const verdict = asVerdict(await this.#host.runPolicy(policy, caller, request));
      if (verdict.state !== undefined) {
        this.#state.set(key, verdict.state);
        this.#host.stateChanged(layer.token, index, verdict.state);
      }
      return verdict;
    };
    const previous = this.#queues.get(key);
    const next = previous ? previous.then(run, run) : run();
    this.#queues.set(key, next);
    // Keep the queue short: the last call to finish clears it.
    void next.then(
      () => this.#queues.get(key) === next && this.#queues.delete(key),
      () => this.#queues.get(key) === next && this.#queues.delete(key),
    );
    return next;
  }
}
