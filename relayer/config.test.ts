import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../core/config/index.js';
import {
  DEFAULT_POOL_PROFILES,
  DEFAULT_TIMEOUT_PROFILES,
  cacheTtlSeconds,
  relayerConfigSchema,
  resolvePoolProfile,
  resolveTimeoutProfile,
  serviceValidationMode,
  validateRelayerConfig,
} from './config.js';

const EXAMPLE = readFileSync(join(import.meta.dirname, '..', 'config.relayer.example.yaml'), 'utf8');

const MINIMAL = `
pocket_node:
  query_node_rpc_url: http://localhost:26657
  query_node_grpc_url: localhost:9090
keys:
  keys_file: /keys/k.yaml
services:
  eth:
    backends:
      jsonrpc:
        url: http://127.0.0.1:8545
`;

function issuesOf(text: string): { path: string; message: string }[] {
  try {
    validateRelayerConfig(text);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

/** Every key path a schema accepts; record keys become `*`, array elements `[]`. */
function schemaPaths(schema: z.ZodType, prefix = ''): string[] {
  const def = (schema as unknown as { _zod: { def: any } })._zod.def;
  switch (def.type) {
    case 'optional':
    case 'default':
    case 'prefault':
    case 'nullable':
      return schemaPaths(def.innerType, prefix);
    case 'pipe':
      return schemaPaths(def.in, prefix);
    case 'object':
      return Object.entries(def.shape as Record<string, z.ZodType>).flatMap(([k, v]) => {
        const p = prefix === '' ? k : `${prefix}.${k}`;
        return [p, ...schemaPaths(v, p)];
      });
    case 'record':
      return [`${prefix}.*`, ...schemaPaths(def.valueType, `${prefix}.*`)];
    case 'array':
      return schemaPaths(def.element, `${prefix}[]`);
    case 'union':
      return (def.options as z.ZodType[]).flatMap((o) => schemaPaths(o, prefix));
    default:
      return [];
  }
}

/** Every key path in a parsed YAML value, with record levels (given by the schema paths) as `*`. */
function documentPaths(value: unknown, prefix: string, recordAt: Set<string>, out: Set<string>): void {
  if (Array.isArray(value)) {
    for (const v of value) documentPaths(v, `${prefix}[]`, recordAt, out);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const [k, v] of Object.entries(value)) {
    const seg = recordAt.has(prefix) ? '*' : k;
    const p = prefix === '' ? seg : `${prefix}.${seg}`;
    out.add(p);
    documentPaths(v, p, recordAt, out);
  }
}

describe('config.relayer.example.yaml', () => {
  it('validates', () => {
    const cfg = validateRelayerConfig(EXAMPLE, 'config.relayer.example.yaml');
    expect(Object.keys(cfg.services)).toEqual([
      'develop-http',
      'develop-websocket',
      'develop-stream',
      'develop-grpc',
    ]);
    expect(Object.isFrozen(cfg.services['develop-http']!.backends['jsonrpc'])).toBe(true);
  });

  it('sets every key the schema knows', () => {
    const wanted = schemaPaths(relayerConfigSchema);
    const recordAt = new Set(wanted.filter((p) => p.endsWith('.*')).map((p) => p.slice(0, -2)));
    const found = new Set<string>();
    documentPaths(parse(EXAMPLE), '', recordAt, found);
    expect(wanted.filter((p) => !p.endsWith('.*') && !found.has(p))).toEqual([]);
    expect([...found].filter((p) => !wanted.includes(p))).toEqual([]);
  });
});

describe('validateRelayerConfig', () => {
  it('applies upstream defaults to a minimal file', () => {
    const cfg = validateRelayerConfig(MINIMAL);
    expect(cfg).toEqual({
      listen_addr: '0.0.0.0:8080',
      redis: {
        url: 'redis://localhost:6379',
        pool_size: 0,
        min_idle_conns: 0,
        pool_timeout_seconds: 0,
        conn_max_idle_time_seconds: 0,
        namespace: {
          base_prefix: 'ha',
          cache_prefix: 'cache',
          events_prefix: 'events',
          streams_prefix: 'relays',
          miner_prefix: 'miner',
          supplier_prefix: 'supplier',
          meter_prefix: 'meter',
          params_prefix: 'params',
          consumer_group_prefix: 'miners',
        },
      },
      pocket_node: {
        query_node_rpc_url: 'http://localhost:26657',
        query_node_grpc_url: 'localhost:9090',
        grpc_insecure: false,
      },
      keys: { keys_file: '/keys/k.yaml' },
      services: {
        eth: {
          timeout_profile: 'fast',
          default_backend: 'jsonrpc',
          backends: {
            jsonrpc: { url: 'http://127.0.0.1:8545', max_retries: 1, recovery_timeout_seconds: 30 },
          },
        },
      },
      default_validation_mode: 'optimistic',
      default_request_timeout_seconds: 30,
      default_max_body_size_bytes: 10_485_760,
      grace_period_extra_blocks: 2,
      metrics: { enabled: true, addr: '0.0.0.0:9090' },
      pprof: { enabled: true, addr: '0.0.0.0:6060' },
      health_check: { enabled: true, addr: '0.0.0.0:8081' },
      cache_warmup: {
        enabled: true,
        known_applications: [],
        warmup_concurrency: 10,
        warmup_timeout_seconds: 5,
      },
      logging: {
        level: 'info',
        format: 'json',
        output: 'stderr',
        async: true,
        async_buffer_size: 100_000,
        async_poll_interval: '100ms',
        sampling: false,
        sampling_initial: 100,
        sampling_thereafter: 10,
        enable_caller: false,
      },
      relay_meter: { enabled: true, redis_key_prefix: 'ha', fail_behavior: 'open', cache_ttl: '2h' },
      http_transport: {
        max_idle_conns: 500,
        max_idle_conns_per_host: 100,
        max_conns_per_host: 500,
        idle_conn_timeout_seconds: 90,
        dial_timeout_seconds: 5,
        tls_handshake_timeout_seconds: 10,
        response_header_timeout_seconds: 30,
        expect_continue_timeout_seconds: 1,
        tcp_keep_alive_seconds: 30,
        disable_compression: true,
      },
      response_compression: { enabled: false, min_size_bytes: 1024 },
      timeout_profiles: DEFAULT_TIMEOUT_PROFILES,
      pool_profiles: DEFAULT_POOL_PROFILES,
      grpc: {
        enabled: true,
        listen_addr: '0.0.0.0:8082',
        max_message_bytes: 16_777_216,
        header_timeout_seconds: 10,
        read_timeout_seconds: 30,
      },
      websocket: { enabled: true, listen_addr: '0.0.0.0:8083', handshake_timeout_seconds: 10 },
      relay_streams: {
        max_len: 1_000_000,
        batch_size: 256,
        flush_interval_ms: 2,
        max_buffered: 100_000,
        acknowledge: 'written',
        ack_timeout_ms: 1_000,
      },
      ring_verify: { threads: 0, backend: 'auto', max_queue: 4_096, task_timeout_ms: 5_000 },
      shutdown: { drain_timeout_seconds: 30 },
      simulation: { enabled: false, max_concurrent: 32, freshness_window_seconds: 30, identities: [] },
    });
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(cacheTtlSeconds(cfg)).toBe(7200);
    expect(serviceValidationMode(cfg, 'eth')).toBe('optimistic');
    expect(resolveTimeoutProfile(cfg, 'eth')).toEqual(DEFAULT_TIMEOUT_PROFILES.fast);
    expect(resolvePoolProfile(cfg, 'eth')).toEqual({
      max_conns_per_host: 500,
      max_idle_conns_per_host: 100,
      idle_conn_timeout_seconds: 90,
    });
  });

  it('reports every problem at once with its dotted path', () => {
    const text = `
listen_addr: nope
relay_metre: {}
redis: { url: "http://x", pool_size: -1 }
pocket_node: { query_node_rpc_url: "" }
relay_meter: { fail_behavior: maybe, cache_ttl: soon }
services:
  eth:
    backends:
      jsonrpc: { url: "http://a", max_retries: 9, colour: blue }
`;
    expect(issuesOf(text)).toEqual([
      { path: 'listen_addr', message: 'must be host:port, e.g. 0.0.0.0:8080' },
      {
        path: 'redis.url',
        message: 'must start with redis://, rediss://, redis-sentinel:// or redis-cluster://',
      },
      { path: 'redis.pool_size', message: 'Too small: expected number to be >=0' },
      {
        path: 'pocket_node.query_node_rpc_url',
        message: 'required; the CometBFT RPC URL, e.g. http://localhost:26657',
      },
      {
        path: 'pocket_node.query_node_grpc_url',
        message: 'Invalid input: expected string, received undefined',
      },
      { path: 'services.eth.backends.jsonrpc.max_retries', message: 'must be 0-3' },
      {
        path: 'services.eth.backends.jsonrpc.colour',
        message: 'unknown key; remove it or check its spelling against config.relayer.example.yaml',
      },
      { path: 'relay_meter.fail_behavior', message: 'Invalid option: expected one of "open"|"closed"' },
      {
        path: 'relay_meter.cache_ttl',
        message: 'must be a duration of at least 1s; write it like 2h, 30m or 1h30m',
      },
      {
        path: 'relay_metre',
        message: 'unknown key; remove it or check its spelling against config.relayer.example.yaml',
      },
    ]);
  });

  it('reports cross-field problems: backends, profiles, keys, simulation', () => {
    const text = `
pocket_node: { query_node_rpc_url: "http://n", query_node_grpc_url: "n:9090" }
services:
  eth:
    timeout_profile: slow
    pool_profile: huge
    default_backend: ws
    backends:
      ws: { url: "ws://a" }
      jsonrpc: { url: "http://a", urls: ["http://b"] }
      rest: { urls: ["http://a/x/", {name: n, url: "http://a/x"}, {name: n, url: "http://c"}] }
      websocket: { url: "http://a" }
      cometbft:
        url: "http://c"
        health_check: { enabled: true }
        authentication: { username: u }
  empty: { backends: {} }
simulation:
  enabled: true
  identities:
    - { key_id: a, app_pubkey_hex: "zz", gateway_pubkeys_hex: [], allowed_services: [nope] }
    - { key_id: a, app_pubkey_hex: "02${'ab'.repeat(32)}", gateway_pubkeys_hex: ["04${'ab'.repeat(32)}"] }
`;
    expect(issuesOf(text)).toEqual([
      {
        path: 'services.eth.timeout_profile',
        message:
          "names undefined timeout profile 'slow'; define it under timeout_profiles or use one of: fast, streaming",
      },
      {
        path: 'services.eth.pool_profile',
        message:
          "names undefined pool profile 'huge'; define it under pool_profiles or use one of: low, medium, high",
      },
      {
        path: 'services.eth.default_backend',
        message: 'must be one of jsonrpc, rest, websocket, grpc, cometbft',
      },
      {
        path: 'services.eth.backends.ws',
        message:
          "unknown backend type 'ws' (valid: jsonrpc, rest, websocket, grpc, cometbft); did you mean 'websocket'?",
      },
      { path: 'services.eth.backends.jsonrpc', message: 'url and urls are mutually exclusive; keep one' },
      {
        path: 'services.eth.backends.rest.urls[1]',
        message: 'duplicate URL http://a/x; list each endpoint once',
      },
      {
        path: 'services.eth.backends.rest.urls[2].name',
        message: "duplicate name 'n'; names must be unique",
      },
      {
        path: 'services.eth.backends.websocket.url',
        message:
          'websocket backend url must use ws:// or wss:// (got http://); an http url fails only at connect time',
      },
      {
        path: 'services.eth.backends.cometbft.health_check.endpoint',
        message: 'required when health_check.enabled (or set base_path on the backend)',
      },
      {
        path: 'services.eth.backends.cometbft.health_check.interval_seconds',
        message: 'must be a positive number of seconds when health_check.enabled',
      },
      {
        path: 'services.eth.backends.cometbft.authentication',
        message: 'username and password go together; set both or neither',
      },
      { path: 'services.empty.backends', message: 'at least one backend type must be configured' },
      { path: 'keys', message: 'no supplier key source; set keys_file, keys_dir or keyring' },
      {
        path: 'simulation.identities[0].app_pubkey_hex',
        message: 'must be a 33-byte compressed secp256k1 public key in hex',
      },
      {
        path: 'simulation.identities[0].gateway_pubkeys_hex',
        message: 'at least one gateway public key is required',
      },
      { path: 'simulation.identities[0].allowed_services', message: "service 'nope' is not configured" },
      { path: 'simulation.identities[1].key_id', message: "duplicate key_id 'a'" },
      {
        path: 'simulation.identities[1].gateway_pubkeys_hex[0]',
        message: 'is not a compressed secp256k1 point on the curve',
      },
    ]);
  });

  it('rejects YAML syntax errors and non-mapping documents with the line', () => {
    expect(issuesOf('a: [1, 2\nb: 3\n')[0]!.message).toMatch(/^YAML syntax error at line \d+: /);
    expect(issuesOf('- 1\n- 2\n')).toEqual([
      { path: '', message: 'the document must be a YAML mapping of keys' },
    ]);
    expect(issuesOf('listen_addr: 1\nlisten_addr: 2\n')[0]!.message).toMatch(
      /^YAML syntax error at line 2: /,
    );
  });

  it('the error is a RelayMinerError with a stable code and a readable message', () => {
    let err: unknown;
    try {
      validateRelayerConfig('listen_addr: x\n', 'relayer.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('CONFIG_INVALID');
    expect((err as ConfigError).message.split('\n')[0]).toBe('relayer.yaml: 3 problems:');
  });
});
