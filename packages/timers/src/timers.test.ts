import { expect, test } from "vitest";
import { systemTimers } from "./index.js";

test("the platform's timers fire, and a cleared one does not", async () => {
  const fired: string[] = [];
  const cleared = systemTimers.setTimeout(() => fired.push("cleared"), 0);
  systemTimers.clearTimeout(cleared);
  await new Promise<void>((resolve) => systemTimers.setTimeout(resolve, 0));
  let ticks = 0;
  await new Promise<void>((resolve) => {
    const handle = systemTimers.setInterval(() => {
      if (++ticks === 2) {
        systemTimers.clearInterval(handle);
        resolve();
      }
    }, 1);
  });
  expect(fired).toEqual([]);
  expect(ticks).toBe(2);
});

test("the platform's timers never keep the process alive on their own", () => {
  const timeout = systemTimers.setTimeout(() => {}, 60_000) as NodeJS.Timeout;
  const interval = systemTimers.setInterval(() => {}, 60_000) as NodeJS.Timeout;
  expect(timeout.hasRef()).toBe(false);
  expect(interval.hasRef()).toBe(false);
  systemTimers.clearTimeout(timeout);
  systemTimers.clearInterval(interval);
});
