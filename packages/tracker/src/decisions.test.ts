// The onDecision hook (issue 18, "Operator's view"): every registerRequest reports the decision it
// returns, with the probability its draw was compared to, in both modes; a throwing hook is
// reported through onError and changes nothing; without a hook nothing changes at all.
import { afterEach, describe, expect, test, vi } from "vitest";
import { distributedTracker, t0, windowMs } from "../test/distributed-helpers.js";
import { localTracker, report, statsOf } from "../test/helpers.js";
import { countingRandom } from "../test/sources.js";
import {
  bucketIndexesOf,
  type Decision,
  type FairnessTracker,
  FairnessTrackerError,
  type RegisterRequestResult,
  windowMurmurSeed,
} from "./index.js";

afterEach(() => {
  vi.restoreAllMocks();
});

/** A draw that cycles through `values`, so a run sees both throttled and admitted requests. */
function cycling(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length] as number;
}

/** Records every decision a hook sees. */
function recorder(): { decisions: Decision[]; onDecision: (decision: Decision) => void } {
  const decisions: Decision[] = [];
  return { decisions, onDecision: (decision) => decisions.push(decision) };
}

/**
 * Registers each id in turn, with failures reported for "bad" between rounds so its
 * probability climbs, and returns every result.
 */
function traffic(tracker: FairnessTracker, rounds = 12): RegisterRequestResult[] {
  const results: RegisterRequestResult[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const id of ["bad", "good", "other"]) results.push(tracker.registerRequest(id));
    report(tracker, "bad", "failure", 3);
  }
  return results;
}

/** What the hook should have seen for `results`: the call's own answer and stats. */
function expected(results: RegisterRequestResult[]): Pick<Decision, "throttled" | "probability">[] {
  return results.map((result) => ({
    throttled: result.shouldThrottle,
    probability: statsOf(result).finalProbability,
  }));
}

describe("onDecision in local mode", () => {
  test("sees every registerRequest, with the shouldThrottle returned and stats' finalProbability", () => {
    const { decisions, onDecision } = recorder();
    const { tracker } = localTracker(
      {},
      { random: cycling(0.1, 0.9, 0.6, 0.2, 0.35, 0.8), options: { onDecision } },
    );
    const results = traffic(tracker);
    expect(decisions).toHaveLength(results.length);
    expect(decisions.map(({ throttled, probability }) => ({ throttled, probability }))).toEqual(
      expected(results),
    );
    // The run has both kinds, and probabilities strictly between 0 and 1.
    expect(decisions.some((decision) => decision.throttled)).toBe(true);
    expect(decisions.some((decision) => !decision.throttled)).toBe(true);
    expect(decisions.some((d) => d.probability > 0 && d.probability < 1)).toBe(true);
    expect(new Set(decisions.map((decision) => decision.mode))).toEqual(new Set(["local"]));
    expect(new Set(decisions.map((decision) => decision.structureId))).toEqual(new Set([1]));
  });

  test("the probability is main's, not the secondary's, and structureId follows rotation", () => {
    const { decisions, onDecision } = recorder();
    // Main and secondary see the same outcomes but through different seeds; a final function
    // that tells them apart by call order shows which one the hook reports.
    let call = 0;
    const { tracker } = localTracker(
      { finalProbabilityFunction: () => (call++ % 2 === 0 ? 0.25 : 0.75) },
      { options: { onDecision } },
    );
    tracker.registerRequest("a");
    tracker.rotate();
    const result = tracker.registerRequest("a");
    expect(decisions.map(({ probability }) => probability)).toEqual([0.25, 0.25]);
    expect(statsOf(result).finalProbability).toBe(0.25);
    expect(decisions.map(({ structureId }) => structureId)).toEqual([1, 2]);
    expect(tracker.structureIds.main).toBe(2);
  });

  test("reports the probability with includeStats off too, where results carry no stats", () => {
    const random = cycling(0.1, 0.9, 0.6, 0.2, 0.35, 0.8);
    const twinRandom = cycling(0.1, 0.9, 0.6, 0.2, 0.35, 0.8);
    const { decisions, onDecision } = recorder();
    const { tracker } = localTracker({ includeStats: false }, { random, options: { onDecision } });
    const { tracker: twin } = localTracker({ includeStats: true }, { random: twinRandom });
    const results = traffic(tracker);
    expect(results.every((result) => result.stats === undefined)).toBe(true);
    expect(decisions.map(({ throttled, probability }) => ({ throttled, probability }))).toEqual(
      expected(traffic(twin)),
    );
  });

  test("each call gets a fresh object, so a hook may keep it", () => {
    const { decisions, onDecision } = recorder();
    const { tracker } = localTracker({}, { options: { onDecision } });
    report(tracker, "bad", "failure", 30);
    tracker.registerRequest("bad");
    tracker.registerRequest("good");
    expect(decisions[0]).not.toBe(decisions[1]);
    expect(decisions[0]).toEqual({
      throttled: true,
      probability: 1,
      mode: "local",
      structureId: 1,
    });
    expect(decisions[1]).toEqual({
      throttled: false,
      probability: 0,
      mode: "local",
      structureId: 1,
    });
  });

  test("is called after close() too, since the tracker still answers; not when registerRequest throws", () => {
    const { decisions, onDecision } = recorder();
    const { tracker } = localTracker({}, { options: { onDecision } });
    tracker.close();
    tracker.registerRequest("a");
    expect(decisions).toHaveLength(1);
    expect(() => tracker.registerRequest(42 as never)).toThrow(FairnessTrackerError);
    const failing = localTracker(
      {
        finalProbabilityFunction: () => {
          throw new Error("no final function today");
        },
      },
      { options: { onDecision } },
    ).tracker;
    expect(() => failing.registerRequest("a")).toThrow("no final function today");
    expect(decisions).toHaveLength(1);
  });

  test("reportOutcome, rotate and construction call no hook", () => {
    const onDecision = vi.fn();
    const { tracker } = localTracker({}, { options: { onDecision } });
    report(tracker, "a", "failure", 5);
    tracker.rotate();
    expect(onDecision).not.toHaveBeenCalled();
  });
});

describe("onDecision in distributed mode", () => {
  test("sees every registerRequest with the returned decision, stats' probability and the window seed", () => {
    const { decisions, onDecision } = recorder();
    const { tracker, time, link } = distributedTracker(
      { lambda: 0 },
      { random: cycling(0.1, 0.9, 0.6, 0.2, 0.35, 0.8), options: { onDecision } },
    );
    const results = traffic(tracker, 6);
    // Buckets the link delivers decide as local ones do; levels differ, so `min` picks level 1.
    const columns = bucketIndexesOf("good", tracker.config, windowMurmurSeed(t0, "checkout"));
    const probs = [0.7, 0.5, 0.6];
    link.deliver(
      BigInt(t0),
      columns.map((colId, rowId) => ({
        rowId,
        colId,
        prob: probs[rowId] as number,
        lastUpdateTimeMs: t0,
      })),
    );
    results.push(tracker.registerRequest("good"));
    expect(decisions.at(-1)?.probability).toBe(0.5);
    time.tick(windowMs);
    results.push(...traffic(tracker, 6));
    expect(decisions).toHaveLength(results.length);
    expect(decisions.map(({ throttled, probability }) => ({ throttled, probability }))).toEqual(
      expected(results),
    );
    expect(decisions.some((decision) => decision.throttled)).toBe(true);
    expect(decisions.some((decision) => !decision.throttled)).toBe(true);
    expect(new Set(decisions.map((decision) => decision.mode))).toEqual(new Set(["distributed"]));
    const seeds = decisions.map((decision) => decision.structureId);
    expect(seeds.slice(0, 19)).toEqual(Array(19).fill(t0));
    expect(seeds.slice(19)).toEqual(Array(18).fill(t0 + windowMs));
    expect(tracker.structureIds.main).toBe(t0 + windowMs);
  });

  test("a tracker without a link reports the same", () => {
    const { decisions, onDecision } = recorder();
    const { tracker } = distributedTracker(
      {},
      { link: null, random: cycling(0.2, 0.7), options: { onDecision } },
    );
    const results = traffic(tracker);
    expect(decisions.map(({ throttled, probability }) => ({ throttled, probability }))).toEqual(
      expected(results),
    );
  });
});

describe("a hook that throws", () => {
  test("leaves the decision standing and is reported through onError, once per throw", () => {
    const errors: FairnessTrackerError[] = [];
    const thrown = new Error("metrics registry is gone");
    let calls = 0;
    const options = {
      onDecision: () => {
        calls++;
        if (calls % 2 === 1) throw thrown;
      },
      onError: (error: FairnessTrackerError) => errors.push(error),
    };
    for (const make of [
      () => localTracker({}, { random: cycling(0.1, 0.9, 0.6, 0.2), options }).tracker,
      () => distributedTracker({}, { random: cycling(0.1, 0.6), options }).tracker,
    ]) {
      calls = 0;
      errors.length = 0;
      const results = traffic(make());
      expect(calls).toBe(results.length);
      expect(errors).toHaveLength(results.length / 2);
      expect(errors[0]?.code).toBe("decision_hook_failed");
      expect(errors[0]?.name).toBe("FairnessTrackerError");
      expect(errors[0]?.cause).toBe(thrown);
      expect(errors[0]?.message).toBe(
        "onDecision threw; the decision stands: metrics registry is gone",
      );
    }
  });

  test("returns what a tracker without the hook returns, in both modes", () => {
    const throwing = {
      onDecision: () => {
        throw new Error("boom");
      },
      onError: () => {},
    };
    const local = localTracker({}, { random: cycling(0.1, 0.9, 0.6, 0.2), options: throwing });
    const localTwin = localTracker({}, { random: cycling(0.1, 0.9, 0.6, 0.2) });
    expect(traffic(local.tracker)).toEqual(traffic(localTwin.tracker));
    const distributed = distributedTracker({}, { random: cycling(0.1, 0.6), options: throwing });
    const distributedTwin = distributedTracker({}, { random: cycling(0.1, 0.6) });
    expect(traffic(distributed.tracker)).toEqual(traffic(distributedTwin.tracker));
  });

  test("does not reach the caller even when onError throws as well", () => {
    const { tracker } = localTracker(
      {},
      {
        options: {
          onDecision: () => {
            throw new Error("hook");
          },
          onError: () => {
            throw new Error("onError too");
          },
        },
      },
    );
    expect(tracker.registerRequest("a")).toEqual(
      expect.objectContaining({ shouldThrottle: false }),
    );
  });

  test("by default becomes a process warning", () => {
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    const { tracker } = localTracker(
      {},
      {
        options: {
          onDecision: () => {
            throw new Error("hook");
          },
        },
      },
    );
    tracker.registerRequest("a");
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]?.[0]).toMatchObject({ code: "decision_hook_failed" });
  });
});

describe("without a hook", () => {
  test("decisions, stats and draws are what they are with one, in both modes", () => {
    const { onDecision } = recorder();
    for (const withStats of [true, false]) {
      const plain = countingRandom(0.3);
      const hooked = countingRandom(0.3);
      const a = localTracker({ includeStats: withStats }, { random: plain.random });
      const b = localTracker(
        { includeStats: withStats },
        { random: hooked.random, options: { onDecision } },
      );
      expect(traffic(a.tracker)).toEqual(traffic(b.tracker));
      expect(plain.calls).toBe(hooked.calls);
      const c = distributedTracker({ includeStats: withStats }, { random: plain.random });
      const d = distributedTracker(
        { includeStats: withStats },
        { random: hooked.random, options: { onDecision } },
      );
      expect(traffic(c.tracker)).toEqual(traffic(d.tracker));
      expect(plain.calls).toBe(hooked.calls);
    }
  });

  test("a result without stats is still one of two shared, frozen objects", () => {
    const { tracker } = localTracker({ includeStats: false });
    const first = tracker.registerRequest("a");
    expect(tracker.registerRequest("b")).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
  });
});
