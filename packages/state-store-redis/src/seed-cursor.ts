import { StoreError } from "@fair/state-store";

// Where a paged read of one (namespace, seed) stands (RedisStore.readSeed),
// as the opaque string cursor the caller hands back:
//
//   s3:<group>:<row>:<inner>:<carry>
//
//   group  the slot group being read (keys.ts); the read ends past the last
//   row    the row whose part in that group is being read, "" before the
//          first: the next row is the first after it in the group's index
//   inner  the HSCAN cursor into that row part: "0" not begun, "-" scanned
//   carry  columns of that row part HSCAN returned but the page had no room
//          for, comma-separated: read again (HMGET) at the next page
//
// A small hash (up to Redis' hash-max-listpack-entries fields, 128 by
// default) comes back whole from one HSCAN whatever its COUNT, so a page can
// receive more than it may list; rather than drop or keep the rest, the
// cursor carries their columns, and the next page reads their values anew.
// HSCAN may return a field twice when Redis resizes the hash meanwhile, so
// a bucket may be listed on two pages, each time with its value then.

/** A paged read's position; see the format above. */
export interface SeedScan {
  readonly group: number;
  readonly row: number | undefined;
  readonly inner: string | undefined;
  readonly carry: readonly number[];
}

/** Where a read begins. */
export const scanStart: SeedScan = Object.freeze({
  group: 0,
  row: undefined,
  inner: undefined,
  carry: [],
});

const format = /^s3:(\d{1,3}):(\d{0,10}):(\d{1,20}|-):((?:\d{1,10}(?:,\d{1,10})*)?)$/;
/** Longer cursors are refused unread: none this store writes comes near. */
const maxCursorLength = 1 << 18;

/** The cursor for `scan`. */
export function encodeSeedCursor(scan: SeedScan): string {
  return `s3:${scan.group}:${scan.row ?? ""}:${scan.inner ?? "-"}:${scan.carry.join(",")}`;
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
  const [, group, row, inner, carry] = match as unknown as [string, string, string, string, string];
  const scan: SeedScan = {
    group: Number(group),
    row: row === "" ? undefined : Number(row),
    inner: inner === "-" ? undefined : inner,
    carry: carry === "" ? [] : carry.split(",").map(Number),
  };
  // An inner cursor or a carry belongs to a row begun; a group past the last ends the read.
  if (
    scan.group >= groups ||
    (scan.row === undefined && (scan.inner !== undefined || scan.carry.length > 0))
  ) {
    throw refuse();
  }
  return scan;
}
