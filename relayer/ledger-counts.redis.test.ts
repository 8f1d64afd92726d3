import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';
import { useRedis } from '../test/helpers/redis.js';
import { waitFor } from '../test/helpers/redis-server.js';
import { RelayerLedgerCounts } from './ledger-counts.js';

const r = useRedis();
const SUPPLIER = 'pokt1supplier';
const SESSION = 'a1b2c3d4e5f6';

async function counters(registry: Registry, name: string): Promise<Record<string, number>> {
  const m = await registry.getSingleMetric(name)!.get();
  return Object.fromEntries(m.values.map((v) => [Object.values(v.labels).join(',') || '_', v.value]));
}

describe('RelayerLedgerCounts', () => {
  it('adds each relay to its bucket of the session hash, with the TTL, without ioredis Pipeline objects', async () => {
    const registry = new Registry();
    const ledger = new RelayerLedgerCounts({ ...r.deps(), log: pino({ level: 'silent' }), registry }, 600);
    const key = r.keys().minerLedger(SUPPLIER, SESSION);
    const pipeline = vi.spyOn(r.client, 'pipeline');
    const multi = vi.spyOn(r.client, 'multi');
    try {
      ledger.count(SUPPLIER, SESSION, 'below_difficulty');
      ledger.count(SUPPLIER, SESSION, 'below_difficulty');
      ledger.count(SUPPLIER, SESSION, 'dropped');
      await waitFor(async () => (await r.client.hget(key, 'dropped')) === '1');
      expect(await r.client.hgetall(key)).toEqual({ below_difficulty: '2', dropped: '1' });
      const ttl = await r.client.ttl(key);
      expect(ttl > 590 && ttl <= 600, `ttl ${ttl}`).toBe(true);
      expect([pipeline.mock.calls.length, multi.mock.calls.length]).toEqual([0, 0]);
      expect(await counters(registry, 'ha_relayer_ledger_relays_total')).toEqual({
        below_difficulty: 2,
        dropped: 1,
      });
    } finally {
      pipeline.mockRestore();
      multi.mockRestore();
    }
  });

  it('counts a write Redis refuses (WRONGTYPE) as a write error and never throws', async () => {
    const registry = new Registry();
    const ledger = new RelayerLedgerCounts({ ...r.deps(), log: pino({ level: 'silent' }), registry });
    await r.client.set(r.keys().minerLedger(SUPPLIER, SESSION), 'not a hash');
    expect(() => ledger.count(SUPPLIER, SESSION, 'over_serviced')).not.toThrow();
    await waitFor(async () => (await registry.metrics()).includes('ha_relayer_ledger_write_errors_total{'));
    expect(await counters(registry, 'ha_relayer_ledger_write_errors_total')).toEqual({ over_serviced: 1 });
    expect(await counters(registry, 'ha_relayer_ledger_relays_total')).toEqual({ over_serviced: 1 });
  });
});
