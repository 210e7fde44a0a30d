import { type FileHandle, open, readdir, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { MaybePromise, RestoreResult, StorePersistence } from "@fair/state-store";

/**
 * What a snapshot file is written from: the chunks `StorePersistence.snapshot()`
 * yields, or bytes at hand.
 */
export type SnapshotSource = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/** What became of the snapshot file at start-up. */
export type SnapshotLoad =
  | { readonly kind: "missing" }
  | ({ readonly kind: "loaded" } & RestoreResult)
  | { readonly kind: "set_aside"; readonly movedTo: string; readonly reason: string };

const TEMPORARY_SUFFIX = ".snapshot.tmp";
/** Bytes read from a snapshot file at a time, each handed to the store's restore as it comes. */
const READ_CHUNK_BYTES = 1 << 20;
/** Distinguishes temporary files made in the same millisecond. */
let temporaries = 0;

/**
 * Writes snapshots of one store to one file, one write at a time: a write
 * asked for while another runs starts after it and takes its snapshot then,
 * so an older snapshot can never be renamed over a newer one. Each chunk
 * goes to the file as the store yields it, so the snapshot is never held
 * whole in memory and the event loop turns between chunks.
 */
export class SnapshotWriter {
  #last: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly path: string,
    private readonly snapshot: () => MaybePromise<SnapshotSource>,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Writes a snapshot taken once the writes before it are done; resolves
   * with when it was taken (on `now`, as the write began), rejects if this
   * one fails.
   */
  write(): Promise<number> {
    const next = this.#last.then(async () => {
      const takenAtMs = this.now();
      await writeFileAtomically(this.path, await this.snapshot());
      return takenAtMs;
    });
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
 * Writes `source` to `path` so that a reader sees the old file or the new
 * one, never half of either: a temporary file beside it, written chunk by
 * chunk as they come, flushed to disk, then renamed over it (rename is
 * atomic within a file system). If anything fails — the source included —
 * the temporary file is removed and `path` is left as it was.
 */
export async function writeFileAtomically(path: string, source: SnapshotSource): Promise<void> {
  const temporary = join(
    dirname(path),
    `.${process.pid}.${Date.now()}.${++temporaries}${TEMPORARY_SUFFIX}`,
  );
  const handle = await open(temporary, "w", 0o600);
  try {
    try {
      for await (const chunk of source instanceof Uint8Array ? [source] : source) {
        await writeAll(handle, chunk);
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  for (let offset = 0; offset < chunk.length; ) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}

/**
 * Restores `store` from the snapshot at `path`, if there is one, streaming
 * the file into the store's restore a chunk at a time. A snapshot the store
 * refuses (corrupt, truncated, another format version) is moved aside to
 * `<path>.rejected-<time>` and reported, never fatal: a server that cannot
 * read its snapshot starts empty rather than not at all. A file the system
 * cannot open or read (other than a missing one) is an error, as before:
 * the snapshot is not at fault, and setting it aside would lose it.
 */
export async function loadSnapshotFile(
  path: string,
  store: StorePersistence,
  nowMs: number,
): Promise<SnapshotLoad> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
    throw error;
  }
  const file = { error: undefined as unknown };
  let refusal: unknown;
  try {
    return { kind: "loaded", ...(await store.restore(readChunks(handle, file))) };
  } catch (error) {
    if (file.error !== undefined) throw file.error;
    refusal = error;
  } finally {
    await handle.close();
  }
  const movedTo = `${path}.rejected-${nowMs}`;
  await rename(path, movedTo);
  return {
    kind: "set_aside",
    movedTo,
    reason: refusal instanceof Error ? refusal.message : String(refusal),
  };
}

/** The file's bytes, a fresh buffer per read; a read that fails is noted in `file.error`. */
async function* readChunks(
  handle: FileHandle,
  file: { error: unknown },
): AsyncGenerator<Uint8Array> {
  for (;;) {
    const buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(buffer, 0, buffer.length, null));
    } catch (error) {
      file.error = error;
      throw error;
    }
    if (bytesRead === 0) return;
    yield buffer.subarray(0, bytesRead);
  }
}
