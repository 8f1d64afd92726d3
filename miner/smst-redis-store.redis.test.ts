import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { bytesToHex } from '../core/index.js';
import {
  InMemoryMapStore,
  SparseMerkleSumTrie,
  type MapStore,
  type StoreBatch,
} from '../protocol/smst/index.js';
import { createRedisClient } from '../transport/index.js';
import { redisUrl, useRedis } from '../test/helpers/redis.js';
import { SmstRedisStore, type SmstRedisStoreConfig } from './index.js';

const SUPPLIER = 'pokt1storetestsupplier';
const CFG: SmstRedisStoreConfig = { supplier: SUPPLIER, session_id: 'session1' };

function det(tag: string, i: number): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`${tag}:${i}`).digest());
}

/** The relay value of update i: sizes vary from 0 to 199 bytes. */
function value(i: number): Uint8Array {
  return new Uint8Array(i % 200).fill(i & 0xff);
}

/** Forwards to `inner` and mirrors every commit into an in-memory store (the expected Redis content). */
function mirrored(inner: MapStore): { store: MapStore; mirror: InMemoryMapStore } {
  const mirror = new InMemoryMapStore();
  return {
    mirror,
    store: {
      get: (d) => inner.get(d),
      commit: (b: StoreBatch) => {
        mirror.commit(b);
        return inner.commit(b);
      },
    },
  };
}

function hexEntries(entries: Iterable<[string, Uint8Array]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of entries) out[k] = bytesToHex(v);
  return out;
}

async function redisNodes(redis: Redis, key: string): Promise<Record<string, string>> {
  return hexEntries(Object.entries(await redis.hgetallBuffer(key)));
}

describe('SmstRedisStore', () => {
  const r = useRedis();

  it('resumes a 10,000-leaf trie from Redis in a new process and continues it to the in-memory root', async () => {
    const reference = SparseMerkleSumTrie.create(new InMemoryMapStore());
    for (let i = 0; i < 11_000; i++) await reference.update(det('k', i), value(i), 100n);
    await reference.commit();

    const first = await SmstRedisStore.open(r.deps(), CFG);
    expect(first.resumedFrom).toBe('new');
    for (let i = 0; i < 10_000; i++) {
      await first.trie.update(det('k', i), value(i), 100n);
      if (i % 500 === 499) {
        await first.trie.commit();
        await first.store.flush();
      }
    }
    await first.store.checkpoint();
    const checkpointed = bytesToHex(first.trie.root());

    // A new owner: its own connection, nothing shared with the first but Redis.
    const redis = await createRedisClient({ url: redisUrl() });
    try {
      const second = await SmstRedisStore.open({ redis, keys: r.keys() }, CFG);
      expect({ from: second.resumedFrom, root: bytesToHex(second.trie.root()) }).toEqual({
        from: 'live_root',
        root: checkpointed,
      });
      const trie = second.trie;
      for (let i = 10_000; i < 11_000; i++) {
        await trie.update(det('k', i), value(i), 100n);
        if (i % 250 === 249) {
          await trie.commit();
          await second.store.flush();
        }
      }
      expect({ root: bytesToHex(trie.root()), sum: trie.sum(), count: trie.count() }).toEqual({
        root: bytesToHex(reference.root()),
        sum: 1_100_000n,
        count: 11_000n,
      });
      const path = det('path', 1);
      expect(bytesToHex(await trie.proveClosestBytes(path))).toBe(
        bytesToHex(await reference.proveClosestBytes(path)),
      );
      await second.store.checkpoint();
      const stored = await redis.hlen(second.store.keys.nodes);
      // Lazily loaded: far fewer reads than nodes.
      expect(second.store.stats.nodeReads).toBeLessThan(stored / 2);
      expect(second.store.stats.nodeReads).toBeGreaterThan(0);
    } finally {
      await redis.quit();
    }
  });

  it('keeps exactly the reachable nodes after a checkpoint and defers orphan deletes until then', async () => {
    const opened = await SmstRedisStore.open(r.deps(), { ...CFG, live_root_checkpoint_interval: 1_000 });
    const { store, mirror } = mirrored(opened.store);
    const trie = SparseMerkleSumTrie.create(store);
    await trie.update(det('k', 0), value(0), 5n);
    await trie.commit();
    await opened.store.flush(); // the first flush always checkpoints
    const firstRoot = bytesToHex(trie.root());
    for (let i = 1; i < 200; i++) {
      await trie.update(det('k', i), value(i), 5n);
      await trie.commit();
      await opened.store.flush();
    }
    const k = opened.store.keys;
    expect(bytesToHex((await r.client.getBuffer(k.liveRoot))!)).toBe(firstRoot);
    expect(await r.client.hlen(k.nodes)).toBeGreaterThan(mirror.size);
    await opened.store.checkpoint();
    expect(await redisNodes(r.client, k.nodes)).toEqual(hexEntries(mirror.entries()));
    expect(bytesToHex((await r.client.getBuffer(k.liveRoot))!)).toBe(bytesToHex(trie.root()));
  });

  it('costs one round trip for a whole batch of relays', async () => {
    const { trie, store } = await SmstRedisStore.open(r.deps(), CFG);
    for (let i = 0; i < 300; i++) await trie.update(det('k', i), value(i), 1n);
    await trie.commit();
    await store.flush();
    expect({
      roundTrips: store.stats.roundTrips,
      flushes: store.stats.flushes,
      operations: store.stats.operations,
    }).toEqual({
      roundTrips: 2, // the MGET of the roots in open(), then one flush
      flushes: 1,
      operations: 300,
    });
  });

  it('seals the trie with its root and stats, and a resumed sealed trie takes no more relays', async () => {
    const { trie, store } = await SmstRedisStore.open(r.deps(), { ...CFG, cache_ttl_seconds: 600 });
    for (let i = 0; i < 20; i++) await trie.update(det('k', i), value(i), 7n);
    await trie.commit();
    const root = await store.seal();
    const k = store.keys;
    expect({
      root: bytesToHex((await r.client.getBuffer(k.root))!),
      stats: await r.client.get(k.stats),
      liveRoot: bytesToHex((await r.client.getBuffer(k.liveRoot))!),
    }).toEqual({ root: bytesToHex(root), stats: '20:140', liveRoot: bytesToHex(root) });
    for (const key of [k.nodes, k.root, k.liveRoot, k.stats]) {
      const ttl = await r.client.ttl(key);
      expect(ttl > 0 && ttl <= 600).toBe(true);
    }
    await expect(trie.update(det('k', 99), value(1), 7n).then(() => trie.commit())).rejects.toMatchObject({
      code: 'SMST_TREE_SEALED',
    });
    const resumed = await SmstRedisStore.open(r.deps(), CFG);
    expect({
      from: resumed.resumedFrom,
      sealed: resumed.store.isSealed,
      root: bytesToHex(resumed.trie.root()),
    }).toEqual({
      from: 'claimed_root',
      sealed: true,
      root: bytesToHex(root),
    });
    expect(await resumed.trie.get(det('k', 3))).toEqual({ value: value(3), weight: 7n });
  });

  it('sets no TTL unless configured', async () => {
    const { trie, store } = await SmstRedisStore.open(r.deps(), CFG);
    await trie.update(det('k', 1), value(1), 1n);
    await trie.commit();
    await store.flush();
    expect([await r.client.ttl(store.keys.nodes), await r.client.ttl(store.keys.liveRoot)]).toEqual([-1, -1]);
  });

  it('deletes and ignores roots that are not 48 bytes', async () => {
    const { trie, store } = await SmstRedisStore.open(r.deps(), CFG);
    await trie.update(det('k', 1), value(1), 1n);
    await trie.commit();
    await store.flush();
    const k = store.keys;
    await r.client.set(k.root, Buffer.alloc(40));
    const resumed = await SmstRedisStore.open(r.deps(), CFG);
    expect({ from: resumed.resumedFrom, root: await r.client.exists(k.root) }).toEqual({
      from: 'live_root',
      root: 0,
    });
    await r.client.set(k.liveRoot, 'short');
    const fresh = await SmstRedisStore.open(r.deps(), CFG);
    expect({ from: fresh.resumedFrom, liveRoot: await r.client.exists(k.liveRoot) }).toEqual({
      from: 'new',
      liveRoot: 0,
    });
  });

  it('fails with SMST_NODE_MISSING when a checkpoint references a node that is gone', async () => {
    const { trie, store } = await SmstRedisStore.open(r.deps(), CFG);
    for (let i = 0; i < 10; i++) await trie.update(det('k', i), value(i), 1n);
    await trie.commit();
    await store.flush();
    await r.client.hdel(store.keys.nodes, bytesToHex(trie.root()));
    await expect(SmstRedisStore.open(r.deps(), CFG)).rejects.toMatchObject({ code: 'SMST_NODE_MISSING' });
  });

  it('keeps a batch whose flush failed and sends it with the next flush', async () => {
    const redis = await createRedisClient({ url: redisUrl() });
    try {
      const opened = await SmstRedisStore.open({ redis, keys: r.keys() }, CFG);
      const { store, mirror } = mirrored(opened.store);
      const trie = SparseMerkleSumTrie.create(store);
      for (let i = 0; i < 50; i++) await trie.update(det('k', i), value(i), 1n);
      await trie.commit();
      redis.disconnect();
      await expect(opened.store.flush()).rejects.toMatchObject({
        code: 'SMST_REDIS_FAILED',
        retryable: true,
      });
      await redis.connect();
      for (let i = 50; i < 60; i++) await trie.update(det('k', i), value(i), 1n);
      await trie.commit();
      await opened.store.checkpoint();
      expect(await redisNodes(r.client, opened.store.keys.nodes)).toEqual(hexEntries(mirror.entries()));
    } finally {
      await redis.quit();
    }
  });

  it('serves a re-imported trie from its node cache without reading Redis', async () => {
    const { trie, store } = await SmstRedisStore.open(r.deps(), CFG);
    for (let i = 0; i < 100; i++) await trie.update(det('k', i), value(i), 1n);
    await trie.commit();
    await store.flush();
    const again = SparseMerkleSumTrie.import(store, trie.root());
    const path = det('path', 2);
    expect(bytesToHex(await again.proveClosestBytes(path))).toBe(
      bytesToHex(await trie.proveClosestBytes(path)),
    );
    expect(store.stats.nodeReads).toBe(0);
    expect(store.stats.cacheHits).toBeGreaterThan(0);
  });

  it('flushes by itself when the buffered writes reach max_pending_writes', async () => {
    const { trie, store } = await SmstRedisStore.open(r.deps(), { ...CFG, max_pending_writes: 64 });
    for (let i = 0; i < 100; i++) await trie.update(det('k', i), value(i), 1n);
    await trie.commit();
    expect({ pending: store.pendingWriteCount, flushes: store.stats.flushes }).toEqual({
      pending: 0,
      flushes: 1,
    });
    expect(await r.client.hlen(store.keys.nodes)).toBeGreaterThan(100);
  });

  it('works with cluster hash tags in the key layout', async () => {
    const keys = r.keys({ cluster_hash_tags: true });
    const { trie, store } = await SmstRedisStore.open({ redis: r.client, keys }, CFG);
    for (let i = 0; i < 10; i++) await trie.update(det('k', i), value(i), 1n);
    await trie.commit();
    await store.flush();
    expect(store.keys.nodes).toBe(`${r.prefix}ha:smst:{${SUPPLIER}}:session1:nodes`);
    const resumed = await SmstRedisStore.open({ redis: r.client, keys }, CFG);
    expect(bytesToHex(resumed.trie.root())).toBe(bytesToHex(trie.root()));
  });

  it('refuses a client with a keyPrefix, which would bypass the key builder', () => {
    const redis = new Redis(redisUrl(), { lazyConnect: true, keyPrefix: 'x:' });
    try {
      expect(() => new SmstRedisStore({ redis, keys: r.keys() }, CFG)).toThrow(
        expect.objectContaining({ code: 'INVALID_INPUT' }),
      );
    } finally {
      redis.disconnect();
    }
  });

  it('deletes every key of the trie on destroy', async () => {
    const { trie, store } = await SmstRedisStore.open(r.deps(), CFG);
    await trie.update(det('k', 1), value(1), 1n);
    await trie.commit();
    await store.seal();
    await store.destroy();
    const k = store.keys;
    expect(await r.client.exists(k.nodes, k.root, k.liveRoot, k.stats)).toBe(0);
  });
});
