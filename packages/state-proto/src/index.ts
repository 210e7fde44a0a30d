/**
 * The FAIR State Service wire contract (`fair.state.v1`), generated from
 * `proto/` by buf and protoc-gen-es, plus the standard gRPC health service.
 *
 * @example
 * ```ts
 * import { create, toBinary } from "@bufbuild/protobuf";
 * import { SyncRequestSchema } from "@fair/state-proto";
 *
 * const bytes = toBinary(SyncRequestSchema, create(SyncRequestSchema, {
 *   request: { case: "stateRequest", value: { seed: 1_700_000_100_000n } },
 * }));
 * ```
 *
 * @packageDocumentation
 */

export type { SeedSnapshot, StoreSnapshot } from "./gen/fair/state/v1/snapshot_pb.js";
export {
  file_fair_state_v1_snapshot,
  SeedSnapshotSchema,
  StoreSnapshotSchema,
} from "./gen/fair/state/v1/snapshot_pb.js";
export type {
  Bucket,
  BucketDelta,
  DeltaUpdate,
  StateOffer,
  StateRequest,
  SyncRequest,
  SyncResponse,
} from "./gen/fair/state/v1/state_pb.js";
export {
  BucketDeltaSchema,
  BucketSchema,
  DeltaUpdateSchema,
  file_fair_state_v1_state,
  StateOfferSchema,
  StateRequestSchema,
  StateService,
  SyncRequestSchema,
  SyncResponseSchema,
} from "./gen/fair/state/v1/state_pb.js";

export type { HealthCheckRequest, HealthCheckResponse } from "./gen/grpc/health/v1/health_pb.js";
export {
  file_grpc_health_v1_health,
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponse_ServingStatusSchema,
  HealthCheckResponseSchema,
} from "./gen/grpc/health/v1/health_pb.js";

export type { GrpcPrefixCheck } from "./grpc-frames.js";
export { GRPC_PREFIX_BYTES, GrpcFrameReader } from "./grpc-frames.js";

/** Request header selecting an isolated key space (default: empty). */
export const NAMESPACE_HEADER = "fair-state-namespace";
/** Response header carrying the server's seed window in milliseconds. */
export const WINDOW_MS_HEADER = "fair-state-window-ms";
/** Response header carrying the server's decay rate λ, per second. */
export const DECAY_RATE_HEADER = "fair-state-decay-rate";
/**
 * Response header carrying the server's state epoch: an opaque id, new
 * whenever the state may have lost what it held. A client that sees one
 * other than the last it saw offers its own view back (`StateOffer`).
 */
export const EPOCH_HEADER = "fair-state-epoch";
