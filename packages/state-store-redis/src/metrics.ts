import { Counter, Histogram, type Registry } from "prom-client";
import type { RedisStats } from "./redis-store.js";

/** What the metrics read from a Redis store: its counters, and each operation as it ends. */
export interface RedisMetricSources {
  stats(): RedisStats;
  onOperation(listener: (operation: string, durationMs: number, ok: boolean) => void): () => void;
}

/**
 * Registers the Redis store's own metrics on a server's registry: command
 * latency and errors as they happen, the relay between replicas and the
 * connection's history read from the store's counters at scrape time. The
 * store-wide figures every store has (applied, dropped, sizes) are the
 * server's, from `stats()`.
 */
export function registerRedisMetrics(registry: Registry, store: RedisMetricSources): void {
  const registers = [registry];
  const latency = new Histogram({
    name: "fair_state_redis_operation_duration_seconds",
    help: "Duration of Redis operations, by operation: apply (one script per DeltaUpdate), offer (one script per StateOffer), get_seed, read_seed (one page of a seed), evict, stats, reread, subscribe, epoch (reading or creating the state epoch) (store: redis).",
    labelNames: ["operation"],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2],
    registers,
  });
  const errors = new Counter({
    name: "fair_state_redis_errors_total",
    help: "Failed Redis operations, by operation (store: redis).",
    labelNames: ["operation"],
    registers,
  });
  store.onOperation((operation, durationMs, ok) => {
    latency.labels(operation).observe(durationMs / 1000);
    if (!ok) errors.labels(operation).inc();
  });

  const mirror = (name: string, help: string, read: (stats: RedisStats) => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read(store.stats()));
      },
    });
  mirror(
    "fair_state_relay_messages_received_total",
    "Change messages received from other replicas (store: redis).",
    (stats) => stats.messagesReceived,
  );
  mirror(
    "fair_state_relay_buckets_total",
    "Buckets relayed to this replica's streams from other replicas' changes and from re-reads (store: redis).",
    (stats) => stats.bucketsRelayed,
  );
  mirror(
    "fair_state_relay_gaps_total",
    "Slot-group sequences that jumped, meaning change messages were lost; each group was re-read (store: redis).",
    (stats) => stats.gaps,
  );
  mirror(
    "fair_state_relay_rows_reread_total",
    "Row parts (one row's buckets in one slot group) read back from Redis after a gap or a resubscription (store: redis).",
    (stats) => stats.rowsReread,
  );
  mirror(
    "fair_state_relay_resyncs_total",
    "Resyncs after (re)subscribing to the change channels: every slot group read back (store: redis).",
    (stats) => stats.resyncs,
  );
  mirror(
    "fair_state_relay_bad_messages_total",
    "Change messages that did not parse (another format, e.g. during a rolling update) and were ignored (store: redis).",
    (stats) => stats.badMessages,
  );
  mirror(
    "fair_state_redis_disconnects_total",
    "Times the Redis store stopped being ready (a connection dropped) (store: redis).",
    (stats) => stats.disconnects,
  );
  mirror(
    "fair_state_redis_restarts_total",
    "Times another Redis server answered after a reconnect (a restart, or a Sentinel failover; not counted on a Cluster) (store: redis).",
    (stats) => stats.redisRestarts,
  );
  mirror(
    "fair_state_redis_epoch_changes_total",
    "Times the state epoch changed after this replica first learned it: the epoch key was gone (Redis lost its data: a restart without it, a flush) and a new epoch began, so clients offer their views back (store: redis).",
    (stats) => stats.epochChanges,
  );
}
