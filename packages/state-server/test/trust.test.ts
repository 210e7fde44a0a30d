// TLS, mTLS, bearer tokens, reloads and snapshots, with certificates made
// by openssl at test time.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import {
  Health,
  NAMESPACE_HEADER,
  HealthCheckResponse_ServingStatus as ServingStatus,
  StateService,
  SyncRequestSchema,
  type SyncResponse,
} from "@fair/state-proto";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import {
  loadConfig,
  type RunningStateServer,
  type StateServerConfig,
  serveStateServer,
} from "../src/index.js";

const seed = BigInt(Math.floor(Date.now() / 300_000) * 300_000);
const everything = "tok-everything-0123456789";
const checkoutOnly = "tok-checkout-only-0123456789";
let dir: string;
const file = (name: string) => join(dir, name);
const pem = (name: string) => readFileSync(file(name));

function openssl(...args: string[]) {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}

/** A CA and a certificate it signs for `cn` (with 127.0.0.1 as a SAN). */
function makeCa(name: string) {
  openssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    `/CN=${name}`,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
  );
}
function makeCert(name: string, ca: string) {
  writeFileSync(file(`${name}.ext`), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    `/CN=${name}`,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
  );
  openssl(
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.pem`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}.pem`,
  );
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "fair-trust-"));
  makeCa("ca");
  makeCa("other-ca");
  makeCert("server", "ca");
  makeCert("client", "ca");
  makeCert("stranger", "other-ca");
  writeFileSync(file("tokens"), `${everything}\n${checkoutOnly} checkout\n`);
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let running: RunningStateServer | undefined;
const managers: Http2SessionManager[] = [];
afterEach(async () => {
  for (const manager of managers.splice(0)) manager.abort();
  await running?.shutdown(500);
  running = undefined;
});

async function start(overrides: Partial<StateServerConfig>) {
  const config: StateServerConfig = {
    ...loadConfig({ argv: [], env: {} }).config,
    grpcListenAddress: "127.0.0.1:0",
    metricsListenAddress: "127.0.0.1:0",
    ...overrides,
  };
  running = await serveStateServer({ config });
  return running;
}

/** TLS with a client CA (mTLS) and tokens. */
function secureConfig(): Partial<StateServerConfig> {
  return {
    tlsCertFile: file("server.pem"),
    tlsKeyFile: file("server.key"),
    tlsClientCaFile: file("ca.pem"),
    authTokensFile: file("tokens"),
  };
}

/** Opens Sync with these TLS options and headers, sends one StateRequest, returns the reply or the status. */
async function trySync(
  address: string,
  options: { ca?: Buffer; cert?: Buffer; key?: Buffer; plaintext?: boolean },
  headers: Record<string, string>,
): Promise<SyncResponse | ConnectError> {
  const baseUrl = `${options.plaintext ? "http" : "https"}://${address}`;
  const { plaintext: _, ...tls } = options;
  const manager = new Http2SessionManager(baseUrl, {}, tls);
  managers.push(manager);
  const client = createClient(
    StateService,
    createGrpcTransport({ baseUrl, sessionManager: manager }),
  );
  const requests = (async function* () {
    yield create(SyncRequestSchema, { request: { case: "stateRequest", value: { seed } } });
  })();
  try {
    for await (const response of client.sync(requests, { headers, timeoutMs: 10_000 }))
      return response;
    return new ConnectError("no reply", Code.Unknown);
  } catch (error) {
    return ConnectError.from(error);
  }
}

const trusted = () => ({ ca: pem("ca.pem"), cert: pem("client.pem"), key: pem("client.key") });
const bearer = (token: string, namespace = "") => ({
  authorization: `Bearer ${token}`,
  ...(namespace === "" ? {} : { [NAMESPACE_HEADER]: namespace }),
});

describe("TLS and mTLS", () => {
  test("a client with the right CA, a client certificate and a token gets served", async () => {
    const server = await start(secureConfig());
    const reply = await trySync(server.grpcAddress, trusted(), bearer(everything));
    expect(reply).toMatchObject({ seed, fullState: true });
  });

  test("plaintext is refused when TLS is on", async () => {
    const server = await start(secureConfig());
    const reply = await trySync(server.grpcAddress, { plaintext: true }, bearer(everything));
    expect(reply).toBeInstanceOf(ConnectError);
  });

  test("a client that does not trust the server's CA refuses it", async () => {
    const server = await start(secureConfig());
    const reply = await trySync(
      server.grpcAddress,
      { ...trusted(), ca: pem("other-ca.pem") },
      bearer(everything),
    );
    expect(reply).toBeInstanceOf(ConnectError);
    expect((reply as ConnectError).message).toMatch(/certificate/i);
  });

  test("with a client CA, a client without a certificate, or with one from another CA, is refused", async () => {
    const server = await start(secureConfig());
    const none = await trySync(server.grpcAddress, { ca: pem("ca.pem") }, bearer(everything));
    expect(none).toBeInstanceOf(ConnectError);
    const stranger = await trySync(
      server.grpcAddress,
      { ca: pem("ca.pem"), cert: pem("stranger.pem"), key: pem("stranger.key") },
      bearer(everything),
    );
    expect(stranger).toBeInstanceOf(ConnectError);
  });

  test("reload() puts a new certificate in place for new connections", async () => {
    const server = await start({ tlsCertFile: file("server.pem"), tlsKeyFile: file("server.key") });
    const serial = () =>
      new Promise<string>((resolve, reject) => {
        const [host, port] = server.grpcAddress.split(":");
        const socket = tlsConnect(
          { host, port: Number(port), ca: pem("ca.pem"), ALPNProtocols: ["h2"] },
          () => {
            resolve(socket.getPeerCertificate().serialNumber);
            socket.end();
          },
        ).on("error", reject);
      });
    const before = await serial();
    makeCert("server", "ca"); // a new key and certificate in the same files
    await server.reload();
    expect(await serial()).not.toBe(before);
  });
});

describe("bearer tokens", () => {
  test("a missing or unknown token is UNAUTHENTICATED; health needs none", async () => {
    const server = await start(secureConfig());
    const missing = await trySync(server.grpcAddress, trusted(), {});
    expect(missing).toMatchObject({ code: Code.Unauthenticated });
    const wrong = await trySync(server.grpcAddress, trusted(), bearer(`${everything}x`));
    expect(wrong).toMatchObject({ code: Code.Unauthenticated });
    expect((wrong as ConnectError).message).not.toContain(everything);

    const manager = new Http2SessionManager(`https://${server.grpcAddress}`, {}, trusted());
    managers.push(manager);
    const health = createClient(
      Health,
      createGrpcTransport({ baseUrl: `https://${server.grpcAddress}`, sessionManager: manager }),
    );
    expect((await health.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    const metrics = await (await fetch(`http://${server.metricsAddress}/metrics`)).text();
    expect(metrics).toContain('fair_state_auth_failures_total{reason="missing"} 1');
    expect(metrics).toContain('fair_state_auth_failures_total{reason="unknown"} 1');
  });

  test("a namespace-bound token may use its namespace and no other: PERMISSION_DENIED", async () => {
    const server = await start(secureConfig());
    expect(
      await trySync(server.grpcAddress, trusted(), bearer(checkoutOnly, "checkout")),
    ).toMatchObject({ fullState: true });
    expect(
      await trySync(server.grpcAddress, trusted(), bearer(checkoutOnly, "search")),
    ).toMatchObject({
      code: Code.PermissionDenied,
    });
    expect(await trySync(server.grpcAddress, trusted(), bearer(checkoutOnly))).toMatchObject({
      code: Code.PermissionDenied,
    });
  });

  test("a token removed from the file is refused after reload()", async () => {
    const tokens = file("tokens-rotating");
    writeFileSync(tokens, `${everything}\n`);
    const server = await start({ authTokensFile: tokens });
    expect(
      await trySync(server.grpcAddress, { plaintext: true }, bearer(everything)),
    ).toMatchObject({ fullState: true });
    writeFileSync(tokens, `${checkoutOnly}\n`);
    await server.reload();
    expect(
      await trySync(server.grpcAddress, { plaintext: true }, bearer(everything)),
    ).toMatchObject({
      code: Code.Unauthenticated,
    });
  });
});

describe("snapshots", () => {
  test("the store written at shutdown is the store loaded at the next start-up", async () => {
    const path = file("state.snapshot");
    const first = await start({ snapshotPath: path });
    first.server.store.applyDelta(seed, 1, 2, 0.5, Date.now());
    await first.shutdown(500);
    running = undefined;

    const second = await start({ snapshotPath: path });
    expect(await second.server.store.getSeed(seed)).toMatchObject([
      { rowId: 1, colId: 2, prob: 0.5 },
    ]);
  });

  test("a corrupt snapshot is set aside and the server starts empty", async () => {
    const path = file("corrupt.snapshot");
    writeFileSync(path, "not a snapshot");
    const server = await start({ snapshotPath: path });
    expect(await server.server.store.getSeed(seed)).toEqual([]);
    expect(server.server.health.serving).toBe(true);
  });
});
