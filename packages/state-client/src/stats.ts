import type { SyncRequest } from "@fair/state-proto";
import type { StateClientError } from "./errors.js";
import type { LinkStatus } from "./state-link.js";

/**
 * Why an adjustment was never sent: `invalid` (not a finite delta in [-1, 1] with integer
 * ids and time), `overflow` (a new bucket while `maxPendingBuckets` were already waiting),
 * `too_old` (it waited, unsent, until its seed was more than two windows behind the current
 * one: no tracker decides on that window any more, and the server drops it too), `closed`
 * (sent to, or still waiting in, a closed client). `retries_exhausted` is never counted any
 * more: adjustments wait through an outage of any length (see `maxSendAttempts`).
 */
export type DropReason = "invalid" | "overflow" | "too_old" | "closed" | "retries_exhausted";

/**
 * Why offered buckets were not sent: `invalid` (ids out of range, a probability outside
 * [0, 1], a bad time, or a bad seed), `not_asked` (`offerState` called outside an
 * `onEpochChange` call, or after `close()`: the client only offers when it has just found a
 * new epoch).
 */
export type OfferDropReason = "invalid" | "not_asked";

/** The client's status and counters; counters only ever grow. */
export interface StateClientStats {
  readonly status: LinkStatus;
  /** Reconnect attempts after the first connection attempt. */
  readonly reconnects: number;
  /** Adjustments accepted into the pending set (before coalescing). */
  readonly deltasQueued: number;
  /** Coalesced deltas handed to the stream. */
  readonly deltasSent: number;
  /** `DeltaUpdate` messages handed to the stream. */
  readonly messagesSent: number;
  /**
   * Adjustments never sent, by reason.
   *
   * @remarks `retries_exhausted` stays in the record, always 0, for one release.
   */
  readonly deltasDropped: Readonly<Record<DropReason, number>>;
  /** Distinct buckets waiting to be sent now. */
  readonly pendingBuckets: number;
  /** Buckets received from the server, broadcasts and full-state replies (stale ones included). */
  readonly updatesReceived: number;
  /** The server's state epoch (`fair-state-epoch`) this client last confirmed; `undefined` before any. */
  readonly epoch: string | undefined;
  /** Streams that found an epoch other than the confirmed one, and so called `onEpochChange`. */
  readonly epochChanges: number;
  /** `StateOffer` messages handed to the stream, and the buckets they carried. */
  readonly offersSent: { readonly messages: number; readonly buckets: number };
  /** Offered buckets never sent, by reason. */
  readonly offerBucketsDropped: Readonly<Record<OfferDropReason, number>>;
  /**
   * Full-state reply parts not delivered after an epoch change: replies to requests sent
   * before the offers, which describe the server's state before it merged them.
   */
  readonly staleRepliesDropped: number;
  /** The last problem reported, if any. */
  readonly lastError: StateClientError | undefined;
}

/** The mutable side of {@link StateClientStats}. */
export class StateClientCounters {
  reconnects = 0;
  deltasQueued = 0;
  deltasSent = 0;
  messagesSent = 0;
  updatesReceived = 0;
  epochChanges = 0;
  offerMessagesSent = 0;
  offerBucketsSent = 0;
  staleRepliesDropped = 0;
  lastError: StateClientError | undefined;
  readonly #dropped: Record<DropReason, number> = {
    invalid: 0,
    overflow: 0,
    too_old: 0,
    closed: 0,
    retries_exhausted: 0,
  };
  readonly #offersDropped: Record<OfferDropReason, number> = { invalid: 0, not_asked: 0 };

  drop(reason: DropReason, count: number): void {
    this.#dropped[reason] += count;
  }

  dropOffered(reason: OfferDropReason, count: number): void {
    this.#offersDropped[reason] += count;
  }

  onSent(message: SyncRequest): void {
    const { request } = message;
    if (request.case === "deltaUpdate") {
      this.messagesSent++;
      this.deltasSent += request.value.deltas.length;
    } else if (request.case === "stateOffer") {
      this.offerMessagesSent++;
      this.offerBucketsSent += request.value.buckets.length;
    }
  }

  snapshot(
    status: LinkStatus,
    pendingBuckets: number,
    epoch: string | undefined,
  ): StateClientStats {
    return {
      status,
      reconnects: this.reconnects,
      deltasQueued: this.deltasQueued,
      deltasSent: this.deltasSent,
      messagesSent: this.messagesSent,
      deltasDropped: { ...this.#dropped },
      pendingBuckets,
      updatesReceived: this.updatesReceived,
      epoch,
      epochChanges: this.epochChanges,
      offersSent: { messages: this.offerMessagesSent, buckets: this.offerBucketsSent },
      offerBucketsDropped: { ...this.#offersDropped },
      staleRepliesDropped: this.staleRepliesDropped,
      lastError: this.lastError,
    };
  }
}
