/**
 * Pet names: a person's own short names for tokens, modules and principals.
 * They are local and private — never sent to anyone — which is what makes
 * them safe from spoofing (the petname model).
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { asModuleId, asPrincipal, asToken, parseCid, quote } from '../interface/ids.js';
import { GridError } from '../interface/errors.js';

export type NameKind = 'token' | 'module' | 'principal' | 'block';
export interface NameEntry {
  readonly kind: NameKind;
  readonly id: string;
}

const PET_NAME = /^[A-Za-z][\w.-]{0,63}$/;

export class NameError extends GridError {}

export const assertPetName = (name: unknown): string => {
  if (typeof name !== 'string' || !PET_NAME.test(name)) {
    throw new NameError('ERR_BAD_NAME', `a pet name starts with a letter and has at most 64 letters, digits, '.', '_' or '-' (got ${quote(name)})`);
  }
  return name;
};

/** What kind of identifier `id` is. */
export const kindOf = (id: string): NameKind => {
  if (id.startsWith('did:')) {
    asPrincipal(id);
    return 'principal';
  }
  parseCid(id);
  try {
    asToken(id);
    return 'token';
  } catch {}
  try {
    asModuleId(id);
    return 'module';
  } catch {}
  return 'block';
};

export class PetNames {
  readonly #path: string;
  #names: Record<string, NameEntry>;

  private constructor(path: string, names: Record<string, NameEntry>) {
    this.#path = path;
    this.#names = names;
  }

  static async open(path: string): Promise<PetNames> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new PetNames(path, {});
      throw error;
    }
    let names: unknown;
    try {
      names = JSON.parse(text);
    } catch {
      throw new NameError('ERR_BAD_NAMES_FILE', `names file ${path} is not valid JSON`);
    }
    if (names === null || typeof names !== 'object' || Array.isArray(names)) {
      throw new NameError('ERR_BAD_NAMES_FILE', `names file ${path} is not a JSON object`);
    }
    return new PetNames(path, names as Record<string, NameEntry>);
  }

  list(): ReadonlyArray<readonly [string, NameEntry]> {
    return Object.entries(this.#names).sort(([a], [b]) => a.localeCompare(b));
  }

  get(name: string): NameEntry | undefined {
    return Object.hasOwn(this.#names, name) ? this.#names[name] : undefined;
  }

  /** The pet name of an identifier, if it has one. */
  nameOf(id: string): string | undefined {
    for (const [name, entry] of Object.entries(this.#names)) if (entry.id === id) return name;
    return undefined;
  }

  async set(name: string, id: string): Promise<NameEntry> {
    const entry: NameEntry = { kind: kindOf(id), id };
    this.#names = { ...this.#names, [assertPetName(name)]: entry };
    const temp = `${this.#path}.${process.pid}.tmp`;
    await writeFile(temp, `${JSON.stringify(this.#names, null, 2)}\n`, { mode: 0o600 });
    await rename(temp, this.#path);
    return entry;
  }
}
