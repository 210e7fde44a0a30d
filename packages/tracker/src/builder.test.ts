// The builder's setters take effect (docs/fair-spec.md §14); the Go builder tests are in
// tracker.test.ts.
import { FakeTime } from "@fair/testing";
import { expect, test } from "vitest";
import { statsOf } from "../test/helpers.js";
import { FairnessTrackerBuilder } from "./index.js";

// docs/fair-spec.md §14 item 6 (mutant m46).
test("setIncludeStats(true) really turns stats on", () => {
  const time = new FakeTime(0);
  const on = new FairnessTrackerBuilder().setIncludeStats(true).build({ timers: time.timers });
  const off = new FairnessTrackerBuilder().build({ timers: time.timers });
  expect(on.registerRequest("a").stats).toBeDefined();
  expect(off.registerRequest("a").stats).toBeUndefined();
});

// docs/fair-spec.md §14 item 15 (mutant m55).
test("setL(1) is honoured: one level, one hash, no clamp to 3", () => {
  const time = new FakeTime(0);
  const tracker = new FairnessTrackerBuilder()
    .setL(1)
    .setIncludeStats(true)
    .build({ timers: time.timers });
  expect(tracker.config.l).toBe(1);
  expect(statsOf(tracker.registerRequest("a")).bucketIndexes).toHaveLength(1);
});
