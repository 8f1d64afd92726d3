/**
 * Config sections both services share (upstream `config/redis.go`, `config/observability.go`,
 * `logging.Config`). Key names are upstream's so operators' files carry over.
 */
import { z } from 'zod';
import { parseGoDurationMs } from './duration.js';

/** A non-negative whole number (seconds, counts, bytes). */
export const nonNegativeInt = (): z.ZodNumber => z.number().int().nonnegative();

/** A Go duration string such as `2h`, `100ms`. */
export const goDuration = (): z.ZodString =>
  z.string().refine((s) => parseGoDurationMs(s) !== undefined, {
    message: 'not a duration; write it like 2h, 30m, 1h30m or 100ms',
  });

/** `host:port` as a Go net.Listen address (empty host = every interface). */
export const listenAddr = (): z.ZodString =>
  z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]*):\d{1,5}$/, {
    message: 'must be host:port, e.g. 0.0.0.0:8080',
  });

/** `redis.namespace`: each field defaults on its own (setting only base_prefix keeps the rest). */
export const namespaceSection = z
  .strictObject({
    base_prefix: z.string().min(1).default('ha'),
    cache_prefix: z.string().min(1).default('cache'),
    events_prefix: z.string().min(1).default('events'),
    streams_prefix: z.string().min(1).default('relays'),
    miner_prefix: z.string().min(1).default('miner'),
    supplier_prefix: z.string().min(1).default('supplier'),
    meter_prefix: z.string().min(1).default('meter'),
    params_prefix: z.string().min(1).default('params'),
    consumer_group_prefix: z.string().min(1).default('miners'),
  })
  .prefault({});

const REDIS_SCHEMES = ['redis:', 'rediss:', 'redis-sentinel:', 'redis-cluster:'];

/** `redis`: connection URL, pool sizing and key namespace. */
export const redisSection = z
  .strictObject({
    url: z
      .string()
      .min(1, { message: 'required; e.g. redis://localhost:6379' })
      .default('redis://localhost:6379')
      .refine((u) => REDIS_SCHEMES.some((s) => u.startsWith(`${s}//`)), {
        message: 'must start with redis://, rediss://, redis-sentinel:// or redis-cluster://',
      }),
    /** 0 → 50 connections (upstream code default). */
    pool_size: nonNegativeInt().default(0),
    min_idle_conns: nonNegativeInt().default(0),
    /** 0 → 4 s. */
    pool_timeout_seconds: nonNegativeInt().default(0),
    /** 0 → 300 s. */
    conn_max_idle_time_seconds: nonNegativeInt().default(0),
    namespace: namespaceSection,
  })
  .prefault({});

/** `keys`: supplier key sources, the same for the relayer and the miner. */
export const keysSection = z
  .strictObject({
    keys_file: z.string().min(1).optional(),
    keys_dir: z.string().min(1).optional(),
    keyring: z
      .strictObject({
        backend: z.enum(['file', 'os', 'test', 'memory']),
        dir: z.string().optional(),
        app_name: z.string().min(1).default('pocket'),
        key_names: z.array(z.string().min(1)).default([]),
      })
      .optional(),
  })
  .prefault({});

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;

/** `logging`. */
export const loggingSection = z
  .strictObject({
    level: z.enum(LOG_LEVELS).default('info'),
    format: z.enum(['json', 'text']).default('json'),
    /** Upstream example/schema key; upstream code has no such field. Here: stdout, stderr or a file path. */
    output: z.string().min(1).default('stderr'),
    async: z.boolean().default(true),
    async_buffer_size: z.number().int().positive().default(100_000),
    async_poll_interval: goDuration().default('100ms'),
    sampling: z.boolean().default(false),
    sampling_initial: z.number().int().positive().default(100),
    sampling_thereafter: z.number().int().positive().default(10),
    enable_caller: z.boolean().default(false),
  })
  .prefault({});

/** `metrics`: Prometheus listener. */
export const metricsSection = (defaultAddr: string) =>
  z
    .strictObject({
      enabled: z.boolean().default(true),
      addr: listenAddr().default(defaultAddr),
    })
    .prefault({});

/** `pprof`: upstream's Go profiler listener; here the Node inspector/heap-snapshot endpoint. */
export const pprofSection = (defaults: { enabled: boolean; addr: string }) =>
  z
    .strictObject({
      enabled: z.boolean().default(defaults.enabled),
      addr: listenAddr().default(defaults.addr),
    })
    .prefault({});

export type NamespaceConfig = z.output<typeof namespaceSection>;
export type RedisConfig = z.output<typeof redisSection>;
export type LoggingConfig = z.output<typeof loggingSection>;
export type MetricsConfig = z.output<ReturnType<typeof metricsSection>>;
export type PprofConfig = z.output<ReturnType<typeof pprofSection>>;
