// docs/fair-spec.md §13.5: the deterministic structure trace produced by the Go code — murmur seed 42,
// the default config, a fake clock from 0 ms — replayed through the public API.
import { expect, test } from "vitest";
import { bucketsOf, localTracker, report, statsOf } from "../test/helpers.js";

test("13.5: seed 42, default config — indexes, decay, successes and the clamp match Go", () => {
  const { tracker, time } = localTracker({}, { seeds: [42, 7] });
  const first = statsOf(tracker.registerRequest("client_id"));
  expect(first.bucketIndexes).toEqual([56, 693, 626]);
  expect(first.bucketProbabilities).toEqual([0, 0, 0]);
  expect(first.finalProbability).toBe(0);

  for (let i = 1; i <= 10; i++) {
    time.set(i * 100);
    tracker.reportOutcome("client_id", "failure");
  }
  expect(bucketsOf(tracker, "client_id")).toEqual(Array(3).fill(0.3982056865255148));

  time.tick(60_000);
  expect(bucketsOf(tracker, "client_id")).toEqual(Array(3).fill(0.21853991432401279));

  report(tracker, "client_id", "success", 1000);
  expect(bucketsOf(tracker, "client_id")).toEqual(Array(3).fill(0.17853991432400054));

  report(tracker, "client_id", "failure", 30);
  const last = statsOf(tracker.registerRequest("client_id"));
  expect(last.bucketProbabilities).toEqual([1, 1, 1]);
  expect(last.finalProbability).toBe(1);
  expect(last.bucketIndexes).toEqual([56, 693, 626]);
});
