/**
 * Expected-ring construction as the chain does it, and the per-application ring cache against a
 * small in-memory RingSource.
 */
import { describe, expect, it } from 'vitest';
import { bytesToBigInt, bytesToHex } from '../core/bytes.js';
import { RelayMinerError } from '../core/errors.js';
import { sha256 } from '../protocol/hash.js';
import {
  PLACEHOLDER_RING_ADDRESS,
  PLACEHOLDER_RING_PUBLIC_KEY,
  addressFromPublicKey,
} from '../protocol/keys.js';
import { publicKeyId, signRingSignature, verifyRingSignature } from './blsag.js';
import { RingSourceError } from './errors.js';
import { nobleBackend } from './noble-backend.js';
import {
  RingCache,
  expectedRingAddresses,
  resolveRing,
  ringGatewayAddresses,
  type RingApplication,
  type RingSource,
} from './ring.js';
import { RingPointCache } from './ring-points.js';
import { selectBackend } from './select-backend.js';

const native = selectBackend('native');
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const privs = Array.from({ length: 6 }, (_, i) => sha256(text(`rings ring test key ${i}`)));
const pubs = privs.map((k) => native.encodePoint(native.mulBase(bytesToBigInt(k))));
const addrs = pubs.map((p) => addressFromPublicKey(p));
const [APP, GW1, GW2, GW3, GW4] = addrs as [string, string, string, string, string, string];

function app(delegatees: string[], pending: [bigint, string[]][] = []): RingApplication {
  return {
    delegateeGatewayAddresses: delegatees,
    pendingUndelegations: new Map(pending.map(([h, gws]) => [h, { gatewayAddresses: gws }])),
  };
}

const sorted = (xs: string[]): string[] => [...xs].sort();

describe('ringGatewayAddresses / expectedRingAddresses', () => {
  it('app with no gateway: [app, placeholder], sorted', () => {
    expect(ringGatewayAddresses(app([]), 100)).toEqual([]);
    expect(expectedRingAddresses(APP, app([]), 100)).toEqual(sorted([APP, PLACEHOLDER_RING_ADDRESS]));
  });

  it('delegated gateways, sorted together with the application', () => {
    expect(expectedRingAddresses(APP, app([GW2, GW1]), 100)).toEqual(sorted([APP, GW1, GW2]));
  });

  it('pending undelegations at heights ≥ the session end count, below it they do not', () => {
    const a = app(
      [GW1],
      [
        [99n, [GW2]],
        [100n, [GW3]],
        [250n, [GW4]],
      ],
    );
    expect(sorted(ringGatewayAddresses(a, 100))).toEqual(sorted([GW1, GW3, GW4]));
    expect(sorted(ringGatewayAddresses(a, 101))).toEqual(sorted([GW1, GW4]));
    expect(sorted(ringGatewayAddresses(a, 251))).toEqual([GW1]);
    expect(sorted(ringGatewayAddresses(a, 1n))).toEqual(sorted([GW1, GW2, GW3, GW4]));
  });

  it('only pending entries are de-duplicated, among themselves', () => {
    const a = app(
      [GW1, GW1],
      [
        [100n, [GW2, GW2, GW1]],
        [200n, [GW2, GW3]],
      ],
    );
    // GW1 stays twice from the delegatee list and once more from the pending list, as upstream.
    expect(sorted(ringGatewayAddresses(a, 100))).toEqual(sorted([GW1, GW1, GW1, GW2, GW3]));
  });

  it('only pending undelegations below the session end: placeholder', () => {
    const a = app([], [[50n, [GW1]]]);
    expect(expectedRingAddresses(APP, a, 100)).toEqual(sorted([APP, PLACEHOLDER_RING_ADDRESS]));
    expect(expectedRingAddresses(APP, a, 50)).toEqual(sorted([APP, GW1]));
  });

  it('reads a negative session end height as the uint64 upstream converts it to', () => {
    const a = app([], [[(1n << 64n) - 1n, [GW1]]]);
    expect(ringGatewayAddresses(a, -1)).toEqual([GW1]);
    expect(ringGatewayAddresses(a, -2n)).toEqual([GW1]);
  });

  it('sorts bytewise', () => {
    expect(expectedRingAddresses('pokt1b', app(['pokt1a', 'pokt1B', 'pokt1ab']), 1)).toEqual([
      'pokt1B',
      'pokt1a',
      'pokt1ab',
      'pokt1b',
    ]);
  });
});

/** In-memory RingSource that counts its calls. */
class MemorySource implements RingSource {
  apps = new Map<string, RingApplication>();
  keys = new Map<string, Uint8Array>();
  calls = { apps: 0, keys: 0 };
  failWith: Error | undefined = undefined;

  getApplication(address: string): Promise<RingApplication | undefined> {
    this.calls.apps++;
    if (this.failWith !== undefined) return Promise.reject(this.failWith);
    return Promise.resolve(this.apps.get(address));
  }

  getAccountPublicKey(address: string): Promise<Uint8Array | undefined> {
    this.calls.keys++;
    return Promise.resolve(this.keys.get(address));
  }
}

function source(): MemorySource {
  const s = new MemorySource();
  for (let i = 0; i < addrs.length; i++) s.keys.set(addrs[i]!, pubs[i]!);
  s.apps.set(APP, app([GW1]));
  return s;
}

describe('resolveRing', () => {
  it('resolves addresses to keys in ring order and prepares them', async () => {
    const s = source();
    const r = await resolveRing(s, new RingPointCache(native), APP, 100);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.ring.addresses).toEqual(sorted([APP, GW1]));
    expect(r.ring.publicKeys.map(bytesToHex)).toEqual(
      r.ring.addresses.map((a) => bytesToHex(s.keys.get(a)!)),
    );
    expect(r.ring.sessionEndHeight).toBe(100n);
    // The prepared ring verifies a signature made over the same keys.
    const msg = sha256(text('m'));
    const signer = r.ring.addresses.indexOf(GW1);
    const sig = signRingSignature(native, r.ring.publicKeys, signer, privs[1]!, msg);
    expect(verifyRingSignature(native, sig, msg, r.ring.prepared)).toEqual({ ok: true });
  });

  it('maps the placeholder address to its key without asking the source', async () => {
    const s = source();
    s.apps.set(APP, app([]));
    const r = await resolveRing(s, new RingPointCache(native), APP, 100);
    expect(r.ok && r.ring.publicKeys.map(bytesToHex).sort()).toEqual(
      [bytesToHex(pubs[0]!), bytesToHex(PLACEHOLDER_RING_PUBLIC_KEY)].sort(),
    );
    expect(s.calls.keys).toBe(1);
  });

  it('reports an unknown application, a member without a key and a member with a bad key', async () => {
    const s = source();
    const points = new RingPointCache(native);
    expect(await resolveRing(s, points, GW4, 100)).toEqual({
      ok: false,
      code: 'RING_APP_NOT_FOUND',
      reason: expect.stringContaining(GW4) as unknown,
    });
    s.keys.delete(GW1);
    expect(await resolveRing(s, points, APP, 100)).toEqual({
      ok: false,
      code: 'RING_MEMBER_NO_PUBKEY',
      reason: expect.stringContaining(GW1) as unknown,
    });
    s.keys.set(GW1, Uint8Array.of(2, ...new Uint8Array(32))); // x = 0 is not on the curve
    expect(await resolveRing(s, points, APP, 100)).toEqual({
      ok: false,
      code: 'RING_MEMBER_BAD_PUBKEY',
      reason: expect.stringContaining(GW1) as unknown,
    });
  });

  it('wraps a failing source in RingSourceError, retryable when the cause is', async () => {
    const s = source();
    s.failWith = new RelayMinerError('CACHE_UNAVAILABLE', 'redis down', { retryable: true });
    const err = await resolveRing(s, new RingPointCache(native), APP, 100).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RingSourceError);
    expect({ code: (err as RingSourceError).code, retryable: (err as RingSourceError).retryable }).toEqual({
      code: 'RING_SOURCE_FAILED',
      retryable: true,
    });
    expect((err as Error).cause).toBe(s.failWith);
  });
});

describe('RingCache', () => {
  const cfg = { max_entries: 3, keep_heights: 100, ttl_ms: 1_000 };

  it('serves repeated and concurrent lookups from one resolution', async () => {
    const s = source();
    const cache = new RingCache({ source: s, backend: native }, cfg);
    const [a, b] = await Promise.all([cache.get(APP, 100), cache.get(APP, 100)]);
    const c = await cache.get(APP, 100n);
    expect(a.ok && b.ok && c.ok).toBe(true);
    if (!a.ok || !b.ok || !c.ok) return;
    expect(b.ring).toBe(a.ring);
    expect(c.ring).toBe(a.ring);
    expect(s.calls).toEqual({ apps: 1, keys: 2 });
  });

  it('keys entries by session end height and does not cache failures', async () => {
    const s = source();
    const cache = new RingCache({ source: s, backend: native }, cfg);
    await cache.get(APP, 100);
    await cache.get(APP, 110);
    expect(s.calls.apps).toBe(2);
    await cache.get(GW4, 100);
    await cache.get(GW4, 100);
    expect(s.calls.apps).toBe(4);
    expect(cache.size).toBe(2);
  });

  it('invalidates by application and by member account', async () => {
    const s = source();
    const cache = new RingCache({ source: s, backend: native }, cfg);
    await cache.get(APP, 100);
    s.apps.set(APP, app([GW1, GW2]));
    const stale = await cache.get(APP, 100);
    expect(stale.ok && stale.ring.addresses.length).toBe(2);
    cache.invalidateApplication(APP);
    const fresh = await cache.get(APP, 100);
    expect(fresh.ok && fresh.ring.addresses).toEqual(sorted([APP, GW1, GW2]));
    s.keys.set(GW2, pubs[5]!);
    cache.invalidateAccount(GW2);
    const rekeyed = await cache.get(APP, 100);
    expect(rekeyed.ok && rekeyed.ring.publicKeys.map(publicKeyId)).toContain(publicKeyId(pubs[5]!));
    cache.clear();
    expect(cache.size).toBe(0);
  });

  it('expires entries after ttl_ms, drops old heights and the least recently used', async () => {
    const s = source();
    let now = 0;
    const cache = new RingCache({ source: s, backend: native, now: () => now }, cfg);
    await cache.get(APP, 100);
    now = 999;
    await cache.get(APP, 100);
    expect(s.calls.apps).toBe(1);
    now = 1_000;
    await cache.get(APP, 100);
    expect(s.calls.apps).toBe(2);

    // keep_heights: a ring more than 100 blocks below the newest is dropped.
    await cache.get(APP, 201);
    expect(cache.size).toBe(1);

    // max_entries = 3: the least recently used goes.
    await cache.get(APP, 202);
    await cache.get(APP, 203);
    await cache.get(APP, 201); // touch 201
    await cache.get(APP, 204);
    const before = s.calls.apps;
    await cache.get(APP, 201);
    await cache.get(APP, 203);
    await cache.get(APP, 204);
    expect(s.calls.apps).toBe(before);
    await cache.get(APP, 202);
    expect(s.calls.apps).toBe(before + 1);
  });

  it('shares decoded points between rings through the point cache', async () => {
    const s = source();
    s.apps.set(GW4, app([GW1]));
    const points = new RingPointCache(native);
    const cache = new RingCache({ source: s, backend: native, points }, cfg);
    await cache.get(APP, 100);
    await cache.get(GW4, 100);
    expect(points.size).toBe(3); // APP, GW1, GW4: GW1 decoded once
  });

  it('refuses a point cache of another backend and bad config', () => {
    expect(
      () => new RingCache({ source: source(), backend: native, points: new RingPointCache(nobleBackend) }),
    ).toThrow(/another backend/);
    expect(() => new RingCache({ source: source(), backend: native }, { ...cfg, max_entries: 0 })).toThrow(
      /max_entries/,
    );
  });
});
