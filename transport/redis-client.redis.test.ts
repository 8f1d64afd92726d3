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

describe('parseSentinelUrl', () => {
  it('reads sentinels, master name, password and db', async () => {
    const { parseSentinelUrl } = await import('./index.js');
    expect(parseSentinelUrl('redis-sentinel://:s%40cret@h1:26379,h2:26380/mymaster?db=2')).toEqual({
      sentinels: [
        { host: 'h1', port: 26379 },
        { host: 'h2', port: 26380 },
      ],
      name: 'mymaster',
      password: 's@cret',
      db: 2,
    });
    expect(parseSentinelUrl('redis-sentinel://h1/m')).toEqual({
      sentinels: [{ host: 'h1', port: 26379 }],
      name: 'm',
      db: 0,
    });
  });
  it('refuses malformed URLs with the expected form', async () => {
    const { parseSentinelUrl } = await import('./index.js');
    expect(() => parseSentinelUrl('redis-sentinel://h1:26379')).toThrow(
      /redis-sentinel:\/\/\[:password@\]host1/,
    );
    expect(() => parseSentinelUrl('redis-sentinel://h1:0/m')).toThrow(
      'sentinel address "h1:0" is not host:port',
    );
    expect(() => parseSentinelUrl('redis-sentinel://h1/m?db=-1')).toThrow(
      'db must be a non-negative integer',
    );
  });
  it('refuses redis-cluster:// with a clear message', async () => {
    await expect(createRedisClient({ url: 'redis-cluster://h1,h2' })).rejects.toThrow(
      'redis-cluster:// is not supported by this build',
    );
  });
});
