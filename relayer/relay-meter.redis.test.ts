import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PubSub } from '../transport/index.js';
import { redisUrl, useRedis } from '../test/helpers/redis.js';
import { RelayerMetrics } from './metrics.js';
import { RelayMeter, type MeterInputs, type MeterSession, type RelayMeterConfig } from './relay-meter.js';

const r = useRedis();
const log = pino({ level: 'silent' });

const SESSION: MeterSession = {
  session_id: 'sessA',
  supplier: 'pokt1supplier',
  app_address: 'pokt1app',
  service_id: 'eth',
  session_start_height: 11,
  session_end_height: 20,
};

/** Budget 1000 uPOKT (stake 4000 / 2 suppliers / 2 pending sessions), cost 300 per relay. */
function inputs(over: Partial<MeterInputs> = {}): MeterInputs {
  return {
    app_stake_upokt: 4_000n,
    compute_units_per_relay: 3n,
    compute_units_to_tokens_multiplier: 100n,
    compute_unit_cost_granularity: 1n,
    num_suppliers_per_session: 2,
    shared: {
      num_blocks_per_session: 10,
      claim_window_open_offset_blocks: 1,
      claim_window_close_offset_blocks: 4,
      proof_window_open_offset_blocks: 0,
      proof_window_close_offset_blocks: 4,
    },
    ...over,
  };
}

const CFG: RelayMeterConfig = { enabled: true, fail_behavior: 'open', ttl_seconds: 7200 };

function build(
  opts: { redis?: Redis; cfg?: Partial<RelayMeterConfig>; src?: () => Promise<MeterInputs> } = {},
) {
  const registry = new Registry();
  const metrics = new RelayerMetrics(registry);
  const meter = new RelayMeter(
    {
      redis: opts.redis ?? r.client,
      keys: r.keys(),
      inputs: { meterInputs: opts.src ?? (() => Promise.resolve(inputs())) },
      log,
      metrics,
      nowMs: () => 1_700_000_000_000,
    },
    { ...CFG, ...opts.cfg },
  );
  return { meter, registry };
}

async function decisions(registry: Registry): Promise<Record<string, number>> {
  const m = await registry.getSingleMetric('ha_relayer_relay_meter_decisions_total')!.get();
  return Object.fromEntries(m.values.map((v) => [String(v.labels['result']), v.value]));
}

describe('RelayMeter', () => {
  it('consumes until the budget is spent, then refuses; writes upstream meta JSON', async () => {
    const { meter, registry } = build();
    expect(await meter.consume(SESSION)).toEqual({
      ok: true,
      code: 'METER_ALLOWED',
      cost: 300n,
      consumed: 300n,
      max: 1000n,
    });
    expect(await meter.consume(SESSION)).toEqual({
      ok: true,
      code: 'METER_ALLOWED',
      cost: 300n,
      consumed: 600n,
      max: 1000n,
    });
    expect(await meter.consume(SESSION)).toEqual({
      ok: true,
      code: 'METER_ALLOWED',
      cost: 300n,
      consumed: 900n,
      max: 1000n,
    });
    expect(await meter.consume(SESSION)).toEqual({
      ok: false,
      code: 'METER_EXHAUSTED',
      cost: 300n,
      consumed: 900n,
      max: 1000n,
    });
    expect(JSON.parse((await r.client.get(r.keys().meterMeta('sessA', 'pokt1supplier')))!)).toEqual({
      session_id: 'sessA',
      app_address: 'pokt1app',
      service_id: 'eth',
      supplier_address: 'pokt1supplier',
      session_end_height: 20,
      max_stake_upokt: 1000,
      created_at: 1_700_000_000,
      created_with_factor: 0,
      created_with_app_stake: 4000,
    });
    expect(await decisions(registry)).toEqual({ allowed: 3, exhausted: 1 });
    expect(await meter.refreshActiveSessions()).toBe(1);
  });

  it('two replicas share one budget', async () => {
    const a = build().meter;
    const b = build().meter;
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).consume(SESSION)));
    expect(results.filter((d) => d.ok).length).toBe(3);
  });

  it('recomputes the stored budget when the app stake changes', async () => {
    let stake = 4_000n;
    const { meter } = build({ src: () => Promise.resolve(inputs({ app_stake_upokt: stake })) });
    await meter.consume(SESSION);
    await meter.consume(SESSION);
    await meter.consume(SESSION);
    stake = 8_000n;
    expect(await meter.consume(SESSION)).toEqual({
      ok: true,
      code: 'METER_ALLOWED',
      cost: 300n,
      consumed: 1200n,
      max: 2000n,
    });
  });

  it('revert gives a cost back; cleanup deletes keys and member; bad payloads are ignored', async () => {
    const { meter } = build();
    await meter.consume(SESSION);
    expect(await meter.revert(SESSION, 300n)).toEqual({ reverted: true, consumed: 0n });
    expect(await meter.cleanup('no-bar')).toBe(false);
    expect(await meter.cleanup('sessA|pokt1supplier')).toBe(true);
    const k = r.keys();
    expect(
      await r.client.exists(k.meterMeta('sessA', 'pokt1supplier'), k.meterConsumed('sessA', 'pokt1supplier')),
    ).toBe(0);
    expect(await r.client.scard(k.meterActiveSessions())).toBe(0);
    expect(await meter.revert(SESSION, 300n)).toEqual({ reverted: false, consumed: 0n });
    expect(meter.cleanupChannel()).toBe(`${r.prefix}ha:meter:cleanup`);
  });

  it('a cleanup message on the pub/sub channel deletes the session’s meter keys', async () => {
    const { meter } = build();
    await meter.consume(SESSION);
    const subscriber = new Redis(redisUrl());
    const bus = new PubSub({ publisher: r.client, subscriber, log });
    try {
      const unsubscribe = await meter.subscribeCleanup(bus);
      expect(await r.client.publish(meter.cleanupChannel(), 'sessA|pokt1supplier')).toBe(1);
      const k = r.keys();
      for (let i = 0; i < 100 && (await r.client.exists(k.meterMeta('sessA', 'pokt1supplier'))) === 1; i++) {
        await new Promise((res) => setTimeout(res, 10));
      }
      expect(
        await r.client.exists(
          k.meterMeta('sessA', 'pokt1supplier'),
          k.meterConsumed('sessA', 'pokt1supplier'),
        ),
      ).toBe(0);
      await unsubscribe();
    } finally {
      await bus.close();
    }
  });

  it('disabled: always allowed, Redis untouched', async () => {
    const { meter } = build({ cfg: { enabled: false } });
    expect(await meter.consume(SESSION)).toEqual({ ok: true, code: 'METER_DISABLED' });
    expect(await r.client.exists(r.keys().meterActiveSessions())).toBe(0);
  });

  describe('when Redis fails', () => {
    let dead: Redis;
    beforeAll(() => {
      // A port nobody listens on; no offline queue so commands fail at once.
      dead = new Redis({
        host: '127.0.0.1',
        port: 1,
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      dead.on('error', () => undefined);
    });
    afterAll(() => dead.disconnect());

    it('fail open allows, fail closed refuses, both as METER_ERROR values with a counted metric', async () => {
      const open = build({ redis: dead });
      const d1 = await open.meter.consume(SESSION);
      expect({ ok: d1.ok, code: d1.code }).toEqual({ ok: true, code: 'METER_ERROR' });
      const closed = build({ redis: dead, cfg: { fail_behavior: 'closed' } });
      const d2 = await closed.meter.consume(SESSION);
      expect({ ok: d2.ok, code: d2.code }).toEqual({ ok: false, code: 'METER_ERROR' });
      // WebSocket/gRPC override: always open.
      const d3 = await closed.meter.consume(SESSION, { failBehavior: 'open' });
      expect({ ok: d3.ok, code: d3.code }).toEqual({ ok: true, code: 'METER_ERROR' });
      expect(await decisions(open.registry)).toEqual({ error_open: 1 });
      expect(await decisions(closed.registry)).toEqual({ error_closed: 1, error_open: 1 });
      const errs = await closed.registry.getSingleMetric('ha_relayer_relay_meter_redis_errors_total')!.get();
      expect(errs.values.map((v) => [v.labels['operation'], v.value])).toEqual([['consume', 2]]);
    });

    it('a parameter failure (granularity 0) follows fail_behavior too', async () => {
      const { meter, registry } = build({
        cfg: { fail_behavior: 'closed' },
        src: () => Promise.resolve(inputs({ compute_unit_cost_granularity: 0n })),
      });
      const d = await meter.consume(SESSION);
      expect(d.ok).toBe(false);
      expect(d.code === 'METER_ERROR' && (d.error as { code?: string }).code).toBe('METER_PARAMS_INVALID');
      const errs = await registry.getSingleMetric('ha_relayer_relay_meter_redis_errors_total')!.get();
      expect(errs.values.map((v) => [v.labels['operation'], v.value])).toEqual([['inputs', 1]]);
    });
  });
});
