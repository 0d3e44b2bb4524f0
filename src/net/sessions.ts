/// <reference types="ses" />
/**
 * The node's side of its sessions, apart from any server: what a node —
 * or a tab node, which dials one node and listens nowhere (join.ts) — does
 * with the connections it has, inbound or outbound.
 */
import { E, Far } from '@endo/far';
import { base64 } from 'multiformats/bases/base64';
import type { Principal } from '../interface/ids.js';
import type { Kernel } from '../kernel/kernel.js';
import { describeThrown } from '../interface/errors.js';
import { revoked } from '../interface/outcome.js';
import { MAX_CAPTP_VALUES_TRUSTED, PeerLoad, type Session, type SessionHandlers } from './session.js';
import { silentLog, type Log } from './log.js';
import type { AddressBook, AddressRecord } from './addresses.js';
import { makeDocSync, type DocSync } from './doc-sync.js';
import { AnnounceError, makeHostedTokens, MAX_ANNOUNCED, type HostedTokens } from './hosted.js';

/** Refusal lines one connection may leave in the log per REFUSAL_LOG_WINDOW_MS (the rest at debug). */
export const MAX_LOGGED_REFUSALS = 20;
const REFUSAL_LOG_WINDOW_MS = 60_000;

/**
 * A facet's methods, each turning a failure into a refusal that crosses
 * CapTP as data — `{ name, code, message }`, which the other side reads as
 * it would an Error's — and leaves one line in the log. A thrown Error would
 * be logged by CapTP's marshaller, stack and all, on every send ("Temporary
 * logging of sent error"): a refused invitation is an ordinary event, not a
 * crash. A refusal with a `code` is logged at info; anything else (a bug) at
 * warn; the stack only at debug. A connection gets MAX_LOGGED_REFUSALS lines
 * a minute at most, then one saying the rest go to debug: a stranger cannot
 * turn bad requests into a flood of log lines.
 */
export const refusing = <T extends Record<string, (...args: never[]) => unknown>>(methods: T, log: Log, peer: Principal, clock: () => number = Date.now): T => {
  const wrapped: Record<string, (...args: never[]) => Promise<unknown>> = {};
  let windowStart = clock();
  let logged = 0;
  const lineFor = (): 'line' | 'last' | 'debug' => {
    if (clock() - windowStart >= REFUSAL_LOG_WINDOW_MS) {
      windowStart = clock();
      logged = 0;
    }
    logged += 1;
    return logged < MAX_LOGGED_REFUSALS ? 'line' : logged === MAX_LOGGED_REFUSALS ? 'last' : 'debug';
  };
  for (const [method, fn] of Object.entries(methods)) {
    wrapped[method] = async (...args: never[]) => {
      try {
        return await fn(...args);
      } catch (thrown) {
        const message = describeThrown(thrown);
        const code = (thrown as { code?: unknown } | undefined)?.code;
        const coded = typeof code === 'string';
        const fields = { event: 'refused', method, peer, err: thrown };
        const line = lineFor();
        if (line === 'debug') log.debug(fields, `${method} refused: ${message}`);
        else if (coded) log.info(fields, `${method} refused: ${message}`);
        else log.warn(fields, `${method} refused: ${message}`);
        if (line === 'last') log.info({ event: 'refusals-quieted', peer }, `${MAX_LOGGED_REFUSALS} refusals for ${peer} within a minute: further ones are logged at debug`);
        throw harden({ name: coded ? (thrown as Error).name : 'Error', code: coded ? code : 'ERR_INTERNAL', message });
      }
    };
  }
  return wrapped as T;
};

/** A tab node connected to this node, as the node's page shows it. */
export interface TabPeer {
  readonly principal: Principal;
  /** Closures it announced: calls on them are routed to it. */
  readonly closures: number;
  /** Documents (genesis CIDs) it syncs with this node. */
  readonly docs: readonly string[];
}

/** How long a revocation waits for each peer that must hear it to acknowledge. */
const REVOCATION_ACK_MS = 2000;

/**
 * The node's side of its sessions, inbound and outbound alike: it answers
 * the peer's calls (a forwarded call names the nodes it passed, ending with
 * this peer), believes the revocations the kernel finds credible, and makes
 * sure every peer that was given cacheable answers hears of their tokens'
 * revocations — those that happened while it was away as soon as it
 * connects, later ones before `revoke` returns (or the peer drops).
 */
export class NodeSessions {
  readonly #kernel: Kernel;
  readonly #live = new Set<Session>();
  /** What each peer has in flight here, across all its sessions (session.ts MAX_CALLS_PER_PEER). */
  readonly load = new PeerLoad();
  readonly #stopListening: () => void;
  #addresses?: AddressBook;
  #isKept: (principal: Principal) => boolean = () => false;
  #log: Log = silentLog;
  /**
   * Sessions with a node at the other end, told when a peer of this node
   * moves: those this node dialled, and inbound ones from peers it keeps
   * that said where they listen. (Not a CLI's session: it offers nothing to call.)
   */
  readonly #nodes = new Set<Session>();
  /** Of those, the ones this node dialled: they hear this node's own address as soon as it has one. */
  readonly #dialled = new Set<Session>();
  /** Documents synced over these sessions (doc-sync.ts). */
  readonly docSync: DocSync;
  /** The latest session of each principal connected: where calls on the tokens it announced go. */
  readonly #latest = new Map<Principal, Session>();
  /** Tokens answered at the other end of a session this node did not dial (hosted.ts): a tab's closures. */
  readonly hosted: HostedTokens;
  /** Inbound sessions whose peer said where it listens: nodes, not tabs. */
  readonly #listening = new WeakSet<Session>();
  readonly #onDialled: Array<(session: Session) => void> = [];

  constructor(kernel: Kernel, log: Log = silentLog) {
    this.#kernel = kernel;
    this.#log = log;
    this.docSync = makeDocSync(kernel, () => this.#log);
    this.hosted = makeHostedTokens({ sessionOf: (principal) => this.#latest.get(principal), clock: Date.now });
    this.#stopListening = kernel.onRevocation(async (notice, audience) => {
      const told = [...this.#live].filter((session) => audience.has(session.peer)).map((session) => session.revoke(notice, REVOCATION_ACK_MS));
      await Promise.all(told);
    });
  }

  handlers(peer: Principal): SessionHandlers {
    const kernel = this.#kernel;
    let disclosing = false;
    return {
      load: this.load,
      // The node's own CLI may issue with an environment of up to MAX_VALUE_ITEMS through CapTP.
      ...(peer === kernel.principal ? { captpValues: MAX_CAPTP_VALUES_TRUSTED } : {}),
      call: async (token, args, options, argsBytes, signal) => {
        const path = options.path ?? [];
        if (path.length > 0 && (path.length > kernel.limits.maxHops || path.at(-1) !== peer)) {
          return { outcome: revoked('invalid', 'bad forwarding path'), cacheable: false };
        }
        return kernel.answer(token, args, { follow: options.follow === true, caller: peer, path, argsBytes, signal, ...(options.chain ? { chain: options.chain } : {}) });
      },
      // A cache hit is answered at once; a forwarded call (its path checked above) or one with a chain goes to `call`.
      answerNow: (token, args, options, argsBytes) => (options.path || options.chain ? undefined : kernel.answerCached(token, args, argsBytes, peer)),
      revocation: async (notice) => void (await kernel.hearRevocation(notice, peer)),
      fetch: (token) => kernel.replica(token, peer),
      docSync: (request, session) => this.docSync.serve(request, session),
      docHeads: (doc, heads, session, pushed) => void this.docSync.heard(doc, heads, session, pushed).catch(() => {}),
      records: async (token) => {
        // A disclosure reads the whole journal: one at a time per peer, so asking cannot be turned into a flood.
        if (disclosing) throw new Error('a records request of yours is being answered; ask again when it is');
        disclosing = true;
        try {
          return await kernel.disclose(token, peer);
        } finally {
          disclosing = false;
        }
      },
    };
  }

  /**
   * A session is up: tell its peer what it missed, and keep it in mind for
   * revocations to come. A node this node `dialled` is also told where this
   * node listens (and answers where it does).
   */
  track(session: Session, { dialled = false }: { dialled?: boolean } = {}) {
    this.#live.add(session);
    this.#latest.set(session.peer, session);
    void session.closed.then(() => {
      this.#live.delete(session);
      if (this.#latest.get(session.peer) === session) this.#latest.delete(session.peer);
      this.#nodes.delete(session);
      this.#dialled.delete(session);
    });
    void this.#kernel.revocationsFor(session.peer).then((notices) => {
      for (const notice of notices) void session.revoke(notice, REVOCATION_ACK_MS);
    });
    if (dialled) {
      this.#nodes.add(session);
      this.#dialled.add(session);
      this.#introduce(session);
      for (const listener of this.#onDialled) listener(session);
    }
    this.docSync.track(session, dialled);
  }

  /** Hear of every session this node dials from now on (the control plane bootstraps from them). */
  onDialled(listener: (session: Session) => void) {
    this.#onDialled.push(listener);
  }

  /** Keep and tell where nodes listen (addresses.ts); `isKept`: whether a principal is one of this node's peers. */
  useAddresses(book: AddressBook, isKept: (principal: Principal) => boolean, log: Log) {
    this.#addresses = book;
    this.#isKept = isKept;
    this.#log = log;
  }

  /** This node now listens at `url`: every node it has dialled hears so. */
  async listening(url: string) {
    await this.#addresses?.listening(url);
    for (const session of this.#dialled) this.#introduce(session);
  }

  /** What this node offers a node it dials: its handlers, and a facet that hears where nodes listen. */
  offer(peer: Principal): { bootstrap: unknown; handlers: SessionHandlers } {
    return {
      handlers: this.handlers(peer),
      bootstrap: Far('PromiseGridPeer', refusing({ address: (record: unknown) => this.hearAddress(record, peer) }, this.#log, peer)),
    };
  }

  /**
   * An address record from `peer` (its own, or a peer's it passes on);
   * answers with this node's own. `session`, the inbound session it came
   * on, hears of moves from now on if `peer` is a peer this node keeps.
   */
  async hearAddress(record: unknown, peer: Principal, session?: Session): Promise<AddressRecord | undefined> {
    const book = this.#addresses;
    if (!book) return undefined;
    if (session) this.#listening.add(session);
    if (session && this.#live.has(session) && this.#isKept(peer)) this.#nodes.add(session);
    const heard = await book.hear(record);
    if (heard.heard === 'moved') {
      this.#log.info(
        { event: 'peer-moved', peer: heard.record.principal, url: heard.record.url, from: peer },
        `peer ${heard.record.principal} now listens at ${heard.record.url} (heard from ${peer})`,
      );
      for (const other of this.#nodes) {
        if (other.peer === peer || other.peer === heard.record.principal) continue;
        void E(other.bootstrap() as Promise<{ address(record: AddressRecord): Promise<unknown> }>)
          .address(heard.record)
          .catch((error: unknown) => this.#log.debug({ event: 'address-not-passed', to: other.peer, err: error }, `could not pass an address on to ${other.peer}`));
      }
    }
    return book.own();
  }

  #introduce(session: Session) {
    const own = this.#addresses?.own();
    if (!own) return;
    void E(session.bootstrap() as Promise<{ address(record: AddressRecord): Promise<unknown> }>)
      .address(own)
      .then(async (theirs: unknown) => {
        if (theirs !== undefined && theirs !== null) await this.hearAddress(theirs, session.peer);
      })
      .catch((error: unknown) => this.#log.debug({ event: 'address-exchange-failed', peer: session.peer, err: error }, `address exchange with ${session.peer} failed`));
  }

  /**
   * The tab nodes connected here: principals whose latest session came in
   * (this node did not dial it), that never said where they listen — a tab
   * listens nowhere — and that announced closures or sync documents (a
   * command-line client does neither). Each with how many closures it
   * announced and the documents it syncs.
   */
  tabs(): TabPeer[] {
    const tabs: TabPeer[] = [];
    for (const [principal, session] of this.#latest) {
      if (this.#dialled.has(session) || this.#listening.has(session)) continue;
      const closures = this.hosted.announcedBy(principal);
      const docs = this.docSync.docsOf(session);
      if (closures > 0 || docs.length > 0) tabs.push({ principal, closures, docs });
    }
    return tabs;
  }

  /**
   * `peer` answers the closures whose records these are (base64 text, as
   * CapTP carries it): calls on them go down its session (hosted.ts).
   */
  announce(peer: Principal, records: unknown): number {
    if (!Array.isArray(records) || records.length > MAX_ANNOUNCED) throw new AnnounceError(`announce a list of at most ${MAX_ANNOUNCED} closure records`);
    return this.hosted.announce(
      peer,
      records.map((record) => {
        if (typeof record !== 'string') throw new AnnounceError('an announced closure record is base64 text');
        try {
          return base64.baseDecode(record);
        } catch {
          throw new AnnounceError('an announced closure record is base64 text');
        }
      }),
    );
  }

  close() {
    this.#stopListening();
    this.docSync.close();
  }
}
