#!/usr/bin/env node
// fair-state: an operator's questions to a running State Service, answered
// from the same Sync stream FAIR instances use (read-only):
//
//   fair-state explain --tracker-id checkout --client-id user-42   why is this client throttled?
//   fair-state top [--count 20]                                     the hottest buckets of a seed
//   fair-state watch [--tracker-id … --client-id …]                 changes as they arrive
//
// `pnpm fair-state -- <command> …` from the repository, `fair-state` in the
// server image. Run `fair-state --help` for every flag.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ConnectError } from "@connectrpc/connect";
import {
  bucketKey,
  defaultFairnessTrackerConfig,
  type Explanation,
  explainClient,
  type FinalProbabilityFunction,
  hottestBuckets,
  meanFinalProbability,
  minFinalProbability,
  type StoredBucket,
  type TrackerShape,
  windowSeedOf,
} from "@fair/tracker";
import parseDuration from "parse-duration";
import { type ServerRules, StateReader } from "./state-reader.js";

/** Exit codes: 0 done, 1 the server could not be read, 2 bad usage. */
const EXIT_UNREACHABLE = 1;
const EXIT_USAGE = 2;

const defaults = defaultFairnessTrackerConfig();

const help = `Usage: fair-state <explain|top|watch> [flags]

Reads a running FAIR State Service (read-only) over its Sync stream.

Commands:
  explain   a client's bucket on each level in the current window and the next,
            each decayed to now, and the throttle probability they give
  top       the hottest buckets of the current window (decayed to now)
  watch     bucket changes as the server broadcasts them, until Ctrl-C; with
            --tracker-id and --client-id, that client's explanation on each change

Connection:
  --target <host:port|url>  the server's gRPC address (default 127.0.0.1:50051);
                            https://host:port for TLS
  --namespace <name>        the fair-state-namespace to read (default: the default namespace)
  --token-file <path>       a file holding the bearer token (or env FAIR_STATE_TOKEN)
  --ca-file <path>          PEM of the CA that signed the server's certificate

The tracker (explain, watch; defaults from defaultFairnessTrackerConfig()):
  --tracker-id <id>         the tracker's id (distributed.trackerId), required for explain
  --client-id <id>          the client, as registerRequest takes it, required for explain
  --m <n>                   buckets per level (default ${defaults.m})
  --l <n>                   levels (default ${defaults.l})
  --window <duration>       rotationFrequencyMs: "300000", "5m" (default ${defaults.rotationFrequencyMs} ms)
  --lambda <per second>     decay rate (default ${defaults.lambda})
  --final <min|mean>        the final probability function (default min)

Output:
  --at <unix ms>            explain as of this instant (default now)
  --count <n>               top: how many buckets (default 20)
  --json                    JSON instead of text
  -h, --help                this help
`;

class UsageError extends Error {}

const options = {
  target: { type: "string", default: "127.0.0.1:50051" },
  namespace: { type: "string", default: "" },
  "token-file": { type: "string" },
  "ca-file": { type: "string" },
  "tracker-id": { type: "string" },
  "client-id": { type: "string" },
  m: { type: "string" },
  l: { type: "string" },
  window: { type: "string" },
  lambda: { type: "string" },
  final: { type: "string", default: "min" },
  at: { type: "string" },
  count: { type: "string", default: "20" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof options }>>["values"];

function integer(name: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) {
    throw new UsageError(
      `--${name}: expected an integer of at least ${min}, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

function windowMs(text: string | undefined): number {
  if (text === undefined) return defaults.rotationFrequencyMs;
  const ms = /^\d+$/.test(text) ? Number(text) : parseDuration(text);
  if (ms === null || ms === undefined || !Number.isSafeInteger(ms) || ms < 1) {
    throw new UsageError(
      `--window: expected milliseconds ("300000") or a duration ("5m"), got ${JSON.stringify(text)}`,
    );
  }
  return ms;
}

function lambda(text: string | undefined): number {
  if (text === undefined) return defaults.lambda;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) {
    throw new UsageError(`--lambda: expected a number of at least 0, got ${JSON.stringify(text)}`);
  }
  return value;
}

function finalFunction(text: string): FinalProbabilityFunction {
  if (text === "min") return minFinalProbability;
  if (text === "mean") return meanFinalProbability;
  throw new UsageError(`--final: expected "min" or "mean", got ${JSON.stringify(text)}`);
}

function token(values: Values): string | undefined {
  const path = values["token-file"];
  if (path !== undefined) return readFileSync(path, "utf8").trim();
  return process.env["FAIR_STATE_TOKEN"] || undefined;
}

function required(values: Values, name: "tracker-id" | "client-id"): string {
  const value = values[name];
  if (value === undefined || value === "") throw new UsageError(`--${name} is required`);
  return value;
}

/** Warns on stderr when the server's window or λ differ from what this run assumes. */
function checkRules(rules: ServerRules, window: number, decay: number): void {
  if (rules.windowMs !== undefined && rules.windowMs !== window) {
    process.stderr.write(
      `fair-state: warning: the server's window is ${rules.windowMs} ms, this run assumes ${window} ms; a tracker whose rotationFrequencyMs differs from the server's does not share state (pass --window ${rules.windowMs})\n`,
    );
  }
  if (rules.decayRatePerSecond !== undefined && rules.decayRatePerSecond !== decay) {
    process.stderr.write(
      `fair-state: warning: the server decays at ${rules.decayRatePerSecond}/s, this run assumes ${decay}/s (pass --lambda ${rules.decayRatePerSecond})\n`,
    );
  }
}

const percent = (p: number) => `${(p * 100).toFixed(4)} %`;
const age = (ms: number | null) =>
  ms === null ? "never updated" : `${(ms / 1000).toFixed(1)} s ago`;

function explanationText(title: string, explanation: Explanation): string {
  const lines = [
    `${title}: window ${explanation.seed} (${new Date(Number(explanation.seed)).toISOString()})`,
  ];
  for (const b of explanation.buckets) {
    lines.push(
      `  level ${b.rowId}  bucket ${String(b.colId).padStart(6)}  ${percent(b.prob).padStart(11)}  (stored ${percent(b.storedProb)}, ${age(b.ageMs)})`,
    );
  }
  lines.push(`  throttle probability ${percent(explanation.finalProbability)}`);
  return lines.join("\n");
}

async function runExplain(
  reader: StateReader,
  values: Values,
  tracker: TrackerShape,
  window: number,
  at: number,
) {
  const clientId = required(values, "client-id");
  const current = windowSeedOf(at, window);
  const next = current + BigInt(window);
  const [now, later] = await Promise.all([reader.readSeed(current), reader.readSeed(next)]);
  checkRules(now.rules, window, tracker.lambda);
  const explained = explainClient(clientId, tracker, current, now.buckets, at);
  const upcoming = explainClient(clientId, tracker, next, later.buckets, at);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ ...explained, next: upcoming })}\n`);
  } else {
    process.stdout.write(
      `client ${JSON.stringify(clientId)} of tracker ${JSON.stringify(tracker.trackerId)}, namespace ${JSON.stringify(values.namespace)}, at ${new Date(at).toISOString()}\n${explanationText("current", explained)}\n${explanationText("next", upcoming)}\n`,
    );
  }
}

async function runTop(
  reader: StateReader,
  values: Values,
  window: number,
  decay: number,
  at: number,
) {
  const seed = windowSeedOf(at, window);
  const count = integer("count", values.count, 20, 1);
  const state = await reader.readSeed(seed);
  checkRules(state.rules, window, decay);
  const top = hottestBuckets(state.buckets.values(), count, at, decay);
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ seed: seed.toString(), buckets: state.buckets.size, top })}\n`,
    );
    return;
  }
  process.stdout.write(
    `window ${seed}: ${state.buckets.size} buckets held; the ${top.length} hottest, decayed to ${new Date(at).toISOString()}:\n`,
  );
  for (const b of top) {
    process.stdout.write(
      `  level ${b.rowId}  bucket ${String(b.colId).padStart(6)}  ${percent(b.prob).padStart(11)}  (${age(b.ageMs)})\n`,
    );
  }
}

async function runWatch(
  reader: StateReader,
  values: Values,
  tracker: TrackerShape | undefined,
  window: number,
) {
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  process.once("SIGTERM", () => stop.abort());
  const now = Date.now();
  const seeds = [windowSeedOf(now, window), windowSeedOf(now, window) + BigInt(window)];
  const held = new Map<bigint, Map<string, StoredBucket>>(seeds.map((seed) => [seed, new Map()]));
  const clientId = values["client-id"];
  for await (const change of reader.watch(seeds, stop.signal)) {
    const buckets = held.get(change.seed) as Map<string, StoredBucket>;
    for (const b of change.buckets) buckets.set(bucketKey(b.rowId, b.colId), b);
    const at = Date.now();
    if (tracker !== undefined && clientId !== undefined) {
      const explained = explainClient(clientId, tracker, change.seed, buckets, at);
      const touched = explained.buckets.some((mine) =>
        change.buckets.some((b) => b.rowId === mine.rowId && b.colId === mine.colId),
      );
      if (!touched) continue;
      process.stdout.write(
        values.json
          ? `${JSON.stringify(explained)}\n`
          : `${explanationText("changed", explained)}\n`,
      );
      continue;
    }
    for (const b of change.buckets) {
      process.stdout.write(
        values.json
          ? `${JSON.stringify({ seed: change.seed.toString(), ...b })}\n`
          : `${new Date(at).toISOString()}  window ${change.seed}  level ${b.rowId}  bucket ${String(b.colId).padStart(6)}  ${percent(b.prob)}\n`,
      );
    }
  }
}

async function main(argv: readonly string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (error) {
    process.stderr.write(`fair-state: ${(error as Error).message}\n\n${help}`);
    return EXIT_USAGE;
  }
  const { values, positionals } = parsed;
  const [command, ...extra] = positionals;
  if (values.help || command === undefined) {
    (values.help ? process.stdout : process.stderr).write(help);
    return values.help ? 0 : EXIT_USAGE;
  }
  let reader: StateReader | undefined;
  try {
    if (!["explain", "top", "watch"].includes(command))
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    const window = windowMs(values.window);
    const decay = lambda(values.lambda);
    const at = integer("at", values.at, Date.now(), 0);
    const trackerId = values["tracker-id"];
    const tracker =
      trackerId === undefined
        ? undefined
        : {
            trackerId,
            l: integer("l", values.l, defaults.l, 1),
            m: integer("m", values.m, defaults.m, 1),
            lambda: decay,
            finalProbabilityFunction: finalFunction(values.final),
          };
    const secret = token(values);
    reader = new StateReader({
      target: values.target,
      namespace: values.namespace,
      ...(secret === undefined ? {} : { token: secret }),
      ...(values["ca-file"] === undefined ? {} : { caFile: values["ca-file"] }),
    });
    if (command === "explain") {
      if (tracker === undefined) throw new UsageError("--tracker-id is required");
      await runExplain(reader, values, tracker, window, at);
    } else if (command === "top") {
      await runTop(reader, values, window, decay, at);
    } else {
      await runWatch(reader, values, tracker, window);
    }
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`fair-state: ${error.message} (see --help)\n`);
      return EXIT_USAGE;
    }
    if (error instanceof ConnectError) {
      process.stderr.write(`fair-state: cannot read ${values.target}: ${error.message}\n`);
      return EXIT_UNREACHABLE;
    }
    throw error;
  } finally {
    reader?.close();
  }
}

const argv = process.argv.slice(2);
process.exitCode = await main(argv[0] === "--" ? argv.slice(1) : argv);
