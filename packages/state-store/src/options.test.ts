import { describe, expect, test } from "vitest";
import {
  defaultStoreOptions,
  InMemoryStore,
  type InMemoryStoreOptions,
  StoreError,
} from "./index.js";

describe("options", () => {
  test("defaults follow docs/design.md §3–4", () => {
    expect(new InMemoryStore().options).toMatchObject({
      windowMs: 300_000,
      seedEvictionTtlMs: 900_000,
      decayRatePerSecond: 0.01,
      maxRows: 256,
      maxCols: 2 ** 24,
      maxFutureWindows: 2,
      maxSeedsPerNamespace: 64,
      maxBucketsPerSeed: 4_194_304,
      maxClockSkewMs: 30_000,
      evictionIntervalMs: 30_000,
    });
    expect(Object.isFrozen(defaultStoreOptions)).toBe(true);
  });

  test("window-relative defaults scale with windowMs", () => {
    expect(new InMemoryStore({ windowMs: 60_000 }).options).toMatchObject({
      seedEvictionTtlMs: 180_000,
      maxClockSkewMs: 6_000,
      evictionIntervalMs: 6_000,
    });
  });

  test("an explicit undefined from JavaScript means the default", () => {
    const options = { maxRows: undefined } as unknown as Partial<InMemoryStoreOptions>;
    expect(new InMemoryStore(options).options.maxRows).toBe(256);
  });

  test.each([
    ["windowMs", { windowMs: 0 }],
    ["windowMs", { windowMs: 1.5 }],
    ["seedEvictionTtlMs", { seedEvictionTtlMs: 1_000 }],
    ["decayRatePerSecond", { decayRatePerSecond: -0.1 }],
    ["decayRatePerSecond", { decayRatePerSecond: Number.NaN }],
    ["maxRows", { maxRows: 0 }],
    ["maxCols", { maxCols: 2 ** 33 }],
    ["maxCols", { maxRows: 2 ** 30, maxCols: 2 ** 30 }],
    ["maxFutureWindows", { maxFutureWindows: -1 }],
    ["maxSeedsPerNamespace", { maxSeedsPerNamespace: 0 }],
    ["maxBucketsPerSeed", { maxBucketsPerSeed: 2.5 }],
    ["maxClockSkewMs", { maxClockSkewMs: Number.POSITIVE_INFINITY }],
    ["evictionIntervalMs", { evictionIntervalMs: 0 }],
    ["now", { now: 5 }],
    ["timers", { timers: { setInterval: () => 1 } }],
  ])("an unusable %s is refused", (field, options) => {
    let caught: unknown;
    try {
      new InMemoryStore(options as unknown as Partial<InMemoryStoreOptions>);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(StoreError);
    expect(caught).toMatchObject({ code: "invalid_option", field });
  });

  test("a clock that returns something other than a finite number is refused when read", () => {
    // The store reads it once when made, to date its epoch.
    expect(() => new InMemoryStore({ now: () => Number.NaN })).toThrow(/now: returned NaN/);
    let reading = 0;
    const store = new InMemoryStore({
      now: () => (reading++ === 0 ? 0 : Number.POSITIVE_INFINITY),
    });
    expect(() => store.applyDelta(300_000n, 0, 0, 0.1, 0)).toThrow(/now: returned Infinity/);
  });
});
