/**
 * The elliptic-curve operations the ring signature and the supplier signature need, behind one
 * interface with two implementations: pure-JS @noble/curves (the reference) and native
 * libsecp256k1 (the hot path). Both must give byte-identical results on every input, including
 * the degenerate ones upstream (decred secp256k1 via go-dleq) handles without complaint: a zero
 * scalar, a sum at infinity. Upstream writes the point at infinity as `02` followed by 32 zero
 * bytes, so `encodePoint` does too.
 *
 * Points are opaque values of the backend's own type `P`; scalars are bigints. Every scalar
 * argument may be any non-negative bigint: backends reduce it modulo N first, as decred's
 * ModNScalar does.
 */
import { bytesToBigInt } from '../core/bytes.js';
import { SECP256K1_N } from '../protocol/keys.js';

export type BackendName = 'noble' | 'native';

export interface EcBackend<P = unknown> {
  /** Which implementation this is. */
  readonly name: BackendName;
  /**
   * Decodes a 33-byte SEC1 compressed point exactly as decred's ParsePubKey does at that length:
   * prefix `02`/`03`, x < p, x on the curve. Anything else (another length, prefix `04`/`06`/`07`,
   * x ≥ p, x off the curve) gives `null`, never an exception.
   */
  decodePoint(bytes: Uint8Array): P | null;
  /** 33-byte compressed encoding; the point at infinity encodes as `02` + 32 zero bytes. */
  encodePoint(point: P): Uint8Array;
  isInfinity(point: P): boolean;
  /** k·G. Constant time where the implementation offers it (signing uses it with secrets). */
  mulBase(k: bigint): P;
  /** k·P. Constant time where the implementation offers it (signing uses it with secrets). */
  mul(point: P, k: bigint): P;
  add(a: P, b: P): P;
  /** s·G + c·P for public scalars (variable time): the L term of the bLSAG chain. */
  mulBaseAdd(s: bigint, c: bigint, point: P): P;
  /** a·A + b·B for public scalars (variable time): the R term of the bLSAG chain. */
  mulAdd(a: bigint, pointA: P, b: bigint, pointB: P): P;
  /**
   * ECDSA over a 32-byte digest (no further hashing here): RFC 6979 deterministic nonce
   * (HMAC-SHA256, no extra entropy), low-S, 64 bytes `be32(r) || be32(s)`. Throws
   * InvalidInputError for a digest that is not 32 bytes or a key outside [1, N).
   */
  ecdsaSign(digest32: Uint8Array, privateKey: Uint8Array): Uint8Array;
  /**
   * cosmos-sdk secp256k1 `VerifySignature` rules over a 32-byte digest: the signature must be
   * exactly 64 bytes, r and s are read modulo N, zero r or s and s > N/2 are rejected, the key
   * must be a valid 33-byte compressed point. Never throws.
   */
  ecdsaVerify(signature: Uint8Array, digest32: Uint8Array, publicKey33: Uint8Array): boolean;
}

/** ⌊N/2⌋: the largest s a low-S signature may carry. */
export const HALF_N = SECP256K1_N >> 1n;

/** Reduces a non-negative integer modulo N (decred ModNScalar.SetByteSlice semantics). */
export function reduceScalar(k: bigint): bigint {
  return k < SECP256K1_N ? k : k % SECP256K1_N;
}

/**
 * Applies the cosmos-sdk acceptance rules that come before the curve check of an ECDSA
 * signature. Returns the canonical (r, s), both reduced modulo N, or null when the signature
 * must be rejected without looking at the curve.
 */
export function canonicalEcdsaSignature(signature: Uint8Array): { r: bigint; s: bigint } | null {
  if (signature.length !== 64) return null;
  const r = reduceScalar(bytesToBigInt(signature.subarray(0, 32)));
  const s = reduceScalar(bytesToBigInt(signature.subarray(32, 64)));
  if (r === 0n || s === 0n || s > HALF_N) return null;
  return { r, s };
}
