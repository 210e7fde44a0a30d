import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

describe("snapshot files", () => {
  test("what is written atomically is what a new store loads; nothing else is left in the folder", async () => {
    const before = store();
    before.applyDelta(seed, 0, 7, 0.5, now);
    const path = join(dir, "state.snapshot");
    await writeFileAtomically(path, before.snapshot());
    expect(readdirSync(dir)).toEqual(["state.snapshot"]);
    const after = store();
    expect(await loadSnapshotFile(path, after, now)).toEqual({
      kind: "loaded",
      seeds: 1,
      buckets: 1,
      skippedSeeds: 0,
    });
    expect(after.getSeed(seed)).toEqual(before.getSeed(seed));
  });

  test("a missing file is reported as missing, not as an error", async () => {
    expect(await loadSnapshotFile(join(dir, "none"), store(), now)).toEqual({ kind: "missing" });
  });

  test("a corrupt file is set aside and reported; the store stays empty and start-up goes on", async () => {
    const path = join(dir, "state.snapshot");
    writeFileSync(path, Buffer.from([0xff, 0xff, 0xff, 0x01]));
    const target = store();
    const result = await loadSnapshotFile(path, target, now);
    expect(result).toMatchObject({ kind: "set_aside", movedTo: `${path}.rejected-${now}` });
    expect(existsSync(path)).toBe(false);
    expect(readFileSync(`${path}.rejected-${now}`)).toEqual(Buffer.from([0xff, 0xff, 0xff, 0x01]));
    expect(target.stats().buckets).toBe(0);
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
