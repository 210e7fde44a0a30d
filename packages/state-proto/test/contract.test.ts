// The guards on the wire contract, exercised on a scratch copy of the
// repository's proto/, buf config, scripts and generated code, so that the
// real tree is never touched.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, test } from "vitest";

const repo = fileURLToPath(new URL("../../..", import.meta.url));
const stateProto = "proto/fair/state/v1/state.proto";
const generatedState = "packages/state-proto/src/gen/fair/state/v1/state_pb.ts";
const env = {
  ...process.env,
  PATH: `${join(repo, "node_modules/.bin")}${delimiter}${process.env["PATH"]}`,
};

let scratch: string;

beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), "fair-contract-"));
  for (const path of [
    "proto",
    "scripts",
    "buf.yaml",
    "buf.gen.yaml",
    "packages/state-proto/src/gen",
  ]) {
    cpSync(join(repo, path), join(scratch, path), { recursive: true });
  }
});

afterEach(() => {
  rmSync(scratch, { recursive: true, force: true });
});

function run(command: string, args: string[]) {
  const result = spawnSync(command, args, { cwd: scratch, env, encoding: "utf8" });
  return { code: result.status, output: `${result.stdout}${result.stderr}` };
}

function editProto(from: string, to: string) {
  const path = join(scratch, stateProto);
  const text = readFileSync(path, "utf8");
  expect(text).toContain(from);
  writeFileSync(path, text.replace(from, to));
}

const breaking = () => run("buf", ["breaking", "proto", "--against", "proto/image.binpb"]);
const checkGenerated = () => run("node", ["scripts/check-generated.mjs"]);
const generate = () => run("node", ["scripts/generate.mjs"]);

describe("the committed contract", () => {
  test("matches the generated code and image as checked in", () => {
    expect(breaking()).toMatchObject({ code: 0 });
    expect(checkGenerated()).toMatchObject({ code: 0 });
  });
});

describe("a changed field number", () => {
  beforeEach(() => editProto("double delta_prob = 3;", "double delta_prob = 5;"));

  test("fails buf breaking, naming the field", () => {
    const result = breaking();
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/field "3" with name "delta_prob" on message "BucketDelta"/);
  });

  test("is refused by pnpm generate, which leaves the generated code as it was", () => {
    const before = readFileSync(join(scratch, generatedState), "utf8");
    const result = generate();
    expect(result.code).toBe(1);
    expect(result.output).toContain("breaks the fair.state.v1 wire contract");
    expect(readFileSync(join(scratch, generatedState), "utf8")).toBe(before);
  });
});

describe("an additive change to the .proto", () => {
  beforeEach(() =>
    editProto(
      "  bool full_state_last = 4;\n}",
      "  bool full_state_last = 4;\n  // server_time_ms is a test-only addition.\n  uint64 server_time_ms = 5;\n}",
    ),
  );

  test("without regenerating, fails the generated-code check, naming the stale files", () => {
    const result = checkGenerated();
    expect(result.code).toBe(1);
    expect(result.output).toContain(generatedState);
    expect(result.output).toContain("proto/image.binpb");
    expect(result.output).toContain("pnpm generate");
  });

  test("passes every guard once regenerated", () => {
    expect(breaking()).toMatchObject({ code: 0 });
    expect(generate()).toMatchObject({ code: 0 });
    expect(checkGenerated()).toMatchObject({ code: 0 });
    expect(readFileSync(join(scratch, generatedState), "utf8")).toContain("serverTimeMs: bigint");
  });
});
