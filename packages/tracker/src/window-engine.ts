import type { BucketDelta, BucketValue, StateLink } from "@fair/state-client";
import { type BaseHashes, baseHashes, bucketColumn } from "./bucket-index.js";
import type { ClientIdEncoder } from "./client-id.js";
import type { FairnessTrackerConfig } from "./config.js";
import { type Engine, noSyncStats, type StructureIds, type SyncStats } from "./engine.js";
import { FairnessTrackerError } from "./errors.js";
import type { DistributedOptions, FairnessTrackerOptions } from "./options.js";
import { decision, type Outcome, type RegisterRequestResult } from "./results.js";
import { WindowReplica } from "./window-replica.js";
import { windowMurmurSeed } from "./window-seed.js";

type Counters = { -readonly [K in keyof SyncStats]: number };

/**
 * Distributed mode (docs/design.md §3, docs/evaluation.md §2.5–2.6). During window `w` (of `rotationFrequencyMs`,
 * aligned to the wall clock) main is the replica of seed `S_w` and the secondary that of
 * `S_{w+1}`. Decisions read main and change nothing. An outcome is applied to both replicas
 * at once and sent to the link as raw adjustments (`+Pi` / `−Pd`) for both seeds; decay is the
 * server's business. Whatever the link delivers overwrites local buckets. Full state is
 * requested for both windows at start and for the new secondary at a window change; after a
 * reconnect the link asks again for what it was asked for (the `StateLink` contract), so the
 * tracker does not. When the link reports a new state epoch (the service lost what it held),
 * the tracker offers both replicas back (learning mode, docs/design.md §8) before anything of
 * the new epoch overwrites them.
 */
export class WindowEngine implements Engine {
  readonly #config: FairnessTrackerConfig;
  readonly #options: FairnessTrackerOptions;
  readonly #trackerId: string;
  readonly #link: StateLink | undefined;
  readonly #decayPerMs: number;
  #window: number;
  #main: WindowReplica;
  #secondary: WindowReplica;
  #unsubscribe: (() => void) | undefined;
  #lastProbability = Number.NaN;
  readonly #counters: Counters = { ...noSyncStats };
  readonly #mainHashes: BaseHashes = { hash1: 0, hash2: 0 };
  readonly #secondaryHashes: BaseHashes = { hash1: 0, hash2: 0 };

  constructor(
    config: FairnessTrackerConfig,
    options: FairnessTrackerOptions,
    distributed: DistributedOptions,
  ) {
    if (!Number.isInteger(config.rotationFrequencyMs)) {
      // Seeds are window starts in whole ms; the State Service refuses any other.
      throw new FairnessTrackerError(
        "invalid_config",
        `in distributed mode RotationFrequency must be a whole number of ms, found ${config.rotationFrequencyMs}`,
      );
    }
    this.#config = config;
    this.#options = options;
    this.#trackerId = distributed.trackerId;
    // A link set up for another window would carry seeds its server refuses:
    // say so, and share nothing through it (this tracker runs on its own
    // state, as when the service is down).
    const mismatch = configMismatch(config, distributed.link);
    if (mismatch !== undefined)
      options.onError?.(new FairnessTrackerError("config_mismatch", mismatch));
    this.#link = mismatch === undefined ? distributed.link : undefined;
    // The State Service decays with λ/1000 per ms; the same expression keeps replicas bit-equal to it.
    this.#decayPerMs = config.lambda / 1000;
    this.#window = this.#windowOf(Math.floor(options.now()));
    this.#main = this.#replica(this.#window);
    this.#secondary = this.#replica(this.#window + 1);
    const link = this.#link;
    if (link !== undefined) {
      this.#unsubscribe = link.subscribe({
        onStateUpdate: (seed, buckets) => this.#receive(seed, buckets),
        onEpochChange: () => this.#offer(),
        // The link found that its server disagrees with it (so with us).
        onConfigMismatch: (message) =>
          options.onError?.(new FairnessTrackerError("config_mismatch", message)),
      });
      this.#requestFullState(this.#main);
      this.#requestFullState(this.#secondary);
    }
  }

  get structureIds(): StructureIds {
    return { main: this.#main.seedMs, secondary: this.#secondary.seedMs };
  }

  get mainStructureId(): number {
    return this.#main.seedMs;
  }

  get lastProbability(): number {
    return this.#lastProbability;
  }

  registerRequest(id: ClientIdEncoder, nowMs: number): RegisterRequestResult {
    this.#advance(nowMs);
    const { l, m, includeStats, finalProbabilityFunction } = this.#config;
    const main = this.#main;
    const h = this.#mainHashes;
    baseHashes(id, main.murmurSeed, h);
    const { hash1, hash2 } = h;
    const probabilities: number[] = [];
    const indexes: number[] | undefined = includeStats ? [] : undefined;
    for (let level = 0; level < l; level++) {
      const column = bucketColumn(hash1, hash2, level, m);
      probabilities.push(main.read(level * m + column, nowMs, this.#decayPerMs));
      indexes?.push(column);
    }
    const finalProbability = finalProbabilityFunction(probabilities);
    this.#lastProbability = finalProbability;
    const shouldThrottle = this.#options.random() <= finalProbability;
    const stats =
      indexes === undefined
        ? undefined
        : { finalProbability, bucketIndexes: indexes, bucketProbabilities: probabilities };
    return decision(shouldThrottle, stats);
  }

  reportOutcome(id: ClientIdEncoder, outcome: Outcome, nowMs: number): void {
    this.#advance(nowMs);
    const adjustment = outcome === "success" ? -this.#config.pd : this.#config.pi;
    const main = this.#main;
    const secondary = this.#secondary;
    // Hash for both windows before anything reaches the link, which may call back.
    baseHashes(id, main.murmurSeed, this.#mainHashes);
    baseHashes(id, secondary.murmurSeed, this.#secondaryHashes);
    const mainDeltas = this.#apply(main, this.#mainHashes, adjustment, nowMs);
    const secondaryDeltas = this.#apply(secondary, this.#secondaryHashes, adjustment, nowMs);
    if (this.#unsubscribe === undefined) return;
    this.#send(main.seed, mainDeltas);
    this.#send(secondary.seed, secondaryDeltas);
  }

  rotate(): void {
    throw new FairnessTrackerError(
      "invalid_state",
      "a distributed tracker rotates with its clock's windows; rotate() is for local mode",
    );
  }

  close(): void {
    const unsubscribe = this.#unsubscribe;
    this.#unsubscribe = undefined;
    unsubscribe?.();
  }

  syncStats(): SyncStats {
    return { ...this.#counters };
  }

  /** Applies one outcome to `replica` and returns the deltas that tell the server. */
  #apply(replica: WindowReplica, h: BaseHashes, a: number, nowMs: number): BucketDelta[] {
    const { l, m } = this.#config;
    const deltas: BucketDelta[] = [];
    for (let level = 0; level < l; level++) {
      const column = bucketColumn(h.hash1, h.hash2, level, m);
      replica.apply(level * m + column, a, nowMs, this.#decayPerMs);
      deltas.push({ rowId: level, colId: column, deltaProb: a, lastUpdateTimeMs: nowMs });
    }
    return deltas;
  }

  #send(seed: bigint, deltas: BucketDelta[]): void {
    const counters = this.#counters;
    try {
      this.#link?.sendDeltaUpdate(seed, deltas);
      counters.updatesSent++;
      counters.deltasSent += deltas.length;
    } catch {
      // The caller is on its request path; local state has the outcome either way.
      counters.sendErrors++;
    }
  }

  /** Moves to the window holding `nowMs`; a clock that steps back keeps the current one. */
  #advance(nowMs: number): void {
    const window = this.#windowOf(nowMs);
    if (window <= this.#window) return;
    if (window === this.#window + 1) {
      // S_{w+1} has had every outcome for a whole window: as warm as Go's promoted secondary.
      this.#main = this.#secondary;
      this.#secondary = this.#replica(window + 1);
    } else {
      // Idle for more than a window: nothing held is current, start as at cold start.
      this.#main = this.#replica(window);
      this.#secondary = this.#replica(window + 1);
      this.#requestFullState(this.#main);
    }
    this.#window = window;
    this.#requestFullState(this.#secondary);
  }

  #windowOf(nowMs: number): number {
    return Math.floor(nowMs / this.#config.rotationFrequencyMs);
  }

  #replica(window: number): WindowReplica {
    const seedMs = window * this.#config.rotationFrequencyMs;
    const murmurSeed = windowMurmurSeed(seedMs, this.#trackerId);
    return new WindowReplica(seedMs, murmurSeed, this.#config.l * this.#config.m);
  }

  #receive(seed: bigint, buckets: readonly BucketValue[]): void {
    const replica =
      seed === this.#main.seed
        ? this.#main
        : seed === this.#secondary.seed
          ? this.#secondary
          : undefined;
    const counters = this.#counters;
    if (replica === undefined) {
      counters.bucketsIgnored += buckets.length;
      return;
    }
    const { l, m } = this.#config;
    for (const { rowId, colId, prob, lastUpdateTimeMs } of buckets) {
      const usable =
        Number.isInteger(rowId) &&
        Number.isInteger(colId) &&
        rowId >= 0 &&
        rowId < l &&
        colId >= 0 &&
        colId < m &&
        prob >= 0 &&
        prob <= 1 &&
        Number.isFinite(lastUpdateTimeMs);
      if (usable) {
        replica.overwrite(rowId * m + colId, prob, lastUpdateTimeMs);
        counters.bucketsApplied++;
      } else {
        counters.bucketsIgnored++;
      }
    }
  }

  /** Offers what both replicas hold to the link: the state a new epoch learns back. */
  #offer(): void {
    const link = this.#link;
    if (link === undefined) return;
    const counters = this.#counters;
    counters.epochChanges++;
    for (const replica of [this.#main, this.#secondary]) {
      const buckets = replica.held(this.#config.m);
      if (buckets.length === 0) continue;
      counters.bucketsOffered += buckets.length;
      try {
        link.offerState(replica.seed, buckets);
      } catch {
        // The contract says a link never throws; local state is intact either way.
        counters.sendErrors++;
      }
    }
  }

  #requestFullState(replica: WindowReplica): void {
    const link = this.#link;
    if (link === undefined || this.#unsubscribe === undefined) return;
    const counters = this.#counters;
    counters.fullStateRequests++;
    try {
      // The reply also reaches the listener, which applies it; the promise only reports failure.
      Promise.resolve(link.requestFullState(replica.seed)).then(undefined, () => {
        counters.fullStateFailures++;
      });
    } catch {
      counters.fullStateFailures++;
    }
  }
}

/** Why `link` cannot serve a tracker of `config`, or `undefined` when it can (or does not say). */
function configMismatch(
  config: FairnessTrackerConfig,
  link: StateLink | undefined,
): string | undefined {
  const problems: string[] = [];
  if (link?.windowMs !== undefined && link.windowMs !== config.rotationFrequencyMs) {
    problems.push(
      `the tracker's rotationFrequencyMs is ${config.rotationFrequencyMs}, its link's windowMs ${link.windowMs}`,
    );
  }
  if (link?.decayRatePerSecond !== undefined && link.decayRatePerSecond !== config.lambda) {
    problems.push(
      `the tracker's lambda is ${config.lambda}, its link's decayRatePerSecond ${link.decayRatePerSecond}`,
    );
  }
  if (problems.length === 0) return undefined;
  return `${problems.join("; ")}: tracker, link and State Service must agree (the server's values are authoritative); the tracker shares nothing through this link and runs on its own state`;
}
