// `pnpm generate`: regenerate the protobuf-es code and the contract image from
// proto/. Refuses a change that breaks the wire contract, so a renumbered or
// retyped field can never reach the generated code by accident.
import { buf, imagePath } from "./proto.mjs";

const breaking = buf(["breaking", "proto", "--against", imagePath]);
if (breaking.code !== 0) {
  console.error(
    `\ngenerate: refused. The change above breaks the fair.state.v1 wire contract (${imagePath}).\n` +
      "Clients in other languages depend on these field numbers and types. Add fields instead;\n" +
      "a real break belongs in a new package (fair.state.v2).",
  );
  process.exit(1);
}
for (const args of [["generate"], ["build", "proto", "-o", imagePath]]) {
  if (buf(args).code !== 0) process.exit(1);
}
console.log(`generate: code and ${imagePath} are up to date with proto/`);
