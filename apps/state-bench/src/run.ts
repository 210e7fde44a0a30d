import { randomBytes } from "node:crypto";
import { type ClientHttp2Session, connect } from "node:http2";
import { BenchStream } from "./bench-stream.js";
import { BucketView } from "./bucket-view.js";
import {
  openRedisNodes,
  type RedisMode,
  type RedisNodeSample,
  type RedisNodes,
} from "./redis-nodes.js";
import {
  type ServerCounters,
  type ServerProcess,
  scrape,
  startServerProcess,
} from "./server-process.js";
import { startSink } from "./sink-server.js";
import {
  columnsPerClient,
  deltaUpdateFrame,
  encodeClientMessages,
  LOAD_ROWS,
  PROBE_ROW,
  stateRequestFrame,
} from "./workload.js";

/** What to run; see `--help` in main.ts for each. */
export interface RunOptions {
  target: string | undefined;
  /** Send to an in-process sink that discards everything: the generator's own ceiling. */
  sink: boolean;
  metrics: string | undefined;
  clients: number;
  subscribers: number;
  deltasPerMessage: number;
  buckets: number;
  ratePerClient: number;
  durationS: number;
  /** Seconds of load before measuring starts (JIT, buffers and windows warm up). */
  warmupS: number;
  broadcastIntervalMs: number;
  namespace: string;
  probeIntervalMs: number;
  windowMs: number;
  onProgress: ((line: string) => void) | undefined;
  /** The started servers' store (default memory); with redis, Redis's CPU is measured too, even with `target`. */
  store?: "memory" | "redis";
  /**
   * The Redis settings handed to the started servers, each only when set (an
   * older server build does not know the newer flags); unset, the server's
   * default, which the bench then assumes too (redis://127.0.0.1:6379, standalone).
   */
  redis?: RedisSettings;
  /** Servers started on the same Redis (store redis only; default 1). */
  replicas?: number;
  /** The server entry to start (default: this checkout's built apps/state-server). */
  serverMain?: string;
}

export interface RedisSettings {
  /** One URL, or (cluster, sentinel) several. */
  urls?: readonly string[];
  mode?: RedisMode;
  flushIntervalMs?: number;
  slotGroups?: number;
  /** Sentinel mode: the primary's name (the server's default is "fair"). */
  sentinelName?: string;
}

/** One run's figures, as the table and `--json` report them. */
export interface RunResult {
  clients: number;
  subscribers: number;
  deltasPerMessage: number;
  buckets: number;
  broadcastIntervalMs: number;
  durationS: number;
  store: "memory" | "redis";
  redisMode: RedisMode | undefined;
  redisFlushIntervalMs: number | undefined;
  replicas: number;
  serverMain: string | undefined;
  /** clients × rate (none when --rate 0): below it, deltasSentPerS means the server held the generator back. */
  deltasOfferedPerS: number | undefined;
  deltasSentPerS: number;
  /** Deltas the server(s) applied or dropped (summed over replicas). */
  deltasIngestedPerS: number | undefined;
  /** Deltas the server(s) read off the wire (`fair_state_deltas_received_total`). */
  deltasReceivedPerS: number | undefined;
  /** Deltas ingested / deltas sent, in percent, one decimal (the probes count too: a little over 100 is full ingest). */
  ingestPercent: number | undefined;
  bucketUpdatesDeliveredPerS: number;
  serverBroadcastPerS: number | undefined;
  propagationMs: { p50: number; p99: number; max: number; probes: number } | undefined;
  /** Summed over replicas: 100 = one core. */
  serverCpuPercent: number | undefined;
  /** Server CPU (every replica) per applied delta, µs. */
  serverCpuUsPerDelta: number | undefined;
  /** INFO cpu (used_cpu_user + used_cpu_sys) summed over every Redis node: 100 = one core. */
  redisCpuPercent: number | undefined;
  redisCpuUsPerDelta: number | undefined;
  /** Server and Redis CPU per applied delta, µs (the memory store: the server's alone). */
  totalCpuUsPerDelta: number | undefined;
  /** INFO commandstats of eval/evalsha/fcall (the store's scripts): calls/s and µs of Redis time per applied delta. */
  redisScriptCallsPerS: number | undefined;
  redisScriptUsPerDelta: number | undefined;
  /** Every cmdstat_*: calls/s and µs per applied delta (commands run inside scripts are counted again here). */
  redisCommandCallsPerS: number | undefined;
  redisCommandUsPerDelta: number | undefined;
  /** Each Redis node's CPU, in percent of a core. */
  redisNodes: { address: string; role: "primary" | "replica"; cpuPercent: number }[] | undefined;
  /** The run's keys deleted from Redis afterwards (started servers on redis only). */
  redisKeysDeleted: number | undefined;
  /** The largest replica's peak RSS. */
  serverPeakRssMiB: number | undefined;
  droppedDeltas: number | undefined;
  slowConsumerCloses: number | undefined;
  streamsEndedEarly: number;
  converged: boolean;
  mismatchedBuckets: number;
  /** The first stream's full-state request at the end: buckets and milliseconds (a cold start's cost). */
  fullState: { buckets: number; ms: number } | undefined;
}

const STREAMS_PER_CONNECTION = 100;

export async function runBench(options: RunOptions): Promise<RunResult> {
  const store = options.store ?? "memory";
  const replicas = options.replicas ?? 1;
  const redis = options.redis ?? {};
  if (replicas < 1 || (replicas > 1 && (store !== "redis" || options.target || options.sink)))
    throw new Error("several replicas need the redis store and servers the bench starts");
  const startsServers = !options.target && !options.sink;
  // A fresh prefix per run: the run starts from an empty state and its keys can be found afterwards.
  const keyPrefix =
    store === "redis" && startsServers
      ? `fair-bench:${randomBytes(6).toString("hex")}:`
      : undefined;
  let redisNodes: RedisNodes | undefined;
  let sink: Awaited<ReturnType<typeof startSink>> | undefined;
  const servers: ServerProcess[] = [];
  let result: Omit<RunResult, "redisKeysDeleted">;
  let keysDeleted: number | undefined;
  try {
    if (store === "redis")
      redisNodes = await openRedisNodes(
        redis.urls ?? ["redis://127.0.0.1:6379"],
        redis.mode ?? "standalone",
        redis.sentinelName ?? "fair",
      );
    if (options.sink) sink = await startSink();
    if (startsServers) {
      const flags = [
        `--broadcast-interval-ms=${options.broadcastIntervalMs}`,
        "--max-deltas-per-message=1000000",
        // The load is the point: no per-stream request limit.
        "--max-requests-per-second=16000000",
        ...(store === "redis"
          ? [
              "--store=redis",
              `--redis-key-prefix=${keyPrefix}`,
              // Each only when given: an older server build refuses flags it does not know.
              ...(redis.urls ? [`--redis-url=${redis.urls.join(",")}`] : []),
              ...(redis.mode ? [`--redis-mode=${redis.mode}`] : []),
              ...(redis.sentinelName ? [`--redis-sentinel-name=${redis.sentinelName}`] : []),
              ...(redis.flushIntervalMs !== undefined
                ? [`--redis-flush-interval-ms=${redis.flushIntervalMs}`]
                : []),
              ...(redis.slotGroups !== undefined
                ? [`--redis-slot-groups=${redis.slotGroups}`]
                : []),
            ]
          : []),
      ];
      // One after another: each replica's start-up meets a store the previous one set up.
      for (let i = 0; i < replicas; i++)
        servers.push(await startServerProcess(flags, options.serverMain));
    }
    result = await measure(options, {
      store,
      replicas,
      targets: startsServers
        ? servers.map((s) => s.grpcAddress)
        : [options.target ?? sink?.address ?? ""],
      metrics: startsServers
        ? servers.map((s) => s.metricsAddress)
        : options.metrics
          ? [options.metrics]
          : [],
      servers,
      redisNodes,
    });
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await sink?.close();
    if (redisNodes && keyPrefix) {
      try {
        keysDeleted = await redisNodes.deleteKeys(keyPrefix);
      } catch (error) {
        console.error(
          `state-bench: deleting the run's Redis keys (${keyPrefix}*) failed: ${(error as Error).message}`,
        );
      }
    }
    redisNodes?.close();
  }
  return { ...result, redisKeysDeleted: keysDeleted };
}

interface Deployment {
  store: "memory" | "redis";
  replicas: number;
  /** gRPC address per replica. */
  targets: string[];
  /** Metrics address per replica (none: no server counts). */
  metrics: string[];
  /** The servers the bench started (none with --target or --sink). */
  servers: ServerProcess[];
  redisNodes: RedisNodes | undefined;
}

async function measure(
  options: RunOptions,
  deployment: Deployment,
): Promise<Omit<RunResult, "redisKeysDeleted">> {
  const { servers, redisNodes, targets, metrics } = deployment;
  const total = options.clients + options.subscribers;
  // Sending client c and subscriber s use replica (c mod N) and (s mod N).
  const replicaOf = (i: number) => (i < options.clients ? i : i - options.clients) % targets.length;
  const sessions: ClientHttp2Session[][] = targets.map(() => []);
  const sessionFor = (replica: number, position: number): ClientHttp2Session => {
    const list = sessions[replica] as ClientHttp2Session[];
    const at = Math.floor(position / STREAMS_PER_CONNECTION);
    let session = list[at];
    if (session === undefined) {
      // Windows well above the default 64 KiB, as gRPC clients use: broadcasts to
      // every stream of this connection must not wait for window updates.
      const opened = connect(`http://${targets[replica]}`, {
        settings: { initialWindowSize: 1 << 20 },
      });
      opened.once("connect", () => opened.setLocalWindowSize(1 << 24));
      opened.on("error", () => {});
      list[at] = opened;
      session = opened;
    }
    return session;
  };
  const scrapeAll = async (): Promise<ServerCounters | undefined> =>
    metrics.length === 0 ? undefined : sumCounters(await Promise.all(metrics.map(scrape)));
  const cpuNow = () =>
    servers.length === 0 ? undefined : servers.reduce((n, s) => n + s.cpuSeconds(), 0);
  const seed = BigInt(Math.floor(Date.now() / options.windowMs) * options.windowMs);
  const startMs = Date.now();

  // Propagation: the first client writes probe buckets; each probe's arrival
  // at the last stream is its propagation time.
  const probes = new Map<number, { sentAt: number; seen: number; latencyMs?: number }>();
  const onProbe = (_s: BenchStream, colId: number) => {
    const probe = probes.get(colId);
    if (probe && ++probe.seen === total) probe.latencyMs = performance.now() - probe.sentAt;
  };
  const positions = targets.map(() => 0);
  const streams = Array.from({ length: total }, (_, i) => {
    const replica = replicaOf(i);
    const position = positions[replica] ?? 0;
    positions[replica] = position + 1;
    return new BenchStream(
      sessionFor(replica, position),
      options.namespace,
      new BucketView(LOAD_ROWS, options.clients * columnsPerClient(options.buckets)),
      onProbe,
    );
  });
  try {
    await Promise.all(streams.map((s) => s.fullState(stateRequestFrame(seed))));
    const pools = Array.from({ length: options.clients }, (_, c) =>
      encodeClientMessages(seed, c, options.buckets, options.deltasPerMessage, startMs),
    );
    const started = performance.now();
    const deadline = started + (options.warmupS + options.durationS) * 1000;
    let sent = 0;
    const receivedNow = () => streams.reduce((n, s) => n + s.bucketsReceived, 0);
    const progress = setInterval(() => {
      options.onProgress?.(
        `${((performance.now() - started) / 1000).toFixed(0)} s: ${sent.toLocaleString("en")} deltas sent, ${receivedNow().toLocaleString("en")} bucket updates received`,
      );
    }, 1000);
    // Measuring starts after the warm-up: counters, CPU and probes.
    let probeCount = 0;
    let prober: ReturnType<typeof setInterval> | undefined;
    const measuring = (async () => {
      await new Promise((resolve) => setTimeout(resolve, options.warmupS * 1000));
      const [counters, redisSample] = await Promise.all([scrapeAll(), redisNodes?.sample()]);
      const from = {
        counters,
        redis: redisSample,
        cpu: cpuNow(),
        at: performance.now(),
        sent,
        received: receivedNow(),
      };
      if (options.probeIntervalMs > 0) {
        prober = setInterval(() => {
          const id = probeCount++;
          probes.set(id, { sentAt: performance.now(), seen: 0 });
          streams[0]?.write(deltaUpdateFrame(seed, [[PROBE_ROW, id, 0.001, startMs]]));
        }, options.probeIntervalMs);
      }
      return from;
    })();
    await Promise.all(
      pools.map(async (pool, c) => {
        const stream = streams[c] as BenchStream;
        const perMessage = options.deltasPerMessage;
        let next = 0;
        while (performance.now() < deadline) {
          const due =
            options.ratePerClient > 0
              ? Math.floor(
                  ((performance.now() - started) / 1000) * (options.ratePerClient / perMessage),
                ) - next
              : 64;
          for (let i = 0; i < due; i++) {
            const ok = stream.write(pool[next++ % pool.length] as Buffer);
            sent += perMessage;
            if (!ok) await stream.drained();
          }
          // Yield so responses are read while the load runs.
          await new Promise((resolve) =>
            options.ratePerClient > 0 ? setTimeout(resolve, 1) : setImmediate(resolve),
          );
        }
      }),
    );
    const from = await measuring;
    if (prober) clearInterval(prober);
    // The load's end: what the server has counted by now is what it ingested.
    const elapsedS = (performance.now() - from.at) / 1000;
    const before = from.counters;
    const cpuBefore = from.cpu;
    const [after, redisAfter] = await Promise.all([scrapeAll(), redisNodes?.sample()]);
    const cpuAfter = cpuNow();
    const received = receivedNow() - from.received;
    const sentMeasured = sent - from.sent;
    if (!options.sink) await quiesce(streams, Math.max(500, 2 * options.broadcastIntervalMs));
    clearInterval(progress);

    let mismatched = 0;
    let fullState: RunResult["fullState"];
    for (const stream of streams) {
      if (stream.status !== undefined) continue;
      const asked = performance.now();
      const truth = await stream.fullState(stateRequestFrame(seed));
      fullState ??= { buckets: truth.size, ms: round(performance.now() - asked) };
      for (const [k, value] of truth) {
        const seen = stream.view.get(k);
        if (seen === undefined || seen.prob !== value.prob || seen.timeMs !== value.timeMs)
          mismatched++;
      }
      for (const [k, value] of stream.view) if (value.prob !== 0 && !truth.has(k)) mismatched++;
    }
    const latencies = [...probes.values()]
      .flatMap((p) => (p.latencyMs === undefined ? [] : [p.latencyMs]))
      .sort((a, b) => a - b);
    const diff = (f: (c: ServerCounters) => number) =>
      before && after ? f(after) - f(before) : undefined;
    const perS = (n: number | undefined) =>
      n === undefined ? undefined : Math.round(n / elapsedS);
    const ended = streams.filter((s) => s.status !== undefined).length;
    const ingested = diff((c) => c.applied + c.dropped);
    const applied = diff((c) => c.applied);
    // µs per applied delta, one decimal.
    const perDelta = (seconds: number | undefined) =>
      seconds === undefined || !applied ? undefined : Math.round((seconds * 1e7) / applied) / 10;
    const serverCpuS =
      cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore;
    const redisDiff = (f: (s: RedisNodeSample) => number) =>
      from.redis && redisAfter
        ? redisAfter.reduce((n, s, i) => n + f(s) - f(from.redis?.[i] ?? s), 0)
        : undefined;
    const redisCpuS = redisDiff((s) => s.cpuS);
    const usToS = (us: number | undefined) => (us === undefined ? undefined : us / 1e6);
    const totalCpuS =
      serverCpuS === undefined
        ? undefined
        : deployment.store === "memory"
          ? serverCpuS
          : redisCpuS === undefined
            ? undefined
            : serverCpuS + redisCpuS;
    return {
      clients: options.clients,
      subscribers: options.subscribers,
      deltasPerMessage: options.deltasPerMessage,
      buckets: options.buckets,
      broadcastIntervalMs: options.broadcastIntervalMs,
      durationS: Math.round(elapsedS * 10) / 10,
      store: deployment.store,
      redisMode: deployment.store === "redis" ? (options.redis?.mode ?? "standalone") : undefined,
      redisFlushIntervalMs: options.redis?.flushIntervalMs,
      replicas: deployment.replicas,
      serverMain: options.serverMain,
      deltasOfferedPerS:
        options.ratePerClient > 0 ? options.clients * options.ratePerClient : undefined,
      deltasSentPerS: Math.round(sentMeasured / elapsedS),
      deltasIngestedPerS: perS(ingested),
      deltasReceivedPerS: perS(diff((c) => c.received)),
      ingestPercent:
        ingested === undefined || sentMeasured === 0
          ? undefined
          : Math.round((ingested / sentMeasured) * 1000) / 10,
      bucketUpdatesDeliveredPerS: Math.round(received / elapsedS),
      serverBroadcastPerS: perS(diff((c) => c.broadcast)),
      propagationMs:
        latencies.length === 0
          ? undefined
          : {
              p50: round(quantile(latencies, 0.5)),
              p99: round(quantile(latencies, 0.99)),
              max: round(latencies.at(-1) ?? 0),
              probes: latencies.length,
            },
      serverCpuPercent:
        serverCpuS === undefined ? undefined : Math.round((serverCpuS / elapsedS) * 100),
      serverCpuUsPerDelta: perDelta(serverCpuS),
      redisCpuPercent:
        redisCpuS === undefined ? undefined : Math.round((redisCpuS / elapsedS) * 100),
      redisCpuUsPerDelta: perDelta(redisCpuS),
      totalCpuUsPerDelta: perDelta(totalCpuS),
      redisScriptCallsPerS: perS(redisDiff((s) => s.scriptCalls)),
      redisScriptUsPerDelta: perDelta(usToS(redisDiff((s) => s.scriptUsec))),
      redisCommandCallsPerS: perS(redisDiff((s) => s.calls)),
      redisCommandUsPerDelta: perDelta(usToS(redisDiff((s) => s.usec))),
      redisNodes:
        redisNodes && from.redis && redisAfter
          ? redisNodes.nodes.map((node, i) => ({
              address: node.address,
              role: node.role,
              cpuPercent: Math.round(
                (((redisAfter[i]?.cpuS ?? 0) - (from.redis?.[i]?.cpuS ?? 0)) / elapsedS) * 100,
              ),
            }))
          : undefined,
      serverPeakRssMiB:
        servers.length === 0
          ? undefined
          : Math.round(Math.max(...servers.map((s) => s.peakRssBytes())) / 2 ** 20),
      droppedDeltas: diff((c) => c.dropped),
      slowConsumerCloses: diff((c) => c.slowConsumerCloses),
      streamsEndedEarly: ended,
      converged: mismatched === 0 && ended === 0,
      mismatchedBuckets: mismatched,
      fullState,
    };
  } finally {
    for (const stream of streams) stream.close();
    for (const session of sessions.flat()) session.destroy();
  }
}

function sumCounters(all: ServerCounters[]): ServerCounters {
  const sum = (f: (c: ServerCounters) => number) => all.reduce((n, c) => n + f(c), 0);
  return {
    applied: sum((c) => c.applied),
    received: sum((c) => c.received),
    dropped: sum((c) => c.dropped),
    broadcast: sum((c) => c.broadcast),
    slowConsumerCloses: sum((c) => c.slowConsumerCloses),
  };
}

/** Waits until no stream has received a broadcast for `quietMs`. */
async function quiesce(streams: BenchStream[], quietMs: number): Promise<void> {
  for (;;) {
    const last = Math.max(0, ...streams.map((s) => s.lastBroadcastAt));
    const idle = performance.now() - last;
    if (idle >= quietMs) return;
    await new Promise((resolve) => setTimeout(resolve, quietMs - idle));
  }
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
