// `pnpm generate`: regenerate the protobuf-es code and the contract image from
// proto/. Refuses a change that breaks the wire contract, so a renumbered or
// retyped field can never reach the generated code by accident.
//
// buf writes into a scratch directory and only files whose bytes changed are
// copied over, so a run with nothing to do touches nothing: builds that
// depend on it can run while tests read the generated code.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { buf, diffTrees, genDir, imagePath, root, sameBytes } from "./proto.mjs";

const breaking = buf(["breaking", "proto", "--against", imagePath]);
if (breaking.code !== 0) {
  console.error(
    `\ngenerate: refused. The change above breaks the fair.state.v1 wire contract (${imagePath}).\n` +
      "Clients in other languages depend on these field numbers and types. Add fields instead;\n" +
      "a real break belongs in a new package (fair.state.v2).",
  );
  process.exit(1);
}

const scratch = mkdtempSync(join(tmpdir(), "fair-generate-"));
try {
  const image = join(scratch, "image.binpb");
  for (const args of [
    ["generate", "-o", scratch],
    ["build", "proto", "-o", image],
  ]) {
    if (buf(args).code !== 0) process.exit(1);
  }
  const changed = [];
  for (const { file, kind } of diffTrees(join(scratch, genDir), join(root, genDir))) {
    const target = join(root, genDir, file);
    if (kind === "stale") {
      rmSync(target);
    } else {
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(join(scratch, genDir, file), target);
    }
    changed.push(join(genDir, file));
  }
  if (!sameBytes(image, join(root, imagePath))) {
    copyFileSync(image, join(root, imagePath));
    changed.push(imagePath);
  }
  console.log(
    changed.length === 0
      ? "generate: code and image already match proto/"
      : `generate: updated\n  ${changed.join("\n  ")}`,
  );
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
