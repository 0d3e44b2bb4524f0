/**
 * Delegation policies at work: each screening runs a chain's policies
 * (delegation/screen.ts), a shipped policy in the kernel's own thread, any
 * other in a vat. The state policies keep between calls (a rate window, a
 * quota count) is journaled at most every POLICY_STATE_MS, the latest of
 * each that changed — a record per call would cost more than the screening
 * — and read back from those records (`apply`). A crash loses at most that
 * much of it.
 */
import { CID } from 'multiformats/cid';
import { DAG_CBOR_CODEC, type Principal, type Token } from '../interface/ids.js';
import { blockCid } from '../store/hashing.js';
import type { Closure } from '../closures/closure.js';
import { decodeValue, encodeValue, type GridValue } from '../closures/values.js';
import type { Entry, Journal } from '../journal/journal.js';
import type { Reputation } from '../journal/reputation.js';
import { decode, encode } from '../wire/index.js';
import type { PolicyRef } from '../delegation/delegation.js';
import { Screens, type PolicyRequest } from '../delegation/screen.js';
import type { VatPool } from '../vat/pool.js';
import type { VatOutcome } from '../vat/protocol.js';
import { revoked } from '../interface/outcome.js';
import type { ModuleTable } from './module-table.js';

/** How often changed policy state is written to the journal. */
const POLICY_STATE_MS = 100;

export type Policies = ReturnType<typeof makePolicies>;

export const makePolicies = ({
  modules,
  vats,
  journal,
  clock,
  setTimer,
  callTimeoutMs,
  reputation,
  issuerOf,
}: {
  modules: ModuleTable;
  vats: VatPool;
  journal: Journal;
  clock: () => number;
  setTimer: (ms: number, callback: () => void) => () => void;
  callTimeoutMs: number;
  reputation: (principal: Principal) => Reputation;
  issuerOf: (token: Token) => Principal | undefined;
}) => {
  const changed = new Map<string, { layer: Token; index: number; state: GridValue }>();
  /** The latest state of each policy as journaled: what a restart (replay or snapshot) starts from. */
  const journaled = new Map<string, { layer: Token; index: number; state: GridValue }>();
  let timer: (() => void) | undefined;

  const writeStates = () => {
    timer?.();
    timer = undefined;
    for (const { layer, index, state } of changed.values()) journal.append({ kind: 'policy-state', token: layer, index, state });
    changed.clear();
  };

  /**
   * One policy's verdict. Shipped policies are the node's own code and run
   * in its thread (no vat hop: a layer costs microseconds); any other policy
   * is untrusted and runs in a vat, within the node's time limit.
   */
  const runPolicy = async (policy: PolicyRef, caller: Principal, request: PolicyRequest): Promise<unknown> => {
    await modules.loadPolicy(policy.module);
    if (modules.isShipped(policy.module)) {
      const screen = modules.runner.instantiate(policy.module).screen as (ctx: object, request: PolicyRequest) => unknown;
      return screen(Object.freeze({ caller, env: policy.settings }), request);
    }
    const record = encode({ policy: CID.parse(policy.module), settings: decode(encodeValue(policy.settings)) });
    const closure: Closure = harden({
      token: blockCid(record, DAG_CBOR_CODEC).toString() as Token,
      code: policy.module,
      export: 'screen',
      env: policy.settings,
      issuer: caller,
    });
    const refuse = async (): Promise<VatOutcome> => revoked('denied', 'a policy cannot call or issue');
    const { answer } = await vats.run({ closure, args: encodeValue([request]), caller, timeLimitMs: callTimeoutMs, call: refuse, issue: refuse, log: () => {} });
    if (answer.status !== 'fulfilled') throw new Error(answer.status === 'revoked' ? answer.reason : 'it answered with a further promise');
    return decodeValue(answer.value);
  };

  const screens = new Screens({
    clock,
    runPolicy,
    reputation,
    issuerOf,
    stateChanged: (layer, index, state) => {
      changed.set(`${layer} ${index}`, { layer, index, state });
      timer ??= setTimer(POLICY_STATE_MS, writeStates);
    },
  });

  return harden({
    screens,
    apply(entry: Entry) {
      if (entry.kind === 'policy-state') {
        journaled.set(`${entry.token} ${entry.index}`, { layer: entry.token, index: entry.index, state: entry.state });
        screens.restore(entry.token, entry.index, entry.state);
      }
    },
    /** The states the journal holds, the latest per policy (kernel/snapshot.ts): not those changed since and not yet written. */
    snapshot: () => [...journaled.values()],
    restore(states: ReadonlyArray<{ layer: Token; index: number; state: GridValue }>) {
      for (const { layer, index, state } of states) {
        journaled.set(`${layer} ${index}`, { layer, index, state });
        screens.restore(layer, index, state);
      }
    },
    /** Journal the state changed since the last write, now (at a flush or close). */
    writeStates,
  });
};
