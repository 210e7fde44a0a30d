import { create, toBinary } from "@bufbuild/protobuf";
import { GrpcFrameReader, SyncResponseSchema } from "@fair/state-proto";
import { describe, expect, test } from "vitest";
import { frame } from "../src/grpc-frames.js";
import { walkSyncResponse } from "../src/sync-response-walker.js";

describe("the SyncResponse walker", () => {
  test("reads what protobuf-es wrote: seed, flags and every bucket", () => {
    const message = create(SyncResponseSchema, {
      seed: 18446744073709551615n,
      fullState: true,
      fullStateLast: true,
      buckets: [
        {
          rowId: 255n,
          colId: 16_777_215n,
          prob: 0.3982056865255148,
          lastUpdateTimeMs: 1_764_136_800_123n,
        },
        { rowId: 0n, colId: 0n, prob: 1, lastUpdateTimeMs: 0n },
      ],
    });
    const seen: number[][] = [];
    const walked = walkSyncResponse(
      Buffer.from(toBinary(SyncResponseSchema, message)),
      (...bucket) => seen.push(bucket),
    );
    expect(walked).toEqual({
      seed: 18446744073709551615n,
      fullState: true,
      fullStateLast: true,
      buckets: 2,
    });
    expect(seen).toEqual([
      [255, 16_777_215, 0.3982056865255148, 1_764_136_800_123],
      [0, 0, 1, 0],
    ]);
  });

  test("skips fields it does not know, as a newer server might add", () => {
    const message = create(SyncResponseSchema, {
      seed: 7n,
      buckets: [{ rowId: 1n, colId: 2n, prob: 0.5, lastUpdateTimeMs: 3n }],
    });
    message.$unknown = [{ no: 9, wireType: 2, data: new Uint8Array([3, 1, 2, 3]) }];
    const seen: number[][] = [];
    const walked = walkSyncResponse(
      Buffer.from(toBinary(SyncResponseSchema, message)),
      (...bucket) => seen.push(bucket),
    );
    expect(walked).toMatchObject({ seed: 7n, buckets: 1 });
    expect(seen).toEqual([[1, 2, 0.5, 3]]);
  });
});

test("frame() writes what the shared GrpcFrameReader reads back", () => {
  const messages = [Buffer.from([1, 2, 3]), Buffer.alloc(0), Buffer.from("hello")];
  const reader = new GrpcFrameReader();
  const out = reader.push(Buffer.concat(messages.map((m) => frame(m))));
  expect(out.map((m) => [...m])).toEqual(messages.map((m) => [...m]));
});
