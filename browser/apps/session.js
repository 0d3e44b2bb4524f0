// The seam between the app page and the grid. `openSession(starting)` gets
// (a promise of) what /app/TOKEN/start.json says (token, role, writable,
// doc, title, modules, view, principal) and gives the host loop (host.js) its session:
// { value, view, apply, subscribe, writable } over the app's document.
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
  // The tab node opens its database and key while the node answers what the app is.
  const [tab, start] = await Promise.all([startJoinedTabNode(), starting]);
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
  // The browser knows when its network goes and comes back: the connection follows it at once, not at the end of a timeout or a backoff.
  window.addEventListener('offline', () => tab.joined.disconnect());
  window.addEventListener('online', () => tab.joined.redial());
  /** The token to use now: the tab's own replica once it is here, else the address's token through the node. */
  const token = () => (followed && held() ? followed : start.token);
  const listeners = new Set();
  kernel.journal.onAppend((entry) => {
    if (entry.kind === 'doc-head' && entry.doc === start.doc) for (const listener of listeners) listener();
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
    writable: start.writable === true,
    value: async () => outcomeValue(await kernel.docs.read(token())).value,
    view: async (state) => outcomeValue(await kernel.call(start.view, [state])),
    apply: async (change) => void outcomeValue(await kernel.docs.apply(token(), change)),
    subscribe: (onVersion) => {
      listeners.add(onVersion);
      return () => listeners.delete(onVersion);
    },
  };
};
