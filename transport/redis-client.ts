/**
 * Redis connection factory. Every process connects through here so the server is checked once:
 * the project uses only Redis 7.0 commands and refuses older servers at start-up.
 */
import { Redis } from 'ioredis';
import { InvalidInputError, RelayMinerError } from '../core/index.js';

export const MIN_REDIS_VERSION: readonly [number, number, number] = [7, 0, 0];

export class RedisUnavailableError extends RelayMinerError {
  constructor(url: string, opts: { cause?: unknown } = {}) {
    super(
      'REDIS_UNAVAILABLE',
      `redis at ${redactUrl(url)} did not answer; check redis.url and that the server is up`,
      {
        ...opts,
        retryable: true,
      },
    );
  }
}

export class RedisVersionError extends RelayMinerError {
  constructor(found: string) {
    super(
      'REDIS_VERSION_UNSUPPORTED',
      `redis server ${found} is older than ${MIN_REDIS_VERSION.join('.')}; upgrade the server`,
    );
  }
}

export interface RedisClientConfig {
  /** redis:// or rediss:// URL (user, password and database number in the URL). */
  url: string;
  /** CLIENT SETNAME, shown by CLIENT LIST. */
  connection_name?: string;
  connect_timeout_ms?: number;
}

function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}

/** `redis_version` from INFO server text, as [major, minor, patch]. */
export function parseRedisVersion(info: string): [number, number, number] {
  const m = /^redis_version:(\d+)\.(\d+)(?:\.(\d+))?/m.exec(info);
  if (m === null) throw new RedisVersionError('of unknown version (no redis_version in INFO)');
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

export function isVersionAtLeast(v: readonly number[], min: readonly number[]): boolean {
  for (let i = 0; i < min.length; i++) {
    const a = v[i] ?? 0;
    const b = min[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

/** Throws RedisVersionError unless the server is at least MIN_REDIS_VERSION; returns its version. */
export async function checkRedisVersion(redis: Redis): Promise<string> {
  const v = parseRedisVersion(await redis.info('server'));
  if (!isVersionAtLeast(v, MIN_REDIS_VERSION)) throw new RedisVersionError(v.join('.'));
  return v.join('.');
}

export interface SentinelTarget {
  sentinels: { host: string; port: number }[];
  name: string;
  password?: string;
  db: number;
}

/**
 * `redis-sentinel://[:password@]h1:p1,h2:p2/<master>[?db=N]` → the sentinel list, master name,
 * password and database. Throws InvalidInputError naming what is wrong.
 */
export function parseSentinelUrl(url: string): SentinelTarget {
  const m = /^redis-sentinel:\/\/(?:([^@/]*)@)?([^/?]+)\/([^/?]+)(?:\?(.*))?$/.exec(url);
  if (m === null) {
    throw new InvalidInputError(
      'redis.url',
      'write a sentinel URL as redis-sentinel://[:password@]host1:26379,host2:26379/<master name>[?db=N]',
    );
  }
  const [, auth, hosts, name, query] = m;
  const sentinels = hosts!.split(',').map((h) => {
    const i = h.lastIndexOf(':');
    const port = i === -1 ? 26379 : Number(h.slice(i + 1));
    const host = i === -1 ? h : h.slice(0, i);
    if (host === '' || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new InvalidInputError('redis.url', `sentinel address "${h}" is not host:port`);
    }
    return { host, port };
  });
  const db = Number(new URLSearchParams(query ?? '').get('db') ?? '0');
  if (!Number.isInteger(db) || db < 0)
    throw new InvalidInputError('redis.url', `db must be a non-negative integer`);
  const password = auth === undefined ? undefined : decodeURIComponent(auth.replace(/^[^:]*:/, ''));
  return { sentinels, name: decodeURIComponent(name!), db, ...(password ? { password } : {}) };
}

/** Connects, checks the server version and returns the client (redis://, rediss://, redis-sentinel://). */
export async function createRedisClient(cfg: RedisClientConfig): Promise<Redis> {
  const common = {
    lazyConnect: true,
    connectionName: cfg.connection_name,
    connectTimeout: cfg.connect_timeout_ms ?? 5_000,
    maxRetriesPerRequest: 3,
    // Off: ioredis builds one Pipeline object per auto-pipelined batch, and V8 keeps each one (an
    // object with an accessor property of its own) until the next full collection; on the relay
    // path that promoted several KB per relay to the old generation. Commands issued together are
    // still sent back to back without waiting for replies.
    enableAutoPipelining: false,
  };
  if (cfg.url.startsWith('redis-cluster://')) {
    throw new InvalidInputError(
      'redis.url',
      'redis-cluster:// is not supported by this build; use redis://, rediss:// or redis-sentinel://',
    );
  }
  const redis = cfg.url.startsWith('redis-sentinel://')
    ? new Redis({ ...common, ...parseSentinelUrl(cfg.url) })
    : new Redis(cfg.url, common);
  // ioredis reports connection failures as 'error' events too; during start-up they belong to the
  // failure thrown here. Afterwards the owner of the client attaches its own listener.
  let connectError: unknown;
  const onError = (err: unknown): void => {
    connectError ??= err;
  };
  redis.on('error', onError);
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new RedisUnavailableError(cfg.url, { cause: connectError ?? err });
  } finally {
    redis.off('error', onError);
  }
  try {
    await checkRedisVersion(redis);
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  return redis;
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** Deletes every key that starts with `prefix` (SCAN + UNLINK); returns how many were deleted. */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<number> {
  if (prefix === '') throw new InvalidInputError('key prefix to delete', 'must not be empty');
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${globEscape(prefix)}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}
