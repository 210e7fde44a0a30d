import type { Registry } from "prom-client";
import type { BucketState, RestoreResult } from "./store.js";

/**
 * Optional: a store that can be unable to serve (a remote store that lost
 * its connection) says so here. A server reports NOT_SERVING while
 * `ready` is false, and logs `notReadyReason` when readiness changes. A
 * store without this capability is always ready once started.
 */
export interface StoreReadiness {
  /** Whether the store can serve now. */
  readonly ready: boolean;
  /**
   * Why the store cannot serve, for logs and operators (`"connecting to
   * redis://10.0.0.5:6379"`); `undefined` while ready.
   */
  readonly notReadyReason: string | undefined;
  /** Calls `listener` with every change of {@link StoreReadiness.ready}; returns the way to stop. */
  onReadyChange(listener: (ready: boolean) => void): () => void;
}

/** Called with the changed buckets of one (namespace, seed), each with its latest value. */
export type ChangeListener = (namespace: string, seed: bigint, buckets: BucketState[]) => void;

/**
 * Optional: a store shared by several servers (replicas) announces every
 * change of its shared view here — the other replicas' and this one's
 * own, in the order the view took them, so no listener ever sees an older
 * value after a newer one. A server with such a store broadcasts from the
 * feed alone and never publishes an `applyUpdate` result itself. A store
 * without this capability changes only through its own `applyUpdate`, and
 * the server broadcasts what that returns.
 */
export interface StoreChangeFeed {
  /** Calls `listener` with every change of the shared view; returns the way to stop listening. */
  onChange(listener: ChangeListener): () => void;
}

/**
 * Optional: a store whose contents can be written out and read back, so a
 * restarted server does not start empty. A server with a `snapshotPath`
 * writes snapshots on a timer and at shutdown, and restores one at start.
 * (A store kept elsewhere, such as Redis, has no need of it.)
 *
 * Both directions stream, a bounded slice of work at a time with the event
 * loop turning in between, so a store of any size never stalls the streams
 * it serves while it is written or read.
 *
 * @example
 * ```ts
 * for await (const chunk of store.persistence.snapshot()) await file.write(chunk);
 * const { seeds, buckets } = await store.persistence.restore(createReadStream(path));
 * ```
 */
export interface StorePersistence {
  /**
   * Every bucket of every namespace as it stood when iteration began (the
   * first `next()`), as the chunks of one snapshot: concatenated, they are
   * the bytes `restore()` reads back. The store goes on serving between
   * chunks; updates applied meanwhile are not in the snapshot. Iterate it to
   * the end, or leave the loop early (which closes it).
   */
  snapshot(): AsyncIterable<Uint8Array>;
  /**
   * Replaces the store's contents with a snapshot's, read from `chunks` as
   * they come (a file stream, or `[bytes]`), or rejects with a `StoreError`
   * (`snapshot_version`, `snapshot_malformed`) and leaves the store as it
   * was. The contents are built off to the side and swapped in at the end:
   * updates applied while a restore runs are lost, so restore before serving.
   */
  restore(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<RestoreResult>;
}

/**
 * Optional: a store with figures of its own beyond {@link StoreStats}
 * (a remote store's command latency, its relay between replicas) registers
 * them on the server's registry, under `fair_state_*` names.
 */
export interface StoreMetrics {
  /** Registers the store's own metrics on `registry`; called once, before the store starts. */
  registerMetrics(registry: Registry): void;
}

/** One lifetime of a store's state. */
export interface StoreEpoch {
  /**
   * An opaque id (the `fair-state-epoch` header): new whenever the state may
   * have lost what it held — a fresh in-memory store (restored from a
   * snapshot or not: what came after the snapshot is lost), a Redis that lost
   * its data. Never reused.
   */
  readonly id: string;
  /** When this epoch began, in Unix ms on the store's clock; learning mode runs from here. */
  readonly startedAtMs: number;
}

/**
 * Whether `epoch` still takes state offers at `nowMs`: it is at most
 * `learningPeriodMs` old (the contract's learning window, `applyOffer`).
 * Every store refuses offers, and a server reports learning, by this one
 * rule.
 */
export function isLearning(epoch: StoreEpoch, nowMs: number, learningPeriodMs: number): boolean {
  return nowMs - epoch.startedAtMs <= learningPeriodMs;
}

/**
 * Optional: a store that knows the lifetime of its state. A server announces
 * the current epoch on every stream (`fair-state-epoch`), so a client that
 * sees a new one offers back what it holds (`applyOffer`), and ends every open
 * stream when the epoch changes under it. A store without this capability
 * never asks for offers.
 */
export interface StoreEpochs {
  /** The current epoch; `undefined` while a remote store has not yet learned it. */
  readonly current: StoreEpoch | undefined;
  /** Calls `listener` with every new epoch (a remote store that lost its data); returns the way to stop. */
  onEpochChange(listener: (epoch: StoreEpoch) => void): () => void;
}
