/**
 * Real Redis for tests. `useRedis()` connects once per test file (REDIS_URL or
 * redis://127.0.0.1:6379), gives every test a fresh key prefix `t:<random>:` and deletes every key
 * under that prefix after the test (SCAN + UNLINK).
 *
 *   const r = useRedis();
 *   it('…', async () => { const store = new SmstRedisStore(r.deps(), cfg); … });
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import {
  KeyBuilder,
  createRedisClient,
  deleteKeysWithPrefix,
  type KeyBuilderOptions,
} from '../../transport/index.js';

export { deleteKeysWithPrefix };

export function redisUrl(): string {
  return process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
}

export interface RedisTestContext {
  /** The connection of this test file. */
  readonly client: Redis;
  /** This test's key prefix, e.g. `t:3f9a0c12d4e5:`. */
  readonly prefix: string;
  /** A key builder whose base prefix lives under this test's prefix (`t:…:ha`). */
  keys(opts?: KeyBuilderOptions): KeyBuilder;
  /** `{ redis, keys }` for constructors that take Redis deps. */
  deps(opts?: KeyBuilderOptions): { redis: Redis; keys: KeyBuilder };
}

export function useRedis(): RedisTestContext {
  let client: Redis | undefined;
  let prefix = '';

  beforeAll(async () => {
    client = await createRedisClient({ url: redisUrl(), connection_name: 'vitest' });
  });
  beforeEach(() => {
    prefix = `t:${randomBytes(6).toString('hex')}:`;
  });
  afterEach(async () => {
    if (client !== undefined) await deleteKeysWithPrefix(client, prefix);
  });
  afterAll(async () => {
    await client?.quit();
    client = undefined;
  });

  const ctx: RedisTestContext = {
    get client(): Redis {
      if (client === undefined) throw new Error('useRedis(): the client exists only inside tests and hooks');
      return client;
    },
    get prefix(): string {
      return prefix;
    },
    keys(opts: KeyBuilderOptions = {}): KeyBuilder {
      const base = opts.namespace?.base_prefix ?? 'ha';
      return new KeyBuilder({ ...opts, namespace: { ...opts.namespace, base_prefix: `${prefix}${base}` } });
    },
    deps(opts?: KeyBuilderOptions): { redis: Redis; keys: KeyBuilder } {
      return { redis: ctx.client, keys: ctx.keys(opts) };
    },
  };
  return ctx;
}
