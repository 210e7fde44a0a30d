#!/usr/bin/env node
// `pnpm bench`: load the FAIR State Service and report what it does.
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { type RedisSettings, type RunOptions, type RunResult, runBench } from "./run.js";

const help = `Usage: state-bench [options]

Opens --clients Sync streams that send DeltaUpdates of --deltas-per-message
deltas over --buckets distinct buckets each (pre-encoded), at --rate deltas/s
per client or as fast as the streams take them, for --duration seconds; plus
--subscribers streams that only receive. Without --target it starts
apps/state-server (built: run \`pnpm build\` first) in its own process.

Options:
  --target host:port          a running server (default: start one)
  --metrics host:port         its metrics listener, for server-side counts
  --server-main PATH          the server entry to start (default: this checkout's
                              built apps/state-server/dist/main.js; an older
                              build's, to measure it with the same generator)
  --store memory|redis        the started servers' store (default memory); redis
                              also reports Redis's CPU (INFO cpu of every node)
                              and deletes the run's keys (a fresh
                              --redis-key-prefix=fair-bench:<random>:) afterwards
  --replicas N                servers started on the same Redis (store redis;
                              default 1): sending client c and subscriber s use
                              replica c mod N and s mod N
  --redis-url URL[,URL…]      the Redis (cluster: seed nodes; sentinel: Sentinels)
  --redis-mode MODE           standalone, cluster or sentinel
  --redis-sentinel-name NAME  sentinel mode: the primary's name (server default "fair")
  --redis-flush-interval MS   the replicas' coalescing window (redisFlushIntervalMs)
  --redis-slot-groups N       slot groups (redisSlotGroups)
                              (each --redis-* flag is passed to the server only
                              when given: an older build does not know the newer
                              ones; unset, the server's default applies)
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
  "server-main": { type: "string" },
  store: { type: "string", default: "memory" },
  replicas: { type: "string", default: "1" },
  "redis-url": { type: "string" },
  "redis-mode": { type: "string" },
  "redis-sentinel-name": { type: "string" },
  "redis-flush-interval": { type: "string" },
  "redis-slot-groups": { type: "string" },
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

function oneOf<T extends string>(name: string, text: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(text)) {
    console.error(
      `state-bench: --${name}: expected ${allowed.join(" or ")}, got ${JSON.stringify(text)}`,
    );
    process.exit(2);
  }
  return text as T;
}

const store = oneOf("store", values.store, ["memory", "redis"] as const);
const replicas = count("replicas", values.replicas, 1);
const redisFlags = [
  "redis-url",
  "redis-mode",
  "redis-sentinel-name",
  "redis-flush-interval",
  "redis-slot-groups",
] as const;
if (store !== "redis" && redisFlags.some((name) => values[name] !== undefined)) {
  console.error("state-bench: the --redis-* flags need --store redis");
  process.exit(2);
}
if (store === "redis" && values.sink) {
  console.error("state-bench: --sink has no store; drop --store redis");
  process.exit(2);
}
if (replicas > 1 && (store !== "redis" || values.target !== undefined)) {
  console.error("state-bench: --replicas needs --store redis and servers the bench starts");
  process.exit(2);
}
const redis: RedisSettings = {
  ...(values["redis-url"] !== undefined
    ? { urls: values["redis-url"].split(",").map((url) => url.trim()) }
    : {}),
  ...(values["redis-mode"] !== undefined
    ? {
        mode: oneOf("redis-mode", values["redis-mode"], [
          "standalone",
          "cluster",
          "sentinel",
        ] as const),
      }
    : {}),
  ...(values["redis-sentinel-name"] !== undefined
    ? { sentinelName: values["redis-sentinel-name"] }
    : {}),
  ...(values["redis-flush-interval"] !== undefined
    ? { flushIntervalMs: count("redis-flush-interval", values["redis-flush-interval"], 0) }
    : {}),
  ...(values["redis-slot-groups"] !== undefined
    ? { slotGroups: count("redis-slot-groups", values["redis-slot-groups"], 1) }
    : {}),
};

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
  store,
  redis,
  replicas,
  ...(values["server-main"] !== undefined ? { serverMain: values["server-main"] } : {}),
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
  const us = (v: number | undefined) => (v === undefined ? "—" : `${v.toFixed(1)} µs`);
  const store =
    r.store === "memory"
      ? "memory"
      : `redis ${r.redisMode}, flush interval ${r.redisFlushIntervalMs === undefined ? "(server default)" : `${r.redisFlushIntervalMs} ms`}`;
  const rows: [string, string][] = [
    ["server", `${r.replicas} × ${r.serverMain ?? "apps/state-server"}, store ${store}`],
    ["streams", `${r.clients} sending, ${r.subscribers} receive-only`],
    [
      "load",
      `${r.deltasPerMessage} deltas/message over ${r.buckets.toLocaleString("en")} buckets per client, ${r.durationS} s, broadcastIntervalMs ${r.broadcastIntervalMs}`,
    ],
    ["deltas offered (clients × rate)", n(r.deltasOfferedPerS, "/s")],
    ["deltas sent", n(r.deltasSentPerS, "/s")],
    ["deltas ingested (server)", n(r.deltasIngestedPerS, "/s")],
    [
      "ingest (ingested / sent)",
      r.ingestPercent === undefined ? "—" : `${r.ingestPercent.toFixed(1)} %`,
    ],
    ["deltas received (server)", n(r.deltasReceivedPerS, "/s")],
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
    ["server CPU (all replicas)", n(r.serverCpuPercent, " %")],
    ["server CPU per applied delta", us(r.serverCpuUsPerDelta)],
    [
      "Redis CPU (all nodes)",
      r.redisNodes
        ? `${n(r.redisCpuPercent, " %")} (${r.redisNodes.map((node) => `${node.address} ${node.role} ${node.cpuPercent} %`).join(", ")})`
        : "—",
    ],
    ["Redis CPU per applied delta", us(r.redisCpuUsPerDelta)],
    ["total CPU (server + Redis) per applied delta", us(r.totalCpuUsPerDelta)],
    [
      "Redis scripts (eval/evalsha/fcall)",
      r.redisScriptCallsPerS === undefined
        ? "—"
        : `${n(r.redisScriptCallsPerS, " calls/s")}, ${us(r.redisScriptUsPerDelta)} per applied delta`,
    ],
    [
      "Redis commands (all, scripts' own counted again)",
      r.redisCommandCallsPerS === undefined
        ? "—"
        : `${n(r.redisCommandCallsPerS, " calls/s")}, ${us(r.redisCommandUsPerDelta)} per applied delta`,
    ],
    ["server peak RSS (largest replica)", n(r.serverPeakRssMiB, " MiB")],
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
