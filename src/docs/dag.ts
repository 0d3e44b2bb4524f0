/**
 * Walking a document's version DAG: ancestors, and the lowest common
 * ancestor a 3-way merge starts from. Every walk is bounded: a document is
 * data a hostile peer may have shaped.
 */
import type { CID } from 'multiformats/cid';

/** Most versions one walk visits. */
export const MAX_WALK = 200_000;

export class WalkTooLong extends RangeError {}

/** `start` and every version it descends from, by CID text. `parentsOf` is synchronous: versions are read before they are walked. */
export const ancestors = (start: CID, parentsOf: (cid: CID) => readonly CID[]): Map<string, CID> => {
  const seen = new Map<string, CID>([[start.toString(), start]]);
  const queue = [start];
  for (let next = queue.pop(); next; next = queue.pop()) {
    for (const parent of parentsOf(next)) {
      const key = parent.toString();
      if (seen.has(key)) continue;
      if (seen.size >= MAX_WALK) throw new WalkTooLong(`a document's history is walked at most ${MAX_WALK} versions deep`);
      seen.set(key, parent);
      queue.push(parent);
    }
  }
  return seen;
};

/**
 * The lowest common ancestor of `a` and `b`: a common ancestor that is no
 * ancestor of another one. When there are several (criss-cross merges),
 * the one whose CID sorts first, so every replica picks the same base.
 * Undefined when they share none (two documents), which a caller refuses.
 */
export const lowestCommonAncestor = (a: CID, b: CID, parentsOf: (cid: CID) => readonly CID[]): CID | undefined => {
  const ofA = ancestors(a, parentsOf);
  const common = new Map([...ancestors(b, parentsOf)].filter(([key]) => ofA.has(key)));
  // A common ancestor that another one descends from is not lowest: one walk down from all of them marks those.
  const below = new Set<string>();
  const queue = [...common.values()].flatMap((cid) => parentsOf(cid));
  for (let next = queue.pop(); next; next = queue.pop()) {
    const key = next.toString();
    if (below.has(key)) continue;
    below.add(key);
    queue.push(...parentsOf(next));
  }
  const lowest = [...common.keys()].filter((key) => !below.has(key)).sort();
  return lowest.length > 0 ? common.get(lowest[0]!) : undefined;
};
