// docs/fair-spec.md §3: Go's BaseError formatting and unwrapping, carried by the one error class.
import { expect, test } from "vitest";
import { FairnessTrackerError } from "./index.js";

test("12: a wrapping error reads 'msg: wrapped' and unwraps to the original", () => {
  const original = new Error("original error");
  const error = new FairnessTrackerError("invalid_argument", "data error occurred", original);
  expect(error.message).toBe("data error occurred: original error");
  expect(error.cause).toBe(original);
  expect(error.code).toBe("invalid_argument");
  expect(error.name).toBe("FairnessTrackerError");
  expect(error).toBeInstanceOf(Error);
});

test("12: an error that wraps nothing reads 'msg' and has no cause", () => {
  const error = new FairnessTrackerError("invalid_config", "Configuration cannot be nil");
  expect(error.message).toBe("Configuration cannot be nil");
  expect("cause" in error).toBe(false);
});

test("a wrapped non-Error value is shown as a string", () => {
  expect(new FairnessTrackerError("invalid_option", "bad", 42).message).toBe("bad: 42");
});
