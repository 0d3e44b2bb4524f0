// The app page's start: what the node says of the app at this address
// (start.json), then the host loop over a session with its document.
import { runApp } from './host.js';
import { openSession } from './session.js';

const status = document.getElementById('status');
const say = (text) => {
  status.textContent = text;
};

const start = async () => {
  const starting = (async () => {
    const response = await fetch(`${location.pathname.replace(/\/$/, '')}/start.json`, { cache: 'no-store' });
    if (!response.ok) throw new Error((await response.text()).trim());
    return response.json();
  })();
  const session = openSession(starting);
  session.catch(() => {}); // when start.json fails the session does too: the page says why once, from `starting`
  const app = await starting;
  document.title = app.title;
  document.getElementById('title').textContent = app.writable ? app.title : `${app.title} (read-only)`;
  await runApp({ session: await session, root: document.getElementById('app'), conflictsRoot: document.getElementById('conflicts'), status: say });
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

keepForOffline().catch((error) => console.warn(`offline reload unavailable: ${error?.message ?? error}`));
start().catch((error) => say(String(error?.message ?? error).split('\n')[0]));
