// Placeholder until the state server lands (issue #5). It starts nothing and
// says so, rather than pretend a server is running.
console.log(
  [
    "fair-state: the state server is not built yet, so nothing was started and nothing is listening.",
    "It lands with issue #5 (apps/state-server). What exists today:",
    "  @fair/state-proto   the wire contract (fair.state.v1), generated from proto/",
    "Run the tests with: pnpm test",
  ].join("\n"),
);
