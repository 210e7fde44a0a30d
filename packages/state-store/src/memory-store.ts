import { Aggregator } from "./aggregator.js";
import { StoreError } from "./errors.js";
import { IntervalTask } from "./eviction.js";
import { type InMemoryStoreOptions, publicOptions, resolveStoreOptions } from "./options.js";
import type {
  BucketState,
  DeltaResult,
  DeltaUpdateInput,
  EvictResult,
  OfferResult,
  RestoreResult,
  SeedCursor,
  SeedPage,
  StateOfferInput,
  Store,
  StoreNamespace,
  StoreStats,
  UpdateResult,
} from "./store.js";
import type { StoreEpoch, StoreEpochs, StorePersistence } from "./store-capabilities.js";

/**
 * A namespace of an {@link InMemoryStore}: the {@link StoreNamespace}
 * operations, answered synchronously.
 */
export interface InMemoryNamespace extends StoreNamespace {
  applyUpdate(update: DeltaUpdateInput): UpdateResult;
  applyDelta(
    seed: bigint,
    rowId: number,
    colId: number,
    deltaProb: number,
    timestampMs: number,
  ): DeltaResult;
  getSeed(seed: bigint): BucketState[];
  readSeed(seed: bigint, cursor: SeedCursor | undefined, limit: number): SeedPage;
  applyOffer(offer: StateOfferInput): OfferResult;
}

/**
 * The {@link Store} in one process's memory: server-owned decay, clamping,
 * window checks, eviction on a timer, snapshots and learning mode (its
 * optional capabilities are {@link StorePersistence}, as
 * {@link InMemoryStore.persistence}, and {@link StoreEpochs}, as
 * {@link InMemoryStore.epochs}).
 * Every method answers synchronously — the in-memory hot path pays for no
 * promise — and is typed so; through the {@link Store} interface the same
 * values arrive as `MaybePromise`s.
 *
 * A class because it has a lifecycle: `start()` schedules eviction,
 * `stop()` cancels it. Without `start()` nothing is evicted except by
 * `evictBefore()`.
 *
 * @example
 * ```ts
 * const store = new InMemoryStore({ decayRatePerSecond: 0.01 });
 * store.start();
 * const seed = windowSeed(Date.now(), store.options.windowMs);
 * store.applyDelta(seed, 0, 42, 0.05, Date.now());
 * const tenant = store.namespace("checkout");
 * const { buckets } = tenant.applyUpdate(update); // a DeltaUpdate
 * store.stop();
 * ```
 */
export class InMemoryStore implements Store, InMemoryNamespace {
  readonly description: Readonly<Record<string, string>> = Object.freeze({ store: "memory" });
  /**
   * Snapshots and restores that stream, a bounded slice of work at a time
   * with the event loop turning in between: what a server uses. They write
   * and read the same bytes as {@link InMemoryStore.snapshot} and
   * {@link InMemoryStore.restore}.
   */
  readonly persistence: StorePersistence;
  /**
   * One epoch for the store's whole life, begun when it was made: a new
   * store is a new epoch, restored from a snapshot or not, since what it
   * applied after the snapshot died with its process. Learning mode
   * (`applyOffer`) runs for `learningPeriodMs` from its start.
   */
  readonly epochs: StoreEpochs & { readonly current: StoreEpoch };
  readonly #core: Aggregator;
  readonly #eviction: IntervalTask;
  readonly #options: Readonly<InMemoryStoreOptions>;

  /** Throws a `StoreError` (`invalid_option`) naming the first unusable option. */
  constructor(options: Partial<InMemoryStoreOptions> = {}) {
    const resolved = resolveStoreOptions(options);
    const core = new Aggregator(resolved);
    this.#core = core;
    this.persistence = Object.freeze({
      snapshot: () => core.snapshotChunks(),
      restore: (chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) =>
        core.restoreChunks(chunks),
    });
    this.epochs = Object.freeze({ current: core.epoch, onEpochChange: () => () => {} });
    this.#options = publicOptions(resolved);
    this.#eviction = new IntervalTask(
      this.#core.options.timers,
      this.#core.options.evictionIntervalMs,
      () => {
        this.#core.evictExpired();
      },
    );
  }

  /** The options in effect, defaults filled in. */
  get options(): Readonly<InMemoryStoreOptions> {
    return this.#options;
  }

  /** Whether the eviction timer is running. */
  get running(): boolean {
    return this.#eviction.running;
  }

  /**
   * The key space `name` (the `fair-state-namespace` header); `""` is this
   * store. A view is two fields, so a server takes one per stream; a
   * namespace holds memory only while it holds buckets.
   */
  namespace(name: string): InMemoryNamespace {
    if (typeof name !== "string") {
      throw new StoreError("invalid_argument", "namespace", `must be a string, got ${typeof name}`);
    }
    return name === "" ? this : new NamespaceView(this.#core, name);
  }

  applyUpdate(update: DeltaUpdateInput): UpdateResult {
    return this.#core.applyUpdate("", update);
  }

  applyDelta(
    seed: bigint,
    rowId: number,
    colId: number,
    deltaProb: number,
    timestampMs: number,
  ): DeltaResult {
    return this.#core.applyDelta("", seed, rowId, colId, deltaProb, timestampMs);
  }

  getSeed(seed: bigint): BucketState[] {
    return this.#core.getSeed("", seed);
  }

  readSeed(seed: bigint, cursor: SeedCursor | undefined, limit: number): SeedPage {
    return this.#core.readSeed("", seed, cursor, limit);
  }

  applyOffer(offer: StateOfferInput): OfferResult {
    return this.#core.applyOffer("", offer);
  }

  evictBefore(seed: bigint): EvictResult {
    return this.#core.evictBefore(seed);
  }

  stats(): StoreStats {
    return this.#core.stats();
  }

  /**
   * Starts evicting, every `evictionIntervalMs`, the seeds behind
   * `now − seedEvictionTtlMs`. A no-op when already running. Aborting
   * `signal` stops it, as `stop()` does.
   */
  start(signal?: AbortSignal): void {
    this.#eviction.start(signal);
  }

  /** Stops the eviction timer; idempotent, leaves no timer or listener behind. */
  stop(): void {
    this.#eviction.stop();
  }

  /**
   * Every bucket of every namespace, as a versioned `StoreSnapshot`
   * (`@fair/state-proto`, format `snapshotFormatVersion`), for
   * `restore()` after a restart. One synchronous step: fine for a small
   * store or a test, but it blocks the event loop for as long as it takes —
   * ~0.25 s at 2^22 buckets (README) — so a server uses
   * {@link InMemoryStore.persistence} instead, which streams the same bytes.
   */
  snapshot(): Uint8Array {
    return this.#core.snapshot();
  }

  /**
   * Replaces the store's contents with a snapshot's. Seeds behind the
   * eviction horizon or too far ahead of the clock are skipped and counted
   * in the result. A snapshot of another `format_version`, or one that does
   * not decode or breaks the options (ids out of bounds, mismatched column
   * lengths, a probability outside [0, 1], a seed that is not a window
   * start) throws a `StoreError` and leaves the store as it was.
   * Counters in `stats()` carry on; they are not part of a snapshot. Reads
   * formats 1 and 2. One synchronous step, like {@link InMemoryStore.snapshot}
   * (~1.5 s at 2^22 buckets): a server restores through
   * {@link InMemoryStore.persistence} instead.
   */
  restore(bytes: Uint8Array): RestoreResult {
    return this.#core.restore(bytes);
  }
}

class NamespaceView implements InMemoryNamespace {
  readonly #core: Aggregator;
  readonly #name: string;

  constructor(core: Aggregator, name: string) {
    this.#core = core;
    this.#name = name;
  }

  applyUpdate(update: DeltaUpdateInput): UpdateResult {
    return this.#core.applyUpdate(this.#name, update);
  }

  applyDelta(
    seed: bigint,
    rowId: number,
    colId: number,
    deltaProb: number,
    timestampMs: number,
  ): DeltaResult {
    return this.#core.applyDelta(this.#name, seed, rowId, colId, deltaProb, timestampMs);
  }

  getSeed(seed: bigint): BucketState[] {
    return this.#core.getSeed(this.#name, seed);
  }

  readSeed(seed: bigint, cursor: SeedCursor | undefined, limit: number): SeedPage {
    return this.#core.readSeed(this.#name, seed, cursor, limit);
  }

  applyOffer(offer: StateOfferInput): OfferResult {
    return this.#core.applyOffer(this.#name, offer);
  }
}
