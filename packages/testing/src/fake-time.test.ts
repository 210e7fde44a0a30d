import { expect, test } from "vitest";
import { FakeTime } from "./fake-time.js";

test("set() moves the clock either way and fires nothing; the next tick fires what is due", () => {
  const time = new FakeTime(0);
  const fired: number[] = [];
  time.timers.setInterval(() => fired.push(time.now()), 100);
  time.set(250);
  expect(fired).toEqual([]);
  time.set(50);
  expect(time.now()).toBe(50);
  time.tick(60);
  expect(fired).toEqual([100]);
  expect(time.now()).toBe(110);
});

test("a set() past due timers leaves them to the next tick, in time order", () => {
  const time = new FakeTime(0);
  const fired: string[] = [];
  time.timers.setTimeout(() => fired.push("b"), 20);
  time.timers.setTimeout(() => fired.push("a"), 10);
  time.set(500);
  expect(time.nextDueInMs).toBe(-490);
  time.tick(0);
  expect(fired).toEqual(["a", "b"]);
  expect(time.now()).toBe(500);
});
