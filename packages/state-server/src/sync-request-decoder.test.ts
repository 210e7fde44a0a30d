import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  StateOfferSchema,
  StateRequestSchema,
  type SyncRequest,
  SyncRequestSchema,
} from "@fair/state-proto";
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

const bucket = fc.record({
  rowId: uint64,
  colId: uint64,
  prob: fc.double(),
  lastUpdateTimeMs: uint64,
});

const request = fc.oneof(
  fc
    .record({ seed: uint64, deltas: fc.array(delta, { maxLength: 20 }) })
    .map((value) => create(SyncRequestSchema, { request: { case: "deltaUpdate", value } })),
  uint64.map((seed) =>
    create(SyncRequestSchema, { request: { case: "stateRequest", value: { seed } } }),
  ),
  fc
    .record({ seed: uint64, buckets: fc.array(bucket, { maxLength: 20 }) })
    .map((value) => create(SyncRequestSchema, { request: { case: "stateOffer", value } })),
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
  if (request.case === "stateOffer") {
    return {
      request: {
        case: "stateOffer",
        value: {
          seed: request.value.seed,
          buckets: request.value.buckets.map((b) => ({
            rowId: Number(b.rowId),
            colId: Number(b.colId),
            prob: b.prob,
            lastUpdateTimeMs: Number(b.lastUpdateTimeMs),
          })),
        },
      },
    };
  }
  return { request: { case: undefined } };
}

/** A SyncRequest of one case, as bytes protobuf-es writes. */
function encoded(request: SyncRequest["request"]): Uint8Array {
  return toBinary(SyncRequestSchema, create(SyncRequestSchema, { request }));
}

/** A StateOffer of `seed` with one bucket (row 0, `col`, prob 0.25, ts 5), encoded. */
function offerBytes(seed: bigint, col: number): Uint8Array {
  return encoded({
    case: "stateOffer",
    value: create(StateOfferSchema, {
      seed,
      buckets: [{ rowId: 0n, colId: BigInt(col), prob: 0.25, lastUpdateTimeMs: 5n }],
    }),
  });
}

/** Whatever protobuf-es reads of `bytes`, or "error". */
function protobufEs(bytes: Uint8Array): SyncRequestInput | "error" {
  try {
    return expected(fromBinary(SyncRequestSchema, bytes));
  } catch {
    return "error";
  }
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

  test("a state_offer seen twice merges its buckets, the later seed wins; another member replaces it, and it replaces another", () => {
    const merged = decodeSyncRequest(Buffer.concat([offerBytes(600n, 1), offerBytes(900n, 2)]));
    expect(merged.request).toEqual({
      case: "stateOffer",
      value: {
        seed: 900n,
        buckets: [
          { rowId: 0, colId: 1, prob: 0.25, lastUpdateTimeMs: 5 },
          { rowId: 0, colId: 2, prob: 0.25, lastUpdateTimeMs: 5 },
        ],
      },
    });
    const state = encoded({
      case: "stateRequest",
      value: create(StateRequestSchema, { seed: 7n }),
    });
    expect(decodeSyncRequest(Buffer.concat([offerBytes(600n, 1), state])).request.case).toBe(
      "stateRequest",
    );
    // An offer after another member starts afresh: nothing of an earlier offer survives it.
    const replaced = decodeSyncRequest(
      Buffer.concat([offerBytes(600n, 1), state, offerBytes(900n, 2)]),
    );
    expect(replaced.request).toEqual({
      case: "stateOffer",
      value: { seed: 900n, buckets: [{ rowId: 0, colId: 2, prob: 0.25, lastUpdateTimeMs: 5 }] },
    });
    for (const bytes of [
      Buffer.concat([offerBytes(600n, 1), state]),
      Buffer.concat([offerBytes(600n, 1), offerBytes(900n, 2)]),
      Buffer.concat([offerBytes(600n, 1), state, offerBytes(900n, 2)]),
    ]) {
      expect(decodeSyncRequest(bytes)).toEqual(protobufEs(bytes));
    }
  });

  test("skips unknown fields of every wire type inside a state_offer and its buckets", () => {
    const unknown = [
      0x48, 0x96, 0x01, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5a, 2, 0x61, 0x62, 0x65, 1, 2, 3, 4,
    ];
    // Bucket { row 1, col 2, prob 0.5, ts 3 } with unknown fields in the middle
    const bucketBytes = [0x08, 1, ...unknown, 0x10, 2, 0x19, 0, 0, 0, 0, 0, 0, 0xe0, 0x3f, 0x20, 3];
    // StateOffer { seed 300, buckets: [that] } with unknown fields around
    const offer = [
      ...unknown,
      0x08,
      0xac,
      0x02,
      0x12,
      bucketBytes.length,
      ...bucketBytes,
      ...unknown,
    ];
    const bytes = Uint8Array.from([...unknown, 0x1a, offer.length, ...offer, ...unknown]);
    const value = {
      seed: 300n,
      buckets: [{ rowId: 1, colId: 2, prob: 0.5, lastUpdateTimeMs: 3 }],
    };
    expect(decodeSyncRequest(bytes)).toEqual({ request: { case: "stateOffer", value } });
    expect(protobufEs(bytes)).toEqual({ request: { case: "stateOffer", value } });
  });

  test("a state_offer's seed is exact to 2^64 - 1; its ids and times are exact below 2^53 and past it never round below it", () => {
    const max = 2n ** 64n - 1n;
    const decoded = decodeSyncRequest(
      encoded({
        case: "stateOffer",
        value: create(StateOfferSchema, {
          seed: max,
          buckets: [
            { rowId: 2n ** 53n - 1n, colId: 2n ** 53n + 1n, prob: 1, lastUpdateTimeMs: max },
          ],
        }),
      }),
    );
    expect(decoded.request.case).toBe("stateOffer");
    const offer = decoded.request.value as {
      seed: bigint;
      buckets: { rowId: number; colId: number; lastUpdateTimeMs: number }[];
    };
    expect(offer.seed).toBe(max);
    const [only] = offer.buckets;
    expect(only?.rowId).toBe(Number.MAX_SAFE_INTEGER);
    // Past 2^53 a number may round, but never to a value a store would take for an exact one.
    expect(only?.colId).toBeGreaterThan(Number.MAX_SAFE_INTEGER);
    expect(only?.lastUpdateTimeMs).toBeGreaterThan(Number.MAX_SAFE_INTEGER);
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
    ["a state_offer past the end", [0x1a, 0x10, 0x08, 0x01]],
    ["a state_offer bucket overrunning its offer", [0x1a, 0x03, 0x12, 0x04, 0x08, 0x01, 0x10]],
    ["a truncated prob in a state_offer", [0x1a, 0x05, 0x12, 0x03, 0x19, 0x00, 0x00]],
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

  test("arbitrary bytes inside a state_offer either throw a DecodeError or decode to an offer a store can check: a uint64 seed, integer ids and times", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (inner) => {
        let decoded: SyncRequestInput;
        try {
          decoded = decodeSyncRequest(Uint8Array.from([0x1a, inner.length, ...inner]));
        } catch (error) {
          expect(error).toBeInstanceOf(DecodeError);
          return;
        }
        const { request } = decoded;
        expect(request.case).toBe("stateOffer");
        if (request.case !== "stateOffer") return;
        expect(request.value.seed >= 0n && request.value.seed < 2n ** 64n).toBe(true);
        for (const b of request.value.buckets) {
          for (const id of [b.rowId, b.colId, b.lastUpdateTimeMs]) {
            expect(Number.isInteger(id) && Number(id) >= 0).toBe(true);
          }
          expect(typeof b.prob).toBe("number");
        }
      }),
      { numRuns: 2000 },
    );
  });
});
