import type { SyncRequest } from "@fair/state-proto";

/**
 * The request side of one `Sync` stream: messages wait here until the
 * transport pulls them. `end()` half-closes the stream; `remaining()` hands
 * back what the transport never took, so a lost connection loses no unsent
 * delta.
 */
export class Outbox {
  readonly #queue: SyncRequest[] = [];
  #wake: (() => void) | undefined;
  #ended = false;

  constructor(private readonly onSent: (message: SyncRequest) => void) {}

  push(message: SyncRequest): void {
    if (this.#ended) return;
    this.#queue.push(message);
    this.#notify();
  }

  /** No more messages: the stream's request side ends once the queue is drained. */
  end(): void {
    this.#ended = true;
    this.#notify();
  }

  /** Messages the transport never took; the outbox is ended and empty afterwards. */
  remaining(): SyncRequest[] {
    this.#ended = true;
    this.#notify();
    return this.#queue.splice(0);
  }

  /** The messages, as the transport pulls them. */
  async *messages(): AsyncGenerator<SyncRequest> {
    for (;;) {
      const message = this.#queue.shift();
      if (message !== undefined) {
        this.onSent(message);
        yield message;
      } else if (this.#ended) {
        return;
      } else {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
      }
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
