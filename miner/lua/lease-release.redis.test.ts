import { describe, expect, it } from 'vitest';
import { useRedis } from '../../test/helpers/redis.js';
import { LEASE_RELEASE } from './scripts.js';

const r = useRedis();

function key(): string {
  return r.keys().minerClaim('pokt1supplier');
}

describe('lease-release.lua', () => {
  it('deletes a lease the caller holds', async () => {
    await r.client.set(key(), 'inst-a', 'PX', 5_000);
    expect(await LEASE_RELEASE.run(r.client, [key()], ['inst-a'])).toBe(1);
    expect(await r.client.exists(key())).toBe(0);
  });

  it('never deletes another holder’s lease', async () => {
    await r.client.set(key(), 'inst-b', 'PX', 5_000);
    expect(await LEASE_RELEASE.run(r.client, [key()], ['inst-a'])).toBe(0);
    expect(await r.client.get(key())).toBe('inst-b');
  });

  it('reports 0 for a missing (expired) lease', async () => {
    expect(await LEASE_RELEASE.run(r.client, [key()], ['inst-a'])).toBe(0);
  });

  it('refuses an empty holder id with -2', async () => {
    await r.client.set(key(), '', 'PX', 5_000);
    expect(await LEASE_RELEASE.run(r.client, [key()], [''])).toBe(-2);
    expect(await r.client.exists(key())).toBe(1);
  });
});
