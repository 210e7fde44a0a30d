import { constants, type Http2ServerRequest } from "node:http2";
import { Code, ConnectError, createContextKey } from "@connectrpc/connect";
import { DECAY_RATE_HEADER, NAMESPACE_HEADER, WINDOW_MS_HEADER } from "@fair/state-proto";
import { type AuthTokens, describeRefusal } from "./auth-tokens.js";
import type { Connections } from "./connections.js";
import type { StateServerMetrics } from "./metrics.js";

/**
 * What the server decided about one `Sync` request before serving it. Made
 * by {@link Admission.admit} for every transport alike — the gRPC path and
 * Connect's — so a token, a connection over the limit or a stream that
 * cannot drain is handled by the same code whichever carries the stream.
 */
export interface SyncAdmission {
  /** The `fair-state-namespace` header; `""` when absent. */
  readonly namespace: string;
  /** The client's address and port as the server sees them (a proxy's, behind one), for logs. */
  readonly peer: string;
  /**
   * The window and λ the client says it runs with (`fair-state-window-ms`,
   * `fair-state-decay-rate` request headers; clients of this release send
   * them), as sent; `null` when absent.
   */
  readonly clientWindowMs: string | null;
  readonly clientDecayRate: string | null;
  /** Why the stream is refused before it starts, or `undefined` to serve it. */
  readonly refusal: ConnectError | undefined;
  /**
   * Resets the request's HTTP/2 stream if the client has left data unread.
   * Called when the hub cuts the stream off as a slow consumer: a client
   * that reads nothing would never receive a status queued behind its
   * unread data, and the writer would wait for it forever. Reset instead
   * (gRPC clients report `ENHANCE_YOUR_CALM` as RESOURCE_EXHAUSTED) and let
   * its buffers go; a stream that can still take writes ends with its
   * status as usual.
   */
  readonly resetIfStuck: () => void;
}

/** Carries a request's {@link SyncAdmission} into Connect's `Sync` handler. */
export const admissionKey = createContextKey<SyncAdmission>(
  {
    namespace: "",
    peer: "",
    clientWindowMs: null,
    clientDecayRate: null,
    refusal: new ConnectError(
      "Sync is served only through the state server's handler",
      Code.Internal,
    ),
    resetIfStuck() {},
  },
  { description: "fair-state admission" },
);

/** What {@link Admission} decides with. */
export interface AdmissionDeps {
  readonly connections: Connections;
  readonly metrics: StateServerMetrics;
  /** Whether the server is running: started, and not stopping. */
  readonly running: () => boolean;
}

/**
 * The server's door for `Sync`: a stream on a connection past
 * `maxConnections` gets RESOURCE_EXHAUSTED, one without a good token
 * (when tokens are configured) UNAUTHENTICATED or PERMISSION_DENIED, one
 * before the server has started or once it is stopping UNAVAILABLE. The
 * token itself never appears in a status, a log line or a metric.
 * `grpc.health.v1.Health` never comes here: probes carry no token, and a
 * full server is still alive.
 */
export class Admission {
  readonly #deps: AdmissionDeps;
  #tokens: AuthTokens | undefined;

  constructor(deps: AdmissionDeps) {
    this.#deps = deps;
  }

  /** Replaces the tokens `Sync` needs; `undefined` turns auth off. */
  setTokens(tokens: AuthTokens | undefined): void {
    this.#tokens = tokens;
  }

  /**
   * Decides about one `Sync` request. A stream it lets through marks its
   * connection admitted (`Connections.admit`): one the server will not
   * close to make room for newcomers.
   */
  admit(request: Http2ServerRequest): SyncAdmission {
    const namespace = header(request, NAMESPACE_HEADER) ?? "";
    const stream = request.stream;
    const refusal = this.#refusal(request, namespace);
    if (refusal === undefined) this.#deps.connections.admit(stream.session);
    const { remoteAddress, remotePort } = request.socket ?? {};
    return {
      namespace,
      peer: `${remoteAddress ?? "?"}:${remotePort ?? "?"}`,
      clientWindowMs: header(request, WINDOW_MS_HEADER),
      clientDecayRate: header(request, DECAY_RATE_HEADER),
      refusal,
      resetIfStuck() {
        if (stream.writableNeedDrain) stream.close(constants.NGHTTP2_ENHANCE_YOUR_CALM);
      },
    };
  }

  #refusal(request: Http2ServerRequest, namespace: string): ConnectError | undefined {
    const { connections, metrics, running } = this.#deps;
    const refused = connections.refusal(request.stream.session);
    if (refused) return refused;
    if (!running()) {
      return new ConnectError("the server is starting or stopping; retry", Code.Unavailable);
    }
    const tokens = this.#tokens;
    if (tokens === undefined) return undefined;
    const decision = tokens.check(header(request, "authorization"), namespace);
    if (decision.ok) return undefined;
    // Logged with every other refusal, rate-limited, by SyncService.serve.
    metrics.authFailures.labels(decision.refusal).inc();
    const { denied, message } = describeRefusal(decision.refusal, namespace);
    return new ConnectError(message, denied ? Code.PermissionDenied : Code.Unauthenticated);
  }
}

function header(request: Http2ServerRequest, name: string): string | null {
  const value = request.headers[name];
  return typeof value === "string" ? value : null;
}
