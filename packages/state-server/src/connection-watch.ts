import type { Http2Session } from "node:http2";
import type { Timers } from "@fair/timers";

/** Why the server closed a connection, as a metric label. */
export type ConnectionCloseReason = "keepalive_timeout" | "idle" | "connection_timeout" | "evicted";

/** The times one connection is held to, in milliseconds. */
export interface ConnectionTimes {
  /** A connection the client sent nothing on for this long gets a PING; 0 sends none. */
  readonly keepaliveIntervalMs: number;
  /** A PING unanswered for this long destroys its connection. */
  readonly keepaliveTimeoutMs: number;
  /** A connection without a stream for this long is closed with GOAWAY; 0 never. */
  readonly idleTimeoutMs: number;
  /** A new connection that has opened no stream this long after it was made is closed. */
  readonly connectionTimeoutMs: number;
}

/** How long a connection told to go (GOAWAY) may keep its streams before it is destroyed. */
export const LINGER_MS = 10_000;

/**
 * Closes `session` gracefully — GOAWAY: the streams it has run to their end,
 * no new ones — and destroys it if it is still open {@link LINGER_MS} later.
 */
export function closeGracefully(session: Http2Session, timers: Timers): void {
  if (session.closed || session.destroyed) return;
  const linger = timers.setTimeout(() => session.destroy(), LINGER_MS);
  session.once("close", () => timers.clearTimeout(linger));
  session.close();
}

/**
 * One connection's timers: its first stream, keepalive PINGs and idleness.
 *
 * **First stream.** A connection that has opened no stream
 * `connectionTimeoutMs` after it was accepted is closed
 * (`connection_timeout`): a client connects to open a stream, and one that
 * only sends the HTTP/2 preface and answers PINGs holds a connection slot
 * for nothing.
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
 *
 * The first-stream timeout runs on the injected `timers`, as the server's
 * other timeouts do. Keepalive and idleness run on the platform's timers
 * (unref'ed): they judge a real peer by what it does on a real socket, and
 * a test's fake clock jumping by hours must not declare every peer dead.
 */
export class ConnectionWatch {
  readonly #session: Http2Session;
  readonly #times: ConnectionTimes;
  readonly #timers: Timers;
  readonly #onClose: (reason: ConnectionCloseReason) => void;
  #streams = 0;
  #openedStream = false;
  /** Bytes the client had sent at the last look (or at the last PING's answer). */
  #lastRead = 0;
  #firstStream: unknown;
  #keepalive: NodeJS.Timeout | undefined;
  #pingTimeout: NodeJS.Timeout | undefined;
  #idle: NodeJS.Timeout | undefined;
  #running = false;

  constructor(
    session: Http2Session,
    times: ConnectionTimes,
    timers: Timers,
    onClose: (reason: ConnectionCloseReason) => void,
  ) {
    this.#session = session;
    this.#times = times;
    this.#timers = timers;
    this.#onClose = onClose;
  }

  /** Starts the connection's timers (the server's `"session"` event). */
  start(): void {
    if (this.#session.destroyed || this.#session.closed) return;
    this.#running = true;
    const { keepaliveIntervalMs, idleTimeoutMs, connectionTimeoutMs } = this.#times;
    this.#session.on("stream", this.#onStream);
    if (connectionTimeoutMs > 0) {
      this.#firstStream = this.#timers.setTimeout(this.#noStreamYet, connectionTimeoutMs);
    }
    if (keepaliveIntervalMs > 0) {
      this.#lastRead = this.#bytesRead();
      this.#keepalive = setInterval(this.#look, keepaliveIntervalMs);
      this.#keepalive.unref();
    }
    if (idleTimeoutMs > 0) this.#armIdle();
  }

  /** Stops every timer of the connection: it closed, or the server is stopping. */
  stop(): void {
    this.#running = false;
    this.#stopFirstStream();
    clearInterval(this.#keepalive);
    clearTimeout(this.#pingTimeout);
    clearTimeout(this.#idle);
    this.#keepalive = this.#pingTimeout = this.#idle = undefined;
    this.#session.off("stream", this.#onStream);
  }

  readonly #noStreamYet = (): void => {
    this.#firstStream = undefined;
    const session = this.#session;
    if (this.#openedStream || session.closed || session.destroyed) return;
    this.#onClose("connection_timeout");
    closeGracefully(session, this.#timers);
  };

  #stopFirstStream(): void {
    if (this.#firstStream === undefined) return;
    this.#timers.clearTimeout(this.#firstStream);
    this.#firstStream = undefined;
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
    }, this.#times.keepaliveTimeoutMs);
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
    if (!this.#openedStream) {
      this.#openedStream = true;
      this.#stopFirstStream();
    }
    this.#streams++;
    clearTimeout(this.#idle);
    this.#idle = undefined;
    stream.once("close", () => {
      this.#streams--;
      if (this.#streams === 0 && this.#running && this.#times.idleTimeoutMs > 0) this.#armIdle();
    });
  };

  #armIdle(): void {
    const session = this.#session;
    this.#idle = setTimeout(() => {
      this.#idle = undefined;
      if (this.#streams > 0 || session.closed || session.destroyed) return;
      this.#onClose("idle");
      session.close();
    }, this.#times.idleTimeoutMs);
    this.#idle.unref();
  }

  #bytesRead(): number {
    return this.#session.socket?.bytesRead ?? 0;
  }
}
