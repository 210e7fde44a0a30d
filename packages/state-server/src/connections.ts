import type { Http2Session } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ServerLogger } from "./logger.js";
import type { StateServerMetrics } from "./metrics.js";

/** The connection limits of the gRPC listener, in milliseconds where they are times. */
export interface ConnectionLimits {
  /** Most connections open at once; streams on more are refused (health aside). */
  readonly maxConnections: number;
  /** A connection the client sent nothing on for this long gets a PING; 0 sends none. */
  readonly keepaliveIntervalMs: number;
  /** A PING unanswered for this long destroys its connection. */
  readonly keepaliveTimeoutMs: number;
  /** A connection without a stream for this long is closed with GOAWAY; 0 never. */
  readonly idleTimeoutMs: number;
}

/** Why the server closed a connection, as a metric label. */
export type ConnectionCloseReason = "keepalive_timeout" | "idle";

/**
 * How long a refused connection may stay open without sending a request.
 * Its first request is answered and then it is closed; one that sends none
 * is cut after this.
 */
const REFUSED_LINGER_MS = 10_000;

/**
 * The HTTP/2 connections of the gRPC listener: counts them against
 * `maxConnections`, pings quiet ones, and closes dead and idle ones.
 *
 * **Refusing.** A connection past `maxConnections` is not dropped at once
 * (a gRPC client would only see "connection reset"): each `Sync` stream on
 * it gets `RESOURCE_EXHAUSTED` naming `maxConnections` (through the
 * server's admission, `admission.ts`), while `grpc.health.v1.Health` is
 * answered — a server full of clients is
 * alive, and the kubelet's gRPC probes open a connection each. At its first
 * request the connection is closed gracefully (GOAWAY): the request in
 * flight is answered and the client's next attempt opens a new connection.
 * One that sends no request is cut after 10 s. Refused connections do not
 * count against the limit.
 *
 * **Keepalive.** Every `keepaliveIntervalMs`, a connection on which the
 * client sent nothing since the last look gets an HTTP/2 PING (answers to
 * the server's own PINGs do not count as the client sending); a PING
 * unanswered within `keepaliveTimeoutMs` marks the peer dead and the
 * connection is destroyed, which ends its streams. So a connection goes
 * unpinged while the client talks — `@fair/state-client` PINGs every 5 s on
 * its own — and a dead peer is found within two intervals and a timeout.
 *
 * **Idle.** A connection that has had no open stream for `idleTimeoutMs`
 * (from its start or its last stream's end) is closed with GOAWAY, as
 * gRPC's `MaxConnectionIdle` does. A `Sync` stream that is merely quiet is
 * not idle: it is a subscriber waiting for broadcasts, and if its peer died
 * keepalive finds out.
 */
export class Connections {
  readonly #limits: ConnectionLimits;
  readonly #metrics: StateServerMetrics;
  readonly #logger: ServerLogger;
  readonly #sessions = new Map<Http2Session, SessionWatch>();
  readonly #refused = new WeakSet<Http2Session>();
  #open = 0;
  /** Whether refusals were logged since the count was last below the limit. */
  #fullLogged = false;
  #stopped = false;

  constructor(limits: ConnectionLimits, metrics: StateServerMetrics, logger: ServerLogger) {
    this.#limits = limits;
    this.#metrics = metrics;
    this.#logger = logger;
  }

  /** Connections counted against `maxConnections`. */
  get open(): number {
    return this.#open;
  }

  /** Every connection still open, refused ones included (for shutdown). */
  get sessions(): IterableIterator<Http2Session> {
    return this.#sessions.keys();
  }

  /** How many connections are open, refused ones included. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Takes a new connection: the gRPC server's `"session"` event. */
  add(session: Http2Session): void {
    const refused = this.#open >= this.#limits.maxConnections;
    const watch = new SessionWatch(session, this.#limits, (reason) => this.#closed(reason));
    this.#sessions.set(session, watch);
    if (refused) {
      this.#refuse(session);
    } else {
      this.#open++;
      this.#metrics.connections.inc();
    }
    session.once("close", () => {
      watch.stop();
      this.#sessions.delete(session);
      if (refused) return;
      this.#open--;
      this.#metrics.connections.dec();
      if (this.#open < this.#limits.maxConnections) this.#fullLogged = false;
    });
    if (!this.#stopped) watch.start();
  }

  /**
   * The status refusing a `Sync` stream on `session`, or `undefined` when
   * it may go on: streams on a refused connection get RESOURCE_EXHAUSTED.
   * (Health checks are answered on every connection; they never ask.)
   */
  refusal(session: Http2Session | undefined): ConnectError | undefined {
    if (session === undefined || !this.#refused.has(session)) return undefined;
    return new ConnectError(
      `the server holds its limit of ${this.#limits.maxConnections} connections (maxConnections); retry with backoff`,
      Code.ResourceExhausted,
    );
  }

  /** Stops every keepalive and idle timer (shutdown closes the connections). Idempotent. */
  stop(): void {
    this.#stopped = true;
    for (const watch of this.#sessions.values()) watch.stop();
  }

  #refuse(session: Http2Session): void {
    this.#refused.add(session);
    this.#metrics.connectionsRefused.labels("max_connections").inc();
    if (!this.#fullLogged) {
      this.#fullLogged = true;
      this.#logger.warn(
        { maxConnections: this.#limits.maxConnections },
        "connection limit reached: refusing new connections (maxConnections)",
      );
    }
    const linger = setTimeout(() => session.destroy(), REFUSED_LINGER_MS);
    linger.unref();
    session.once("close", () => clearTimeout(linger));
    session.once("stream", () => {
      clearTimeout(linger);
      // GOAWAY now; the stream that just came is still answered.
      session.close();
    });
  }

  #closed(reason: ConnectionCloseReason): void {
    this.#metrics.connectionsClosed.labels(reason).inc();
    const message =
      reason === "idle"
        ? "closed a connection without streams (idleTimeoutMs)"
        : "closed a connection whose PING went unanswered (keepaliveTimeoutMs)";
    this.#logger.info({ reason }, message);
  }
}

/** One connection's keepalive PINGs and idle timer. */
class SessionWatch {
  readonly #session: Http2Session;
  readonly #limits: ConnectionLimits;
  readonly #onClose: (reason: ConnectionCloseReason) => void;
  #streams = 0;
  /** Bytes the client had sent at the last look (or at the last PING's answer). */
  #lastRead = 0;
  #keepalive: NodeJS.Timeout | undefined;
  #pingTimeout: NodeJS.Timeout | undefined;
  #idle: NodeJS.Timeout | undefined;
  #running = false;

  constructor(
    session: Http2Session,
    limits: ConnectionLimits,
    onClose: (reason: ConnectionCloseReason) => void,
  ) {
    this.#session = session;
    this.#limits = limits;
    this.#onClose = onClose;
  }

  start(): void {
    if (this.#session.destroyed || this.#session.closed) return;
    this.#running = true;
    const { keepaliveIntervalMs, idleTimeoutMs } = this.#limits;
    if (keepaliveIntervalMs > 0) {
      this.#lastRead = this.#bytesRead();
      this.#keepalive = setInterval(this.#look, keepaliveIntervalMs);
      this.#keepalive.unref();
    }
    if (idleTimeoutMs > 0) {
      this.#session.on("stream", this.#onStream);
      this.#armIdle();
    }
  }

  stop(): void {
    this.#running = false;
    clearInterval(this.#keepalive);
    clearTimeout(this.#pingTimeout);
    clearTimeout(this.#idle);
    this.#keepalive = this.#pingTimeout = this.#idle = undefined;
    this.#session.off("stream", this.#onStream);
  }

  /** Every keepalive interval: a quiet connection gets a PING, unless one is out. */
  readonly #look = (): void => {
    const session = this.#session;
    if (this.#pingTimeout !== undefined || session.destroyed || session.closed) return;
    const read = this.#bytesRead();
    if (read !== this.#lastRead) {
      this.#lastRead = read;
      return;
    }
    const timeout = setTimeout(() => {
      this.#pingTimeout = undefined;
      if (session.destroyed) return;
      this.#onClose("keepalive_timeout");
      session.destroy();
    }, this.#limits.keepaliveTimeoutMs);
    timeout.unref();
    this.#pingTimeout = timeout;
    const answered = (error: Error | null) => {
      clearTimeout(timeout);
      if (this.#pingTimeout === timeout) this.#pingTimeout = undefined;
      // The answer itself is not the client talking.
      if (!error) this.#lastRead = this.#bytesRead();
    };
    try {
      if (!session.ping(answered)) answered(new Error("too many PINGs outstanding"));
    } catch (error) {
      // Closed between the check and the PING: its close ends the watch.
      answered(error as Error);
    }
  };

  readonly #onStream = (stream: { once(event: "close", listener: () => void): unknown }): void => {
    this.#streams++;
    clearTimeout(this.#idle);
    this.#idle = undefined;
    stream.once("close", () => {
      this.#streams--;
      if (this.#streams === 0 && this.#running) this.#armIdle();
    });
  };

  #armIdle(): void {
    const session = this.#session;
    this.#idle = setTimeout(() => {
      this.#idle = undefined;
      if (this.#streams > 0 || session.closed || session.destroyed) return;
      this.#onClose("idle");
      session.close();
    }, this.#limits.idleTimeoutMs);
    this.#idle.unref();
  }

  #bytesRead(): number {
    return this.#session.socket?.bytesRead ?? 0;
  }
}
