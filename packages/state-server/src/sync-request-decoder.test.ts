import { create, toBinary } from "@bufbuild/protobuf";
import { type SyncRequest, SyncRequestSchema } from "@fair/state-proto";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { DecodeError, decodeSyncRequest, type SyncRequestInput } from "./sync-request-decoder.js";

const uint64 = fc.oneof(
  fc.bigInt({ min: 0n, max: 2n ** 20n }),
  fc.bigInt({ min: 0n, max: 2n ** 53n - 1n }),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
);

const delta = fc.record({
  rowId: uint64,
  colId: uint64,
  deltaProb: fc.double(),
  lastUpdateTimeMs: uint64,
});

const request = fc.oneof(
  fc
    .record({ seed: uint64, deltas: fc.array(delta, { maxLength: 20 }) })
    .map((value) => create(SyncRequestSchema, { request: { case: "deltaUpdate", value } })),
  uint64.map((seed) =>
    create(SyncRequestSchema, { request: { case: "stateRequest", value: { seed } } }),
  ),
  fc.constant(create(SyncRequestSchema, {})),
);

/** What the stream reads of a request, with uint64s as the numbers the decoder gives. */
function expected(message: SyncRequest): SyncRequestInput {
  const { request } = message;
  if (request.case === "deltaUpdate") {
    return {
      request: {
        case: "deltaUpdate",
        value: {
          seed: request.value.seed,
          deltas: request.value.deltas.map((d) => ({
            rowId: Number(d.rowId),
            colId: Number(d.colId),
            deltaProb: d.deltaProb,
            lastUpdateTimeMs: Number(d.lastUpdateTimeMs),
          })),
        },
      },
    };
  }
  if (request.case === "stateRequest") {
    return { request: { case: "stateRequest", value: { seed: request.value.seed } } };
  }
  return { request: { case: undefined } };
}

describe("decodeSyncRequest", () => {
  test("reads every SyncRequest protobuf-es writes", () => {
    fc.assert(
      fc.property(request, (message) => {
        expect(decodeSyncRequest(toBinary(SyncRequestSchema, message))).toEqual(expected(message));
      }),
      { numRuns: 500 },
    );
  });

  test("skips unknown fields of every wire type, at every level", () => {
    // field 9 varint 150, field 10 fixed64, field 11 bytes "ab", field 12 fixed32
    const unknown = [
      0x48, 0x96, 0x01, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5a, 2, 0x61, 0x62, 0x65, 1, 2, 3, 4,
    ];
    // BucketDelta { row 1, col 2, prob 0.5, ts 3 } with unknown fields in the middle
    const deltaBytes = [0x08, 1, ...unknown, 0x10, 2, 0x19, 0, 0, 0, 0, 0, 0, 0xe0, 0x3f, 0x20, 3];
    // DeltaUpdate { seed 300, deltas: [that] } with unknown fields around
    const updateBytes = [
      ...unknown,
      0x08,
      0xac,
      0x02,
      0x12,
      deltaBytes.length,
      ...deltaBytes,
      ...unknown,
    ];
    const bytes = Uint8Array.from([
      ...unknown,
      0x0a,
      updateBytes.length,
      ...updateBytes,
      ...unknown,
    ]);
    expect(decodeSyncRequest(bytes)).toEqual({
      request: {
        case: "deltaUpdate",
        value: {
          seed: 300n,
          deltas: [{ rowId: 1, colId: 2, deltaProb: 0.5, lastUpdateTimeMs: 3 }],
        },
      },
    });
  });

  test("a message field seen twice merges; the other oneof member replaces it", () => {
    const part = (seed: number, col: number) =>
      toBinary(SyncRequestSchema, {
        ...create(SyncRequestSchema, {
          request: {
            case: "deltaUpdate",
            value: {
              seed: BigInt(seed),
              deltas: [{ rowId: 0n, colId: BigInt(col), deltaProb: 0.1, lastUpdateTimeMs: 5n }],
            },
          },
        }),
      });
    const merged = decodeSyncRequest(Buffer.concat([part(600, 1), part(900, 2)]));
    expect(merged.request.case).toBe("deltaUpdate");
    expect(merged.request.value).toMatchObject({
      seed: 900n,
      deltas: [{ colId: 1 }, { colId: 2 }],
    });

    const state = toBinary(
      SyncRequestSchema,
      create(SyncRequestSchema, { request: { case: "stateRequest", value: { seed: 7n } } }),
    );
    expect(decodeSyncRequest(Buffer.concat([part(600, 1), state])).request).toEqual({
      case: "stateRequest",
      value: { seed: 7n },
    });
  });

  test.each([
    ["a truncated varint", [0x0a, 0x03, 0x08, 0xff]],
    ["a length past the end", [0x0a, 0x10, 0x08, 0x01]],
    ["a submessage overrunning its length", [0x0a, 0x02, 0x08, 0xac, 0x02]],
    ["a group", [0x1b, 0x1c]],
    ["wire type 7", [0x0f]],
    ["field number 0", [0x00, 0x01]],
    [
      "a varint of 11 bytes",
      [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    ],
    ["a truncated double", [0x0a, 0x05, 0x12, 0x03, 0x19, 0x00, 0x00]],
  ])("%s is a DecodeError saying where", (_name, bytes) => {
    expect(() => decodeSyncRequest(Uint8Array.from(bytes))).toThrow(DecodeError);
    expect(() => decodeSyncRequest(Uint8Array.from(bytes))).toThrow(
      /not a valid SyncRequest: .* \(at byte \d+\)/,
    );
  });

  test("arbitrary bytes either decode or throw a DecodeError, nothing else", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeSyncRequest(bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
