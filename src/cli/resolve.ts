/**
 * What a verb's words name: a token (a CID, a pet name or a grid URL), a
 * module (a CID, a file or a pet name), a principal (a did:key or a pet
 * name), a file's bytes.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { asPrincipal, asToken, parseCid, quote, type Token } from '../caps/ids.js';
import type { PetNames } from '../home/names.js';
import { parseGridUrl, type GridUrl } from '../net/grid-url.js';
import { UsageError } from './format.js';
import type { HomeOps } from './home-ops.js';

/** A token given as a CID, a pet name, or a grid URL (which may say where to reach it and carry its delegation chain). */
export const resolveTarget = (text: string | undefined, names: PetNames): GridUrl & { token: Token } => {
  if (!text) throw new UsageError('missing TOKEN');
  const named = names.get(text);
  if (named) {
    if (named.kind !== 'token') throw new UsageError(`${quote(text)} names a ${named.kind}, not a token`);
    return { token: named.id as Token };
  }
  if (text.startsWith('grid://')) {
    const url = parseGridUrl(text);
    return { ...url, token: asToken(url.token) };
  }
  return { token: asToken(text) };
};

export const resolveToken = (text: string | undefined, names: PetNames): Token => resolveTarget(text, names).token;

/** A principal given as a did:key or a pet name. */
export const resolvePrincipal = (text: string, names: PetNames): string => {
  const named = names.get(text);
  return named?.kind === 'principal' ? named.id : asPrincipal(text);
};

export const isCid = (text: string) => {
  try {
    parseCid(text);
    return true;
  } catch {
    return false;
  }
};

export const readInput = async (file: string): Promise<Uint8Array> => {
  try {
    return new Uint8Array(await readFile(file));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'ENOENT' ? `no such file: ${file}` : `cannot read ${file}: ${code ?? (error as Error).message}`);
  }
};

export const resolveModule = async (home: Pick<HomeOps, 'publish'>, names: PetNames, ref: string): Promise<string> => {
  const named = names.get(ref);
  if (named) {
    if (named.kind !== 'module') throw new UsageError(`${quote(ref)} names a ${named.kind}, not a module`);
    return named.id;
  }
  if (existsSync(ref)) return home.publish(await readInput(ref));
  return ref;
};
