import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

// check-deps.mjs is plain JavaScript that node runs as is, without a
// declaration file; a specifier typescript does not resolve keeps it untyped,
// and its one export is typed here.
const modulePath: string = "./check-deps.mjs";
const { checkDeps } = (await import(modulePath)) as { checkDeps: (rootDir: string) => string[] };

const architecture = `# Architecture

## Who owns what

| package                        | owns          | does not know about |
| ------------------------------ | ------------- | ------------------- |
| \`proto/\` + \`@fair/proto\`     | the contract  | anything            |
| \`@fair/store\`                  | aggregation   | gRPC                |
| \`apps/server\`                  | the process   | internals           |

## Who may import whom

| package         | may depend on (workspace)                              |
| --------------- | ------------------------------------------------------ |
| \`@fair/proto\`   | —                                                      |
| \`@fair/store\`   | \`@fair/proto\`, as a type-only peer, for \`Delta\` only |
| \`@fair/server\`  | \`@fair/store\` (private; the \`main\` entry)             |
| \`@fair/testing\` | — (private; only ever a devDependency)                 |

## Repository conventions
`;

let root = "";

function write(path: string, text: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
}

function manifest(dir: string, fields: Record<string, unknown>): void {
  write(`${dir}/package.json`, JSON.stringify({ version: "0.1.0", type: "module", ...fields }));
}

/** A tree that keeps every rule: three packages, an app and a private test helper. */
function cleanTree(): void {
  write("package.json", JSON.stringify({ private: true, devDependencies: { vitest: "4.1.12" } }));
  write("ARCHITECTURE.md", architecture);
  mkdirSync(join(root, "proto"));
  manifest("packages/proto", { name: "@fair/proto", dependencies: { "@bufbuild/protobuf": "2" } });
  write(
    "packages/proto/src/index.ts",
    [
      `import { create } from "@bufbuild/protobuf";`,
      `import type { GenMessage } from "@bufbuild/protobuf/codegenv2";`,
      `export * from "./gen/delta_pb.js";`,
      `export { create, type GenMessage };`,
    ].join("\n"),
  );
  write("packages/proto/src/gen/delta_pb.ts", `export * from "@bufbuild/protobuf/wire";\n`);
  manifest("packages/store", {
    name: "@fair/store",
    peerDependencies: { "@fair/proto": "workspace:^" },
    devDependencies: { "@fair/testing": "workspace:*", "fast-check": "4" },
  });
  write(
    "packages/store/src/index.ts",
    [
      `// import { nothing } from "commented-out";`,
      `import type { Delta } from "@fair/proto";`,
      `import { readFileSync } from "node:fs";`,
      `import { join } from "path";`,
      `import "./side-effect.js";`,
      `export const load = () => import("./lazy.js");`,
      `export type { Delta };`,
      `export const read = (dir: string) => readFileSync(join(dir, "x"));`,
    ].join("\n"),
  );
  write(
    "packages/store/src/index.test.ts",
    [
      `import fc from "fast-check";`,
      `import { it } from "vitest";`,
      `import { fakeTime } from "@fair/testing";`,
      `import { load } from "@fair/store";`,
      `it("runs", () => { fc; fakeTime; load; });`,
    ].join("\n"),
  );
  write("packages/store/bench/main.ts", `import fc from "fast-check";\nfc;\n`);
  manifest("packages/testing", { name: "@fair/testing", private: true });
  write("packages/testing/src/index.ts", `export const fakeTime = 0;\n`);
  manifest("apps/server", {
    name: "@fair/server",
    private: true,
    dependencies: { "@fair/store": "workspace:^" },
  });
  write("apps/server/src/main.ts", `export { load } from "@fair/store";\n`);
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "check-deps-"));
  cleanTree();
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe("checkDeps", () => {
  it("finds nothing wrong in a tree that keeps every rule", () => {
    expect(checkDeps(root)).toEqual([]);
  });

  it("reports an import in src that package.json does not declare, with file and line", () => {
    write(
      "packages/store/src/metrics.ts",
      `/* import "not-this"; */\nimport type { Registry } from "prom-client";\nexport type { Registry };\n`,
    );
    write(
      "apps/server/src/main.ts",
      `export { load } from "@fair/store";\nawait import("pino");\n`,
    );
    expect(checkDeps(root)).toEqual([
      `packages/store/src/metrics.ts:2: imports "prom-client", which @fair/store's package.json does not declare (add it to dependencies)`,
      `apps/server/src/main.ts:2: imports "pino", which @fair/server's package.json does not declare (add it to dependencies)`,
    ]);
  });

  it("lets tests use devDependencies, but not src", () => {
    write("packages/store/test/helpers.ts", `import fc from "fast-check";\nfc;\n`);
    write("packages/store/src/sample.ts", `\nimport fc from "fast-check/lib";\nfc;\n`);
    expect(checkDeps(root)).toEqual([
      `packages/store/src/sample.ts:2: imports "fast-check", which @fair/store's package.json declares only in devDependencies (move it to dependencies)`,
    ]);
  });

  it("reports a test import that no devDependency declares", () => {
    write("packages/proto/test/wire.test.ts", `import { expect } from "vitest";\nimport "zod";\n`);
    expect(checkDeps(root)).toEqual([
      `packages/proto/test/wire.test.ts:2: imports "zod", which @fair/proto's package.json does not declare (add it to devDependencies)`,
    ]);
  });

  it("reports a manifest dependency the import table does not allow", () => {
    manifest("packages/proto", {
      name: "@fair/proto",
      dependencies: { "@bufbuild/protobuf": "2", "@fair/store": "workspace:^" },
    });
    expect(checkDeps(root)).toEqual([
      "packages/proto/package.json: @fair/proto may not depend on @fair/store (ARCHITECTURE.md allows no workspace package)",
    ]);
  });

  it("reports a package missing from the tables, and rows for packages that do not exist", () => {
    manifest("packages/timers", { name: "@fair/timers" });
    write(
      "ARCHITECTURE.md",
      architecture
        .replace("| `@fair/store`   |", "| `@fair/stor`    |")
        .replace("| `apps/server`   ", "| `apps/serve`    "),
    );
    expect(checkDeps(root)).toEqual([
      "ARCHITECTURE.md:16: the import table has a row for @fair/stor, which is not a package",
      "packages/store: @fair/store has no row in ARCHITECTURE.md's import table",
      "packages/timers: @fair/timers has no row in ARCHITECTURE.md's import table",
      "ARCHITECTURE.md:9: the owners table has a row for apps/serve, which is not a package",
      "packages/timers: @fair/timers has no row in ARCHITECTURE.md's owners table",
    ]);
  });

  it("reports a relative import into another package", () => {
    write(
      "apps/server/src/main.ts",
      `export { load } from "@fair/store";\nimport { read } from "../../../packages/store/src/index.js";\nread;\n`,
    );
    write("packages/store/test/x.test.ts", `import "../../proto/src/index.js";\n`);
    expect(checkDeps(root)).toEqual([
      `packages/store/test/x.test.ts:1: imports "../../proto/src/index.js", a path into packages/proto; import @fair/proto by name`,
      `apps/server/src/main.ts:2: imports "../../../packages/store/src/index.js", a path into packages/store; import @fair/store by name`,
    ]);
  });
});
