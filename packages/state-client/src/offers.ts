import { create } from "@bufbuild/protobuf";
import type { Bucket, SyncRequest } from "@fair/state-proto";
import { SyncRequestSchema } from "@fair/state-proto";
import { MAX_COL_ID, MAX_ROW_ID } from "./pending-deltas.js";
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
 * its probability as of its own time, never decayed here — so the server can decay both sides
 * to a common time and keep the larger. Unusable buckets are left out and counted, because the
 * server refuses a whole offer for one bad bucket.
 */
export function offerMessages(
  seed: bigint,
  buckets: readonly BucketValue[],
  maxPerMessage: number,
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
    const { rowId, colId, prob, lastUpdateTimeMs } = bucket;
    if (
      !(Number.isInteger(rowId) && rowId >= 0 && rowId < MAX_ROW_ID) ||
      !(Number.isInteger(colId) && colId >= 0 && colId < MAX_COL_ID) ||
      !(prob >= 0 && prob <= 1) ||
      !(Number.isSafeInteger(lastUpdateTimeMs) && lastUpdateTimeMs >= 0)
    ) {
      invalid++;
      continue;
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
