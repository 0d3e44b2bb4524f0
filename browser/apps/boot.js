// The app page's start: what the node says of the app at this address
// (start.json), then the host loop over a session with its document.
//
// The page's own work begins at once, before the tab node's bundle has
// arrived: the node's database, key and journal are read (/tab/early.js),
// and start.json asked for, while the bundle (session.js and what it
// imports) and the host (host.js) are fetched and evaluated.
import { beginTabNode } from '/tab/early.js';

beginTabNode();
const sessionModule = import('./session.js');
const hostModule = import('./host.js');

const status = document.getElementById('status');
const say = (text) => {
  status.textContent = text;
};

const start = async () => {
  performance.mark('app:boot');
  const starting = (async () => {
    const response = await fetch(`${location.pathname.replace(/\/$/, '')}/start.json`, { cache: 'no-store' });
    if (!response.ok) throw new Error((await response.text()).trim());
    return response.json();
  })();
  const session = sessionModule.then(({ openSession }) => openSession(starting));
  session.catch(() => {}); // when start.json fails the session does too: the page says why once, from `starting`
  const app = await starting;
  document.title = app.title;
  document.getElementById('title').textContent = app.writable ? app.title : `${app.title} (read-only)`;
  const { runApp } = await hostModule;
  const opened = await session;
  try {
    await runApp({ session: opened, root: document.getElementById('app'), conflictsRoot: document.getElementById('conflicts'), status: say });
  } finally {
    opened.rendered();
  }
};

/**
 * Keep what a reload needs while the node is unreachable (offline.js). The
 * worker serves the app pages (/app/) and, registered a second time, the
 * vats' Web Workers: a worker's script is fetched under its own address
 * (/tab/vat.js), not its page's. A page that no worker controlled yet (its
 * first visit) asks for its own address to be kept. Where there are no
 * service workers (a page not from localhost nor https is not a secure
 * context) the page runs as before, online only.
 */
const keepForOffline = async () => {
  if (!navigator.serviceWorker) return;
  const controlled = navigator.serviceWorker.controller !== null;
  await Promise.all(['/app/', '/tab/'].map((scope) => navigator.serviceWorker.register('/apps/offline.js', { scope })));
  if (!controlled) (await navigator.serviceWorker.ready).active?.postMessage({ keep: location.pathname });
};

const offlineLater = (error) => console.warn(`offline reload unavailable: ${error?.message ?? error}`);
// Registered once the app has rendered (or could not start): the page's first render does not wait on the worker's set-up.
start()
  .catch((error) => say(String(error?.message ?? error).split('\n')[0]))
  .finally(() => keepForOffline().catch(offlineLater));
