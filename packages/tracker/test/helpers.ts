import { FakeTime } from "@fair/testing";
import {
  defaultFairnessTrackerConfig,
  FairnessTracker,
  type FairnessTrackerConfig,
  type FairnessTrackerOptions,
  type RegisterRequestResult,
  type ResultStats,
} from "../src/index.js";
import { seedSequence } from "./sources.js";

/** How a test tracker is wired: fake time, fixed murmur seeds, a fixed or given draw. */
export interface TestWiring {
  readonly time?: FakeTime;
  /** Murmur seeds in the order the tracker asks: main, secondary, one per rotation. */
  readonly seeds?: number[];
  readonly random?: () => number;
  readonly options?: Partial<FairnessTrackerOptions>;
}

/**
 * A local-mode tracker on the default config with stats on and `overrides` applied, on fake
 * time starting at 0 ms, with murmur seeds 42, 43, … and draws of 0.5 unless told otherwise.
 */
export function localTracker(
  overrides: Partial<FairnessTrackerConfig> = {},
  wiring: TestWiring = {},
): { tracker: FairnessTracker; time: FakeTime } {
  const time = wiring.time ?? new FakeTime(0);
  const tracker = new FairnessTracker(
    { ...defaultFairnessTrackerConfig(), includeStats: true, ...overrides },
    {
      now: time.now,
      timers: time.timers,
      random: wiring.random ?? (() => 0.5),
      murmurSeed: seedSequence(...(wiring.seeds ?? [42, 43])),
      ...wiring.options,
    },
  );
  return { tracker, time };
}

/** The stats of a decision, failing the test when there are none. */
export function statsOf(result: RegisterRequestResult): ResultStats {
  if (result.stats === undefined) throw new Error("the decision carries no stats");
  return result.stats;
}

/** Registers `id` and returns its main-structure bucket probabilities (a read at the current ms). */
export function bucketsOf(tracker: FairnessTracker, id: string | Uint8Array): readonly number[] {
  return statsOf(tracker.registerRequest(id)).bucketProbabilities;
}

/** Reports `count` outcomes for `id`. */
export function report(
  tracker: FairnessTracker,
  id: string,
  outcome: "success" | "failure",
  count = 1,
): void {
  for (let i = 0; i < count; i++) tracker.reportOutcome(id, outcome);
}
