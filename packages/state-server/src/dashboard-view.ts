import type { StoreNamespace } from "@fair/state-store";
import { decayedTo } from "@fair/tracker";

/** Buckets read from the store per page: small enough to keep each slice of work short. */
const PAGE_SIZE = 5_000;
/** Buckets binned between turns of the event loop. */
const BIN_SLICE = 50_000;

/** One bucket of the hot list, decayed to the view's instant. */
export interface ViewBucket {
  readonly rowId: number;
  readonly colId: number;
  /** Decayed to `nowMs`. */
  readonly prob: number;
  /** As stored, as of `lastUpdateTimeMs`. */
  readonly storedProb: number;
  readonly lastUpdateTimeMs: number;
  /** `nowMs − lastUpdateTimeMs`; negative for a bucket stamped ahead of the server clock. */
  readonly ageMs: number;
}

/** One level of the heat map: the highest decayed probability in each bin of columns. */
export interface ViewLevel {
  readonly rowId: number;
  readonly bins: number[];
}

/** A seed summarised for the dashboard: what `/dashboard/api/view` answers, less the server's counters. */
export interface SeedView {
  /** Buckets the seed holds. */
  readonly buckets: number;
  /** Every level from 0 to the highest one held, level 0 first. */
  readonly levels: ViewLevel[];
  /**
   * How many columns one bin covers: bins split `0 … (highest column held) + 1`
   * evenly, so the map fits what the trackers use, whatever `maxCols` allows.
   */
  readonly columnsPerBin: number;
  /** The `top` buckets with the highest decayed probability, highest first. */
  readonly top: ViewBucket[];
}

/** What {@link readSeedView} needs besides the store. */
export interface SeedViewOptions {
  /** At most this many bins per level. */
  readonly bins: number;
  /** How many hot buckets to list. */
  readonly top: number;
  /** The instant probabilities are decayed to, Unix ms. */
  readonly nowMs: number;
  /** λ, per second: the server's `decayRatePerSecond`. */
  readonly decayRatePerSecond: number;
}

/**
 * Reads a whole seed page by page and aggregates it: a heat map of the
 * highest probability per bin of columns on each level, and the hottest
 * buckets. Each bucket is decayed to `nowMs` first, as a distributed
 * tracker reads it (`decayedTo`). The pages are read one at a time with a
 * turn of the event loop between them, so a seed of a million buckets never
 * builds one array of them and never holds up Sync streams for more than one
 * page's work; what is kept per bucket is three numbers in typed arrays
 * (the bins can only be drawn once the highest column is known).
 */
export async function readSeedView(
  namespace: StoreNamespace,
  seed: bigint,
  options: SeedViewOptions,
): Promise<SeedView> {
  const { nowMs, decayRatePerSecond } = options;
  let rows = new Uint16Array(PAGE_SIZE);
  let cols = new Uint32Array(PAGE_SIZE);
  let probs = new Float64Array(PAGE_SIZE);
  let count = 0;
  let maxRow = -1;
  let maxCol = -1;
  const hot = new TopBuckets(options.top);

  let cursor: string | number | undefined;
  do {
    const page = await namespace.readSeed(seed, cursor, PAGE_SIZE);
    if (count + page.buckets.length > rows.length) {
      const size = Math.max(rows.length * 2, count + page.buckets.length);
      rows = grow(rows, new Uint16Array(size));
      cols = grow(cols, new Uint32Array(size));
      probs = grow(probs, new Float64Array(size));
    }
    for (const bucket of page.buckets) {
      const prob = decayedTo(bucket, nowMs, decayRatePerSecond);
      rows[count] = bucket.rowId;
      cols[count] = bucket.colId;
      probs[count] = prob;
      count++;
      if (bucket.rowId > maxRow) maxRow = bucket.rowId;
      if (bucket.colId > maxCol) maxCol = bucket.colId;
      if (hot.accepts(prob)) {
        hot.add({
          rowId: bucket.rowId,
          colId: bucket.colId,
          prob,
          storedProb: bucket.prob,
          lastUpdateTimeMs: bucket.lastUpdateTimeMs,
          ageMs: nowMs - bucket.lastUpdateTimeMs,
        });
      }
    }
    cursor = page.next;
    // Let Sync streams and scrapes in between pages.
    if (cursor !== undefined) await new Promise((resolve) => setImmediate(resolve));
  } while (cursor !== undefined);

  const columns = maxCol + 1;
  const columnsPerBin = Math.max(1, Math.ceil(columns / options.bins));
  const binCount = Math.ceil(columns / columnsPerBin);
  const levels: ViewLevel[] = [];
  for (let rowId = 0; rowId <= maxRow; rowId++) {
    levels.push({ rowId, bins: new Array<number>(binCount).fill(0) });
  }
  for (let i = 0; i < count; i++) {
    const bins = (levels[rows[i] ?? 0] as ViewLevel).bins;
    const bin = Math.floor((cols[i] ?? 0) / columnsPerBin);
    const prob = probs[i] ?? 0;
    if (prob > (bins[bin] ?? 0)) bins[bin] = prob;
    // This pass is one loop over every bucket: yield within it as well.
    if ((i + 1) % BIN_SLICE === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  return { buckets: count, levels, columnsPerBin, top: hot.sorted() };
}

function grow<T extends Uint16Array | Uint32Array | Float64Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/**
 * The `size` buckets of highest probability seen so far: a min-heap, so a
 * bucket colder than the coldest kept costs one comparison.
 */
class TopBuckets {
  readonly #size: number;
  readonly #heap: ViewBucket[] = [];

  constructor(size: number) {
    this.#size = size;
  }

  accepts(prob: number): boolean {
    if (this.#size === 0) return false;
    return this.#heap.length < this.#size || prob > (this.#heap[0] as ViewBucket).prob;
  }

  add(bucket: ViewBucket): void {
    const heap = this.#heap;
    if (heap.length < this.#size) {
      heap.push(bucket);
      let i = heap.length - 1;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if ((heap[parent] as ViewBucket).prob <= bucket.prob) break;
        heap[i] = heap[parent] as ViewBucket;
        i = parent;
      }
      heap[i] = bucket;
      return;
    }
    // Replace the coldest and sift it down.
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child =
        right < heap.length && (heap[right] as ViewBucket).prob < (heap[left] as ViewBucket).prob
          ? right
          : left;
      if ((heap[child] as ViewBucket).prob >= bucket.prob) break;
      heap[i] = heap[child] as ViewBucket;
      i = child;
    }
    heap[i] = bucket;
  }

  /** Highest first; ties by level then column, so the table does not shuffle between polls. */
  sorted(): ViewBucket[] {
    return [...this.#heap].sort(
      (a, b) => b.prob - a.prob || a.rowId - b.rowId || a.colId - b.colId,
    );
  }
}
