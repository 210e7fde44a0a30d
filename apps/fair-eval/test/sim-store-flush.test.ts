// The simulated service with a store replica that coalesces before the store (`storeFlushMs`,
// src/sim-service.ts; the Redis store's `redisFlushIntervalMs`): several instances' deltas to one
// bucket within an interval reach the store as one, with the value `PendingDeltas`' rule gives,
// clamped once per interval; and with it at 5 ms, §2.7.3's bounds still hold.
import type { BucketValue, StateLink } from "@fair/state-client";
import { describe, expect, test } from "vitest";
import { verdict } from "../src/acceptance.js";
import type { Summary } from "../src/aggregate.js";
import { EventQueue } from "../src/event-queue.js";
import { SimStateService } from "../src/sim-service.js";
import { run, summaryOf } from "./eval-helpers.js";

/** λ = 1/s, so that a few ms of decay show in the 12th digit and beyond. */
const lambdaPerMs = 1 / 1000;
const decay = (ms: number) => Math.exp(-lambdaPerMs * ms);
const [s0, s1] = [0n, 60_000n];

/**
 * Three instances (d = 1 ms, per-update broadcasts) hitting the same buckets: five updates that
 * arrive at 1001–1003 ms, in the store flush of 1005 ms, then two that arrive at 1007 and 1008 ms,
 * in that of 1010 ms. Returns the service, the broadcasts as they arrived at instance 0, and the
 * full state of both seeds afterwards.
 */
async function scripted(storeFlushMs: number) {
  const queue = new EventQueue();
  const service = new SimStateService(queue, {
    delayMs: 1,
    batchMs: 0,
    windowMs: 60_000,
    decayRatePerSecond: 1,
    storeFlushMs,
  });
  const links: StateLink[] = [service.connect(), service.connect(), service.connect()];
  const broadcasts: { atMs: number; seed: bigint; buckets: readonly BucketValue[] }[] = [];
  (links[0] as StateLink).subscribe({
    onStateUpdate(seed, buckets, fullState) {
      if (!fullState) broadcasts.push({ atMs: queue.now, seed, buckets });
    },
  });
  const send = (atMs: number, k: number, seed: bigint, deltas: [number, number, number][]) =>
    queue.schedule(atMs, () =>
      (links[k] as StateLink).sendDeltaUpdate(
        seed,
        deltas.map(([colId, deltaProb, lastUpdateTimeMs]) => ({
          rowId: 0,
          colId,
          deltaProb,
          lastUpdateTimeMs,
        })),
      ),
    );
  // Interval (1000, 1005]: bucket 7 gets +0.04 from every instance, one of them stamped late
  // (999 ms); bucket 8 gets +0.04 once; the secondary seed's bucket 7 gets +0.04 twice.
  send(1_000, 0, s0, [
    [7, 0.04, 1_000],
    [8, 0.04, 1_000],
  ]);
  send(1_000, 0, s1, [[7, 0.04, 1_000]]);
  send(1_001, 1, s0, [[7, 0.04, 1_001]]);
  send(1_002, 2, s0, [[7, 0.04, 999]]);
  send(1_002, 2, s1, [[7, 0.04, 999]]);
  // Interval (1005, 1010]: bucket 8 (0.04 as of 1000 ms) gets −0.05, then +0.03. Applied one by
  // one the first clamps it to 0; coalesced, it is clamped once, after both.
  send(1_006, 0, s0, [[8, -0.05, 1_006]]);
  send(1_007, 1, s0, [[8, 0.03, 1_007]]);
  queue.runUntil(1_050);
  const full = Promise.all([s0, s1].map((seed) => (links[1] as StateLink).requestFullState(seed)));
  queue.runUntil(1_100);
  const [state0, state1] = await full;
  const value = (buckets: readonly BucketValue[] | undefined, colId: number) =>
    buckets?.find((b) => b.colId === colId);
  return {
    stats: service.stats,
    broadcasts,
    bucket7: value(state0, 7),
    bucket8: value(state0, 8),
    secondary7: value(state1, 7),
  };
}

// Computed here from the deltas fed, as a sum: Σ aⱼ·e^(−λ(t_max − tⱼ)/1000), stamped t_max.
const expected7 = 0.04 * decay(1_001 - 1_000) + 0.04 + 0.04 * decay(1_001 - 999);
const expectedSecondary7 = 0.04 + 0.04 * decay(1_000 - 999);
// Bucket 8 after the second flush: its 0.04 of 1000 ms decayed to t_max = 1007 ms, plus the sum.
const expected8 = 0.04 * decay(1_007 - 1_000) + (-0.05 * decay(1_007 - 1_006) + 0.03);

describe("store coalescing in the simulated service (storeFlushMs = 5)", () => {
  test("several instances' updates within an interval reach the store as one update per seed", async () => {
    const { stats, broadcasts } = await scripted(5);
    expect(stats).toMatchObject({
      updatesReceived: 7,
      deltasReceived: 8,
      // Flush at 1005 ms: one update for each seed (3 buckets); at 1010 ms: one (1 bucket).
      storeUpdatesApplied: 3,
      storeDeltasApplied: 4,
    });
    expect(stats.storeUpdatesApplied).toBeLessThan(stats.updatesReceived);
    // Broadcasts follow the applies, d = 1 ms after each flush; nothing went out before.
    expect(broadcasts.map((b) => [b.atMs, b.seed])).toEqual([
      [1_006, s0],
      [1_006, s1],
      [1_011, s0],
    ]);
    expect(broadcasts[0]?.buckets.map((b) => b.colId).sort()).toEqual([7, 8]);
  });

  test("the store holds the coalesced sums, stamped t_max, clamped once per interval", async () => {
    const { bucket7, bucket8, secondary7 } = await scripted(5);
    expect(bucket7?.lastUpdateTimeMs).toBe(1_001);
    expect(bucket7?.prob).toBeCloseTo(expected7, 12);
    expect(secondary7?.lastUpdateTimeMs).toBe(1_000);
    expect(secondary7?.prob).toBeCloseTo(expectedSecondary7, 12);
    expect(bucket8?.lastUpdateTimeMs).toBe(1_007);
    expect(bucket8?.prob).toBeCloseTo(expected8, 12);
    expect(expected8).toBeCloseTo(0.0198, 4);
  });

  test("without it (storeFlushMs = 0) every update is applied on arrival, and clamped each time", async () => {
    const { stats, broadcasts, bucket7, bucket8 } = await scripted(0);
    expect(stats).toMatchObject({
      updatesReceived: 7,
      deltasReceived: 8,
      storeUpdatesApplied: 7,
      storeDeltasApplied: 8,
    });
    expect(broadcasts.map((b) => b.atMs)).toEqual([
      1_002, 1_002, 1_003, 1_004, 1_004, 1_008, 1_009,
    ]);
    // The linear part is the same either way…
    expect(bucket7?.prob).toBeCloseTo(expected7, 12);
    // …but −0.05 clamps bucket 8 to 0 before the +0.03 arrives.
    expect(bucket8?.prob).toBeCloseTo(0.03, 12);
  });
});

describe("§2.7.3 with store coalescing at 5 ms, N = 8, 3 trials", { timeout: 180_000 }, () => {
  const trials = [0, 1, 2];
  const references = new Map<string, Summary>();
  const reference = (scenario: string) => {
    let found = references.get(scenario);
    if (found === undefined) {
      const runs = trials.map((trial) => run(scenario, "centralized", 8, { trial }));
      found = summaryOf(scenario, "centralized", runs);
      references.set(scenario, found);
    }
    return found;
  };

  test.each([
    ["api_noisy_neighbors", 0, 0],
    ["api_noisy_neighbors", 50, 250],
    ["batch_surge", 50, 250],
  ])(
    "%s, d = %i ms, B = %i ms: the bounds hold, and the store gets fewer deltas than the service",
    (scenario, delayMs, batchMs) => {
      const runs = trials.map((trial) =>
        run(scenario, "shared", 8, { delayMs, batchMs, trial, storeFlushMs: 5 }),
      );
      for (const r of runs) expect(r.storeDeltasPerSec).toBeLessThan(r.deltasPerSec);
      const shared = summaryOf(scenario, "shared", runs, { delayMs, batchMs, storeFlushMs: 5 });
      const judged = verdict(shared, reference(scenario));
      expect(Math.abs(shared.divergence ?? 1)).toBeLessThanOrEqual(0.005);
      expect(judged).toMatchObject({
        divergenceOk: true,
        jainOk: true,
        tttOk: true,
        utilizationOk: true,
        pass: true,
      });
    },
  );
});
