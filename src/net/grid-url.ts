/**
 * Grid URLs: how a token is shared. `grid://<token>?via=ws://host:port` adds
 * where to reach a node that answers it; a delegated token also carries its
 * chain (`&chain=`, base64url of the CBOR `[links, modules]`), so that whoever
 * receives it can use it while its delegators are offline.
 */
import { base64url } from 'multiformats/bases/base64';
import { quote } from '../interface/ids.js';
import { GridError } from '../interface/errors.js';
import { decode, encode } from '../wire/index.js';
import type { ChainBlocks } from '../wire/shapes.js';
import { chainFrom, chainValue } from './frames.js';

export class GridUrlError extends GridError {}

/** Largest chain a URL may carry: the wire's own limits apply again when it is used. */
const MAX_CHAIN_URL_BYTES = 256 * 1024;

export interface GridUrl {
  readonly token: string;
  readonly via?: string;
  readonly chain?: ChainBlocks;
}

const chainFromText = (text: string): ChainBlocks => {
  const bad = (): never => {
    throw new GridUrlError('ERR_GRID_URL', 'the grid URL\'s chain is not a delegation chain');
  };
  if (text.length > MAX_CHAIN_URL_BYTES) bad();
  let value: unknown;
  try {
    // multiformats' base64url decoder wants its multibase prefix, 'u'.
    value = decode(base64url.decode(`u${text}`));
  } catch {
    bad();
  }
  return chainFrom(value) ?? bad();
};

export const parseGridUrl = (text: string): GridUrl => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new GridUrlError('ERR_GRID_URL', `not a grid URL: ${quote(text)}`);
  }
  if (url.protocol !== 'grid:') throw new GridUrlError('ERR_GRID_URL', `not a grid URL: ${quote(text)} (expected grid://<token>?via=ws://host:port)`);
  const token = url.hostname || url.pathname.replace(/^\/+/, '');
  const via = url.searchParams.get('via') ?? undefined;
  const chain = url.searchParams.get('chain');
  return { token, ...(via ? { via } : {}), ...(chain ? { chain: chainFromText(chain) } : {}) };
};

export const formatGridUrl = ({ token, via, chain }: GridUrl): string => {
  const params = new URLSearchParams();
  if (via) params.set('via', via);
  if (chain) params.set('chain', base64url.encode(encode(chainValue(chain))).slice(1));
  const query = params.toString();
  return `grid://${token}${query ? `?${query}` : ''}`;
};
