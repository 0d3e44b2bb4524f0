// The app pages' service worker: what makes a reload work while the node
// that served the page is unreachable (README: Applications by URL). It
// keeps, in this origin's Cache Storage, the files a page needs to boot its
// tab node — the app shell (/app/TOKEN), what the node said of the app
// (/app/TOKEN/start.json), the host's files (/apps/…) and the tab node's
// bundle (/tab/…) — and answers from them only when the node cannot be
// reached. The rest (the document, the view's answers, the journal) the
// tab node holds in IndexedDB itself.
//
// Network first: while the node answers, every page gets what it serves
// now (a revoked app's address answers 404, and is dropped from the cache
// then). The bundle's chunks are the exception: their names carry a hash of
// their content, so a kept one is the same file and is answered from the
// cache without asking. Same origin only: it never fetches or keeps
// anything of another origin, and a cached response keeps its headers, the
// app shell's policy (CSP) among them.

const CACHE = 'promisegrid-apps';
/** The host's files: the same for every app. */
const SHELL = ['/apps/boot.js', '/apps/host.js', '/apps/session.js', '/apps/render.js', '/apps/conflicts.js', '/apps/app.css', '/favicon.svg'];
const APP = /^\/app\/[^/]{1,200}(\/start\.json)?$/;
const BUNDLE = /^\/tab\/[A-Za-z0-9_-]+\.js$/;
/** esbuild's chunk names: [name]-[hash] (scripts/build-tab.mjs). */
const HASHED = /^\/tab\/[A-Za-z0-9_]+-[A-Z0-9]{8}\.js$/;

const kept = (url) => url.origin === self.location.origin && (APP.test(url.pathname) || SHELL.includes(url.pathname) || BUNDLE.test(url.pathname));

// On install: the host's files and the bundle a tab node needs to start and to run a vat (the build lists it).
self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      const response = await fetch('/tab/offline.json', { cache: 'no-store' });
      if (!response.ok) throw new Error(`/tab/offline.json: ${response.status}`);
      const bundle = await response.json();
      await cache.addAll([...SHELL, ...bundle.filter((name) => /^[A-Za-z0-9_-]+\.js$/.test(name)).map((name) => `/tab/${name}`)]);
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

// A page loaded before this worker controlled it (its first visit) asks for its own address to be kept.
self.addEventListener('message', (event) => {
  const path = typeof event.data?.keep === 'string' ? event.data.keep.replace(/\/$/, '') : '';
  if (event.origin !== self.location.origin || !APP.test(path) || path.endsWith('/start.json')) return;
  event.waitUntil(caches.open(CACHE).then((cache) => Promise.all([path, `${path}/start.json`].map((address) => refresh(cache, new Request(address))))));
});

/** The node's answer to `request`, kept (by path: a query changes nothing served here) if it is a file, dropped if the node says there is none. */
const refresh = async (cache, request) => {
  const response = await fetch(request);
  const path = new URL(request.url).pathname;
  if (response.ok) await cache.put(path, response.clone());
  else if (response.status === 404) await cache.delete(path);
  return response;
};

self.addEventListener('fetch', (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== 'GET' || !kept(url)) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      if (HASHED.test(url.pathname)) {
        const hit = await cache.match(url.pathname);
        if (hit) return hit;
      }
      try {
        return await refresh(cache, request);
      } catch (unreachable) {
        const hit = await cache.match(url.pathname);
        if (hit) return hit;
        throw unreachable;
      }
    })(),
  );
});
