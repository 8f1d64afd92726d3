import { describe, expect, it } from 'vitest';
import { loadScriptFile } from '../../transport/index.js';
import { useRedis } from '../../test/helpers/redis.js';

const r = useRedis();
const releaseLock = loadScriptFile<number>(new URL('./release-lock.lua', import.meta.url), 1);

describe('release-lock.lua', () => {
  it('deletes the lock only for its owner', async () => {
    const key = r.keys().applicationLockKey('pokt1app');
    expect(await releaseLock.run(r.client, [key], ['owner'])).toBe(0); // missing key
    await r.client.set(key, 'owner', 'PX', 5_000);
    expect(await releaseLock.run(r.client, [key], ['other'])).toBe(0); // wrong owner
    expect(await r.client.get(key)).toBe('owner');
    expect(await releaseLock.run(r.client, [key], ['owner'])).toBe(1);
    expect(await r.client.exists(key)).toBe(0);
  });

  it('does nothing once the lock expired', async () => {
    const key = r.keys().applicationLockKey('pokt1app');
    await r.client.set(key, 'owner', 'PX', 1);
    await expect.poll(() => r.client.exists(key)).toBe(0);
    expect(await releaseLock.run(r.client, [key], ['owner'])).toBe(0);
  });
});
