import type { Timers } from "@fair/timers";

/**
 * A repeating task on injected timers that can be started once, stopped any
 * number of times, and stopped by an `AbortSignal`. It leaves nothing behind
 * when stopped: no interval, no abort listener.
 */
export class IntervalTask {
  readonly #timers: Timers;
  readonly #intervalMs: number;
  readonly #run: () => void;
  #handle: unknown;
  #running = false;
  #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.stop();

  constructor(timers: Timers, intervalMs: number, run: () => void) {
    this.#timers = timers;
    this.#intervalMs = intervalMs;
    this.#run = run;
  }

  /** Whether the task is scheduled. */
  get running(): boolean {
    return this.#running;
  }

  /** Schedules the task; a no-op when running or when `signal` has already aborted. */
  start(signal?: AbortSignal): void {
    if (this.#running || signal?.aborted) return;
    this.#handle = this.#timers.setInterval(this.#run, this.#intervalMs);
    this.#running = true;
    if (signal !== undefined) {
      this.#signal = signal;
      signal.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  /** Unschedules the task; idempotent. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    this.#timers.clearInterval(this.#handle);
    this.#handle = undefined;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#signal = undefined;
  }
}
