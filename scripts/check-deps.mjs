// Enforces ARCHITECTURE.md's import rules on package manifests: each
// workspace package may depend only on the workspace packages listed here.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { root } from "./proto.mjs";

/** Mirrors the "Who may import whom" table in ARCHITECTURE.md. */
const allowed = {
  "@fair/state-proto": [],
  "@fair/state-store": ["@fair/state-proto"],
  "@fair/state-store-redis": ["@fair/state-proto", "@fair/state-store"],
  "@fair/state-broadcast": [],
  "@fair/state-server": [
    "@fair/state-proto",
    "@fair/state-store",
    "@fair/state-store-redis",
    "@fair/state-broadcast",
  ],
  "@fair/state-server-app": ["@fair/state-server", "@fair/state-proto"],
  "@fair/state-client": ["@fair/state-proto"],
  "@fair/tracker": ["@fair/state-client"],
  "@fair/testing": [],
  "@fair/integration": [],
  "@fair/state-bench": ["@fair/state-proto"],
};

const problems = [];
for (const group of ["packages", "apps"]) {
  const dir = join(root, group);
  if (!existsSync(dir)) continue;
  for (const name of readdirSync(dir)) {
    const manifestPath = join(dir, name, "package.json");
    if (!existsSync(manifestPath)) continue;
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    const rule = allowed[manifest.name];
    if (!rule) {
      problems.push(
        `${group}/${name}: ${manifest.name} has no row in ARCHITECTURE.md's import table`,
      );
      continue;
    }
    const deps = { ...manifest.dependencies, ...manifest.peerDependencies };
    for (const dep of Object.keys(deps).filter((d) => d.startsWith("@fair/"))) {
      if (!rule.includes(dep)) problems.push(`${manifest.name} may not depend on ${dep}`);
    }
  }
}
if (problems.length > 0) {
  console.error(
    `check-deps: import rules broken (see ARCHITECTURE.md):\n  ${problems.join("\n  ")}`,
  );
  process.exit(1);
}
console.log("check-deps: every package depends only on what ARCHITECTURE.md allows");
