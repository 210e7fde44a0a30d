import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
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
 * every interval (and by the server once more at the end). The file's
 * directory is created at start if it is missing, so a default state
 * directory works on a fresh machine. A snapshot that cannot be read is set
 * aside and the store starts empty; a directory that cannot be made, or a
 * write that fails, is logged (and a write counted), and the next write
 * tries again — none of these stops the server. Both directions stream
 * through the store's `StorePersistence` a chunk at a time, so the server
 * keeps serving while a large store is written or read.
 */
export class SnapshotSchedule {
  readonly #options: SnapshotScheduleOptions;
  readonly #writer: SnapshotWriter;
  #timer: unknown;
  #takenAtMs: number | undefined;

  constructor(options: SnapshotScheduleOptions) {
    this.#options = options;
    this.#writer = new SnapshotWriter(
      options.path,
      () => options.persistence.snapshot(),
      options.now,
    );
  }

  /**
   * When the snapshot on disk was taken, in Unix ms: the last one this
   * schedule wrote, or until then the one it restored (as the snapshot
   * says); `undefined` while there is none.
   */
  get takenAtMs(): number | undefined {
    return this.#takenAtMs;
  }

  /**
   * Creates the file's directory if it is missing, restores the snapshot at
   * the path (if any), then starts writing on the interval. One log line says
   * what was found (and that the directory was created, when it was).
   */
  async start(): Promise<void> {
    const { path, persistence, logger, timers, intervalMs, now } = this.#options;
    const createdDirectory = await this.#makeDirectory();
    await removeStaleTemporaries(path);
    const started = now();
    const loaded = await loadSnapshotFile(path, persistence, started);
    const durationMs = now() - started;
    const created = createdDirectory === undefined ? {} : { createdDirectory };
    if (loaded.kind === "set_aside") {
      logger.error(
        { path, ...loaded, durationMs, ...created },
        "snapshot unreadable: set aside, starting empty",
      );
    } else {
      if (loaded.kind === "loaded") this.#takenAtMs = loaded.takenAtMs;
      logger.info(
        { path, ...loaded, durationMs, ...created },
        createdDirectory === undefined
          ? "snapshot"
          : `snapshot: created its directory ${createdDirectory}`,
      );
    }
    this.#timer = timers.setInterval(() => void this.write(), intervalMs);
  }

  /** Makes the snapshot's directory, recursively; returns the first one made, if any. */
  async #makeDirectory(): Promise<string | undefined> {
    const { path, logger } = this.#options;
    try {
      return await mkdir(dirname(path), { recursive: true });
    } catch (error) {
      // Every write will fail and say so too; the server still serves.
      logger.error({ path, err: error }, "snapshot directory cannot be created");
      return undefined;
    }
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
      this.#takenAtMs = await this.#writer.write();
      metrics.snapshotWrites.labels("ok").inc();
    } catch (error) {
      metrics.snapshotWrites.labels("error").inc();
      logger.error({ path, err: error }, "snapshot write failed");
    }
  }
}
