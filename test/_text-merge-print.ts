// Prints merges of seeded inputs, for the cross-process determinism test.
import '../src/perimeter/lockdown.js';
import { createHash } from 'node:crypto';
import { mergeText } from '../src/docs/text-merge.js';
import { makeEdits, makeText } from './_text-edits.js';

const out: string[] = [];
out.push(mergeText('abc', 'aXbc', 'aYbc'), mergeText('abc', 'aYbc', 'aXbc'));
out.push(mergeText('e\u0301 café 😀 ok', 'e\u0301 cafés 😀😀 ok', 'é café 👍🏽 ok!'));
const base = makeText(5_000, 1);
const ours = makeEdits(base, 100, 2).result;
const theirs = makeEdits(base, 100, 3).result;
const merged = mergeText(base, ours, theirs);
out.push(createHash('sha256').update(merged).digest('hex'), String(merged.length));
process.stdout.write(JSON.stringify(out));
