// The three workloads of the Go harness (docs/evaluation.md §1.1), with what the distributed metrics need
// to know about them: which classes are the noisy ones and when "after contention" starts.

/** One class of identical clients: `clients` Poisson sources of `ratePerSecond` over [startMs, endMs). */
export interface WorkloadClass {
  readonly name: string;
  readonly clients: number;
  readonly ratePerSecond: number;
  /** When the class starts sending; default 0. */
  readonly startMs?: number;
  /** When it stops; default the scenario's duration. */
  readonly endMs?: number;
  /** Whether the class is a noisy one (docs/evaluation.md §2.2 badShare, TTT50): aggressive, batch. */
  readonly bad: boolean;
}

/** One scenario: a shared token bucket and the classes contending for it. */
export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly durationMs: number;
  readonly capacityPerSecond: number;
  readonly burstTokens: number;
  readonly classes: readonly WorkloadClass[];
  /** Its index in the Go harness; the seed of its RNGs is 1000 + index. */
  readonly index: number;
  /** Start of the post-contention period for the good-flow throttle rate, if it has one. */
  readonly postPeriodFromMs?: number;
}

export const scenarios: readonly Scenario[] = [
  {
    name: "api_noisy_neighbors",
    description:
      "180 steady API clients at 0.5 rps plus 20 aggressive clients at 10 rps contend for 100 rps",
    durationMs: 5 * 60_000,
    capacityPerSecond: 100,
    burstTokens: 100,
    classes: [
      { name: "steady", clients: 180, ratePerSecond: 0.5, bad: false },
      { name: "aggressive", clients: 20, ratePerSecond: 10, bad: true },
    ],
    index: 0,
    postPeriodFromMs: 60_000,
  },
  {
    name: "flash_crowd",
    description: "500 equivalent clients arrive as a Poisson flash crowd against 300 rps",
    durationMs: 2 * 60_000,
    capacityPerSecond: 300,
    burstTokens: 300,
    classes: [{ name: "shopper", clients: 500, ratePerSecond: 1, bad: false }],
    index: 1,
  },
  {
    name: "batch_surge",
    description:
      "100 interactive clients run steadily while 10 batch clients surge for the middle 3 minutes",
    durationMs: 6 * 60_000,
    capacityPerSecond: 120,
    burstTokens: 120,
    classes: [
      { name: "interactive", clients: 100, ratePerSecond: 1, bad: false },
      {
        name: "batch",
        clients: 10,
        ratePerSecond: 30,
        startMs: 90_000,
        endMs: 270_000,
        bad: true,
      },
    ],
    index: 2,
    postPeriodFromMs: 270_000,
  },
];

/** The scenario called `name`, or an error listing the names there are. */
export function scenarioNamed(name: string): Scenario {
  const found = scenarios.find((scenario) => scenario.name === name);
  if (found === undefined) {
    throw new Error(
      `unknown scenario ${JSON.stringify(name)}; one of ${scenarios.map((s) => s.name).join(", ")}`,
    );
  }
  return found;
}

/** The seed of the scenario's workload and FAIR RNGs in the Go harness. */
export function scenarioSeed(scenario: Scenario): number {
  return 1000 + scenario.index;
}
