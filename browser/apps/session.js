// The seam between the app page and the grid. `openSession(start)` gets
// what /app/TOKEN/start.json says (token, role, writable, doc, title,
// modules, view, principal) and gives the host loop (host.js) its session:
// { value, view, apply, subscribe, writable } over the app's document.
//
// The tab node gives it: the page's own grid node (its store, its key, its
// vats), joined to the node that served the page, reads and applies through
// `start.token` and runs the view (`start.view`, a replicable closure) in
// its own vat. App code never runs in this page. Until this build ships the
// tab node, the page says so and renders nothing.
export const openSession = async () => {
  throw new Error('this node does not ship the tab node yet, so the app cannot run in this page; `grid run TOKEN` shows it on the command line');
};
