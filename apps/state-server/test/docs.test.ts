// DEPLOYMENT.md is what operators read: it must name every setting and every
// metric the server has, and nothing it does not have.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  configKeys,
  createStateServer,
  deprecatedConfigKeys,
  envName,
  flagName,
  loadConfig,
} from "@fair/state-server";
import { expect, test } from "vitest";

const deployment = readFileSync(
  fileURLToPath(new URL("../../../DEPLOYMENT.md", import.meta.url)),
  "utf8",
);

/** The cells of every table row, trimmed (the formatter pads tables). */
const rows = deployment
  .split("\n")
  .filter((line) => line.startsWith("|"))
  .map((line) =>
    line
      .split("|")
      .slice(1, -1)
      .map((cell) => cell.trim()),
  );

test("every configuration key has a row with its environment name and flag", () => {
  for (const key of Object.keys(configKeys) as (keyof typeof configKeys)[]) {
    expect(rows).toContainEqual(
      expect.arrayContaining([`\`${key}\``, `\`${envName(key)}\``, `\`${flagName(key)}\``]),
    );
  }
});

test("every renamed key is listed with its new name, its old environment name and flag", () => {
  for (const [old, key] of Object.entries(deprecatedConfigKeys) as [
    keyof typeof deprecatedConfigKeys,
    keyof typeof configKeys,
  ][]) {
    expect(rows).toContainEqual([
      `\`${old}\``,
      `\`${key}\``,
      `\`${envName(old)}\` / \`${flagName(old)}\``,
    ]);
  }
});

test("every fair_state metric the server registers, on either store, is documented, and no other", async () => {
  const registered = new Set<string>();
  for (const store of ["memory", "redis"]) {
    // Made, never started: a Redis store registers its metrics without connecting.
    const { config } = loadConfig({ argv: [`--store=${store}`], env: {} });
    const server = createStateServer({ config });
    for (const { name } of await server.metrics.registry.getMetricsAsJSON()) {
      if (name.startsWith("fair_state_")) registered.add(name);
    }
  }
  const documented = rows.flatMap(
    (cells) => /^`(fair_state_[a-z_]+)/.exec(cells[0] ?? "")?.[1] ?? [],
  );
  expect(documented.sort()).toEqual([...registered].sort());
});

test("the bad-configuration example is what the server really prints", () => {
  const example =
    /```\nstate-server: bad configuration:\n([\s\S]*?)```/.exec(deployment)?.[1] ?? "";
  try {
    loadConfig({ argv: ["--max-rows=-3"], env: { FAIR_STATE_DECAY_RATE_PER_SECOND: "abc" } });
    expect.unreachable();
  } catch (error) {
    expect(`${(error as Error).message}\n`).toBe(example);
  }
});
