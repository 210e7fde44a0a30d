/**
 * One bucket's absolute state, as the store reports it after applying a delta.
 * Structurally the same as the store's bucket type, so its objects pass
 * through the hub without conversion.
 */
export interface BucketState {
  /** Level of the FAIR structure (the `row_id` on the wire). */
  readonly rowId: number;
  /** Bucket within the level (the `col_id` on the wire). */
  readonly colId: number;
  /** Drop probability in [0, 1] as of {@link BucketState.lastUpdateTimeMs}. */
  readonly prob: number;
  /** When `prob` was last updated, in Unix milliseconds. */
  readonly lastUpdateTimeMs: number;
}

/**
 * Changed buckets of one `(namespace, seed)`, as one subscriber receives them:
 * the server turns it into one `SyncResponse { seed, buckets }`.
 *
 * Batches are shared: every subscriber that keeps up receives the same object,
 * so treat it (and its buckets) as read-only.
 */
export interface Batch {
  /** Key space the buckets belong to (the `fair-state-namespace` header). */
  readonly namespace: string;
  /** Window start in Unix milliseconds (`uint64` on the wire, kept exact as a bigint). */
  readonly seed: bigint;
  /**
   * At most `maxBucketsPerBatch` buckets. A flush or a change-log read holds one
   * per `(rowId, colId)`; an immediate-mode batch holds what was published, in order.
   */
  readonly buckets: readonly BucketState[];
}

/**
 * Encodes a batch to the bytes the server writes (for example a serialized
 * `SyncResponse`). The hub calls it at most once per batch object.
 */
export type BatchEncoder = (batch: Batch) => Uint8Array;

/**
 * The batch objects the hub creates. A private slot memoises the encoded
 * bytes on the batch itself: a lookup is a field read, cheaper than a
 * WeakMap probe repeated once per subscriber, and the bytes die with the batch.
 */
export class SharedBatch implements Batch {
  #bytes: Uint8Array | undefined;

  /**
   * `start` and `end` place the batch in its namespace's change log: its
   * updates have versions from `start`, and a subscriber that has taken it
   * has everything below `end` (the last batch of a flush ends the flush;
   * earlier ones end where it starts).
   */
  constructor(
    readonly namespace: string,
    readonly seed: bigint,
    readonly buckets: readonly BucketState[],
    readonly start: number,
    readonly end: number,
  ) {}

  /** The batch's bytes, encoding on first use; a batch the hub did not create is encoded each time. */
  static encode(batch: Batch, encoder: BatchEncoder): Uint8Array {
    if (!(#bytes in batch)) return encoder(batch);
    if (batch.#bytes === undefined) batch.#bytes = encoder(batch);
    return batch.#bytes;
  }
}
