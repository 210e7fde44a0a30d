/** A new epoch seen on a stream: the one the server announced, and the last one this client confirmed. */
export interface EpochChange {
  readonly epoch: string;
  readonly previous: string;
}

/**
 * The server's state epoch (`fair-state-epoch`) as this client knows it.
 *
 * The first epoch ever seen is taken as it is: there is nothing to compare it with. A later
 * stream announcing another one is an {@link EpochChange}; it stays pending until the server
 * has shown that it processed this client's offers (it answered a full-state request sent
 * after them, {@link ServerEpoch.confirm}). A stream lost before that leaves the old epoch in
 * place, so the next stream to the new one is a change again and the offers go out again:
 * offers merge by maximum, so sending them twice costs nothing but the bytes. A stream whose
 * server sends no epoch changes nothing.
 */
export class ServerEpoch {
  #confirmed: string | undefined;
  #pending: string | undefined;

  /** The last epoch confirmed; `undefined` before any server announced one. */
  get current(): string | undefined {
    return this.#confirmed;
  }

  /**
   * A stream's epoch header (`null` when the server sent none). Returns the change to act
   * on, if this is one. Any change still pending from an earlier stream is forgotten.
   */
  observe(epoch: string | null): EpochChange | undefined {
    this.#pending = undefined;
    if (epoch === null || epoch === "" || epoch === this.#confirmed) return undefined;
    const previous = this.#confirmed;
    if (previous === undefined) {
      this.#confirmed = epoch;
      return undefined;
    }
    this.#pending = epoch;
    return { epoch, previous };
  }

  /** Whether a change waits for {@link ServerEpoch.confirm}. */
  get pending(): boolean {
    return this.#pending !== undefined;
  }

  /** The server answered after the offers: the pending epoch is now the one this client knows. */
  confirm(): void {
    if (this.#pending === undefined) return;
    this.#confirmed = this.#pending;
    this.#pending = undefined;
  }

  /** The stream carrying the pending change ended before {@link ServerEpoch.confirm}. */
  abandon(): void {
    this.#pending = undefined;
  }
}
