// Fails when the checked-in generated code or contract image no longer match
// the .proto files, i.e. someone changed proto/ without `pnpm generate`.
// `--proto DIR` checks another copy of proto/ (the tests use this).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buf, diffTrees, genDir, imagePath, root, sameBytes } from "./proto.mjs";

const { values } = parseArgs({ options: { proto: { type: "string", default: "proto" } } });
const tmp = mkdtempSync(join(tmpdir(), "fair-gen-"));
try {
  const gen = buf(["generate", values.proto, "-o", tmp], { quiet: true });
  const image = buf(["build", values.proto, "-o", join(tmp, "image.binpb")], { quiet: true });
  if (gen.code !== 0 || image.code !== 0) {
    console.error(`check-generated: buf failed on ${values.proto}:\n${gen.output}${image.output}`);
    process.exit(1);
  }
  const stale = diffTrees(join(tmp, genDir), join(root, genDir)).map(
    ({ file, kind }) => `${join(genDir, file)} (${kind})`,
  );
  if (!sameBytes(join(tmp, "image.binpb"), join(root, imagePath))) stale.push(imagePath);
  if (stale.length > 0) {
    console.error(
      `check-generated: out of date with ${values.proto}/ — run \`pnpm generate\` and commit:\n  ${stale.join("\n  ")}`,
    );
    process.exit(1);
  }
  console.log("check-generated: generated code and contract image match proto/");
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
