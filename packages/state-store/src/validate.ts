import { StoreError } from "./errors.js";
import type { ResolvedStoreOptions } from "./options.js";
import type { BucketDeltaInput, BucketInput, DeltaUpdateInput, StateOfferInput } from "./store.js";

const maxUint64 = 2n ** 64n - 1n;

/**
 * A validated batch as numbers: bucket keys (`row × maxCols + col`), deltas
 * and timestamps, in the update's order. Reused from update to update so the
 * hot path does not allocate per delta. Other stores validate with it too,
 * so they refuse exactly what the in-memory one refuses.
 */
export class DeltaBatch {
  keys = new Float64Array(256);
  deltas = new Float64Array(256);
  times = new Float64Array(256);
  length = 0;

  reserve(length: number): void {
    if (length > this.keys.length) {
      const capacity = Math.max(length, this.keys.length * 2);
      this.keys = new Float64Array(capacity);
      this.deltas = new Float64Array(capacity);
      this.times = new Float64Array(capacity);
    }
    this.length = 0;
  }
}

/**
 * Checks a whole update and writes it into `batch`, or throws a
 * `StoreError` naming the first bad field (proto spelling). Nothing is
 * applied before this returns, so a refused update leaves no trace.
 */
export function validateUpdate(
  update: DeltaUpdateInput,
  options: ResolvedStoreOptions,
  batch: DeltaBatch,
): void {
  if (update === null || typeof update !== "object") {
    throw new StoreError("invalid_argument", "update", "must be a DeltaUpdate");
  }
  checkSeed(update.seed, "seed", options);
  readEntries(update.deltas, deltaEntries, options, batch);
}

/**
 * Checks a whole state offer and writes it into `batch` — keys, values (in
 * `deltas`: here absolute probabilities, within [0, 1]) and timestamps — or
 * throws a `StoreError` naming the first bad field (`buckets[3].prob`).
 * Like {@link validateUpdate}, nothing is applied before this returns.
 */
export function validateOffer(
  offer: StateOfferInput,
  options: ResolvedStoreOptions,
  batch: DeltaBatch,
): void {
  if (offer === null || typeof offer !== "object") {
    throw new StoreError("invalid_argument", "offer", "must be a StateOffer");
  }
  checkSeed(offer.seed, "seed", options);
  readEntries(offer.buckets, bucketEntries, options, batch);
}

/** How one kind of list entry is named and read: a delta of an update, a bucket of an offer. */
interface EntryShape {
  /** The list's field, `deltas` or `buckets`. */
  readonly list: string;
  /** The entry's message, for the error of an entry that is not an object. */
  readonly message: string;
  /** The value's field (proto spelling) and its lowest allowed value; the highest is 1. */
  readonly valueField: string;
  readonly min: number;
}

const deltaEntries: EntryShape = {
  list: "deltas",
  message: "BucketDelta",
  valueField: "delta_prob",
  min: -1,
};

const bucketEntries: EntryShape = {
  list: "buckets",
  message: "Bucket",
  valueField: "prob",
  min: 0,
};

function readEntries(
  entries: unknown,
  shape: EntryShape,
  options: ResolvedStoreOptions,
  batch: DeltaBatch,
): void {
  const { list } = shape;
  if (!Array.isArray(entries)) {
    throw new StoreError("invalid_argument", list, "must be an array");
  }
  const { maxRows, maxCols } = options;
  batch.reserve(entries.length);
  const { keys, deltas: values, times } = batch;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    if (entry === null || typeof entry !== "object") {
      throw new StoreError("invalid_argument", `${list}[${i}]`, `must be a ${shape.message}`);
    }
    // Number() of a uint64 rounds only above 2^53, far past every bound
    // checked here, and rounds monotonically: a value at or past a bound
    // never lands below it. So the checks are exact on the rounded number.
    const row = uint64ToNumber(entry.rowId, list, i, "row_id");
    if (row >= maxRows) throw beyond(list, i, "row_id", entry.rowId, `maxRows ${maxRows}`);
    const col = uint64ToNumber(entry.colId, list, i, "col_id");
    if (col >= maxCols) throw beyond(list, i, "col_id", entry.colId, `maxCols ${maxCols}`);
    // Two plain property reads, not a callback: this is the hot path of every update.
    const a =
      shape === deltaEntries ? (entry as BucketDeltaInput).deltaProb : (entry as BucketInput).prob;
    if (typeof a !== "number" || !Number.isFinite(a)) {
      const field = `${list}[${i}].${shape.valueField}`;
      throw new StoreError("invalid_argument", field, `must be finite, got ${a}`);
    }
    if (a < shape.min || a > 1) {
      const field = `${list}[${i}].${shape.valueField}`;
      throw new StoreError("out_of_range", field, `must be in [${shape.min}, 1], got ${a}`);
    }
    const ts = uint64ToNumber(entry.lastUpdateTimeMs, list, i, "last_update_time_ms");
    if (ts > Number.MAX_SAFE_INTEGER) {
      throw beyond(list, i, "last_update_time_ms", entry.lastUpdateTimeMs, "2^53");
    }
    keys[i] = row * maxCols + col;
    values[i] = a;
    times[i] = ts;
  }
  batch.length = entries.length;
}

/** Checks the arguments of `applyDelta` (parameter spelling) and returns the key. */
export function validateDelta(
  seed: bigint,
  rowId: number,
  colId: number,
  deltaProb: number,
  timestampMs: number,
  options: ResolvedStoreOptions,
): number {
  checkSeed(seed, "seed", options);
  checkIndex(rowId, "rowId", options.maxRows, "maxRows");
  checkIndex(colId, "colId", options.maxCols, "maxCols");
  if (typeof deltaProb !== "number" || !Number.isFinite(deltaProb)) {
    throw new StoreError("invalid_argument", "deltaProb", `must be finite, got ${deltaProb}`);
  }
  if (deltaProb < -1 || deltaProb > 1) {
    throw new StoreError("out_of_range", "deltaProb", `must be in [-1, 1], got ${deltaProb}`);
  }
  if (typeof timestampMs !== "number" || !Number.isInteger(timestampMs) || timestampMs < 0) {
    throw new StoreError(
      "invalid_argument",
      "timestampMs",
      `must be an integer ≥ 0, got ${timestampMs}`,
    );
  }
  if (timestampMs > Number.MAX_SAFE_INTEGER) {
    throw new StoreError(
      "out_of_range",
      "timestampMs",
      `must be at most 2^53 - 1, got ${timestampMs}`,
    );
  }
  return rowId * options.maxCols + colId;
}

/**
 * Checks a seed: a uint64 `bigint` that is a window start. A seed that is
 * not a multiple of `windowMs` comes from a client configured with another
 * window, and accepting it would also let one client make the store
 * allocate for every millisecond of the live range.
 */
export function checkSeed(
  seed: unknown,
  field: string,
  options: ResolvedStoreOptions,
): asserts seed is bigint {
  if (typeof seed !== "bigint") {
    throw new StoreError("invalid_argument", field, `must be a uint64 bigint, got ${typeof seed}`);
  }
  if (seed < 0n) throw new StoreError("invalid_argument", field, `must be ≥ 0, got ${seed}`);
  if (seed > maxUint64) throw new StoreError("out_of_range", field, `must be < 2^64, got ${seed}`);
  if (seed % options.windowBig !== 0n) {
    throw new StoreError(
      "invalid_argument",
      field,
      `${seed} is not a window start (a multiple of windowMs ${options.windowMs}); is the client's window the same?`,
    );
  }
}

function uint64ToNumber(value: unknown, list: string, index: number, name: string): number {
  if (typeof value === "number") {
    if (Number.isInteger(value) && value >= 0) return value;
    throw new StoreError(
      "invalid_argument",
      `${list}[${index}].${name}`,
      `must be a uint64, got ${value}`,
    );
  }
  if (typeof value !== "bigint") {
    throw new StoreError(
      "invalid_argument",
      `${list}[${index}].${name}`,
      "must be a uint64: a bigint or an integer number",
    );
  }
  const number = Number(value);
  if (number < 0) {
    throw new StoreError(
      "invalid_argument",
      `${list}[${index}].${name}`,
      `must be ≥ 0, got ${value}`,
    );
  }
  return number;
}

function beyond(
  list: string,
  index: number,
  name: string,
  value: bigint | number,
  bound: string,
): StoreError {
  return new StoreError(
    "out_of_range",
    `${list}[${index}].${name}`,
    `must be below ${bound}, got ${value}`,
  );
}

function checkIndex(value: number, field: string, bound: number, boundName: string): void {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new StoreError("invalid_argument", field, `must be an integer ≥ 0, got ${value}`);
  }
  if (value >= bound) {
    throw new StoreError(
      "out_of_range",
      field,
      `must be below ${boundName} ${bound}, got ${value}`,
    );
  }
}
