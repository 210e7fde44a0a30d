import { open, readdir, readFile, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { MaybePromise, StorePersistence } from "@fair/state-store";

/** What became of the snapshot file at start-up. */
export type SnapshotLoad =
  | { readonly kind: "missing" }
  | {
      readonly kind: "loaded";
      readonly seeds: number;
      readonly buckets: number;
      readonly skippedSeeds: number;
    }
  | { readonly kind: "set_aside"; readonly movedTo: string; readonly reason: string };

const TEMPORARY_SUFFIX = ".snapshot.tmp";
/** Distinguishes temporary files made in the same millisecond. */
let temporaries = 0;

/**
 * Writes snapshots of one store to one file, one write at a time: a write
 * asked for while another runs starts after it and takes its snapshot then,
 * so an older snapshot can never be renamed over a newer one.
 */
export class SnapshotWriter {
  #last: Promise<void> = Promise.resolve();

  constructor(
    private readonly path: string,
    private readonly snapshot: () => MaybePromise<Uint8Array>,
  ) {}

  /** Writes a snapshot taken once the writes before it are done; rejects if this one fails. */
  write(): Promise<void> {
    const next = this.#last.then(async () => writeFileAtomically(this.path, await this.snapshot()));
    this.#last = next.catch(() => {});
    return next;
  }
}

/**
 * Removes temporary files a process killed mid-write left beside `path`
 * (they are never read; this only reclaims their space).
 */
export async function removeStaleTemporaries(path: string): Promise<void> {
  const folder = dirname(path);
  let names: string[];
  try {
    names = await readdir(folder);
  } catch {
    return;
  }
  await Promise.all(
    names
      .filter((name) => name.startsWith(".") && name.endsWith(TEMPORARY_SUFFIX))
      .map((name) => rm(join(folder, name), { force: true })),
  );
}

/**
 * Writes `bytes` to `path` so that a reader sees the old file or the new
 * one, never half of either: a temporary file beside it, flushed to disk,
 * then renamed over it (rename is atomic within a file system).
 */
export async function writeFileAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const temporary = join(
    dirname(path),
    `.${process.pid}.${Date.now()}.${++temporaries}${TEMPORARY_SUFFIX}`,
  );
  const handle = await open(temporary, "w", 0o600);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/**
 * Restores `store` from the snapshot at `path`, if there is one. A snapshot
 * the store refuses (corrupt, truncated, another format version) is moved
 * aside to `<path>.rejected-<time>` and reported, never fatal: a server that
 * cannot read its snapshot starts empty rather than not at all.
 */
export async function loadSnapshotFile(
  path: string,
  store: StorePersistence,
  nowMs: number,
): Promise<SnapshotLoad> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
    throw error;
  }
  try {
    return { kind: "loaded", ...(await store.restore(bytes)) };
  } catch (error) {
    const movedTo = `${path}.rejected-${nowMs}`;
    await rename(path, movedTo);
    return {
      kind: "set_aside",
      movedTo,
      reason: error instanceof Error ? error.message : String(error),
    };
  }
}
