import type { BucketState } from "@fair/state-store";

// The change message the apply script returns and publishes, one line each:
//
//   F1 <replica id> <encoded namespace> <seed>
//   R <row> <version>          for each row the batch changed, then
//   <col> <prob> <time>        for each bucket of that row it changed
//
// "F1" names the format, so a replica that meets another format (a newer
// replica during a rolling update) re-reads instead of misreading it.

const FORMAT = "F1";

/** One row's part of a change: the row's new version and its changed buckets. */
export interface RowChange {
  readonly row: number;
  readonly version: number;
  readonly buckets: BucketState[];
}

/** One applied batch, as published. */
export interface ChangeMessage {
  readonly origin: string;
  readonly namespace: string;
  readonly seed: bigint;
  readonly rows: RowChange[];
}

/** The first line of a message, written by TypeScript and passed to the script. */
export function messageHeader(origin: string, encodedNamespace: string, seed: bigint): string {
  return `${FORMAT} ${origin} ${encodedNamespace} ${seed}`;
}

/** Parses a change message; `undefined` for anything malformed or of another format. */
export function parseMessage(text: string): ChangeMessage | undefined {
  const lines = text.split("\n");
  const header = (lines[0] ?? "").split(" ");
  if (header.length !== 4 || header[0] !== FORMAT) return undefined;
  let namespace: string;
  let seed: bigint;
  try {
    namespace = decodeURIComponent(header[2] as string);
    seed = BigInt(header[3] as string);
  } catch {
    return undefined;
  }
  const rows: RowChange[] = [];
  let current: RowChange | undefined;
  for (let i = 1; i < lines.length; i++) {
    const parts = (lines[i] as string).split(" ");
    if (parts[0] === "R") {
      current = { row: Number(parts[1]), version: Number(parts[2]), buckets: [] };
      if (!Number.isInteger(current.row) || !Number.isInteger(current.version)) return undefined;
      rows.push(current);
    } else if (current !== undefined && parts.length === 3) {
      const bucket = {
        rowId: current.row,
        colId: Number(parts[0]),
        prob: Number(parts[1]),
        lastUpdateTimeMs: Number(parts[2]),
      };
      if (!Number.isFinite(bucket.prob) || !Number.isFinite(bucket.lastUpdateTimeMs)) {
        return undefined;
      }
      current.buckets.push(bucket);
    } else {
      return undefined;
    }
  }
  return { origin: header[1] as string, namespace, seed, rows };
}

/**
 * A row hash as read back (`HGETALL`): its version and every bucket in it,
 * tombstones (prob 0) included.
 */
export function parseRowHash(
  row: number,
  fields: Record<string, string>,
): { version: number; buckets: BucketState[] } {
  let version = 0;
  const buckets: BucketState[] = [];
  for (const field in fields) {
    const value = fields[field] as string;
    if (field === "v") {
      version = Number(value);
      continue;
    }
    const space = value.indexOf(" ");
    buckets.push({
      rowId: row,
      colId: Number(field),
      prob: Number(value.slice(0, space)),
      lastUpdateTimeMs: Number(value.slice(space + 1)),
    });
  }
  return { version, buckets };
}
