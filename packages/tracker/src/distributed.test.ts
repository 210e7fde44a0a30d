// Distributed mode (docs/design.md §3 "Tracker in distributed mode", docs/evaluation.md §2.5–2.6) against a
// hand-driven link: windows, seeds, pure reads, raw deltas for both windows, overwrites.
import { describe, expect, test } from "vitest";
import { distributedTracker, t0, windowMs } from "../test/distributed-helpers.js";
import { FakeLink } from "../test/fake-link.js";
import { bucketsOf, localTracker, report, statsOf } from "../test/helpers.js";
import { countingRandom } from "../test/sources.js";
import { FairnessTrackerError, windowMurmurSeed } from "./index.js";

const s0 = BigInt(t0);
const s1 = BigInt(t0 + windowMs);
const s2 = BigInt(t0 + 2 * windowMs);

describe("windows and seeds", () => {
  test("main is the window holding now, secondary the next; seeds are window starts in Unix ms", () => {
    const { tracker, link } = distributedTracker({}, { offsetMs: 12_345 });
    expect(tracker.mode).toBe("distributed");
    expect(tracker.structureIds).toEqual({ main: t0, secondary: t0 + windowMs });
    expect(link.requestedSeeds).toEqual([s0, s1]);
  });

  test("the murmur seed is derived from the window seed and the tracker id", () => {
    expect(windowMurmurSeed(t0, "checkout")).toBe(4088166870);
    expect(windowMurmurSeed(t0, "checkout")).toBe(windowMurmurSeed(t0, "checkout"));
    expect(windowMurmurSeed(t0, "checkout")).not.toBe(windowMurmurSeed(t0 + windowMs, "checkout"));
    expect(windowMurmurSeed(t0, "checkout")).not.toBe(windowMurmurSeed(t0, "search"));
    expect(() => windowMurmurSeed(-1, "x")).toThrow(FairnessTrackerError);
  });

  test("every instance of a tracker maps a client to the same buckets; another tracker does not", () => {
    const a = distributedTracker({ m: 65_521 }, { offsetMs: 5 }).tracker;
    const b = distributedTracker({ m: 65_521 }, { offsetMs: 59_000 }).tracker;
    const other = distributedTracker({ m: 65_521 }, { trackerId: "search" }).tracker;
    const local = localTracker(
      { m: 65_521 },
      { seeds: [windowMurmurSeed(t0, "checkout"), 0] },
    ).tracker;
    const columns = (t: typeof a) => statsOf(t.registerRequest("client-7")).bucketIndexes;
    expect(columns(a)).toEqual(columns(b));
    expect(columns(a)).toEqual(columns(local));
    expect(columns(a)).not.toEqual(columns(other));
  });

  test("at a window boundary the secondary, written all window, becomes main and S_{w+2} is requested", () => {
    const { tracker, time, link } = distributedTracker();
    report(tracker, "bad", "failure", 30);
    time.tick(windowMs);
    expect(tracker.registerRequest("bad").shouldThrottle).toBe(true);
    expect(tracker.structureIds).toEqual({ main: t0 + windowMs, secondary: t0 + 2 * windowMs });
    expect(link.requestedSeeds).toEqual([s0, s1, s2]);
    // Written only in S_{w+1} and S_{w+2} from here; two windows on it is forgotten.
    time.tick(2 * windowMs);
    expect(tracker.registerRequest("bad").shouldThrottle).toBe(false);
  });

  test("after more than a window idle both windows start afresh and both are requested", () => {
    const { tracker, time, link } = distributedTracker();
    report(tracker, "bad", "failure", 30);
    time.tick(5 * windowMs);
    expect(tracker.registerRequest("bad").shouldThrottle).toBe(false);
    expect(tracker.structureIds.main).toBe(t0 + 5 * windowMs);
    expect(link.requestedSeeds.slice(2)).toEqual([
      BigInt(t0 + 5 * windowMs),
      BigInt(t0 + 6 * windowMs),
    ]);
  });

  test("a clock that steps back across a boundary keeps the current window", () => {
    const { tracker, time } = distributedTracker({}, { offsetMs: windowMs + 10 });
    time.set(t0 + windowMs - 5_000);
    tracker.registerRequest("a");
    expect(tracker.structureIds.main).toBe(t0 + windowMs);
  });

  test("rotate() is for local mode; distributed windows follow the clock", () => {
    const { tracker } = distributedTracker();
    expect(() => tracker.rotate()).toThrow(FairnessTrackerError);
    try {
      tracker.rotate();
    } catch (error) {
      expect((error as FairnessTrackerError).code).toBe("invalid_state");
    }
  });

  test("the window length must be a whole number of ms", () => {
    expect(() => distributedTracker({ rotationFrequencyMs: 1000.5 })).toThrow("whole number of ms");
  });
});

describe("decisions are pure reads", () => {
  test("a register decays on read, changes nothing and sends nothing", () => {
    const { tracker, time, link } = distributedTracker({ lambda: 0.5 });
    tracker.reportOutcome("a", "failure");
    const sent = link.sent.length;
    time.tick(1000);
    const first = bucketsOf(tracker, "a");
    time.tick(1000);
    const second = bucketsOf(tracker, "a");
    expect(first).toEqual(Array(3).fill(0.04 * Math.exp(-0.0005 * 1000)));
    // Read from the write at t0, not from the previous read.
    expect(second).toEqual(Array(3).fill(0.04 * Math.exp(-0.0005 * 2000)));
    expect(link.sent.length).toBe(sent);
  });

  test("one draw per register, none per report", () => {
    const draws = countingRandom();
    const { tracker } = distributedTracker({}, { random: draws.random });
    tracker.registerRequest("a");
    tracker.reportOutcome("a", "failure");
    tracker.registerRequest("a");
    expect(draws.calls).toBe(2);
  });
});

describe("outcomes", () => {
  test("apply locally at once and go out as raw +Pi / −Pd for both windows: 2·L deltas", () => {
    const { tracker, time, link } = distributedTracker();
    time.tick(1234);
    const { bucketIndexes } = statsOf(tracker.registerRequest("a"));
    tracker.reportOutcome("a", "failure");
    tracker.reportOutcome("a", "success");
    expect(bucketsOf(tracker, "a")).toEqual(Array(3).fill(0.04 - 4e-5));
    expect(link.sent.map((update) => update.seed)).toEqual([s0, s1, s0, s1]);
    const at = t0 + 1234;
    expect(link.sent[0]?.deltas).toEqual(
      bucketIndexes.map((colId, rowId) => ({
        rowId,
        colId,
        deltaProb: 0.04,
        lastUpdateTimeMs: at,
      })),
    );
    expect(link.sent[2]?.deltas.map((delta) => delta.deltaProb)).toEqual([-4e-5, -4e-5, -4e-5]);
    expect(link.sent[1]?.deltas).toHaveLength(3);
    expect(tracker.syncStats()).toMatchObject({ updatesSent: 4, deltasSent: 12 });
  });

  test("a saturated bucket still sends the raw adjustment, never the clamped difference", () => {
    const { tracker, link } = distributedTracker();
    report(tracker, "a", "failure", 40);
    expect(link.sent.at(-1)?.deltas.map((delta) => delta.deltaProb)).toEqual([0.04, 0.04, 0.04]);
  });
});

describe("what the link delivers", () => {
  test("overwrites local buckets; the value decays from its own timestamp", () => {
    const { tracker, time, link } = distributedTracker({ lambda: 1 });
    const [colId] = statsOf(tracker.registerRequest("a")).bucketIndexes;
    time.tick(3000);
    link.deliver(s0, [
      { rowId: 0, colId: colId as number, prob: 0.8, lastUpdateTimeMs: t0 + 1000 },
    ]);
    expect(bucketsOf(tracker, "a")[0]).toBe(0.8 * Math.exp(-0.001 * 2000));
    expect(tracker.syncStats().bucketsApplied).toBe(1);
  });

  test("a timestamp ahead of the local clock is no decay, never a wipe; a late outcome decays to it", () => {
    const { tracker, link } = distributedTracker({ lambda: 1 });
    const [colId] = statsOf(tracker.registerRequest("a")).bucketIndexes;
    link.deliver(s0, [
      { rowId: 0, colId: colId as number, prob: 0.5, lastUpdateTimeMs: t0 + 2000 },
    ]);
    expect(bucketsOf(tracker, "a")[0]).toBe(0.5);
    tracker.reportOutcome("a", "failure");
    expect(bucketsOf(tracker, "a")[0]).toBe(0.5 + 0.04 * Math.exp(-0.001 * 2000));
  });

  test("buckets of another window, outside L × M, or with a bad value are ignored and counted", () => {
    const { tracker, link } = distributedTracker({ m: 10 });
    link.deliver(s2, [{ rowId: 0, colId: 1, prob: 1, lastUpdateTimeMs: t0 }]);
    link.deliver(s0, [
      { rowId: 3, colId: 1, prob: 1, lastUpdateTimeMs: t0 },
      { rowId: 0, colId: 10, prob: 1, lastUpdateTimeMs: t0 },
      { rowId: 0, colId: 1, prob: Number.NaN, lastUpdateTimeMs: t0 },
    ]);
    expect(tracker.syncStats()).toMatchObject({ bucketsApplied: 0, bucketsIgnored: 4 });
  });
});

describe("losing the link", () => {
  test("a rejected or throwing full-state request is swallowed and counted", async () => {
    const { tracker, time, link } = distributedTracker();
    for (const request of link.requests) request.reject(new Error("unavailable"));
    await Promise.resolve();
    await Promise.resolve();
    expect(tracker.syncStats()).toMatchObject({ fullStateRequests: 2, fullStateFailures: 2 });
    link.requestError = new Error("broken");
    time.tick(windowMs);
    expect(tracker.registerRequest("a").shouldThrottle).toBe(false);
    expect(tracker.syncStats()).toMatchObject({ fullStateRequests: 3, fullStateFailures: 3 });
  });

  test("a throwing send is swallowed and counted; decisions go on from local state", () => {
    const { tracker, link } = distributedTracker();
    link.sendError = new Error("gone");
    link.setStatus("disconnected");
    report(tracker, "bad", "failure", 30);
    expect(tracker.registerRequest("bad").shouldThrottle).toBe(true);
    expect(tracker.syncStats()).toMatchObject({ sendErrors: 60, updatesSent: 0 });
  });

  test("a reconnect asks the link for nothing more; the full state the link fetches again is applied", () => {
    const link = new FakeLink();
    link.status = "connecting";
    const { tracker } = distributedTracker({}, { link });
    link.setStatus("connected");
    link.setStatus("disconnected");
    link.setStatus("connected");
    expect(link.requestedSeeds).toEqual([s0, s1]);
    expect(tracker.syncStats().fullStateRequests).toBe(2);
    // The StateLink contract: the link repeats its requests after a reconnect and delivers the replies.
    const [colId] = statsOf(tracker.registerRequest("a")).bucketIndexes;
    link.deliver(s0, [{ rowId: 0, colId: colId as number, prob: 0.7, lastUpdateTimeMs: t0 }], true);
    expect(bucketsOf(tracker, "a")[0]).toBe(0.7);
  });

  test("without a link the tracker runs distributed semantics on its own state", () => {
    const { tracker } = distributedTracker({}, { link: null });
    report(tracker, "bad", "failure", 30);
    expect(tracker.registerRequest("bad").shouldThrottle).toBe(true);
    expect(tracker.syncStats().updatesSent).toBe(0);
  });

  test("close() leaves the link: nothing more is sent or applied; idempotent; still answers", () => {
    const { tracker, link } = distributedTracker();
    tracker.close();
    tracker.close();
    expect(link.listeners.size).toBe(0);
    report(tracker, "bad", "failure", 30);
    expect(link.sent).toHaveLength(0);
    expect(tracker.registerRequest("bad").shouldThrottle).toBe(true);
  });
});

describe("a new state epoch (learning mode)", () => {
  test("offers every non-default bucket of both windows, each as of its own time, undecayed", () => {
    const { tracker, time, link } = distributedTracker({ lambda: 1 });
    const { bucketIndexes } = statsOf(tracker.registerRequest("bad"));
    report(tracker, "bad", "failure", 5);
    const at = time.now();
    const held = bucketsOf(tracker, "bad");
    time.tick(2000);
    link.changeEpoch("e2", "e1");
    expect(link.offers.map((offer) => offer.seed)).toEqual([s0, s1]);
    const expected = bucketIndexes.map((colId, rowId) => ({
      rowId,
      colId,
      prob: held[rowId],
      lastUpdateTimeMs: at,
    }));
    expect(link.offers[0]?.buckets).toEqual(expected);
    // The next window hashes the client to other columns, with the same values.
    expect(
      link.offers[1]?.buckets.map(({ prob, lastUpdateTimeMs }) => [prob, lastUpdateTimeMs]),
    ).toEqual(held.map((prob) => [prob, at]));
    expect(tracker.syncStats()).toMatchObject({ epochChanges: 1, bucketsOffered: 6 });
  });

  test("offers nothing for windows that hold nothing, and nothing after close()", () => {
    const { tracker, link } = distributedTracker();
    link.changeEpoch("e2", "e1");
    expect(link.offers).toEqual([]);
    expect(tracker.syncStats()).toMatchObject({ epochChanges: 1, bucketsOffered: 0 });
    report(tracker, "bad", "failure", 3);
    tracker.close();
    link.changeEpoch("e3", "e2");
    expect(link.offers).toEqual([]);
  });

  test("a link without offerState is refused, naming what it lacks", () => {
    const link = new FakeLink();
    const partial = {
      sendDeltaUpdate: link.sendDeltaUpdate.bind(link),
      requestFullState: link.requestFullState.bind(link),
      subscribe: link.subscribe.bind(link),
      status: link.status,
    };
    expect(() => distributedTracker({}, { link: partial as unknown as FakeLink })).toThrow(
      /distributed\.link must implement StateLink: .*offerState/,
    );
  });
});
