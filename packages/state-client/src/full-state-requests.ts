import type { Timers } from "@fair/timers";
import { StateClientError } from "./errors.js";
import type { BucketValue } from "./state-link.js";

interface Waiter {
  readonly resolve: (buckets: readonly BucketValue[]) => void;
  readonly reject: (error: StateClientError) => void;
  readonly timer: unknown;
  readonly cleanup: () => void;
}

interface Pending {
  readonly waiters: Set<Waiter>;
  /** Parts received so far on the current connection. */
  parts: BucketValue[];
}

/**
 * Callers waiting for full-state replies, by seed. Concurrent requests for
 * one seed share one reply; a reply split in parts completes on the part
 * marked last; a connection lost mid-reply discards the parts, and the seed
 * is asked for again on the next connection.
 */
export class FullStateRequests {
  readonly #bySeed = new Map<bigint, Pending>();

  constructor(private readonly timers: Timers) {}

  /** Seeds with a caller waiting. */
  seeds(): IterableIterator<bigint> {
    return this.#bySeed.keys();
  }

  /** Waits for the reply for `seed`; returns whether this is the first waiter (so the request must be sent). */
  wait(
    seed: bigint,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): { promise: Promise<readonly BucketValue[]>; first: boolean } {
    let pending = this.#bySeed.get(seed);
    const first = pending === undefined;
    if (pending === undefined) {
      pending = { waiters: new Set(), parts: [] };
      this.#bySeed.set(seed, pending);
    }
    const entry = pending;
    const promise = new Promise<readonly BucketValue[]>((resolve, reject) => {
      const settle = (error: StateClientError) => {
        this.#remove(seed, entry, waiter);
        reject(error);
      };
      const onAbort = () =>
        settle(
          new StateClientError("aborted", `full state for seed ${seed}: aborted by the caller`),
        );
      const timer = this.timers.setTimeout(
        () =>
          settle(
            new StateClientError(
              "timeout",
              `full state for seed ${seed}: no complete reply within ${timeoutMs} ms`,
            ),
          ),
        timeoutMs,
      );
      const waiter: Waiter = {
        resolve,
        reject,
        timer,
        cleanup: () => {
          this.timers.clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
        },
      };
      entry.waiters.add(waiter);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
    });
    return { promise, first };
  }

  /** A part of a full-state reply arrived. */
  onPart(seed: bigint, buckets: readonly BucketValue[], last: boolean): void {
    const pending = this.#bySeed.get(seed);
    if (pending === undefined) return;
    for (const bucket of buckets) pending.parts.push(bucket);
    if (!last) return;
    this.#bySeed.delete(seed);
    for (const waiter of pending.waiters) {
      waiter.cleanup();
      waiter.resolve(pending.parts);
    }
  }

  /** The connection was lost: parts received on it are incomplete. */
  onDisconnect(): void {
    for (const pending of this.#bySeed.values()) pending.parts = [];
  }

  /** Rejects every waiter with `error`. */
  rejectAll(error: StateClientError): void {
    for (const pending of this.#bySeed.values()) {
      for (const waiter of pending.waiters) {
        waiter.cleanup();
        waiter.reject(error);
      }
    }
    this.#bySeed.clear();
  }

  #remove(seed: bigint, pending: Pending, waiter: Waiter): void {
    waiter.cleanup();
    pending.waiters.delete(waiter);
    if (pending.waiters.size === 0 && this.#bySeed.get(seed) === pending) this.#bySeed.delete(seed);
  }
}
