/**
 * The node's web page: a read-only view of the node — its principal, peers,
 * the tab nodes connected to it, the tokens it hosts, calls per second, the promise graph, and the
 * documents it holds (versions, conflicts, proposals) — served over
 * HTTP on the node's own port (WebSocket upgrades there still go to the
 * node's sessions).
 *
 * What the page can do is read. There is no route that calls, issues,
 * delegates or revokes anything, and the page's origin is not among the
 * origins allowed to open the node's WebSocket. But what it reads is
 * sensitive: journal records name tokens, and a token is bearer authority.
 * So it is guarded the way Jupyter guards a notebook server:
 *
 * - an access key (random, 192 bits, made at start from the node's own
 *   randomness) is needed for the page (`?key=`) and every API request
 *   (the `X-Grid-Key` header; a custom header also means a cross-site
 *   request could not send it without a CORS preflight, which is never
 *   answered). Keys are compared in constant time. The static assets — the
 *   page's code and cytoscape — are public and served without it;
 * - the Host header must name this node (loopback names, the listen
 *   address, or names configured): a DNS-rebound site gets nothing;
 * - only loopback peers are served unless configured;
 * - only GET and HEAD; no CORS headers; a strict Content-Security-Policy
 *   (self only, no inline script), no framing, no caching, no referrer.
 *
 * Applications by URL (`/app/TOKEN`, `/apps/*`, ./apps.ts) are the one
 * exception to the key: their token is their authority. They keep every
 * other guard here (loopback, Host, GET/HEAD, the CSP and headers).
 *
 * Every request is answered or refused with one line; none can throw into
 * the node.
 */
/// <reference types="ses" />
import { createHash, timingSafeEqual } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { Kernel } from '../kernel/kernel.js';
import type { Entry, Journal } from '../journal/journal.js';
import { pictureOf, renderText, shortId } from '../journal/graph.js';
import type { Token } from '../interface/ids.js';
import { toJsonText } from '../wire/json.js';
import type { PeerState } from '../net/peers.js';
import type { TabPeer } from '../net/sessions.js';
import type { WebPage } from '../net/node.js';
import { makeAppRoutes } from './apps.js';

export interface WebOptions {
  /** The access key the page and the API require. */
  readonly key: string;
  /** Serve non-loopback clients too (they still need the key and a known Host). */
  readonly remote?: boolean;
  /** Further names (or name:port) the Host header may carry, for a node reached by name. */
  readonly hosts?: readonly string[];
  /** The node's peers, as they stand. */
  readonly peers?: () => readonly PeerState[];
  /** The tab nodes connected to it, as they stand: peers it did not dial, apart from those. */
  readonly tabs?: () => readonly TabPeer[];
  /** The home's pet names as [name, id], read when the page asks: it shows them and its filter takes them (it never writes them). */
  readonly names?: () => Promise<Iterable<readonly [string, string]>>;
  readonly clock?: () => number;
}

export const MAX_DRAWN_RECORDS = 2000;
/** Live streams served at once; one more gets 503. */
export const MAX_LIVE_CLIENTS = 16;
/** Records sent to one live client per batch; the rest are counted as skipped. */
const MAX_BATCH_RECORDS = 200;
const BATCH_MS = 200;
const HEARTBEAT_MS = 10_000;
const MAX_URL_LENGTH = 2048;
const MAX_FILTER_LENGTH = 256;
/** Records listed for one graph node when it is clicked. */
const ABOUT_RECORDS = 25;
/** A record's JSON is cut here on the page (a call's arguments can be megabytes). */
const MAX_RECORD_TEXT = 64 * 1024;
/** Calls per second are counted over this window, in buckets. */
const RATE_WINDOW_MS = 5000;
const RATE_BUCKET_MS = 100;
/** Tokens listed in the node's state (the most recently issued). */
const MAX_LISTED_TOKENS = 100;
/** Versions of one document the page draws (the latest), and its conflicts and proposals it lists (the latest). */
const MAX_LISTED_VERSIONS = 200;
const MAX_LISTED_STORIES = 50;
/** The latest records a live view gets when it opens (then each new one). */
const LATEST_ON_OPEN = 50;

const WEB_DIR = new URL('../../browser/', import.meta.url);
const ASSETS: Readonly<Record<string, { file: URL | string; type: string }>> = Object.freeze({
  '/': { file: new URL('index.html', WEB_DIR), type: 'text/html; charset=utf-8' },
  '/app.js': { file: new URL('app.js', WEB_DIR), type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: new URL('style.css', WEB_DIR), type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: new URL('favicon.svg', WEB_DIR), type: 'image/svg+xml' },
  '/vendor/cytoscape.js': { file: import.meta.resolve('cytoscape/dist/cytoscape.esm.min.mjs'), type: 'text/javascript; charset=utf-8' },
});

const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Cache-Control': 'no-store',
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
});

// ---- The tab node's bundle (issue 17): /tab/… serves dist/tab/ (scripts/build-tab.mjs) ----
/**
 * Public like the page's own code: it runs a node in the visitor's browser
 * and shows nothing of this one. Only the files the build wrote, by exact
 * name. Scripts come from this origin only, and may evaluate code: SES
 * confines a grid module by compiling it in a Compartment, which the kernel
 * does at publish (as vats will run it) and each vat worker does to run it
 * (a worker's policy is its own script's response header, the same here).
 */
const TAB_DIR = new URL('../../dist/tab/', import.meta.url);
const TAB_CSP =
  "default-src 'none'; script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval'; worker-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const TAB_TYPES: Readonly<Record<string, string>> = Object.freeze({
  js: 'text/javascript; charset=utf-8',
  html: 'text/html; charset=utf-8',
  // offline.json: what an app page's service worker keeps (browser/apps/offline.js).
  json: 'application/json; charset=utf-8',
});
let tabFiles: Promise<ReadonlySet<string>> | undefined;
/** The bundle's file for a path under /tab/ ('' for the page), with how to serve it; undefined if there is none. */
/**
 * A chunk's name carries a hash of its content (scripts/build-tab.mjs): the same name is the same
 * bytes, so the browser may keep it — and the compiled code V8 keeps with it — rather than fetch and
 * compile it again on every load of a page.
 */
const HASHED_CHUNK = /^[A-Za-z0-9_]+-[A-Z0-9]{8}\.js$/;
const IMMUTABLE = 'public, max-age=31536000, immutable';
const tabAsset = async (name: string): Promise<{ file: URL; type: string; hashed: boolean } | undefined> => {
  tabFiles ??= readdir(TAB_DIR).then(
    (files) => new Set(files),
    () => new Set<string>(),
  );
  const file = name === '' ? 'index.html' : name;
  const kind = /^[A-Za-z0-9_-]+\.(js|html|json)$/.exec(file)?.[1];
  if (!kind || !(await tabFiles).has(file)) return undefined;
  return { file: new URL(file, TAB_DIR), type: TAB_TYPES[kind]!, hashed: HASHED_CHUNK.test(file) };
};
// ---- end of the tab node's bundle ----

const digest = (text: string) => createHash('sha256').update(text).digest();
const isLoopback = (address: string | undefined) =>
  address !== undefined && (address === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address));
const bracket = (host: string) => (host.includes(':') ? `[${host}]` : host);
const WILDCARD = new Set(['0.0.0.0', '::', '']);


/** The ids a record names directly. */
const idsOf = (entry: Entry): string[] => {
  switch (entry.kind) {
    case 'issue':
      return [entry.token, entry.code, entry.issuer];
    case 'call':
    case 'hit':
      return [entry.token, entry.caller];
    case 'revoke':
      return [entry.token, entry.by];
    case 'revocation':
    case 'revocation-early':
      return [entry.token, entry.by, entry.from];
    case 'wrap':
      return [entry.token, entry.inner, entry.delegator, ...entry.audience, ...entry.policies];
    case 'screened':
      return [entry.token, entry.caller];
    case 'policy-state':
      return [entry.token];
    case 'forwarded':
      return [entry.to];
    case 'replicated':
      return [entry.token, entry.to];
    case 'seal':
      return [entry.signer];
    case 'doc':
      return [entry.doc];
    case 'doc-head':
      return [entry.doc, ...entry.heads];
    case 'doc-conflict':
      return [entry.doc, entry.conflict, ...entry.heads];
    case 'doc-settled':
      return [entry.conflict, entry.version];
    case 'doc-rules':
      return [entry.doc, entry.version];
    case 'proposal':
      return [entry.proposal, entry.doc, entry.proposer];
    case 'vote':
      return [entry.proposal, entry.voter];
    case 'revoked-at':
      return [entry.token, entry.by];
    case 'proposal-ended':
      return [entry.proposal, ...(entry.version ? [entry.version] : [])];
    case 'doc-token':
      return entry.doc === undefined ? [entry.token] : [entry.token, entry.doc];
    case 'fulfilled':
    case 'revoked':
    case 'promised':
      return entry.kind === 'promised' ? [entry.token] : [];
  }
};

/** Records that name `id`, with the outcomes of the calls among them: the journal read a window at a time, only those kept. */
const recordsNaming = async (journal: Journal, id: string): Promise<Entry[]> => {
  const calls = new Set<number>();
  const naming: Entry[] = [];
  for await (const entry of journal.read(0)) {
    if ('call' in entry && typeof entry.call === 'number' && calls.has(entry.call)) naming.push(entry);
    else if (idsOf(entry).includes(id)) {
      if (entry.kind === 'call' || entry.kind === 'hit') calls.add(entry.seq);
      naming.push(entry);
    }
  }
  return naming;
};

/** The records a filter selects: a principal's, or those around a token (from the record index; else any that name the id, e.g. a module). */
const select = async (kernel: Kernel, filter: string): Promise<Entry[]> => {
  if (filter.startsWith('did:')) return recordsNaming(kernel.journal, filter);
  const around = await kernel.records.around(filter as Token);
  return around.length > 0 ? around : recordsNaming(kernel.journal, filter);
};

/** Pet names both ways. */
interface Names {
  readonly byId: ReadonlyMap<string, string>;
  readonly byName: ReadonlyMap<string, string>;
}
const namesFrom = (pairs: Iterable<readonly [string, string]>): Names => {
  const list = [...pairs];
  return { byId: new Map(list.map(([name, id]) => [id, name])), byName: new Map(list) };
};

const lineOf = (entry: Entry, name: (id: string) => string = shortId): string =>
  entry.kind === 'seal' ? `#${entry.seq} ${new Date(entry.at).toISOString()} seal      by ${name(entry.signer)}` : renderText([entry], name);

const recordJson = (entry: Entry) => {
  const text = toJsonText(entry, 2);
  return text.length > MAX_RECORD_TEXT ? `${text.slice(0, MAX_RECORD_TEXT)}\n… (${text.length - MAX_RECORD_TEXT} more characters)` : text;
};

const kindOfNode = (node: { shape: string; rounded?: boolean }) =>
  node.shape === 'ellipse' ? 'principal' : node.shape === 'note' ? 'module' : node.rounded ? 'delegation' : 'token';

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

interface LiveClient {
  readonly response: ServerResponse;
  queue: Entry[];
  skipped: number;
}

/**
 * Calls per second, counted from the `call` and `hit` records as they are
 * appended (and from the few latest records read when the page starts).
 */
class CallRate {
  readonly #buckets = new Array<number>(RATE_WINDOW_MS / RATE_BUCKET_MS).fill(0);
  #bucketAt = 0;

  add(entry: Entry) {
    if (entry.kind !== 'call' && entry.kind !== 'hit') return;
    this.#advance(entry.at);
    const slot = Math.floor(entry.at / RATE_BUCKET_MS);
    if (slot > this.#bucketAt - this.#buckets.length) this.#buckets[slot % this.#buckets.length]! += 1;
  }

  /** Move the window to end at `now`, emptying the buckets it leaves behind. */
  #advance(now: number) {
    const slot = Math.floor(now / RATE_BUCKET_MS);
    if (slot <= this.#bucketAt) return;
    const steps = Math.min(slot - this.#bucketAt, this.#buckets.length);
    for (let i = 1; i <= steps; i += 1) this.#buckets[(slot - steps + i) % this.#buckets.length] = 0;
    this.#bucketAt = slot;
  }

  callsPerSecond(now: number): number {
    this.#advance(now);
    return this.#buckets.reduce((sum, n) => sum + n, 0) / (RATE_WINDOW_MS / 1000);
  }
}

export const makeWebPage = (kernel: Kernel, options: WebOptions): WebPage => {
  if (typeof options.key !== 'string' || options.key.length < 22) throw new TypeError('web: the access key must be at least 128 bits of base64url');
  const keyDigest = digest(options.key);
  const clock = options.clock ?? Date.now;
  const journal = kernel.journal;
  const live = new Set<LiveClient>();
  const rate = new CallRate();
  const extraHosts = (options.hosts ?? []).map((host) => host.toLowerCase());
  let allowedHosts = new Set<string>();
  let closed = false;
  let batchTimer: ReturnType<typeof setInterval> | undefined;
  let heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  const assets = new Map<string, Promise<Buffer>>();
  const apps = makeAppRoutes(kernel);
  // The names last read; a names file that cannot be read keeps them (names only label things).
  let names = namesFrom([]);
  const readNames = async () => {
    await ready;
    try {
      if (options.names) names = namesFrom(await options.names());
    } catch {}
  };
  const label = (id: string) => names.byId.get(id) ?? shortId(id);

  // What the page lists comes from the kernel's state (Kernel.hosted), never from reading history; only the latest
  // records are read, for a view that opens and for the rate (the journal may have been opened from a snapshot,
  // with none of them at hand). Records appended meanwhile wait their turn, in order.
  let backlog: Entry[] | undefined = [];
  let tail: Entry[] = [];
  const take = (entry: Entry) => {
    rate.add(entry);
    tail.push(entry);
    if (tail.length >= 2 * LATEST_ON_OPEN) tail = tail.slice(-LATEST_ON_OPEN);
  };
  const upTo = journal.length;
  const ready = (async () => {
    try {
      for await (const entry of journal.read(Math.max(0, upTo - LATEST_ON_OPEN))) {
        if (entry.seq >= upTo) break;
        take(entry);
      }
    } finally {
      for (const entry of backlog ?? []) take(entry);
      backlog = undefined;
    }
  })();
  ready.catch(() => {});
  // The journal keeps its listeners for its lifetime; this one goes quiet once the page is closed.
  journal.onAppend((entry) => {
    if (closed) return;
    if (backlog) backlog.push(entry);
    else take(entry);
    for (const client of live) {
      if (client.queue.length < MAX_BATCH_RECORDS) client.queue.push(entry);
      else client.skipped += 1;
    }
  });

  const keyMatches = (given: string | undefined) => typeof given === 'string' && timingSafeEqual(digest(given), keyDigest);

  const send = (response: ServerResponse, status: number, type: string, body: string | Buffer, head: boolean, extra: Record<string, string> = {}) => {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    response.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': String(bytes.length), ...extra });
    response.end(head ? undefined : bytes);
  };
  const json = (response: ServerResponse, value: unknown, head: boolean) => send(response, 200, 'application/json; charset=utf-8', toJsonText(value), head);

  const asset = (path: string) => {
    let bytes = assets.get(path);
    if (!bytes) {
      const file = ASSETS[path]!.file;
      bytes = readFile(typeof file === 'string' ? fileURLToPath(file) : file);
      assets.set(path, bytes);
      bytes.catch(() => assets.delete(path));
    }
    return bytes;
  };

  const state = () => {
    const { tokens, delegations } = kernel.hosted();
    return {
      principal: kernel.principal,
      peers: options.peers?.() ?? [],
      tabs: options.tabs?.() ?? [],
      tokens: tokens
        .slice(-MAX_LISTED_TOKENS)
        .reverse()
        .map((token) => ({ ...token, revoked: kernel.isRevoked(token.token) })),
      tokenCount: tokens.length,
      delegations,
      callsPerSecond: rate.callsPerSecond(clock()),
      records: journal.length,
      maxDrawn: MAX_DRAWN_RECORDS,
      names: Object.fromEntries(names.byId),
    };
  };

  const graph = async (given: string) => {
    const filter = names.byName.get(given) ?? given;
    let selected: { length: number };
    let drawn: Entry[];
    if (filter === '') {
      // The whole graph: only the latest records are drawn, and only they are read.
      drawn = [];
      for await (const entry of journal.read(Math.max(0, journal.length - MAX_DRAWN_RECORDS))) drawn.push(entry);
      drawn = drawn.slice(-MAX_DRAWN_RECORDS);
      selected = { length: drawn.length === 0 ? 0 : drawn.at(-1)!.seq + 1 };
    } else {
      const chosen = await select(kernel, filter);
      selected = chosen;
      drawn = chosen.slice(-MAX_DRAWN_RECORDS);
    }
    const picture = pictureOf(drawn);
    const latest = drawn.findLast((entry) => entry.kind !== 'seal' && idsOf(entry).some((id) => picture.nodes.has(id)));
    const nodes = [...picture.nodes].map(([id, node]) => ({
      data: { id, label: id === kernel.principal ? `${label(id)} (this node)` : label(id), name: names.byId.get(id) ?? null, kind: kindOfNode(node), revoked: node.revoked === true, self: id === kernel.principal },
    }));
    // An edge's id is what pictureOf counts it by, so it keeps its id as its count grows.
    const edges = picture.edges.map(({ from, to, label, style, count }) => ({
      data: { id: `${from}>${to}:${label}`, source: from, target: to, label: count > 1 ? `${label} ×${count}` : label, style, count },
    }));
    return {
      filter,
      ...(filter !== given ? { name: given } : {}),
      records: selected.length,
      drawn: drawn.length,
      capped: selected.length > drawn.length,
      first: drawn[0]?.seq ?? null,
      // Where the page looks first: what the latest record drawn that names something (not a seal) names first, its token mostly.
      latest: (latest ? idsOf(latest) : []).filter((id) => picture.nodes.has(id)).slice(0, 1),
      elements: { nodes, edges },
    };
  };

  const about = async (id: string) => {
    const naming = await recordsNaming(journal, id);
    const defining = naming.find((entry) => (entry.kind === 'issue' || entry.kind === 'wrap') && entry.token === id);
    return {
      id,
      defining: defining ? { seq: defining.seq, kind: defining.kind, json: recordJson(defining) } : null,
      total: naming.length,
      records: naming.slice(-ABOUT_RECORDS).reverse().map((entry) => ({ seq: entry.seq, kind: entry.kind, text: lineOf(entry, label) })),
    };
  };

  /** The documents held here, each with how many of its conflicts and proposals are open. */
  const documents = () => {
    const open = kernel.docs.allConflicts().filter((conflict) => !conflict.settled);
    const proposals = kernel.docs.proposals();
    return kernel.docs.held().map((held) => ({
      ...held,
      name: names.byId.get(held.doc) ?? null,
      conflicts: open.filter((conflict) => conflict.doc === held.doc).length,
      proposals: proposals.filter((proposal) => proposal.doc === held.doc).length,
    }));
  };

  /** One document's story: its rules, its latest versions (a DAG), its conflicts with every attempt, its proposals with their votes. */
  const document = async (given: string) => {
    const history = await kernel.docs.history(names.byName.get(given) ?? given, MAX_LISTED_VERSIONS);
    if (!history) throw new Refusal(404, `this node holds no document ${JSON.stringify(given.slice(0, 100))}`);
    const latest = <T>(items: readonly T[]) => items.slice(-MAX_LISTED_STORIES).reverse();
    return {
      ...history,
      conflicts: latest(kernel.docs.allConflicts().filter((conflict) => conflict.doc === history.doc)),
      proposals: latest(kernel.docs.proposals({ all: true }).filter((proposal) => proposal.doc === history.doc)),
    };
  };

  const record = async (seqText: string) => {
    const seq = /^\d{1,15}$/.test(seqText) ? Number(seqText) : Number.NaN;
    if (!Number.isSafeInteger(seq)) throw new Refusal(400, `seq must be a record number (got ${JSON.stringify(seqText.slice(0, 40))})`);
    // Records are numbered from 0 in order: one is read from the journal by its number.
    const total = journal.length;
    const [entry] = seq < total ? await journal.recordsBySeq([seq]) : [];
    if (!entry && seq < journal.floor().seq) throw new Refusal(404, `record #${seq} is before the checkpoint (the journal keeps records from #${journal.floor().seq}; README: Retention)`);
    if (!entry) throw new Refusal(404, `no record #${seq} (the journal has ${total})`);
    return { seq: entry.seq, kind: entry.kind, text: lineOf(entry, label), json: recordJson(entry) };
  };

  const flush = () => {
    // Every view gets the same records: render each once.
    const lines = new Map<number, string>();
    const line = (entry: Entry) => lines.get(entry.seq) ?? (lines.set(entry.seq, lineOf(entry, label)), lines.get(entry.seq)!);
    for (const client of live) {
      if (client.queue.length === 0 && client.skipped === 0) continue;
      if (client.response.writableNeedDrain) {
        // The browser is not keeping up: drop this batch rather than buffer without bound.
        client.skipped += client.queue.length;
        client.queue = [];
        continue;
      }
      const records = client.queue.map((entry) => ({ seq: entry.seq, at: entry.at, kind: entry.kind, text: line(entry) }));
      const payload = { records, skipped: client.skipped, total: journal.length };
      client.queue = [];
      client.skipped = 0;
      client.response.write(`event: records\ndata: ${toJsonText(payload)}\n\n`);
    }
  };

  const stopTimersIfIdle = () => {
    if (live.size > 0) return;
    clearInterval(batchTimer);
    clearInterval(heartbeatTimer);
    batchTimer = heartbeatTimer = undefined;
  };

  const follow = (response: ServerResponse) => {
    if (live.size >= MAX_LIVE_CLIENTS) throw new Refusal(503, `too many live views (${MAX_LIVE_CLIENTS}); close one`, { 'Retry-After': '5' });
    response.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive' });
    const latest = tail.slice(-LATEST_ON_OPEN).map((entry) => ({ seq: entry.seq, at: entry.at, kind: entry.kind, text: lineOf(entry, label) }));
    response.write(`event: hello\ndata: ${toJsonText({ total: journal.length, latest })}\n\n`);
    const client: LiveClient = { response, queue: [], skipped: 0 };
    live.add(client);
    const leave = () => {
      live.delete(client);
      stopTimersIfIdle();
    };
    // A response that is never ended closes when its connection does (the request's own 'close' only means it was read).
    response.once('close', leave);
    response.once('error', leave);
    batchTimer ??= setInterval(flush, BATCH_MS);
    batchTimer.unref?.();
    heartbeatTimer ??= setInterval(() => {
      for (const c of live) if (!c.response.writableNeedDrain) c.response.write(': heartbeat\n\n');
    }, HEARTBEAT_MS);
    heartbeatTimer.unref?.();
  };

  const route = (request: IncomingMessage, response: ServerResponse) => {
    if (!options.remote && !isLoopback(request.socket.remoteAddress)) {
      throw new Refusal(403, 'this node serves its web page to loopback only (grid start --web-remote to change that)');
    }
    const rawUrl = request.url ?? '/';
    if (rawUrl.length > MAX_URL_LENGTH) throw new Refusal(414, `the URL is longer than ${MAX_URL_LENGTH} characters`);
    const method = request.method ?? '';
    if (method !== 'GET' && method !== 'HEAD') throw new Refusal(405, `the web page only reads: GET or HEAD, not ${JSON.stringify(method.slice(0, 20))}`, { Allow: 'GET, HEAD' });
    const host = (request.headers.host ?? '').toLowerCase();
    if (!allowedHosts.has(host)) throw new Refusal(403, `unexpected Host ${JSON.stringify(host.slice(0, 100))}; open the address grid start printed`);
    let url: URL;
    try {
      url = new URL(rawUrl, 'http://node.invalid');
    } catch {
      throw new Refusal(400, 'bad URL');
    }
    const head = method === 'HEAD';
    const path = url.pathname;
    // Applications by URL (./apps.ts): the token in the address is their authority, not the page's key.
    if (apps.serves(path)) {
      apps.answer(path).then(
        (answer) => send(response, answer.status, answer.type, answer.body, head, { ...(answer.runsTabNode ? { 'Content-Security-Policy': TAB_CSP } : {}), ...answer.headers }),
        (error: unknown) => reply(response, error),
      );
      return;
    }
    if (Object.hasOwn(ASSETS, path)) {
      if (path === '/' && !keyMatches(url.searchParams.get('key') ?? undefined)) {
        throw new Refusal(403, 'this page needs its key: open the address `grid start` printed, or run `grid web`');
      }
      const { type } = ASSETS[path]!;
      asset(path).then(
        (bytes) => send(response, 200, type, bytes, head),
        () => reply(response, new Refusal(500, `cannot read ${path}`)),
      );
      return;
    }
    if (path.startsWith('/tab/')) return serveTab(path.slice('/tab/'.length), response, head);
    if (!path.startsWith('/api/')) throw new Refusal(404, `nothing at ${JSON.stringify(path.slice(0, 100))}`);
    const given = request.headers['x-grid-key'];
    if (!keyMatches(typeof given === 'string' ? given : undefined)) throw new Refusal(403, 'the API needs the page key in the X-Grid-Key header');
    const param = (name: string) => {
      const value = url.searchParams.get(name) ?? '';
      if (value.length > MAX_FILTER_LENGTH) throw new Refusal(400, `${name} is longer than ${MAX_FILTER_LENGTH} characters`);
      return value.trim();
    };
    /** Answer with `body()` once the home's pet names are read. */
    const named = (body: () => unknown) =>
      void readNames()
        .then(async () => json(response, await body(), head))
        .catch((error: unknown) => reply(response, error));
    switch (path) {
      case '/api/state':
        return named(() => ({ ...state(), url: `http://${host}/` }));
      case '/api/graph': {
        const filter = param('filter');
        return named(() => graph(filter));
      }
      case '/api/about': {
        const id = param('id');
        if (id === '') throw new Refusal(400, 'about what? (?id=)');
        return named(() => about(id));
      }
      case '/api/docs':
        return named(documents);
      case '/api/apps':
        return named(async () => (await apps.list()).map((app) => ({ ...app, name: names.byId.get(app.token) ?? null })));
      case '/api/doc': {
        const id = param('id');
        if (id === '') throw new Refusal(400, 'which document? (?id=)');
        return named(() => document(id));
      }
      case '/api/record': {
        const seq = param('seq');
        return named(() => record(seq));
      }
      case '/api/live':
        if (head) return send(response, 200, 'text/event-stream; charset=utf-8', '', true);
        return void readNames()
          .then(() => (closed ? reply(response, new Refusal(503, 'the node is stopping')) : follow(response)))
          .catch((error: unknown) => reply(response, error));
      default:
        throw new Refusal(404, `no API ${JSON.stringify(path.slice(0, 100))}`);
    }
  };

  /** A file of the tab node's bundle (see tabAsset), read once. */
  const serveTab = (name: string, response: ServerResponse, head: boolean) =>
    void tabAsset(name)
      .then(async (found) => {
        if (!found) throw new Refusal(404, `nothing at ${JSON.stringify(`/tab/${name}`.slice(0, 100))}${name === '' ? ' (the tab bundle is not built: npm run build)' : ''}`);
        const key = `tab:${found.file.href}`;
        let bytes = assets.get(key);
        if (!bytes) {
          bytes = readFile(found.file);
          assets.set(key, bytes);
          bytes.catch(() => assets.delete(key));
        }
        send(response, 200, found.type, await bytes, head, { 'Content-Security-Policy': TAB_CSP, ...(found.hashed ? { 'Cache-Control': IMMUTABLE } : {}) });
      })
      .catch((error: unknown) => reply(response, error));

  const reply = (response: ServerResponse, error: unknown) => {
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const refusal = error instanceof Refusal ? error : new Refusal(500, 'internal error');
    send(response, refusal.status, 'text/plain; charset=utf-8', `grid: ${refusal.message}\n`, false, { ...refusal.headers });
  };

  return harden({
    handle: (request: IncomingMessage, response: ServerResponse) => {
      try {
        if (closed) throw new Refusal(503, 'the node is stopping');
        route(request, response);
      } catch (error) {
        try {
          reply(response, error);
        } catch {
          response.destroy();
        }
      }
    },
    listening: (host: string, port: number) => {
      const names = ['127.0.0.1', 'localhost', '[::1]', ...(WILDCARD.has(host) ? [] : [bracket(host).toLowerCase()])];
      allowedHosts = new Set([
        ...names.map((name) => `${name}:${port}`),
        ...extraHosts.map((name) => (/^(\[[^\]]+\]|[^:]+):\d+$/.test(name) ? name : `${name}:${port}`)),
      ]);
    },
    url: (host: string, port: number) => `http://${WILDCARD.has(host) ? '127.0.0.1' : bracket(host)}:${port}/?key=${options.key}`,
    servesOrigin: (origin: string, host: string | undefined) => {
      // Same origin only: a page this node served, under a name it answers to, and reached under that name now.
      if (host === undefined || !allowedHosts.has(host.toLowerCase())) return false;
      return origin === `http://${host.toLowerCase()}`;
    },
    close: () => {
      closed = true;
      for (const client of live) client.response.end();
      live.clear();
      stopTimersIfIdle();
    },
  });
};
