import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type SeedSnapshot,
  SeedSnapshotSchema,
  type StoreSnapshot,
  StoreSnapshotSchema,
} from "@fair/state-proto";
import { StoreError } from "./errors.js";
import type { ResolvedStoreOptions } from "./options.js";
import { SeedTable } from "./seed-table.js";

/** The `format_version` this package writes, and the only one it reads. */
export const snapshotFormatVersion = 1;

const maxSafeTime = BigInt(Number.MAX_SAFE_INTEGER);
const maxUint64 = 2n ** 64n - 1n;

/** One (namespace, seed) and its buckets, as stored or as restored. */
export interface SeedEntry {
  readonly namespace: string;
  readonly seed: bigint;
  readonly table: SeedTable;
}

/** Encodes every entry as a `StoreSnapshot`, bucket columns packed. */
export function encodeSnapshot(
  entries: Iterable<SeedEntry>,
  takenAtMs: number,
  maxCols: number,
): Uint8Array {
  const seeds: SeedSnapshot[] = [];
  for (const { namespace, seed, table } of entries) {
    const rowIds: number[] = [];
    const colIds: number[] = [];
    const probs: number[] = [];
    const lastUpdateTimesMs: bigint[] = [];
    table.forEach((key, prob, timeMs) => {
      const row = Math.floor(key / maxCols);
      rowIds.push(row);
      colIds.push(key - row * maxCols);
      probs.push(prob);
      lastUpdateTimesMs.push(BigInt(timeMs));
    });
    seeds.push(
      create(SeedSnapshotSchema, { namespace, seed, rowIds, colIds, probs, lastUpdateTimesMs }),
    );
  }
  const snapshot = create(StoreSnapshotSchema, {
    formatVersion: snapshotFormatVersion,
    takenAtMs: toUint64(takenAtMs),
    seeds,
  });
  return toBinary(StoreSnapshotSchema, snapshot);
}

/**
 * Decodes and checks a whole snapshot against `options`, building its
 * tables off to the side; throws a `StoreError` at the first problem, so a
 * caller that swaps the tables in only on success applies nothing of a bad
 * snapshot.
 */
export function decodeSnapshot(bytes: Uint8Array, options: ResolvedStoreOptions): SeedEntry[] {
  if (!(bytes instanceof Uint8Array)) {
    throw new StoreError("invalid_argument", "bytes", "must be a Uint8Array");
  }
  let snapshot: StoreSnapshot;
  try {
    snapshot = fromBinary(StoreSnapshotSchema, bytes);
  } catch (cause) {
    // protobuf-es throws a plain Error; normalise it to this package's type.
    throw new StoreError("snapshot_malformed", "bytes", "is not a StoreSnapshot", cause);
  }
  if (snapshot.formatVersion !== snapshotFormatVersion) {
    throw new StoreError(
      "snapshot_version",
      "format_version",
      `is ${snapshot.formatVersion}; this version reads only ${snapshotFormatVersion}`,
    );
  }
  const seen = new Map<string, Set<bigint>>();
  return snapshot.seeds.map((entry, i) => {
    const field = `seeds[${i}]`;
    if (entry.seed % options.windowBig !== 0n) {
      throw malformed(
        `${field}.seed`,
        `${entry.seed} is not a multiple of windowMs ${options.windowMs}; was the snapshot written with another window?`,
      );
    }
    let seeds = seen.get(entry.namespace);
    if (seeds === undefined) {
      seeds = new Set();
      seen.set(entry.namespace, seeds);
    }
    if (seeds.has(entry.seed)) throw malformed(field, `repeats seed ${entry.seed}`);
    seeds.add(entry.seed);
    return {
      namespace: entry.namespace,
      seed: entry.seed,
      table: decodeTable(entry, field, options),
    };
  });
}

function decodeTable(entry: SeedSnapshot, field: string, options: ResolvedStoreOptions): SeedTable {
  const { rowIds, colIds, probs, lastUpdateTimesMs } = entry;
  const length = rowIds.length;
  for (const [name, column] of [
    ["col_ids", colIds],
    ["probs", probs],
    ["last_update_times_ms", lastUpdateTimesMs],
  ] as const) {
    if (column.length !== length) {
      throw malformed(`${field}.${name}`, `has ${column.length} entries, row_ids has ${length}`);
    }
  }
  const { maxRows, maxCols } = options;
  const table = new SeedTable();
  for (let j = 0; j < length; j++) {
    const row = rowIds[j] as number;
    const col = colIds[j] as number;
    const prob = probs[j] as number;
    const time = lastUpdateTimesMs[j] as bigint;
    if (row >= maxRows) throw malformed(`${field}.row_ids[${j}]`, `${row} ≥ maxRows ${maxRows}`);
    if (col >= maxCols) throw malformed(`${field}.col_ids[${j}]`, `${col} ≥ maxCols ${maxCols}`);
    if (!(prob >= 0 && prob <= 1)) {
      throw malformed(`${field}.probs[${j}]`, `must be in [0, 1], got ${prob}`);
    }
    if (time > maxSafeTime) {
      throw malformed(`${field}.last_update_times_ms[${j}]`, `must be below 2^53, got ${time}`);
    }
    const key = row * maxCols + col;
    if (table.has(key))
      throw malformed(`${field}.row_ids[${j}]`, `repeats bucket (${row}, ${col})`);
    table.load(key, prob, Number(time));
  }
  return table;
}

// A clock reading as a uint64, saturating rather than failing the snapshot.
function toUint64(ms: number): bigint {
  const value = BigInt(Math.max(0, Math.floor(ms)));
  return value > maxUint64 ? maxUint64 : value;
}

function malformed(field: string, problem: string): StoreError {
  return new StoreError("snapshot_malformed", field, problem);
}
