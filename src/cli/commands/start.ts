/** `grid start`: run a node on the home, with its web page on the same port. */
import { base64url } from 'multiformats/bases/base64';
import { randomBytes } from 'node:crypto';
import { quote } from '../../interface/ids.js';
import { homePaths, NoHomeError } from '../../home/home.js';
import { parseKeep } from '../../home/retention.js';
import { resolve } from 'node:path';
import { Invitations } from '../../home/invitations.js';
import { PetNames } from '../../home/names.js';
import { loadAddresses, loadListenPort, rememberListenPort, rememberPeers, replacePeers, saveAddresses } from '../../home/peers-file.js';
import { announceNode, retractNode, runningNode } from '../../home/running-node.js';
import { loadKey } from '../../identity/index.js';
import { isPeerUrl } from '../../net/membership.js';
import { toJsonText, UsageError } from '../format.js';
import { openHomeKernel } from '../home-ops.js';
import type { KernelLimits } from '../../kernel/kernel.js';
import { EXIT, list, repeatable, text, verb, type Session } from '../invocation.js';

const parseListen = (listen: string): { host: string; port: number } => {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(listen);
  const port = match ? Number(match[2]) : Number.NaN;
  if (!match || port > 65535) throw new UsageError(`--listen takes HOST:PORT (got ${quote(listen)})`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
};

/** The pure-call cache's bounds from `--cache` (a size) and `--cache-answers` (a count); the kernel's defaults for those not given. */
const cacheLimits = (size: string | undefined, answers: string | undefined): Partial<KernelLimits> => {
  const limits: { maxCacheBytes?: number; maxCacheEntries?: number } = {};
  if (size !== undefined) {
    // A size as --keep takes one; a duration or `all` is no size.
    let bytes;
    try {
      bytes = parseKeep(size);
    } catch {}
    if (!bytes || !('bytes' in bytes)) throw new UsageError(`--cache takes a size, e.g. 64MiB or 1GB (got ${quote(size)})`);
    limits.maxCacheBytes = bytes.bytes;
  }
  if (answers !== undefined) {
    if (!/^\d{1,15}$/.test(answers)) throw new UsageError(`--cache-answers takes a whole number (got ${quote(answers)})`);
    limits.maxCacheEntries = Number(answers);
  }
  return limits;
};

export const startCommand = (session: Session) =>
  verb(
    session,
    'start',
    'run a node on this home (loopback unless told otherwise) with its web page on the same port; calls it cannot answer go to its peers; Ctrl-C stops it',
    (c) =>
      c
        .option('--listen <host:port>', 'where to listen (default: 127.0.0.1 and the port this home\'s node last listened on, else any free port)')
        .option('--peer <url>', 'a peer node\'s ws:// URL, remembered in the home (repeatable)', repeatable)
        .option('--web-remote', 'serve the web page to other machines too')
        .option('--keep <window>', 'journal history to keep: a duration (30d, 12h) or a size (500MB, 2GiB), remembered in the home; all keeps everything (see README: Retention)')
        .option('--archive <dir>', 'move journal segments that fall out of --keep into this directory instead of deleting them')
        .option('--cache <size>', 'memory the pure-call cache may hold, e.g. 64MiB (the default) or 1GB')
        .option('--cache-answers <n>', 'answers the pure-call cache may hold (default 100000)')
        .option('--web-host <name>', 'a host name the web page may be reached by, optionally with :PORT (repeatable)', repeatable)
        .option('--relay', 'relay for nodes others cannot dial (circuit relay v2 on the control plane)')
        .option('--no-p2p', 'run no control plane: no DHT, so only peers and invitations find tokens and nodes'),
    async (inv, _args, opts) => {
      const keep = text(opts.keep);
      const archive = text(opts.archive);
      if (keep !== undefined) {
        try {
          parseKeep(keep);
        } catch (error) {
          throw new UsageError(`--${(error as Error).message}`, 'ERR_BAD_KEEP');
        }
      }
      const limits = cacheLimits(text(opts.cache), text(opts.cacheAnswers));
      const webHosts = list(opts.webHost).map((name) => {
        if (!/^([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?$/i.test(name)) throw new UsageError(`--web-host takes a host name or address, optionally with :PORT (got ${quote(name)})`);
        return name;
      });
      // Without --listen the node comes back on the port it last had, so its peers and the grid URLs it handed out still reach it.
      const listen = text(opts.listen);
      const remembered = listen === undefined ? await loadListenPort(homePaths(inv.home).listen) : undefined;
      const { host, port } = parseListen(listen ?? `127.0.0.1:${remembered ?? 0}`);
      // The node and its log (ws, CapTP, pino) are loaded by this command only, not by every `grid` (../main.ts imports every verb).
      // The module parser (~0.5 s) is not: a call on a module whose analysis the home kept never needs it, and the first
      // publish, or call on a module analyzed nowhere yet, loads it outside the call's time limit (kernel/calls.ts).
      const p2p = opts.p2p !== false;
      if (!p2p && opts.relay === true) throw new UsageError('--relay needs the control plane: drop --no-p2p');
      const [{ startNode }, { logLevelFrom, makeLog }, { makeWebPage }, plane] = await Promise.all([
        import('../../net/node.js'),
        import('../../net/log.js'),
        import('../../web/page.js'),
        p2p ? import('../../p2p/index.js') : undefined,
      ]);
      let level;
      try {
        level = logLevelFrom(inv.env, inv.debug);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      const log = makeLog({ level });
      const peerUrls = list(opts.peer).map((url) => {
        if (!isPeerUrl(url)) throw new UsageError(`--peer takes a ws:// or wss:// URL (got ${quote(url)})`);
        return url;
      });
      const paths = homePaths(inv.home);
      const running = await runningNode(paths.node);
      if (running) throw new UsageError(`a node is running on this home (${running.url}, pid ${running.pid}); stop it first`);
      const { identity, seed } = await loadKey(paths.identity).catch(() => {
        throw new NoHomeError(paths.root);
      });
      const random = (n: number) => new Uint8Array(randomBytes(n));
      const known = await rememberPeers(paths.peers, peerUrls);
      // What closures log (grid.log) is an event of the node's too: one line each, its text escaped, so no closure can forge a line.
      const closureLog = (token: string, line: string) => log.info({ event: 'closure-log', token }, line);
      const node = await startNode((forward) => openHomeKernel(inv, { forward, log: closureLog, limits, ...(keep !== undefined ? { keep } : {}), ...(archive !== undefined ? { archive: resolve(archive) } : {}) }), {
        identity,
        random,
        host,
        port,
        peers: known,
        invitations: await Invitations.open(paths.invitations),
        remember: async (urls) => void (await rememberPeers(paths.peers, urls)),
        // The remembered port taken by another program: listen on a free one; the peers are told (net/addresses.ts).
        fallbackPort: remembered !== undefined,
        log,
        addresses: { known: await loadAddresses(paths.addresses), save: (records) => saveAddresses(paths.addresses, records) },
        moved: async (former, url) => void (await replacePeers(paths.peers, former, url)),
        ...(plane ? { controlPlane: plane.controlPlane({ identity, seed, host, random, log, relay: opts.relay === true }) } : {}),
        // The page shows the home's pet names (read-only; its filter takes them too). Its access key is fresh: 192 bits of `random`.
        web: (kernel, peers, tabs) =>
          makeWebPage(kernel, {
            key: base64url.baseEncode(random(24)),
            peers,
            tabs,
            remote: opts.webRemote === true,
            hosts: webHosts,
            names: async () => (await PetNames.open(paths.names)).list().map(([name, entry]) => [name, entry.id] as const),
          }),
      });
      try {
        await announceNode(paths.node, node.server.url, node.server.web);
        await rememberListenPort(paths.listen, Number(new URL(node.server.url).port));
        // Listening for the stop signals before saying the node listens: whoever waits for that line may send one at once.
        const stopped = new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        inv.io.out(
          inv.json
            ? toJsonText({ url: node.server.url, principal: node.kernel.principal, peers: known, web: node.server.web })
            : `node ${node.kernel.principal} listening on ${node.server.url}${known.length ? `; peers: ${known.join(', ')}` : ''}\nweb: ${node.server.web}`,
        );
        await stopped;
        await retractNode(paths.node);
      } finally {
        // Stop taking connections; calls in flight are answered or revoked
        // as their connections close; the kernel then flushes the journal.
        await node.close();
      }
      return EXIT.ok;
    },
  );
