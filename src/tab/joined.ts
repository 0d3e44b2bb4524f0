/**
 * A tab node joined to the node that served its page: the tab's kernel
 * (node.ts) forwards what it does not hold over one WebSocket to that node,
 * answers the calls the node routes back, and syncs the documents it
 * follows (src/net/join.ts, the same code a Node process would run, over
 * the browser's WebSocket: src/net/browser-socket.ts).
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

/** Start this origin's tab node and join the node at `url` (`ws://` the page's own host, by default). */
export const startJoinedTabNode = async (options: Omit<TabNodeOptions, 'forward'> & { readonly url?: string } = {}): Promise<JoinedTabNode> => {
  const { url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`, ...tabOptions } = options;
  let joined: JoinedNode | undefined;
  const tab = await startTabNode({ ...tabOptions, forward: async (request) => joined?.forward(request) });
  joined = joinNode(tab.kernel, url, {
    identity: tab.identity,
    random: randomBytes,
    openSocket: browserSocket,
    log: consoleLog,
    setTimer,
  });
  const closeJoined = joined;
  return harden({
    ...tab,
    joined: closeJoined,
    close: async () => {
      closeJoined.close();
      await tab.close();
    },
  });
};
