import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { DeltaUpdateSchema } from "@fair/state-proto";
import { InMemoryStore } from "@fair/state-store";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import {
  loadSnapshotFile,
  removeStaleTemporaries,
  SnapshotWriter,
  writeFileAtomically,
} from "./snapshot-file.js";

const seed = 1_764_136_800_000n;
const now = Number(seed) + 1_000;
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "fair-snapshot-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const store = () => new InMemoryStore({ now: () => now });

/** A store holding `count` buckets of `seed`. */
function filled(count: number): InMemoryStore {
  const target = store();
  for (let base = 0; base < count; base += 1000) {
    const deltas = [];
    for (let k = base; k < Math.min(count, base + 1000); k++) {
      deltas.push({
        rowId: BigInt(k % 8),
        colId: BigInt(k),
        deltaProb: 0.25,
        lastUpdateTimeMs: BigInt(now),
      });
    }
    target.applyUpdate(create(DeltaUpdateSchema, { seed, deltas }));
  }
  return target;
}

describe("snapshot files", () => {
  test("what is written atomically is what a new store loads; nothing else is left in the folder", async () => {
    const before = store();
    before.applyDelta(seed, 0, 7, 0.5, now);
    const path = join(dir, "state.snapshot");
    await writeFileAtomically(path, before.persistence.snapshot());
    expect(readdirSync(dir)).toEqual(["state.snapshot"]);
    const after = store();
    expect(await loadSnapshotFile(path, after.persistence, now)).toEqual({
      kind: "loaded",
      seeds: 1,
      buckets: 1,
      skippedSeeds: 0,
      epoch: before.epochs.current.id,
      takenAtMs: now,
    });
    expect(after.getSeed(seed)).toEqual(before.getSeed(seed));
  });

  test("a missing file is reported as missing, not as an error", async () => {
    expect(await loadSnapshotFile(join(dir, "none"), store().persistence, now)).toEqual({
      kind: "missing",
    });
  });

  test("a corrupt file is set aside and reported; the store stays empty and start-up goes on", async () => {
    const path = join(dir, "state.snapshot");
    writeFileSync(path, Buffer.from([0xff, 0xff, 0xff, 0x01]));
    const target = store();
    const result = await loadSnapshotFile(path, target.persistence, now);
    expect(result).toMatchObject({ kind: "set_aside", movedTo: `${path}.rejected-${now}` });
    expect(existsSync(path)).toBe(false);
    expect(readFileSync(`${path}.rejected-${now}`)).toEqual(Buffer.from([0xff, 0xff, 0xff, 0x01]));
    expect(target.stats().buckets).toBe(0);
  });

  test("a store of many chunks is written as they come and read back in chunks of the file", async () => {
    const before = filled(120_000);
    const path = join(dir, "state.snapshot");
    let chunks = 0;
    await new SnapshotWriter(path, async function* () {
      for await (const chunk of before.persistence.snapshot()) {
        chunks++;
        yield chunk;
      }
    }).write();
    expect(chunks).toBeGreaterThan(1);
    // Past the 1 MiB a read takes, so the restore is fed several chunks.
    expect(readFileSync(path).length).toBeGreaterThan(2 ** 21);
    expect(Buffer.from(readFileSync(path)).equals(before.snapshot())).toBe(true); // one store, one epoch
    const after = store();
    expect(await loadSnapshotFile(path, after.persistence, now)).toMatchObject({
      kind: "loaded",
      buckets: 120_000,
    });
    expect(after.stats()).toMatchObject({ seeds: 1, buckets: 120_000 });
  });

  test("a snapshot that fails while it is written leaves the last file as it was, and no temporary file", async () => {
    const path = join(dir, "state.snapshot");
    writeFileSync(path, "the last good snapshot");
    const failing = new SnapshotWriter(path, async function* () {
      yield Uint8Array.from([1, 2, 3]);
      throw new Error("the store went away");
    });
    await expect(failing.write()).rejects.toThrow("the store went away");
    expect(readFileSync(path, "utf8")).toBe("the last good snapshot");
    expect(readdirSync(dir)).toEqual(["state.snapshot"]);
  });

  test("a snapshot cut short is set aside, and the store keeps what it held", async () => {
    const path = join(dir, "state.snapshot");
    const bytes = filled(5_000).snapshot();
    writeFileSync(path, bytes.subarray(0, bytes.length - 100));
    const target = store();
    target.applyDelta(seed, 1, 1, 0.5, now);
    const result = await loadSnapshotFile(path, target.persistence, now);
    expect(result).toMatchObject({ kind: "set_aside", reason: expect.stringMatching(/cut short/) });
    expect(target.getSeed(seed)).toHaveLength(1);
  });

  test("writes asked for at once run one after another, each snapshot taken after the last is in place", async () => {
    const path = join(dir, "state.snapshot");
    let taken = 0;
    const writer = new SnapshotWriter(path, () => {
      // The previous write is on disk before the next snapshot is taken.
      if (taken > 0) expect(readFileSync(path)).toEqual(Buffer.from([taken]));
      taken++;
      return Uint8Array.from([taken]);
    });
    await Promise.all(Array.from({ length: 5 }, () => writer.write()));
    expect(readFileSync(path)).toEqual(Buffer.from([5]));
    expect(readdirSync(dir)).toEqual(["state.snapshot"]);
  });

  test("a failed write rejects its caller and does not stop the next one", async () => {
    const path = join(dir, "missing-folder", "state.snapshot");
    const writer = new SnapshotWriter(path, () => Uint8Array.from([1]));
    await expect(writer.write()).rejects.toThrow(/ENOENT/);
    const good = new SnapshotWriter(join(dir, "state.snapshot"), () => Uint8Array.from([2]));
    await good.write();
    expect(readFileSync(join(dir, "state.snapshot"))).toEqual(Buffer.from([2]));
  });

  test("temporary files a killed writer left behind are removed; other files stay", async () => {
    const path = join(dir, "state.snapshot");
    writeFileSync(join(dir, ".4242.1764136800000.1.snapshot.tmp"), "half");
    writeFileSync(path, "kept");
    writeFileSync(join(dir, "notes.txt"), "kept");
    await removeStaleTemporaries(path);
    expect(readdirSync(dir).sort()).toEqual(["notes.txt", "state.snapshot"]);
  });
});
