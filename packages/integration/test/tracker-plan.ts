// What one tracker process of the smoke test (trackers.test.ts) does and
// prints; imported by the test and by the process (tracker-process.ts).
import {
  defaultFairnessTrackerConfig,
  type FairnessTrackerConfig,
  type SyncStats,
} from "@fair/tracker";

/** The window (the tracker's rotation period, the server's seed window): short enough that a bad flow is still throttled one window later. */
export const windowMs = 30_000;
export const trackerId = "smoke";
/** Logical milliseconds between rounds of the workload. */
export const roundMs = 100;
/**
 * The row of the end-of-round markers: below the server's 256 rows, far
 * above the tracker's L, so the tracker ignores them.
 */
export const markerRow = 255;

/** The tracker config every process uses: the defaults (λ 0.01/s, as the server's), stats on. */
export function smokeTrackerConfig(): FairnessTrackerConfig {
  return { ...defaultFairnessTrackerConfig(), includeStats: true, rotationFrequencyMs: windowMs };
}

/** One process's part of the workload, passed as JSON in argv (the server's URL comes on stdin). */
export interface InstancePlan {
  /** This instance, 0 … instances − 1; also its marker's column. */
  readonly index: number;
  readonly instances: number;
  /** Where the logical clock starts: a window start, Unix ms. */
  readonly startMs: number;
  readonly rounds: number;
  /** Client ids this instance reports failures for, `failuresPerRound` each round. */
  readonly failing: readonly string[];
  readonly failuresPerRound: number;
  /** Client ids this instance reports one success for each round. */
  readonly succeeding: readonly string[];
  /** Client ids whose view the process prints. */
  readonly watched: readonly string[];
}

/** The logical time of round `round` (0-based): every instance's round k happens at the same ms. */
export function roundAtMs(plan: InstancePlan, round: number): number {
  return plan.startMs + (round + 1) * roundMs;
}

/** When every instance reads its final view: after the last round, in the first window. */
export function viewAtMs(plan: InstancePlan): number {
  return roundAtMs(plan, plan.rounds);
}

/** One client id as a tracker sees it: a `registerRequest` with stats. */
export interface ClientView {
  readonly bucketIndexes: readonly number[];
  readonly bucketProbabilities: readonly number[];
  readonly finalProbability: number;
  readonly shouldThrottle: boolean;
}

/** What a tracker decides for the watched ids at `atMs`, reading window `seedMs`. */
export interface WindowView {
  readonly seedMs: number;
  readonly atMs: number;
  readonly clients: Readonly<Record<string, ClientView>>;
}

/** The first line: connected, with the initial full state of both windows applied. */
export interface ReadyLine {
  readonly type: "ready";
  readonly view: WindowView;
}

/** The last line: the views of both windows once every instance's outcomes are in. */
export interface DoneLine {
  readonly type: "done";
  /** Read at {@link viewAtMs}, from the window of `startMs`. */
  readonly current: WindowView;
  /** Read one window later, from the window that was the secondary. */
  readonly next: WindowView;
  readonly syncStats: SyncStats;
  /** Adjustments the client dropped, all reasons together. */
  readonly deltasDropped: number;
  /** Every error the client reported. */
  readonly errors: readonly string[];
}
