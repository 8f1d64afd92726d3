import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  checkRedisVersion,
  createRedisClient,
  deleteKeysWithPrefix,
  isVersionAtLeast,
  parseRedisVersion,
} from './index.js';

const redisUrl = (): string => process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

describe('redis client', () => {
  it('connects and reports a server of at least 7.0', async () => {
    const redis = await createRedisClient({ url: redisUrl(), connection_name: 'redis-client-test' });
    try {
      const version = await checkRedisVersion(redis);
      expect(isVersionAtLeast(version.split('.').map(Number), [7, 0, 0])).toBe(true);
      expect(await redis.client('GETNAME')).toBe('redis-client-test');
    } finally {
      await redis.quit();
    }
  });

  it('fails with a retryable REDIS_UNAVAILABLE when nothing listens', async () => {
    await expect(
      createRedisClient({ url: 'redis://user:secret@127.0.0.1:1', connect_timeout_ms: 500 }),
    ).rejects.toMatchObject({
      code: 'REDIS_UNAVAILABLE',
      retryable: true,
      message: expect.not.stringContaining('secret'),
    });
  });

  it('refuses servers older than 7.0 with REDIS_VERSION_UNSUPPORTED', async () => {
    const old = { info: () => Promise.resolve('# Server\r\nredis_version:6.2.14\r\n') } as unknown as Redis;
    await expect(checkRedisVersion(old)).rejects.toMatchObject({ code: 'REDIS_VERSION_UNSUPPORTED' });
  });

  it('deletes exactly the keys under a prefix', async () => {
    const redis = await createRedisClient({ url: redisUrl() });
    const prefix = `t:${Date.now().toString(36)}${Math.random().toString(36).slice(2)}:`;
    try {
      await redis.mset(`${prefix}a`, '1', `${prefix}b:c`, '2', `${prefix.slice(0, -1)}X`, '3');
      expect(await deleteKeysWithPrefix(redis, prefix)).toBe(2);
      expect(await redis.exists(`${prefix}a`, `${prefix}b:c`, `${prefix.slice(0, -1)}X`)).toBe(1);
    } finally {
      await redis.del(`${prefix.slice(0, -1)}X`);
      await redis.quit();
    }
  });

  it('parses and compares versions', () => {
    expect(parseRedisVersion('redis_version:7.0.15\r\nredis_git_sha1:0')).toEqual([7, 0, 15]);
    expect(parseRedisVersion('x\nredis_version:8.2\n')).toEqual([8, 2, 0]);
    expect(isVersionAtLeast([7, 0, 0], [7, 0, 0])).toBe(true);
    expect(isVersionAtLeast([6, 9, 9], [7, 0, 0])).toBe(false);
    expect(isVersionAtLeast([10, 0, 0], [7, 0, 0])).toBe(true);
    expect(() => parseRedisVersion('no version')).toThrow(
      expect.objectContaining({ code: 'REDIS_VERSION_UNSUPPORTED' }),
    );
  });
});
