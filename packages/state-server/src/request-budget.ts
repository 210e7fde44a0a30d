import type { Http2ServerRequest, ServerHttp2Stream } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Timers } from "@fair/timers";
import { MessageMeter, requestFraming } from "./message-meter.js";
import type { StateServerMetrics } from "./metrics.js";
import { failRequest, resetStuck } from "./stream-end.js";

/** What {@link RequestBudget} enforces, and with what. */
export interface RequestBudgetOptions {
  /** A request message not complete this long after its first byte ends its stream. */
  readonly messageTimeoutMs: number;
  /** Most bytes of unfinished request messages held over every stream. */
  readonly maxBufferedRequestBytes: number;
  /** Larger messages are the transports' to refuse; the budget does not count them. */
  readonly maxMessageBytes: number;
  /** Where refusals (`fair_state_streams_refused_total`) and the total held are counted. */
  readonly metrics: Pick<StateServerMetrics, "streamsRefused" | "bufferedRequestBytes">;
  /** For the sweep that ends streams past `messageTimeoutMs`. */
  readonly timers: Timers;
}

/** Why the budget ended a stream, as a `fair_state_streams_refused_total` reason. */
export type BudgetRefusal = "message_timeout" | "max_buffered_request_bytes";

/**
 * Sweeps per `messageTimeoutMs`: a message still unfinished is ended
 * between `messageTimeoutMs` and 1.25 × it after its first byte.
 */
const SWEEPS_PER_TIMEOUT = 4;

/**
 * The memory a request's sender can make the server hold, bounded in time
 * and in total. A message is buffered until it is complete — by the
 * server's gRPC path and by connect-node alike, up to `maxMessageBytes`
 * each — so a client that sends a prefix claiming 4 MiB and then dribbles
 * (or stops) would hold 4 MiB per stream for as long as it likes. With
 * this budget:
 *
 * - a stream whose message is still unfinished `messageTimeoutMs` after its
 *   first byte is ended (`message_timeout`): at the default 30 s, a client
 *   must send a 4 MiB message at 140 KB/s or more;
 * - a chunk that would take the unfinished bytes of every stream together
 *   past `maxBufferedRequestBytes` ends its stream
 *   (`max_buffered_request_bytes`): whoever would go past the budget is
 *   refused, and what is already held stays within it.
 *
 * Each ends its stream with RESOURCE_EXHAUSTED naming the key and resets it
 * (`stream-end.ts`), so its buffers are released and its client cannot go
 * on writing into it. Complete messages are not counted: their reader
 * hands each one on at once, and Node's flow control stops a stream whose
 * reader falls behind. A client sending whole messages at any speed, as
 * honest ones do, is never refused.
 *
 * Timing costs one interval sweep while any stream is open, not a timer
 * per message, and a counter read per chunk, not a clock read.
 */
export class RequestBudget {
  readonly #options: RequestBudgetOptions;
  readonly #sweepEveryMs: number;
  /** Bytes counted over every stream: the sum of each watch's `counted`. */
  #total = 0;
  #sweeps = 0;
  #streams = 0;
  #sweep: unknown;
  readonly #unfinished = new Set<Watch>();
  /** Streams ended by the budget, by the sweep they were ended at, until they close. */
  readonly #ended = new Map<Watch, number>();

  constructor(options: RequestBudgetOptions) {
    this.#options = options;
    this.#sweepEveryMs = Math.max(1, Math.ceil(options.messageTimeoutMs / SWEEPS_PER_TIMEOUT));
  }

  /** Bytes of unfinished request messages held now, over every stream. */
  get buffered(): number {
    return this.#total;
  }

  /**
   * Watches the body of `request` until its stream closes, however it
   * closes. Its chunks are seen as its reader gets them, by a listener that
   * does not change how the stream flows.
   */
  watch(request: Http2ServerRequest): void {
    const stream = request.stream;
    // One that is gone already would never say it closed.
    if (stream.closed || stream.destroyed) return;
    const framing = requestFraming(request.headers["content-type"]);
    const watch: Watch = {
      request,
      stream,
      meter: new MessageMeter(framing, this.#options.maxMessageBytes),
      counted: 0,
      since: 0,
      onData: (chunk) => this.#take(watch, chunk),
      onEnd: () => this.#bodyEnded(watch),
      onClose: () => this.#closed(watch),
    };
    // prependListener, not on(): Readable's on("data") would set the stream
    // flowing before its reader has attached, and the reader would miss
    // what flowed. This listener sees exactly the chunks the reader sees.
    stream.prependListener("data", watch.onData);
    stream.once("end", watch.onEnd);
    stream.once("close", watch.onClose);
    if (this.#streams++ === 0) {
      this.#sweep = this.#options.timers.setInterval(this.#sweepOnce, this.#sweepEveryMs);
    }
  }

  /** A chunk of `watch`'s body: counted, or its stream ended if the budget cannot take it. */
  #take(watch: Watch, chunk: Uint8Array): void {
    const { meter } = watch;
    const startedBefore = meter.started;
    meter.take(chunk);
    const added = meter.held - watch.counted;
    if (added > 0 && this.#total + added > this.#options.maxBufferedRequestBytes) {
      this.#end(
        watch,
        "max_buffered_request_bytes",
        `the server holds its limit of ${this.#options.maxBufferedRequestBytes} bytes of unfinished request messages (maxBufferedRequestBytes); retry with backoff`,
      );
      return;
    }
    this.#count(watch, meter.held);
    if (meter.held === 0) {
      this.#unfinished.delete(watch);
    } else if (meter.started !== startedBefore || !this.#unfinished.has(watch)) {
      // A new message began in this chunk: its clock starts now.
      watch.since = this.#sweeps;
      this.#unfinished.add(watch);
    }
  }

  /** The body ended: a whole-body message is complete. */
  #bodyEnded(watch: Watch): void {
    watch.meter.end();
    this.#count(watch, 0);
    this.#unfinished.delete(watch);
  }

  /** The stream closed: nothing of it is held any more. */
  #closed(watch: Watch): void {
    this.#stop(watch);
    this.#ended.delete(watch);
    if (--this.#streams === 0) {
      this.#options.timers.clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
  }

  /** Stops counting `watch` and releases what it held. */
  #stop(watch: Watch): void {
    watch.stream.off("data", watch.onData);
    watch.stream.off("end", watch.onEnd);
    this.#count(watch, 0);
    this.#unfinished.delete(watch);
  }

  #count(watch: Watch, held: number): void {
    if (held === watch.counted) return;
    this.#total += held - watch.counted;
    watch.counted = held;
    this.#options.metrics.bufferedRequestBytes.set(this.#total);
  }

  #end(watch: Watch, reason: BudgetRefusal, message: string): void {
    this.#stop(watch);
    this.#ended.set(watch, this.#sweeps);
    this.#options.metrics.streamsRefused.labels(reason).inc();
    failRequest(watch.request, new ConnectError(message, Code.ResourceExhausted));
  }

  readonly #sweepOnce = (): void => {
    const sweep = ++this.#sweeps;
    for (const watch of this.#unfinished) {
      if (sweep - watch.since > SWEEPS_PER_TIMEOUT) {
        this.#end(
          watch,
          "message_timeout",
          `a request message was still incomplete ${this.#options.messageTimeoutMs} ms after its first byte (messageTimeoutMs); send each message whole`,
        );
      }
    }
    // One ended by the budget whose status could not go out is reset.
    for (const [watch, at] of this.#ended) {
      if (sweep - at < 2) continue;
      this.#ended.delete(watch);
      resetStuck(watch.stream);
    }
  };
}

/** One request body under a {@link RequestBudget}. */
interface Watch {
  readonly request: Http2ServerRequest;
  readonly stream: ServerHttp2Stream;
  readonly meter: MessageMeter;
  /** Bytes of this stream in the budget's total. */
  counted: number;
  /** The sweep during which the unfinished message's first byte came. */
  since: number;
  readonly onData: (chunk: Uint8Array) => void;
  readonly onEnd: () => void;
  readonly onClose: () => void;
}
