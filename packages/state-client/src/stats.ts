import type { SyncRequest } from "@fair/state-proto";
import type { StateClientError } from "./errors.js";
import type { LinkStatus } from "./state-link.js";

/**
 * Why an adjustment was never sent: `invalid` (not a finite delta in
 * [-1, 1] with integer ids and time), `overflow` (a new bucket while
 * `maxPendingBuckets` were already waiting), `retries_exhausted` (it waited
 * through `maxSendAttempts` failed connection attempts), `closed` (sent to,
 * or still waiting in, a closed client).
 */
export type DropReason = "invalid" | "overflow" | "retries_exhausted" | "closed";

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
  /** Adjustments never sent, by reason. */
  readonly deltasDropped: Readonly<Record<DropReason, number>>;
  /** Distinct buckets waiting to be sent now. */
  readonly pendingBuckets: number;
  /** Buckets received from the server, broadcasts and full-state replies. */
  readonly updatesReceived: number;
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
  lastError: StateClientError | undefined;
  readonly #dropped: Record<DropReason, number> = {
    invalid: 0,
    overflow: 0,
    retries_exhausted: 0,
    closed: 0,
  };

  drop(reason: DropReason, count: number): void {
    this.#dropped[reason] += count;
  }

  onSent(message: SyncRequest): void {
    if (message.request.case !== "deltaUpdate") return;
    this.messagesSent++;
    this.deltasSent += message.request.value.deltas.length;
  }

  snapshot(status: LinkStatus, pendingBuckets: number): StateClientStats {
    return {
      status,
      reconnects: this.reconnects,
      deltasQueued: this.deltasQueued,
      deltasSent: this.deltasSent,
      messagesSent: this.messagesSent,
      deltasDropped: { ...this.#dropped },
      pendingBuckets,
      updatesReceived: this.updatesReceived,
      lastError: this.lastError,
    };
  }
}
