/**
 * Relay mining difficulty: which relays are minable, how the chain rescales the target from the
 * relay EMA, and the estimated-relays multiplier (poktroll pkg/crypto/protocol/relay_difficulty.go,
 * x/service/keeper/update_relay_mining_difficulty.go).
 */
import {
  InvalidInputError,
  bigIntToMinimalBytes,
  bytesToBigInt,
  compareBytes,
  concatBytes,
} from '../core/index.js';

/** The easiest target: 32 bytes of 0xff, every relay minable. */
export const BASE_RELAY_DIFFICULTY_TARGET: Uint8Array = new Uint8Array(32).fill(0xff);
const MAX_HASH = (1n << 256n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/** A relay is volume-applicable iff relayHash < target, bytewise and strict (Go bytes.Compare). */
export function isRelayVolumeApplicable(relayHash: Uint8Array, targetHash: Uint8Array): boolean {
  return compareBytes(relayHash, targetHash) === -1;
}

function trimLeftZeros(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  return b.subarray(i);
}

function padLeft(b: Uint8Array, length: number): Uint8Array {
  if (b.length >= length) return b;
  return concatBytes(new Uint8Array(length - b.length), b);
}

/** Euclidean integer division (remainder ≥ 0), as Go big.Int.Div. */
function euclidDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  const r = a - q * b;
  if (r < 0n) return b > 0n ? q - 1n : q + 1n;
  return q;
}

/**
 * New target from the previous one: floor(prev · targetNumRelays / relaysEma), left zero bytes
 * trimmed, the base target if that is longer than 32 bytes, left-padded to the previous length;
 * the previous target unchanged when the two counts are equal. Like upstream, both counts go
 * through int64 before forming the ratio.
 */
export function computeNewDifficultyTargetHash(
  prevTarget: Uint8Array,
  targetNumRelays: bigint,
  newRelaysEma: bigint,
): Uint8Array {
  if (targetNumRelays === newRelaysEma) return prevTarget;
  const num = BigInt.asIntN(64, targetNumRelays);
  const den = BigInt.asIntN(64, newRelaysEma);
  if (den === 0n) throw new InvalidInputError('relays EMA', 'is zero; the target ratio is undefined');
  // big.Rat keeps the sign in the numerator.
  const sign = num < 0n !== den < 0n ? -1n : 1n;
  const absNum = (num < 0n ? -num : num) * bytesToBigInt(prevTarget);
  const absDen = den < 0n ? -den : den;
  const q = euclidDiv(sign * absNum, absDen);
  const scaled = trimLeftZeros(bigIntToMinimalBytes(q < 0n ? -q : q));
  if (scaled.length > BASE_RELAY_DIFFICULTY_TARGET.length) return BASE_RELAY_DIFFICULTY_TARGET;
  return padLeft(scaled, prevTarget.length);
}

/** (2^256 − 1) / target as a reduced fraction: how many relays one minable relay stands for. */
export function relayDifficultyMultiplier(target: Uint8Array): { num: bigint; den: bigint } {
  const t = bytesToBigInt(target);
  if (t === 0n) throw new InvalidInputError('difficulty target', 'is zero; no relay can be minable');
  const g = gcd(MAX_HASH, t);
  return { num: MAX_HASH / g, den: t / g };
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/**
 * A binary floating-point value m·2^e with a 64-bit mantissa, rounded to nearest-even after every
 * operation: the arithmetic of Go big.Float at precision 64, which the chain's EMA runs in.
 */
interface BigFloat64 {
  m: bigint; // ≥ 0
  e: bigint;
}

function bitLength(x: bigint): number {
  return x === 0n ? 0 : x.toString(2).length;
}

function round64(v: BigFloat64): BigFloat64 {
  const len = bitLength(v.m);
  if (len <= 64) return v;
  let shift = BigInt(len - 64);
  let r = v.m >> shift;
  const rem = v.m & ((1n << shift) - 1n);
  const half = 1n << (shift - 1n);
  if (rem > half || (rem === half && (r & 1n) === 1n)) r += 1n;
  if (r === 1n << 64n) {
    r >>= 1n;
    shift += 1n;
  }
  return { m: r, e: v.e + shift };
}

function mul(a: BigFloat64, b: BigFloat64): BigFloat64 {
  return round64({ m: a.m * b.m, e: a.e + b.e });
}

function add(a: BigFloat64, b: BigFloat64): BigFloat64 {
  const e = a.e < b.e ? a.e : b.e;
  return round64({ m: (a.m << (a.e - e)) + (b.m << (b.e - e)), e });
}

function truncToUint64(v: BigFloat64): bigint {
  const whole = v.e >= 0n ? v.m << v.e : v.m >> -v.e;
  return whole > UINT64_MAX ? UINT64_MAX : whole;
}

/** float64(0.1) exactly: 3602879701896397 · 2^-55. */
const ALPHA: BigFloat64 = { m: 3602879701896397n, e: -55n };
/** 1 − float64(0.1), exact at precision 64. */
const ONE_MINUS_ALPHA: BigFloat64 = { m: (1n << 55n) - 3602879701896397n, e: -55n };

/** New relays EMA: Uint64(α·relays + (1 − α)·prevEma) in big.Float precision 64, α = float64(0.1). */
export function computeRelaysEma(prevEma: bigint, numRelays: bigint): bigint {
  for (const [name, v] of [
    ['previous EMA', prevEma],
    ['relay count', numRelays],
  ] as const) {
    if (v < 0n || v > UINT64_MAX) throw new InvalidInputError(name, 'must be a uint64');
  }
  const current = mul(ALPHA, { m: numRelays, e: 0n });
  const previous = mul(ONE_MINUS_ALPHA, { m: prevEma, e: 0n });
  return truncToUint64(add(current, previous));
}
