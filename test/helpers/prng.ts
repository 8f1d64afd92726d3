/**
 * Seeded pseudo-random numbers for fuzz-style tests (mulberry32): the same seed gives the same
 * sequence on every run, so a failing case can be replayed.
 */

/** Next uint32 of the sequence for `seed`. */
export function seededUint32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Next float in [0, 1) of the sequence for `seed` (the uint32 divided by 2^32). */
export function seededRandom(seed: number): () => number {
  const next = seededUint32(seed);
  return () => next() / 4294967296;
}
