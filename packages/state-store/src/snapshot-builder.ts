import { StoreError } from "./errors.js";
import type { ResolvedStoreOptions } from "./options.js";
import type { SeedRange } from "./seed-range.js";
import { SeedTable } from "./seed-table.js";
import type { RestoreResult } from "./store.js";

/** Namespace → seed → its table: what an in-memory store holds. */
export type Tables = Map<string, Map<bigint, SeedTable>>;

/**
 * The tables a snapshot restores, built off to the side, one part (a
 * `SeedSnapshot` entry) at a time; the store swaps them in only once the
 * whole snapshot has been read, so a bad one leaves it as it was.
 *
 * Seeds behind the eviction horizon or too far ahead of the clock are still
 * read and checked, into a table of their own that is dropped as soon as
 * the next seed begins: expired seeds would only wait for the next
 * eviction, and far-future ones could not have been written by a store on
 * this clock.
 */
export class SnapshotBuilder {
  readonly tables: Tables = new Map();
  readonly options: ResolvedStoreOptions;
  /** The epoch the snapshot was taken in; `""` when it does not say (older snapshots). */
  epoch = "";
  /** When the snapshot was taken, Unix ms; `undefined` when it does not say. */
  takenAtMs: number | undefined;
  readonly #range: SeedRange;
  readonly #nowMs: number;
  readonly #seen = new Map<string, Set<bigint>>();
  #current: { namespace: string; seed: bigint; table: SeedTable } | undefined;
  #seeds = 0;

  constructor(options: ResolvedStoreOptions, range: SeedRange, nowMs: number) {
    this.options = options;
    this.#range = range;
    this.#nowMs = nowMs;
  }

  /**
   * The table the buckets of part `field` go into. In format 2 the buckets
   * of one seed may span consecutive parts (`continued`); otherwise a seed
   * named twice is refused.
   */
  tableFor(namespace: string, seed: bigint, field: string, continued: boolean): SeedTable {
    const current = this.#current;
    if (continued && current?.namespace === namespace && current.seed === seed) {
      return current.table;
    }
    let seeds = this.#seen.get(namespace);
    if (seeds === undefined) {
      seeds = new Set();
      this.#seen.set(namespace, seeds);
    }
    if (seeds.has(seed)) {
      throw new StoreError("snapshot_malformed", field, `repeats seed ${seed}`);
    }
    seeds.add(seed);
    this.#seeds++;
    const table = new SeedTable();
    this.#current = { namespace, seed, table };
    if (this.#range.classify(seed, this.#nowMs) === "applied") {
      let tables = this.tables.get(namespace);
      if (tables === undefined) {
        tables = new Map();
        this.tables.set(namespace, tables);
      }
      tables.set(seed, table);
    }
    return table;
  }

  /** Drops the tables left empty and counts what is kept. */
  finish(): RestoreResult {
    let seeds = 0;
    let buckets = 0;
    for (const [namespace, tables] of this.tables) {
      for (const [seed, table] of tables) {
        if (table.size === 0) {
          tables.delete(seed);
        } else {
          seeds++;
          buckets += table.size;
        }
      }
      if (tables.size === 0) this.tables.delete(namespace);
    }
    return {
      seeds,
      buckets,
      skippedSeeds: this.#seeds - seeds,
      epoch: this.epoch,
      takenAtMs: this.takenAtMs,
    };
  }
}
