/**
 * Every cached entity against the localnet chain simulator: each value equals the chain's, and a
 * second process (fresh L1, same Redis) decodes it from L2 without a chain query.
 */
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChainCaches, createCacheMetrics, type ChainCachesClient } from '../../cache/index.js';
import type { ChainQueryClient } from '../../chain/index.js';
import type { Localnet } from '../../localnet/index.js';
import { RingPointCache, resolveRing, selectBackend } from '../../rings/index.js';
import { useRedis } from '../helpers/redis.js';
import {
  APP,
  GATEWAY,
  OWNER,
  SUPPLIER,
  testGenesis,
  startChainWithClient,
  type ChainWithClient,
} from './localnet-fixtures.js';

const log = pino({ level: 'silent' });
const r = useRedis();
let chainNet: Localnet;
let chain: ChainQueryClient;
let chainHandle: ChainWithClient;

beforeAll(async () => {
  chainHandle = await startChainWithClient(testGenesis(), 5);
  chainNet = chainHandle.net;
  chain = chainHandle.query;
});
afterAll(async () => {
  await chainHandle.stop();
});

/** The real client, with every call recorded by method name. */
function recordingChain(calls: string[]): ChainCachesClient {
  return new Proxy(chain, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

function caches(calls: string[]): ChainCaches {
  return new ChainCaches({
    redis: r.client,
    keys: r.keys(),
    log,
    metrics: createCacheMetrics(new Registry()),
    chain: recordingChain(calls),
  });
}

async function readAll(c: ChainCaches): Promise<Record<string, unknown>> {
  return {
    application: await c.applications.get(APP.address),
    service: await c.services.get('anvil'),
    supplier: await c.suppliers.get(SUPPLIER.address),
    account: await c.accounts.get(GATEWAY.address),
    session: await c.sessions.get({ appAddress: APP.address, serviceId: 'anvil', height: 5 }),
    sharedAtHeight: await c.sharedParamsAtHeight.get(3),
    shared: await c.sharedParams.get(null),
    proof: await c.proofParams.get(null),
    difficulty: await c.relayMiningDifficulty.get({ serviceId: 'anvil', height: 4 }),
    cupr: await c.computeUnitsPerRelay.get({ serviceId: 'anvil', height: 4 }),
  };
}

describe('ChainCaches', () => {
  it('answers every entity as the chain does, and a second process reads them from L2', async () => {
    const c = chainNet.chain;
    const session = c.getSession(APP.address, 'anvil', 5);
    expect(session.ok).toBe(true);
    const expected = {
      application: c.application(APP.address),
      service: c.service('anvil'),
      supplier: c.supplier(SUPPLIER.address),
      account: GATEWAY.publicKey,
      session: session.ok ? session.value : undefined,
      sharedAtHeight: c.sharedParamsAt(3),
      shared: c.sharedParams,
      proof: c.proofParams,
      difficulty: c.difficultyAt('anvil', 4),
      cupr: 2n,
    };

    const firstCalls: string[] = [];
    expect(await readAll(caches(firstCalls))).toEqual(expected);
    expect(firstCalls.sort()).toEqual(
      [
        'getAccount',
        'getApplication',
        'getComputeUnitsPerRelayAtHeight',
        'getProofParams',
        'getRelayMiningDifficultyAtHeight',
        'getService',
        'getSession',
        'getSharedParams',
        'getSharedParamsAtHeight',
        'getSupplier',
      ].sort(),
    );

    const secondCalls: string[] = [];
    expect(await readAll(caches(secondCalls))).toEqual(expected);
    expect(secondCalls).toEqual([]);

    // Keys are the documented layout, accounts never expire, sessions expire after their end.
    const keys = r.keys();
    expect(await r.client.pttl(keys.accountKey(GATEWAY.address))).toBe(-1);
    const sessionTtl = await r.client.pttl(keys.sessionKey(APP.address, 'anvil', 5));
    // Session 5..8, grace 1: (8 - 5 + 1 + 2) blocks × 30 s + 10 s.
    expect(sessionTtl > 189_000 && sessionTtl <= 190_000).toBe(true);
  });

  it('answers not-found entities with undefined', async () => {
    const c = caches([]);
    expect(await c.applications.get(OWNER.address)).toBeUndefined();
    expect(await c.services.get('nope')).toBeUndefined();
    expect(await c.suppliers.get(OWNER.address)).toBeUndefined();
  });

  it('serves the ring verifier: the expected ring of an application from the caches', async () => {
    const calls: string[] = [];
    const c = caches(calls);
    const points = new RingPointCache(selectBackend('noble'));
    const ring = await resolveRing(c.ringSource, points, APP.address, 8);
    expect(ring.ok).toBe(true);
    if (!ring.ok) return;
    expect(ring.ring.appAddress).toBe(APP.address);
    expect(ring.ring.sessionEndHeight).toBe(8n);
    expect(calls.sort()).toEqual(['getAccount', 'getAccount', 'getApplication']);
    expect(await c.ringSource.getAccountPublicKey(APP.address)).toEqual(APP.publicKey);
    expect(await c.ringSource.getApplication(OWNER.address)).toBeUndefined();
  });

  it('routes invalidations by type name', async () => {
    const c = caches([]);
    await c.services.get('anvil');
    expect(await r.client.exists(r.keys().serviceKey('anvil'))).toBe(1);
    expect(await c.invalidator.invalidate('service', 'anvil')).toBe(true);
    expect(c.services.peek('anvil')).toBeUndefined();
    expect(await r.client.exists(r.keys().serviceKey('anvil'))).toBe(0);
    expect(c.invalidator.types()).toEqual([
      'application',
      'service',
      'supplier',
      'account',
      'session',
      'shared_params_at_height',
      'shared_params',
      'proof_params',
      'session_params',
      'relay_mining_difficulty',
      'compute_units_per_relay',
    ]);
  });
});
