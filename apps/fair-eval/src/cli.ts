// `pnpm eval` flags. Every list flag takes comma-separated values.
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { type Mode, modes, type Routing } from "./distributed-run.js";
import { scenarioNamed, scenarios } from "./scenarios.js";

/** What to run and how to print it. */
export interface EvalOptions {
  /**
   * Which parts: the single-instance Go harness (§1), the distributed comparison (§2), the fault
   * scenarios (§2.9), or all three.
   */
  readonly parts: ReadonlySet<"single" | "distributed" | "faults">;
  readonly singleScenarios: readonly string[];
  readonly distributedScenarios: readonly string[];
  readonly modes: readonly Mode[];
  readonly instances: readonly number[];
  /** Instance counts for the negative controls (`naive`, `nodecay`). */
  readonly controlInstances: readonly number[];
  /** (delay, batch) pairs for the modes with a State Service. */
  readonly sync: readonly { readonly delayMs: number; readonly batchMs: number }[];
  /**
   * The store replica's coalescing interval of the extra `shared` variant, run beside every
   * `shared` configuration (`storeFlushMs`); 0: no such variant.
   */
  readonly storeFlushMs: number;
  readonly trials: number;
  readonly routing: Routing;
  readonly lambda: number | undefined;
  readonly rotationMs: number | undefined;
  readonly json: boolean;
  readonly svg: string | undefined;
  readonly jobs: number;
  readonly quiet: boolean;
  readonly sweep: boolean;
}

export const usage = `pnpm eval [-- options]

  --part single|distributed|faults|all
                                  which evaluation (default all: all three). faults: a State
                                  Service restart (with and without a snapshot), a 30 s outage
                                  and a store that loses its data, before and after learning
                                  mode, on api_noisy_neighbors at N = 4, d = 50 ms, B = 250 ms
                                  (only --trials, --lambda, --json and --jobs apply to it)
  --scenario NAMES                scenarios (default: all three for single; api_noisy_neighbors,batch_surge for distributed)
  --modes MODES                   nofair,centralized,independent,shared,naive,nodecay (default all)
  --instances LIST                N values (default 1,2,4,8,16)
  --controls-at LIST|all          N values for naive and nodecay (default 8)
  --delay LIST --batch LIST       one-way delay d and broadcast interval B in ms, every pair (default pairs 0:0 and 50:250)
  --sync d:B,...                  explicit (d, B) pairs instead
  --store-flush MS                also run every shared configuration with the store replica
                                  coalescing deltas per bucket and applying them every MS ms
                                  (default 5; 0: no such variant)
  --trials N                      RNG trials per configuration (default 3)
  --routing rr|random|affinity    how requests reach instances (default rr)
  --lambda X                      override λ (default 0.01)
  --rotation-ms MS                window length (default: the scenario's duration + 1 min, no rotation)
  --sweep                         also run the Go harness's 1080-variant api sweep (slow)
  --json                          one JSON object per run on stdout instead of tables
  --svg FILE                      draw entitlement Jain and TTT50 against N for (a), (b), (c)
  --jobs N                        worker threads (default: available cores)
  --quiet                         no progress on stderr`;

/** Parses `argv` (without node and the script). */
export function parseEvalArgs(argv: readonly string[]): EvalOptions {
  const { values } = parseArgs({
    args: argv.filter((arg) => arg !== "--"),
    options: {
      part: { type: "string", default: "all" },
      scenario: { type: "string" },
      modes: { type: "string", default: modes.join(",") },
      instances: { type: "string", default: "1,2,4,8,16" },
      "controls-at": { type: "string", default: "8" },
      delay: { type: "string" },
      batch: { type: "string" },
      sync: { type: "string" },
      "store-flush": { type: "string", default: "5" },
      trials: { type: "string", default: "3" },
      routing: { type: "string", default: "rr" },
      lambda: { type: "string" },
      "rotation-ms": { type: "string" },
      sweep: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      svg: { type: "string" },
      jobs: { type: "string", default: String(availableParallelism()) },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const part = values.part;
  if (part !== "single" && part !== "distributed" && part !== "faults" && part !== "all")
    fail(`--part ${part}`);
  const named = values.scenario?.split(",");
  for (const name of named ?? []) scenarioNamed(name);
  const modeList = list(values.modes).map((mode) => {
    if (!(modes as readonly string[]).includes(mode)) fail(`unknown mode ${mode}`);
    return mode as Mode;
  });
  const instances = numbers(values.instances, 1);
  const routing = values.routing;
  if (routing !== "rr" && routing !== "random" && routing !== "affinity")
    fail(`--routing ${routing}`);
  return {
    parts: new Set(part === "all" ? ["single", "distributed", "faults"] : [part]),
    singleScenarios: named ?? scenarios.map((s) => s.name),
    distributedScenarios: named ?? ["api_noisy_neighbors", "batch_surge"],
    modes: modeList,
    instances,
    controlInstances:
      values["controls-at"] === "all" ? instances : numbers(values["controls-at"], 1),
    sync: syncPairs(values.sync, values.delay, values.batch),
    storeFlushMs: numbers(values["store-flush"], 0)[0] ?? 0,
    trials: numbers(values.trials, 1)[0] ?? 3,
    routing,
    lambda: values.lambda === undefined ? undefined : numbers(values.lambda, 0)[0],
    rotationMs:
      values["rotation-ms"] === undefined ? undefined : numbers(values["rotation-ms"], 1)[0],
    json: values.json,
    svg: values.svg,
    jobs: numbers(values.jobs, 1)[0] ?? 1,
    quiet: values.quiet,
    sweep: values.sweep,
  };
}

function syncPairs(sync?: string, delay?: string, batch?: string): EvalOptions["sync"] {
  if (sync !== undefined) {
    return list(sync).map((pair) => {
      const [d, b] = pair.split(":").map(Number);
      if (!(d !== undefined && b !== undefined && d >= 0 && b >= 0)) fail(`--sync ${pair}`);
      return { delayMs: d, batchMs: b };
    });
  }
  if (delay === undefined && batch === undefined) {
    return [
      { delayMs: 0, batchMs: 0 },
      { delayMs: 50, batchMs: 250 },
    ];
  }
  const delays = numbers(delay ?? "0", 0);
  const batches = numbers(batch ?? "0", 0);
  return delays.flatMap((delayMs) => batches.map((batchMs) => ({ delayMs, batchMs })));
}

function list(value: string): string[] {
  return value.split(",").filter((item) => item !== "");
}

function numbers(value: string, min: number): number[] {
  return list(value).map((item) => {
    const n = Number(item);
    if (!Number.isFinite(n) || n < min) fail(`${item} is not a number >= ${min}`);
    return n;
  });
}

function fail(problem: string): never {
  console.error(`eval: ${problem}\n\n${usage}`);
  process.exit(2);
}
