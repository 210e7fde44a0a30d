import { StoreError } from "@fair/state-store";

// Where a paged read of one (namespace, seed) stands (RedisStore.readSeed),
// as the opaque string cursor the caller hands back:
//
//   s1:<outer>:<rows>:<inner>:<carry>
//
//   outer  the HSCAN cursor into the seed's meta hash for the next rows, or
//          "-" once the meta hash has been scanned
//   rows   row ids still to read, comma-separated; the first is in progress
//   inner  the HSCAN cursor into that row: "0" not begun, "-" scanned
//   carry  columns of that row HSCAN returned but the page had no room for,
//          comma-separated: read again (HMGET) at the next page
//
// A small hash (up to Redis' hash-max-listpack-entries fields, 128 by
// default) comes back whole from one HSCAN whatever its COUNT, so a page can
// receive more than it may list; rather than drop or keep the rest, the
// cursor carries their columns, and the next page reads their values anew.

/** A paged read's position; see the format above. */
export interface SeedScan {
  readonly outer: string | undefined;
  readonly rows: readonly number[];
  readonly inner: string | undefined;
  readonly carry: readonly number[];
}

/** Where a read begins. */
export const scanStart: SeedScan = Object.freeze({ outer: "0", rows: [], inner: "0", carry: [] });

const format =
  /^s1:(\d{1,20}|-):((?:\d{1,10}(?:,\d{1,10})*)?):(\d{1,20}|-):((?:\d{1,10}(?:,\d{1,10})*)?)$/;
/** Longer cursors are refused unread: none this store writes comes near. */
const maxCursorLength = 1 << 18;

/** The cursor for `scan`. */
export function encodeSeedCursor(scan: SeedScan): string {
  return `s1:${scan.outer ?? "-"}:${scan.rows.join(",")}:${scan.inner ?? "-"}:${scan.carry.join(",")}`;
}

/** Reads a cursor `encodeSeedCursor` wrote; anything else is a `StoreError` (`invalid_argument`, `cursor`). */
export function parseSeedCursor(cursor: unknown): SeedScan {
  const match =
    typeof cursor === "string" && cursor.length <= maxCursorLength ? format.exec(cursor) : null;
  if (match === null) {
    throw new StoreError("invalid_argument", "cursor", "must be a cursor this store returned");
  }
  const [, outer, rows, inner, carry] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
  ];
  const list = (text: string) => (text === "" ? [] : text.split(",").map(Number));
  const scan = {
    outer: outer === "-" ? undefined : outer,
    rows: list(rows),
    inner: inner === "-" ? undefined : inner,
    carry: list(carry),
  };
  // Without a row in progress there is no inner cursor or carry to speak of.
  if (scan.rows.length === 0 && (scan.inner !== "0" || scan.carry.length > 0)) {
    throw new StoreError("invalid_argument", "cursor", "must be a cursor this store returned");
  }
  return scan;
}
