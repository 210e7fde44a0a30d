import type { StateLink } from "@fair/state-client";
import { systemTimers, type Timers } from "@fair/timers";
import { FairnessTrackerError } from "./errors.js";
import type { Decision } from "./results.js";

/**
 * The timers the tracker takes.
 *
 * @deprecated Use `Timers` (from this package or `@fair/timers`), which every package takes,
 * so one object drives them all; this name goes in the next release.
 */
export type TrackerTimers = Timers;

/**
 * Distributed mode (docs/design.md §3 "Tracker in distributed mode"): the tracker's structures follow
 * wall-clock windows of `rotationFrequencyMs`, hashed with seeds every instance derives alike,
 * and share state with the other instances through a {@link StateLink}.
 */
export interface DistributedOptions {
  /**
   * The tracker's id, the same on every instance of it (say, the protected resource's name).
   * It salts the murmur seeds (`windowMurmurSeed`), so different trackers do not share
   * collision patterns. Required.
   */
  readonly trackerId: string;
  /**
   * The link to the State Service (`StateClient` from `@fair/state-client`, or an in-process
   * implementation). Without one the tracker runs distributed semantics on its own state
   * only: what an instance does while the service is unreachable. The tracker asks for full
   * state at start and at window changes only; a link that can disconnect asks again itself
   * after it reconnects, as the `StateLink` contract requires.
   */
  readonly link?: StateLink;
}

/**
 * How a {@link FairnessTracker} tells time, draws, schedules and reports its decisions. Every
 * field is optional.
 */
export interface FairnessTrackerOptions {
  /**
   * The clock, Unix milliseconds; fractions are floored, as Go's `UnixMilli()` does. Read once
   * per call. Default `Date.now`.
   */
  readonly now: () => number;
  /**
   * The throttle draw, uniform in [0, 1): a request is throttled when `random() <= pFinal`.
   * Local mode draws exactly twice per `registerRequest` (main, then secondary, as Go does),
   * distributed mode once; `reportOutcome` never draws. Default `Math.random`.
   */
  readonly random: () => number;
  /**
   * Local mode: the murmur seed of each new structure, a uint32 (Go draws `rand.Uint32()`).
   * Called for the main structure, then the secondary, then once per rotation. Default: a
   * value from `crypto.getRandomValues`, so outsiders cannot predict collisions.
   */
  readonly murmurSeed: () => number;
  /** Local mode: timers for the rotation interval (only the interval functions are used). Default `systemTimers` (`@fair/timers`), `unref()`ed. */
  readonly timers: Timers;
  /** Aborting it closes the tracker, as `close()` does. */
  readonly signal?: AbortSignal;
  /**
   * Called when a scheduled rotation fails (rotation then stops, as in Go) and when
   * `onDecision` throws. Default: a process warning (`process.emitWarning`). It should not
   * throw; if it does while reporting a throwing `onDecision`, that error is dropped, so
   * `registerRequest` still returns its decision.
   */
  readonly onError?: (error: FairnessTrackerError) => void;
  /**
   * Called synchronously once per decision: by every `registerRequest` that returns, after the
   * draw and before the result is returned, in both modes and after `close()` too. Not called
   * when `registerRequest` throws (a client id of the wrong type, a throwing final function):
   * no decision was made. Meant for counters (`fair_requests_total`,
   * `fair_throttled_requests_total`): it runs on the request path, so keep it cheap.
   *
   * It must not throw. If it does, the decision stands (`registerRequest` returns it as if
   * nothing happened) and the error goes to `onError` as a `FairnessTrackerError` with code
   * `decision_hook_failed`, once per throw. Default: none, and then nothing is built for it.
   */
  readonly onDecision?: (decision: Decision) => void;
  /** Turns on distributed mode; see {@link DistributedOptions}. */
  readonly distributed?: DistributedOptions;
}

const seedBuffer = new Uint32Array(1);

/** The defaults of every {@link FairnessTrackerOptions} field that has one. */
export const defaultTrackerOptions: Readonly<
  Pick<FairnessTrackerOptions, "now" | "random" | "murmurSeed" | "timers" | "onError">
> = Object.freeze({
  now: () => Date.now(),
  random: () => Math.random(),
  murmurSeed: () => crypto.getRandomValues(seedBuffer)[0] as number,
  // Unref'd: rotation alone should not keep a process alive.
  timers: systemTimers,
  onError: (error: FairnessTrackerError) => process.emitWarning(error),
});

/** Merges `input` over the defaults and checks every field, naming the first bad one. */
export function resolveTrackerOptions(
  input: Partial<FairnessTrackerOptions> = {},
): FairnessTrackerOptions {
  const merged: Record<string, unknown> = { ...defaultTrackerOptions };
  // A field given as `undefined` means "the default".
  for (const [name, value] of Object.entries(input)) {
    if (value !== undefined) merged[name] = value;
  }
  const options = merged as unknown as FairnessTrackerOptions;
  for (const name of ["now", "random", "murmurSeed", "onError"] as const) {
    if (typeof options[name] !== "function") invalid(name, "must be a function");
  }
  if (options.onDecision !== undefined && typeof options.onDecision !== "function") {
    invalid("onDecision", "must be a function");
  }
  const timers: Partial<Timers> | null | undefined = options.timers;
  if (typeof timers?.setInterval !== "function" || typeof timers.clearInterval !== "function") {
    invalid("timers", "must have setInterval(fn, ms) and clearInterval(handle) functions");
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    invalid("signal", "must be an AbortSignal");
  }
  const distributed = options.distributed;
  if (distributed !== undefined) {
    if (distributed === null || typeof distributed.trackerId !== "string") {
      invalid("distributed.trackerId", "must be a string");
    }
    const link: Partial<StateLink> | undefined = distributed.link;
    if (
      link !== undefined &&
      (typeof link?.sendDeltaUpdate !== "function" ||
        typeof link.requestFullState !== "function" ||
        typeof link.offerState !== "function" ||
        typeof link.subscribe !== "function")
    ) {
      invalid(
        "distributed.link",
        "must implement StateLink: sendDeltaUpdate, requestFullState, offerState and subscribe functions",
      );
    }
  }
  return options;
}

function invalid(name: string, problem: string): never {
  throw new FairnessTrackerError("invalid_option", `FairnessTrackerOptions.${name} ${problem}`);
}
