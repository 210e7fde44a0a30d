import { type ClientHttp2Session, connect } from "node:http2";
import { BenchStream } from "./bench-stream.js";
import { BucketView } from "./bucket-view.js";
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
}

/** One run's figures, as the table and `--json` report them. */
export interface RunResult {
  clients: number;
  subscribers: number;
  deltasPerMessage: number;
  buckets: number;
  broadcastIntervalMs: number;
  durationS: number;
  deltasSentPerS: number;
  deltasIngestedPerS: number | undefined;
  bucketUpdatesDeliveredPerS: number;
  serverBroadcastPerS: number | undefined;
  propagationMs: { p50: number; p99: number; max: number; probes: number } | undefined;
  serverCpuPercent: number | undefined;
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
  const sink = options.sink ? await startSink() : undefined;
  const server: ServerProcess | undefined =
    options.target || sink
      ? undefined
      : await startServerProcess([
          `--broadcast-interval-ms=${options.broadcastIntervalMs}`,
          "--max-deltas-per-message=1000000",
          // The load is the point: no per-stream request limit.
          "--max-requests-per-second=16000000",
        ]);
  const target = options.target ?? sink?.address ?? server?.grpcAddress ?? "";
  const metricsAddress = options.metrics ?? server?.metricsAddress;
  const total = options.clients + options.subscribers;
  const sessions: ClientHttp2Session[] = [];
  for (let i = 0; i < Math.ceil(total / STREAMS_PER_CONNECTION); i++) {
    // Windows well above the default 64 KiB, as gRPC clients use: broadcasts to
    // every stream of this connection must not wait for window updates.
    const session = connect(`http://${target}`, { settings: { initialWindowSize: 1 << 20 } });
    session.once("connect", () => session.setLocalWindowSize(1 << 24));
    session.on("error", () => {});
    sessions.push(session);
  }
  const seed = BigInt(Math.floor(Date.now() / options.windowMs) * options.windowMs);
  const startMs = Date.now();

  // Propagation: the first client writes probe buckets; each probe's arrival
  // at the last stream is its propagation time.
  const probes = new Map<number, { sentAt: number; seen: number; latencyMs?: number }>();
  const onProbe = (_s: BenchStream, colId: number) => {
    const probe = probes.get(colId);
    if (probe && ++probe.seen === total) probe.latencyMs = performance.now() - probe.sentAt;
  };
  const streams = Array.from(
    { length: total },
    (_, i) =>
      new BenchStream(
        sessions[Math.floor(i / STREAMS_PER_CONNECTION)] as ClientHttp2Session,
        options.namespace,
        new BucketView(LOAD_ROWS, options.clients * columnsPerClient(options.buckets)),
        onProbe,
      ),
  );
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
      const from = {
        counters: metricsAddress ? await scrape(metricsAddress) : undefined,
        cpu: server?.cpuSeconds(),
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
    const after = metricsAddress ? await scrape(metricsAddress) : undefined;
    const cpuAfter = server?.cpuSeconds();
    const received = receivedNow() - from.received;
    const sentMeasured = sent - from.sent;
    if (!sink) await quiesce(streams, Math.max(500, 2 * options.broadcastIntervalMs));
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
    return {
      clients: options.clients,
      subscribers: options.subscribers,
      deltasPerMessage: options.deltasPerMessage,
      buckets: options.buckets,
      broadcastIntervalMs: options.broadcastIntervalMs,
      durationS: Math.round(elapsedS * 10) / 10,
      deltasSentPerS: Math.round(sentMeasured / elapsedS),
      deltasIngestedPerS: perS(diff((c) => c.applied + c.dropped)),
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
        cpuBefore === undefined || cpuAfter === undefined
          ? undefined
          : Math.round(((cpuAfter - cpuBefore) / elapsedS) * 100),
      serverPeakRssMiB: server ? Math.round(server.peakRssBytes() / 2 ** 20) : undefined,
      droppedDeltas: diff((c) => c.dropped),
      slowConsumerCloses: diff((c) => c.slowConsumerCloses),
      streamsEndedEarly: ended,
      converged: mismatched === 0 && ended === 0,
      mismatchedBuckets: mismatched,
      fullState,
    };
  } finally {
    for (const stream of streams) stream.close();
    for (const session of sessions) session.destroy();
    await server?.stop();
    await sink?.close();
  }
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
