import { once } from "node:events";
import { createServer, type Http2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { GrpcFrameReader, SyncResponseSchema } from "@fair/state-proto";
import { frame } from "./grpc-frames.js";

/**
 * A stand-in server that reads and discards everything, answering only
 * StateRequests (with an empty full-state reply): running the generator
 * against it measures what the generator can send on its own.
 */
export async function startSink(): Promise<{ address: string; close: () => Promise<void> }> {
  const empty = frame(
    toBinary(
      SyncResponseSchema,
      create(SyncResponseSchema, { fullState: true, fullStateLast: true }),
    ),
  );
  const server: Http2Server = createServer((request, response) => {
    response.writeHead(200, { "content-type": "application/grpc+proto" });
    const reader = new GrpcFrameReader();
    request.on("data", (chunk: Buffer) => {
      for (const message of reader.push(chunk)) {
        // A StateRequest is field 2 (tag 0x12); a DeltaUpdate is field 1.
        if (message[0] === 0x12) response.write(empty);
      }
    });
    request.on("end", () => {
      response.addTrailers({ "grpc-status": "0" });
      response.end();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
