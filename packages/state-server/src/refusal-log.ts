import type { ServerLogger } from "./logger.js";

/** How many refusals {@link RefusalLog} writes a line for, per interval. */
export interface RefusalLogLimits {
  /** Lines per interval; the rest are counted. Default 20. */
  readonly burst?: number;
  /** The interval, in ms. Default 10 000. */
  readonly intervalMs?: number;
}

/**
 * Warn lines for refused streams (bad tokens, limits, invalid input), at
 * most `burst` per `intervalMs`, so that a client refused thousands of
 * times a second cannot flood the log (or the disk behind it). The refusals
 * past the burst are counted by gRPC code and reported in one line, the
 * next time a refusal is logged after the interval ends, or at
 * {@link RefusalLog.flush} (server shutdown). No timer: a quiet server
 * writes nothing.
 */
export class RefusalLog {
  readonly #logger: ServerLogger;
  readonly #now: () => number;
  readonly #burst: number;
  readonly #intervalMs: number;
  #intervalStart = Number.NEGATIVE_INFINITY;
  #logged = 0;
  /** Refusals not logged in the current interval, by code. */
  #suppressed = new Map<string, number>();

  constructor(logger: ServerLogger, now: () => number, limits: RefusalLogLimits = {}) {
    this.#logger = logger;
    this.#now = now;
    this.#burst = limits.burst ?? 20;
    this.#intervalMs = limits.intervalMs ?? 10_000;
  }

  /** Logs one refusal (fields carry its `code`), or counts it when the interval's burst is spent. */
  warn(fields: { readonly code: string } & Record<string, unknown>, message: string): void {
    const now = this.#now();
    if (now - this.#intervalStart >= this.#intervalMs) {
      this.flush();
      this.#intervalStart = now;
      this.#logged = 0;
    }
    if (this.#logged < this.#burst) {
      this.#logged++;
      this.#logger.warn(fields, message);
      return;
    }
    this.#suppressed.set(fields.code, (this.#suppressed.get(fields.code) ?? 0) + 1);
  }

  /** Reports the refusals counted but not logged, if any. */
  flush(): void {
    if (this.#suppressed.size === 0) return;
    const byCode = Object.fromEntries(this.#suppressed);
    const count = [...this.#suppressed.values()].reduce((sum, n) => sum + n, 0);
    this.#suppressed = new Map();
    this.#logger.warn(
      { suppressed: count, byCode, intervalMs: this.#intervalMs },
      `${count} more refused Sync streams were not logged (at most ${this.#burst} lines per ${this.#intervalMs} ms); the fair_state_* counters count every one`,
    );
  }
}
