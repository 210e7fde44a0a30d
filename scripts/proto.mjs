// Shared by generate.mjs and check.mjs: the buf invocations that produce and
// guard the wire contract. Everything runs offline with the local plugin.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("..", import.meta.url));
/** The committed image `buf breaking` compares against: the contract as last generated. */
export const imagePath = "proto/image.binpb";
/** Where buf.gen.yaml writes the generated code, relative to the root. */
export const genDir = "packages/state-proto/src/gen";

/** Runs buf with the given arguments at the repository root; returns its exit code. */
export function buf(args, { quiet = false } = {}) {
  const result = spawnSync("buf", args, {
    cwd: root,
    stdio: quiet ? "pipe" : "inherit",
    encoding: "utf8",
  });
  if (result.error) {
    throw new Error(
      `cannot run buf (${result.error.message}); run it through pnpm, which puts node_modules/.bin on PATH`,
    );
  }
  return { code: result.status ?? 1, output: `${result.stdout ?? ""}${result.stderr ?? ""}` };
}

/** Every file under dir, as paths relative to dir, sorted. */
export function listFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.push(relative(dir, path));
    }
  };
  walk(dir);
  return out.sort();
}

/** Names the files that differ between two trees (missing on either side counts). */
export function diffTrees(expectedDir, actualDir) {
  const expected = listFiles(expectedDir);
  const actual = new Set(listFiles(actualDir));
  const differ = [];
  for (const file of expected) {
    if (!actual.has(file)) differ.push(`${file} (missing)`);
    else if (!readFileSync(join(expectedDir, file)).equals(readFileSync(join(actualDir, file)))) {
      differ.push(file);
    }
    actual.delete(file);
  }
  for (const file of actual) differ.push(`${file} (stale: no longer generated)`);
  return differ;
}
