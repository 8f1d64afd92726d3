/**
 * cache/ TieredCache against real Redis and the localnet chain simulator over real sockets.
 */
import net from 'node:net';
import { Redis } from 'ioredis';
import pino from 'pino';
import { Registry, type Counter } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  TieredCache,
  applicationEntity,
  createCacheMetrics,
  proofParamsEntity,
  type CacheEntity,
  type CacheMetrics,
  type TieredCacheConfig,
} from '../../cache/index.js';
import { ChainQueryClient } from '../../chain/index.js';
import { startLocalnet, type Localnet } from '../../localnet/index.js';
import { PubSub, createRedisClient } from '../../transport/index.js';
import { redisUrl, useRedis } from '../helpers/redis.js';
import {
  APP,
  GATEWAY,
  OWNER,
  testGenesis,
  startChainWithClient,
  type ChainWithClient,
} from './localnet-fixtures.js';

const log = pino({ level: 'silent' });
const r = useRedis();

let chainNet: Localnet;
let chain: ChainQueryClient;
let chainHandle: ChainWithClient;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  chainHandle = await startChainWithClient(testGenesis(), 3);
  chainNet = chainHandle.net;
  chain = chainHandle.query;
});
afterAll(async () => {
  await chainHandle.stop();
});
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** Real chain queries, counted. */
function countingChain(): { getApplication: ChainQueryClient['getApplication']; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    getApplication: (address, opts) => {
      calls.push(address);
      return chain.getApplication(address, opts);
    },
  };
}

async function counts(counter: Counter): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await counter.get()).values) {
    out[Object.values(v.labels).join('/')] = v.value;
  }
  return out;
}

interface Instance<A, V> {
  cache: TieredCache<A, V>;
  metrics: CacheMetrics;
  clock: { t: number };
  pubsub?: PubSub;
}

async function instance<A, V>(
  entity: CacheEntity<A, V>,
  opts: { pubsub?: boolean; redis?: Redis; cfg?: TieredCacheConfig } = {},
): Promise<Instance<A, V>> {
  const metrics = createCacheMetrics(new Registry());
  const clock = { t: 1_000_000 };
  let pubsub: PubSub | undefined;
  if (opts.pubsub === true) {
    const subscriber = await createRedisClient({ url: redisUrl(), connection_name: 'vitest-cache-sub' });
    pubsub = new PubSub({ publisher: r.client, subscriber, log });
    cleanups.push(() => pubsub?.close());
  }
  const cache = new TieredCache(
    { redis: opts.redis ?? r.client, keys: r.keys(), pubsub, log, metrics, now: () => clock.t },
    entity,
    { lock_wait_ms: 2_000, ...opts.cfg },
  );
  await cache.start();
  cleanups.push(() => cache.close());
  return { cache, metrics, clock, pubsub };
}

describe('TieredCache', () => {
  it('answers from L1, then from L2 after L1 expiry, with one chain query', async () => {
    const loader = countingChain();
    const a = await instance(applicationEntity(loader));
    const expected = chainNet.chain.application(APP.address);
    expect(expected).toBeDefined();

    expect(await a.cache.get(APP.address)).toEqual(expected);
    expect(await a.cache.get(APP.address)).toEqual(expected);
    a.clock.t += 60_001; // application L1 TTL is 60 s
    expect(await a.cache.get(APP.address)).toEqual(expected);

    expect(loader.calls).toEqual([APP.address]);
    expect(await counts(a.metrics.hits)).toEqual({ 'application/l1': 1, 'application/l2': 1 });
    expect(await counts(a.metrics.misses)).toEqual({ 'application/l1': 2, 'application/l2': 1 });
    expect(await counts(a.metrics.fills)).toEqual({ 'application/found': 1 });
    expect(await counts(a.metrics.lockAcquisitions)).toEqual({ 'application/acquired': 1 });
    // L2 holds the protobuf bytes with the 5 min TTL; the fill lock is gone.
    const keys = r.keys();
    expect(await r.client.getBuffer(keys.applicationKey(APP.address))).toEqual(
      Buffer.from(applicationEntity(loader).encode(expected!)),
    );
    const ttl = await r.client.pttl(keys.applicationKey(APP.address));
    expect(ttl > 290_000 && ttl <= 300_000).toBe(true);
    expect(await r.client.exists(keys.applicationLockKey(APP.address))).toBe(0);
  });

  it('lets one of two instances fill L2 under the lock while the other waits and reads it', async () => {
    const loader = countingChain();
    const a = await instance(applicationEntity(loader));
    const b = await instance(applicationEntity(loader));
    const expected = chainNet.chain.application(APP.address);

    const [fromA, fromB] = await Promise.all([a.cache.get(APP.address), b.cache.get(APP.address)]);
    expect(fromA).toEqual(expected);
    expect(fromB).toEqual(expected);
    expect(loader.calls).toEqual([APP.address]);

    const locks = {
      ...(await counts(a.metrics.lockAcquisitions)),
      ...(await counts(b.metrics.lockAcquisitions)),
    };
    expect(Object.keys(locks).sort()).toEqual(['application/acquired', 'application/contended']);
    const waits = [await counts(a.metrics.lockWaits), await counts(b.metrics.lockWaits)];
    expect(waits).toContainEqual({ 'application/l2_hit': 1 });
  });

  it('shares one chain query between concurrent lookups in one instance', async () => {
    const loader = countingChain();
    const a = await instance(applicationEntity(loader));
    const got = await Promise.all([1, 2, 3].map(() => a.cache.get(APP.address)));
    expect(got).toEqual([1, 2, 3].map(() => chainNet.chain.application(APP.address)));
    expect(loader.calls).toEqual([APP.address]);
  });

  it('caches a not-found answer for the negative TTL', async () => {
    const loader = countingChain();
    const a = await instance(applicationEntity(loader), { cfg: { negative_ttl_ms: 5_000 } });
    expect(await a.cache.get(OWNER.address)).toBeUndefined();
    expect(await a.cache.get(OWNER.address)).toBeUndefined();
    expect(loader.calls).toEqual([OWNER.address]);
    a.clock.t += 5_001;
    expect(await a.cache.get(OWNER.address)).toBeUndefined();
    expect(loader.calls).toEqual([OWNER.address, OWNER.address]);
    expect(await counts(a.metrics.fills)).toEqual({ 'application/not_found': 2 });
    expect(await counts(a.metrics.negativeHits)).toEqual({ application: 1 });
    expect(await r.client.exists(r.keys().applicationKey(OWNER.address))).toBe(0);
  });

  it('bounds L1 by evicting the least recently used entry', async () => {
    const loader = countingChain();
    const a = await instance(applicationEntity(loader), { cfg: { l1_max_entries: 1 } });
    await a.cache.get(APP.address);
    await a.cache.get(GATEWAY.address);
    expect(a.cache.l1Size()).toBe(1);
    expect(a.cache.peek(APP.address)).toBeUndefined();
  });

  it('spares an entry read since it was stored when the bound evicts: the unread one goes', async () => {
    const loader = countingChain();
    const a = await instance(applicationEntity(loader), { cfg: { l1_max_entries: 2 } });
    await a.cache.get(APP.address);
    await a.cache.get(GATEWAY.address);
    // APP is older, but read again; GATEWAY was not.
    expect(a.cache.cached(APP.address)).toEqual({ value: chainNet.chain.application(APP.address) });
    await a.cache.get(OWNER.address);
    expect(a.cache.l1Size()).toBe(2);
    expect(a.cache.cached(GATEWAY.address)).toBeUndefined();
    expect(a.cache.cached(OWNER.address)).toEqual({ value: undefined });
    // Spared once: unread since, APP is now the oldest and goes before OWNER, which was read.
    await a.cache.get(GATEWAY.address);
    expect([APP, GATEWAY, OWNER].map((k) => a.cache.cached(k.address) !== undefined)).toEqual([
      false,
      true,
      true,
    ]);
  });

  it('cached() answers fresh L1 entries without a promise, counted as hits; a miss is not counted', async () => {
    const loader = countingChain();
    const a = await instance(applicationEntity(loader));
    expect(a.cache.cached(APP.address)).toBeUndefined();
    expect(await counts(a.metrics.misses)).toEqual({});
    await a.cache.get(APP.address);
    await a.cache.get(OWNER.address);
    expect(a.cache.cached(APP.address)).toEqual({ value: chainNet.chain.application(APP.address) });
    expect(a.cache.cached(OWNER.address)).toEqual({ value: undefined });
    expect(await counts(a.metrics.hits)).toEqual({ 'application/l1': 1 });
    expect(await counts(a.metrics.negativeHits)).toEqual({ application: 1 });
    a.clock.t += 60_001;
    expect(a.cache.cached(APP.address)).toBeUndefined();
    expect(loader.calls).toEqual([APP.address, OWNER.address]);
  });

  it('treats an undecodable L2 entry as a miss and overwrites it', async () => {
    const loader = countingChain();
    const a = await instance(applicationEntity(loader));
    await r.client.set(r.keys().applicationKey(APP.address), '{"address":"upstream json"}');
    expect(await a.cache.get(APP.address)).toEqual(chainNet.chain.application(APP.address));
    expect(await counts(a.metrics.errors)).toEqual({ 'application/decode': 1 });
    expect(loader.calls).toEqual([APP.address]);
  });

  it('drops L1 on another instance when one invalidates, and deletes L2', async () => {
    const loader = countingChain();
    const a = await instance(applicationEntity(loader), { pubsub: true });
    const b = await instance(applicationEntity(loader), { pubsub: true });
    const expected = chainNet.chain.application(APP.address);
    await a.cache.get(APP.address);
    await b.cache.get(APP.address);
    expect(b.cache.peek(APP.address)).toEqual(expected);

    await a.cache.invalidate(APP.address);
    await expect.poll(() => b.cache.peek(APP.address)).toBeUndefined();
    expect(a.cache.peek(APP.address)).toBeUndefined();
    expect(await r.client.exists(r.keys().applicationKey(APP.address))).toBe(0);
    expect(await counts(b.metrics.invalidations)).toEqual({ 'application/remote': 1 });

    // Whole-type invalidation clears every L1 map and the type's L2 entries.
    await b.cache.get(APP.address);
    await a.cache.invalidateAll();
    await expect.poll(() => b.cache.l1Size()).toBe(0);
    expect(await r.client.exists(r.keys().applicationKey(APP.address))).toBe(0);
  });

  it('makes other instances reload a force-refreshed value from L2 without a chain query', async () => {
    const calls: number[] = [];
    const counted = {
      getProofParams: () => {
        calls.push(1);
        return chain.getProofParams();
      },
    };
    const a = await instance(proofParamsEntity(counted), { pubsub: true });
    const b = await instance(proofParamsEntity(counted), { pubsub: true });
    const before = await b.cache.get(null);
    expect(before).toEqual(chainNet.chain.proofParams);

    const saved = chainNet.chain.proofParams;
    chainNet.chain.setProofParams({ proofRequestProbability: 0.5 });
    cleanups.push(() => chainNet.chain.setProofParams(saved));
    const refreshed = await a.cache.refresh(null);
    expect(refreshed).toEqual({ ...saved, proofRequestProbability: 0.5 });
    await expect.poll(() => b.cache.peek(null)).toEqual(refreshed);
    expect(calls.length).toBe(2);
  });

  it('still answers from the chain when Redis is down, counting the L2 errors', async () => {
    const port = await closedPort();
    const dead = new Redis({
      host: '127.0.0.1',
      port,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    dead.on('error', () => undefined);
    cleanups.push(() => dead.disconnect());
    const loader = countingChain();
    const a = await instance(applicationEntity(loader), { redis: dead });

    expect(await a.cache.get(APP.address)).toEqual(chainNet.chain.application(APP.address));
    expect(await counts(a.metrics.errors)).toEqual({
      'application/l2_read': 1,
      'application/l2_write': 1,
    });
    expect(await a.cache.get(APP.address)).toEqual(chainNet.chain.application(APP.address));
    expect(loader.calls).toEqual([APP.address]);
  });

  it('throws CacheUnavailableError when the chain is down and nothing is cached', async () => {
    const downNet = await startLocalnet(testGenesis(), { blockTimeMs: 0 });
    const downChain = new ChainQueryClient(
      { log },
      { query_node_rpc_url: downNet.url, query_timeout_ms: 1000, max_retries: 0 },
    );
    cleanups.push(() => downChain.close());
    await downNet.stop();
    const a = await instance(applicationEntity(downChain));

    const err: unknown = await a.cache.get(APP.address).catch((e: unknown) => e);
    expect(err).toMatchObject({
      name: 'CacheUnavailableError',
      code: 'CACHE_UNAVAILABLE',
      retryable: true,
      cause: { code: 'CHAIN_UNAVAILABLE' },
    });
    expect(await counts(a.metrics.fills)).toEqual({ 'application/error': 1 });
    expect(await r.client.exists(r.keys().applicationLockKey(APP.address))).toBe(0);
  });
});

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
