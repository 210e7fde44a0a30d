// A seed table's columns as they stood at one instant, for a snapshot that
// is written a slice at a time while the store goes on applying updates.
//
// Copying every table's slots up front would give that instant, but the
// copy is itself one long step: measured on a 2-core Xeon (Node 20), three
// Float64Array columns of 2^22 slots took ~50 ms to copy (3 × 32 MiB, page
// faults included). Copying a page before writing it (copy on write) moves
// the cost into updates instead: one update of 100 deltas spread over a
// 2^22-bucket seed touched 100 pages and copied 19 MiB, a 24 ms step.
//
// So the snapshot reads the table's pages as they are now, and the table,
// before it first writes a slot the snapshot has not read yet, hands over
// that slot's old key, probability and time (a few tens of nanoseconds per
// write, nothing for a table nobody writes to). Reading a page, the
// snapshot takes the handed-over values where there are some.

/** Slots per page of a seed table's columns, as a power of two. */
export const pageBits = 13;
/** Slots per page (8 192): the unit a snapshot reads in one go. */
export const pageSlots = 1 << pageBits;
/** A slot's index within its page: `slot & pageMask`. */
export const pageMask = pageSlots - 1;

/** A slot's values as they were when the columns were frozen: key, probability, time. */
export type SavedSlot = readonly [key: number, prob: number, timeMs: number];

/**
 * One page to read: slots `from` to `to` (exclusive) of `cells` — slot i's
 * key, probability and time at 3i, 3i + 1, 3i + 2 — where `saved` (by index
 * within the page) has nothing older.
 */
export interface ColumnsPage {
  readonly cells: Float64Array;
  readonly from: number;
  readonly to: number;
  readonly saved: ReadonlyMap<number, SavedSlot> | undefined;
}

/** What the frozen columns read the table's pages through, and tell it when done. */
export interface FrozenOwner {
  /** The cells of page `page` of the table as it is now. */
  page(page: number): Float64Array;
  /** The snapshot is over: stop handing values over to `columns`. */
  close(columns: FrozenColumns): void;
}

/** The columns of one seed table at the instant it was frozen (`SeedTable.freeze`). */
export class FrozenColumns {
  /** Slots in use at that instant; slots past it were empty. */
  readonly length: number;
  readonly #owner: FrozenOwner;
  /** Pages before this one are read: their slots need no saving. */
  #next = 0;
  /** Per page, the slots written since the freeze, by index within the page. */
  readonly #saved = new Map<number, Map<number, SavedSlot>>();
  #closed = false;

  constructor(length: number, owner: FrozenOwner) {
    this.length = length;
    this.#owner = owner;
  }

  /** Pages to read, `page(0)` to `page(pages − 1)`. */
  get pages(): number {
    return Math.ceil(this.length / pageSlots);
  }

  /** Called by the table before it writes `slot`, with what the slot holds now. */
  beforeWrite(slot: number, key: number, prob: number, timeMs: number): void {
    if (slot >= this.length) return;
    const page = slot >>> pageBits;
    if (page < this.#next) return;
    let saved = this.#saved.get(page);
    if (saved === undefined) {
      saved = new Map();
      this.#saved.set(page, saved);
    }
    const index = slot & pageMask;
    if (!saved.has(index)) saved.set(index, [key, prob, timeMs]);
  }

  /**
   * Page `page` as it stood when frozen. Read it within one synchronous
   * step, pages in order, then call `done(page)`.
   */
  page(page: number): ColumnsPage {
    const to = Math.min(pageSlots, this.length - page * pageSlots);
    return { cells: this.#owner.page(page), from: 0, to, saved: this.#saved.get(page) };
  }

  /** Page `page` is read: its slots need no saving from now on. */
  done(page: number): void {
    this.#saved.delete(page);
    this.#next = Math.max(this.#next, page + 1);
  }

  /** The snapshot is over, read to the end or not; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#saved.clear();
    this.#owner.close(this);
  }
}
