// Clients that are not ours: grpc-js with the raw .proto (not our generated
// code), and `buf curl` over gRPC with HTTP/2 prior knowledge.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterEach, describe, expect, test } from "vitest";
import { seed0, startServer, type TestServer, t0, windowMs } from "./harness.js";

const repo = fileURLToPath(new URL("../../..", import.meta.url));

let server: TestServer;
afterEach(async () => {
  await server?.close();
});

interface WireBucket {
  row_id: string;
  col_id: string;
  prob: number;
  last_update_time_ms: string;
}
interface WireResponse {
  seed: string;
  buckets: WireBucket[];
  full_state: boolean;
  full_state_last: boolean;
}

function loadStateService() {
  const definition = protoLoader.loadSync("fair/state/v1/state.proto", {
    includeDirs: [join(repo, "proto")],
    keepCase: true,
    longs: String, // uint64 as decimal strings: exact
    defaults: true,
    oneofs: true,
  });
  const root = grpc.loadPackageDefinition(definition) as unknown as {
    fair: { state: { v1: { StateService: grpc.ServiceClientConstructor } } };
  };
  return root.fair.state.v1.StateService;
}

describe("grpc-js with the raw .proto", () => {
  test("sends deltas and a full-state request, reads broadcasts, markers, headers and a refusal", async () => {
    server = await startServer();
    const StateService = loadStateService();
    const client = new StateService(server.running.grpcAddress, grpc.credentials.createInsecure());
    try {
      const metadata = new grpc.Metadata();
      metadata.set("fair-state-namespace", "interop");
      const call = client["Sync"]?.(metadata) as grpc.ClientDuplexStream<object, WireResponse>;
      const received: WireResponse[] = [];
      const headers = new Promise<grpc.Metadata>((resolve) => call.once("metadata", resolve));
      const ended = new Promise<grpc.StatusObject>((resolve) => call.once("status", resolve));
      const arrived = (n: number) =>
        new Promise<void>((resolve) => {
          const check = () => received.length >= n && resolve();
          call.on("data", (response: WireResponse) => {
            received.push(response);
            check();
          });
          check();
        });
      call.on("error", () => {}); // the status event carries it

      call.write({
        delta_update: {
          seed: String(seed0),
          deltas: [
            { row_id: "2", col_id: "77", delta_prob: 0.04, last_update_time_ms: String(t0) },
          ],
        },
      });
      call.write({ state_request: { seed: String(seed0) } });
      await arrived(2);
      expect(received[0]).toMatchObject({
        seed: String(seed0),
        full_state: false,
        buckets: [{ row_id: "2", col_id: "77", prob: 0.04, last_update_time_ms: String(t0) }],
      });
      expect(received[1]).toMatchObject({
        seed: String(seed0),
        full_state: true,
        full_state_last: true,
      });
      expect((await headers).get("fair-state-window-ms")).toEqual([String(windowMs)]);

      call.write({
        delta_update: {
          seed: String(seed0),
          deltas: [{ row_id: "2", col_id: "77", delta_prob: 2, last_update_time_ms: String(t0) }],
        },
      });
      const status = await ended;
      expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(status.details).toContain("delta_update.deltas[0].delta_prob");
    } finally {
      client.close();
    }
  });
});

describe("buf curl", () => {
  test("drives Sync over gRPC with HTTP/2 prior knowledge", async () => {
    server = await startServer();
    const data = [
      {
        deltaUpdate: {
          seed: String(seed0),
          deltas: [{ rowId: "1", colId: "9", deltaProb: 0.5, lastUpdateTimeMs: String(t0) }],
        },
      },
      { stateRequest: { seed: String(seed0) } },
    ]
      .map((m) => JSON.stringify(m))
      .join("\n");
    const { stdout } = await promisify(execFile)(
      join(repo, "node_modules/.bin/buf"),
      [
        "curl",
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        "--schema",
        join(repo, "proto"),
        "--data",
        data,
        `http://${server.running.grpcAddress}/fair.state.v1.StateService/Sync`,
      ],
      { cwd: repo },
    );
    const responses = stdout
      .trim()
      .split(/\n(?=\{)/)
      .map((text) => JSON.parse(text) as { seed: string; fullState?: boolean; buckets?: object[] });
    expect(responses).toEqual([
      {
        seed: String(seed0),
        buckets: [{ rowId: "1", colId: "9", prob: 0.5, lastUpdateTimeMs: String(t0) }],
      },
      {
        seed: String(seed0),
        buckets: [{ rowId: "1", colId: "9", prob: 0.5, lastUpdateTimeMs: String(t0) }],
        fullState: true,
        fullStateLast: true,
      },
    ]);
  });
});
