import {
  create,
  type DescMessage,
  fromBinary,
  fromJson,
  type MessageInitShape,
  type MessageShape,
  toBinary,
  toJson,
} from "@bufbuild/protobuf";
import { describe, expect, test } from "vitest";
import {
  BucketDeltaSchema,
  BucketSchema,
  DeltaUpdateSchema,
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
  SeedSnapshotSchema,
  StateOfferSchema,
  StateRequestSchema,
  StateService,
  StoreSnapshotSchema,
  SyncRequestSchema,
  SyncResponseSchema,
} from "./index.js";

const MAX_UINT64 = 18446744073709551615n;
const ABOVE_2_53 = 2n ** 53n + 1n;

/** Encodes through binary and through JSON and expects the same message back from both. */
function expectRoundTrip<Desc extends DescMessage>(
  schema: Desc,
  init: MessageInitShape<Desc>,
): MessageShape<Desc> {
  const message = create(schema, init);
  const fromBytes = fromBinary(schema, toBinary(schema, message));
  const json = JSON.parse(JSON.stringify(toJson(schema, message)));
  const fromJsonText = fromJson(schema, json);
  expect(fromBytes).toEqual(message);
  expect(fromJsonText).toEqual(message);
  return fromBytes;
}

const delta = {
  rowId: 255n,
  colId: 2n ** 24n - 1n,
  deltaProb: -0.04,
  lastUpdateTimeMs: 1_764_136_800_123n,
};
const bucket = {
  rowId: 3n,
  colId: 999n,
  prob: 0.3982056865255148,
  lastUpdateTimeMs: 1_764_136_800_456n,
};

describe("every message survives binary and JSON", () => {
  test("SyncRequest with a delta update", () => {
    const back = expectRoundTrip(SyncRequestSchema, {
      request: {
        case: "deltaUpdate",
        value: { seed: 1_764_136_800_000n, deltas: [delta, { ...delta, rowId: 0n }] },
      },
    });
    expect(back.request.case).toBe("deltaUpdate");
  });

  test("SyncRequest with a state request", () => {
    const back = expectRoundTrip(SyncRequestSchema, {
      request: { case: "stateRequest", value: { seed: 1_764_136_800_000n } },
    });
    expect(back.request).toMatchObject({
      case: "stateRequest",
      value: { seed: 1_764_136_800_000n },
    });
  });

  test("the leaf messages on their own", () => {
    expectRoundTrip(StateRequestSchema, { seed: 42n });
    expectRoundTrip(DeltaUpdateSchema, { seed: 42n, deltas: [delta] });
    expectRoundTrip(BucketDeltaSchema, delta);
    expectRoundTrip(BucketSchema, bucket);
  });

  test("SyncResponse, broadcast and full-state parts", () => {
    const broadcast = expectRoundTrip(SyncResponseSchema, { seed: 7n, buckets: [bucket] });
    expect(broadcast.fullState).toBe(false);
    expect(broadcast.fullStateLast).toBe(false);
    const lastPart = expectRoundTrip(SyncResponseSchema, {
      seed: 7n,
      buckets: [bucket, bucket],
      fullState: true,
      fullStateLast: true,
    });
    expect(lastPart).toMatchObject({ fullState: true, fullStateLast: true });
  });

  test("snapshot messages", () => {
    expectRoundTrip(StoreSnapshotSchema, {
      formatVersion: 1,
      takenAtMs: 1_764_136_800_000n,
      seeds: [
        {
          namespace: "checkout",
          seed: MAX_UINT64,
          rowIds: [0, 1],
          colIds: [5, 16_777_215],
          probs: [0.5, 1],
          lastUpdateTimesMs: [1n, MAX_UINT64],
        },
      ],
    });
    expectRoundTrip(SeedSnapshotSchema, { namespace: "", seed: 0n });
  });

  test("health messages", () => {
    expectRoundTrip(HealthCheckRequestSchema, { service: "fair.state.v1.StateService" });
    const back = expectRoundTrip(HealthCheckResponseSchema, {
      status: HealthCheckResponse_ServingStatus.NOT_SERVING,
    });
    expect(back.status).toBe(HealthCheckResponse_ServingStatus.NOT_SERVING);
  });
});

describe("uint64 values above 2^53 stay exact", () => {
  test.each([
    ["2^64 - 1", MAX_UINT64],
    ["2^53 + 1", ABOVE_2_53],
  ])("seed %s survives binary and JSON exactly", (_name, seed) => {
    const back = expectRoundTrip(SyncResponseSchema, {
      seed,
      buckets: [{ ...bucket, rowId: seed, colId: seed, lastUpdateTimeMs: seed }],
    });
    expect(back.seed).toBe(seed);
    expect(back.buckets[0]?.lastUpdateTimeMs).toBe(seed);
  });

  test("JSON carries uint64 as a decimal string, so JavaScript readers cannot round it", () => {
    const json = toJson(StateRequestSchema, create(StateRequestSchema, { seed: MAX_UINT64 }));
    expect(json).toEqual({ seed: "18446744073709551615" });
    expect(fromJson(StateRequestSchema, { seed: "18446744073709551615" }).seed).toBe(MAX_UINT64);
  });
});

describe("non-finite doubles survive, so the server can see and refuse them", () => {
  test.each([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])(
    "delta_prob %s",
    (value) => {
      const back = expectRoundTrip(BucketDeltaSchema, { ...delta, deltaProb: value });
      expect(Object.is(back.deltaProb, value)).toBe(true);
    },
  );

  test("JSON spells them as the proto3 JSON strings", () => {
    const json = toJson(BucketSchema, create(BucketSchema, { prob: Number.NEGATIVE_INFINITY }));
    expect(json).toEqual({ prob: "-Infinity" });
  });
});

describe("the service descriptors", () => {
  test("StateService has one bidi-streaming Sync method", () => {
    expect(StateService.typeName).toBe("fair.state.v1.StateService");
    expect(StateService.method.sync.methodKind).toBe("bidi_streaming");
    expect(StateService.method.sync.input).toBe(SyncRequestSchema);
    expect(StateService.method.sync.output).toBe(SyncResponseSchema);
  });

  test("field numbers are the ones other languages build against", () => {
    const numbers = (schema: DescMessage) =>
      Object.fromEntries(schema.fields.map((f) => [f.name, f.number]));
    expect(numbers(SyncRequestSchema)).toEqual({
      delta_update: 1,
      state_request: 2,
      state_offer: 3,
    });
    expect(numbers(StateRequestSchema)).toEqual({ seed: 1 });
    expect(numbers(StateOfferSchema)).toEqual({ seed: 1, buckets: 2 });
    expect(numbers(StoreSnapshotSchema)).toEqual({
      format_version: 1,
      taken_at_ms: 2,
      seeds: 3,
      epoch: 4,
    });
    expect(numbers(DeltaUpdateSchema)).toEqual({ seed: 1, deltas: 2 });
    expect(numbers(BucketDeltaSchema)).toEqual({
      row_id: 1,
      col_id: 2,
      delta_prob: 3,
      last_update_time_ms: 4,
    });
    expect(numbers(SyncResponseSchema)).toEqual({
      seed: 1,
      buckets: 2,
      full_state: 3,
      full_state_last: 4,
    });
    expect(numbers(BucketSchema)).toEqual({
      row_id: 1,
      col_id: 2,
      prob: 3,
      last_update_time_ms: 4,
    });
  });
});
