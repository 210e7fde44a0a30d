import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type ClientSessionRequestOptions,
  connect,
  type OutgoingHttpHeaders,
  type SecureClientSessionOptions,
} from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * The HTTP/2 connection under a client's one `Sync` stream, with keepalive:
 * a PING every `intervalMs`, and a PING unanswered for `timeoutMs` destroys
 * the session, failing the stream so the client reconnects. That is how a
 * dead server or a half-open connection (no FIN, no RST) is noticed within
 * seconds rather than at the kernel's TCP timeout.
 *
 * connect-node's own session manager does this too, but in 2.1.2 a PING that
 * times out while the manager is verifying or closing a session raises the
 * error on a session nobody listens to any more: an uncaught exception that
 * kills the process (seen in this project's half-open test; related upstream
 * reports: connect-es #1143, #1795). Here every session keeps an error
 * listener for its whole life, so its errors reach its streams and nothing
 * else. It has the shape of connect-node's session manager interface
 * (`authority`, `request`, `notifyResponseByteRead`), which that package
 * does not export by name.
 */
export class KeepaliveSession {
  readonly authority: string;
  #session: ClientHttp2Session | undefined;
  #connecting: Promise<ClientHttp2Session> | undefined;
  #closed = false;

  constructor(
    baseUrl: string,
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
    private readonly tls: SecureClientSessionOptions | undefined,
  ) {
    this.authority = new URL(baseUrl).origin;
  }

  async request(
    method: string,
    path: string,
    headers: OutgoingHttpHeaders,
    options: Omit<ClientSessionRequestOptions, "signal">,
  ): Promise<ClientHttp2Stream> {
    const session = await this.#open();
    const stream = session.request({ ...headers, ":method": method, ":path": path }, options);
    // Keep the process alive while a stream is open, and only then.
    session.ref();
    stream.once("close", () => {
      if (!session.destroyed && this.#session === session) session.unref();
    });
    return stream;
  }

  /** Every PING is answered or fails on its own; received bytes need no bookkeeping here. */
  notifyResponseByteRead(): void {}

  /** Destroys the connection; later requests fail. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#session?.destroy();
    this.#session = undefined;
  }

  #open(): Promise<ClientHttp2Session> {
    if (this.#closed) return Promise.reject(new Error("the connection was closed"));
    const current = this.#session;
    if (current && !current.closed && !current.destroyed) return Promise.resolve(current);
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  #connect(): Promise<ClientHttp2Session> {
    return new Promise((resolve, reject) => {
      const session = connect(this.authority, this.tls ?? {});
      // Never removed: a session's late errors must not become uncaught exceptions.
      session.on("error", reject);
      // A session can also close, or hang, before it ever connects (a server
      // going away mid-handshake): neither may leave this promise pending,
      // or every later request would wait on it forever.
      const closedEarly = () =>
        reject(
          new ConnectError("the connection closed before it was established", Code.Unavailable),
        );
      session.once("close", closedEarly);
      const timeout = setTimeout(() => {
        session.destroy(
          new ConnectError(`no HTTP/2 connection within ${this.timeoutMs} ms`, Code.Unavailable),
        );
      }, this.timeoutMs);
      timeout.unref();
      session.once("connect", () => {
        clearTimeout(timeout);
        session.off("close", closedEarly);
        if (this.#closed) {
          session.destroy();
          reject(new Error("the connection was closed"));
          return;
        }
        session.unref();
        this.#session = session;
        const timer = setInterval(() => this.#ping(session), this.intervalMs);
        timer.unref();
        session.once("close", () => {
          clearInterval(timer);
          if (this.#session === session) this.#session = undefined;
        });
        // After GOAWAY the session finishes its streams; new ones need a new session.
        session.once("goaway", () => {
          if (this.#session === session) this.#session = undefined;
        });
        resolve(session);
      });
    });
  }

  #ping(session: ClientHttp2Session): void {
    if (session.closed || session.destroyed) return;
    const timeout = setTimeout(() => {
      session.destroy(
        new ConnectError(
          `no answer to an HTTP/2 PING within ${this.timeoutMs} ms: the connection is dead`,
          Code.Unavailable,
        ),
      );
    }, this.timeoutMs);
    timeout.unref();
    try {
      session.ping(() => clearTimeout(timeout));
    } catch {
      // The session died between the check and the PING; its close handler cleans up.
      clearTimeout(timeout);
    }
  }
}
