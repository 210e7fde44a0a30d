import { StoreError } from "@fair/state-store";

// Where a paged read of one (namespace, seed) stands (RedisStore.readSeed),
// as the opaque string cursor the caller hands back:
//
//   s2:<group>:<block>:<carry>
//
//   group  the slot group being read (keys.ts); the read ends past the last
//   block  "<row>|<block>" of the last block begun in that group, "" before
//          the first: the next block is the first after it in the group's
//          index (which lists a seed's blocks in that order)
//   carry  columns of that block the page had no room for, comma-separated:
//          read again (HMGET) at the next page
//
// A block is read whole (HGETALL, at most 256 buckets); rather than list
// more than the page may, the cursor carries the columns left, and the next
// page reads their values anew.

/** A paged read's position; see the format above. */
export interface SeedScan {
  readonly group: number;
  readonly block: string;
  readonly carry: readonly number[];
}

/** Where a read begins. */
export const scanStart: SeedScan = Object.freeze({ group: 0, block: "", carry: [] });

const format = /^s2:(\d{1,3}):((?:\d{1,10}\|\d{1,10})?):((?:\d{1,10}(?:,\d{1,10})*)?)$/;
/** Longer cursors are refused unread: none this store writes comes near. */
const maxCursorLength = 1 << 12;

/** The cursor for `scan`. */
export function encodeSeedCursor(scan: SeedScan): string {
  return `s2:${scan.group}:${scan.block}:${scan.carry.join(",")}`;
}

/**
 * Reads a cursor `encodeSeedCursor` wrote for a store of `groups` slot
 * groups; anything else is a `StoreError` (`invalid_argument`, `cursor`).
 */
export function parseSeedCursor(cursor: unknown, groups: number): SeedScan {
  const match =
    typeof cursor === "string" && cursor.length <= maxCursorLength ? format.exec(cursor) : null;
  const refuse = () =>
    new StoreError("invalid_argument", "cursor", "must be a cursor this store returned");
  if (match === null) throw refuse();
  const [, group, block, carry] = match as unknown as [string, string, string, string];
  const scan = {
    group: Number(group),
    block,
    carry: carry === "" ? [] : carry.split(",").map(Number),
  };
  // A carry belongs to a block begun; a group past the last ends the read, never resumes it.
  if (scan.group >= groups || (scan.block === "" && scan.carry.length > 0)) throw refuse();
  return scan;
}
