import { type BucketState, SharedBatch } from "./batch.js";

// Rows below this index an array of per-row maps keyed by column. Columns
// below 2^30 are small integers to V8, which hashes them far faster than the
// heap numbers a combined `row * 2^k + col` key would be (measured: ~3x on
// merge-heavy runs). FAIR structures have a handful of rows.
const ROW_LIMIT = 4096;
const COL_LIMIT = 2 ** 30;

/** States keyed by column number, or by `"row:col"` off the fast path. */
type Cells = Map<number | string, BucketState>;

/** The states held for one seed. */
interface SeedCells {
  readonly rows: (Cells | undefined)[];
  /** Any `(rowId, colId)` outside the fast path. */
  other: Cells | undefined;
}

function isFast(rowId: number, colId: number): boolean {
  return (
    Number.isInteger(rowId) &&
    Number.isInteger(colId) &&
    rowId >= 0 &&
    rowId < ROW_LIMIT &&
    colId >= 0 &&
    colId < COL_LIMIT
  );
}

/**
 * The latest state per key `(seed, rowId, colId)` of one namespace: the
 * interval buffer of the hub and the merged backlog of a lagging subscriber.
 * Seeds come out in first-seen order.
 */
export class BucketMap {
  readonly #seeds = new Map<bigint, SeedCells>();
  #size = 0;

  /** Distinct keys held. */
  get size(): number {
    return this.#size;
  }

  /** Records `buckets` as the latest states of their keys; returns how many replaced a held state. */
  merge(seed: bigint, buckets: readonly BucketState[]): number {
    // An empty seed entry would later come out as an empty batch.
    if (buckets.length === 0) return 0;
    let cells = this.#seeds.get(seed);
    if (cells === undefined) {
      cells = { rows: [], other: undefined };
      this.#seeds.set(seed, cells);
    }
    let added = 0;
    for (const bucket of buckets) {
      const { rowId, colId } = bucket;
      let row: Cells | undefined;
      let key: number | string;
      if (isFast(rowId, colId)) {
        row = cells.rows[rowId];
        if (row === undefined) {
          row = new Map();
          cells.rows[rowId] = row;
        }
        key = colId;
      } else {
        cells.other ??= new Map();
        row = cells.other;
        key = `${rowId}:${colId}`;
      }
      const before = row.size;
      row.set(key, bucket);
      added += row.size - before;
    }
    this.#size += added;
    return buckets.length - added;
  }

  /** Removes and returns up to `maxBuckets` states of the oldest seed as a batch, or `undefined` when empty. */
  take(namespace: string, maxBuckets: number): SharedBatch | undefined {
    for (const [seed, cells] of this.#seeds) {
      const buckets: BucketState[] = [];
      for (const row of [...cells.rows, cells.other]) {
        if (row === undefined) continue;
        // Deleting the entry being visited is safe in a Map iteration.
        for (const [key, bucket] of row) {
          if (buckets.length === maxBuckets) break;
          buckets.push(bucket);
          row.delete(key);
        }
        if (buckets.length === maxBuckets) break;
      }
      this.#size -= buckets.length;
      if (isEmpty(cells)) this.#seeds.delete(seed);
      return new SharedBatch(namespace, seed, buckets);
    }
    return undefined;
  }

  /** Empties the map into batches of at most `maxBuckets`, seed by seed. */
  drain(namespace: string, maxBuckets: number): SharedBatch[] {
    const batches: SharedBatch[] = [];
    for (const [seed, cells] of this.#seeds) {
      const buckets: BucketState[] = [];
      for (const row of [...cells.rows, cells.other]) {
        if (row !== undefined) for (const bucket of row.values()) buckets.push(bucket);
      }
      for (let start = 0; start < buckets.length; start += maxBuckets) {
        const chunk =
          buckets.length <= maxBuckets ? buckets : buckets.slice(start, start + maxBuckets);
        batches.push(new SharedBatch(namespace, seed, chunk));
      }
    }
    this.clear();
    return batches;
  }

  /** Forgets every held state. */
  clear(): void {
    this.#seeds.clear();
    this.#size = 0;
  }
}

function isEmpty(cells: SeedCells): boolean {
  if (cells.other !== undefined && cells.other.size > 0) return false;
  return cells.rows.every((row) => row === undefined || row.size === 0);
}
