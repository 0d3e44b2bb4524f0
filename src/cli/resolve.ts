/**
 * What a verb's words name: a token (a CID, a pet name or a grid URL), a
 * module (a CID, a file or a pet name), a principal (a did:key or a pet
 * name), a file's bytes. A word that names nothing says which it is not:
 * a file that is not there, a pet name that is not set (with the nearest
 * one), a module where a token was wanted.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { asModuleId, asPrincipal, asToken, parseCid, quote, type Token } from '../interface/ids.js';
import { kindOf, type PetNames } from '../home/names.js';
import { parseGridUrl, type GridUrl } from '../net/grid-url.js';
import { UsageError } from './format.js';
import type { HomeOps } from './home-ops.js';

/** Edit distance between two short words, a swap of neighbours counting one (pet names are at most 64 characters). */
const distance = (a: string, b: string): number => {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i += 1) {
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
};

/** The name among `candidates` nearest to `word`, if one is near enough to be a typo of it (a third of its letters, at least one). */
export const nearest = (word: string, candidates: Iterable<string>): string | undefined => {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const d = distance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
};

/** A word that is no pet name but one letter or so away from one: a typo, said so. */
const typoOf = (word: string, names: PetNames, others: readonly string[] = []): UsageError | undefined => {
  const near = nearest(word, [...names.list().map(([name]) => name), ...others]);
  return near === undefined ? undefined : new UsageError(`no such name ${quote(word)}; did you mean ${quote(near)}? (\`grid names\` lists them)`, 'ERR_NO_SUCH_NAME');
};

const isModuleCid = (text: string) => {
  try {
    asModuleId(text);
    return true;
  } catch {
    return false;
  }
};

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
  if (isModuleCid(text)) throw new UsageError(`${quote(text)} is a module, not a token: make a closure over it with \`grid issue ${text} --export NAME\``, 'ERR_NOT_A_TOKEN');
  if (!isCid(text)) {
    const typo = typoOf(text, names);
    if (typo) throw typo;
  }
  return { token: asToken(text) };
};

export const resolveToken = (text: string | undefined, names: PetNames): Token => resolveTarget(text, names).token;

/** A principal given as a did:key or a pet name. */
export const resolvePrincipal = (text: string, names: PetNames): string => {
  const named = names.get(text);
  if (named) {
    if (named.kind !== 'principal') throw new UsageError(`${quote(text)} names a ${named.kind}, not a principal`);
    return named.id;
  }
  if (!text.startsWith('did:')) {
    const typo = typoOf(text, names);
    if (typo) throw typo;
  }
  return asPrincipal(text);
};

/** Any identifier a pet name may stand for (a token, module, principal or block), given as itself or by its pet name. */
export const resolveId = (text: string, names: PetNames): string => {
  const named = names.get(text);
  if (named) return named.id;
  try {
    kindOf(text);
  } catch {
    const typo = typoOf(text, names);
    if (typo) throw typo;
  }
  return text;
};

export const isCid = (text: string) => {
  try {
    parseCid(text);
    return true;
  } catch {
    return false;
  }
};

/** Does this word look like a path to a file (rather than a CID or a name)? */
export const isPathLike = (text: string) => /[/\\]/.test(text) || /\.(m?js|wasm|wat)$/i.test(text);

export const readInput = async (file: string): Promise<Uint8Array> => {
  try {
    return new Uint8Array(await readFile(file));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'ENOENT' ? `no such file: ${file}` : `cannot read ${file}: ${code ?? (error as Error).message}`, code === 'ENOENT' ? 'ERR_NO_SUCH_FILE' : 'ERR_READ');
  }
};

/** WebAssembly's first four bytes. */
const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

/** A module file's bytes; a `.wasm` file that is not WebAssembly is named as such, rather than parsed as JavaScript. */
export const readModuleFile = async (file: string): Promise<Uint8Array> => {
  const bytes = await readInput(file);
  if (/\.wasm$/i.test(file) && !WASM_MAGIC.every((byte, i) => bytes[i] === byte)) {
    throw new UsageError(`${basename(file)} is not WebAssembly: it does not start with the \\0asm header (compile .wat text with wat2wasm; see README)`, 'ERR_NOT_WASM');
  }
  return bytes;
};

/**
 * A module given as a pet name, a file (published on the way) or a CID.
 * `others` are further words that stand for a module here (the shipped
 * policies' names), passed through as they are.
 */
export const resolveModule = async (home: Pick<HomeOps, 'publish'>, names: PetNames, ref: string, others: readonly string[] = []): Promise<string> => {
  const named = names.get(ref);
  if (named) {
    if (named.kind !== 'module') throw new UsageError(`${quote(ref)} names a ${named.kind}, not a module`);
    return named.id;
  }
  if (others.includes(ref)) return ref;
  if (existsSync(ref)) return home.publish(await readModuleFile(ref));
  if (isPathLike(ref)) throw new UsageError(`no such file: ${ref}`, 'ERR_NO_SUCH_FILE');
  if (isCid(ref) && !isModuleCid(ref)) throw new UsageError(`${quote(ref)} is not a module CID (a module's CID starts with bafk; a token's with bafy)`, 'ERR_NOT_A_MODULE');
  if (!isCid(ref)) {
    const typo = typoOf(ref, names, others);
    if (typo) throw typo;
  }
  return ref;
};

/** Give `id` the pet name `pet`; a name already given to something else is kept unless `force`. */
export const setName = async (names: PetNames, pet: string, id: string, force: boolean) => {
  const existing = names.get(pet);
  if (existing && existing.id !== id && !force) {
    throw new UsageError(`${quote(pet)} already names ${existing.kind} ${existing.id}; add --force to give the name to ${id}`, 'ERR_NAME_TAKEN');
  }
  return names.set(pet, id);
};
