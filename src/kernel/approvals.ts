/**
 * Calls waiting for approvals: a delegation's policy said `wait`, and the
 * call became a further promise with a fresh token. Approvers call that
 * token with "approve"; the caller calls it to collect the answer. Waiting
 * calls live in memory only (a restart ends them), bounded per node and
 * per caller, and each is forgotten PENDING_TTL_MS after it began.
 */
import { CID } from 'multiformats/cid';
import { DAG_CBOR_CODEC, type Principal, type Token } from '../interface/ids.js';
import { blockCid } from '../store/hashing.js';
import { aborted, onAbort } from '../interface/cancel.js';
import { failed, fulfilled, promised, revoked, type Outcome } from '../interface/outcome.js';
import type { Closure } from '../closures/closure.js';
import { decodeValue, type GridValue } from '../closures/values.js';
import { encode } from '../wire/index.js';
import { verifyChain, type Delegation } from '../delegation/delegation.js';
import type { Position, Screening, Screens } from '../delegation/screen.js';
import { REMOTE_GRACE_MS, type CallFrame, type PendingView } from './types.js';

/** How long a call may wait for approvals, and how long its answer is kept for its caller after. */
const PENDING_TTL_MS = 60 * 60 * 1000;
/** Most calls that may wait for approvals on one node at once. */
const MAX_PENDING_CALLS = 10_000;

/** A call through a delegation, screened: what waits, and what goes ahead once approved. */
export interface ScreenedCall {
  readonly chain: readonly Delegation[];
  readonly root: Closure;
  readonly caller: Principal;
  readonly args: readonly GridValue[];
  /** The call's journal record. */
  readonly call: number;
}

/** A call waiting for approvals: a further promise whose token is `token`. */
interface PendingCall extends ScreenedCall {
  readonly token: Token;
  at: Position;
  /** Approvals that counted (or, under a policy that names no approvers, every approval). */
  readonly approvals: Set<Principal>;
  /** Whose approval the policy it waits on counts, if it names them; why it waits. */
  approvers: ReadonlySet<Principal> | undefined;
  reason: string;
  /** When it began to wait. */
  readonly since: number;
  /** Approvals are applied one at a time. */
  turn: Promise<void>;
  settled?: Outcome;
  readonly settle: (outcome: Outcome) => void;
  readonly done: Promise<Outcome>;
  /** Stops its timer: a waiting call is kept PENDING_TTL_MS, then forgotten (revoked if still waiting). */
  cancelExpiry: () => void;
}

export type Approvals = ReturnType<typeof makeApprovals>;

export const makeApprovals = ({
  clock,
  setTimer,
  randomBytes,
  callTimeoutMs,
  maxWaitingPerCaller,
  screens,
  revokedReason,
  proceed,
}: {
  clock: () => number;
  setTimer: (ms: number, callback: () => void) => () => void;
  randomBytes: (length: number) => Uint8Array;
  callTimeoutMs: number;
  maxWaitingPerCaller: number;
  screens: Screens;
  revokedReason: (token: Token) => string | undefined;
  /** Act on a screening that no longer says wait (the call pipeline's). */
  proceed: (screening: Screening, call: ScreenedCall, frame: CallFrame) => Promise<Outcome>;
}) => {
  const pending = new Map<Token, PendingCall>();
  /** Calls in `pending` not answered yet (answered ones stay a while for their callers to collect), in all and per caller. */
  let waiting = 0;
  const waitingBy = new Map<Principal, number>();

  /** End a waiting call whose chain no longer holds; true if it has ended (now or before). */
  const endIfRevoked = (call: PendingCall): boolean => {
    if (call.settled) return true;
    try {
      verifyChain(call.chain, call.root, revokedReason);
      return false;
    } catch (error) {
      call.settle(failed(error));
      return true;
    }
  };

  /** Screen a waiting call again with the approvals it has; proceed if every policy now lets it. */
  const resume = async (call: PendingCall) => {
    if (endIfRevoked(call)) return;
    const screening = await screens.screen(call.chain, call.caller, call.args, call.at, [...call.approvals]);
    if (screening.kind === 'wait') {
      call.at = screening.at;
      call.approvers = screening.approvers && new Set(screening.approvers);
      call.reason = screening.reason;
      return;
    }
    const frame: CallFrame = { caller: call.caller, path: [], depth: 0, parent: call.call, deadline: clock() + callTimeoutMs };
    call.settle(await proceed(screening, call, frame));
  };

  return harden({
    has: (token: Token) => pending.has(token),

    /** Park a call that waits for approvals; its further promise is a fresh token. */
    wait(call: ScreenedCall, screening: Extract<Screening, { kind: 'wait' }>): Outcome {
      if (waiting >= MAX_PENDING_CALLS) return revoked('quota', `too many calls wait for approval here (limit ${MAX_PENDING_CALLS})`);
      const mine = waitingBy.get(call.caller) ?? 0;
      if (mine >= maxWaitingPerCaller) return revoked('quota', `${call.caller} has ${mine} calls waiting for approval here (limit ${maxWaitingPerCaller} per caller)`);
      const token = blockCid(encode({ pending: CID.parse(call.chain[0]!.token), nonce: randomBytes(16) }), DAG_CBOR_CODEC).toString() as Token;
      let resolve!: (outcome: Outcome) => void;
      const done = new Promise<Outcome>((r) => (resolve = r));
      const parked: PendingCall = {
        ...call,
        token,
        at: screening.at,
        approvals: new Set(),
        approvers: screening.approvers && new Set(screening.approvers),
        reason: screening.reason,
        since: clock(),
        turn: Promise.resolve(),
        done,
        settle: (outcome) => {
          if (parked.settled) return;
          parked.settled = outcome;
          waiting -= 1;
          const left = (waitingBy.get(parked.caller) ?? 1) - 1;
          if (left > 0) waitingBy.set(parked.caller, left);
          else waitingBy.delete(parked.caller);
          resolve(outcome);
        },
        cancelExpiry: setTimer(PENDING_TTL_MS, () => {
          parked.settle(revoked('expired', `no approval within ${PENDING_TTL_MS / 60_000} minutes`));
          pending.delete(token);
        }),
      };
      pending.set(token, parked);
      waiting += 1;
      waitingBy.set(call.caller, mine + 1);
      return promised(token);
    },

    /**
     * A call on a waiting call's token: `"approve"` from one of the approvers
     * the waiting policy names counts them as approving (from anyone else it
     * is refused, and never listed); from the caller who made the call,
     * anything else waits for its answer until the deadline (a forwarded
     * call, until a little before it, so that the answer reaches the node that
     * forwarded it in time), then is the same further promise again.
     */
    async answer(token: Token, argsBytes: Uint8Array, frame: CallFrame): Promise<Outcome> {
      const call = pending.get(token)!;
      const args = decodeValue(argsBytes) as GridValue[];
      // A layer revoked while the call waited ends it, whoever asks.
      endIfRevoked(call);
      if (args.length === 1 && args[0] === 'approve') {
        if (call.settled === undefined) {
          if (call.approvers && !call.approvers.has(frame.caller)) return revoked('denied', `${frame.caller} is not one of the approvers this call waits for`);
          call.approvals.add(frame.caller);
          call.turn = call.turn.then(() => resume(call));
          await call.turn;
        }
        // `status`: still `waiting`, or how the call ended once it could go ahead (or was refused).
        return fulfilled(harden({ approvedBy: [...call.approvals], status: call.settled?.status ?? 'waiting' }));
      }
      if (frame.caller !== call.caller) return revoked('denied', `only ${call.caller}, who made the call, can collect its answer`);
      if (call.settled) return call.settled;
      const outcome = await new Promise<Outcome | undefined>((resolve) => {
        const margin = frame.path.length > 0 ? Math.min(REMOTE_GRACE_MS, callTimeoutMs / 2) : 0;
        const cancel = setTimer(Math.max(0, frame.deadline - margin - clock()), () => resolve(undefined));
        // The caller stops waiting for the answer; the call itself still waits for its approvals.
        const stop = () => {
          cancel();
          resolve(aborted(frame.signal));
        };
        const stopListening = frame.signal ? onAbort(frame.signal, stop) : () => {};
        void call.done.then((settled) => {
          cancel();
          stopListening();
          resolve(settled);
        });
      });
      return outcome ?? promised(call.token);
    },

    /**
     * The calls waiting here for approvals that concern `principal`: those it
     * may approve (the waiting policy names it and it has not approved yet)
     * and those it made (to collect). A policy that names no approvers shows
     * its calls to their callers only.
     */
    pendingFor(principal: Principal): PendingView[] {
      const views: PendingView[] = [];
      for (const call of pending.values()) {
        if (call.settled || endIfRevoked(call)) continue;
        const approver = call.approvers?.has(principal) === true && !call.approvals.has(principal);
        if (!approver && call.caller !== principal) continue;
        views.push(
          harden({
            token: call.token,
            delegation: call.chain[0]!.token,
            caller: call.caller,
            args: call.args,
            reason: call.reason,
            approvers: [...(call.approvers ?? [])],
            approvedBy: [...call.approvals],
            since: call.since,
            yours: approver ? 'approve' : 'collect',
          }),
        );
      }
      return views;
    },

    /** End every waiting call: the kernel is closing. */
    close() {
      for (const call of pending.values()) {
        call.cancelExpiry();
        call.settle(revoked('shut-down', 'kernel is closed'));
      }
    },
  });
};
