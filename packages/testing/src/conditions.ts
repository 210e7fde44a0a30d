/**
 * Waiting for something to become true without sleeping or polling: each
 * `until()` is re-checked whenever the test's event source (an update
 * handler, a status listener) calls `notify()`.
 */
export class Conditions {
  readonly #waiters = new Set<() => void>();

  /** Resolves once `condition()` holds: at once, or at a later `notify()`. */
  until(condition: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (!condition()) return;
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Re-checks every waiting condition; call it after each event that may change one. */
  notify(): void {
    for (const check of [...this.#waiters]) check();
  }

  /** How many `until()`s are still waiting. */
  get waiting(): number {
    return this.#waiters.size;
  }
}
