// A gRPC port open beyond this machine with nothing to tell clients apart
// lets anyone who reaches it write every bucket: the server says so once at
// start-up. The decision is tested on its own, for every kind of address;
// the server itself is only ever bound to loopback here, which gives no
// warning.
import { describe, expect, test } from "vitest";
import { loadConfig, type ServerLogger, serveStateServer } from "../src/index.js";
import { isLoopback, openPortWarning } from "../src/open-port-warning.js";

describe("isLoopback", () => {
  test("127.0.0.0/8, ::1 and loopback mapped into IPv6 are loopback", () => {
    for (const host of [
      "127.0.0.1",
      "127.1.2.3",
      "::1",
      "[::1]",
      "0:0:0:0:0:0:0:1",
      "::ffff:127.0.0.1",
    ]) {
      expect(isLoopback(host), host).toBe(true);
    }
  });

  test("wildcards, other addresses and host names are not", () => {
    for (const host of [
      "0.0.0.0",
      "::",
      "[::]",
      "10.0.0.7",
      "::ffff:10.0.0.7",
      "fe80::1",
      "localhost",
      "",
    ]) {
      expect(isLoopback(host), host).toBe(false);
    }
  });
});

describe("openPortWarning", () => {
  const open = { authTokensFile: undefined, tlsClientCaFile: undefined };

  test("beyond loopback without tokens: anyone can write every bucket, and how to turn tokens and TLS on", () => {
    const warning = openPortWarning(open, "0.0.0.0");
    expect(warning).toContain("anyone who can reach it can write every bucket");
    expect(warning).toContain("authTokensFile");
    expect(warning).toContain("tlsCertFile");
    expect(openPortWarning(open, "::")).toBe(warning);
  });

  test("none on loopback, with tokens, or with client certificates required (mTLS)", () => {
    expect(openPortWarning(open, "127.0.0.1")).toBeUndefined();
    expect(openPortWarning(open, "::1")).toBeUndefined();
    expect(openPortWarning({ ...open, authTokensFile: "/etc/tokens" }, "0.0.0.0")).toBeUndefined();
    expect(openPortWarning({ ...open, tlsClientCaFile: "/etc/ca.pem" }, "0.0.0.0")).toBeUndefined();
  });
});

/** Starts a server on `grpcListenAddress` without tokens, stops it; returns the warnings it logged. */
async function startUpWarnings(grpcListenAddress: string): Promise<string[]> {
  const warnings: string[] = [];
  const logger: ServerLogger = {
    info() {},
    warn: (_fields, message) => warnings.push(message),
    error() {},
  };
  const running = await serveStateServer({
    config: {
      ...loadConfig({ argv: [], env: {} }).config,
      grpcListenAddress,
      metricsListenAddress: "127.0.0.1:0",
    },
    logger,
  });
  await running.shutdown(100);
  return warnings.filter((message) => message.includes("authTokensFile"));
}

test("a server bound to loopback without tokens starts without the warning", async () => {
  expect(await startUpWarnings("127.0.0.1:0")).toEqual([]);
  // Judged by the address bound, not the name configured: "localhost" is loopback once bound.
  expect(await startUpWarnings("localhost:0")).toEqual([]);
});
