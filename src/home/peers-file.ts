/**
 * The peers a home's node has been told about (`grid start --peer URL`),
 * remembered so that the next `grid start` reconnects to them.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';

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
