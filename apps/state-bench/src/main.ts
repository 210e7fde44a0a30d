#!/usr/bin/env node
// `pnpm bench`: load the FAIR State Service and report what it does.
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { type RunOptions, type RunResult, runBench } from "./run.js";

const help = `Usage: state-bench [options]

Opens --clients Sync streams that send DeltaUpdates of --deltas-per-message
deltas over --buckets distinct buckets each (pre-encoded), at --rate deltas/s
per client or as fast as the streams take them, for --duration seconds; plus
--subscribers streams that only receive. Without --target it starts
apps/state-server (built: run \`pnpm build\` first) in its own process.

Options:
  --target host:port          a running server (default: start one)
  --metrics host:port         its metrics listener, for server-side counts
  --sink                      send to an in-process sink that discards everything:
                              what the generator can send on its own
  --clients N                 sending streams (default 8)
  --subscribers N             receive-only streams (default 0)
  --deltas-per-message K      deltas per DeltaUpdate (default 100)
  --buckets B                 distinct buckets per client (default 10000)
  --rate R                    deltas/s per client; 0 = as fast as possible (default 0)
  --duration D                seconds of load measured (default 10)
  --warmup W                  seconds of load before measuring starts (default 2)
  --broadcast-interval MS     the started server's broadcastIntervalMs (default 0)
  --probe-interval MS         one propagation probe every MS (default 20; 0 = none)
  --namespace NAME            fair-state-namespace (default "")
  --json                      print one JSON object instead of the table
  -h, --help                  print this help`;

const flags = {
  target: { type: "string" },
  metrics: { type: "string" },
  sink: { type: "boolean", default: false },
  clients: { type: "string", default: "8" },
  subscribers: { type: "string", default: "0" },
  "deltas-per-message": { type: "string", default: "100" },
  buckets: { type: "string", default: "10000" },
  rate: { type: "string", default: "0" },
  duration: { type: "string", default: "10" },
  warmup: { type: "string", default: "2" },
  "broadcast-interval": { type: "string", default: "0" },
  "probe-interval": { type: "string", default: "20" },
  namespace: { type: "string", default: "" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

function parse(argv: string[]) {
  try {
    // `pnpm bench -- --clients 8` hands the script a leading "--": skip it.
    return parseArgs({
      args: argv[0] === "--" ? argv.slice(1) : argv,
      options: flags,
      strict: true,
    });
  } catch (error) {
    console.error(`state-bench: ${(error as Error).message}; see --help`);
    process.exit(2);
  }
}

const { values } = parse(process.argv.slice(2));

if (values.help) {
  console.log(help);
  process.exit(0);
}

function count(name: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) {
    console.error(
      `state-bench: --${name}: expected an integer ≥ ${min}, got ${JSON.stringify(text)}`,
    );
    process.exit(2);
  }
  return value;
}

const options: RunOptions = {
  target: values.target,
  sink: values.sink,
  metrics: values.metrics,
  clients: count("clients", values.clients, 0),
  subscribers: count("subscribers", values.subscribers, 0),
  deltasPerMessage: count("deltas-per-message", values["deltas-per-message"], 1),
  buckets: count("buckets", values.buckets, 1),
  ratePerClient: count("rate", values.rate, 0),
  durationS: count("duration", values.duration, 1),
  warmupS: count("warmup", values.warmup, 0),
  broadcastIntervalMs: count("broadcast-interval", values["broadcast-interval"], 0),
  probeIntervalMs: count("probe-interval", values["probe-interval"], 0),
  namespace: values.namespace,
  windowMs: 300_000,
  onProgress: process.stderr.isTTY ? (line) => process.stderr.write(`\r${line}\x1b[K`) : undefined,
};

const result = await runBench(options);
if (process.stderr.isTTY) process.stderr.write("\r\x1b[K");
if (values.json)
  console.log(JSON.stringify({ ...result, node: process.version, cpus: cpus().length }));
else console.log(table(result));
process.exitCode = result.converged ? 0 : 1;

function table(r: RunResult): string {
  const n = (v: number | undefined, unit = "") =>
    v === undefined ? "—" : `${v.toLocaleString("en")}${unit}`;
  const rows: [string, string][] = [
    ["streams", `${r.clients} sending, ${r.subscribers} receive-only`],
    [
      "load",
      `${r.deltasPerMessage} deltas/message over ${r.buckets.toLocaleString("en")} buckets per client, ${r.durationS} s, broadcastIntervalMs ${r.broadcastIntervalMs}`,
    ],
    ["deltas sent", n(r.deltasSentPerS, "/s")],
    ["deltas ingested (server)", n(r.deltasIngestedPerS, "/s")],
    ["bucket updates delivered (clients)", n(r.bucketUpdatesDeliveredPerS, "/s")],
    ["bucket updates broadcast (server)", n(r.serverBroadcastPerS, "/s")],
    [
      "propagation p50 / p99 / max",
      r.propagationMs
        ? `${r.propagationMs.p50} / ${r.propagationMs.p99} / ${r.propagationMs.max} ms (${r.propagationMs.probes} probes)`
        : "—",
    ],
    [
      "full state at the end (first stream)",
      r.fullState
        ? `${r.fullState.buckets.toLocaleString("en")} buckets in ${r.fullState.ms} ms`
        : "—",
    ],
    ["server CPU", n(r.serverCpuPercent, " %")],
    ["server peak RSS", n(r.serverPeakRssMiB, " MiB")],
    ["deltas dropped (server)", n(r.droppedDeltas)],
    ["slow-client closes", n(r.slowConsumerCloses)],
    [
      "converged",
      r.converged
        ? "yes"
        : `NO: ${r.mismatchedBuckets} buckets differ, ${r.streamsEndedEarly} streams ended early`,
    ],
  ];
  return [
    `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}`,
    "",
    "| measure | value |",
    "|---|---|",
    ...rows.map(([k, v]) => `| ${k} | ${v} |`),
  ].join("\n");
}
