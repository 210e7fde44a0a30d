/** A seed source that hands out `seeds` in order, then counts up from the last. */
export function seedSequence(...seeds: number[]): () => number {
  let i = 0;
  return () => {
    const seed = seeds[Math.min(i, seeds.length - 1)] as number;
    const value = i < seeds.length ? seed : seed + i - seeds.length + 1;
    i++;
    return value >>> 0;
  };
}

/** A random source that returns `value` and counts its calls. */
export function countingRandom(value = 0.5): { random: () => number; readonly calls: number } {
  const state = {
    calls: 0,
    random: () => {
      state.calls++;
      return value;
    },
  };
  return state;
}
