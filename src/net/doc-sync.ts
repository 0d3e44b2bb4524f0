/// <reference types="ses" />
/**
 * Documents over a node's sessions (the rules of who gets what are in
 * docs/sync.ts; the frames in frames.ts).
 *
 * When to pull. A node pulls every document it follows (one it issued, or
 * one a followed token reaches) from a node it dials as soon as the session
 * is up, and pulls back from a peer that pulled a document from it (once per
 * session): so after a link comes back, both sides have each other's
 * versions without anyone asking. While connected, a replica whose heads
 * change sends a small `doc-heads` notice to the sessions that synced that
 * document with it (either way), and the peer pulls if it lacks one of
 * those heads. To a peer whose own sync request it answered, the notice
 * also pushes the versions that made the new heads — built and screened
 * exactly as an answer to that request would be, up to PUSH_MAX_BLOCKS
 * blocks and MAX_PUSH_BYTES — so an edit reaches a live replica in one
 * message; the peer takes them as it takes a pulled bundle, and pulls only
 * if it still lacks a head.
 * Notices, not a periodic pull: a change reaches a connected peer in one
 * round trip, an idle document costs nothing, and what a notice can miss —
 * a change made while the link was down — is what the pull on connecting
 * fetches. A pull repeats while the answer says `more` and brought
 * something new, at most MAX_ROUNDS times. A token followed whose document
 * no peer held yet is asked for again every FOLLOW_RETRY_MS.
 *
 * Bounds. A peer's requests are answered one at a time (MAX_QUEUED more wait,
 * past that `quota`); each answer is bounded in versions and bytes
 * (docs/sync.ts). Pulls to one peer go one at a time; a notice for a
 * document already being pulled from that peer only marks it to pull once
 * more. Notices go only to peers that showed they hold the document (a
 * request of theirs for it was answered, or they answered one), and are sent to sessions known to
 * speak sync (nodes this node dialled, or that sent a sync request or
 * notice), never to a command-line client.
 */
import type { Principal, Token } from '../interface/ids.js';
import { describeThrown } from '../interface/errors.js';
import { revoked, type Outcome, type RevokeCode } from '../interface/outcome.js';
import type { Kernel } from '../kernel/kernel.js';
import { bundleFrom, SyncRefusal } from '../docs/sync.js';
import type { Bundle } from '../docs/documents.js';
import { encodeBulkValue } from '../closures/values.js';
import { decodePushed, MAX_HAVES, MAX_PUSH_BYTES, PUSH_MAX_BLOCKS, type DocSyncRequest } from './frames.js';
import { laterTurn, type Session } from './session.js';
import { silentLog, type Log } from './log.js';

/** How long one sync request (or a closure fetch on a first sync) may take. */
export const SYNC_TIMEOUT_MS = 30_000;
/** Most requests one pull makes while the answers say `more`. */
export const MAX_ROUNDS = 64;
/** Sync requests from one peer that may wait while one of its requests is answered. */
export const MAX_QUEUED = 8;
/** How often a token followed but not yet answered by any peer (none held its document) is asked for again: doubling up to MAX_FOLLOW_RETRY_MS. */
export const FOLLOW_RETRY_MS = 5_000;
const MAX_FOLLOW_RETRY_MS = 5 * 60_000;
/** After a pull from a peer brought nothing new, its notices for that document wait this long before the next pull (a peer flooding notices gets a pull a second). */
export const NOTICE_QUIET_MS = 1_000;
/** How long a revocation waits for each peer syncing the document to acknowledge it. */
const REVOCATION_ACK_MS = 2000;

/** What a pull did: versions taken, refused with reasons, or the whole pull refused (`code`, `reason`). */
export interface PullReport {
  readonly doc?: string;
  readonly accepted: number;
  readonly refused: ReadonlyArray<{ version: string; reason: string }>;
  readonly rounds: number;
  readonly code?: RevokeCode;
  readonly reason?: string;
}

/** What a node syncs: a document (it issued it, or its token is known) and the token it presents. */
export interface SyncTarget {
  readonly doc?: string;
  readonly token?: Token;
}

export type DocSync = ReturnType<typeof makeDocSync>;

export const makeDocSync = (kernel: Kernel, logOf: () => Log = () => silentLog) => {
  let closed = false;
  /** Sessions that speak sync. */
  const capable = new Set<Session>();
  /** Document → sessions that synced it from this node: they hear its heads change. */
  const subscribers = new Map<string, Set<Session>>();
  /**
   * Per session: documents pulled on it (not pulled back again), the pull queue, pulls queued or running by target;
   * the token each document was asked for with (a push is screened as an answer to it), the heads the peer last told
   * of each, the notices going out to it, in order, and until when its pushes of a document are ignored (one of them
   * brought nothing: kept apart from its pulls' quiet, which a pull that found nothing new sets in the ordinary course).
   */
  const sessions = new WeakMap<
    Session,
    { pulled: Set<string>; pulledBack: Set<string>; active: Set<string>; quietUntil: Map<string, number>; delayed: Set<string>; queue: Promise<unknown>; pulls: Map<string, { again: boolean }>; askedWith: Map<string, Token | undefined>; told: Map<string, readonly string[]>; notices: Promise<unknown>; pushesQuietUntil: Map<string, number> }
  >();
  /** Per peer: its sync requests being answered or waiting here. */
  const serving = new Map<Principal, { count: number; turn: Promise<unknown> }>();
  /** Documents whose heads changed this turn: one notice each, with the heads they had before the turn (when known). */
  const changed = new Map<string, { heads: readonly string[]; before?: readonly string[] }>();
  /** The heads of each document with subscribers, as last journaled: what a push's versions are built on. */
  const lastHeads = new Map<string, readonly string[]>();

  const stateOf = (session: Session) => {
    let state = sessions.get(session);
    if (!state) {
      sessions.set(session, (state = { pulled: new Set(), pulledBack: new Set(), active: new Set(), quietUntil: new Map(), delayed: new Set(), queue: Promise.resolve(), pulls: new Map(), askedWith: new Map(), told: new Map(), notices: Promise.resolve(), pushesQuietUntil: new Map() }));
      capable.add(session);
      void session.closed.then(() => {
        capable.delete(session);
        for (const set of subscribers.values()) set.delete(session);
      });
    }
    return state;
  };

  const subscribe = (doc: string, session: Session) => {
    let set = subscribers.get(doc);
    if (!set) subscribers.set(doc, (set = new Set()));
    set.add(session);
    if (!lastHeads.has(doc)) {
      const heads = kernel.docs.held().find((held) => held.doc === doc)?.heads;
      if (heads) lastHeads.set(doc, heads);
    }
  };

  const targetFor = (doc: string): SyncTarget | undefined => kernel.docs.following().find((target) => target.doc === doc);

  /** Take a bundle `session`'s peer sent (pulled or pushed), as presented with `token`; the closures it needs are fetched from that peer. */
  const takeFrom = (session: Session, bundle: Bundle, token: Token | undefined) =>
    kernel.syncTake(bundle, { ...(token === undefined ? {} : { token }), from: session.peer, fetch: (needed) => session.fetch(needed, SYNC_TIMEOUT_MS) });

  /** A line for what a pull or a push brought, if anything. */
  const logTaken = (session: Session, doc: string | undefined, { accepted, refused }: { accepted: number; refused: ReadonlyArray<{ reason: string }> }, what: string) => {
    if (accepted === 0 && refused.length === 0) return;
    logOf().info({ event: 'doc-synced', peer: session.peer, doc, accepted, refused: refused.length }, `took ${accepted} ${what} of ${doc} from ${session.peer}${refused.length ? `, refused ${refused.length}: ${refused[0]!.reason}` : ''}`);
  };

  /** One pull of `target` from `session`'s peer: requests while the answers say `more` and bring something. Never throws. */
  const pullOnce = async (session: Session, target: SyncTarget): Promise<PullReport> => {
    const state = stateOf(session);
    let { doc } = target;
    const { token } = target;
    let accepted = 0;
    const refused: Array<{ version: string; reason: string }> = [];
    let rounds = 0;
    const report = (extra: { code?: RevokeCode; reason?: string } = {}): PullReport => {
      const done = { ...(doc === undefined ? {} : { doc }), accepted, refused, rounds, ...extra };
      if (doc !== undefined && accepted === 0) state.quietUntil.set(doc, Date.now() + NOTICE_QUIET_MS);
      if (extra.code) logOf().info({ event: 'doc-sync-refused', peer: session.peer, doc, code: extra.code }, `sync of ${doc ?? token} with ${session.peer} refused (${extra.code}): ${extra.reason}`);
      else logTaken(session, doc, { accepted, refused }, 'versions');
      return harden(done);
    };
    const marks = [target.doc, token].filter((mark): mark is string => mark !== undefined && !state.active.has(mark));
    for (const mark of marks) state.active.add(mark);
    /** Ask for a bundle; `tips` (the last bundle's, still being checked) are named first among the haves. */
    const ask = async (tips: readonly string[] = []): Promise<Outcome> => {
      const chain = token !== undefined && !(doc !== undefined && state.pulled.has(doc)) ? await kernel.chainBlocks(token) : undefined;
      const haves = doc === undefined ? [] : await kernel.syncHaves(doc, MAX_HAVES);
      const request: DocSyncRequest = {
        ...(token === undefined ? {} : { token }),
        ...(doc === undefined ? {} : { doc }),
        haves: [...new Set([...tips, ...haves])].slice(0, MAX_HAVES),
        ...(chain ? { chain } : {}),
      };
      return session.docSync(request, SYNC_TIMEOUT_MS);
    };
    /** The next bundle, asked for while the one before it is checked (its tips as haves): the peer builds it meanwhile. */
    let next: Promise<Outcome> | undefined;
    try {
      while (rounds < MAX_ROUNDS && !closed) {
        rounds += 1;
        const asked = next ?? ask();
        next = undefined;
        const outcome: Outcome = await asked;
        if (outcome.status !== 'fulfilled') {
          return report(outcome.status === 'revoked' ? { code: outcome.code, reason: outcome.reason } : { code: 'malformed', reason: 'a further promise where a bundle was due' });
        }
        const bundle = bundleFrom(outcome.value, doc);
        if (bundle.more && bundle.tips && rounds < MAX_ROUNDS) {
          doc ??= bundle.doc;
          next = ask(bundle.tips);
          // Not awaited if this bundle ends the pull: its failure is no one's.
          next.catch(() => {});
        }
        const taken = await takeFrom(session, bundle, token);
        doc = taken.doc;
        state.pulled.add(doc);
        // The peer holds the document (it just answered for it): it hears of this side's heads from now on too.
        subscribe(doc, session);
        accepted += taken.accepted;
        refused.push(...taken.refused);
        if (!bundle.more || taken.accepted === 0) break;
      }
      return report();
    } catch (error) {
      return report(error instanceof SyncRefusal ? { code: error.code, reason: error.message } : { code: 'internal', reason: describeThrown(error) });
    } finally {
      for (const mark of marks) state.active.delete(mark);
    }
  };

  /** Pull `target` from `session`'s peer in turn with its other pulls; one already waiting is marked to run once more instead. */
  const pull = (session: Session, target: SyncTarget): void => {
    if (closed) return;
    const state = stateOf(session);
    const key = target.doc ?? target.token!;
    const queued = state.pulls.get(key);
    if (queued) return void (queued.again = true);
    const entry = { again: false };
    state.pulls.set(key, entry);
    const run = async () => {
      do {
        entry.again = false;
        await pullOnce(session, target.doc === undefined ? (kernel.docs.following().find((f) => f.token === target.token) ?? target) : target);
      } while (entry.again && !closed);
      state.pulls.delete(key);
    };
    state.queue = state.queue.then(run, run);
  };

  /**
   * The versions on top of `before` as a push to `session`'s peer: the bundle its own request for `doc` would be
   * answered with (screened the same way, so a peer whose token was revoked gets none), if it is small enough.
   */
  const pushFor = async (session: Session, doc: string, before: readonly string[]): Promise<Uint8Array | undefined> => {
    const asked = stateOf(session).askedWith;
    if (!asked.has(doc)) return undefined;
    const token = asked.get(doc);
    const outcome = await kernel.syncBundle({ ...(token === undefined ? {} : { token }), doc, haves: before }, session.peer);
    if (outcome.status !== 'fulfilled') return undefined;
    const { blocks, more } = outcome.value as { blocks: readonly unknown[]; more: boolean };
    if (more || blocks.length > PUSH_MAX_BLOCKS) return undefined;
    const bytes = encodeBulkValue(outcome.value);
    return bytes.length <= MAX_PUSH_BYTES ? bytes : undefined;
  };

  const notify = () => {
    const docs = [...changed];
    changed.clear();
    for (const [doc, { heads, before }] of docs) {
      for (const session of subscribers.get(doc) ?? []) {
        const state = stateOf(session);
        // The peer told of these very heads (the versions came from it): nothing to tell it.
        const told = state.told.get(doc);
        if (told && heads.every((head) => told.includes(head))) continue;
        const send = async () => session.docHeads(doc, heads, before && (await pushFor(session, doc, before).catch(() => undefined)));
        state.notices = state.notices.then(send, send);
      }
    }
  };

  kernel.journal.onAppend((entry) => {
    if (closed) return;
    if (entry.kind === 'doc-head' && subscribers.has(entry.doc)) {
      if (changed.size === 0) laterTurn(notify);
      const before = changed.get(entry.doc)?.before ?? lastHeads.get(entry.doc);
      changed.set(entry.doc, { heads: entry.heads, ...(before ? { before } : {}) });
      lastHeads.set(entry.doc, entry.heads);
    } else if (entry.kind === 'doc-token') {
      // A token newly followed, or its document newly known: ask every peer that speaks sync.
      for (const session of capable) {
        // Not the peer being pulled from with this token right now: that pull goes on by itself.
        const active = sessions.get(session)?.active;
        if (active?.has(entry.token) || (entry.doc !== undefined && active?.has(entry.doc))) continue;
        pull(session, entry.doc === undefined ? { token: entry.token } : { doc: entry.doc, token: entry.token });
      }
    }
  });
  // A delegation of a document revoked (here, or heard): the peers that sync that document hear it now, not at their next pull.
  const stopListening = kernel.onRevocation(async (notice) => {
    if (closed) return;
    const doc = await kernel.syncDocOf(notice.token);
    const told = doc === undefined ? [] : [...(subscribers.get(doc) ?? [])].map((session) => session.revoke(notice, REVOCATION_ACK_MS));
    await Promise.all(told);
  });
  const retries = new Map<Token, { wait: number; at: number }>();
  const retry = setInterval(() => {
    for (const target of kernel.docs.following()) {
      if (target.doc !== undefined || target.token === undefined) continue;
      const next = retries.get(target.token) ?? { wait: FOLLOW_RETRY_MS, at: 0 };
      if (Date.now() < next.at) continue;
      retries.set(target.token, { wait: Math.min(next.wait * 2, MAX_FOLLOW_RETRY_MS), at: Date.now() + next.wait });
      for (const session of capable) pull(session, target);
    }
  }, FOLLOW_RETRY_MS);
  (retry as { unref?: () => void }).unref?.(); // a browser's timers have no unref

  return harden({
    pull,
    pullOnce,

    /**
     * A session is up: pull everything followed here from a node this node
     * dialled. A peer that dialled here is asked too when something is
     * followed later (it may be the only peer there is).
     */
    track(session: Session, dialled: boolean) {
      if (closed) return;
      stateOf(session);
      if (dialled) for (const target of kernel.docs.following()) pull(session, target);
    },

    /** Answer a peer's sync request (in turn with its others), and pull back from it once. */
    async serve(request: DocSyncRequest, session: Session): Promise<Outcome> {
      const state = stateOf(session);
      const peer = session.peer;
      const load = serving.get(peer) ?? { count: 0, turn: Promise.resolve() };
      if (load.count > MAX_QUEUED) return revoked('quota', `too many sync requests in flight (limit ${MAX_QUEUED + 1} per peer)`);
      load.count += 1;
      serving.set(peer, load);
      const answer = async () => {
        try {
          return await kernel.syncBundle(request, peer);
        } finally {
          load.count -= 1;
          if (load.count === 0 && serving.get(peer) === load) serving.delete(peer);
        }
      };
      const running = load.turn.then(answer, answer);
      load.turn = running.catch(() => {});
      const outcome = await running;
      if (outcome.status !== 'fulfilled') {
        logOf().info({ event: 'doc-sync-refused', peer, code: outcome.status === 'revoked' ? outcome.code : 'other' }, `sync request from ${peer} refused: ${outcome.status === 'revoked' ? outcome.reason : outcome.status}`);
        return outcome;
      }
      const doc = (outcome.value as { doc: string }).doc;
      subscribe(doc, session);
      state.askedWith.set(doc, request.token);
      const mine = targetFor(doc);
      if (mine && !state.pulled.has(doc) && !state.pulledBack.has(doc)) {
        state.pulledBack.add(doc);
        pull(session, mine);
      }
      return outcome;
    },

    /** The documents `session`'s peer syncs with this node (it asked for them, or answered for them). */
    docsOf: (session: Session): string[] => [...subscribers].filter(([, synced]) => synced.has(session)).map(([doc]) => doc),

    /**
     * A peer's heads of `doc` changed: if this node follows `doc` and lacks one of them, take the versions the
     * peer pushed with the notice, if any, then pull if one is still lacking.
     */
    async heard(doc: string, heads: readonly string[], session: Session, pushed?: Uint8Array) {
      const state = stateOf(session);
      const mine = targetFor(doc);
      if (!mine || closed) return;
      state.told.set(doc, heads);
      // Heads this node holds already (its own, or ones it has built on) need no pull.
      const lacking = async () => {
        for (const head of heads) if (!(await kernel.syncKnows(head))) return true;
        return false;
      };
      if (!(await lacking())) return;
      if (pushed) {
        const { token } = mine;
        const take = async () => {
          // A push that brought nothing quiets this peer's pushes of `doc`, as a pull that brought nothing quiets its pulls.
          if ((state.pushesQuietUntil.get(doc) ?? 0) > Date.now()) return;
          let accepted = 0;
          try {
            const taken = await takeFrom(session, bundleFrom(decodePushed(pushed), doc), token);
            accepted = taken.accepted;
            logTaken(session, doc, taken, 'pushed versions');
          } catch (error) {
            logOf().info({ event: 'doc-sync-refused', peer: session.peer, doc }, `versions of ${doc} pushed by ${session.peer} refused: ${describeThrown(error)}`);
          }
          if (accepted === 0) state.pushesQuietUntil.set(doc, Date.now() + NOTICE_QUIET_MS);
        };
        // In turn with this peer's pulls: a push and a pull of the same versions are not checked side by side.
        await (state.queue = state.queue.then(take, take));
        if (!(await lacking())) return;
      }
      const wait = (state.quietUntil.get(doc) ?? 0) - Date.now();
      if (wait <= 0) return pull(session, mine);
      // The last pull from this peer brought nothing: the next one waits (once), however many notices come.
      if (state.delayed.has(doc)) return;
      state.delayed.add(doc);
      const timer = setTimeout(() => {
        state.delayed.delete(doc);
        pull(session, mine);
      }, wait);
      (timer as { unref?: () => void }).unref?.();
    },

    close() {
      closed = true;
      clearInterval(retry);
      stopListening();
    },
  });
};
