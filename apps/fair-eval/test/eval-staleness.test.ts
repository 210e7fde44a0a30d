// docs/evaluation.md §2.7.3–4: with up to 50 ms of one-way delay and 250 ms broadcast batching, shared
// state stays within the bounds of the centralized tracker (N = 8, means over 3 trials), and
// the two broken protocols of §2.4 do not.
import { describe, expect, test } from "vitest";
import { verdict } from "../src/acceptance.js";
import type { Summary } from "../src/aggregate.js";
import type { Mode } from "../src/distributed-run.js";
import { run, summaryOf } from "./eval-helpers.js";

/** The summary of `trials` runs of one configuration, N = 8. */
function summary(
  scenario: string,
  mode: Mode,
  delayMs: number,
  batchMs: number,
  trials: number,
): Summary {
  const runs = Array.from({ length: trials }, (_, trial) =>
    run(scenario, mode, 8, { delayMs, batchMs, trial }),
  );
  return summaryOf(scenario, mode, runs, { delayMs, batchMs });
}

describe("bounded staleness, N = 8, 3 trials", { timeout: 180_000 }, () => {
  const references = new Map<string, Summary>();
  const reference = (scenario: string) => {
    let found = references.get(scenario);
    if (found === undefined) {
      found = summary(scenario, "centralized", 0, 0, 3);
      references.set(scenario, found);
    }
    return found;
  };

  test.each([
    ["api_noisy_neighbors", 5, 0],
    ["api_noisy_neighbors", 50, 0],
    ["api_noisy_neighbors", 5, 250],
    ["api_noisy_neighbors", 50, 250],
    ["batch_surge", 50, 250],
  ])(
    "%s, d = %i ms, B = %i ms: |divergence| ≤ 0.005, Jain ± 0.02, TTT50 ≤ 1.2 × (a), util ± 0.5 pp",
    (scenario, d, b) => {
      const shared = summary(scenario, "shared", d, b, 3);
      const judged = verdict(shared, reference(scenario));
      expect(Math.abs(shared.divergence ?? 1)).toBeLessThanOrEqual(0.005);
      expect(judged).toMatchObject({
        divergenceOk: true,
        jainOk: true,
        tttOk: true,
        utilizationOk: true,
        pass: true,
      });
    },
  );

  test.each([
    ["naive", -1],
    ["nodecay", 1],
  ] as const)(
    "the %s protocol fails the bounds at d = 50 ms, B = 250 ms (its divergence has the sign of its bug)",
    (mode, sign) => {
      for (const scenario of ["api_noisy_neighbors", "batch_surge"]) {
        const broken = summary(scenario, mode, 50, 250, 1);
        const judged = verdict(broken, reference(scenario));
        expect(judged.pass).toBe(false);
        expect(judged.divergenceOk).toBe(false);
        expect(Math.sign(broken.divergence ?? 0)).toBe(sign);
      }
    },
  );
});
