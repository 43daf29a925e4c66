/**
 * A seeded pseudo-random source for fuzz tests (xorshift32): the same seed gives the same cases on every run,
 * so a failure is reproducible. Not for anything that needs real randomness.
 */
export function seededRandom(seed: number): {
  random: () => number;
  pick: <T>(items: readonly T[]) => T;
} {
  let state = seed | 0 || 1;
  const random = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  return { random, pick };
}
