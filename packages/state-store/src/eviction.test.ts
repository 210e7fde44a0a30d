import { describe, expect, test, vi } from "vitest";
import { makeStore, seed0, t0, windowMs } from "../test/helpers.js";

describe("the eviction timer", () => {
  test("start schedules one interval that evicts seeds behind now − seedEvictionTtlMs", () => {
    const { store, clock, timers } = makeStore({ evictionIntervalMs: 5_000 });
    const next = seed0 + BigInt(windowMs);
    store.applyDelta(seed0, 0, 0, 0.5, t0);
    clock.nowMs = Number(next) + 1;
    store.applyDelta(next, 0, 0, 0.5, clock.nowMs);
    store.start();
    store.start();
    expect([...timers.intervals.values()].map((i) => i.ms)).toEqual([5_000]);
    expect(store.running).toBe(true);

    clock.nowMs = Number(seed0) + 3 * windowMs;
    timers.fire();
    expect(store.stats()).toMatchObject({ seeds: 2, evictedSeeds: 0 });
    clock.nowMs += 1;
    timers.fire();
    expect(store.stats()).toMatchObject({ seeds: 1, evictedSeeds: 1, evictedBuckets: 1 });
    expect(store.getSeed(next)).toHaveLength(1);
    store.stop();
  });

  test("stop clears the interval, and stopping twice is harmless", () => {
    const { store, timers } = makeStore();
    store.start();
    store.stop();
    store.stop();
    expect(timers.intervals.size).toBe(0);
    expect(store.running).toBe(false);
    store.start();
    expect(timers.intervals.size).toBe(1);
    store.stop();
    expect(timers.intervals.size).toBe(0);
  });

  test("aborting the signal stops the timer and the listener is removed on stop", () => {
    const { store, timers } = makeStore();
    const controller = new AbortController();
    const remove = vi.spyOn(controller.signal, "removeEventListener");
    store.start(controller.signal);
    expect(timers.intervals.size).toBe(1);
    controller.abort();
    expect(timers.intervals.size).toBe(0);
    expect(store.running).toBe(false);
    expect(remove).toHaveBeenCalledWith("abort", expect.any(Function));

    const other = new AbortController();
    const removeOther = vi.spyOn(other.signal, "removeEventListener");
    store.start(other.signal);
    store.stop();
    expect(removeOther).toHaveBeenCalledTimes(1);
  });

  test("an already aborted signal does not start the timer", () => {
    const { store, timers } = makeStore();
    store.start(AbortSignal.abort());
    expect(timers.intervals.size).toBe(0);
    expect(store.running).toBe(false);
  });

  test("the default interval is a tenth of the window", () => {
    const { store, timers } = makeStore({ windowMs: 60_000 });
    store.start();
    expect([...timers.intervals.values()][0]?.ms).toBe(6_000);
    store.stop();
  });
});
