/** A bucket's map key; the bench keeps columns below 2^24. */
export function key(rowId: number, colId: number): number {
  return rowId * 2 ** 24 + colId;
}

/** A bucket's latest state as a stream saw it. */
export interface HeldBucket {
  prob: number;
  timeMs: number;
}

/**
 * One stream's latest value per bucket: typed arrays for the load's rows and
 * columns, a map for anything else (the probes). A `Map` of objects was the
 * generator's top frame (29% of its samples) at two million bucket updates a
 * second, and the generator, not the server, set the pace.
 */
export class BucketView {
  readonly #rows: number;
  readonly #cols: number;
  readonly #probs: Float64Array;
  readonly #times: Float64Array;
  readonly #held: Uint8Array;
  readonly #other = new Map<number, HeldBucket>();

  /** Rows below `rows` and columns below `cols` are held densely. */
  constructor(rows: number, cols: number) {
    this.#rows = rows;
    this.#cols = cols;
    this.#probs = new Float64Array(rows * cols);
    this.#times = new Float64Array(rows * cols);
    this.#held = new Uint8Array(rows * cols);
  }

  set(rowId: number, colId: number, prob: number, timeMs: number): void {
    if (rowId < this.#rows && colId < this.#cols) {
      const i = rowId * this.#cols + colId;
      this.#probs[i] = prob;
      this.#times[i] = timeMs;
      this.#held[i] = 1;
      return;
    }
    const k = key(rowId, colId);
    const held = this.#other.get(k);
    if (held === undefined) this.#other.set(k, { prob, timeMs });
    else {
      held.prob = prob;
      held.timeMs = timeMs;
    }
  }

  /** The bucket at `key(rowId, colId)`, or `undefined` if none arrived. */
  get(k: number): HeldBucket | undefined {
    const rowId = Math.floor(k / 2 ** 24);
    const colId = k - rowId * 2 ** 24;
    if (rowId < this.#rows && colId < this.#cols) {
      const i = rowId * this.#cols + colId;
      return this.#held[i]
        ? { prob: this.#probs[i] as number, timeMs: this.#times[i] as number }
        : undefined;
    }
    return this.#other.get(k);
  }

  /** Every bucket held, as `[key(rowId, colId), state]`. */
  *[Symbol.iterator](): IterableIterator<[number, HeldBucket]> {
    for (let i = 0; i < this.#held.length; i++) {
      if (this.#held[i] === 0) continue;
      const rowId = Math.floor(i / this.#cols);
      yield [
        key(rowId, i - rowId * this.#cols),
        { prob: this.#probs[i] as number, timeMs: this.#times[i] as number },
      ];
    }
    yield* this.#other;
  }
}
