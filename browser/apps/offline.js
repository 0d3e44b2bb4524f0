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

// Navigation preload: an app page's request goes out while the worker starts, not after.
self.addEventListener('activate', (event) => event.waitUntil(Promise.all([self.clients.claim(), self.registration.navigationPreload?.enable()])));

// A page loaded before this worker controlled it (its first visit) asks for its own address to be kept.
self.addEventListener('message', (event) => {
  const path = typeof event.data?.keep === 'string' ? event.data.keep.replace(/\/$/, '') : '';
  if (event.origin !== self.location.origin || !APP.test(path) || path.endsWith('/start.json')) return;
  event.waitUntil(caches.open(CACHE).then((cache) => Promise.all([path, `${path}/start.json`].map((address) => refresh(cache, new Request(address))))));
});

/** Keep `response` (by path: a query changes nothing served here) if it is a file, drop it if the node says there is none. */
const keep = async (cache, path, response) => {
  if (response.ok) await cache.put(path, response);
  else if (response.status === 404) await cache.delete(path);
};

/** The node's answer to `request`, kept (see keep). */
const refresh = async (cache, request) => {
  const response = await fetch(request);
  await keep(cache, new URL(request.url).pathname, response.clone());
  return response;
};

self.addEventListener('fetch', (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== 'GET' || !kept(url)) return;
  event.respondWith(
    (async () => {
      if (HASHED.test(url.pathname)) {
        const hit = await caches.match(url.pathname, { cacheName: CACHE });
        if (hit) return hit;
      }
      let response;
      try {
        response = (await event.preloadResponse) ?? (await fetch(request));
      } catch (unreachable) {
        const hit = await caches.match(url.pathname, { cacheName: CACHE });
        if (hit) return hit;
        throw unreachable;
      }
      // The page has its answer at once; the copy is written while it runs (a load does not wait for the cache's disk).
      const copy = response.clone();
      event.waitUntil(caches.open(CACHE).then((cache) => keep(cache, url.pathname, copy)));
      return response;
    })(),
  );
});
