// docs/fair-spec.md §12 integration: ten clients share a small token bucket through a tracker that
// rotates every second. Go runs ten goroutines on the real clock; here the requests interleave
// on fake time, which is what the goroutines amount to.

import { FakeTime } from "@fair/testing";
import { expect, test } from "vitest";
import { defaultFairnessTrackerConfig, FairnessTracker } from "./index.js";

test("12: 10 clients × 100 requests, 10 tokens refilled at 1/s, rotation every 1 s: 200s, 429s and throttles all happen", () => {
  const time = new FakeTime(1_764_136_800_000);
  const tracker = new FairnessTracker(
    { ...defaultFairnessTrackerConfig(), rotationFrequencyMs: 1000 },
    { now: time.now, timers: time.timers },
  );
  let tokens = 10;
  let lastRefillMs = time.now();
  const take = () => {
    const now = time.now();
    tokens = Math.min(10, tokens + (now - lastRefillMs) / 1000);
    lastRefillMs = now;
    if (tokens < 1) return false;
    tokens--;
    return true;
  };
  const seen = { ok: 0, tooMany: 0, throttled: 0 };
  for (let round = 0; round < 100; round++) {
    for (let client = 0; client < 10; client++) {
      time.tick(10);
      const id = `client-${client}`;
      if (tracker.registerRequest(id).shouldThrottle) {
        seen.throttled++;
      } else if (take()) {
        seen.ok++;
        tracker.reportOutcome(id, "success");
      } else {
        seen.tooMany++;
        tracker.reportOutcome(id, "failure");
      }
    }
  }
  tracker.close();
  expect(seen.ok).toBeGreaterThan(0);
  expect(seen.tooMany).toBeGreaterThan(0);
  expect(seen.throttled).toBeGreaterThan(0);
  expect(tracker.structureIds.main).toBeGreaterThan(5);
});
