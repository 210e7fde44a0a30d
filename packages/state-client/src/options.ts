import type { Transport } from "@connectrpc/connect";
import { systemTimers, type Timers } from "@fair/timers";
import { StateClientError } from "./errors.js";
import type { BucketValue } from "./state-link.js";

/**
 * The timers the client takes.
 *
 * @deprecated Use `Timers` (from this package or `@fair/timers`), which
 * every package takes; this name goes in the next release.
 */
export type ClientTimers = Timers;

/** Options of {@link StateClient}. Only `baseUrl` is required. */
export interface StateClientOptions {
  /** The server, e.g. `http://fair-state-server:50051` (HTTP/2 without TLS). Required unless `transport` is given. */
  baseUrl: string;
  /** The key space, sent as the `fair-state-namespace` header. Default `""`. */
  namespace: string;
  /**
   * Called with the server's aggregated buckets of one seed: broadcasts
   * (`fullState` false) and full-state replies (`fullState` true). Overwrite
   * local buckets with them. Default: none (use `subscribe()`).
   */
  onStateUpdate:
    | ((seed: bigint, buckets: readonly BucketValue[], fullState: boolean) => void)
    | undefined;
  /** The trackers' seed window in ms; compared with the server's. Default 300 000 (5 min). */
  windowMs: number;
  /**
   * λ, the trackers' decay rate per second (the tracker's `lambda`); used to
   * coalesce and compared with the server's `fair-state-decay-rate`. Default 0.01.
   */
  decayRatePerSecond: number;
  /**
   * The same λ per second under its old name; giving both is `invalid_option`.
   * Never set in resolved options.
   *
   * @deprecated Use `decayRatePerSecond`; `decayRate` goes in the next release.
   */
  decayRate?: number | undefined;
  /**
   * What a decay-rate mismatch with the server does: report an error event and go on
   * (`"warn"`), or also close (`"refuse"`). Default `"warn"`. A window mismatch always closes
   * the client, after the error event: the server would refuse every seed it sent, and the
   * client would only reconnect and be refused again.
   */
  onConfigMismatch: "warn" | "refuse";
  /** How long adjustments coalesce before they are sent, in ms. Default 50. */
  flushIntervalMs: number;
  /**
   * Most distinct buckets held unsent, through an outage of any length; adjustments to
   * further buckets are dropped and counted (`overflow`). Default 100 000.
   */
  maxPendingBuckets: number;
  /** Most deltas in one `DeltaUpdate`; a flush reaching it is sent at once. Default 10 000. */
  maxDeltasPerMessage: number;
  /**
   * Accepted for one release and ignored: unsent adjustments now wait through an outage of
   * any length, bounded by `maxPendingBuckets` (and dropped only once their seed is too old
   * to be live, `too_old`). A value given must still be a positive number. Never set in
   * resolved options.
   *
   * @deprecated Remove it; `maxSendAttempts` goes in the next release.
   */
  maxSendAttempts?: number | undefined;
  /** First reconnect delay in ms; it doubles per failed attempt, with full jitter. Default 100. */
  initialBackoffMs: number;
  /** Longest reconnect delay in ms. Default 10 000. */
  maxBackoffMs: number;
  /** Default timeout of `requestFullState`, in ms. Default 10 000. */
  requestTimeoutMs: number;
  /** HTTP/2 PING interval in ms, so a dead server or half-open connection is noticed. Default 5 000. */
  keepaliveIntervalMs: number;
  /** How long a PING may go unanswered before the connection is dropped, in ms. Default 5 000. */
  keepaliveTimeoutMs: number;
  /**
   * TLS for an `https://` `baseUrl`: the CA that signed the server's
   * certificate (default: the system's), and for mTLS the client's own
   * certificate and key (PEM). Default: none.
   */
  tls:
    | {
        readonly ca?: string | Buffer;
        readonly cert?: string | Buffer;
        readonly key?: string | Buffer;
      }
    | undefined;
  /** A bearer token sent as `authorization: Bearer <token>` on every stream. Default: none. */
  authToken: string | undefined;
  /** A Connect transport to use instead of one built from `baseUrl` (custom transports, in-memory tests). Default: none. */
  transport: Transport | undefined;
  /** The clock, Unix ms. Default `Date.now`. */
  now: () => number;
  /** Timers for flushes, backoff and request timeouts (only the one-shot functions are used). Default `systemTimers` (`@fair/timers`). */
  timers: Timers;
  /** Randomness for backoff jitter, in [0, 1). Default `Math.random`. */
  random: () => number;
}

/** The defaults of {@link StateClientOptions}. */
export const defaultStateClientOptions: Readonly<StateClientOptions> = Object.freeze({
  baseUrl: "",
  namespace: "",
  onStateUpdate: undefined,
  windowMs: 300_000,
  decayRatePerSecond: 0.01,
  onConfigMismatch: "warn",
  flushIntervalMs: 50,
  maxPendingBuckets: 100_000,
  maxDeltasPerMessage: 10_000,
  initialBackoffMs: 100,
  maxBackoffMs: 10_000,
  requestTimeoutMs: 10_000,
  keepaliveIntervalMs: 5_000,
  keepaliveTimeoutMs: 5_000,
  tls: undefined,
  authToken: undefined,
  transport: undefined,
  now: Date.now,
  timers: systemTimers,
  random: Math.random,
});

const positive = [
  "windowMs",
  "flushIntervalMs",
  "maxPendingBuckets",
  "maxDeltasPerMessage",
  "initialBackoffMs",
  "maxBackoffMs",
  "requestTimeoutMs",
  "keepaliveIntervalMs",
  "keepaliveTimeoutMs",
] as const;

/** Fills in defaults and checks every option; throws `invalid_option` naming the first bad one. */
export function resolveOptions(options: Partial<StateClientOptions>): StateClientOptions {
  const resolved: StateClientOptions = { ...defaultStateClientOptions };
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) (resolved as unknown as Record<string, unknown>)[key] = value;
  }
  const bad = (name: string, problem: string) =>
    new StateClientError("invalid_option", `${name}: ${problem}`);
  if (resolved.transport === undefined && !/^https?:\/\/[^/]+/.test(resolved.baseUrl)) {
    throw bad(
      "baseUrl",
      `expected "http://host:port" or "https://host:port", got ${JSON.stringify(resolved.baseUrl)}`,
    );
  }
  for (const key of positive) {
    const value = resolved[key];
    if (!Number.isFinite(value) || value <= 0)
      throw bad(key, `expected a positive number, got ${value}`);
  }
  // The deprecated name means the same option, for one release.
  const lambdaName = resolved.decayRate === undefined ? "decayRatePerSecond" : "decayRate";
  if (resolved.decayRate !== undefined) {
    if (options.decayRatePerSecond !== undefined) {
      throw bad(
        "decayRate",
        "both decayRate (deprecated) and decayRatePerSecond are given: keep only decayRatePerSecond",
      );
    }
    resolved.decayRatePerSecond = resolved.decayRate;
    delete resolved.decayRate;
  }
  // Deprecated and ignored, for one release; a bad value is still a mistake worth naming.
  if (resolved.maxSendAttempts !== undefined) {
    const attempts = resolved.maxSendAttempts;
    if (!Number.isFinite(attempts) || attempts <= 0)
      throw bad("maxSendAttempts", `expected a positive number, got ${attempts}`);
    delete resolved.maxSendAttempts;
  }
  if (!Number.isFinite(resolved.decayRatePerSecond) || resolved.decayRatePerSecond < 0) {
    throw bad(lambdaName, `expected a finite number ≥ 0, got ${resolved.decayRatePerSecond}`);
  }
  if (resolved.maxBackoffMs < resolved.initialBackoffMs) {
    throw bad("maxBackoffMs", `must be at least initialBackoffMs (${resolved.initialBackoffMs})`);
  }
  if (resolved.onConfigMismatch !== "warn" && resolved.onConfigMismatch !== "refuse") {
    throw bad(
      "onConfigMismatch",
      `expected "warn" or "refuse", got ${JSON.stringify(resolved.onConfigMismatch)}`,
    );
  }
  if (typeof resolved.namespace !== "string") throw bad("namespace", "expected a string");
  if (
    resolved.tls !== undefined &&
    !resolved.baseUrl.startsWith("https://") &&
    resolved.transport === undefined
  ) {
    throw bad(
      "tls",
      `given for ${JSON.stringify(resolved.baseUrl)}; TLS needs an https:// baseUrl`,
    );
  }
  if (resolved.authToken !== undefined && !/^[\x21-\x7e]+$/.test(resolved.authToken)) {
    throw bad("authToken", "expected printable characters without spaces");
  }
  return resolved;
}
