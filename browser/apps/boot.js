// The app page's start: what the node says of the app at this address
// (start.json), then the host loop over a session with its document.
import { runApp } from './host.js';
import { openSession } from './session.js';

const status = document.getElementById('status');
const say = (text) => {
  status.textContent = text;
};

const start = async () => {
  const response = await fetch(`${location.pathname.replace(/\/$/, '')}/start.json`, { cache: 'no-store' });
  if (!response.ok) throw new Error((await response.text()).trim());
  const app = await response.json();
  document.title = app.title;
  document.getElementById('title').textContent = app.writable ? app.title : `${app.title} (read-only)`;
  await runApp({ session: await openSession(app), root: document.getElementById('app'), conflictsRoot: document.getElementById('conflicts'), status: say });
};

start().catch((error) => say(String(error?.message ?? error).split('\n')[0]));
