/**
 * bLSAG ring signatures over secp256k1, byte-compatible with pokt-network/ring-go on the default
 * go-dleq (decred) curve: hash to scalar with SHA3-512 and the left-align quirk, hash to curve
 * with SHA3-256 try-and-increment (even y, re-hashing the digest), serialization
 * `n | c0 | I | (s_i | P_i)*`. The relay-protocol spec §4 is the reference.
 *
 * Verification never throws on signature bytes: every input upstream rejects, or panics on,
 * gives `{ ok: false, code, reason }`. Signing validates its inputs and throws InvalidInputError
 * for a caller's mistake.
 */
import { randomBytes } from 'node:crypto';
import { bigIntToBytes, bigIntToMinimalBytes, bytesToBigInt, concatBytes } from '../core/bytes.js';
import { InvalidInputError } from '../core/errors.js';
import { sha3_256, sha3_512 } from '../protocol/hash.js';
import { SECP256K1_N, SECP256K1_P } from '../protocol/keys.js';
import type { BackendName, EcBackend } from './ec-backend.js';
import { RingSignError } from './errors.js';

export const SCALAR_BYTES = 32;
export const POINT_BYTES = 33;
/** Serialized size of the header, c0 and the key image. */
export const RING_SIG_HEADER_BYTES = 4 + SCALAR_BYTES + POINT_BYTES;
/** Serialized size of one ring entry (s_i, P_i). */
export const RING_SIG_ENTRY_BYTES = SCALAR_BYTES + POINT_BYTES;
/** Upstream gives up hashing to the curve after this many digests. */
export const HASH_TO_CURVE_MAX_ATTEMPTS = 128;

const TWO_POW_248 = 1n << 248n;

/** Serialized length of a signature over a ring of n members: 69 + 65·n. */
export function ringSignatureLength(n: number): number {
  return RING_SIG_HEADER_BYTES + RING_SIG_ENTRY_BYTES * n;
}

/** A Map/Set key for 33 public-key bytes. */
export function publicKeyId(publicKey: Uint8Array): string {
  return Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('latin1');
}

// ---------------------------------------------------------------------------------------------
// Hashes

/**
 * go-dleq HashToScalar: v = int(SHA3-512(input)) mod N, its minimal big-endian bytes copied to
 * the START of a 32-byte buffer, read back. A v below 2^248 is therefore shifted left by 8 bits
 * per missing byte. Returns null when the shifted value reaches N, where upstream panics
 * (probability about 2^-128).
 */
export function hashToScalar(input: Uint8Array): bigint | null {
  const v = bytesToBigInt(sha3_512(input)) % SECP256K1_N;
  if (v >= TWO_POW_248) return v;
  const len = bigIntToMinimalBytes(v).length;
  const shifted = v << BigInt(8 * (SCALAR_BYTES - len));
  return shifted < SECP256K1_N ? shifted : null;
}

/**
 * ring-go hashToCurveSecp256k1: h = SHA3-256(pub33); x = int(h) mod p; the point with that x and
 * EVEN y if it exists, else h = SHA3-256(h) and again, at most 128 times. Returns null after 128
 * misses, where upstream returns nil (and its caller then panics).
 */
export function hashToCurve<P>(
  backend: EcBackend<P>,
  publicKey33: Uint8Array,
): { point: P; attempts: number } | null {
  if (publicKey33.length !== POINT_BYTES) {
    throw new InvalidInputError(
      'hash-to-curve input',
      `must be a 33-byte compressed key, got ${publicKey33.length}`,
    );
  }
  const candidate = new Uint8Array(POINT_BYTES);
  candidate[0] = 0x02;
  let digest = sha3_256(publicKey33);
  for (let attempt = 1; attempt <= HASH_TO_CURVE_MAX_ATTEMPTS; attempt++) {
    let x = bytesToBigInt(digest);
    if (x >= SECP256K1_P) x -= SECP256K1_P;
    candidate.set(bigIntToBytes(x, SCALAR_BYTES), 1);
    const point = backend.decodePoint(candidate);
    if (point !== null) return { point, attempts: attempt };
    digest = sha3_256(digest);
  }
  return null;
}

/** challenge(m, L, R) = hashToScalar(m ‖ comp(L) ‖ comp(R)); null where upstream panics. */
export function challenge<P>(backend: EcBackend<P>, message32: Uint8Array, l: P, r: P): bigint | null {
  return hashToScalar(concatBytes(message32, backend.encodePoint(l), backend.encodePoint(r)));
}

/** The signer's key image I = x·Hp(x·G), 33 bytes compressed. */
export function keyImage<P>(backend: EcBackend<P>, privateKey: Uint8Array): Uint8Array {
  const x = readPrivateKey(privateKey);
  const pub = backend.encodePoint(backend.mulBase(x));
  const hp = hashToCurve(backend, pub);
  if (hp === null) throw new RingSignError('no hash-to-curve point for the signer key within 128 attempts');
  return backend.encodePoint(backend.mul(hp.point, x));
}

// ---------------------------------------------------------------------------------------------
// Rings prepared for verification

/** A ring member with its decoded point and its cached hash-to-curve point. */
export interface RingMember<P> {
  readonly publicKey: Uint8Array;
  readonly point: P;
  readonly hp: P;
}

/**
 * An expected ring whose members are decoded and hashed to the curve once, for one backend.
 * Membership is a set test on the 33-byte encodings (spec §4.6).
 */
export interface PreparedRing<P> {
  readonly backend: BackendName;
  /** The member keys, in the order they were given. */
  readonly publicKeys: readonly Uint8Array[];
  /** The member whose key has this `publicKeyId`, if any. */
  member(keyId: string): RingMember<P> | undefined;
}

// ---------------------------------------------------------------------------------------------
// Decoding

export type RingSigRejectCode =
  'RING_SIG_MALFORMED' | 'RING_SIG_EMPTY_RING' | 'RING_SIG_NOT_MEMBER' | 'RING_SIG_INVALID';

export type RingVerifyResult = { ok: true } | { ok: false; code: RingSigRejectCode; reason: string };

export interface RingSignature<P> {
  /** n as read from the header (the number of ring entries). */
  readonly ringSize: number;
  /** c0 reduced modulo N (upstream accepts values in [N, 2^256) as value − N). */
  readonly c0: bigint;
  readonly keyImage: Uint8Array;
  readonly keyImagePoint: P;
  /** s_i reduced modulo N. */
  readonly responses: readonly bigint[];
  readonly publicKeys: readonly Uint8Array[];
  readonly points: readonly P[];
  /** Bytes after the last ring entry, which upstream ignores. */
  readonly trailingBytes: number;
}

export type DecodeRingSignatureResult<P> =
  { ok: true; sig: RingSignature<P> } | { ok: false; code: 'RING_SIG_MALFORMED'; reason: string };

interface DecodedForVerify<P> {
  sig: RingSignature<P>;
  /** Hash-to-curve points of the keys the lookup knew; undefined for the others. */
  hps: (P | undefined)[];
  /** How many keys the lookup did not know (all of them without a lookup). */
  unknownKeys: number;
}

/** A copy of bytes[start, end) even when `bytes` is a Buffer (whose slice is a view). */
function copyOf(bytes: Uint8Array, start: number, end: number): Uint8Array {
  return Uint8Array.prototype.slice.call(bytes, start, end);
}

function malformed(reason: string): { ok: false; code: 'RING_SIG_MALFORMED'; reason: string } {
  return { ok: false, code: 'RING_SIG_MALFORMED', reason };
}

/**
 * ring-go RingSig.Deserialize. `lookup` answers membership for already-decoded expected keys, so
 * their bytes need no second decode; keys it does not know are decoded (to tell a malformed
 * point from a non-member) and counted in `unknownKeys`. Byte fields are copies, never views of
 * the input.
 */
function decodeInternal<P>(
  backend: EcBackend<P>,
  bytes: Uint8Array,
  lookup: ((keyId: string) => RingMember<P> | undefined) | undefined,
): { ok: true; value: DecodedForVerify<P> } | { ok: false; code: 'RING_SIG_MALFORMED'; reason: string } {
  if (bytes.length < 4)
    return malformed(`signature is ${bytes.length} bytes, shorter than its 4-byte header`);
  const n = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
  // 69 + 65·n stays far below 2^53 for every uint32 n, so this cannot overflow.
  const needed = ringSignatureLength(n);
  if (bytes.length < needed) {
    return malformed(`header says ${n} ring members, which needs ${needed} bytes; got ${bytes.length}`);
  }
  const c0 = bytesToBigInt(bytes.subarray(4, 36)) % SECP256K1_N;
  const keyImageBytes = copyOf(bytes, 36, RING_SIG_HEADER_BYTES);
  const keyImagePoint = backend.decodePoint(keyImageBytes);
  if (keyImagePoint === null) return malformed('key image is not a valid compressed secp256k1 point');

  const responses: bigint[] = new Array<bigint>(n);
  const publicKeys: Uint8Array[] = new Array<Uint8Array>(n);
  const points: P[] = new Array<P>(n);
  const hps: (P | undefined)[] = new Array<P | undefined>(n);
  let unknownKeys = 0;
  let off = RING_SIG_HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    responses[i] = bytesToBigInt(bytes.subarray(off, off + SCALAR_BYTES)) % SECP256K1_N;
    off += SCALAR_BYTES;
    const key = copyOf(bytes, off, off + POINT_BYTES);
    off += POINT_BYTES;
    publicKeys[i] = key;
    const known = lookup?.(publicKeyId(key));
    if (known !== undefined) {
      points[i] = known.point;
      hps[i] = known.hp;
      continue;
    }
    const point = backend.decodePoint(key);
    if (point === null) return malformed(`ring member ${i} is not a valid compressed secp256k1 point`);
    points[i] = point;
    unknownKeys++;
  }
  return {
    ok: true,
    value: {
      sig: {
        ringSize: n,
        c0,
        keyImage: keyImageBytes,
        keyImagePoint,
        responses,
        publicKeys,
        points,
        trailingBytes: bytes.length - needed,
      },
      hps,
      unknownKeys,
    },
  };
}

/** Decodes a serialized ring signature exactly as ring-go's Deserialize accepts it. */
export function decodeRingSignature<P>(
  backend: EcBackend<P>,
  bytes: Uint8Array,
): DecodeRingSignatureResult<P> {
  const r = decodeInternal(backend, bytes, undefined);
  return r.ok ? { ok: true, sig: r.value.sig } : r;
}

/**
 * The identity of one signing: c0 reduced modulo N, as 32 bytes, or null when the bytes are too
 * short to hold it. c0 is the challenge drawn from the signer's random nonce, so two signings of
 * the same content differ, while re-encodings of one signature that still verify (trailing bytes,
 * c0 or a response scalar plus N) keep it.
 */
export function ringSignatureChallenge(signature: Uint8Array): Uint8Array | null {
  if (signature.length < 4 + SCALAR_BYTES) return null;
  return bigIntToBytes(bytesToBigInt(signature.subarray(4, 4 + SCALAR_BYTES)) % SECP256K1_N, SCALAR_BYTES);
}

/** Serializes (c0, I, s_i, P_i) as ring-go does; scalars are canonical be32 (left-padded). */
export function encodeRingSignature(
  c0: bigint,
  keyImage33: Uint8Array,
  responses: readonly bigint[],
  publicKeys: readonly Uint8Array[],
): Uint8Array {
  const n = publicKeys.length;
  if (responses.length !== n) {
    throw new InvalidInputError('ring signature', `${responses.length} responses for ${n} ring members`);
  }
  if (keyImage33.length !== POINT_BYTES) throw new InvalidInputError('key image', 'must be 33 bytes');
  const out = new Uint8Array(ringSignatureLength(n));
  new DataView(out.buffer).setUint32(0, n, false);
  out.set(bigIntToBytes(c0 % SECP256K1_N, SCALAR_BYTES), 4);
  out.set(keyImage33, 36);
  let off = RING_SIG_HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    const key = publicKeys[i]!;
    if (key.length !== POINT_BYTES) throw new InvalidInputError(`ring member ${i}`, 'must be 33 bytes');
    out.set(bigIntToBytes(responses[i]! % SECP256K1_N, SCALAR_BYTES), off);
    out.set(key, off + SCALAR_BYTES);
    off += RING_SIG_ENTRY_BYTES;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Verification

/**
 * The relayer's check (spec §4.6): decode → every key in the signature is in the expected ring
 * (a set test; order and count are not compared) → the challenge chain closes over `message32`.
 *
 * `expectedRing` is either a PreparedRing (members decoded and hashed to the curve once, the hot
 * path) or the raw 33-byte keys. `message32` is the 32-byte signable hash; any other length is a
 * caller bug and throws InvalidInputError. Nothing about the signature bytes throws.
 */
export function verifyRingSignature<P>(
  backend: EcBackend<P>,
  signature: Uint8Array,
  message32: Uint8Array,
  expectedRing: PreparedRing<P> | readonly Uint8Array[],
): RingVerifyResult {
  if (message32.length !== 32) {
    throw new InvalidInputError(
      'ring signature message',
      `must be a 32-byte hash, got ${message32.length} bytes`,
    );
  }
  let decoded;
  let isMember: (keyId: string) => boolean;
  if (isPreparedRing(expectedRing)) {
    if (expectedRing.backend !== backend.name) {
      throw new InvalidInputError(
        'prepared ring',
        `prepared for the ${expectedRing.backend} backend, used with ${backend.name}`,
      );
    }
    const ring = expectedRing;
    decoded = decodeInternal(backend, signature, (id) => ring.member(id));
    isMember = (id) => ring.member(id) !== undefined;
  } else {
    const ids = new Set<string>();
    for (const key of expectedRing) ids.add(publicKeyId(key));
    decoded = decodeInternal(backend, signature, undefined);
    isMember = (id) => ids.has(id);
  }
  if (!decoded.ok) return decoded;
  const { sig, hps } = decoded.value;
  const n = sig.ringSize;
  if (n === 0) {
    return { ok: false, code: 'RING_SIG_EMPTY_RING', reason: 'signature ring has no members' };
  }
  if (decoded.value.unknownKeys > 0) {
    for (let i = 0; i < n; i++) {
      if (!isMember(publicKeyId(sig.publicKeys[i]!))) {
        return {
          ok: false,
          code: 'RING_SIG_NOT_MEMBER',
          reason: `ring member ${i} is not in the expected ring`,
        };
      }
    }
  }
  return checkChain(backend, sig, hps, message32);
}

function isPreparedRing<P>(ring: PreparedRing<P> | readonly Uint8Array[]): ring is PreparedRing<P> {
  return !Array.isArray(ring);
}

function invalid(reason: string): RingVerifyResult {
  return { ok: false, code: 'RING_SIG_INVALID', reason };
}

/** ring-go RingSig.Verify on a decoded signature. */
function checkChain<P>(
  backend: EcBackend<P>,
  sig: RingSignature<P>,
  hps: (P | undefined)[],
  message32: Uint8Array,
): RingVerifyResult {
  const image = sig.keyImagePoint;
  const input = new Uint8Array(32 + 2 * POINT_BYTES);
  input.set(message32, 0);
  let c = sig.c0;
  for (let i = 0; i < sig.ringSize; i++) {
    const point = sig.points[i]!;
    let hp = hps[i];
    if (hp === undefined) {
      const h = hashToCurve(backend, sig.publicKeys[i]!);
      if (h === null) return invalid(`ring member ${i} has no hash-to-curve point (upstream panics)`);
      hp = h.point;
    }
    const s = sig.responses[i]!;
    const l = backend.mulBaseAdd(s, c, point);
    const r = backend.mulAdd(s, hp, c, image);
    input.set(backend.encodePoint(l), 32);
    input.set(backend.encodePoint(r), 32 + POINT_BYTES);
    const next = hashToScalar(input);
    if (next === null)
      return invalid('challenge hash overflowed N after the left-align step (upstream panics)');
    c = next;
  }
  return c === sig.c0 ? { ok: true } : invalid('challenge chain does not close');
}

// ---------------------------------------------------------------------------------------------
// Signing

export interface SignRingOptions {
  /** The nonce u, in [0, N). Random in [1, N) when absent. */
  nonce?: bigint;
  /** Responses s_i for the non-signer members, by ring index, each in [0, N). Random when absent. */
  decoys?: ReadonlyMap<number, bigint> | Readonly<Record<number, bigint>>;
}

/** A uniformly random scalar in [1, N), by rejection sampling. */
export function randomScalar(): bigint {
  for (;;) {
    const k = bytesToBigInt(randomBytes(SCALAR_BYTES));
    if (k !== 0n && k < SECP256K1_N) return k;
  }
}

function readPrivateKey(privateKey: Uint8Array): bigint {
  if (privateKey.length !== SCALAR_BYTES) {
    throw new InvalidInputError('private key', `must be 32 bytes, got ${privateKey.length}`);
  }
  const x = bytesToBigInt(privateKey);
  if (x === 0n || x >= SECP256K1_N) throw new InvalidInputError('private key', 'scalar must be in [1, N)');
  return x;
}

function checkScalarOption(what: string, v: unknown): bigint {
  if (typeof v !== 'bigint' || v < 0n || v >= SECP256K1_N) {
    throw new InvalidInputError(what, 'must be a bigint in [0, N)');
  }
  return v;
}

function decoyMap(decoys: SignRingOptions['decoys'], n: number, signerIndex: number): Map<number, bigint> {
  const out = new Map<number, bigint>();
  if (decoys === undefined) return out;
  const entries: [number, unknown][] =
    decoys instanceof Map
      ? [...(decoys as ReadonlyMap<number, bigint>).entries()]
      : Object.entries(decoys).map(([k, v]) => [Number(k), v] as [number, unknown]);
  for (const [i, v] of entries) {
    if (!Number.isInteger(i) || i < 0 || i >= n || i === signerIndex) {
      throw new InvalidInputError('decoys', `index ${i} is not a non-signer ring index`);
    }
    out.set(i, checkScalarOption(`decoy s_${i}`, v));
  }
  return out;
}

function modN(v: bigint): bigint {
  const r = v % SECP256K1_N;
  return r < 0n ? r + SECP256K1_N : r;
}

/**
 * ring-go Sign (spec §4.4): a bLSAG signature by `privateKey`, the key of `ring[signerIndex]`,
 * over the 32-byte `message32`. The members appear in the signature in the order given. Random
 * nonce and decoys unless `opts` fixes them (then the output is deterministic). Throws
 * InvalidInputError for a ring under 2 members, a key that is not a valid compressed point, a
 * signer index out of range or not matching the private key, a message that is not 32 bytes.
 *
 * Duplicate keys are not refused: ring-go's duplicate check compares point pointers, so it never
 * fires for decoded keys, and the signature stays valid.
 */
export function signRingSignature<P>(
  backend: EcBackend<P>,
  ring: PreparedRing<P> | readonly Uint8Array[],
  signerIndex: number,
  privateKey: Uint8Array,
  message32: Uint8Array,
  opts: SignRingOptions = {},
): Uint8Array {
  if (message32.length !== 32) {
    throw new InvalidInputError(
      'ring signature message',
      `must be a 32-byte hash, got ${message32.length} bytes`,
    );
  }
  const keys = isPreparedRing(ring) ? ring.publicKeys : ring;
  const n = keys.length;
  if (n < 2) throw new InvalidInputError('ring', `needs at least 2 members, got ${n}`);
  if (!Number.isInteger(signerIndex) || signerIndex < 0 || signerIndex >= n) {
    throw new InvalidInputError('signer index', `must be an integer in [0, ${n}), got ${signerIndex}`);
  }
  const x = readPrivateKey(privateKey);
  const u = opts.nonce === undefined ? randomScalar() : checkScalarOption('nonce', opts.nonce);
  const decoys = decoyMap(opts.decoys, n, signerIndex);

  const members: RingMember<P>[] = [];
  for (let i = 0; i < n; i++) {
    const key = keys[i]!;
    const known = isPreparedRing(ring) ? ring.member(publicKeyId(key)) : undefined;
    if (known !== undefined) {
      members.push(known);
      continue;
    }
    const point = backend.decodePoint(key);
    if (point === null)
      throw new InvalidInputError(`ring member ${i}`, 'not a valid 33-byte compressed point');
    const hp = hashToCurve(backend, key);
    if (hp === null) throw new RingSignError(`no hash-to-curve point for ring member ${i}`);
    members.push({ publicKey: key, point, hp: hp.point });
  }
  const signer = members[signerIndex]!;
  const signerPub = backend.encodePoint(backend.mulBase(x));
  if (publicKeyId(signerPub) !== publicKeyId(signer.publicKey)) {
    throw new InvalidInputError(
      'signer index',
      `ring member ${signerIndex} is not the private key's public key`,
    );
  }

  const image = backend.mul(signer.hp, x);
  const c: bigint[] = new Array<bigint>(n).fill(0n);
  const s: bigint[] = new Array<bigint>(n).fill(0n);
  const step = (i: number, l: P, r: P): void => {
    const next = challenge(backend, message32, l, r);
    if (next === null) throw new RingSignError('challenge hash overflowed N after the left-align step');
    c[(i + 1) % n] = next;
  };

  const lj = backend.mulBase(u);
  const rj = backend.mul(signer.hp, u);
  step(signerIndex, lj, rj);
  for (let t = 1; t < n; t++) {
    const i = (signerIndex + t) % n;
    const member = members[i]!;
    const si = decoys.get(i) ?? randomScalar();
    s[i] = si;
    step(i, backend.mulBaseAdd(si, c[i]!, member.point), backend.mulAdd(si, member.hp, c[i]!, image));
  }
  s[signerIndex] = modN(u - c[signerIndex]! * x);

  // The closing checks ring-go makes before returning.
  const cj = c[signerIndex]!;
  const sj = s[signerIndex];
  const lCheck = backend.mulBaseAdd(sj, cj, signer.point);
  const rCheck = backend.mulAdd(sj, signer.hp, cj, image);
  if (
    publicKeyId(backend.encodePoint(lCheck)) !== publicKeyId(backend.encodePoint(lj)) ||
    publicKeyId(backend.encodePoint(rCheck)) !== publicKeyId(backend.encodePoint(rj)) ||
    challenge(backend, message32, lCheck, rCheck) !== c[(signerIndex + 1) % n]
  ) {
    throw new RingSignError('the ring does not close (uG ≠ sG + cP)');
  }
  return encodeRingSignature(c[0]!, backend.encodePoint(image), s, keys);
}
