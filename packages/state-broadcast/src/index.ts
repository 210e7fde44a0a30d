/**
 * `@fair/state-broadcast`: the FAIR State Service's fan-out hub. It takes the
 * changed buckets the store reports and delivers them to every subscriber of
 * their namespace; it knows nothing of the store, of gRPC or of protobuf.
 *
 * @example
 * ```ts
 * import { Hub } from "@fair/state-broadcast";
 *
 * const hub = new Hub({ broadcastIntervalMs: 0 }).start();
 * const subscription = hub.subscribe("");
 * hub.publish("", 1_764_136_800_000n, [{ rowId: 0, colId: 7, prob: 0.2, lastUpdateTimeMs: 1_764_136_801_000 }]);
 * for await (const batch of subscription) console.log(batch.buckets);
 * ```
 *
 * @packageDocumentation
 */

export type { Timers } from "@fair/timers";
export type { Batch, BatchEncoder, BucketState } from "./batch.js";
export type { BroadcastErrorCode } from "./errors.js";
export { BroadcastError } from "./errors.js";
export type { HubState } from "./hub.js";
export { Hub } from "./hub.js";
export type { HubOptions } from "./options.js";
export { DEFAULT_HUB_OPTIONS, defaultHubOptions } from "./options.js";
export type { HubStats } from "./stats.js";
export type { CloseCode, CloseReason, SubscribeOptions, Subscription } from "./subscription.js";
