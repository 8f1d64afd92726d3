/**
 * Shared plumbing of the `redis` debug subcommands: global flags → Redis URL and key builders,
 * the connection, SCAN, fixed-width tables and JSON output.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { InvalidInputError, RelayMinerError, bytesToHex } from '../../core/index.js';
import { parseYaml } from '../../core/config/index.js';
import { KeyBuilder, createRedisClient, type RedisNamespaceConfig } from '../../transport/index.js';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** Flags of `pocket-relay-miner redis` shared by every subcommand. */
export interface RedisGlobalOptions {
  url?: string;
  redis?: string;
  config?: string;
  json?: boolean;
  basePrefix?: string;
  cachePrefix?: string;
  eventsPrefix?: string;
  streamsPrefix?: string;
  minerPrefix?: string;
  supplierPrefix?: string;
  meterPrefix?: string;
  paramsPrefix?: string;
  consumerGroupPrefix?: string;
  meterKeyPrefix?: string;
  clusterHashTags?: boolean;
  leaderTtl?: string;
}

/** Where to connect and how keys are named, after flags and an optional config file. */
export interface RedisTarget {
  url: string;
  namespace: RedisNamespaceConfig;
  /** relay_meter.redis_key_prefix: base prefix of the relay meter keys. */
  meterKeyPrefix?: string;
  clusterHashTags: boolean;
  /** leader_election.leader_ttl_seconds of a miner config. */
  leaderTtlSeconds?: number;
}

/** A flag or config value the CLI cannot use. */
export class RedisCliUsageError extends RelayMinerError {
  constructor(message: string) {
    super('REDIS_CLI_USAGE', message);
  }
}

function record(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** redis.url, redis.namespace and relay_meter.redis_key_prefix of a relayer or miner YAML. */
export function targetFromConfigText(text: string, source: string): RedisTarget {
  const { value, issues } = parseYaml(text);
  if (issues.length > 0)
    throw new RedisCliUsageError(`${source}: ${issues.map((i) => i.message).join('; ')}`);
  const redis = record(record(value)['redis']);
  const namespace: RedisNamespaceConfig = {};
  for (const [k, v] of Object.entries(record(redis['namespace']))) {
    if (typeof v === 'string') (namespace as Record<string, string>)[k] = v;
  }
  const meter = record(record(value)['relay_meter'])['redis_key_prefix'];
  const url = typeof redis['url'] === 'string' && redis['url'] !== '' ? redis['url'] : DEFAULT_REDIS_URL;
  const leaderTtl = record(record(value)['leader_election'])['leader_ttl_seconds'];
  return {
    url,
    namespace,
    ...(typeof meter === 'string' && meter !== '' ? { meterKeyPrefix: meter } : {}),
    clusterHashTags: redis['cluster_hash_tags'] === true,
    ...(typeof leaderTtl === 'number' && leaderTtl > 0 ? { leaderTtlSeconds: leaderTtl } : {}),
  };
}

const NAMESPACE_FLAGS: [keyof RedisGlobalOptions, keyof RedisNamespaceConfig][] = [
  ['basePrefix', 'base_prefix'],
  ['cachePrefix', 'cache_prefix'],
  ['eventsPrefix', 'events_prefix'],
  ['streamsPrefix', 'streams_prefix'],
  ['minerPrefix', 'miner_prefix'],
  ['supplierPrefix', 'supplier_prefix'],
  ['meterPrefix', 'meter_prefix'],
  ['paramsPrefix', 'params_prefix'],
  ['consumerGroupPrefix', 'consumer_group_prefix'],
];

/** Flags win over the config file, which wins over the defaults. */
export function resolveTarget(o: RedisGlobalOptions): RedisTarget {
  const base: RedisTarget =
    o.config !== undefined
      ? targetFromConfigText(readFileSync(o.config, 'utf8'), o.config)
      : { url: DEFAULT_REDIS_URL, namespace: {}, clusterHashTags: false };
  const namespace = { ...base.namespace };
  for (const [flag, field] of NAMESPACE_FLAGS) {
    const v = o[flag];
    if (typeof v === 'string' && v !== '') namespace[field] = v;
  }
  const url = o.url ?? o.redis ?? base.url;
  const meterKeyPrefix = o.meterKeyPrefix ?? base.meterKeyPrefix;
  const leaderTtlSeconds =
    o.leaderTtl !== undefined ? intFlag('leader-ttl', o.leaderTtl, 0, false) : base.leaderTtlSeconds;
  return {
    url,
    namespace,
    ...(meterKeyPrefix !== undefined ? { meterKeyPrefix } : {}),
    ...(leaderTtlSeconds !== undefined ? { leaderTtlSeconds } : {}),
    clusterHashTags: o.clusterHashTags === true || base.clusterHashTags,
  };
}

/** What every subcommand's data function gets. */
export interface RedisCli {
  redis: Redis;
  keys: KeyBuilder;
  /** Builder of the relay meter keys (base prefix = relay_meter.redis_key_prefix). */
  meterKeys: KeyBuilder;
  /** A fresh connection for SUBSCRIBE. */
  duplicate(): Redis;
}

export function keyBuilders(t: RedisTarget): { keys: KeyBuilder; meterKeys: KeyBuilder } {
  const keys = new KeyBuilder({ namespace: t.namespace, cluster_hash_tags: t.clusterHashTags });
  const meterKeys = new KeyBuilder({
    namespace: {
      ...t.namespace,
      base_prefix: t.meterKeyPrefix ?? keys.namespace.base_prefix,
    },
    cluster_hash_tags: t.clusterHashTags,
  });
  return { keys, meterKeys };
}

/** A CLI context over an existing connection (tests, embedding). */
export function cliOver(redis: Redis, t: Omit<RedisTarget, 'url'>): RedisCli {
  return {
    redis,
    ...keyBuilders({ ...t, url: '' }),
    duplicate: () => redis.duplicate(),
  };
}

export async function connect(t: RedisTarget): Promise<{ cli: RedisCli; close(): Promise<void> }> {
  const redis = await createRedisClient({ url: t.url, connection_name: 'pocket-relay-miner-redis-cli' });
  redis.on('error', () => undefined);
  const extra: Redis[] = [];
  const cli: RedisCli = {
    redis,
    ...keyBuilders(t),
    duplicate: () => {
      const d = redis.duplicate();
      d.on('error', () => undefined);
      extra.push(d);
      return d;
    },
  };
  return {
    cli,
    close: async () => {
      for (const d of extra) d.disconnect();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** Every key matching `pattern` (SCAN, never KEYS), at most `limit` when given. */
export async function scanKeys(redis: Redis, pattern: string, limit?: number): Promise<string[]> {
  const out = new Set<string>();
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    for (const k of found) {
      out.add(k);
      if (limit !== undefined && limit > 0 && out.size >= limit) return [...out].sort();
    }
  } while (cursor !== '0');
  return [...out].sort();
}

/** Parses a positive integer flag (`0` allowed when `allowZero`). */
export function intFlag(
  name: string,
  v: string | number | undefined,
  dflt: number,
  allowZero = true,
): number {
  if (v === undefined) return dflt;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isSafeInteger(n) || n < 0 || (!allowZero && n === 0)) {
    throw new RedisCliUsageError(
      `--${name}: expected a ${allowZero ? 'non-negative' : 'positive'} integer, got ${v}`,
    );
  }
  return n;
}

export function requireFlag(name: string, v: string | undefined): string {
  if (v === undefined || v === '') throw new RedisCliUsageError(`--${name} is required`);
  return v;
}

/** Fixed-width text table; every cell is stringified, columns padded to their widest cell. */
export function formatTable(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = rows.map((r) => headers.map((_, i) => cellText(r[i])));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: readonly string[]): string =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n';
}

function cellText(v: unknown): string {
  if (v === undefined || v === null) return '-';
  if (v instanceof Uint8Array) return bytesToHex(v);
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
    case 'bigint':
    case 'boolean':
      return v.toString();
    default:
      return JSON.stringify(v) ?? '-';
  }
}

/** JSON with bigint as decimal strings and bytes as hex. */
export function toJson(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x: unknown) => {
      if (typeof x === 'bigint') return x.toString();
      if (x instanceof Uint8Array) return bytesToHex(x);
      if (
        typeof x === 'object' &&
        x !== null &&
        (x as { type?: unknown }).type === 'Buffer' &&
        Array.isArray((x as { data?: unknown }).data)
      ) {
        return bytesToHex(Uint8Array.from((x as { data: number[] }).data));
      }
      return x;
    },
    2,
  );
}

/** Text of a stored value: UTF-8 when printable, else `0x` + hex. */
export function printable(b: Buffer, maxChars: number): string {
  const s = b.toString('utf8');
  // eslint-disable-next-line no-control-regex
  if (!/[\u0000-\u0008\u000e-\u001f\ufffd]/.test(s))
    return s.length > maxChars ? `${s.slice(0, maxChars)}…` : s;
  const h = b.toString('hex');
  return `0x${h.length > maxChars ? `${h.slice(0, maxChars)}…` : h}`;
}

/** TTL text: seconds, `none` (-1) or `missing` (-2). */
export function ttlText(ttl: number): string {
  if (ttl === -1) return 'none';
  if (ttl === -2) return 'missing';
  return `${ttl}s`;
}

export function checkId(what: string, v: string): string {
  if (v === '' || /[\s*?[\]{}]/.test(v))
    throw new InvalidInputError(what, 'must be non-empty, without spaces, braces or glob characters');
  return v;
}

/** Output sink of the printers (stdout in the CLI, an array in tests). */
export type Out = (text: string) => void;
