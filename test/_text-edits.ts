/**
 * Seeded text and edit streams for the text-merge tests and bench: the same
 * seed gives the same text and edits in every process.
 */
export const rng = (seed: number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

const WORDS = ['grid', 'promise', 'merge', 'token', 'vat', 'kernel', 'document', 'version', 'head', 'base', 'ours', 'theirs', 'the', 'a', 'of', 'and', 'to'];

/** About `units` characters of ASCII prose, in lines of 40–70 characters. */
export const makeText = (units: number, seed: number): string => {
  const next = rng(seed);
  let text = '';
  let line = '';
  while (text.length < units) {
    line += (line ? ' ' : '') + WORDS[Math.floor(next() * WORDS.length)]!;
    if (line.length > 40 + next() * 30) {
      text += `${line}\n`;
      line = '';
    }
  }
  return text;
};

/** One edit as typed: at UTF-16 offset `at` of the text as it was then. */
export interface Edit {
  readonly at: number;
  readonly remove: number;
  readonly insert: string;
}

/** `count` random small edits (insert, delete or replace up to 8 chars) applied in turn to `text`. */
export const makeEdits = (text: string, count: number, seed: number): { edits: Edit[]; result: string } => {
  const next = rng(seed);
  const edits: Edit[] = [];
  let current = text;
  for (let i = 0; i < count; i += 1) {
    const kind = next();
    const at = Math.floor(next() * (current.length + 1));
    const remove = kind < 0.4 ? 0 : Math.min(current.length - at, 1 + Math.floor(next() * 8));
    const insert = kind >= 0.4 && kind < 0.7 ? '' : WORDS[Math.floor(next() * WORDS.length)]!.slice(0, 1 + Math.floor(next() * 8)) + (next() < 0.1 ? '\n' : ' ');
    edits.push({ at, remove, insert });
    current = current.slice(0, at) + insert + current.slice(at + remove);
  }
  return { edits, result: current };
};
