import { expect, test } from "vitest";
import { BucketView, key } from "../src/bucket-view.js";

test("holds the latest state per bucket, dense or not, and lists each once", () => {
  const view = new BucketView(3, 10);
  view.set(0, 0, 0.1, 1);
  view.set(2, 9, 0.2, 2);
  view.set(2, 9, 0.3, 3); // the later value wins
  view.set(255, 4, 0.4, 4); // a probe row: outside the dense range
  view.set(1, 10, 0.5, 5); // a column past the dense range
  expect(view.get(key(2, 9))).toEqual({ prob: 0.3, timeMs: 3 });
  expect(view.get(key(255, 4))).toEqual({ prob: 0.4, timeMs: 4 });
  expect(view.get(key(1, 10))).toEqual({ prob: 0.5, timeMs: 5 });
  expect(view.get(key(1, 1))).toBeUndefined();
  expect(new Map(view)).toEqual(
    new Map([
      [key(0, 0), { prob: 0.1, timeMs: 1 }],
      [key(2, 9), { prob: 0.3, timeMs: 3 }],
      [key(255, 4), { prob: 0.4, timeMs: 4 }],
      [key(1, 10), { prob: 0.5, timeMs: 5 }],
    ]),
  );
});
