// The seam between the app page and the grid. `openSession(starting)` gets
// (a promise of) what /app/TOKEN/start.json says (token, role, writable,
// settles, doc, title, modules, view, principal) and gives the host loop
// (host.js) its session: { value, view, apply, subscribe, writable,
// conflicts, resolve, settles, owner } over the app's document, and the
// page `rendered()`, to call once it has rendered first: a tab that holds
// its replica joins the node then (or sooner, if a call needs the node).
//
// The page's own grid node gives it (the tab node: its store, its key, its
// vats, in this browser), joined to the node that served the page. The
// token in the address is a bearer token; the tab asks it, once, for the
// same role delegated to its own principal (the `replica` operation), and
// follows the document with that: from then on the tab holds a replica,
// reads it and changes it itself — offline too — and sync carries the
// changes both ways. Until the replica is here, reads and changes go to the
// node through the token. The view runs in the tab's own vat (its closure
// is replicable: fetched with its first answer). App code never runs in
// this page.
import { startJoinedTabNode } from '/tab/joined.js';

/** How long a page opening offline waits for the node before it runs on what the tab holds. */
const JOIN_WAIT_MS = 3000;

const outcomeValue = (outcome) => {
  if (outcome.status === 'fulfilled') return outcome.value;
  throw new Error(outcome.status === 'revoked' ? outcome.reason : 'the answer is a further promise');
};

export const openSession = async (starting) => {
  let rendered;
  // The connection to the node waits for the page's first render (`rendered()`), unless something needs it sooner.
  const joinWhen = new Promise((resolve) => (rendered = resolve));
  // The tab node opens its database and key while the node answers what the app is.
  performance.mark('app:session');
  const [tab, start] = await Promise.all([startJoinedTabNode({ joinWhen }), starting]);
  performance.mark('app:tab-started');
  const { kernel } = tab;
  let followed = kernel.docs.following().find((target) => target.doc === start.doc)?.token;
  const held = () => kernel.docs.held().some((doc) => doc.doc === start.doc);
  // A tab that holds its replica renders from it at once (sync catches up once joined); one that does
  // not yet needs the node, and waits for it at most JOIN_WAIT_MS.
  if (!(followed && held())) {
    const connected = await Promise.race([tab.joined.connected().then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), JOIN_WAIT_MS))]);
    if (!followed && connected) {
      // Asked once: following is journaled, so a reload (or an offline one) finds it.
      const replica = outcomeValue(await kernel.call(start.token, ['replica']));
      await kernel.importChain(replica.token, replica.chain);
      followed = (await kernel.docs.follow(replica.token)).token;
    }
  }
  performance.mark('app:replica');
  // The browser knows when its network goes and comes back: the connection follows it at once, not at the end of a timeout or a backoff.
  window.addEventListener('offline', () => tab.joined.disconnect());
  window.addEventListener('online', () => tab.joined.redial());
  /** The token to use now: the tab's own replica once it is here, else the address's token through the node. */
  const token = () => (followed && held() ? followed : start.token);
  const listeners = new Set();
  /** Whether a journal entry changes what the page shows: a version of this document, or one of its conflicts met or settled. */
  const concerns = (entry) =>
    ((entry.kind === 'doc-head' || entry.kind === 'doc-conflict') && entry.doc === start.doc) ||
    (entry.kind === 'doc-settled' && kernel.docs.allConflicts().some((view) => view.conflict === entry.conflict && view.doc === start.doc));
  kernel.journal.onAppend((entry) => {
    if (concerns(entry)) for (const listener of listeners) listener();
  });
  // The page's own node, for its console (and tests): the page's scripts are this node's own; app code never sees `window`.
  window.gridTab = Object.freeze({
    principal: tab.identity.principal,
    kernel,
    held,
    followed: () => followed,
    joined: () => tab.joined.state(),
    /** Issue a closure here and tell the node, so calls on it reach this tab while it is open. */
    issue: async (source, exportName) => {
      const token = await kernel.issue({ code: await kernel.publish(source), export: exportName });
      await tab.joined.announce([token]);
      return token;
    },
  });
  return {
    rendered,
    writable: start.writable === true,
    value: async () => {
      performance.mark('app:read');
      const value = outcomeValue(await kernel.docs.read(token())).value;
      performance.mark('app:value');
      return value;
    },
    view: async (state) => {
      const ui = outcomeValue(await kernel.call(start.view, [state]));
      performance.mark('app:view');
      return ui;
    },
    apply: async (change) => void outcomeValue(await kernel.docs.apply(token(), change)),
    subscribe: (onVersion) => {
      listeners.add(onVersion);
      return () => listeners.delete(onVersion);
    },
    settles: start.settles === true,
    /** The principal of the node that holds the document: who holds its settle token, when this page does not. */
    owner: start.principal,
    /**
     * The open conflicts, each { conflict, at, attempts, heads: [{ version,
     * value, current }] }: `current` marks the head this replica shows
     * while the conflict is open.
     */
    conflicts: async () => {
      // The replica's own state when it is here (no call, nothing journaled on every render); else the node's, through the token.
      const local = followed && held();
      const views = outcomeValue(await kernel.docs.conflicts(local ? undefined : token())).filter((view) => view.doc === start.doc && view.settled === undefined);
      if (views.length === 0) return [];
      const { current } = local ? kernel.docs.held().find((doc) => doc.doc === start.doc) : outcomeValue(await kernel.call(token(), ['heads']));
      return Promise.all(
        views.map(async (view) => ({
          conflict: view.conflict,
          at: view.at,
          attempts: view.attempts,
          heads: await Promise.all(view.heads.map(async (version) => ({ version, value: outcomeValue(await kernel.docs.read(token(), version)).value, current: version === current }))),
        })),
      );
    },
    /**
     * Settle `conflict` (a settle or admin page): `{ pick: HEAD }` makes that
     * head's value the document's, `{ keep: 'current' }` the value this page
     * shows now. The settlement is a version like any other: made here, on
     * the tab's replica once it is here, and synced.
     */
    resolve: async (conflict, choice) => {
      const keys = choice !== null && typeof choice === 'object' ? Object.keys(choice) : [];
      let settlement;
      if (keys.length === 1 && typeof choice.pick === 'string') settlement = { pick: choice.pick };
      else if (keys.length === 1 && choice.keep === 'current') settlement = { value: outcomeValue(await kernel.docs.read(token())).value };
      else throw new TypeError("settle with { pick: HEAD } or { keep: 'current' }");
      outcomeValue(await kernel.docs.resolve(token(), conflict, settlement));
    },
  };
};
