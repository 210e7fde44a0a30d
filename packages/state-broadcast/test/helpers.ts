import { FakeTime } from "@fair/testing";
import {
  type Batch,
  type BucketState,
  Hub,
  type HubOptions,
  type Subscription,
} from "../src/index.js";

/** A window start, as the tracker derives it. */
export const SEED = 1_764_136_800_000n;

const started: Hub[] = [];

/** A started hub on fake time; {@link stopHubs} stops it after the test. */
export function startHub(options: Partial<HubOptions> = {}): { hub: Hub; time: FakeTime } {
  const time = new FakeTime();
  const hub = new Hub({ now: time.now, timers: time.timers, ...options }).start();
  started.push(hub);
  return { hub, time };
}

/** Stops every hub {@link startHub} made; for `afterEach`. */
export function stopHubs(): void {
  for (const hub of started.splice(0)) hub.stop();
}

/** A bucket at `(rowId, colId)` with the given probability, stamped `ts`. */
export function bucket(rowId: number, colId: number, prob: number, ts = 1): BucketState {
  return { rowId, colId, prob, lastUpdateTimeMs: ts };
}

/** Takes every batch already pending, without waiting for more. */
export async function drain(subscription: Subscription): Promise<Batch[]> {
  const batches: Batch[] = [];
  while (subscription.pendingBuckets > 0) {
    const result = await subscription.next();
    if (result.done) break;
    batches.push(result.value);
  }
  return batches;
}

/** The last value seen per `seed/namespace:row:col` key across `batches`. */
export function latestByKey(batches: readonly Batch[]): Map<string, number> {
  const latest = new Map<string, number>();
  for (const batch of batches) {
    for (const b of batch.buckets) {
      latest.set(`${batch.namespace}/${batch.seed}:${b.rowId}:${b.colId}`, b.prob);
    }
  }
  return latest;
}

/** Every bucket across `batches`, in order. */
export function allBuckets(batches: readonly Batch[]): BucketState[] {
  return batches.flatMap((batch) => batch.buckets);
}
