import type { StorePersistence } from "@fair/state-store";
import type { Timers } from "@fair/timers";
import type { ServerLogger } from "./logger.js";
import type { StateServerMetrics } from "./metrics.js";
import { loadSnapshotFile, removeStaleTemporaries, SnapshotWriter } from "./snapshot-file.js";

/** Where and how often a store is snapshotted. */
export interface SnapshotScheduleOptions {
  readonly path: string;
  readonly intervalMs: number;
  readonly persistence: StorePersistence;
  readonly metrics: StateServerMetrics;
  readonly logger: ServerLogger;
  readonly timers: Timers;
  readonly now: () => number;
}

/**
 * A store's snapshots on disk: restored once before serving, then written
 * every interval (and by the server once more at the end). A snapshot that cannot be read is set
 * aside and the store starts empty; a write that fails is logged and counted,
 * and the next one tries again — neither stops the server. Both directions
 * stream through the store's `StorePersistence` a chunk at a time, so the
 * server keeps serving while a large store is written or read.
 */
export class SnapshotSchedule {
  readonly #options: SnapshotScheduleOptions;
  readonly #writer: SnapshotWriter;
  #timer: unknown;

  constructor(options: SnapshotScheduleOptions) {
    this.#options = options;
    this.#writer = new SnapshotWriter(options.path, () => options.persistence.snapshot());
  }

  /** Restores the snapshot at the path (if any), then starts writing on the interval. */
  async start(): Promise<void> {
    const { path, persistence, logger, timers, intervalMs, now } = this.#options;
    await removeStaleTemporaries(path);
    const started = now();
    const loaded = await loadSnapshotFile(path, persistence, started);
    const durationMs = now() - started;
    if (loaded.kind === "set_aside") {
      logger.error(
        { path, ...loaded, durationMs },
        "snapshot unreadable: set aside, starting empty",
      );
    } else {
      logger.info({ path, ...loaded, durationMs }, "snapshot");
    }
    this.#timer = timers.setInterval(() => void this.write(), intervalMs);
  }

  /** Stops the interval; a write in progress finishes. Idempotent. */
  stop(): void {
    if (this.#timer !== undefined) this.#options.timers.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Writes one snapshot now (after any write in progress); failures are logged and counted. */
  async write(): Promise<void> {
    const { metrics, logger, path } = this.#options;
    try {
      await this.#writer.write();
      metrics.snapshotWrites.labels("ok").inc();
    } catch (error) {
      metrics.snapshotWrites.labels("error").inc();
      logger.error({ path, err: error }, "snapshot write failed");
    }
  }
}
