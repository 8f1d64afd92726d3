/**
 * LeaderDuties against real Redis and pub/sub: service-factor keys exactly as relayers read them,
 * stale-key removal, block events per feed block, invalidations only for changed chain values,
 * and every bad setting.
 */
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BlockEventPublisher,
  BlockEventSubscriber,
  ChainCaches,
  createCacheMetrics,
  jsonInvalidation,
  type BlockEventMessage,
  type InvalidationMessage,
} from '../cache/index.js';
import { ChainNotFoundError, type BlockEvent } from '../chain/index.js';
import { pb } from '../protocol/index.js';
import { PubSub, createRedisClient, type InvalidationType } from '../transport/index.js';
import { redisUrl, useRedis } from '../test/helpers/redis.js';
import type { BlockFeedListener } from './block-feed.js';
import {
  LeaderDuties,
  LeaderDutiesConfigError,
  createLeaderDutiesMetrics,
  type LeaderChainClient,
  type LeaderDutiesConfig,
  type LeaderDutiesDeps,
  type LeaderDutiesMetrics,
} from './leader-duties.js';

const log = pino({ level: 'silent' });
const r = useRedis();
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const NOW = 1_795_000_000;
const APP_A = 'pokt1appaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';

async function bus(): Promise<PubSub> {
  const subscriber = await createRedisClient({ url: redisUrl(), connection_name: 'vitest-leader' });
  const pubsub = new PubSub({ publisher: r.client, subscriber, log });
  cleanups.push(() => pubsub.close());
  return pubsub;
}

/** The chain reads of the leader, answered from mutable values. */
class FakeChain implements LeaderChainClient {
  shared = pb.sharedParams.Params.fromPartial({ numBlocksPerSession: 4n });
  session = pb.sessionParams.Params.fromPartial({ numSuppliersPerSession: 5n });
  proof = pb.proofParams.Params.fromPartial({ proofRequestProbability: 0.5 });
  apps = new Map<string, pb.applicationTypes.Application>();
  services = new Map<string, pb.sharedService.Service>();
  failing = false;
  private answer<T>(v: T | undefined, what: string): Promise<T> {
    if (this.failing) return Promise.reject(new Error('node down'));
    if (v === undefined) return Promise.reject(new ChainNotFoundError(what, 'not found'));
    return Promise.resolve(v);
  }
  getSharedParams = (): Promise<pb.sharedParams.Params> => this.answer(this.shared, 'shared params');
  getSessionParams = (): Promise<pb.sessionParams.Params> => this.answer(this.session, 'session params');
  getProofParams = (): Promise<pb.proofParams.Params> => this.answer(this.proof, 'proof params');
  getApplication = (a: string): Promise<pb.applicationTypes.Application> =>
    this.answer(this.apps.get(a), `application ${a}`);
  getService = (s: string): Promise<pb.sharedService.Service> =>
    this.answer(this.services.get(s), `service ${s}`);
  getSupplier = (): Promise<never> => Promise.reject(new Error('unused'));
  getAccount = (): Promise<never> => Promise.reject(new Error('unused'));
  getSession = (): Promise<never> => Promise.reject(new Error('unused'));
  getSharedParamsAtHeight = (): Promise<never> => Promise.reject(new Error('unused'));
  getRelayMiningDifficultyAtHeight = (): Promise<never> => Promise.reject(new Error('unused'));
  getComputeUnitsPerRelayAtHeight = (): Promise<never> => Promise.reject(new Error('unused'));
}

/** A feed the test drives by hand. */
class HandFeed {
  latest: BlockEvent | undefined;
  private readonly listeners = new Set<BlockFeedListener>();
  onBlock(l: BlockFeedListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  push(height: number): void {
    const hash = new Uint8Array(32).fill(height);
    const b: BlockEvent = {
      height,
      hash,
      hashHex: Buffer.from(hash).toString('hex').toUpperCase(),
      time: `2026-11-23T10:00:${String(height).padStart(2, '0')}.000000000Z`,
      timeUnixNs: 0n,
    };
    this.latest = b;
    for (const l of this.listeners) l(height, hash, b);
  }
}

interface Setup {
  duties: LeaderDuties;
  chain: FakeChain;
  feed: HandFeed;
  metrics: LeaderDutiesMetrics;
  setNow: (s: number) => void;
}

type RegistryPart = NonNullable<LeaderDutiesDeps['registry']>;

async function setup(
  cfg: LeaderDutiesConfig = {},
  opts: { pubsub?: PubSub; registry?: RegistryPart } = {},
): Promise<Setup> {
  const chain = new FakeChain();
  const feed = new HandFeed();
  const metrics = createLeaderDutiesMetrics(new Registry());
  const pubsub = opts.pubsub ?? (await bus());
  const caches = new ChainCaches({
    redis: r.client,
    keys: r.keys(),
    pubsub,
    log,
    metrics: createCacheMetrics(new Registry()),
    chain,
  });
  let now = NOW;
  const duties = new LeaderDuties(
    {
      feed,
      publisher: new BlockEventPublisher({ pubsub, keys: r.keys() }),
      caches,
      chain,
      redis: r.client,
      keys: r.keys(),
      pubsub,
      ...(opts.registry !== undefined ? { registry: opts.registry } : {}),
      log,
      metrics,
      nowSeconds: () => now,
    },
    cfg,
  );
  cleanups.push(() => duties.stop());
  return { duties, chain, feed, metrics, setNow: (s) => (now = s) };
}

async function factorKeys(): Promise<Record<string, { value: unknown; ttl: number }>> {
  const keys = r.keys();
  const found = await r.client.keys(`${r.prefix}*service_factor*`);
  const out: Record<string, { value: unknown; ttl: number }> = {};
  for (const k of found.sort()) {
    const name =
      k === keys.serviceFactorDefaultKey()
        ? 'default'
        : k.slice(keys.serviceFactorServiceKey('x').length - 1);
    out[name] = { value: JSON.parse((await r.client.get(k))!), ttl: await r.client.ttl(k) };
  }
  return out;
}

async function listen(type: InvalidationType, field: string): Promise<InvalidationMessage[]> {
  const seen: InvalidationMessage[] = [];
  await (await bus()).subscribe(jsonInvalidation(type, field).channel(r.keys()), (m) => seen.push(m));
  return seen;
}

describe('LeaderDuties service factors', () => {
  it('writes the default and per-service factors with their TTL as relayers read them', async () => {
    const { duties } = await setup({
      default_service_factor: 0.8,
      service_factors: { anvil: 1.5, eth: 0 },
      service_factor_ttl_seconds: 600,
    });
    await duties.start();
    expect(await factorKeys()).toEqual({
      default: { value: { factor: 0.8, updated_at: NOW }, ttl: 600 },
      anvil: { value: { factor: 1.5, updated_at: NOW }, ttl: 600 },
      eth: { value: { factor: 0, updated_at: NOW }, ttl: 600 },
    });
  });

  it('deletes keys of services no longer configured and the default when none is set', async () => {
    const keys = r.keys();
    await r.client.set(keys.serviceFactorDefaultKey(), JSON.stringify({ factor: 2, updated_at: 1 }));
    await r.client.set(keys.serviceFactorServiceKey('old'), JSON.stringify({ factor: 3, updated_at: 1 }));
    await r.client.set(keys.serviceFactorServiceKey('anvil'), JSON.stringify({ factor: 1.5, updated_at: 1 }));
    const { duties } = await setup({ service_factors: { anvil: 1.5 }, service_factor_ttl_seconds: 60 });
    expect(await duties.writeServiceFactors()).toEqual({
      services: ['anvil'],
      default_written: false,
      removed: ['old'],
      default_removed: true,
      changed: true,
    });
    expect(await factorKeys()).toEqual({ anvil: { value: { factor: 1.5, updated_at: NOW }, ttl: 60 } });
  });

  it('publishes one invalidation when a factor changes and none when it is only rewritten', async () => {
    const seen = await listen('service_factor', 'service_id');
    const { duties } = await setup({ service_factors: { anvil: 2 } });
    expect((await duties.writeServiceFactors()).changed).toBe(true);
    expect((await duties.writeServiceFactors()).changed).toBe(false);
    expect(await duties.writeServiceFactors()).toEqual({
      services: ['anvil'],
      default_written: false,
      removed: [],
      default_removed: false,
      changed: false,
    });
    await expect.poll(() => seen).toEqual([{ id: undefined }]);
  });

  it('rewrites the factors once half their TTL has passed', async () => {
    const { duties, feed, setNow } = await setup({
      default_service_factor: 1,
      service_factor_ttl_seconds: 100,
    });
    await duties.start();
    setNow(NOW + 49);
    feed.push(1);
    await duties.idle();
    expect((await factorKeys())['default']!.value).toEqual({ factor: 1, updated_at: NOW });
    setNow(NOW + 50);
    feed.push(2);
    await duties.idle();
    expect((await factorKeys())['default']!.value).toEqual({ factor: 1, updated_at: NOW + 50 });
  });

  it.each<[LeaderDutiesConfig, string]>([
    [{ default_service_factor: -1 }, 'default_service_factor: must be a non-negative number, got -1'],
    [
      { default_service_factor: Number.NaN },
      'default_service_factor: must be a non-negative number, got NaN',
    ],
    [
      { service_factors: { anvil: Infinity } },
      'service_factors.anvil: must be a non-negative number, got Infinity',
    ],
    [
      { service_factors: { anvil: '2' as unknown as number } },
      'service_factors.anvil: must be a non-negative number, got 2',
    ],
    [{ service_factors: { 'a:b': 1 } }, 'service_factors.a:b: service id is not usable in a Redis key'],
    [{ service_factors: { '': 1 } }, 'service_factors.: service id is not usable in a Redis key'],
    [{ service_factor_ttl_seconds: 0 }, 'service_factor_ttl_seconds: must be a positive integer, got 0'],
    [{ refresh_concurrency: 0.5 }, 'refresh_concurrency: must be a positive integer, got 0.5'],
    [{ known_applications: ['pokt1 x'] }, 'known_applications[0]: must be a non-empty address'],
    [{ known_applications: [APP_A, ''] }, 'known_applications[1]: must be a non-empty address'],
  ])('refuses the setting %j', async (cfg, message) => {
    const pubsub = await bus();
    const make = (): Promise<Setup> => setup(cfg, { pubsub });
    await expect(make()).rejects.toThrow(LeaderDutiesConfigError);
    await expect(make()).rejects.toThrow(message);
  });
});

describe('LeaderDuties per block', () => {
  it('publishes the latest block at start and every feed block after, until stopped', async () => {
    const pubsub = await bus();
    const sub = new BlockEventSubscriber({
      pubsub: await bus(),
      keys: r.keys(),
      log,
      metrics: createCacheMetrics(new Registry()),
    });
    await sub.start();
    cleanups.push(() => sub.close());
    const seen: BlockEventMessage[] = [];
    sub.onBlock('test', (ev) => {
      seen.push(ev);
    });
    const { duties, feed, metrics } = await setup({}, { pubsub });
    feed.push(7);
    await duties.start();
    feed.push(8);
    feed.push(9);
    await sub.waitForHeight(9);
    await duties.stop();
    feed.push(10);
    await new Promise((res) => setTimeout(res, 50));
    expect(seen.map((e) => [e.height, e.hash[0], e.timestamp])).toEqual([
      [7, 7, '2026-11-23T10:00:07.000000000Z'],
      [8, 8, '2026-11-23T10:00:08.000000000Z'],
      [9, 9, '2026-11-23T10:00:09.000000000Z'],
    ]);
    expect((await metrics.blocksPublished.get()).values.map((v) => [v.labels['result'], v.value])).toEqual([
      ['ok', 3],
    ]);
  });

  it('starts and stops the supplier registry with the duties and hands it every block', async () => {
    const calls: string[] = [];
    const registry: RegistryPart = {
      start: () => {
        calls.push('start');
        return Promise.resolve([]);
      },
      stop: () => {
        calls.push('stop');
        return Promise.resolve();
      },
      checkBlock: (h) => {
        calls.push(`block ${h}`);
        return Promise.resolve([]);
      },
    };
    const { duties, feed } = await setup({}, { registry });
    await duties.start();
    feed.push(4);
    feed.push(5);
    await duties.stop();
    feed.push(6);
    expect(calls).toEqual(['start', 'block 4', 'block 5', 'stop']);
  });

  it('adds known_applications to the known set and refreshes them with the params', async () => {
    const { duties, chain } = await setup({ known_applications: [APP_A, APP_A] });
    chain.apps.set(APP_A, pb.applicationTypes.Application.fromPartial({ address: APP_A }));
    await r.client.sadd(r.keys().knownSet('services'), 'anvil');
    await duties.start();
    expect((await r.client.smembers(r.keys().knownSet('applications'))).sort()).toEqual([APP_A]);
    expect(await duties.refreshOnce()).toEqual({ unchanged: 5, changed: [], errors: [] });
  });

  it('invalidates only the values that changed on chain, including ones that disappeared', async () => {
    const params = await listen('proof_params', 'id');
    const shared = await listen('shared_params', 'id');
    const services = await listen('service', 'service_id');
    const apps = await listen('application', 'address');
    const { duties, chain } = await setup();
    chain.services.set(
      'anvil',
      pb.sharedService.Service.fromPartial({ id: 'anvil', computeUnitsPerRelay: 2n }),
    );
    chain.apps.set(APP_A, pb.applicationTypes.Application.fromPartial({ address: APP_A }));
    await r.client.sadd(r.keys().knownSet('services'), 'anvil', 'gone');
    await r.client.sadd(r.keys().knownSet('applications'), APP_A);
    // The first round compares with what the caches hold (filled here), so nothing is published.
    expect(await duties.refreshOnce()).toEqual({ unchanged: 6, changed: [], errors: [] });

    chain.proof = pb.proofParams.Params.fromPartial({ proofRequestProbability: 0.25 });
    chain.services.delete('anvil');
    expect(await duties.refreshOnce()).toEqual({
      unchanged: 4,
      changed: ['proof_params', 'service:anvil'],
      errors: [],
    });
    expect(await duties.refreshOnce()).toEqual({ unchanged: 6, changed: [], errors: [] });
    await expect.poll(() => [params.length, services.length]).toEqual([1, 1]);
    expect(params).toEqual([{ id: 'singleton' }]);
    expect(services).toEqual([{ id: 'anvil' }]);
    expect(shared).toEqual([]);
    expect(apps).toEqual([]);
    expect(await r.client.exists(r.keys().serviceKey('anvil'))).toBe(0);
    const proofL2 = await r.client.getBuffer(r.keys().proofParamsKey());
    expect(pb.proofParams.Params.decode(proofL2!)).toEqual(chain.proof);
  });

  it('counts a failing chain per entity and recovers on the next round', async () => {
    const { duties, chain, metrics } = await setup();
    await duties.refreshOnce();
    chain.failing = true;
    expect(await duties.refreshOnce()).toEqual({
      unchanged: 0,
      changed: [],
      errors: ['proof_params', 'session_params', 'shared_params'],
    });
    chain.failing = false;
    expect(await duties.refreshOnce()).toEqual({ unchanged: 3, changed: [], errors: [] });
    const byResult: Record<string, number> = {};
    for (const v of (await metrics.refreshes.get()).values) {
      const k = String(v.labels['result']);
      byResult[k] = (byResult[k] ?? 0) + v.value;
    }
    expect(byResult).toEqual({ unchanged: 6, error: 3 });
  });
});
