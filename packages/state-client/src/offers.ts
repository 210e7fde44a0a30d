import { create } from "@bufbuild/protobuf";
import type { Bucket, SyncRequest } from "@fair/state-proto";
import { SyncRequestSchema } from "@fair/state-proto";
import { isSendable, type PendingDeltas } from "./pending-deltas.js";
import type { BucketValue } from "./state-link.js";

/** An offer as it goes on the wire: its messages, and the buckets left out as unusable. */
export interface OfferMessages {
  /** `StateOffer` requests of at most `maxPerMessage` buckets each; none for an empty offer. */
  readonly messages: SyncRequest[];
  /** Buckets left out: ids out of range, a probability outside [0, 1], a bad time, or a bad seed. */
  readonly invalid: number;
}

/**
 * One `offerState` call as `StateOffer` messages (learning mode). Each bucket goes as given —
 * its probability as of its own time, never decayed for the trip — except that the
 * adjustments this client still holds for it are taken out: they are already in the
 * listener's view (a tracker applies an outcome locally before it sends it) and go out as
 * deltas after the offers, so each outcome counts once. With held sum `s` as of `tₛ` and the
 * view `q` as of `u`, the bucket is offered as `max(0, q·e^(−λ(T−u)) − s·e^(−λ(T−tₛ)))` as of
 * `T = max(u, tₛ)`. Unusable buckets are left out and counted, because the server refuses a
 * whole offer for one bad bucket.
 */
export function offerMessages(
  seed: bigint,
  buckets: readonly BucketValue[],
  maxPerMessage: number,
  held: PendingDeltas,
  decayPerMs: number,
): OfferMessages {
  if (typeof seed !== "bigint" || seed < 0n) return { messages: [], invalid: buckets.length };
  const messages: SyncRequest[] = [];
  let invalid = 0;
  let batch: Bucket[] = [];
  const push = () =>
    messages.push(
      create(SyncRequestSchema, {
        request: { case: "stateOffer", value: { seed, buckets: batch } },
      }),
    );
  for (const bucket of buckets) {
    const { rowId, colId } = bucket;
    let { prob, lastUpdateTimeMs } = bucket;
    if (!isSendable(rowId, colId, lastUpdateTimeMs) || !(prob >= 0 && prob <= 1)) {
      invalid++;
      continue;
    }
    const pending = held.get(seed, rowId, colId);
    if (pending !== undefined) {
      const at = Math.max(lastUpdateTimeMs, pending.timeMs);
      const view = prob * Math.exp(-decayPerMs * (at - lastUpdateTimeMs));
      const sent = pending.sum * Math.exp(-decayPerMs * (at - pending.timeMs));
      prob = Math.min(1, Math.max(0, view - sent));
      lastUpdateTimeMs = at;
    }
    batch.push({
      $typeName: "fair.state.v1.Bucket",
      rowId: BigInt(rowId),
      colId: BigInt(colId),
      prob,
      lastUpdateTimeMs: BigInt(lastUpdateTimeMs),
    });
    if (batch.length === maxPerMessage) {
      push();
      batch = [];
    }
  }
  if (batch.length > 0) push();
  return { messages, invalid };
}
