/**
 * The node's application routes (README: Applications by URL), served on
 * the node's page's port after the page's own checks (loopback unless
 * `--web-remote`, a Host naming this node, GET or HEAD only):
 *
 * - `/app/TOKEN`: the app shell — a static page and its host script,
 *   under the page's strict CSP (self only, no inline script);
 * - `/app/TOKEN/start.json`: what the page needs to start: the token and
 *   its role (whether it writes, whether it settles conflicts), the document, the app's title, modules and view token, the
 *   node's principal;
 * - `/apps/*`: the shell's static files (renderer, host loop, conflict view,
 *   boot, style) and the service worker that keeps them for an offline reload;
 * - the page's `/api/apps` (behind its key): the apps this node hosts.
 *
 * Unlike the node's page, an app's routes take no access key: the token in
 * the address is the authority. Whoever has the address of a write token
 * can change the document through it (and a read token's address shows it);
 * that is the same authority `grid doc apply TOKEN` gives, no more: the
 * routes only read, and serve nothing about the node beyond the app.
 * Unknown, malformed and revoked tokens, and tokens that are not an app's,
 * all get the same one-line refusal, so the routes tell nothing about which
 * tokens exist.
 */
import { readFile } from 'node:fs/promises';
import type { Kernel } from '../kernel/kernel.js';
import { isToken, type Token } from '../interface/ids.js';
import { ROLE_MODULE_ID } from '../docs/documents.js';
import { appOfEnv, type AppDescription } from '../apps/app.js';

const APPS_DIR = new URL('../../browser/apps/', import.meta.url);
const JS = 'text/javascript; charset=utf-8';
export const APP_ASSETS: Readonly<Record<string, { file: URL; type: string; headers?: Readonly<Record<string, string>> }>> = Object.freeze({
  // The service worker that makes an app page's reload work offline serves /app/ and /tab/ (for the vats' workers): the two share no prefix but /.
  '/apps/offline.js': { file: new URL('offline.js', APPS_DIR), type: JS, headers: Object.freeze({ 'Service-Worker-Allowed': '/' }) },
  '/apps/render.js': { file: new URL('render.js', APPS_DIR), type: JS },
  '/apps/host.js': { file: new URL('host.js', APPS_DIR), type: JS },
  '/apps/boot.js': { file: new URL('boot.js', APPS_DIR), type: JS },
  '/apps/session.js': { file: new URL('session.js', APPS_DIR), type: JS },
  '/apps/conflicts.js': { file: new URL('conflicts.js', APPS_DIR), type: JS },
  '/apps/app.css': { file: new URL('app.css', APPS_DIR), type: 'text/css; charset=utf-8' },
});
const SHELL = new URL('index.html', APPS_DIR);
/** Apps the page lists at most, and documents looked at to find them (the latest first). */
const MAX_LISTED_APPS = 100;
const MAX_SCANNED_DOCUMENTS = 1000;
const APP_PATH = /^\/app\/([^/]{1,200})(\/start\.json)?\/?$/;
export const NO_APP = 'no app at this address: the token is unknown here, revoked, or not an app\'s';

/** What an app route answers: a status, a type and a body. */
export interface AppReply {
  readonly status: number;
  readonly type: string;
  readonly body: string | Buffer;
  /** The shell runs a tab node: served under the tab's policy (page.ts TAB_CSP), which lets SES compile grid modules. */
  readonly runsTabNode?: true;
  readonly headers?: Readonly<Record<string, string>>;
}

/** An app a node hosts, as its routes and its page see it. */
export interface HostedApp extends AppDescription {
  readonly doc: string;
  readonly token: Token;
  readonly role: string;
}

export const makeAppRoutes = (kernel: Kernel) => {
  const files = new Map<string, Promise<Buffer>>();
  const file = (url: URL) => {
    let bytes = files.get(url.href);
    if (!bytes) {
      bytes = readFile(url);
      files.set(url.href, bytes);
      bytes.catch(() => files.delete(url.href));
    }
    return bytes;
  };

  const closureOf = async (token: string) => {
    try {
      return await kernel.closure(token);
    } catch {
      return undefined;
    }
  };

  /** The app `token` opens: a role token (not revoked) of a document held here whose reducer describes an app; else undefined. */
  const appOf = async (token: string): Promise<HostedApp | undefined> => {
    // Loaded first: the documents know a role token only once its closure is loaded.
    const role = isToken(token) ? await closureOf(token) : undefined;
    const doc = role && kernel.docs.docOf(token);
    const history = doc === undefined ? undefined : await kernel.docs.history(doc, 1);
    if (!role || !history) return undefined;
    const app = appOfEnv((await closureOf(history.reducer))?.env);
    return app && { ...app, doc: history.doc, token: token as Token, role: role.export };
  };

  const refusal = (status: number, message: string): AppReply => ({ status, type: 'text/plain; charset=utf-8', body: `grid: ${message}\n` });

  return Object.freeze({
    /** Whether `path` is an app route (answered by `answer`, with no key). */
    serves: (path: string) => Object.hasOwn(APP_ASSETS, path) || path.startsWith('/app/'),

    async answer(path: string): Promise<AppReply> {
      if (Object.hasOwn(APP_ASSETS, path)) {
        const { file: url, type, headers } = APP_ASSETS[path]!;
        return { status: 200, type, body: await file(url), ...(headers ? { headers } : {}) };
      }
      const match = APP_PATH.exec(path);
      const app = match ? await appOf(match[1]!) : undefined;
      if (!app) return refusal(404, NO_APP);
      if (!match![2]) return { status: 200, type: 'text/html; charset=utf-8', body: await file(SHELL), runsTabNode: true };
      const start = {
        token: app.token,
        role: app.role,
        writable: app.role === 'write' || app.role === 'admin',
        settles: app.role === 'settle' || app.role === 'admin',
        doc: app.doc,
        title: app.title,
        modules: app.modules,
        view: app.view,
        principal: kernel.principal,
      };
      return { status: 200, type: 'application/json; charset=utf-8', body: JSON.stringify(start) };
    },

    /** The apps this node hosts, newest first: each document's write token that opens it (for the node's page, behind its key). */
    async list(): Promise<Array<HostedApp & { path: string }>> {
      const writes = kernel.hosted().tokens.filter((token) => token.code === ROLE_MODULE_ID && token.export === 'write').slice(-MAX_SCANNED_DOCUMENTS).reverse();
      const apps: Array<HostedApp & { path: string }> = [];
      for (const { token } of writes) {
        if (apps.length >= MAX_LISTED_APPS) break;
        const app = await appOf(token);
        if (app) apps.push({ ...app, path: `/app/${token}` });
      }
      return apps;
    },
  });
};
