// `pnpm check`: everything but the tests that must hold before a change lands.
// Runs every step, then fails if any failed, so one run shows every problem.
import { spawnSync } from "node:child_process";
import { imagePath, root } from "./proto.mjs";

const steps = [
  // First, before anything that could regenerate code into the work tree.
  ["generated code in sync", "node", ["scripts/check-generated.mjs"]],
  ["package import rules", "node", ["scripts/check-deps.mjs"]],
  ["biome (format + lint, warnings are errors)", "biome", ["ci", "--error-on-warnings", "."]],
  ["buf lint", "buf", ["lint"]],
  ["buf breaking", "buf", ["breaking", "proto", "--against", imagePath]],
  ["typecheck (packages)", "turbo", ["run", "typecheck", "--output-logs=errors-only"]],
  ["typecheck (root config)", "tsc", ["-p", "tsconfig.json"]],
];

const failed = [];
for (const [name, command, args] of steps) {
  console.log(`\n▶ ${name}`);
  const { status, error } = spawnSync(command, args, {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1" },
  });
  if (error || status !== 0) failed.push(name);
}
if (failed.length > 0) {
  console.error(`\ncheck: FAILED: ${failed.join("; ")}`);
  process.exit(1);
}
console.log("\ncheck: all passed");
