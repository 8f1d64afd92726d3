import { describe, expect, it } from 'vitest';
import { useRedis } from '../../test/helpers/redis.js';
import { LEASE_ACQUIRE } from './scripts.js';

const r = useRedis();

function key(): string {
  return r.keys().minerClaim('pokt1supplier');
}

describe('lease-acquire.lua', () => {
  it('takes a free lease with the TTL in milliseconds', async () => {
    expect(await LEASE_ACQUIRE.run(r.client, [key()], ['inst-a', 800])).toBe(1);
    expect(await r.client.get(key())).toBe('inst-a');
    const pttl = await r.client.pttl(key());
    expect(pttl > 700 && pttl <= 800).toBe(true);
  });

  it('refuses a lease another holder has and leaves it untouched', async () => {
    await r.client.set(key(), 'inst-b', 'PX', 5_000);
    expect(await LEASE_ACQUIRE.run(r.client, [key()], ['inst-a', 60_000])).toBe(0);
    expect(await r.client.get(key())).toBe('inst-b');
    expect(await r.client.pttl(key())).toBeLessThanOrEqual(5_000);
  });

  it('refreshes a lease the caller already holds', async () => {
    await r.client.set(key(), 'inst-a', 'PX', 100);
    expect(await LEASE_ACQUIRE.run(r.client, [key()], ['inst-a', 60_000])).toBe(1);
    expect(await r.client.pttl(key())).toBeGreaterThan(59_000);
  });

  it('takes a lease whose TTL ran out', async () => {
    await r.client.set(key(), 'inst-b', 'PX', 20);
    await new Promise((res) => setTimeout(res, 40));
    expect(await LEASE_ACQUIRE.run(r.client, [key()], ['inst-a', 1_000])).toBe(1);
    expect(await r.client.get(key())).toBe('inst-a');
  });

  it('refuses bad arguments with -2 and writes nothing', async () => {
    const bad: (string | number)[][] = [
      ['', 1_000],
      ['inst-a', 0],
      ['inst-a', -5],
      ['inst-a', 1.5],
      ['inst-a', 'soon'],
    ];
    const replies = [];
    for (const args of bad) replies.push(await LEASE_ACQUIRE.run(r.client, [key()], args));
    expect(replies).toEqual([-2, -2, -2, -2, -2]);
    expect(await r.client.exists(key())).toBe(0);
  });
});
