/**
 * CacheMeterInputs against the localnet chain simulator through ChainCaches over real Redis, and
 * the RelayMeter fed by it: the heights each input is read at when shared params change between
 * sessions, the service factor keys, and a missing application turned into the meter's error.
 */
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChainCaches, createCacheMetrics } from '../../cache/index.js';
import { ChainQueryClient } from '../../chain/index.js';
import type { SessionHeader } from '../../protocol/index.js';
import { RelayMeter, RelayerMetrics, type MeterInputs, type MeterSession } from '../../relayer/index.js';
import { CacheMeterInputs } from '../../relayer/meter-inputs.js';
import { RelayPipelineMetrics } from '../../relayer/pipeline-metrics.js';
import { useRedis } from '../helpers/redis.js';
import {
  APP,
  APP_STAKE,
  SUPPLIER,
  startChainWithClient,
  testGenesis,
  type ChainWithClient,
} from './localnet-fixtures.js';

const log = pino({ level: 'silent' });
const r = useRedis();

let chainHandle: ChainWithClient;
/** Session [5, 8] (params of genesis) and session [9, 12] (after the change effective at 9). */
let first: SessionHeader;
let second: SessionHeader;

beforeAll(async () => {
  chainHandle = await startChainWithClient(testGenesis(), 5);
  first = (await chainHandle.query.getSession(APP.address, 'anvil', 5)).header!;
  const effective = chainHandle.net.chain.updateSharedParams({
    claimWindowCloseOffsetBlocks: 8n,
    proofWindowCloseOffsetBlocks: 6n,
    computeUnitsToTokensMultiplier: 84_000_000n,
  });
  expect(effective).toBe(9);
  chainHandle.net.chain.advanceTo(10);
  second = (await chainHandle.query.getSession(APP.address, 'anvil', 10)).header!;
});
afterAll(async () => {
  await chainHandle.stop();
});

function meterSession(h: SessionHeader, app = h.applicationAddress): MeterSession {
  return {
    session_id: h.sessionId,
    supplier: SUPPLIER.address,
    app_address: app,
    service_id: h.serviceId,
    session_start_height: Number(h.sessionStartBlockHeight),
    session_end_height: Number(h.sessionEndBlockHeight),
  };
}

function build(
  currentHeight: number,
  chain: ChainQueryClient = chainHandle.query,
  opts: { serviceFactorTtlMs?: number } = {},
) {
  const cacheRegistry = new Registry();
  const caches = new ChainCaches({
    redis: r.client,
    keys: r.keys(),
    log,
    metrics: createCacheMetrics(cacheRegistry),
    chain,
  });
  const inputs = new CacheMeterInputs(
    {
      caches,
      heights: { currentHeight },
      redis: r.client,
      keys: r.keys(),
      log,
      metrics: new RelayPipelineMetrics(new Registry()),
    },
    { service_factor_ttl_ms: opts.serviceFactorTtlMs ?? 0 },
  );
  const meter = new RelayMeter(
    {
      redis: r.client,
      keys: r.keys(),
      inputs,
      log,
      metrics: new RelayerMetrics(new Registry()),
      nowMs: () => 1_763_900_000_000,
    },
    { enabled: true, fail_behavior: 'closed', ttl_seconds: 600 },
  );
  return { caches, inputs, meter, cacheRegistry };
}

/** `cache/level` (or `cache` for negative hits) → count, of one cache counter. */
async function cacheCounts(registry: Registry, name: string): Promise<Record<string, number>> {
  const m = await registry.getSingleMetric(name)!.get();
  return Object.fromEntries(m.values.map((v) => [Object.values(v.labels).join('/'), v.value]));
}

const GENESIS_WINDOWS: MeterInputs['shared'] = {
  num_blocks_per_session: 4,
  claim_window_open_offset_blocks: 1,
  claim_window_close_offset_blocks: 4,
  proof_window_open_offset_blocks: 0,
  proof_window_close_offset_blocks: 4,
};
const CHANGED_WINDOWS: MeterInputs['shared'] = {
  ...GENESIS_WINDOWS,
  claim_window_close_offset_blocks: 8,
  proof_window_close_offset_blocks: 6,
};

/** The active session's inputs at height 10 (no service factor). */
const SECOND_SESSION_INPUTS: MeterInputs = {
  app_stake_upokt: APP_STAKE,
  compute_units_per_relay: 2n,
  compute_units_to_tokens_multiplier: 84_000_000n,
  compute_unit_cost_granularity: 1_000_000n,
  num_suppliers_per_session: 50,
  shared: CHANGED_WINDOWS,
};

describe('CacheMeterInputs on the localnet', () => {
  it('sessions are where the test expects them', () => {
    expect([first.sessionStartBlockHeight, first.sessionEndBlockHeight]).toEqual([5n, 8n]);
    expect([second.sessionStartBlockHeight, second.sessionEndBlockHeight]).toEqual([9n, 12n]);
  });

  it('active session: live windows, cost params at its start, chain stake, CUPR and session params', async () => {
    const { inputs, caches } = build(10);
    expect(await inputs.meterInputs(meterSession(second))).toEqual<MeterInputs>(SECOND_SESSION_INPUTS);
    await caches.close();
  });

  it('ended session: windows and cost params as they were for it', async () => {
    const { inputs, caches } = build(10);
    expect(await inputs.meterInputs(meterSession(first))).toEqual<MeterInputs>({
      app_stake_upokt: APP_STAKE,
      compute_units_per_relay: 2n,
      compute_units_to_tokens_multiplier: 42_000_000n,
      compute_unit_cost_granularity: 1_000_000n,
      num_suppliers_per_session: 50,
      shared: GENESIS_WINDOWS,
    });
    await caches.close();
  });

  it('answers repeat lookups from memory, each lookup counted once; a lookup not in memory is fetched', async () => {
    const { inputs, caches, cacheRegistry } = build(10, chainHandle.query, { serviceFactorTtlMs: 60_000 });
    const factorKey = r.keys().serviceFactorServiceKey('anvil');
    await r.client.set(factorKey, '{"factor":0.5,"updated_at":1763900000}');
    const expected: MeterInputs = { ...SECOND_SESSION_INPUTS, service_factor: 0.5 };
    expect(await inputs.meterInputs(meterSession(second))).toEqual(expected);
    // The memoized factor is used, not Redis: a changed key is not read within the memo's TTL.
    await r.client.set(factorKey, '{"factor":0.9,"updated_at":1763900001}');
    expect(await inputs.meterInputs(meterSession(second))).toEqual(expected);
    expect(await inputs.meterInputs(meterSession(second))).toEqual(expected);
    const l1 = (c: string) => `${c}/l1`;
    const five = [
      'application',
      'compute_units_per_relay',
      'shared_params_at_height',
      'shared_params',
      'session_params',
    ];
    expect(await cacheCounts(cacheRegistry, 'ha_cache_hits_total')).toEqual(
      Object.fromEntries(five.map((c) => [l1(c), 2])),
    );
    const misses = await cacheCounts(cacheRegistry, 'ha_cache_misses_total');
    expect(Object.fromEntries(five.map((c) => [l1(c), misses[l1(c)]]))).toEqual(
      Object.fromEntries(five.map((c) => [l1(c), 1])),
    );
    // One fact dropped from L1 (here by another replica's invalidation): only it is fetched again.
    await caches.applications.invalidate(APP.address);
    expect(await inputs.meterInputs(meterSession(second))).toEqual(expected);
    const after = await cacheCounts(cacheRegistry, 'ha_cache_hits_total');
    expect(Object.fromEntries(five.map((c) => [l1(c), after[l1(c)]]))).toEqual({
      ...Object.fromEntries(five.map((c) => [l1(c), 3])),
      [l1('application')]: 2,
    });
    expect((await cacheCounts(cacheRegistry, 'ha_cache_misses_total'))[l1('application')]).toBe(2);
    await caches.close();
  });

  it('the session params singleton is cached in Redis under its key', async () => {
    const { inputs, caches } = build(10);
    await inputs.meterInputs(meterSession(second));
    expect(await r.client.exists(r.keys().sessionParamsKey())).toBe(1);
    await caches.close();
  });

  it('meters with the resolved inputs: cost and budget of both sessions', async () => {
    const { meter, caches } = build(10);
    // First session: cost 2 × 42 000 000 / 1 000 000 = 84; blocks to close 1+4+0+4 = 9, 4 per
    // session → 3 + 1 = 4 pending; budget 100 000 000 / 50 suppliers (default) / 4 = 500 000.
    expect(await meter.consume(meterSession(first))).toEqual({
      ok: true,
      code: 'METER_ALLOWED',
      cost: 84n,
      consumed: 84n,
      max: 500_000n,
    });
    // Second session: cost 168; blocks to close 1+8+0+6 = 15 → 4 + 1 = 5 pending; 400 000.
    expect(await meter.consume(meterSession(second))).toEqual({
      ok: true,
      code: 'METER_ALLOWED',
      cost: 168n,
      consumed: 168n,
      max: 400_000n,
    });
    await caches.close();
  });

  it('a service factor in Redis sets the budget to stake × factor', async () => {
    const { meter, caches } = build(10);
    await r.client.set(r.keys().serviceFactorServiceKey('anvil'), '{"factor":0.1,"updated_at":1763900000}');
    expect(await meter.consume(meterSession(second))).toEqual({
      ok: true,
      code: 'METER_ALLOWED',
      cost: 168n,
      consumed: 168n,
      max: 10_000_000n,
    });
    await caches.close();
  });

  it('an application unknown to the chain is a meter error (refused when fail-closed)', async () => {
    const { meter, caches } = build(10);
    const decision = await meter.consume(meterSession(second, SUPPLIER.address));
    expect(decision).toMatchObject({ ok: false, code: 'METER_ERROR' });
    expect(decision.code === 'METER_ERROR' && decision.error.message).toBe(
      `relay meter input application ${SUPPLIER.address}: not found on chain`,
    );
    await caches.close();
  });

  it('an unreachable chain with empty caches is a meter error', async () => {
    const down = new ChainQueryClient(
      { log },
      { query_node_rpc_url: 'http://127.0.0.1:1', query_timeout_ms: 500, max_retries: 0 },
    );
    const { meter, caches } = build(10, down);
    expect(await meter.consume(meterSession(second))).toMatchObject({ ok: false, code: 'METER_ERROR' });
    await caches.close();
    down.close();
  });
});
