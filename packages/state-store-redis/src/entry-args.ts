import type { DeltaBatch } from "@fair/state-store/internal";

/** Bytes per entry in the packed argument: uint32 slot, uint32 column, double value, double timestamp. */
export const entryBytes = 24;

/** A batch's entries as the apply and offer scripts take them (scripts.ts). */
export interface EntryArgs {
  /** Row id → its slot among the script's row keys, from 1, in first-seen order. */
  readonly rowSlots: Map<number, number>;
  /**
   * Every entry in one binary argument, {@link entryBytes} each,
   * little-endian: uint32 row slot, uint32 column, double value (delta or
   * offered probability), double timestamp — what the script reads with
   * `struct.unpack('<I4I4dd', …)`. Doubles go as they are, so the script
   * computes with exactly the numbers TypeScript validated (columns are
   * below `maxCols` ≤ 2^32, timestamps integers ≤ 2^53).
   */
  readonly packed: Buffer;
  /** How many timestamps were clamped to `latest`. */
  readonly clamped: number;
}

/**
 * Writes one entry at `offset`. `value + 0` turns −0 into 0, as the decimal
 * arguments did before (`String(-0)` is `"0"`).
 */
function writeEntry(
  out: Buffer,
  offset: number,
  slot: number,
  col: number,
  value: number,
  ts: number,
) {
  out.writeUInt32LE(slot, offset);
  out.writeUInt32LE(col, offset + 4);
  out.writeDoubleLE(value + 0, offset + 8);
  out.writeDoubleLE(ts, offset + 16);
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
  const packed = Buffer.allocUnsafe(count * entryBytes);
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
    writeEntry(packed, i * entryBytes, slot, key - row * maxCols, batch.deltas[i] as number, ts);
  }
  return { rowSlots, packed, clamped };
}

/** One entry of row slot 1, packed as {@link entryArgs} packs a batch's. */
export function singleEntry(col: number, value: number, ts: number): Buffer {
  const packed = Buffer.allocUnsafe(entryBytes);
  writeEntry(packed, 0, 1, col, value, ts);
  return packed;
}
