import { type BaseHashes, baseHashes } from "./bucket-index.js";
import type { ClientIdEncoder } from "./client-id.js";
import type { FairnessTrackerConfig } from "./config.js";
import { type Engine, noSyncStats, type StructureIds, type SyncStats } from "./engine.js";
import { FairnessTrackerError } from "./errors.js";
import type { FairnessTrackerOptions } from "./options.js";
import type { Outcome, RegisterRequestResult } from "./results.js";
import { Structure } from "./structure.js";

/**
 * Go's `FairnessTracker` (docs/fair-spec.md §8): a main and a secondary structure, each with its own
 * random murmur seed. Both see every register and report, so the secondary is warm when a
 * rotation promotes it; decisions come from main. A rotation creates the new structure (and
 * draws its seed) first, then shifts: main ← secondary, secondary ← new.
 */
export class LocalEngine implements Engine {
  readonly #config: FairnessTrackerConfig;
  readonly #options: FairnessTrackerOptions;
  #main: Structure;
  #secondary: Structure;
  #nextId = 3;
  #timer: unknown;
  #ticking = false;
  #lastProbability = Number.NaN;
  readonly #mainHashes: BaseHashes = { hash1: 0, hash2: 0 };
  readonly #secondaryHashes: BaseHashes = { hash1: 0, hash2: 0 };

  constructor(config: FairnessTrackerConfig, options: FairnessTrackerOptions) {
    this.#config = config;
    this.#options = options;
    this.#main = this.#create(1);
    this.#secondary = this.#create(2);
    this.#timer = options.timers.setInterval(() => this.#tick(), config.rotationFrequencyMs);
    this.#ticking = true;
  }

  get structureIds(): StructureIds {
    return { main: this.#main.id, secondary: this.#secondary.id };
  }

  get mainStructureId(): number {
    return this.#main.id;
  }

  get lastProbability(): number {
    return this.#lastProbability;
  }

  registerRequest(id: ClientIdEncoder, nowMs: number): RegisterRequestResult {
    // Both structures hash before either runs the final function, which is user code.
    const main = this.#main;
    const secondary = this.#secondary;
    const a = this.#mainHashes;
    const b = this.#secondaryHashes;
    baseHashes(id, main.murmurSeed, a);
    baseHashes(id, secondary.murmurSeed, b);
    const { hash1, hash2 } = b;
    const result = main.registerRequest(a.hash1, a.hash2, nowMs, this.#options.random);
    // Main's, taken before the secondary's final function (user code) runs.
    this.#lastProbability = main.lastFinalProbability;
    // Go registers with the secondary too, to keep it warm; its decision (and draw) is dropped.
    secondary.registerRequest(hash1, hash2, nowMs, this.#options.random);
    return result;
  }

  reportOutcome(id: ClientIdEncoder, outcome: Outcome, nowMs: number): void {
    const a = this.#mainHashes;
    const b = this.#secondaryHashes;
    baseHashes(id, this.#main.murmurSeed, a);
    baseHashes(id, this.#secondary.murmurSeed, b);
    this.#main.reportOutcome(a.hash1, a.hash2, outcome, nowMs);
    this.#secondary.reportOutcome(b.hash1, b.hash2, outcome, nowMs);
  }

  rotate(): void {
    const next = this.#create(this.#nextId);
    this.#nextId++;
    this.#main = this.#secondary;
    this.#secondary = next;
  }

  close(): void {
    if (!this.#ticking) return;
    this.#ticking = false;
    this.#options.timers.clearInterval(this.#timer);
  }

  syncStats(): SyncStats {
    return noSyncStats;
  }

  #tick(): void {
    if (!this.#ticking) return;
    try {
      this.rotate();
    } catch (error) {
      // Go's rotation goroutine returns on this failure, ending rotation for good.
      this.close();
      this.#options.onError?.(
        new FairnessTrackerError(
          "rotation_failed",
          "failed to create a structure during rotation",
          error,
        ),
      );
    }
  }

  #create(id: number): Structure {
    let seed: unknown;
    try {
      seed = this.#options.murmurSeed();
    } catch (error) {
      throw new FairnessTrackerError("invalid_option", "Failed to create a structure", error);
    }
    if (typeof seed !== "number" || !Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff) {
      throw new FairnessTrackerError(
        "invalid_option",
        `Failed to create a structure: murmurSeed() returned ${String(seed)}, not a uint32`,
      );
    }
    return new Structure(this.#config, id, seed, Math.floor(this.#options.now()));
  }
}
