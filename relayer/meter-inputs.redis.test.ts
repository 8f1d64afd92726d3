import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { ChainCaches, createCacheMetrics, type ChainCachesClient } from '../cache/index.js';
import { ChainNotFoundError, ChainUnavailableError } from '../chain/index.js';
import { pb } from '../protocol/index.js';
import { useRedis } from '../test/helpers/redis.js';
import { CacheMeterInputs, MeterInputUnavailableError, parseServiceFactor } from './meter-inputs.js';
import { RelayPipelineMetrics } from './pipeline-metrics.js';
import { RelayerMetrics } from './metrics.js';
import { RelayMeter, type MeterInputs, type MeterSession } from './relay-meter.js';

const r = useRedis();
const silent = pino({ level: 'silent' });
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const APP = 'pokt1app';
const SESSION: MeterSession = {
  session_id: 'sess1',
  supplier: 'pokt1sup',
  app_address: APP,
  service_id: 'anvil',
  session_start_height: 21,
  session_end_height: 30,
};

type SharedParams = pb.sharedParams.Params;

function shared(over: Partial<SharedParams>): SharedParams {
  return pb.sharedParams.Params.fromPartial({
    numBlocksPerSession: 10n,
    gracePeriodEndOffsetBlocks: 1n,
    claimWindowOpenOffsetBlocks: 1n,
    claimWindowCloseOffsetBlocks: 4n,
    proofWindowOpenOffsetBlocks: 0n,
    proofWindowCloseOffsetBlocks: 4n,
    computeUnitsToTokensMultiplier: 42n,
    computeUnitCostGranularity: 1n,
    ...over,
  });
}

/**
 * A chain that answers from tables: shared params per height (the last entry at or below the
 * height), live shared params, session params, applications and CUPR per (service, height).
 * Anything marked down throws ChainUnavailableError; unknown entities throw ChainNotFoundError.
 */
class TableChain implements ChainCachesClient {
  apps = new Map<string, pb.applicationTypes.Application>();
  sharedAt = new Map<number, SharedParams>();
  live: SharedParams = shared({});
  session: pb.sessionParams.Params = { numSuppliersPerSession: 3n };
  cupr = new Map<string, bigint>();
  down = new Set<string>();
  calls: string[] = [];

  private guard(what: string): void {
    this.calls.push(what);
    if (this.down.has(what)) throw new ChainUnavailableError(what);
  }

  getApplication(address: string): Promise<pb.applicationTypes.Application> {
    this.guard('application');
    const app = this.apps.get(address);
    return app === undefined
      ? Promise.reject(new ChainNotFoundError(`application ${address}`, 'not found'))
      : Promise.resolve(app);
  }
  getSharedParams(): Promise<SharedParams> {
    this.guard('shared_params');
    return Promise.resolve(this.live);
  }
  getSharedParamsAtHeight(height: number): Promise<SharedParams> {
    this.guard('shared_params_at_height');
    const heights = [...this.sharedAt.keys()].filter((h) => h <= height).sort((a, b) => b - a);
    const p = heights[0] === undefined ? undefined : this.sharedAt.get(heights[0]);
    return p === undefined
      ? Promise.reject(new ChainNotFoundError(`shared params at ${height}`, 'none'))
      : Promise.resolve(p);
  }
  getSessionParams(): Promise<pb.sessionParams.Params> {
    this.guard('session_params');
    return Promise.resolve(this.session);
  }
  getComputeUnitsPerRelayAtHeight(serviceId: string, height: number): Promise<bigint> {
    this.guard('cupr');
    const v = this.cupr.get(`${serviceId}@${height}`);
    return v === undefined
      ? Promise.reject(new ChainNotFoundError(`service ${serviceId}`, 'not found'))
      : Promise.resolve(v);
  }
  getService(): never {
    throw new Error('not used');
  }
  getSupplier(): never {
    throw new Error('not used');
  }
  getAccount(): never {
    throw new Error('not used');
  }
  getSession(): never {
    throw new Error('not used');
  }
  getProofParams(): never {
    throw new Error('not used');
  }
  getRelayMiningDifficultyAtHeight(): never {
    throw new Error('not used');
  }
}

function app(amount: string | undefined, denom = 'upokt'): pb.applicationTypes.Application {
  return pb.applicationTypes.Application.fromPartial({
    address: APP,
    stake: amount === undefined ? undefined : { denom, amount },
  });
}

/** Params at the start height differ from the live ones and from those at the end height. */
function chain(): TableChain {
  const c = new TableChain();
  c.apps.set(APP, app('90000000'));
  c.sharedAt.set(1, shared({ computeUnitsToTokensMultiplier: 7n, computeUnitCostGranularity: 1n }));
  c.sharedAt.set(
    21,
    shared({ computeUnitsToTokensMultiplier: 42_000_000n, computeUnitCostGranularity: 1_000_000n }),
  );
  c.sharedAt.set(
    30,
    shared({
      numBlocksPerSession: 5n,
      claimWindowOpenOffsetBlocks: 2n,
      claimWindowCloseOffsetBlocks: 6n,
      proofWindowOpenOffsetBlocks: 1n,
      proofWindowCloseOffsetBlocks: 7n,
    }),
  );
  c.live = shared({
    numBlocksPerSession: 20n,
    claimWindowOpenOffsetBlocks: 3n,
    claimWindowCloseOffsetBlocks: 8n,
    proofWindowOpenOffsetBlocks: 2n,
    proofWindowCloseOffsetBlocks: 9n,
  });
  c.cupr.set('anvil@21', 5n);
  return c;
}

interface Built {
  inputs: CacheMeterInputs;
  heights: { currentHeight: number };
  metrics: RelayPipelineMetrics;
  warnings: Record<string, unknown>[];
  clock: { t: number };
}

function build(c: TableChain, opts: { height?: number; redis?: Redis; factorTtlMs?: number } = {}): Built {
  const caches = new ChainCaches({
    redis: r.client,
    keys: r.keys(),
    log: silent,
    metrics: createCacheMetrics(new Registry()),
    chain: c,
  });
  cleanups.push(() => caches.close());
  const warnings: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      warnings.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  const heights = { currentHeight: opts.height ?? 25 };
  const metrics = new RelayPipelineMetrics(new Registry());
  const clock = { t: 1_000 };
  const inputs = new CacheMeterInputs(
    {
      caches,
      heights,
      redis: opts.redis ?? r.client,
      keys: r.keys(),
      log: pino({ level: 'warn' }, sink),
      metrics,
      nowMs: () => clock.t,
    },
    { service_factor_ttl_ms: opts.factorTtlMs ?? 0 },
  );
  return { inputs, heights, metrics, warnings, clock };
}

const LIVE_WINDOWS: MeterInputs['shared'] = {
  num_blocks_per_session: 20,
  claim_window_open_offset_blocks: 3,
  claim_window_close_offset_blocks: 8,
  proof_window_open_offset_blocks: 2,
  proof_window_close_offset_blocks: 9,
};
const END_WINDOWS: MeterInputs['shared'] = {
  num_blocks_per_session: 5,
  claim_window_open_offset_blocks: 2,
  claim_window_close_offset_blocks: 6,
  proof_window_open_offset_blocks: 1,
  proof_window_close_offset_blocks: 7,
};
const EXPECTED_ACTIVE: MeterInputs = {
  app_stake_upokt: 90_000_000n,
  compute_units_per_relay: 5n,
  compute_units_to_tokens_multiplier: 42_000_000n,
  compute_unit_cost_granularity: 1_000_000n,
  num_suppliers_per_session: 3,
  shared: LIVE_WINDOWS,
};

async function invalidCounts(m: RelayPipelineMetrics): Promise<unknown[]> {
  return (await m.serviceFactorInvalid.get()).values.map((v) => ({ labels: v.labels, value: v.value }));
}

async function setFactor(scope: 'service' | 'default', raw: string): Promise<void> {
  const keys = r.keys();
  await r.client.set(
    scope === 'service' ? keys.serviceFactorServiceKey('anvil') : keys.serviceFactorDefaultKey(),
    raw,
  );
}

describe('CacheMeterInputs: heights of each input (relayer.md §5.1–§5.2)', () => {
  it('active session: stake, CUPR and cost params at the start, live windows, session params', async () => {
    const { inputs } = build(chain(), { height: 25 });
    expect(await inputs.meterInputs(SESSION)).toEqual(EXPECTED_ACTIVE);
  });

  it('a session ending at the current height is still active (live windows)', async () => {
    const { inputs } = build(chain(), { height: 30 });
    expect(await inputs.meterInputs(SESSION)).toEqual(EXPECTED_ACTIVE);
  });

  it('no block seen yet (height 0) reads the live windows', async () => {
    const { inputs } = build(chain(), { height: 0 });
    expect(await inputs.meterInputs(SESSION)).toEqual(EXPECTED_ACTIVE);
  });

  it('ended session: windows at the end height, cost params still at the start', async () => {
    const { inputs } = build(chain(), { height: 31 });
    expect(await inputs.meterInputs(SESSION)).toEqual({ ...EXPECTED_ACTIVE, shared: END_WINDOWS });
  });

  it('follows the current height as blocks arrive', async () => {
    const { inputs, heights } = build(chain(), { height: 29 });
    expect((await inputs.meterInputs(SESSION)).shared).toEqual(LIVE_WINDOWS);
    heights.currentHeight = 40;
    expect((await inputs.meterInputs(SESSION)).shared).toEqual(END_WINDOWS);
  });

  it('an unknown CUPR is 0 (the meter counts it as 1)', async () => {
    const c = chain();
    c.cupr.clear();
    const { inputs } = build(c);
    expect(await inputs.meterInputs(SESSION)).toEqual({ ...EXPECTED_ACTIVE, compute_units_per_relay: 0n });
  });

  it('an application without stake has a zero stake', async () => {
    const c = chain();
    c.apps.set(APP, app(undefined));
    const { inputs } = build(c);
    expect(await inputs.meterInputs(SESSION)).toEqual({ ...EXPECTED_ACTIVE, app_stake_upokt: 0n });
  });
});

describe('CacheMeterInputs: failures are errors for the meter', () => {
  it('a missing application', async () => {
    const c = chain();
    c.apps.clear();
    const { inputs } = build(c);
    const err = await inputs.meterInputs(SESSION).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeterInputUnavailableError);
    expect(err).toMatchObject({
      code: 'METER_INPUT_UNAVAILABLE',
      message: 'relay meter input application pokt1app: not found on chain',
    });
  });

  it('no shared params at the start height', async () => {
    const c = chain();
    c.sharedAt.clear();
    const err = await build(c)
      .inputs.meterInputs(SESSION)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'METER_INPUT_UNAVAILABLE',
      message: 'relay meter input shared params at height 21: not found on chain',
    });
  });

  it.each([
    ['a non-numeric amount', app('12abc'), 'amount "12abc" is not a non-negative integer'],
    ['a negative amount', app('-5'), 'amount "-5" is not a non-negative integer'],
    ['another denomination', app('5', 'uatom'), 'denomination "uatom" is not upokt'],
  ])('an application stake with %s', async (_name, a, why) => {
    const c = chain();
    c.apps.set(APP, a);
    const err = await build(c)
      .inputs.meterInputs(SESSION)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'METER_INPUT_UNAVAILABLE',
      message: `relay meter input application ${APP} stake: ${why}`,
    });
  });

  it.each(['application', 'cupr', 'shared_params', 'shared_params_at_height', 'session_params'])(
    'the chain down for %s (and nothing in Redis) propagates the cache error',
    async (what) => {
      const c = chain();
      c.down.add(what);
      const err = await build(c)
        .inputs.meterInputs(SESSION)
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'CACHE_UNAVAILABLE' });
    },
  );

  it('a Redis failure reading the service factor', async () => {
    const dead = new Redis({
      host: '127.0.0.1',
      port: 1,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    cleanups.push(() => dead.disconnect());
    const err = await build(chain(), { redis: dead })
      .inputs.meterInputs(SESSION)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(MeterInputUnavailableError);
  });
});

describe('CacheMeterInputs: service factor', () => {
  it('uses the service key over the default key', async () => {
    await setFactor('service', '{"factor":0.25,"updated_at":1763900000}');
    await setFactor('default', '{"factor":0.75,"updated_at":1763900000}');
    const { inputs, metrics } = build(chain());
    expect(await inputs.meterInputs(SESSION)).toEqual({ ...EXPECTED_ACTIVE, service_factor: 0.25 });
    expect(await invalidCounts(metrics)).toEqual([]);
  });

  it('falls back to the default key', async () => {
    await setFactor('default', '{"factor":0.75,"updated_at":1763900000}');
    expect(await build(chain()).inputs.meterInputs(SESSION)).toEqual({
      ...EXPECTED_ACTIVE,
      service_factor: 0.75,
    });
  });

  it('accepts a factor of 0 and a factor without updated_at', async () => {
    await setFactor('service', '{"factor":0}');
    expect(await build(chain()).inputs.meterInputs(SESSION)).toEqual({
      ...EXPECTED_ACTIVE,
      service_factor: 0,
    });
  });

  it('ignores a malformed service entry with a warning and a count, then reads the default', async () => {
    await setFactor('service', '{"factor":');
    await setFactor('default', '{"factor":2,"updated_at":1}');
    const { inputs, metrics, warnings } = build(chain());
    expect(await inputs.meterInputs(SESSION)).toEqual({ ...EXPECTED_ACTIVE, service_factor: 2 });
    expect(await invalidCounts(metrics)).toEqual([{ labels: { scope: 'service' }, value: 1 }]);
    expect(warnings.map((w) => ({ level: w['level'], key: w['key'], reason: w['reason'] }))).toEqual([
      { level: 40, key: r.keys().serviceFactorServiceKey('anvil'), reason: 'not JSON' },
    ]);
  });

  it('ignores both keys when both are malformed: no factor', async () => {
    await setFactor('service', '[0.5]');
    await setFactor('default', '{"factor":"0.5"}');
    const { inputs, metrics, warnings } = build(chain());
    expect(await inputs.meterInputs(SESSION)).toEqual(EXPECTED_ACTIVE);
    expect(await invalidCounts(metrics)).toEqual([
      { labels: { scope: 'service' }, value: 1 },
      { labels: { scope: 'default' }, value: 1 },
    ]);
    expect(warnings).toHaveLength(2);
  });

  it('reuses a factor for its TTL, then reads Redis again', async () => {
    await setFactor('service', '{"factor":0.5,"updated_at":1}');
    const { inputs, clock } = build(chain(), { factorTtlMs: 5_000 });
    expect((await inputs.meterInputs(SESSION)).service_factor).toBe(0.5);
    await setFactor('service', '{"factor":0.9,"updated_at":2}');
    clock.t += 4_999;
    expect((await inputs.meterInputs(SESSION)).service_factor).toBe(0.5);
    clock.t += 1;
    expect((await inputs.meterInputs(SESSION)).service_factor).toBe(0.9);
  });

  it.each([
    ['{"factor":1.5,"updated_at":1}', { ok: true, factor: 1.5 }],
    ['{"factor":0}', { ok: true, factor: 0 }],
    ['', { ok: false, reason: 'not JSON' }],
    ['{"factor":', { ok: false, reason: 'not JSON' }],
    ['null', { ok: false, reason: 'not a JSON object' }],
    ['1.5', { ok: false, reason: 'not a JSON object' }],
    ['[1.5]', { ok: false, reason: 'not a JSON object' }],
    ['{}', { ok: false, reason: 'factor is not a non-negative number' }],
    ['{"factor":"1.5"}', { ok: false, reason: 'factor is not a non-negative number' }],
    ['{"factor":-0.1}', { ok: false, reason: 'factor is not a non-negative number' }],
    ['{"factor":null}', { ok: false, reason: 'factor is not a non-negative number' }],
    ['{"factor":1e400}', { ok: false, reason: 'factor is not a non-negative number' }],
  ])('parseServiceFactor(%j)', (raw, expected) => {
    expect(parseServiceFactor(raw)).toEqual(expected);
  });
});

describe('CacheMeterInputs feeding the RelayMeter', () => {
  it('budget and cost come out of the resolved inputs', async () => {
    const { inputs } = build(chain(), { height: 25 });
    const meter = new RelayMeter(
      {
        redis: r.client,
        keys: r.keys(),
        inputs,
        log: silent,
        metrics: new RelayerMetrics(new Registry()),
        nowMs: () => 1_700_000_000_000,
      },
      { enabled: true, fail_behavior: 'closed', ttl_seconds: 600 },
    );
    // cost = 5 × 42 000 000 / 1 000 000 = 210; blocks to close 3+8+2+9 = 22, 20 per session →
    // 2 + 1 = 3 pending sessions; budget = 90 000 000 / 3 suppliers / 3 = 10 000 000.
    expect(await meter.consume(SESSION)).toEqual({
      ok: true,
      code: 'METER_ALLOWED',
      cost: 210n,
      consumed: 210n,
      max: 10_000_000n,
    });
  });

  it('a missing application becomes the meter error (fail closed refuses)', async () => {
    const c = chain();
    c.apps.clear();
    const meter = new RelayMeter(
      {
        redis: r.client,
        keys: r.keys(),
        inputs: build(c).inputs,
        log: silent,
        metrics: new RelayerMetrics(new Registry()),
      },
      { enabled: true, fail_behavior: 'closed', ttl_seconds: 600 },
    );
    const d = await meter.consume(SESSION);
    expect(d).toMatchObject({ ok: false, code: 'METER_ERROR' });
    expect(d.code === 'METER_ERROR' && d.error).toBeInstanceOf(MeterInputUnavailableError);
  });
});
