// The app page's loop, over a session with the document and the app's view:
// read the value → view → render; an event → apply the change it names →
// re-render; a version from elsewhere → re-render. It knows nothing of how
// the session reaches the grid (the tab node's kernel, or a test's), only
// this interface:
//
//   session.value(): Promise<state>        the document's current value
//   session.view(state): Promise<ui>       the app's view of it (UI as data)
//   session.apply(change): Promise<void>   apply through the write token (rejects with the reason)
//   session.subscribe(onVersion): () => void  call onVersion when a version arrives; returns unsubscribe
//   session.writable: boolean              false for a read-only (read token) page
//
// and, for the conflict view (conflicts.js), optionally:
//
//   session.conflicts(): Promise<conflict[]>    the open conflicts, each head with its value
//   session.resolve(conflict, choice): Promise<void>  settle: { pick: HEAD } or { keep: 'current' }
//   session.settles: boolean               whether this page's token may settle
//   session.owner: string                  who may, when it may not (the holding node's principal)
//
// A refusal (the reducer's, the view's or the renderer's) is shown as one
// line in `status` and leaves the page as it was.
import { makeRenderer } from './render.js';
import { makeConflictView } from './conflicts.js';

/**
 * Run the app in `root` (its children are the app's), `status(text)`
 * showing a line ('' clears it), open conflicts in `conflictsRoot` if given.
 * Resolves once the first render is done; `stop()` ends the subscription.
 */
export const runApp = async ({ session, root, status, conflictsRoot }) => {
  let running;
  let again = false;
  /** Re-render, at most one at a time: versions that arrive meanwhile make one more render, of the latest value. */
  const refresh = () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      renderer.render(await session.view(await session.value()));
      if (conflictView) await conflictView.show(await session.conflicts());
    })()
      .then(() => status(''))
      .catch((error) => status(oneLine(error)))
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          void refresh();
        }
      });
    return running;
  };
  const apply = async (change) => {
    try {
      await session.apply(change);
    } catch (error) {
      status(oneLine(error));
      throw error;
    }
    await refresh();
  };
  const settle = async (conflict, choice) => {
    try {
      await session.resolve(conflict, choice);
    } catch (error) {
      status(oneLine(error));
      throw error;
    }
    await refresh();
  };
  const renderer = makeRenderer(root, apply);
  const conflictView =
    conflictsRoot && session.conflicts
      ? makeConflictView(conflictsRoot, { preview: (value) => session.view(value), settle, settles: session.settles === true, owner: String(session.owner ?? 'unknown') })
      : undefined;
  renderer.enabled(session.writable === true);
  const unsubscribe = session.subscribe(() => void refresh());
  await refresh();
  return Object.freeze({ apply, refresh, stop: () => unsubscribe() });
};

const oneLine = (error) => String(error?.message ?? error).split('\n')[0].slice(0, 500);
