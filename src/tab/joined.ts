/**
 * A tab node joined to the node that served its page: the tab's kernel
 * (node.ts) forwards what it does not hold over one WebSocket to that node,
 * answers the calls the node routes back, and syncs the documents it
 * follows (src/net/join.ts, the same code a Node process would run, over
 * the browser's WebSocket: src/net/browser-socket.ts).
 *
 * The connection is dialled once `joinWhen` settles — an app page that
 * renders from the replica it holds lets the first render go first, so the
 * handshake's signature check and the sync that follows do not delay it —
 * or as soon as anything needs it: a call to forward, tokens to announce,
 * someone waiting to be connected.
 */
import { joinNode, type JoinedNode } from '../net/join.js';
import { browserSocket } from '../net/browser-socket.js';
import type { Log } from '../net/log.js';
import { randomBytes, setTimer, startTabNode, type TabNode, type TabNodeOptions } from './node.js';

export interface JoinedTabNode extends TabNode {
  readonly joined: JoinedNode;
}

const say = (level: 'debug' | 'info' | 'warn' | 'error') => (fields: Record<string, unknown>, message: string) => console[level](message, fields);
/** The node's log lines, in the browser's console. */
const consoleLog: Log = Object.freeze({
  trace: () => {},
  debug: () => {},
  info: say('info'),
  warn: say('warn'),
  error: say('error'),
  isLevelEnabled: (level: string) => level !== 'trace' && level !== 'debug',
  child: () => consoleLog,
});

/** Start this origin's tab node and join the node at `url` (`ws://` the page's own host, by default) once `joinWhen` settles (at once without it) or the connection is needed. */
export const startJoinedTabNode = async (options: Omit<TabNodeOptions, 'forward'> & { readonly url?: string; readonly joinWhen?: Promise<unknown> } = {}): Promise<JoinedTabNode> => {
  const { url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`, joinWhen, ...tabOptions } = options;
  let dialled: JoinedNode | undefined;
  let closed = false;
  const tab = await startTabNode({ ...tabOptions, forward: async (request) => join()?.forward(request) });
  const join = () => {
    if (!dialled && !closed) dialled = joinNode(tab.kernel, url, { identity: tab.identity, random: randomBytes, openSocket: browserSocket, log: consoleLog, setTimer });
    return dialled;
  };
  const mustJoin = () => {
    const node = join();
    if (!node) throw new TypeError('the tab node is closed');
    return node;
  };
  const joined: JoinedNode = {
    forward: (request) => mustJoin().forward(request),
    announce: (tokens) => mustJoin().announce(tokens),
    // Not dialled yet: the state of a connection that has not been tried.
    state: () => dialled?.state() ?? { url, connected: false, failures: 0 },
    session: () => dialled?.session(),
    connected: () => mustJoin().connected(),
    disconnect: () => dialled?.disconnect(),
    redial: () => void mustJoin().redial(),
    close: () => {
      closed = true;
      dialled?.close();
    },
  };
  if (joinWhen) void joinWhen.finally(join);
  else join();
  return harden({
    ...tab,
    joined,
    close: async () => {
      joined.close();
      await tab.close();
    },
  });
};
