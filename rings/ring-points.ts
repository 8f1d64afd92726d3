/**
 * Decoded ring members, cached: a member's curve point and its hash-to-curve point depend only
 * on its 33-byte public key, and the same gateway key sits in the rings of many applications, so
 * they are computed once per key (bounded, least recently used evicted) and shared by every
 * prepared ring.
 */
import { InvalidInputError } from '../core/errors.js';
import { hashToCurve, POINT_BYTES, publicKeyId, type PreparedRing, type RingMember } from './blsag.js';
import type { EcBackend } from './ec-backend.js';

export const DEFAULT_RING_POINT_CACHE_ENTRIES = 10_000;

export class RingPointCache<P> {
  private readonly entries = new Map<string, RingMember<P>>();

  constructor(
    readonly backend: EcBackend<P>,
    private readonly maxEntries: number = DEFAULT_RING_POINT_CACHE_ENTRIES,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new InvalidInputError('ring point cache size', `must be a positive integer, got ${maxEntries}`);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * The decoded member for this key, from the cache or computed now; null when the bytes are not
   * a valid 33-byte compressed point (or, with probability 2^-128, have no hash-to-curve point).
   */
  member(publicKey: Uint8Array): RingMember<P> | null {
    if (publicKey.length !== POINT_BYTES) return null;
    const id = publicKeyId(publicKey);
    const hit = this.entries.get(id);
    if (hit !== undefined) {
      this.entries.delete(id);
      this.entries.set(id, hit);
      return hit;
    }
    const point = this.backend.decodePoint(publicKey);
    if (point === null) return null;
    const hp = hashToCurve(this.backend, publicKey);
    if (hp === null) return null;
    const member: RingMember<P> = { publicKey: Uint8Array.from(publicKey), point, hp: hp.point };
    this.entries.set(id, member);
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    return member;
  }

  clear(): void {
    this.entries.clear();
  }
}

class MemberSetRing<P> implements PreparedRing<P> {
  constructor(
    readonly backend: EcBackend<P>['name'],
    readonly publicKeys: readonly Uint8Array[],
    private readonly members: ReadonlyMap<string, RingMember<P>>,
  ) {}

  member(keyId: string): RingMember<P> | undefined {
    return this.members.get(keyId);
  }
}

export type PrepareRingResult<P> =
  { ok: true; ring: PreparedRing<P> } | { ok: false; index: number; reason: string };

/**
 * Decodes and hashes every key of an expected ring (through `cache` when given). Fails, naming
 * the first offending index, when a key is not a valid 33-byte compressed point: upstream's
 * ring lookup errors out in that case, so no relay of that application verifies.
 */
export function tryPrepareRing<P>(
  backend: EcBackend<P>,
  publicKeys: readonly Uint8Array[],
  cache?: RingPointCache<P>,
): PrepareRingResult<P> {
  if (cache !== undefined && cache.backend !== backend) {
    throw new InvalidInputError(
      'ring point cache',
      `belongs to the ${cache.backend.name} backend, not ${backend.name}`,
    );
  }
  const members = new Map<string, RingMember<P>>();
  const keys: Uint8Array[] = [];
  for (let i = 0; i < publicKeys.length; i++) {
    const key = publicKeys[i]!;
    let member: RingMember<P> | null;
    if (cache !== undefined) {
      member = cache.member(key);
    } else if (key.length !== POINT_BYTES) {
      member = null;
    } else {
      const point = backend.decodePoint(key);
      const hp = point === null ? null : hashToCurve(backend, key);
      member =
        point === null || hp === null ? null : { publicKey: Uint8Array.from(key), point, hp: hp.point };
    }
    if (member === null) {
      return {
        ok: false,
        index: i,
        reason: `ring member ${i} is not a valid 33-byte compressed secp256k1 key`,
      };
    }
    members.set(publicKeyId(key), member);
    keys.push(member.publicKey);
  }
  return { ok: true, ring: new MemberSetRing(backend.name, keys, members) };
}

/** tryPrepareRing that throws InvalidInputError on an invalid key. */
export function prepareRing<P>(
  backend: EcBackend<P>,
  publicKeys: readonly Uint8Array[],
  cache?: RingPointCache<P>,
): PreparedRing<P> {
  const r = tryPrepareRing(backend, publicKeys, cache);
  if (!r.ok) throw new InvalidInputError('expected ring', r.reason);
  return r.ring;
}
