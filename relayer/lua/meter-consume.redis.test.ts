import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisUrl, useRedis } from '../../test/helpers/redis.js';
import { METER_CONSUME } from './scripts.js';

const r = useRedis();
const SESSION = 'sess1';
const SUPPLIER = 'pokt1supplier';

function keys(): [string, string, string] {
  const k = r.keys();
  return [k.meterMeta(SESSION, SUPPLIER), k.meterConsumed(SESSION, SUPPLIER), k.meterActiveSessions()];
}

function meta(max: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ session_id: SESSION, max_stake_upokt: max, ...extra });
}

async function consume(
  cost: number | string,
  max: number,
  opts: { ttl?: number | string; recompute?: boolean; client?: Redis; metaJson?: string } = {},
): Promise<unknown> {
  return METER_CONSUME.run(opts.client ?? r.client, keys(), [
    String(cost),
    opts.metaJson ?? meta(max),
    opts.ttl ?? 600,
    `${SESSION}|${SUPPLIER}`,
    opts.recompute === true ? '1' : '0',
  ]);
}

describe('meter-consume.lua', () => {
  it('creates meta, counter and active member with the TTL on first use (missing keys)', async () => {
    const [metaKey, consumedKey, activeKey] = keys();
    expect(await consume(3, 10)).toEqual([1, 3, 10]);
    expect(await r.client.get(metaKey)).toBe(meta(10));
    expect(await r.client.get(consumedKey)).toBe('3');
    expect(await r.client.smembers(activeKey)).toEqual([`${SESSION}|${SUPPLIER}`]);
    for (const k of [metaKey, consumedKey, activeKey]) {
      const ttl = await r.client.ttl(k);
      expect(ttl > 590 && ttl <= 600, `${k} ttl ${ttl}`).toBe(true);
    }
  });

  it('allows up to exactly the budget and refuses one unit more without adding it', async () => {
    expect(await consume(4, 10)).toEqual([1, 4, 10]);
    expect(await consume(6, 10)).toEqual([1, 10, 10]);
    expect(await consume(1, 10)).toEqual([-1, 10, 10]);
    expect(await consume(0, 10)).toEqual([1, 10, 10]);
    expect(await r.client.get(keys()[1])).toBe('10');
  });

  it('a refused large relay leaves room for a smaller one', async () => {
    expect(await consume(7, 10)).toEqual([1, 7, 10]);
    expect(await consume(4, 10)).toEqual([-1, 7, 10]);
    expect(await consume(3, 10)).toEqual([1, 10, 10]);
  });

  it('uses the stored budget, not the caller’s, unless asked to recompute (KEEPTTL)', async () => {
    const [metaKey] = keys();
    expect(await consume(5, 10, { ttl: 100 })).toEqual([1, 5, 10]);
    expect(await consume(5, 99)).toEqual([1, 10, 10]);
    expect(await consume(5, 99)).toEqual([-1, 10, 10]);
    expect(await consume(5, 99, { recompute: true })).toEqual([1, 15, 99]);
    expect(await r.client.get(metaKey)).toBe(meta(99));
    const ttl = await r.client.ttl(metaKey);
    expect(ttl > 90 && ttl <= 100).toBe(true);
  });

  it('after the meta expired, recreates it and keeps a surviving counter', async () => {
    const [metaKey, consumedKey] = keys();
    expect(await consume(8, 10)).toEqual([1, 8, 10]);
    await r.client.pexpire(metaKey, 1);
    await new Promise((res) => setTimeout(res, 20));
    expect(await r.client.exists(metaKey)).toBe(0);
    expect(await consume(1, 10)).toEqual([1, 9, 10]);
    expect(await r.client.get(metaKey)).toBe(meta(10));
    expect(await r.client.ttl(consumedKey)).toBeGreaterThan(590);
  });

  it('after the counter expired, counts from zero again and restores its TTL', async () => {
    const [, consumedKey] = keys();
    expect(await consume(10, 10)).toEqual([1, 10, 10]);
    await r.client.del(consumedKey);
    expect(await consume(2, 10)).toEqual([1, 2, 10]);
    expect(await r.client.ttl(consumedKey)).toBeGreaterThan(590);
  });

  it('replaces a corrupt stored meta with the caller’s', async () => {
    const [metaKey] = keys();
    await r.client.set(metaKey, 'not json', 'EX', 50);
    expect(await consume(1, 10)).toEqual([1, 1, 10]);
    expect(await r.client.get(metaKey)).toBe(meta(10));
  });

  it('refuses bad arguments with -2 and touches nothing', async () => {
    expect(await consume(-1, 10)).toEqual([-2, 0, 0]);
    expect(await consume('1.5', 10)).toEqual([-2, 0, 0]);
    expect(await consume('x', 10)).toEqual([-2, 0, 0]);
    expect(await consume(1, 10, { ttl: 0 })).toEqual([-2, 0, 0]);
    expect(await consume(1, 10, { metaJson: '{"max_stake_upokt":"10"}' })).toEqual([-2, 0, 0]);
    expect(await consume(1, 10, { metaJson: '[' })).toEqual([-2, 0, 0]);
    expect(await r.client.exists(...keys())).toBe(0);
  });

  describe('two clients consuming concurrently', () => {
    let a: Redis;
    let b: Redis;
    beforeAll(() => {
      a = new Redis(redisUrl());
      b = new Redis(redisUrl());
    });
    afterAll(async () => {
      await Promise.all([a.quit(), b.quit()]);
    });

    it('never over-spend: exactly floor(budget / cost) relays are allowed', async () => {
      const budget = 1_000;
      const cost = 7;
      const calls = Array.from({ length: 400 }, (_, i) =>
        consume(cost, budget, { client: i % 2 === 0 ? a : b }),
      );
      const replies = (await Promise.all(calls)) as [number, number, number][];
      const allowed = replies.filter((x) => x[0] === 1).length;
      const refused = replies.filter((x) => x[0] === -1).length;
      expect({ allowed, refused }).toEqual({
        allowed: Math.floor(budget / cost),
        refused: 400 - Math.floor(budget / cost),
      });
      expect(await r.client.get(keys()[1])).toBe(String(Math.floor(budget / cost) * cost));
    });
  });
});
