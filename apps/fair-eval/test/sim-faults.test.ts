// The simulated State Service's faults (src/sim-service.ts), message by message: what a link
// holds while the server is gone, what it does on reconnecting, with learning mode (`after`)
// and without (`before`, the old client).
import type { BucketValue, StateLinkListener } from "@fair/state-client";
import { describe, expect, test } from "vitest";
import { EventQueue } from "../src/event-queue.js";
import { type FaultPlan, failedAttemptOffsets } from "../src/faults.js";
import { SimStateService } from "../src/sim-service.js";

/** A restart at 1 s, down for `downMs`, with one link (d = 10 ms, per-update broadcasts, λ = 0). */
function restarted(variant: "before" | "after", downMs: number) {
  const fault: FaultPlan = {
    kind: "restart",
    variant,
    atMs: 1_000,
    downMs,
    newStore: true,
    snapshot: false,
  };
  const queue = new EventQueue();
  const service = new SimStateService(queue, {
    delayMs: 10,
    batchMs: 0,
    windowMs: 60_000,
    decayRatePerSecond: 0,
    fault,
  });
  const link = service.connect();
  const events: string[] = [];
  const held = new Map<number, number>();
  const listener: StateLinkListener = {
    onStateUpdate(_seed, buckets: readonly BucketValue[], fullState) {
      events.push(`${fullState ? "full" : "broadcast"} ${buckets.map((b) => b.prob).join(",")}`);
      for (const b of buckets) held.set(b.colId, b.prob);
    },
    onStatusChange: (status) => events.push(status),
    onEpochChange() {
      events.push("epoch");
      // What a tracker does: offer its replica (here: the bucket as it holds it, 0.6 at 2 s).
      link.offerState(0n, [
        { rowId: 0, colId: 1, prob: held.get(1) ?? 0, lastUpdateTimeMs: 2_000 },
      ]);
    },
  };
  link.subscribe(listener);
  void link.requestFullState(0n);
  link.sendDeltaUpdate(0n, [{ rowId: 0, colId: 1, deltaProb: 0.5, lastUpdateTimeMs: 0 }]);
  queue.runUntil(500);
  expect(events).toEqual(["full ", "broadcast 0.5"]);
  events.length = 0;
  queue.runUntil(1_050);
  expect(link.status).toBe("disconnected");
  // While disconnected: held (and coalesced), and applied locally as a tracker would.
  link.sendDeltaUpdate(0n, [{ rowId: 0, colId: 1, deltaProb: 0.05, lastUpdateTimeMs: 1_050 }]);
  queue.runUntil(2_000);
  link.sendDeltaUpdate(0n, [{ rowId: 0, colId: 1, deltaProb: 0.05, lastUpdateTimeMs: 2_000 }]);
  held.set(1, 0.6);
  queue.runUntil(1_000 + downMs + 1_000);
  return { service, events, held };
}

describe("a restart in the simulated service", () => {
  test("after: epoch change, offers, then full state, then the held adjustments", () => {
    const { service, events, held } = restarted("after", 5_000);
    expect(service.recoveryMs).toBe(6_100);
    // The offer, net of the held +0.1 (as the real client sends it), raises the empty store
    // to 0.5 (broadcast); the full state follows it; the held +0.1 comes last: 0.6, the
    // replica's value, each outcome counted once.
    expect(events.slice(0, 5)).toEqual([
      "disconnected",
      "connected",
      "epoch",
      "broadcast 0.5",
      "full 0.5",
    ]);
    expect(events).toHaveLength(6);
    expect(held.get(1)).toBeCloseTo(0.6, 12);
    expect(service.stats).toMatchObject({ offersReceived: 1, heldBucketsDropped: 0 });
  });

  test("before: no epoch, no offers, held adjustments dropped after five failed attempts", () => {
    const { service, events, held } = restarted("before", 5_000);
    // 5 s down: attempts at 100, 300, 700, 1500 and 3100 ms fail, all after the bucket was first
    // held (at 50 ms), so it goes at the fifth. The empty store's reply lists nothing: the replica
    // keeps its bucket until the new store's value for it arrives in a broadcast — as in a run,
    // where that value, made of the few adjustments since the restart, overwrites a high one.
    expect(events).toEqual(["disconnected", "connected", "full "]);
    expect(held.get(1)).toBe(0.6);
    expect(service.stats).toMatchObject({ offersReceived: 0, heldBucketsDropped: 1 });
  });

  test("before, down under 3.1 s: four failed attempts, the held adjustment survives", () => {
    const { events, held } = restarted("before", 3_000);
    expect(events.slice(0, 3)).toEqual(["disconnected", "connected", "full "]);
    // …and overwrites the replica's 0.6 with the new store's 0.1: what the old client lost.
    expect(events).toHaveLength(4);
    expect(held.get(1)).toBeCloseTo(0.1, 12);
  });

  test("the old client's attempts: the first five take 3.1 s", () => {
    expect(failedAttemptOffsets(3_100)).toEqual([100, 300, 700, 1_500]);
    expect(failedAttemptOffsets(3_101)).toEqual([100, 300, 700, 1_500, 3_100]);
    expect(failedAttemptOffsets(30_000)).toEqual([
      100, 300, 700, 1_500, 3_100, 6_300, 12_700, 22_700,
    ]);
  });
});
