// Shared by generate.mjs and check.mjs: the buf invocations that produce and
// guard the wire contract. Everything runs offline with the local plugin.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { delimiter, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("..", import.meta.url));
/** The committed image `buf breaking` compares against: the contract as last generated. */
export const imagePath = "proto/image.binpb";
/** Where buf.gen.yaml writes the generated code, relative to the root. */
export const genDir = "packages/state-proto/src/gen";

/** Runs buf with the given arguments at the repository root; returns its exit code and output. */
export function buf(args, { quiet = false } = {}) {
  // buf and the protoc-gen-es plugin it runs both live in node_modules/.bin;
  // a checkout without one (the contract tests' scratch copy) uses PATH.
  const bin = join(root, "node_modules", ".bin");
  const command = existsSync(join(bin, "buf")) ? join(bin, "buf") : "buf";
  const result = spawnSync(command, args, {
    cwd: root,
    stdio: quiet ? "pipe" : "inherit",
    encoding: "utf8",
    env: { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ""}` },
  });
  if (result.error) {
    throw new Error(`cannot run buf (${result.error.message}); run \`pnpm install\` first`);
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

/**
 * The files that differ between two trees: `changed`, `missing` from the
 * actual tree, or `stale` (in the actual tree only).
 */
export function diffTrees(expectedDir, actualDir) {
  const actual = new Set(listFiles(actualDir));
  const differ = [];
  for (const file of listFiles(expectedDir)) {
    if (!actual.has(file)) differ.push({ file, kind: "missing" });
    else if (!sameBytes(join(expectedDir, file), join(actualDir, file)))
      differ.push({ file, kind: "changed" });
    actual.delete(file);
  }
  for (const file of actual) differ.push({ file, kind: "stale" });
  return differ;
}

/** Whether two files hold the same bytes; a missing file matches nothing. */
export function sameBytes(a, b) {
  try {
    return readFileSync(a).equals(readFileSync(b));
  } catch {
    return false;
  }
}
