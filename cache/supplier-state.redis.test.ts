import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { PubSub, createRedisClient } from '../transport/index.js';
import { redisUrl, useRedis } from '../test/helpers/redis.js';
import { createCacheMetrics, type CacheMetrics } from './metrics.js';
import { SupplierStateCache, type SupplierState } from './supplier-state.js';

const log = pino({ level: 'silent' });
const r = useRedis();
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const STATE: SupplierState = {
  status: 'active',
  staked: true,
  services: ['anvil'],
  staked_endpoints: [{ service_id: 'anvil', rpc_type: 'jsonrpc' }],
  unstake_session_end_height: 0,
  operator_address: 'pokt1sup',
  owner_address: 'pokt1own',
  last_updated: 1_763_900_000,
  updated_by: 'miner-a',
};

async function cache(
  withPubsub: boolean,
): Promise<{ cache: SupplierStateCache; metrics: CacheMetrics; clock: { t: number } }> {
  const metrics = createCacheMetrics(new Registry());
  let pubsub: PubSub | undefined;
  if (withPubsub) {
    const subscriber = await createRedisClient({ url: redisUrl(), connection_name: 'vitest-supplier' });
    pubsub = new PubSub({ publisher: r.client, subscriber, log });
    cleanups.push(() => pubsub?.close());
  }
  const clock = { t: 1_000 };
  const c = new SupplierStateCache({
    redis: r.client,
    keys: r.keys(),
    pubsub,
    log,
    metrics,
    now: () => clock.t,
  });
  cleanups.push(() => c.close());
  return { cache: c, metrics, clock };
}

describe('SupplierStateCache', () => {
  it('loads every registry entry at start and answers from L1', async () => {
    const keys = r.keys();
    await r.client.set(keys.supplierState('pokt1sup'), JSON.stringify(STATE));
    // Upstream writes `null` for an empty services list of an unstaked supplier.
    const unstaked = {
      ...STATE,
      status: 'not_staked',
      staked: false,
      services: null,
      operator_address: 'pokt1b',
    };
    await r.client.set(keys.supplierState('pokt1b'), JSON.stringify(unstaked));
    const { cache: c, metrics } = await cache(false);
    await c.start();
    expect(c.operators().sort()).toEqual(['pokt1b', 'pokt1sup']);
    expect(await c.get('pokt1sup')).toEqual(STATE);
    expect(await c.get('pokt1b')).toEqual({ ...unstaked, services: [] });
    expect(await c.get('pokt1none')).toBeUndefined();
    expect((await metrics.hits.get()).values).toEqual([
      { labels: { cache: 'supplier', level: 'l1' }, value: 2 },
    ]);
  });

  it('reads a contaminated entry as a miss and counts it', async () => {
    await r.client.set(r.keys().supplierState('pokt1sup'), JSON.stringify({ ...STATE, services: [] }));
    const { cache: c, metrics } = await cache(false);
    expect(await c.get('pokt1sup')).toBeUndefined();
    expect((await metrics.supplierContaminated.get()).values).toEqual([
      { labels: { source: 'l2_read' }, value: 1 },
    ]);
  });

  it('propagates a miner write to a relayer instance through the invalidation channel', async () => {
    const miner = await cache(true);
    const relayer = await cache(true);
    await relayer.cache.start();
    expect(await relayer.cache.get('pokt1sup')).toBeUndefined();
    await miner.cache.put(STATE);
    await expect.poll(() => relayer.cache.operators()).toEqual(['pokt1sup']);
    const unstaking = { ...STATE, status: 'unstaking' as const, unstake_session_end_height: 40 };
    await miner.cache.put(unstaking);
    await expect.poll(() => relayer.cache.get('pokt1sup')).toEqual(unstaking);
  });

  it('throws CacheUnavailableError when Redis fails', async () => {
    const { cache: c } = await cache(false);
    const broken = await createRedisClient({ url: redisUrl(), connection_name: 'vitest-broken' });
    await broken.quit();
    const failing = new SupplierStateCache({
      redis: broken,
      keys: r.keys(),
      log,
      metrics: createCacheMetrics(new Registry()),
    });
    await expect(failing.get('pokt1sup')).rejects.toMatchObject({ code: 'CACHE_UNAVAILABLE' });
    expect(await c.get('pokt1sup')).toBeUndefined();
  });
});
