/**
 * The blocks a block names, for the garbage collector (home/gc.ts): every
 * DAG-CBOR link (tag 42 over `0x00 ‖ CID bytes`) and every CIDv1 written as
 * base32 text (a token a closure's env holds as a string, a module a
 * module's source imports by CID), wherever they occur in the bytes.
 *
 * A pattern search over the bytes, not a parse, and that on purpose: it
 * finds what a parse would (every link is encoded as that pattern, every
 * CID string as those characters) in bytes of any shape — a module's
 * source, a value a peer sent, a cache laid out in a format of its own —
 * and it cannot be stopped by input that does not parse. What it finds in
 * excess (bytes that merely look like a link) can only keep a block that
 * is present and hashes to it: the collector then keeps more, never less.
 */
import { CID } from 'multiformats/cid';
import { blockName } from './hashing.js';

/** Tag 42, the DAG-CBOR link tag, as CBOR writes it. */
const TAG_42 = [0xd8, 0x2a] as const;
/** The longest CID this looks for in binary: a 64-byte digest and a few varints. */
const MAX_CID_BYTES = 100;
/** A CIDv1 in base32 starts `baf` (version 1, then a one-byte codec below 0x80); a 32-byte digest makes it 59 characters, a 64-byte one 110. */
const CID_TEXT = /baf[a-z2-7]{55,}/g;
const TEXT_LENGTHS = [59, 110] as const;
const BAF = Buffer.from('baf', 'latin1');

const tryCid = (parse: () => CID): string | undefined => {
  try {
    const cid = parse();
    return cid.version === 1 ? blockName(cid) : undefined;
  } catch {
    return undefined;
  }
};

/** Each block name (base32 CIDv1, as the store files blocks) that `bytes` link to or spell out, once each. */
export const namedIn = (bytes: Uint8Array): Set<string> => {
  const found = new Set<string>();
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = view.indexOf(TAG_42[0]); at >= 0 && at + 4 < view.length; at = view.indexOf(TAG_42[0], at + 1)) {
    if (view[at + 1] !== TAG_42[1]) continue;
    // A byte string's head: its length in the low bits (< 24), or in the one byte after 0x58.
    const head = view[at + 2]!;
    let length: number;
    let start: number;
    if (head >= 0x40 && head < 0x58) (length = head - 0x40), (start = at + 3);
    else if (head === 0x58) (length = view[at + 3]!), (start = at + 4);
    else continue;
    if (length < 2 || length > MAX_CID_BYTES || start + length > view.length || view[start] !== 0x00) continue;
    const name = tryCid(() => CID.decode(bytes.subarray(start + 1, start + length)));
    if (name) found.add(name);
  }
  if (view.indexOf(BAF) < 0) return found;
  const text = view.toString('latin1');
  for (const [match] of text.matchAll(CID_TEXT)) {
    // A run of letters may go on past the CID (a CBOR head that reads as a letter, say): the lengths a CID has are tried too.
    for (const candidate of [match, ...TEXT_LENGTHS.filter((n) => n < match.length).map((n) => match.slice(0, n))]) {
      const name = tryCid(() => CID.parse(candidate));
      if (name) {
        found.add(name);
        break;
      }
    }
  }
  return found;
};
