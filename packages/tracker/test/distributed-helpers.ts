import { FakeTime } from "@fair/testing";
import {
  defaultFairnessTrackerConfig,
  FairnessTracker,
  type FairnessTrackerConfig,
  type FairnessTrackerOptions,
} from "../src/index.js";
import { FakeLink } from "./fake-link.js";

/** 1 minute windows, so tests cross them cheaply. */
export const windowMs = 60_000;
/** A window start: 2025-11-26T06:00:00Z. */
export const t0 = 1_764_136_800_000;

/**
 * A distributed tracker with stats on, 1-minute windows and tracker id "checkout", on fake
 * time starting `offsetMs` into the window at t0, linked to a {@link FakeLink} unless `link`
 * is null. `options` adds tracker options (hooks); the clock, timers, draw and `distributed`
 * stay the helper's.
 */
export function distributedTracker(
  overrides: Partial<FairnessTrackerConfig> = {},
  {
    offsetMs = 0,
    link = new FakeLink(),
    random = () => 0.5,
    trackerId = "checkout",
    options = {},
  }: {
    offsetMs?: number;
    link?: FakeLink | null;
    random?: () => number;
    trackerId?: string;
    options?: Partial<FairnessTrackerOptions>;
  } = {},
): { tracker: FairnessTracker; time: FakeTime; link: FakeLink } {
  const time = new FakeTime(t0 + offsetMs);
  const tracker = new FairnessTracker(
    {
      ...defaultFairnessTrackerConfig(),
      includeStats: true,
      rotationFrequencyMs: windowMs,
      ...overrides,
    },
    {
      ...options,
      now: time.now,
      timers: time.timers,
      random,
      distributed: { trackerId, ...(link === null ? {} : { link }) },
    },
  );
  return { tracker, time, link: link ?? new FakeLink() };
}
