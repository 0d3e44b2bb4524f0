/**
 * One process of `npm run bench -- scale` (bench/scale.ts): several control
 * planes (src/p2p/host.ts, the grid's own libp2p configuration) in this
 * process, driven by the parent over IPC. Each provides random tokens under
 * their DHT keys (routing.ts `providerKey`) and looks tokens up for the
 * parent, reporting the time to the right provider and the hops taken.
 */
import '../dist/perimeter/lockdown.js';
import { randomBytes } from 'node:crypto';
import { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';
import { multiaddr } from '@multiformats/multiaddr';
import { startHost, type P2pHost } from '../dist/p2p/host.js';
import { providerKey } from '../dist/p2p/routing.js';
import type { Token } from '../dist/interface/ids.js';

type Command =
  | { op: 'start'; nodes: number }
  | { op: 'dial'; node: number; addresses: string[] }
  | { op: 'provide'; tokens: number }
  | { op: 'lookup'; id: number; node: number; token: string; provider: string; timeoutMs: number }
  | { op: 'stop' };

const LOOPBACK_LIMITS = { perAddressPerSecond: 10_000, maxIncomingPending: 1_000 };
const hosts: P2pHost[] = [];
const send = (message: unknown) => process.send!(message);

const lookup = async (host: P2pHost, token: Token, provider: string, timeoutMs: number) => {
  const began = performance.now();
  const asked = new Set<string>();
  try {
    for await (const event of host.services.dht.findProviders(await providerKey(token), { signal: AbortSignal.timeout(timeoutMs) })) {
      if (event.name === 'PEER_RESPONSE') asked.add(event.from.toString());
      if (event.name === 'PROVIDER' && event.providers.some((peer) => peer.id.toString() === provider)) {
        return { found: true, ms: performance.now() - began, hops: asked.size };
      }
    }
  } catch {}
  return { found: false, ms: performance.now() - began, hops: asked.size };
};

process.on('message', (command: Command) => {
  void (async () => {
    switch (command.op) {
      case 'start':
        // Every node here dials from 127.0.0.1: the per-address caps meant for one stranger would refuse the grid itself.
        for (let i = 0; i < command.nodes; i++) hosts.push(await startHost({ seed: new Uint8Array(randomBytes(32)), host: '127.0.0.1', limits: LOOPBACK_LIMITS }));
        return send({ op: 'started', nodes: hosts.map((host) => ({ peer: host.peerId.toString(), addresses: host.getMultiaddrs().map(String) })) });
      case 'dial':
        await hosts[command.node]!.dial(command.addresses.map((text) => multiaddr(text))).catch(() => {});
        return send({ op: 'dialled' });
      case 'provide': {
        const provided: Array<{ token: string; provider: string }> = [];
        let failed = 0;
        await Promise.all(
          hosts.map(async (host) => {
            for (let i = 0; i < command.tokens; i++) {
              const token = CID.createV1(0x71, await sha256.digest(new Uint8Array(randomBytes(32)))).toString() as Token;
              try {
                await host.contentRouting.provide((await providerKey(token)) as never, { signal: AbortSignal.timeout(30_000) });
                provided.push({ token, provider: host.peerId.toString() });
              } catch {
                failed += 1;
              }
            }
          }),
        );
        return send({ op: 'provided', provided, failed, rss: process.memoryUsage().rss });
      }
      case 'lookup':
        return send({ op: 'looked', id: command.id, ...(await lookup(hosts[command.node]!, command.token as Token, command.provider, command.timeoutMs)) });
      case 'stop':
        await Promise.all(hosts.map((host) => host.stop()));
        process.exit(0);
    }
  })().catch((error: unknown) => send({ op: 'error', message: String((error as Error)?.stack ?? error) }));
});
send({ op: 'ready', rss: process.memoryUsage().rss });
