import { type ClientId, ClientIdEncoder } from "./client-id.js";
import { type FairnessTrackerConfig, freezeConfig } from "./config.js";
import type { Engine, StructureIds, SyncStats } from "./engine.js";
import { FairnessTrackerError } from "./errors.js";
import { LocalEngine } from "./local-engine.js";
import { type FairnessTrackerOptions, resolveTrackerOptions } from "./options.js";
import type { Decision, Outcome, RegisterRequestResult } from "./results.js";
import { WindowEngine } from "./window-engine.js";

/**
 * FAIR, the fairness throttler (Stochastic Fair BLUE), as Go's `tracker.FairnessTracker`.
 * Ask it before each request whether to throttle; after a request that was not throttled and
 * actually tried the resource, report whether the resource was there.
 *
 * **Local mode** (the default) reproduces the Go library bit for bit: two structures with
 * random murmur seeds, rotated every `rotationFrequencyMs` on the injected timers.
 * **Distributed mode** (`options.distributed`) shares state with other instances through a
 * `StateLink`; see {@link DistributedOptions}.
 *
 * Every method is synchronous and none touches the network: in distributed mode the link
 * queues what is sent, and a lost link only means deciding on local state.
 *
 * @example
 * ```ts
 * const tracker = new FairnessTracker(defaultFairnessTrackerConfig());
 * if (tracker.registerRequest("client-42").shouldThrottle) return reply(429);
 * const ok = await tryTheResource();
 * tracker.reportOutcome("client-42", ok ? "success" : "failure");
 * tracker.close();
 * ```
 */
export class FairnessTracker {
  /** The config in effect: a frozen copy of the one given. */
  readonly config: FairnessTrackerConfig;
  /** `local` or `distributed`, fixed at construction. */
  readonly mode: "local" | "distributed";
  readonly #engine: Engine;
  readonly #now: () => number;
  readonly #encoder = new ClientIdEncoder();
  readonly #signal: AbortSignal | undefined;
  readonly #onDecision: ((decision: Decision) => void) | undefined;
  readonly #onError: ((error: FairnessTrackerError) => void) | undefined;
  readonly #onAbort = (): void => this.close();
  #closed = false;

  /**
   * Validates and freezes `config` and starts rotation (local mode) or joins the windows and
   * the link (distributed mode).
   *
   * @throws FairnessTrackerError `invalid_config` ("Configuration cannot be nil", or "Failed to
   *   create a structure: The input config failed validation: …"), `invalid_option` naming
   *   the bad option, or when `murmurSeed()` fails.
   */
  constructor(config: FairnessTrackerConfig, options: Partial<FairnessTrackerOptions> = {}) {
    if (config === null || config === undefined) {
      throw new FairnessTrackerError("invalid_config", "Configuration cannot be nil");
    }
    this.config = freezeConfig(config);
    const resolved = resolveTrackerOptions(options);
    this.#now = resolved.now;
    this.#onDecision = resolved.onDecision;
    this.#onError = resolved.onError;
    const distributed = resolved.distributed;
    this.mode = distributed === undefined ? "local" : "distributed";
    this.#engine =
      distributed === undefined
        ? new LocalEngine(this.config, resolved)
        : new WindowEngine(this.config, resolved, distributed);
    const signal = resolved.signal;
    this.#signal = signal;
    if (signal?.aborted) this.close();
    else signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /**
   * Decides whether to throttle a request from `clientId` (Go's `RegisterRequest`): the
   * client's buckets, one per level, combine through the final function into `pFinal`, and
   * the request is throttled when `random() <= pFinal`. The `onDecision` option, if given,
   * sees the decision before it is returned; nothing it does makes this throw.
   *
   * @throws FairnessTrackerError (`invalid_argument`) when `clientId` is neither a string nor
   *   a `Uint8Array`.
   */
  registerRequest(clientId: ClientId): RegisterRequestResult {
    this.#encoder.encode(clientId);
    const result = this.#engine.registerRequest(this.#encoder, Math.floor(this.#now()));
    // The one branch a tracker without a hook pays; the rest lives in #decided.
    if (this.#onDecision !== undefined) this.#decided(result.shouldThrottle);
    return result;
  }

  /**
   * Records what happened when a request from `clientId` used the resource (Go's
   * `ReportOutcome`): a failure adds `pi` to each of the client's buckets, a success subtracts
   * `pd`, clamped to [0, 1]. Report only real attempts on the resource.
   *
   * @throws FairnessTrackerError (`invalid_argument`) for a client id of the wrong type.
   */
  reportOutcome(clientId: ClientId, outcome: Outcome): void {
    this.#encoder.encode(clientId);
    this.#engine.reportOutcome(this.#encoder, outcome, Math.floor(this.#now()));
  }

  /**
   * Rotates now, as a timer tick would (local mode): a new structure with a fresh seed becomes
   * the secondary and the old secondary becomes main. For tests and simulations; it works
   * after `close()` too.
   *
   * @throws FairnessTrackerError `invalid_state` in distributed mode, where windows follow the
   *   clock; or the error of a failing `murmurSeed()`, leaving the structures as they were.
   */
  rotate(): void {
    this.#engine.rotate();
  }

  /**
   * Stops rotation (local mode) or leaves the link (distributed mode: unsubscribes, sends no
   * more). Idempotent. The tracker still answers afterwards, on the state it has, as Go's
   * does; it does not close the link, which the caller owns.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#engine.close();
  }

  /** Whether `close()` was called (or the signal aborted). */
  get closed(): boolean {
    return this.#closed;
  }

  /** The ids of the main and secondary structures; see {@link StructureIds}. */
  get structureIds(): StructureIds {
    return this.#engine.structureIds;
  }

  /** Distributed mode's counters of traffic with the link; zeros in local mode. */
  syncStats(): SyncStats {
    return this.#engine.syncStats();
  }

  /** Hands a decision to `onDecision`; a hook that throws is reported, never propagated. */
  #decided(throttled: boolean): void {
    const engine = this.#engine;
    const decision: Decision = {
      throttled,
      probability: engine.lastProbability,
      mode: this.mode,
      structureId: engine.mainStructureId,
    };
    try {
      this.#onDecision?.(decision);
    } catch (error) {
      try {
        this.#onError?.(
          new FairnessTrackerError(
            "decision_hook_failed",
            "onDecision threw; the decision stands",
            error,
          ),
        );
      } catch {
        // onError is where failures go; with nowhere left, the caller still gets its decision.
      }
    }
  }
}
