/**
 * The expected ring of an application, built exactly as the chain and the upstream relayer build
 * it (poktroll pkg/crypto/rings/client.go, pocket-relay-miner rings/client.go; spec §4.7):
 *
 * 1. gateways = the application's delegatee_gateway_addresses, then every gateway listed in
 *    pending_undelegations under a height ≥ the session end height (those undelegations have not
 *    happened yet as far as that session is concerned), de-duplicated among the pending entries
 *    only;
 * 2. no gateway at all → the placeholder address;
 * 3. addresses = [application] + gateways, sorted bytewise (Go `slices.Sort`);
 * 4. each address → its on-chain public key; the placeholder → its well-known key.
 *
 * rings/ does not know where applications and accounts come from: it declares `RingSource`, and
 * the cache layer implements it.
 */
import { InvalidInputError } from '../core/errors.js';
import { PLACEHOLDER_RING_ADDRESS, PLACEHOLDER_RING_PUBLIC_KEY } from '../protocol/keys.js';
import type { PreparedRing } from './blsag.js';
import type { EcBackend } from './ec-backend.js';
import { RingSourceError } from './errors.js';
import { RingPointCache, tryPrepareRing } from './ring-points.js';

/** The part of `pocket.application.Application` the ring depends on. */
export interface RingApplication {
  readonly delegateeGatewayAddresses: readonly string[];
  /** Session end height (uint64) → gateways whose undelegation was recorded for that height. */
  readonly pendingUndelegations: ReadonlyMap<bigint, { readonly gatewayAddresses: readonly string[] }>;
}

/** Where rings come from; implemented by the cache layer (and by test doubles). */
export interface RingSource {
  /** The application's current on-chain record, or undefined when no such application exists. */
  getApplication(appAddress: string): Promise<RingApplication | undefined>;
  /**
   * The account's 33-byte compressed public key, or undefined when the account does not exist or
   * has never revealed a key. Throw (ideally a retryable RelayMinerError) when the lookup itself
   * failed.
   */
  getAccountPublicKey(address: string): Promise<Uint8Array | undefined>;
}

/** Reads a session end height as the uint64 upstream converts it to (a negative int64 wraps). */
function toUint64(height: number | bigint): bigint {
  if (typeof height === 'number' && !Number.isSafeInteger(height)) {
    throw new InvalidInputError('session end height', `must be an integer, got ${height}`);
  }
  return BigInt.asUintN(64, BigInt(height));
}

function compareStrings(a: string, b: string): number {
  // Go compares strings bytewise; for the ASCII of bech32 addresses that is UTF-16 order too,
  // and Buffer.compare keeps it bytewise for anything else.
  return a === b ? 0 : Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * GetRingAddressesAtSessionEndHeight: the gateways in the ring for a session ending at
 * `sessionEndHeight`, unsorted, possibly empty. Pending undelegations are visited in ascending
 * height order (upstream iterates a Go map, whose order is random; the result is sorted later,
 * so only the de-duplication matters and it does not depend on the order).
 */
export function ringGatewayAddresses(app: RingApplication, sessionEndHeight: number | bigint): string[] {
  const target = toUint64(sessionEndHeight);
  const out = [...app.delegateeGatewayAddresses];
  const addedFromPending = new Set<string>();
  const heights = [...app.pendingUndelegations.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const height of heights) {
    if (height < target) continue;
    for (const gateway of app.pendingUndelegations.get(height)?.gatewayAddresses ?? []) {
      if (addedFromPending.has(gateway)) continue;
      out.push(gateway);
      addedFromPending.add(gateway);
    }
  }
  return out;
}

/** The sorted ring addresses of `appAddress` for a session ending at `sessionEndHeight`. */
export function expectedRingAddresses(
  appAddress: string,
  app: RingApplication,
  sessionEndHeight: number | bigint,
): string[] {
  const gateways = ringGatewayAddresses(app, sessionEndHeight);
  if (gateways.length === 0) gateways.push(PLACEHOLDER_RING_ADDRESS);
  return [appAddress, ...gateways].sort(compareStrings);
}

/** A resolved expected ring: addresses, their keys (same order) and the prepared points. */
export interface ResolvedRing<P> {
  readonly appAddress: string;
  readonly sessionEndHeight: bigint;
  readonly addresses: readonly string[];
  readonly publicKeys: readonly Uint8Array[];
  readonly prepared: PreparedRing<P>;
}

export type RingLookupCode = 'RING_APP_NOT_FOUND' | 'RING_MEMBER_NO_PUBKEY' | 'RING_MEMBER_BAD_PUBKEY';

export type RingLookupResult<P> =
  { ok: true; ring: ResolvedRing<P> } | { ok: false; code: RingLookupCode; reason: string };

async function fromSource<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw new RingSourceError(what, err);
  }
}

/**
 * Resolves the expected ring of `appAddress` for a session ending at `sessionEndHeight`: the
 * application and member keys from `source`, the points through `points` (shared key cache).
 * An unknown application, a member without a public key or with an invalid one are result
 * values (no relay of that application can verify); a failing source throws RingSourceError.
 */
export async function resolveRing<P>(
  source: RingSource,
  points: RingPointCache<P>,
  appAddress: string,
  sessionEndHeight: number | bigint,
): Promise<RingLookupResult<P>> {
  const height = toUint64(sessionEndHeight);
  const app = await fromSource(`application ${appAddress}`, () => source.getApplication(appAddress));
  if (app === undefined) {
    return { ok: false, code: 'RING_APP_NOT_FOUND', reason: `application ${appAddress} not found` };
  }
  const addresses = expectedRingAddresses(appAddress, app, height);
  const publicKeys = await Promise.all(
    addresses.map((address) =>
      address === PLACEHOLDER_RING_ADDRESS
        ? Promise.resolve<Uint8Array | undefined>(PLACEHOLDER_RING_PUBLIC_KEY)
        : fromSource(`public key of ${address}`, () => source.getAccountPublicKey(address)),
    ),
  );
  const keys: Uint8Array[] = [];
  for (let i = 0; i < addresses.length; i++) {
    const key = publicKeys[i];
    if (key === undefined) {
      return {
        ok: false,
        code: 'RING_MEMBER_NO_PUBKEY',
        reason: `ring member ${addresses[i]!} of application ${appAddress} has no public key on chain`,
      };
    }
    keys.push(key);
  }
  const prepared = tryPrepareRing(points.backend, keys, points);
  if (!prepared.ok) {
    return {
      ok: false,
      code: 'RING_MEMBER_BAD_PUBKEY',
      reason: `ring member ${addresses[prepared.index]!} of application ${appAddress} has a public key that is not a 33-byte compressed secp256k1 point`,
    };
  }
  return {
    ok: true,
    ring: {
      appAddress,
      sessionEndHeight: height,
      addresses,
      publicKeys: prepared.ring.publicKeys,
      prepared: prepared.ring,
    },
  };
}

/** Section `rings.cache` of the relayer config. */
export interface RingCacheConfig {
  /** Most (application, session end height) rings kept; the least recently used go first. */
  max_entries: number;
  /**
   * Rings whose session ended more than this many blocks below the newest session end height
   * seen are dropped (upstream keeps 600).
   */
  keep_heights: number;
  /** Upper bound on the age of a ring, so a ring built from stale data heals (upstream: 30 min). */
  ttl_ms: number;
}

export const DEFAULT_RING_CACHE_CONFIG: RingCacheConfig = Object.freeze({
  max_entries: 50_000,
  keep_heights: 600,
  ttl_ms: 30 * 60 * 1000,
});

export interface RingCacheDeps<P> {
  source: RingSource;
  backend: EcBackend<P>;
  /** Shared per-key point cache; one is created when absent. */
  points?: RingPointCache<P>;
  /** Milliseconds clock; Date.now when absent. */
  now?: () => number;
}

interface RingCacheEntry<P> {
  ring: ResolvedRing<P>;
  storedAtMs: number;
}

/**
 * Per-(application, session end height) cache of resolved rings. Concurrent misses for the same
 * key share one resolution. Failed lookups are not cached. Invalidate an application when its
 * delegations change, an account when its key changes (a ring holding it is dropped).
 */
export class RingCache<P> {
  private readonly entries = new Map<string, RingCacheEntry<P>>();
  private readonly inflight = new Map<string, Promise<RingLookupResult<P>>>();
  private readonly points: RingPointCache<P>;
  private readonly now: () => number;
  private newestHeight = 0n;
  private generation = 0;

  constructor(
    private readonly deps: RingCacheDeps<P>,
    private readonly cfg: RingCacheConfig = DEFAULT_RING_CACHE_CONFIG,
  ) {
    if (!Number.isInteger(cfg.max_entries) || cfg.max_entries < 1) {
      throw new InvalidInputError(
        'rings.cache.max_entries',
        `must be a positive integer, got ${cfg.max_entries}`,
      );
    }
    if (!Number.isInteger(cfg.keep_heights) || cfg.keep_heights < 0) {
      throw new InvalidInputError(
        'rings.cache.keep_heights',
        `must be a non-negative integer, got ${cfg.keep_heights}`,
      );
    }
    if (!(cfg.ttl_ms > 0))
      throw new InvalidInputError('rings.cache.ttl_ms', `must be positive, got ${cfg.ttl_ms}`);
    this.points = deps.points ?? new RingPointCache(deps.backend);
    if (this.points.backend !== deps.backend) {
      throw new InvalidInputError('ring cache', 'the point cache belongs to another backend');
    }
    this.now = deps.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The expected ring, from the cache or resolved now. */
  async get(appAddress: string, sessionEndHeight: number | bigint): Promise<RingLookupResult<P>> {
    const height = toUint64(sessionEndHeight);
    const key = `${appAddress}\u0000${height}`;
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      if (this.now() - hit.storedAtMs < this.cfg.ttl_ms) {
        this.entries.delete(key);
        this.entries.set(key, hit);
        return { ok: true, ring: hit.ring };
      }
      this.entries.delete(key);
    }
    const pending = this.inflight.get(key);
    if (pending !== undefined) return pending;
    const generation = this.generation;
    const p = resolveRing(this.deps.source, this.points, appAddress, height).finally(() => {
      this.inflight.delete(key);
    });
    this.inflight.set(key, p);
    const result = await p;
    // A ring resolved across an invalidation may hold the data the invalidation replaced.
    if (result.ok && generation === this.generation) this.store(key, result.ring);
    return result;
  }

  private store(key: string, ring: ResolvedRing<P>): void {
    this.entries.set(key, { ring, storedAtMs: this.now() });
    if (ring.sessionEndHeight > this.newestHeight) {
      this.newestHeight = ring.sessionEndHeight;
      const cutoff = this.newestHeight - BigInt(this.cfg.keep_heights);
      for (const [k, e] of this.entries) if (e.ring.sessionEndHeight < cutoff) this.entries.delete(k);
    }
    while (this.entries.size > this.cfg.max_entries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }

  /** Drops every cached ring of the application (its delegations changed). */
  invalidateApplication(appAddress: string): void {
    this.generation++;
    for (const [k, e] of this.entries) if (e.ring.appAddress === appAddress) this.entries.delete(k);
  }

  /** Drops every cached ring that has the address as a member (its public key changed). */
  invalidateAccount(address: string): void {
    this.generation++;
    for (const [k, e] of this.entries) if (e.ring.addresses.includes(address)) this.entries.delete(k);
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
  }
}
