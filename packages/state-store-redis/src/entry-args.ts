import type { DeltaBatch } from "@fair/state-store/internal";

/** A batch's entries as the apply and offer scripts take them (scripts.ts). */
export interface EntryArgs {
  /** Row id → its slot among the script's row keys, from 1, in first-seen order. */
  readonly rowSlots: Map<number, number>;
  /** Four per entry: row slot, column, value (delta or offered probability), timestamp. */
  readonly args: string[];
  /** How many timestamps were clamped to `latest`. */
  readonly clamped: number;
}

/**
 * The script arguments for the first `count` entries of a validated batch
 * (keys `row × maxCols + col`, values, timestamps), timestamps past `latest`
 * (`now + maxClockSkewMs`) clamped to it. Read from the batch at once: the
 * store reuses it, so nothing may read it after an await.
 */
export function entryArgs(
  batch: DeltaBatch,
  count: number,
  maxCols: number,
  latest: number,
): EntryArgs {
  const rowSlots = new Map<number, number>();
  const args: string[] = new Array(count * 4);
  let clamped = 0;
  for (let i = 0; i < count; i++) {
    const key = batch.keys[i] as number;
    const row = Math.floor(key / maxCols);
    let slot = rowSlots.get(row);
    if (slot === undefined) {
      slot = rowSlots.size + 1;
      rowSlots.set(row, slot);
    }
    let ts = batch.times[i] as number;
    if (ts > latest) {
      ts = latest;
      clamped++;
    }
    args[i * 4] = String(slot);
    args[i * 4 + 1] = String(key - row * maxCols);
    args[i * 4 + 2] = String(batch.deltas[i]);
    args[i * 4 + 3] = String(ts);
  }
  return { rowSlots, args, clamped };
}
