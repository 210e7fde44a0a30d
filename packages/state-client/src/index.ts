/**
 * `@fair/state-client`: a FAIR instance's link to the FAIR State Service.
 * One reconnecting gRPC stream sends this instance's bucket adjustments and
 * delivers the fleet's aggregated buckets.
 *
 * @example
 * ```ts
 * import { StateClient } from "@fair/state-client";
 *
 * const client = new StateClient({ baseUrl: "http://fair-state-server:50051", onStateUpdate: apply });
 * client.connect();
 * client.sendDeltaUpdate(seed, [{ rowId: 0, colId: 42, deltaProb: 0.04, lastUpdateTimeMs: Date.now() }]);
 * ```
 *
 * @packageDocumentation
 */

export type { Timers } from "@fair/timers";
export type { StateClientErrorCode } from "./errors.js";
export { StateClientError } from "./errors.js";
export type { ClientTimers, StateClientOptions } from "./options.js";
export { defaultStateClientOptions } from "./options.js";
export type { StateClientEvents } from "./state-client.js";
export { StateClient } from "./state-client.js";
export type {
  BucketDelta,
  BucketValue,
  FullStateRequestOptions,
  LinkStatus,
  StateLink,
  StateLinkListener,
} from "./state-link.js";
export type { DropReason, StateClientStats } from "./stats.js";
