/**
 * The record index of a home whose node is running, for a command that
 * reads it without the home's lock (a REPL, `grid graph`): the node's own
 * index in the home's database, opened read only and trusted up to the
 * position it stood at when this view opened, with the records appended
 * since indexed here in memory as the journal is followed. A query then
 * reads only the records its answer concerns, however long the history —
 * instead of indexing the whole journal again in every such process.
 *
 * The node keeps writing its index meanwhile: items it adds after that
 * position are left to the memory part (which indexes the same records),
 * and what this view removes (a call no longer pending) it remembers, so the
 * two never disagree about a record both hold. Per-token counts are the
 * node's own, which stand at most one journal batch behind the file.
 */
import { memoryListStore, type Located, type ListStore, type Page } from './records.js';

export const followedListStore = (base: ListStore): ListStore => {
  const overlay = memoryListStore();
  /** Base items hidden: those this view removed, by list name. */
  const removed = new Map<string, Set<number>>();
  /** Base items count only below this record number (the base's position when the view opened); a `clear` makes it 0. */
  const opened = base.position();
  let below = opened?.seq ?? 0;
  const baseAt = () => (below > 0 ? opened : undefined);
  const hidden = (name: string) => removed.get(name);

  const baseList = (name: string, { limit, reverse, after }: Page): Located[] => {
    if (below === 0) return [];
    const gone = hidden(name);
    const extra = gone?.size ?? 0;
    // Reverse: start below the base's own newer items; forward: they come last and are filtered off.
    const from = reverse ? Math.min(after ?? below, below) : after;
    const items = base.list(name, { ...(reverse ? { reverse } : {}), ...(from !== undefined ? { after: from } : {}), ...(limit !== undefined ? { limit: limit + extra } : {}) });
    return items.filter((item) => item.seq < below && !gone?.has(item.seq));
  };

  const view: Pick<ListStore, 'list' | 'item'> = {
    list(name, page = {}) {
      const mine = overlay.list(name, page);
      const theirs = baseList(name, page);
      if (theirs.length === 0) return mine;
      // Each side gave its first `limit` in order; merged by record number (this view's item wins a tie).
      const bySeq = new Map<number, Located>();
      for (const item of theirs) bySeq.set(item.seq, item);
      for (const item of mine) bySeq.set(item.seq, item);
      const merged = [...bySeq.values()].sort((a, b) => (page.reverse ? b.seq - a.seq : a.seq - b.seq));
      return page.limit === undefined ? merged : merged.slice(0, page.limit);
    },
    item(name, seq) {
      if (hidden(name)?.has(seq)) return undefined;
      return overlay.item(name, seq) ?? (seq < below ? base.item(name, seq) : undefined);
    },
  };

  return {
    position: () => overlay.position() ?? baseAt(),
    transact: (writes, at) =>
      overlay.transact(
        (tx) =>
          writes({
            ...tx,
            remove(name, seq) {
              tx.remove(name, seq);
              let gone = removed.get(name);
              if (!gone) removed.set(name, (gone = new Set()));
              gone.add(seq);
            },
            item: view.item,
            list: (name) => view.list(name),
          }),
        at,
      ),
    list: view.list,
    item: view.item,
    counts: (token) => (below > 0 ? base.counts(token) : overlay.counts(token)),
    lastSeal: () => overlay.lastSeal() ?? (below > 0 ? base.lastSeal() : undefined),
    // A rebuild (the base's position does not match the journal): everything from the journal, here.
    clear: async () => {
      below = 0;
      removed.clear();
      await overlay.clear();
    },
  };
};
