import type { Http2Session } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { systemTimers, type Timers } from "@fair/timers";
import {
  type ConnectionCloseReason,
  type ConnectionTimes,
  ConnectionWatch,
  closeGracefully,
  LINGER_MS,
} from "./connection-watch.js";
import type { ServerLogger } from "./logger.js";
import type { StateServerMetrics } from "./metrics.js";

export type { ConnectionCloseReason } from "./connection-watch.js";

/** The connection limits of the gRPC listener, in milliseconds where they are times. */
export interface ConnectionLimits extends ConnectionTimes {
  /** Most connections open at once; streams on more are refused (health aside). */
  readonly maxConnections: number;
}

/**
 * The HTTP/2 connections of the gRPC listener: counts them against
 * `maxConnections`, makes room for newcomers, pings quiet ones, and closes
 * dead, idle and streamless ones (`connection-watch.ts`).
 *
 * **Admitted connections.** A connection is *admitted* once one of its
 * `Sync` streams has passed the server's admission (`admission.ts`: the
 * connection limit, the token, the server running). Until then it is only a
 * socket that spoke HTTP/2: it may be a client a few milliseconds from its
 * first stream, a kubelet probe, or one of ten thousand connections that
 * send the preface, answer PINGs and never open a stream.
 *
 * **Making room.** When a connection arrives while `maxConnections` are
 * open, the oldest one that was never admitted is closed to make room
 * (GOAWAY, destroyed if it lingers; `evicted`), and the newcomer is served.
 * Only when every open connection is admitted is the newcomer refused.
 * Why this keeps legitimate clients in: a client connects to open its
 * `Sync` stream, and is admitted within a round trip or two of connecting;
 * from then on nothing but its own leaving (or keepalive, or idleness)
 * takes its slot. A flood of connections that are never admitted can only
 * take the slots no admitted client holds, and takes them from each other,
 * oldest first: to push out a newcomer before its first stream is
 * admitted, it would have to open as many connections as there are
 * unadmitted ones older than the newcomer, within that round trip. What a
 * flood can still do: make the server accept, and close, a connection per
 * connection it opens; and hold every slot if its connections do get
 * admitted — with `authTokensFile` unset a `Sync` stream needs no token, so
 * tokens (or a network policy) are what stops a flood that opens streams.
 * `connectionTimeoutMs` closes streamless connections anyway, and
 * `idleTimeoutMs` those whose streams have ended.
 *
 * **Why not per address.** A limit per client address would let one host
 * fill its share only, but behind a service mesh sidecar (Istio, Linkerd)
 * every client arrives from the same address, the sidecar's, and such a
 * limit would be one limit for everyone — or, set high enough for the
 * fleet, none.
 *
 * **Refusing.** A connection refused at `maxConnections` is not dropped at
 * once (a gRPC client would only see "connection reset"): each `Sync`
 * stream on it gets `RESOURCE_EXHAUSTED` naming `maxConnections` (through
 * the admission), while `grpc.health.v1.Health` is answered — a server full
 * of clients is alive, and the kubelet's gRPC probes open a connection
 * each. At its first request the connection is closed gracefully (GOAWAY):
 * the request in flight is answered and the client's next attempt opens a
 * new connection. One that sends no request is cut after 10 s. Refused
 * connections do not count against the limit.
 */
export class Connections {
  readonly #limits: ConnectionLimits;
  readonly #metrics: StateServerMetrics;
  readonly #logger: ServerLogger;
  readonly #timers: Timers;
  readonly #sessions = new Map<Http2Session, ConnectionWatch>();
  /** Connections counted against the limit. */
  readonly #counted = new Set<Http2Session>();
  /** Counted connections never admitted, oldest first (a Set keeps insertion order). */
  readonly #unadmitted = new Set<Http2Session>();
  /** Connections whose `Sync` streams are refused: over the limit, or evicted. */
  readonly #refused = new WeakSet<Http2Session>();
  /** Whether refusals (evictions) were logged since the count was last below the limit. */
  #refusalLogged = false;
  #evictionLogged = false;
  #stopped = false;

  /**
   * @param timers for the first-stream timeout and the lingers of closed
   *   connections (keepalive and idleness run on the platform's timers; see
   *   `ConnectionWatch`). Default `systemTimers`.
   */
  constructor(
    limits: ConnectionLimits,
    metrics: StateServerMetrics,
    logger: ServerLogger,
    timers: Timers = systemTimers,
  ) {
    this.#limits = limits;
    this.#metrics = metrics;
    this.#logger = logger;
    this.#timers = timers;
  }

  /** Connections counted against `maxConnections`. */
  get open(): number {
    return this.#counted.size;
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
    if (this.#counted.size >= this.#limits.maxConnections) this.#makeRoom();
    const refused = this.#counted.size >= this.#limits.maxConnections;
    const watch = new ConnectionWatch(session, this.#limits, this.#timers, (reason) =>
      this.#closed(reason),
    );
    this.#sessions.set(session, watch);
    if (refused) {
      this.#refuse(session);
    } else {
      this.#counted.add(session);
      this.#unadmitted.add(session);
      this.#metrics.connections.inc();
    }
    session.once("close", () => {
      watch.stop();
      this.#sessions.delete(session);
      this.#unadmitted.delete(session);
      if (this.#counted.delete(session)) this.#uncount();
    });
    if (!this.#stopped) watch.start();
  }

  /**
   * Marks `session` admitted: one of its `Sync` streams passed the
   * admission. From now on it is never closed to make room.
   */
  admit(session: Http2Session | undefined): void {
    if (session !== undefined) this.#unadmitted.delete(session);
  }

  /**
   * The status refusing a `Sync` stream on `session`, or `undefined` when
   * it may go on: streams on a refused or evicted connection get
   * RESOURCE_EXHAUSTED. (Health checks are answered on every connection;
   * they never ask.)
   */
  refusal(session: Http2Session | undefined): ConnectError | undefined {
    if (session === undefined || !this.#refused.has(session)) return undefined;
    return new ConnectError(
      `the server holds its limit of ${this.#limits.maxConnections} connections (maxConnections); retry with backoff`,
      Code.ResourceExhausted,
    );
  }

  /** Stops every connection's timers (shutdown closes the connections). Idempotent. */
  stop(): void {
    this.#stopped = true;
    for (const watch of this.#sessions.values()) watch.stop();
  }

  /** At the limit: closes the oldest connection never admitted, if there is one. */
  #makeRoom(): void {
    const [oldest] = this.#unadmitted;
    if (oldest === undefined) return;
    this.#unadmitted.delete(oldest);
    this.#counted.delete(oldest);
    this.#metrics.connections.dec();
    // A stream of its still in flight is refused like one past the limit.
    this.#refused.add(oldest);
    this.#closed("evicted");
    if (!this.#evictionLogged) {
      this.#evictionLogged = true;
      this.#logger.warn(
        { maxConnections: this.#limits.maxConnections },
        "connection limit reached: closing the oldest connections that never opened an admitted Sync stream to make room (maxConnections)",
      );
    }
    closeGracefully(oldest, this.#timers);
  }

  #uncount(): void {
    this.#metrics.connections.dec();
    if (this.#counted.size < this.#limits.maxConnections) {
      this.#refusalLogged = this.#evictionLogged = false;
    }
  }

  #refuse(session: Http2Session): void {
    this.#refused.add(session);
    this.#metrics.connectionsRefused.labels("max_connections").inc();
    if (!this.#refusalLogged) {
      this.#refusalLogged = true;
      this.#logger.warn(
        { maxConnections: this.#limits.maxConnections },
        "connection limit reached, every connection admitted: refusing new connections (maxConnections)",
      );
    }
    const timers = this.#timers;
    const linger = timers.setTimeout(() => session.destroy(), LINGER_MS);
    session.once("close", () => timers.clearTimeout(linger));
    session.once("stream", () => {
      timers.clearTimeout(linger);
      // GOAWAY now; the stream that just came is still answered.
      closeGracefully(session, timers);
    });
  }

  #closed(reason: ConnectionCloseReason): void {
    this.#metrics.connectionsClosed.labels(reason).inc();
    const message = closeMessages[reason];
    if (message !== undefined) this.#logger.info({ reason }, message);
  }
}

/**
 * The line logged for each connection closed, by reason. Connections closed
 * for opening no stream, or to make room, get none: a flood would write one
 * line per connection it opens. The counter has them, and making room is
 * logged once each time the server fills up.
 */
const closeMessages: Partial<Record<ConnectionCloseReason, string>> = {
  idle: "closed a connection without streams (idleTimeoutMs)",
  keepalive_timeout: "closed a connection whose PING went unanswered (keepaliveTimeoutMs)",
};
