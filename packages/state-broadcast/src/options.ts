import { systemTimers, type Timers } from "@fair/timers";
import type { BatchEncoder } from "./batch.js";
import { BroadcastError } from "./errors.js";

/** How a {@link Hub} batches, bounds and times its deliveries. */
export interface HubOptions {
  /**
   * Milliseconds between flushes. `0` delivers one batch per `publish()`
   * (split at `maxBucketsPerBatch`); above zero, updates coalesce per key
   * (latest value wins) and are flushed every interval. Default `0`.
   */
  readonly broadcastIntervalMs: number;
  /**
   * Most buckets in one batch. Larger publishes, flushes and change-log reads
   * are split. Default `1024`: about 30 KB encoded, under HTTP/2's initial
   * 64 KiB flow-control window, so one message never waits for a window update.
   */
  readonly maxBucketsPerBatch: number;
  /**
   * Undelivered buckets a subscriber may hold as references to shared batches
   * before it falls behind: it then drops them and reads the latest value per
   * key from the namespace's change log when it can take again. Below it a
   * subscriber costs O(1) per batch and gets the shared (encode-once)
   * batches; behind, it costs nothing per publish. Judged when a publish or
   * flush arrives, on what is left from earlier ones, so one large flush
   * never puts a subscriber behind just for its size. Capped at
   * `maxPendingKeysPerSubscriber`. Default `8192` (eight full batches).
   */
  readonly mergeAfterPendingBuckets: number;
  /**
   * Caps `mergeAfterPendingBuckets`, and nothing else.
   *
   * @deprecated No longer closes anyone. It closed a subscriber with more
   * distinct keys pending than this when a publish or flush arrived, even
   * one that was draining steadily; but a subscriber that is behind holds
   * only a cursor into the namespace's change log (its backlog costs no
   * memory of its own), so only a subscriber that stops taking is closed
   * now, by `maxStallMs`. Still validated; goes in the next release.
   * Default `262144`.
   */
  readonly maxPendingKeysPerSubscriber: number;
  /**
   * Milliseconds a subscriber may hold undelivered updates without taking
   * any before it is closed with `slow_consumer`; `Infinity` disables the
   * rule, and then no subscriber is ever closed for being slow. The only
   * rule that closes a subscriber for being slow: one that takes a batch
   * within every `maxStallMs`, however far behind, is never closed (behind,
   * it reads the latest value per key when it takes). Checked on every
   * publish or flush and every quarter of this period. Default `10000`.
   */
  readonly maxStallMs: number;
  /** Current time in milliseconds. Default `Date.now`. */
  readonly now: () => number;
  /** Timers for flushes and stall sweeps (only the interval functions are used). Default `systemTimers` (`@fair/timers`). */
  readonly timers: Timers;
  /** Encodes a batch once for all its subscribers (see `Hub.encode`). No default: `encode()` throws without it. */
  readonly encode?: BatchEncoder;
  /** Stops the hub when aborted, as `stop()` does. No default. */
  readonly signal?: AbortSignal;
}

/** The defaults of every {@link HubOptions} field that has one. */
export const defaultHubOptions: Readonly<Omit<HubOptions, "encode" | "signal">> = Object.freeze({
  broadcastIntervalMs: 0,
  maxBucketsPerBatch: 1024,
  mergeAfterPendingBuckets: 8192,
  maxPendingKeysPerSubscriber: 262_144,
  maxStallMs: 10_000,
  now: () => Date.now(),
  // Unref'd: the hub's upkeep alone should not keep a process alive; the
  // streams and listeners that use it do.
  timers: systemTimers,
});

/**
 * The defaults of every {@link HubOptions} field that has one.
 *
 * @deprecated Renamed `defaultHubOptions`, as every package names its
 * defaults; this name goes in the next release.
 */
export const DEFAULT_HUB_OPTIONS = defaultHubOptions;

/** Merges `input` over the defaults and checks every field, naming the first bad one. */
export function resolveHubOptions(input: Partial<HubOptions> = {}): HubOptions {
  const options: Record<string, unknown> = { ...defaultHubOptions };
  // A field given as `undefined` (say, from an unset config value) means "the default".
  for (const [name, value] of Object.entries(input)) {
    if (value !== undefined) options[name] = value;
  }
  const resolved = options as unknown as HubOptions;
  checkNumber("broadcastIntervalMs", resolved.broadcastIntervalMs, 0, false);
  checkNumber("maxBucketsPerBatch", resolved.maxBucketsPerBatch, 1, true);
  checkNumber("mergeAfterPendingBuckets", resolved.mergeAfterPendingBuckets, 1, true);
  checkNumber("maxPendingKeysPerSubscriber", resolved.maxPendingKeysPerSubscriber, 1, true);
  if (resolved.maxStallMs !== Number.POSITIVE_INFINITY) {
    checkNumber("maxStallMs", resolved.maxStallMs, 1, false);
  }
  if (typeof resolved.now !== "function")
    invalid("now", "must be a function returning milliseconds");
  const timers: Partial<Timers> | null | undefined = resolved.timers;
  if (typeof timers?.setInterval !== "function" || typeof timers.clearInterval !== "function") {
    invalid("timers", "must have setInterval(fn, ms) and clearInterval(handle) functions");
  }
  if (resolved.encode !== undefined && typeof resolved.encode !== "function") {
    invalid("encode", "must be a function from a batch to a Uint8Array");
  }
  if (resolved.signal !== undefined && !(resolved.signal instanceof AbortSignal)) {
    invalid("signal", "must be an AbortSignal");
  }
  return resolved;
}

function checkNumber(name: string, value: unknown, min: number, integer: boolean): void {
  const kind = integer ? "an integer" : "a finite number";
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    invalid(name, `must be ${kind} >= ${min}, got ${String(value)}`);
  }
  if (integer && !Number.isInteger(value)) invalid(name, `must be ${kind}, got ${String(value)}`);
}

function invalid(name: string, problem: string): never {
  throw new BroadcastError("invalid_option", `HubOptions.${name} ${problem}`);
}
