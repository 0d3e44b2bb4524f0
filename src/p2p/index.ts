/**
 * The node's control plane (issue 18): a libp2p node (host.ts) and content
 * routing over its DHT (routing.ts), started by `grid start` once the grid
 * node listens. Only `grid start` loads this folder: libp2p costs ~1.5 s to
 * load and ~30 MiB to run, which no other command should pay.
 */
import type { Identity } from '../identity/identity.js';
import type { ControlPlane, ControlPlaneParts } from '../net/node.js';
import { silentLog, type Log } from '../net/log.js';
import { startHost } from './host.js';
import { startRouting, type ROUTING_LIMITS } from './routing.js';

export interface ControlPlaneOptions {
  readonly identity: Identity;
  /** The identity's seed: the libp2p key is made from it. */
  readonly seed: Uint8Array;
  /** The host libp2p listens on (the grid node's). */
  readonly host: string;
  readonly relay?: boolean;
  readonly random: (n: number) => Uint8Array;
  readonly log?: Log;
  readonly limits?: Partial<typeof ROUTING_LIMITS>;
}

export const controlPlane =
  (options: ControlPlaneOptions) =>
  async (parts: ControlPlaneParts): Promise<ControlPlane> => {
    const log = options.log ?? silentLog;
    const host = await startHost({ seed: options.seed, host: options.host, ...(options.relay ? { relay: true } : {}) });
    try {
      const routing = await startRouting({ ...parts, host, identity: options.identity, random: options.random, log, ...(options.limits ? { limits: options.limits } : {}) });
      const addresses = routing.multiaddrs();
      log.info({ event: 'p2p-listening', peer: host.peerId.toString(), addresses, relay: options.relay === true }, `control plane ${host.peerId.toString()} listening on ${addresses.join(', ')}`);
      return {
        forward: routing.forward,
        multiaddrs: routing.multiaddrs,
        bootstrap: routing.bootstrap,
        close: async () => {
          await routing.close();
          await host.stop();
        },
      };
    } catch (error) {
      await host.stop();
      throw error;
    }
  };
