/**
 * The relayer's configuration (relayer.md §12): every upstream key with upstream's names and code
 * defaults, so an operator's `config.relayer.yaml` loads unchanged. `validateRelayerConfig(text)`
 * is the one function both the service start-up and `relayer validate --config` run.
 */
import { z } from 'zod';
import {
  ConfigError,
  loadConfigText,
  listenAddr,
  loggingSection,
  metricsSection,
  nonNegativeInt,
  parseGoDurationMs,
  pprofSection,
  redisSection,
  type DeepReadonly,
  type IssueList,
  keysSection,
} from '../core/config/index.js';
import { checkSimulationConfig } from './simulation.js';

export const BACKEND_TYPES = ['jsonrpc', 'rest', 'websocket', 'grpc', 'cometbft'] as const;
export type BackendType = (typeof BACKEND_TYPES)[number];

/** Common misspellings of backend keys, as upstream's hint table. */
const BACKEND_TYPE_HINTS: Readonly<Record<string, BackendType>> = {
  ws: 'websocket',
  websockets: 'websocket',
  wss: 'websocket',
  http: 'jsonrpc',
  json: 'jsonrpc',
  'json-rpc': 'jsonrpc',
  json_rpc: 'jsonrpc',
  rpc: 'jsonrpc',
  grpcs: 'grpc',
  comet: 'cometbft',
  comet_bft: 'cometbft',
  tendermint: 'cometbft',
  restful: 'rest',
};

const validationMode = z.enum(['eager', 'optimistic']);

const endpointEntry = z.union([
  z.string().trim().min(1, { message: 'backend endpoint URL must not be empty' }),
  z.strictObject({
    name: z.string().min(1).optional(),
    url: z.string().trim().min(1, { message: 'backend endpoint URL must not be empty' }),
  }),
]);

const backendHealthCheck = z.strictObject({
  enabled: z.boolean().default(false),
  endpoint: z.string().optional(),
  interval_seconds: nonNegativeInt().optional(),
  timeout_seconds: z.number().int().positive().default(5),
  unhealthy_threshold: z.number().int().positive().optional(),
  healthy_threshold: z.number().int().positive().optional(),
  method: z
    .string()
    .regex(/^[A-Z]+$/, { message: 'an HTTP method in capitals, e.g. GET or POST' })
    .default('GET'),
  request_body: z.string().optional(),
  content_type: z.string().optional(),
  expected_body: z.string().optional(),
  expected_status: z.array(z.number().int().min(100).max(599)).optional(),
  headers: z.record(z.string(), z.string()).optional(),
});

const backendSection = z.strictObject({
  url: z.string().optional(),
  urls: z.array(endpointEntry).optional(),
  base_path: z.string().regex(/^\//, { message: 'must start with /' }).optional(),
  load_balancing: z.enum(['first_healthy', 'round_robin']).optional(),
  headers: z.record(z.string(), z.string()).optional(),
  authentication: z
    .strictObject({
      username: z.string().optional(),
      password: z.string().optional(),
      bearer_token: z.string().optional(),
      plain_token: z.string().optional(),
    })
    .optional(),
  health_check: backendHealthCheck.optional(),
  max_retries: z.number().int().min(0).max(3, { message: 'must be 0-3' }).default(1),
  recovery_timeout_seconds: nonNegativeInt().default(30),
});

const serviceSection = z.strictObject({
  validation_mode: validationMode.optional(),
  timeout_profile: z.string().min(1).default('fast'),
  pool_profile: z.string().min(1).optional(),
  max_body_size_bytes: z.number().int().positive().optional(),
  default_backend: z.string().default('jsonrpc'),
  /** Unknown backend keys are reported by the cross-field check, with a spelling hint. */
  backends: z.record(z.string(), backendSection),
});

const timeoutProfile = z.strictObject({
  request_timeout_seconds: nonNegativeInt().default(0),
  response_header_timeout_seconds: nonNegativeInt().default(0),
  dial_timeout_seconds: nonNegativeInt().default(0),
  tls_handshake_timeout_seconds: nonNegativeInt().default(0),
});

const poolProfile = z.strictObject({
  max_conns_per_host: nonNegativeInt().default(0),
  max_idle_conns_per_host: nonNegativeInt().default(0),
  idle_conn_timeout_seconds: nonNegativeInt().default(0),
});

const simIdentity = z.strictObject({
  key_id: z.string().min(1, { message: 'key_id is required' }),
  enabled: z.boolean().default(false),
  not_after: z
    .string()
    .refine((s) => !Number.isNaN(Date.parse(s)) && /^\d{4}-\d\d-\d\dT/.test(s), {
      message: 'must be an RFC 3339 timestamp, e.g. 2027-01-01T00:00:00Z',
    })
    .optional(),
  max_rps: z.number().int().positive({ message: 'must be > 0' }).default(5),
  app_pubkey_hex: z.string().default(''),
  gateway_pubkeys_hex: z.array(z.string()).default([]),
  allowed_services: z.array(z.string().min(1)).default([]),
});

export const DEFAULT_TIMEOUT_PROFILES = {
  fast: {
    request_timeout_seconds: 30,
    response_header_timeout_seconds: 30,
    dial_timeout_seconds: 5,
    tls_handshake_timeout_seconds: 10,
  },
  streaming: {
    request_timeout_seconds: 600,
    response_header_timeout_seconds: 0,
    dial_timeout_seconds: 10,
    tls_handshake_timeout_seconds: 15,
  },
};

export const DEFAULT_POOL_PROFILES = {
  low: { max_conns_per_host: 10, max_idle_conns_per_host: 5, idle_conn_timeout_seconds: 90 },
  medium: { max_conns_per_host: 100, max_idle_conns_per_host: 20, idle_conn_timeout_seconds: 90 },
  high: { max_conns_per_host: 250, max_idle_conns_per_host: 50, idle_conn_timeout_seconds: 90 },
};

export const relayerConfigSchema = z.strictObject({
  listen_addr: listenAddr().default('0.0.0.0:8080'),
  redis: redisSection,
  pocket_node: z.strictObject({
    query_node_rpc_url: z
      .string()
      .min(1, { message: 'required; the CometBFT RPC URL, e.g. http://localhost:26657' }),
    query_node_grpc_url: z
      .string()
      .min(1, { message: 'required; the gRPC query endpoint, e.g. localhost:9090' }),
    grpc_insecure: z.boolean().default(false),
  }),
  keys: keysSection,
  services: z.record(z.string().min(1), serviceSection),
  default_validation_mode: validationMode.default('optimistic'),
  default_request_timeout_seconds: z.number().int().positive().default(30),
  default_max_body_size_bytes: z.number().int().positive().default(10_485_760),
  /** Upstream schema key that upstream code never reads; accepted so files carry over, unused. */
  grace_period_extra_blocks: nonNegativeInt().default(2),
  metrics: metricsSection('0.0.0.0:9090'),
  pprof: pprofSection({ enabled: true, addr: '0.0.0.0:6060' }),
  health_check: z
    .strictObject({
      enabled: z.boolean().default(true),
      addr: listenAddr().default('0.0.0.0:8081'),
    })
    .prefault({}),
  cache_warmup: z
    .strictObject({
      enabled: z.boolean().default(true),
      known_applications: z.array(z.string().min(1)).default([]),
      warmup_concurrency: z.number().int().positive().default(10),
      warmup_timeout_seconds: z.number().int().positive().default(5),
    })
    .prefault({}),
  logging: loggingSection,
  relay_meter: z
    .strictObject({
      enabled: z.boolean().default(true),
      redis_key_prefix: z.string().min(1).default('ha'),
      fail_behavior: z.enum(['open', 'closed']).default('open'),
      cache_ttl: z
        .string()
        .refine((s) => (parseGoDurationMs(s) ?? 0) >= 1_000, {
          message: 'must be a duration of at least 1s; write it like 2h, 30m or 1h30m',
        })
        .default('2h'),
    })
    .prefault({}),
  http_transport: z
    .strictObject({
      max_idle_conns: nonNegativeInt().default(500),
      max_idle_conns_per_host: nonNegativeInt().default(100),
      max_conns_per_host: nonNegativeInt().default(500),
      idle_conn_timeout_seconds: nonNegativeInt().default(90),
      dial_timeout_seconds: nonNegativeInt().default(5),
      tls_handshake_timeout_seconds: nonNegativeInt().default(10),
      response_header_timeout_seconds: nonNegativeInt().default(30),
      expect_continue_timeout_seconds: nonNegativeInt().default(1),
      tcp_keep_alive_seconds: nonNegativeInt().default(30),
      disable_compression: z.boolean().default(true),
    })
    .prefault({}),
  response_compression: z
    .strictObject({
      enabled: z.boolean().default(false),
      min_size_bytes: nonNegativeInt().default(1024),
    })
    .prefault({}),
  timeout_profiles: z.record(z.string().min(1), timeoutProfile).default(DEFAULT_TIMEOUT_PROFILES),
  pool_profiles: z.record(z.string().min(1), poolProfile).default(DEFAULT_POOL_PROFILES),
  grpc: z
    .strictObject({
      enabled: z.boolean().default(true),
      listen_addr: listenAddr().default('0.0.0.0:8082'),
      max_message_bytes: z.number().int().positive().default(16_777_216),
      header_timeout_seconds: z.number().int().positive().default(10),
      read_timeout_seconds: z.number().int().positive().default(30),
    })
    .prefault({}),
  websocket: z
    .strictObject({
      enabled: z.boolean().default(true),
      listen_addr: listenAddr().default('0.0.0.0:8083'),
      handshake_timeout_seconds: z.number().int().positive().default(10),
    })
    .prefault({}),
  relay_streams: z
    .strictObject({
      max_len: nonNegativeInt().default(1_000_000),
      batch_size: z.number().int().positive().default(256),
      flush_interval_ms: nonNegativeInt().default(2),
      max_buffered: z.number().int().positive().default(100_000),
      acknowledge: z.enum(['written', 'served']).default('written'),
      ack_timeout_ms: z.number().int().positive().default(1_000),
    })
    .prefault({}),
  ring_verify: z
    .strictObject({
      threads: nonNegativeInt().default(0),
      backend: z.enum(['auto', 'native', 'noble']).default('auto'),
      max_queue: z.number().int().positive().default(4_096),
      task_timeout_ms: z.number().int().positive().default(5_000),
    })
    .prefault({}),
  shutdown: z
    .strictObject({
      drain_timeout_seconds: nonNegativeInt().default(30),
    })
    .prefault({}),
  simulation: z
    .strictObject({
      enabled: z.boolean().default(false),
      max_concurrent: z.number().int().positive().default(32),
      freshness_window_seconds: z.number().int().positive().default(30),
      identities: z.array(simIdentity).default([]),
    })
    .prefault({}),
});

export type RelayerConfigInput = z.input<typeof relayerConfigSchema>;
type RelayerConfigRaw = z.output<typeof relayerConfigSchema>;
export type RelayerConfig = DeepReadonly<RelayerConfigRaw>;
export type ServiceConfig = RelayerConfig['services'][string];
export type BackendConfig = ServiceConfig['backends'][string];
export type TimeoutProfile = RelayerConfig['timeout_profiles'][string];
export type PoolProfile = RelayerConfig['pool_profiles'][string];

function checkUrl(raw: string, type: string, path: string, issues: IssueList): URL | undefined {
  // grpc backends may be a bare host:port (dialled as h2c).
  const text = type === 'grpc' && !/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? `http://${raw}` : raw;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    issues.add(path, `invalid URL ${JSON.stringify(raw)}; write it like http://host:8545`);
    return undefined;
  }
  if (type === 'websocket' && u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    issues.add(
      path,
      `websocket backend url must use ws:// or wss:// (got ${u.protocol.replace(':', '')}://); an http url fails only at connect time`,
    );
  } else if (type === 'grpc' && !['http:', 'https:', 'grpc:', 'grpcs:'].includes(u.protocol)) {
    issues.add(path, 'grpc backend url must be host:port, http://, https://, grpc:// or grpcs://');
  } else if (
    ['jsonrpc', 'rest', 'cometbft'].includes(type) &&
    u.protocol !== 'http:' &&
    u.protocol !== 'https:'
  ) {
    issues.add(path, `${type} backend url must use http:// or https://`);
  }
  return u;
}

/** Checks that span several keys (upstream `Validate`, plus what upstream leaves to run time). */
export function crossCheckRelayerConfig(cfg: RelayerConfigRaw, issues: IssueList): void {
  const services = Object.entries(cfg.services);
  if (services.length === 0) issues.add('services', 'at least one service must be configured');
  for (const name of ['fast', 'streaming']) {
    if (cfg.timeout_profiles[name] === undefined) {
      issues.add(`timeout_profiles.${name}`, `required timeout profile '${name}' is not defined; add it`);
    }
  }
  for (const [id, svc] of services) {
    const sp = `services.${id}`;
    if (svc.timeout_profile !== undefined && cfg.timeout_profiles[svc.timeout_profile] === undefined) {
      issues.add(
        `${sp}.timeout_profile`,
        `names undefined timeout profile '${svc.timeout_profile}'; define it under timeout_profiles or use one of: ${Object.keys(cfg.timeout_profiles).join(', ')}`,
      );
    }
    if (svc.pool_profile !== undefined && cfg.pool_profiles[svc.pool_profile] === undefined) {
      issues.add(
        `${sp}.pool_profile`,
        `names undefined pool profile '${svc.pool_profile}'; define it under pool_profiles or use one of: ${Object.keys(cfg.pool_profiles).join(', ')}`,
      );
    }
    const backendTypes = Object.keys(svc.backends);
    if (backendTypes.length === 0) {
      issues.add(`${sp}.backends`, 'at least one backend type must be configured');
    }
    if (!(BACKEND_TYPES as readonly string[]).includes(svc.default_backend)) {
      issues.add(`${sp}.default_backend`, `must be one of ${BACKEND_TYPES.join(', ')}`);
    }
    for (const [type, b] of Object.entries(svc.backends)) {
      const bp = `${sp}.backends.${type}`;
      if (!(BACKEND_TYPES as readonly string[]).includes(type)) {
        const hint = BACKEND_TYPE_HINTS[type];
        issues.add(
          bp,
          `unknown backend type '${type}' (valid: ${BACKEND_TYPES.join(', ')})${hint === undefined ? '' : `; did you mean '${hint}'?`}`,
        );
        continue;
      }
      const hasUrl = b.url !== undefined && b.url !== '';
      const hasUrls = b.urls !== undefined && b.urls.length > 0;
      if (hasUrl && hasUrls) issues.add(bp, 'url and urls are mutually exclusive; keep one');
      if (!hasUrl && !hasUrls) issues.add(bp, 'one of url or urls is required');
      if (hasUrl) checkUrl(b.url!, type, `${bp}.url`, issues);
      if (hasUrls) {
        const seenUrls = new Set<string>();
        const seenNames = new Set<string>();
        b.urls!.forEach((entry, i) => {
          const raw = typeof entry === 'string' ? entry : entry.url;
          const name = typeof entry === 'string' ? undefined : entry.name;
          const u = checkUrl(raw, type, `${bp}.urls[${i}]`, issues);
          if (u !== undefined) {
            const norm = u.host + u.pathname.replace(/\/+$/, '');
            if (seenUrls.has(norm))
              issues.add(`${bp}.urls[${i}]`, `duplicate URL ${raw}; list each endpoint once`);
            seenUrls.add(norm);
          }
          if (name !== undefined) {
            if (seenNames.has(name))
              issues.add(`${bp}.urls[${i}].name`, `duplicate name '${name}'; names must be unique`);
            seenNames.add(name);
          }
        });
      }
      const hc = b.health_check;
      if (hc?.enabled === true) {
        if ((hc.endpoint ?? '') === '' && b.base_path === undefined) {
          issues.add(
            `${bp}.health_check.endpoint`,
            'required when health_check.enabled (or set base_path on the backend)',
          );
        }
        if (hc.interval_seconds === undefined || hc.interval_seconds <= 0) {
          issues.add(
            `${bp}.health_check.interval_seconds`,
            'must be a positive number of seconds when health_check.enabled',
          );
        }
      }
      const auth = b.authentication;
      if (auth !== undefined && (auth.username !== undefined) !== (auth.password !== undefined)) {
        issues.add(`${bp}.authentication`, 'username and password go together; set both or neither');
      }
    }
  }
  const keys = cfg.keys;
  if (keys.keys_file === undefined && keys.keys_dir === undefined && keys.keyring === undefined) {
    issues.add('keys', 'no supplier key source; set keys_file, keys_dir or keyring');
  }
  if (keys.keyring?.backend === 'file' && (keys.keyring.dir ?? '') === '') {
    issues.add('keys.keyring.dir', "required for keyring backend 'file'");
  }
  checkSimulationConfig(cfg.simulation, Object.keys(cfg.services), issues);
}

/**
 * YAML text → frozen relayer config; throws ConfigError listing every problem with its dotted
 * path. Used by the service at start-up and by `relayer validate --config`.
 */
export function validateRelayerConfig(text: string, source = '<inline>'): RelayerConfig {
  return loadConfigText(text, { schema: relayerConfigSchema, crossCheck: crossCheckRelayerConfig, source });
}

/** `validation_mode` of a service, falling back to `default_validation_mode`. */
export function serviceValidationMode(cfg: RelayerConfig, serviceId: string): 'eager' | 'optimistic' {
  return cfg.services[serviceId]?.validation_mode ?? cfg.default_validation_mode;
}

/** The service's timeout profile with 0 dial/TLS timeouts inherited from http_transport. */
export function resolveTimeoutProfile(cfg: RelayerConfig, serviceId: string): TimeoutProfile {
  const name = cfg.services[serviceId]?.timeout_profile ?? 'fast';
  const p = cfg.timeout_profiles[name] ?? cfg.timeout_profiles['fast']!;
  return {
    request_timeout_seconds:
      p.request_timeout_seconds > 0 ? p.request_timeout_seconds : cfg.default_request_timeout_seconds,
    response_header_timeout_seconds: p.response_header_timeout_seconds,
    dial_timeout_seconds:
      p.dial_timeout_seconds > 0 ? p.dial_timeout_seconds : cfg.http_transport.dial_timeout_seconds,
    tls_handshake_timeout_seconds:
      p.tls_handshake_timeout_seconds > 0
        ? p.tls_handshake_timeout_seconds
        : cfg.http_transport.tls_handshake_timeout_seconds,
  };
}

/** The service's pool profile with 0 fields inherited from http_transport. */
export function resolvePoolProfile(cfg: RelayerConfig, serviceId: string): PoolProfile {
  const name = cfg.services[serviceId]?.pool_profile;
  const p = name === undefined ? undefined : cfg.pool_profiles[name];
  const t = cfg.http_transport;
  return {
    max_conns_per_host:
      p !== undefined && p.max_conns_per_host > 0 ? p.max_conns_per_host : t.max_conns_per_host,
    max_idle_conns_per_host:
      p !== undefined && p.max_idle_conns_per_host > 0
        ? p.max_idle_conns_per_host
        : t.max_idle_conns_per_host,
    idle_conn_timeout_seconds:
      p !== undefined && p.idle_conn_timeout_seconds > 0
        ? p.idle_conn_timeout_seconds
        : t.idle_conn_timeout_seconds,
  };
}

/** `relay_meter.cache_ttl` in whole seconds (meter keys and relay-stream TTL). */
export function cacheTtlSeconds(cfg: RelayerConfig): number {
  return Math.floor(parseGoDurationMs(cfg.relay_meter.cache_ttl)! / 1000);
}

export { ConfigError };
