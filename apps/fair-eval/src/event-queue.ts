// The simulation's clock and agenda (docs/evaluation.md §2.8): network and broadcast events in a binary
// heap keyed by (time, seq), so equal times run in the order they were scheduled.

interface Item {
  readonly time: number;
  readonly seq: number;
  readonly run: () => void;
}

/** A discrete-event queue with the simulated time, in ms. */
export class EventQueue {
  /** The current simulated time, ms: the request being served, or the event being run. */
  now = 0;
  readonly #heap: Item[] = [];
  #seq = 0;

  /** Runs `run` at `time` (not before `now`). */
  schedule(time: number, run: () => void): void {
    const heap = this.#heap;
    heap.push({ time: Math.max(time, this.now), seq: this.#seq++, run });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i] as Item, heap[parent] as Item)) break;
      [heap[i], heap[parent]] = [heap[parent] as Item, heap[i] as Item];
      i = parent;
    }
  }

  /** Runs every event due at or before `time`, including ones they schedule, then sets `now = time`. */
  runUntil(time: number): void {
    const heap = this.#heap;
    while (heap.length > 0 && (heap[0] as Item).time <= time) {
      const item = this.#pop();
      this.now = item.time;
      item.run();
    }
    this.now = time;
  }

  /** Events not yet run. */
  get size(): number {
    return this.#heap.length;
  }

  #pop(): Item {
    const heap = this.#heap;
    const top = heap[0] as Item;
    const last = heap.pop() as Item;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < heap.length && before(heap[left] as Item, heap[smallest] as Item))
          smallest = left;
        if (right < heap.length && before(heap[right] as Item, heap[smallest] as Item))
          smallest = right;
        if (smallest === i) break;
        [heap[i], heap[smallest]] = [heap[smallest] as Item, heap[i] as Item];
        i = smallest;
      }
    }
    return top;
  }
}

function before(a: Item, b: Item): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
