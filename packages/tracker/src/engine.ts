import type { ClientIdEncoder } from "./client-id.js";
import type { Outcome, RegisterRequestResult } from "./results.js";

/**
 * The ids of the two structures a tracker holds. Local mode: Go's structure ids (1 and 2, then
 * one more per rotation; `secondary − main` is always 1). Distributed mode: the window seeds,
 * Unix ms (`secondary − main` is the window length).
 */
export interface StructureIds {
  /** The structure decisions read. */
  readonly main: number;
  /** The structure being warmed to become main at the next rotation. */
  readonly secondary: number;
}

/** Distributed mode's traffic with its link; all zero in local mode. Counters only grow. */
export interface SyncStats {
  /** Bucket deltas handed to the link (2·L per outcome: both windows). */
  readonly deltasSent: number;
  /** `sendDeltaUpdate` calls (two per outcome). */
  readonly updatesSent: number;
  /** `sendDeltaUpdate` calls that threw. The contract says a link never throws; the tracker counts it anyway. */
  readonly sendErrors: number;
  /**
   * `requestFullState` calls: two at start, one per window change (two after more than a window
   * idle). None per reconnect: the link asks again for what it was asked for.
   */
  readonly fullStateRequests: number;
  /** Full-state requests that threw or rejected; swallowed, because local state still works. */
  readonly fullStateFailures: number;
  /** Buckets from the link written over local state. */
  readonly bucketsApplied: number;
  /** Buckets from the link for a window the tracker does not hold, or outside its L × M. */
  readonly bucketsIgnored: number;
  /**
   * New state epochs the link reported (a State Service that lost what it held): each time,
   * the tracker offered its view of both windows back (learning mode).
   */
  readonly epochChanges: number;
  /** Non-default buckets offered to the link at epoch changes, over both windows. */
  readonly bucketsOffered: number;
}

/** Every {@link SyncStats} counter at zero: local mode's stats, and where distributed mode starts. */
export const noSyncStats: SyncStats = Object.freeze({
  deltasSent: 0,
  updatesSent: 0,
  sendErrors: 0,
  fullStateRequests: 0,
  fullStateFailures: 0,
  bucketsApplied: 0,
  bucketsIgnored: 0,
  epochChanges: 0,
  bucketsOffered: 0,
});

/** What a tracker does, local or distributed; the tracker encodes the id and reads the clock. */
export interface Engine {
  registerRequest(id: ClientIdEncoder, nowMs: number): RegisterRequestResult;
  reportOutcome(id: ClientIdEncoder, outcome: Outcome, nowMs: number): void;
  rotate(): void;
  close(): void;
  readonly structureIds: StructureIds;
  syncStats(): SyncStats;
  /**
   * The final probability of the last `registerRequest`, the one its draw was compared to;
   * NaN before the first. For `onDecision`: a number kept in a field, so it costs a store
   * whether or not anyone reads it.
   */
  readonly lastProbability: number;
  /** `structureIds.main` without the object. */
  readonly mainStructureId: number;
}
