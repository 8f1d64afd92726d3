/**
 * Bit-exact reproductions of the Go standard library pieces the chain's randomness goes through:
 * `encoding/binary.Varint` and `math/rand.NewSource(seed)` (the additive lagged Fibonacci
 * generator, length 607, tap 273). Only the first outputs of a fresh source are ever used by the
 * protocol, so only those are computed.
 */
import { RelayMinerError } from '../core/index.js';
import { sha256 } from './hash.js';

const INT32_MAX = 2147483647; // 2^31 - 1, Go's int32max
const RNG_LEN = 607;
const RNG_TAP = 273;
const MASK_63 = (1n << 63n) - 1n;

/**
 * Entries of Go's `rngCooked` table that the first two outputs of a fresh source read:
 * output k (k = 0, 1) is vec[333 - k] + vec[606 - k].
 */
const COOKED: ReadonlyMap<number, bigint> = new Map([
  [332, 4287360518296753003n],
  [333, -4633371852008891965n],
  [605, 9103922860780351547n],
  [606, 4152330101494654406n],
]);

/**
 * Go `binary.Varint`: unsigned LEB128 from the start of `buf`, then zig-zag decoded. Overflow
 * (more than 10 bytes, or a 10th byte > 1) and a buffer ending inside the varint both give 0, as
 * the value Go returns alongside its error count.
 */
export function goVarint(buf: Uint8Array): bigint {
  let ux = 0n;
  let shift = 0n;
  for (let i = 0; i < buf.length; i++) {
    if (i === 10) return 0n;
    const b = buf[i]!;
    if (b < 0x80) {
      if (i === 9 && b > 1) return 0n;
      ux |= BigInt(b) << shift;
      const x = ux >> 1n;
      return BigInt.asIntN(64, (ux & 1n) === 1n ? ~x : x);
    }
    ux |= BigInt(b & 0x7f) << shift;
    shift += 7n;
  }
  return 0n;
}

/** Go's `seedrand`: x ↦ 48271·x mod (2^31 − 1), exact in doubles since the product < 2^47. */
function seedrand(x: number): number {
  return (48271 * x) % INT32_MAX;
}

/** A fresh Go `math/rand` source seeded like `rand.NewSource(seed)`. */
export class GoRandSource {
  private readonly vec = new Map<number, bigint>();
  private drawn = 0;

  constructor(seed: bigint) {
    const wanted = new Set(COOKED.keys());
    let s = Number(BigInt.asIntN(64, seed) % BigInt(INT32_MAX));
    if (s < 0) s += INT32_MAX;
    if (s === 0) s = 89482311;
    let x = s;
    for (let i = -20; i < RNG_LEN; i++) {
      x = seedrand(x);
      if (i < 0) continue;
      const x1 = x;
      x = seedrand(x);
      const x2 = x;
      x = seedrand(x);
      const x3 = x;
      const cooked = COOKED.get(i);
      if (cooked !== undefined && wanted.has(i)) {
        const u = BigInt.asIntN(64, (BigInt(x1) << 40n) ^ (BigInt(x2) << 20n) ^ BigInt(x3) ^ cooked);
        this.vec.set(i, u);
      }
    }
  }

  /** Go `Source.Uint64()` as the raw int64 sum of the feed and tap entries. */
  private next(): bigint {
    const k = this.drawn;
    const feed = this.vec.get(RNG_LEN - RNG_TAP - 1 - k);
    const tap = this.vec.get(RNG_LEN - 1 - k);
    if (feed === undefined || tap === undefined) {
      throw new RelayMinerError(
        'GO_RAND_EXHAUSTED',
        `Go math/rand reproduction supports the first ${COOKED.size / 2} outputs of a source`,
      );
    }
    this.drawn++;
    return BigInt.asIntN(64, feed + tap);
  }

  /** Go `Source.Int63()`. */
  int63(): bigint {
    return this.next() & MASK_63;
  }

  /** Go `Rand.Float64()`: Int63 / 2^63, drawing again in the (≈2^-54) case it rounds to 1. */
  float64(): number {
    for (;;) {
      const f = Number(this.int63()) / 2 ** 63;
      if (f !== 1) return f;
    }
  }
}

function seedFromParts(parts: Uint8Array[]): bigint {
  return goVarint(sha256(...parts));
}

/** poktroll `SeededFloat64`: Float64 of a source seeded with Varint(SHA-256(parts…)). */
export function seededFloat64(...parts: Uint8Array[]): number {
  return new GoRandSource(seedFromParts(parts)).float64();
}

/** poktroll `SeededInt63`: Int63 of a source seeded with Varint(SHA-256(parts…)). */
export function seededInt63(...parts: Uint8Array[]): bigint {
  return new GoRandSource(seedFromParts(parts)).int63();
}
