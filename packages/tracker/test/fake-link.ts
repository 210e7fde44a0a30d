import type {
  BucketDelta,
  BucketValue,
  FullStateRequestOptions,
  LinkStatus,
  StateLink,
  StateLinkListener,
} from "@fair/state-client";

/** A full-state request the test has not answered yet. */
export interface PendingRequest {
  readonly seed: bigint;
  resolve(buckets: readonly BucketValue[]): void;
  reject(reason: unknown): void;
}

/**
 * A `StateLink` the test drives by hand: it records what the tracker sends and asks for, and
 * delivers updates and status changes when told to.
 */
export class FakeLink implements StateLink {
  status: LinkStatus = "connected";
  readonly sent: { seed: bigint; deltas: readonly BucketDelta[] }[] = [];
  readonly requests: PendingRequest[] = [];
  readonly offers: { seed: bigint; buckets: readonly BucketValue[] }[] = [];
  readonly listeners = new Set<StateLinkListener>();
  /** When set, `sendDeltaUpdate` throws it (a broken link; the contract says it never throws). */
  sendError: unknown;
  /** When set, `requestFullState` throws it synchronously. */
  requestError: unknown;

  sendDeltaUpdate(seed: bigint, deltas: readonly BucketDelta[]): void {
    if (this.sendError !== undefined) throw this.sendError;
    this.sent.push({ seed, deltas });
  }

  requestFullState(
    seed: bigint,
    _options?: FullStateRequestOptions,
  ): Promise<readonly BucketValue[]> {
    if (this.requestError !== undefined) throw this.requestError;
    return new Promise((resolve, reject) => {
      this.requests.push({ seed, resolve, reject });
    });
  }

  offerState(seed: bigint, buckets: readonly BucketValue[]): void {
    this.offers.push({ seed, buckets });
  }

  subscribe(listener: StateLinkListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Delivers buckets of `seed` to every listener. */
  deliver(seed: bigint, buckets: readonly BucketValue[], fullState = false): void {
    for (const listener of this.listeners) listener.onStateUpdate?.(seed, buckets, fullState);
  }

  /** Tells every listener the link reached a new state epoch. */
  changeEpoch(epoch: string, previous: string): void {
    for (const listener of this.listeners) listener.onEpochChange?.(epoch, previous);
  }

  /** Changes the status and tells every listener. */
  setStatus(status: LinkStatus): void {
    this.status = status;
    for (const listener of this.listeners) listener.onStatusChange?.(status);
  }

  /** The seeds asked for so far, in order. */
  get requestedSeeds(): bigint[] {
    return this.requests.map((request) => request.seed);
  }
}
