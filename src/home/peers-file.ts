/**
 * The peers a home's node has been told about (`grid start --peer URL`),
 * remembered so that the next `grid start` reconnects to them; where each
 * said it listens; and the port the node itself listens on.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { addressShape, verifyAddress, type AddressRecord } from '../net/addresses.js';

export const loadPeers = async (path: string): Promise<string[]> => {
  try {
    const peers: unknown = JSON.parse(await readFile(path, 'utf8'));
    return Array.isArray(peers) ? peers.filter((url): url is string => typeof url === 'string') : [];
  } catch {
    return [];
  }
};

/** Remember `added` after the ones already known, without repeats; returns them all. */
export const rememberPeers = async (path: string, added: readonly string[]): Promise<string[]> => {
  const peers = [...new Set([...(await loadPeers(path)), ...added])];
  if (added.length > 0) {
    await writeFile(`${path}.tmp`, `${JSON.stringify(peers, null, 2)}\n`, { mode: 0o600 });
    await rename(`${path}.tmp`, path);
  }
  return peers;
};

const writeJson = async (path: string, value: unknown) => {
  await writeFile(`${path}.tmp`, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
};

/** A peer moved: `url` takes the place of the first of `former` (the rest are dropped); returns them all. */
export const replacePeers = async (path: string, former: readonly string[], url: string): Promise<string[]> => {
  const old = await loadPeers(path);
  const gone = new Set(former);
  const at = old.findIndex((known) => gone.has(known));
  const kept = old.filter((known) => !gone.has(known) && known !== url);
  const peers = at < 0 ? [...kept, url] : [...kept.slice(0, at), url, ...kept.slice(at)];
  await writeJson(path, [...new Set(peers)]);
  return peers;
};

/**
 * The port the home's node last listened on: `grid start` without
 * `--listen` comes back on it, so its peers and the grid URLs it handed out
 * (`?via=`) still reach it.
 */
export const loadListenPort = async (path: string): Promise<number | undefined> => {
  try {
    const { port } = JSON.parse(await readFile(path, 'utf8')) as { port?: unknown };
    return Number.isInteger(port) && (port as number) > 0 && (port as number) <= 65535 ? (port as number) : undefined;
  } catch {
    return undefined;
  }
};

export const rememberListenPort = async (path: string, port: number): Promise<void> => {
  if ((await loadListenPort(path)) !== port) await writeJson(path, { port });
};

/** The address records (net/addresses.ts) this home's node believed; each is checked again when heard, so a bad file only costs a peer's address. */
export const loadAddresses = async (path: string): Promise<AddressRecord[]> => {
  try {
    const records: unknown = JSON.parse(await readFile(path, 'utf8'));
    if (!Array.isArray(records)) return [];
    return records.flatMap((record: unknown) => {
      try {
        const checked = addressShape(record);
        return verifyAddress(checked) ? [checked] : [];
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
};

export const saveAddresses = (path: string, records: readonly AddressRecord[]): Promise<void> => writeJson(path, records);
