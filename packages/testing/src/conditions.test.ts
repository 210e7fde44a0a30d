import { expect, test } from "vitest";
import { Conditions } from "./conditions.js";

test("until() resolves at the first notify() after its condition holds, and at once if it already does", async () => {
  const conditions = new Conditions();
  let value = 0;
  const resolved: string[] = [];
  const atTwo = conditions.until(() => value >= 2).then(() => resolved.push("two"));
  const atOne = conditions.until(() => value >= 1).then(() => resolved.push("one"));
  value = 2;
  expect(conditions.waiting).toBe(2);
  conditions.notify();
  expect(conditions.waiting).toBe(0);
  await Promise.all([atOne, atTwo]);
  expect(resolved.sort()).toEqual(["one", "two"]);
  await conditions.until(() => true);
  expect(conditions.waiting).toBe(0);
});

test("a condition that does not hold keeps waiting through notify()", () => {
  const conditions = new Conditions();
  void conditions.until(() => false);
  conditions.notify();
  expect(conditions.waiting).toBe(1);
});
