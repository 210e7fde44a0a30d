import type { HubStats } from "@fair/state-broadcast";
import type { StoreStats } from "@fair/state-store";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** Where scrape-time figures come from: the store's and the hub's own counters. */
export interface MetricSources {
  readonly storeStats: () => StoreStats;
  readonly hubStats: () => HubStats;
  readonly serving: () => boolean;
}

/** The counters the Sync handler moves as it works. */
export interface SyncMetrics {
  readonly connectedClients: Gauge;
  readonly streamsClosed: Counter<"code">;
  readonly deltaUpdatesReceived: Counter;
  readonly deltasReceived: Counter;
  readonly deltaUpdatesRejected: Counter<"code">;
  /** Deltas in rejected messages: counted with the store's drops under reason `rejected`. */
  readonly rejectedDeltas: { count: number };
  readonly fullStateRequests: Counter;
  readonly fullStateBucketsSent: Counter;
  readonly aggregationLatency: Histogram;
}

/** Every metric of one server, on its own registry (so several servers can share a process). */
export interface StateServerMetrics extends SyncMetrics {
  readonly registry: Registry;
}

/**
 * Creates the server's metrics: `fair_state_*` following Prometheus naming
 * (`_total` counters, `_seconds` durations) plus the process defaults.
 * Store and hub figures are read at scrape time, so the hot path pays
 * nothing for them.
 */
export function createMetrics(sources: MetricSources): StateServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const rejectedDeltas = { count: 0 };
  const mirror = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });

  new Counter({
    name: "fair_state_deltas_dropped_total",
    help: "Deltas not applied, by reason: too_old (seed behind the eviction horizon), too_far_future (seed too far ahead), rejected (in a message refused as invalid).",
    labelNames: ["reason"],
    registers,
    collect() {
      const { droppedDeltas } = sources.storeStats();
      this.reset();
      this.labels("too_old").inc(droppedDeltas.too_old);
      this.labels("too_far_future").inc(droppedDeltas.too_far_future);
      this.labels("rejected").inc(rejectedDeltas.count);
    },
  });
  mirror(
    "fair_state_deltas_applied_total",
    "Deltas applied to the store.",
    () => sources.storeStats().appliedDeltas,
  );
  mirror(
    "fair_state_timestamps_clamped_total",
    "Applied deltas whose timestamp was ahead of the server clock by more than maxClockSkew, and clamped.",
    () => sources.storeStats().clampedTimestamps,
  );
  mirror(
    "fair_state_seeds_evicted_total",
    "Seeds removed by eviction.",
    () => sources.storeStats().evictedSeeds,
  );
  gauge(
    "fair_state_store_buckets",
    "Non-default buckets held by the store.",
    () => sources.storeStats().buckets,
  );
  gauge(
    "fair_state_store_seeds",
    "Seeds held by the store, over all namespaces.",
    () => sources.storeStats().seeds,
  );
  mirror(
    "fair_state_buckets_broadcast_total",
    "Bucket updates delivered to streams (a bucket sent to 8 streams counts 8).",
    () => sources.hubStats().bucketsDelivered,
  );
  mirror(
    "fair_state_broadcast_batches_total",
    "Broadcast messages delivered to streams.",
    () => sources.hubStats().batchesDelivered,
  );
  mirror(
    "fair_state_slow_consumer_disconnects_total",
    "Streams closed because they fell too far behind the broadcast.",
    () => sources.hubStats().slowConsumerCloses,
  );
  gauge(
    "fair_state_serving",
    "1 while the server is SERVING, 0 from the moment shutdown begins.",
    () => (sources.serving() ? 1 : 0),
  );

  return {
    registry,
    rejectedDeltas,
    connectedClients: new Gauge({
      name: "fair_state_connected_clients",
      help: "Open Sync streams.",
      registers,
    }),
    streamsClosed: new Counter({
      name: "fair_state_streams_closed_total",
      help: "Sync streams ended, by gRPC status code (ok when the client ended it).",
      labelNames: ["code"],
      registers,
    }),
    deltaUpdatesReceived: new Counter({
      name: "fair_state_delta_updates_received_total",
      help: "DeltaUpdate messages received.",
      registers,
    }),
    deltasReceived: new Counter({
      name: "fair_state_deltas_received_total",
      help: "Bucket deltas received, in every DeltaUpdate.",
      registers,
    }),
    deltaUpdatesRejected: new Counter({
      name: "fair_state_delta_updates_rejected_total",
      help: "DeltaUpdate messages refused, by gRPC status code; each ends its stream.",
      labelNames: ["code"],
      registers,
    }),
    fullStateRequests: new Counter({
      name: "fair_state_full_state_requests_total",
      help: "StateRequest messages answered.",
      registers,
    }),
    fullStateBucketsSent: new Counter({
      name: "fair_state_full_state_buckets_sent_total",
      help: "Buckets sent in full-state replies.",
      registers,
    }),
    aggregationLatency: new Histogram({
      name: "fair_state_aggregation_latency_seconds",
      help: "From a DeltaUpdate's arrival to its changed buckets being handed to the broadcast hub (in interval mode they wait up to one broadcastInterval more).",
      buckets: [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1],
      registers,
    }),
  };
}
