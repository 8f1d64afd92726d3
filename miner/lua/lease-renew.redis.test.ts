import { describe, expect, it } from 'vitest';
import { useRedis } from '../../test/helpers/redis.js';
import { LEASE_RENEW } from './scripts.js';

const r = useRedis();

function key(): string {
  return r.keys().minerClaim('pokt1supplier');
}

describe('lease-renew.lua', () => {
  it('extends a lease the caller holds', async () => {
    await r.client.set(key(), 'inst-a', 'PX', 100);
    expect(await LEASE_RENEW.run(r.client, [key()], ['inst-a', 60_000])).toBe(1);
    expect(await r.client.pttl(key())).toBeGreaterThan(59_000);
    expect(await r.client.get(key())).toBe('inst-a');
  });

  it('reports 0 for a missing (expired) lease and does not create it', async () => {
    expect(await LEASE_RENEW.run(r.client, [key()], ['inst-a', 60_000])).toBe(0);
    expect(await r.client.exists(key())).toBe(0);
  });

  it('reports 0 for a lease another holder has and leaves its TTL alone', async () => {
    await r.client.set(key(), 'inst-b', 'PX', 5_000);
    expect(await LEASE_RENEW.run(r.client, [key()], ['inst-a', 60_000])).toBe(0);
    expect(await r.client.get(key())).toBe('inst-b');
    expect(await r.client.pttl(key())).toBeLessThanOrEqual(5_000);
  });

  it('refuses bad arguments with -2 and changes nothing', async () => {
    await r.client.set(key(), 'inst-a', 'PX', 5_000);
    const replies = [];
    for (const args of [
      ['', 1_000],
      ['inst-a', 0],
      ['inst-a', 2.5],
      ['inst-a', 'x'],
    ]) {
      replies.push(await LEASE_RENEW.run(r.client, [key()], args));
    }
    expect(replies).toEqual([-2, -2, -2, -2]);
    expect(await r.client.pttl(key())).toBeLessThanOrEqual(5_000);
  });
});
