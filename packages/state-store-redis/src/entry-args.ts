import { blockColumns, groupOf, rowMember, seedHash } from "./keys.js";

/** Bytes per entry in the packed argument: uint32 key slot, uint32 column, double value, double timestamp. */
export const entryBytes = 24;

/** Entries by bucket key (`row × maxCols + col`), as a validated batch holds them. */
export interface Entries {
  readonly keys: ArrayLike<number>;
  /** Deltas, or offered probabilities. */
  readonly deltas: ArrayLike<number>;
  readonly times: ArrayLike<number>;
}

/** One slot group's part of a batch, as the apply and offer scripts take it (scripts.ts). */
export interface GroupCall {
  readonly group: number;
  /** The row parts' members (`<ns>|<seed>|<row>`), in first-seen order: key slot i + 1 is members[i]. */
  readonly members: readonly string[];
  /** Each row part's row id, as members. */
  readonly rows: readonly number[];
  /**
   * The group's entries in one binary argument, {@link entryBytes} each,
   * little-endian: uint32 key slot, uint32 column, double value, double
   * timestamp — what the script reads with `struct.unpack('<I4I4dd', …)`.
   * Doubles go as they are, so the script computes with exactly the
   * numbers TypeScript validated (columns are below `maxCols` ≤ 2^32,
   * timestamps integers ≤ 2^53).
   */
  readonly packed: Buffer;
}

/** A batch split by slot group. */
export interface GroupedEntries {
  readonly calls: GroupCall[];
  /** How many timestamps were clamped to `latest`. */
  readonly clamped: number;
}

interface GroupBuilder {
  readonly group: number;
  readonly slots: Map<number, number>;
  readonly members: string[];
  readonly rows: number[];
  count: number;
  offset: number;
  packed: Buffer | undefined;
}

/**
 * The script calls for the first `count` entries of a validated batch of
 * one (namespace, seed) — `field` is its seed field, `<ns>|<seed>` — one per
 * slot group the entries fall in, entries in batch order within each;
 * timestamps past `latest` (`now + maxClockSkewMs`) clamped to it. Read
 * from the batch at once: the store reuses it, so nothing may read it after
 * an await.
 */
export function groupEntries(
  batch: Entries,
  count: number,
  maxCols: number,
  latest: number,
  field: string,
  groupCount: number,
): GroupedEntries {
  const hash = seedHash(field);
  const builders = new Map<number, GroupBuilder>();
  const order: GroupBuilder[] = [];
  const entryGroup: GroupBuilder[] = new Array(count);
  const entrySlot = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const key = batch.keys[i] as number;
    const row = Math.floor(key / maxCols);
    const block = Math.floor((key - row * maxCols) / blockColumns);
    const group = groupOf(hash, row, block, groupCount);
    let builder = builders.get(group);
    if (builder === undefined) {
      builder = {
        group,
        slots: new Map(),
        members: [],
        rows: [],
        count: 0,
        offset: 0,
        packed: undefined,
      };
      builders.set(group, builder);
      order.push(builder);
    }
    // The column's block picks the group; within it, the row is one key.
    let slot = builder.slots.get(row);
    if (slot === undefined) {
      builder.members.push(rowMember(field, row));
      builder.rows.push(row);
      slot = builder.members.length;
      builder.slots.set(row, slot);
    }
    builder.count++;
    entryGroup[i] = builder;
    entrySlot[i] = slot;
  }
  for (const builder of order) builder.packed = Buffer.allocUnsafe(builder.count * entryBytes);
  let clamped = 0;
  for (let i = 0; i < count; i++) {
    const builder = entryGroup[i] as GroupBuilder;
    const key = batch.keys[i] as number;
    let ts = batch.times[i] as number;
    if (ts > latest) {
      ts = latest;
      clamped++;
    }
    const out = builder.packed as Buffer;
    const offset = builder.offset;
    out.writeUInt32LE(entrySlot[i] as number, offset);
    out.writeUInt32LE(key % maxCols, offset + 4);
    // `+ 0` turns −0 into 0, as the in-memory store stores it.
    out.writeDoubleLE((batch.deltas[i] as number) + 0, offset + 8);
    out.writeDoubleLE(ts, offset + 16);
    builder.offset = offset + entryBytes;
  }
  return {
    calls: order.map(({ group, members, rows, packed }) => ({
      group,
      members,
      rows,
      packed: packed as Buffer,
    })),
    clamped,
  };
}
