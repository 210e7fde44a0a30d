// Client ids: strings hash as their UTF-8 bytes (TextEncoder), bytes as they are.
import fc from "fast-check";
import { expect, test } from "vitest";
import { localTracker, statsOf } from "../test/helpers.js";
import { FairnessTrackerError } from "./index.js";

const indexes = (tracker: ReturnType<typeof localTracker>["tracker"], id: string | Uint8Array) =>
  statsOf(tracker.registerRequest(id)).bucketIndexes;

test("a string and its TextEncoder bytes land in the same buckets, for any string", () => {
  const { tracker } = localTracker({ l: 4, m: 65_521 });
  const encoder = new TextEncoder();
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 40 }), (id) => {
      expect(indexes(tracker, id)).toEqual(indexes(tracker, encoder.encode(id)));
    }),
    { numRuns: 1000 },
  );
});

test("ASCII, non-ASCII and lone surrogates each encode as TextEncoder does", () => {
  const { tracker } = localTracker({ m: 65_521 });
  const encoder = new TextEncoder();
  for (const id of ["client_id", "ünïcødé-✓", "emoji-😀", "lone-\uD800-x", "", "x".repeat(500)]) {
    expect(indexes(tracker, id)).toEqual(indexes(tracker, encoder.encode(id)));
  }
});

test("a Buffer is a Uint8Array and is hashed as its bytes", () => {
  const { tracker } = localTracker({ m: 65_521 });
  expect(indexes(tracker, Buffer.from("hello world"))).toEqual(indexes(tracker, "hello world"));
});

test("an id that is neither a string nor bytes is refused with invalid_argument", () => {
  const { tracker } = localTracker();
  const id = 42 as unknown as string;
  expect(() => tracker.registerRequest(id)).toThrow(FairnessTrackerError);
  expect(() => tracker.reportOutcome(id, "failure")).toThrow(
    "a client id must be a string or a Uint8Array",
  );
});
