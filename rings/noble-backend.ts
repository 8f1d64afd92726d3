/**
 * The reference backend: pure JavaScript on @noble/curves. Slow next to libsecp256k1 but
 * audited, dependency-free and available everywhere; the native backend falls back to it for
 * the inputs libsecp256k1 refuses.
 *
 * noble's `multiply` refuses 0 and values ≥ N, so every scalar is reduced here and 0 (or a point
 * at infinity) gives the identity explicitly, matching decred.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { InvalidInputError } from '../core/errors.js';
import { bigIntToBytes, bytesToBigInt } from '../core/bytes.js';
import { SECP256K1_N } from '../protocol/keys.js';
import { canonicalEcdsaSignature, reduceScalar, type EcBackend } from './ec-backend.js';

const Point = secp256k1.Point;
export type NoblePoint = InstanceType<typeof Point>;

const INFINITY_ENCODING_PREFIX = 0x02;

function decodePoint(bytes: Uint8Array): NoblePoint | null {
  if (bytes.length !== 33 || (bytes[0] !== 0x02 && bytes[0] !== 0x03)) return null;
  try {
    // fromBytes rejects x ≥ p and x without a square root; assertValidity re-checks the
    // equation so that no path can hand out an off-curve point.
    const p = Point.fromBytes(bytes);
    p.assertValidity();
    return p;
  } catch {
    return null;
  }
}

function encodePoint(point: NoblePoint): Uint8Array {
  if (point.is0()) {
    const out = new Uint8Array(33);
    out[0] = INFINITY_ENCODING_PREFIX;
    return out;
  }
  return point.toBytes(true);
}

function mulBase(k: bigint): NoblePoint {
  const r = reduceScalar(k);
  return r === 0n ? Point.ZERO : Point.BASE.multiply(r);
}

function mul(point: NoblePoint, k: bigint): NoblePoint {
  const r = reduceScalar(k);
  return r === 0n || point.is0() ? Point.ZERO : point.multiply(r);
}

function mulAdd(a: bigint, pointA: NoblePoint, b: bigint, pointB: NoblePoint): NoblePoint {
  // mulAddUnsafe accepts 0 and the identity; only values ≥ N must be folded first.
  return pointA.mulAddUnsafe(reduceScalar(a), pointB, reduceScalar(b));
}

function readPrivateKey(privateKey: Uint8Array): bigint {
  if (privateKey.length !== 32) {
    throw new InvalidInputError('private key', `must be 32 bytes, got ${privateKey.length}`);
  }
  const k = bytesToBigInt(privateKey);
  if (k === 0n || k >= SECP256K1_N) throw new InvalidInputError('private key', 'scalar must be in [1, N)');
  return k;
}

function ecdsaSign(digest32: Uint8Array, privateKey: Uint8Array): Uint8Array {
  if (digest32.length !== 32)
    throw new InvalidInputError('digest', `must be 32 bytes, got ${digest32.length}`);
  readPrivateKey(privateKey);
  return secp256k1.sign(digest32, privateKey, { prehash: false, lowS: true, format: 'compact' });
}

function ecdsaVerify(signature: Uint8Array, digest32: Uint8Array, publicKey33: Uint8Array): boolean {
  if (digest32.length !== 32) return false;
  const rs = canonicalEcdsaSignature(signature);
  if (rs === null || decodePoint(publicKey33) === null) return false;
  const canonical = new Uint8Array(64);
  canonical.set(bigIntToBytes(rs.r, 32), 0);
  canonical.set(bigIntToBytes(rs.s, 32), 32);
  try {
    return secp256k1.verify(canonical, digest32, publicKey33, {
      prehash: false,
      lowS: true,
      format: 'compact',
    });
  } catch {
    return false;
  }
}

/** The pure-JS backend (stateless; one shared instance). */
export const nobleBackend: EcBackend<NoblePoint> = {
  name: 'noble',
  decodePoint,
  encodePoint,
  isInfinity: (point) => point.is0(),
  mulBase,
  mul,
  add: (a, b) => a.add(b),
  // s·G through the precomputed generator tables, c·P with the GLV split: faster than one
  // Strauss walk over both when G has tables.
  mulBaseAdd: (s, c, point) =>
    Point.BASE.multiplyUnsafe(reduceScalar(s)).add(point.multiplyUnsafe(reduceScalar(c))),
  mulAdd,
  ecdsaSign,
  ecdsaVerify,
};

/** Converts between noble points and 65-byte uncompressed SEC1 (used by the native fallback). */
export function noblePointFromUncompressed(bytes65: Uint8Array): NoblePoint {
  return Point.fromBytes(bytes65);
}

export function noblePointToUncompressed(point: NoblePoint): Uint8Array {
  return point.toBytes(false);
}

export const NOBLE_INFINITY: NoblePoint = Point.ZERO;
