import { existsSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Workspace packages resolve to their TypeScript sources through the
// "development" export condition, so tests never wait for a build.
const conditions = ["development", "module", "node", "import", "default"];

// One project per package and app, so `pnpm test` runs every suite in one
// process pool and prints one summary; `--project <name>` runs one of them.
const projectDirs = ["packages", "apps"].flatMap((group) =>
  (existsSync(new URL(group, import.meta.url))
    ? readdirSync(new URL(group, import.meta.url), { withFileTypes: true })
    : []
  )
    .filter((entry) => entry.isDirectory())
    .map((entry) => `${group}/${entry.name}`),
);

// Projects whose tests talk to Redis: they get its URL from one check per run.
const redisProjects = new Set([
  "packages/state-store-redis",
  "packages/state-server",
  "apps/state-server",
]);
const redisSetup = fileURLToPath(new URL("scripts/redis-setup.ts", import.meta.url));

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    // Integration tests wait on real sockets and processes; CI machines may be
    // busy. A test that waits for an event fails by this timeout, never passes by it.
    testTimeout: 30_000,
    reporters: ["default", "./scripts/summary-reporter.ts"],
    projects: [
      ...projectDirs.map((dir) => ({
        extends: true as const,
        test: {
          // Named for the package without its scope: state-store, state-server-app.
          name: dir.startsWith("apps/") ? `${dir.slice(5)}-app` : dir.slice(9),
          root: dir,
          include: ["src/**/*.test.ts", "test/**/*.test.ts"],
          ...(redisProjects.has(dir) ? { globalSetup: [redisSetup] } : {}),
        },
      })),
      // The repository's own scripts (check-deps) have tests too.
      { extends: true, test: { name: "scripts", root: "scripts", include: ["*.test.ts"] } },
    ],
  },
});
