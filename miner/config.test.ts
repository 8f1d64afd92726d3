import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../core/config/index.js';
import {
  cacheTtlMs,
  leaderElectionTimings,
  minerConfigSchema,
  sessionTtlMs,
  submissionTrackingTtlMs,
  supplierLeaseTimings,
  validateMinerConfig,
} from './config.js';

const EXAMPLE = readFileSync(join(import.meta.dirname, '..', 'config.miner.example.yaml'), 'utf8');

const MINIMAL = `
pocket_node:
  query_node_rpc_url: http://localhost:26657
  query_node_grpc_url: localhost:9090
keys:
  keys_file: /keys/k.yaml
`;

const UNKNOWN = 'unknown key; remove it or check its spelling against config.relayer.example.yaml';

function issuesOf(text: string): { path: string; message: string }[] {
  try {
    validateMinerConfig(text);
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

/** Every `key:` line of the example must carry a comment (on the line or the line before). */
function uncommentedKeys(text: string): string[] {
  const lines = text.split('\n');
  const out: string[] = [];
  lines.forEach((line, i) => {
    const m = /^\s*(?:- )?([a-z_][a-z0-9_-]*):/.exec(line);
    if (m === null) return;
    const prev = lines[i - 1] ?? '';
    if (line.includes(' # ') || /^\s*#/.test(prev)) return;
    out.push(`line ${i + 1}: ${m[1]}`);
  });
  return out;
}

describe('config.miner.example.yaml', () => {
  it('validates', () => {
    const cfg = validateMinerConfig(EXAMPLE, 'config.miner.example.yaml');
    expect(cfg.suppliers).toEqual([
      {
        operator_address: 'pokt1supplier0000000000000000000000000000',
        signing_key_name: 'supplier1',
        services: ['develop-http'],
      },
    ]);
    expect(supplierLeaseTimings(cfg)).toEqual({
      claim_ttl_ms: 4_000,
      renew_interval_ms: 1_000,
      rebalance_interval_ms: 2_000,
    });
    expect(Object.isFrozen(cfg.suppliers[0])).toBe(true);
  });

  it('sets every key the schema knows, and no other', () => {
    const wanted = schemaPaths(minerConfigSchema);
    const recordAt = new Set(wanted.filter((p) => p.endsWith('.*')).map((p) => p.slice(0, -2)));
    const found = new Set<string>();
    documentPaths(parse(EXAMPLE), '', recordAt, found);
    expect(wanted.filter((p) => !p.endsWith('.*') && !found.has(p))).toEqual([]);
    expect([...found].filter((p) => !wanted.includes(p))).toEqual([]);
  });

  it('documents every key with a comment', () => {
    expect(uncommentedKeys(EXAMPLE)).toEqual([]);
  });
});

describe('validateMinerConfig', () => {
  it('applies the defaults to a minimal file', () => {
    const cfg = validateMinerConfig(MINIMAL);
    expect(cfg).toEqual({
      redis: {
        url: 'redis://localhost:6379',
        claim_idle_timeout_ms: 60_000,
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
        chain_id: 'pocket',
        grpc_insecure: false,
        query_timeout_seconds: 5,
      },
      transaction: {
        gas_limit: 0,
        gas_price: '0.00001upokt',
        gas_adjustment: 1.7,
        disable_claim_batching: false,
        disable_proof_batching: false,
        tx_timeout_min_seconds: 120,
        tx_timeout_max_seconds: 590,
        tx_timeout_default_seconds: 120,
        tx_timeout_clock_skew_buffer_seconds: 60,
        disable_pre_proof_claim_verification: false,
        disable_inclusion_reconciler: false,
        inclusion_reconciler_max_concurrent: 64,
        max_rebroadcasts: 1,
        rebroadcast_safety_blocks: 1,
        inclusion_reconciler_per_group_timeout_ms: 10_000,
      },
      keys: { keys_file: '/keys/k.yaml' },
      suppliers: [],
      block_time_seconds: 30,
      block_health_monitor: { enabled: false, slowness_threshold: 1.5 },
      balance_monitor: {
        enabled: false,
        check_interval_seconds: 300,
        balance_threshold_upokt: 0,
        stake_warning_proof_threshold: 10,
        stake_critical_proof_threshold: 3,
      },
      settlement_monitor: { enabled: false },
      session_lifecycle: { max_concurrent_transitions: 10 },
      worker_pools: {
        master_pool_size: 0,
        cpu_multiplier: 4,
        workers_per_supplier: 6,
        query_workers: 20,
        settlement_workers: 2,
      },
      leader_election: { leader_ttl_seconds: 4, heartbeat_rate_seconds: 1 },
      supplier_claiming: { claim_ttl_seconds: 4, renew_rate_seconds: 1, rebalance_interval_seconds: 2 },
      deduplication_ttl_blocks: 10,
      batch_size: 1000,
      ack_batch_size: 50,
      hot_reload_enabled: true,
      cache_ttl: '2h',
      smst_live_root_checkpoint_interval: 10,
      submission_tracking_ttl: '24h',
      supplier_reconcile_interval_seconds: 60,
      known_applications: [],
      service_factors: {},
      metrics: { enabled: true, addr: '0.0.0.0:9092' },
      pprof: { enabled: false, addr: '127.0.0.1:6060' },
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
    });
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(supplierLeaseTimings(cfg)).toEqual({
      claim_ttl_ms: 4_000,
      renew_interval_ms: 1_000,
      rebalance_interval_ms: 2_000,
    });
    expect(leaderElectionTimings(cfg)).toEqual({ leader_ttl_ms: 4_000, heartbeat_interval_ms: 1_000 });
    expect([cacheTtlMs(cfg), sessionTtlMs(cfg), submissionTrackingTtlMs(cfg)]).toEqual([
      7_200_000, 7_200_000, 86_400_000,
    ]);
  });

  it('takes sub-second lease timings and an explicit session_ttl', () => {
    const cfg = validateMinerConfig(
      `${MINIMAL}leader_election: { leader_ttl_seconds: 0.8, heartbeat_rate_seconds: 0.2 }\n` +
        'supplier_claiming: { claim_ttl_seconds: 0.6, renew_rate_seconds: 0.15, rebalance_interval_seconds: 0.3 }\n' +
        "session_ttl: '30m'\n",
    );
    expect(leaderElectionTimings(cfg)).toEqual({ leader_ttl_ms: 800, heartbeat_interval_ms: 200 });
    expect(supplierLeaseTimings(cfg)).toEqual({
      claim_ttl_ms: 600,
      renew_interval_ms: 150,
      rebalance_interval_ms: 300,
    });
    expect(sessionTtlMs(cfg)).toBe(1_800_000);
  });

  it('reports every schema problem at once with its dotted path', () => {
    const text = `
redis: { url: "http://x", claim_idle_timeout_ms: 0, consumer_name: "", colour: red }
pocket_node: { query_node_rpc_url: "" }
keys: { keyring: { backend: vault } }
transaction: { gas_price: "cheap", gas_adjustment: 0, max_rebroadcasts: -1 }
suppliers: [{ services: [""] }]
block_time_seconds: 0
block_health_monitor: { slowness_threshold: 1 }
leader_election: { leader_ttl_seconds: 0, heartbeat_rate_seconds: 0.0001 }
supplier_claiming: { claim_ttl_seconds: -4, renew_rate_seconds: "1", rebalance_interval_seconds: 0 }
cache_ttl: 500ms
session_ttl: soon
submission_tracking_ttl: 1d
supplier_reconcile_interval_seconds: 0
default_service_factor: 0
service_factors: { eth: -1 }
metrics: { addr: nope }
logging: { level: loud }
supplier_claming: {}
`;
    expect(issuesOf(text)).toEqual([
      {
        path: 'redis.url',
        message: 'must start with redis://, rediss://, redis-sentinel:// or redis-cluster://',
      },
      { path: 'redis.consumer_name', message: 'Too small: expected string to have >=1 characters' },
      { path: 'redis.claim_idle_timeout_ms', message: 'Too small: expected number to be >0' },
      { path: 'redis.colour', message: UNKNOWN },
      {
        path: 'pocket_node.query_node_rpc_url',
        message: 'required; the CometBFT RPC URL, e.g. http://localhost:26657',
      },
      {
        path: 'pocket_node.query_node_grpc_url',
        message: 'Invalid input: expected string, received undefined',
      },
      { path: 'transaction.gas_price', message: 'must be an amount followed by a denom, e.g. 0.00001upokt' },
      { path: 'transaction.gas_adjustment', message: 'Too small: expected number to be >0' },
      { path: 'transaction.max_rebroadcasts', message: 'Too small: expected number to be >=0' },
      {
        path: 'keys.keyring.backend',
        message: 'Invalid option: expected one of "file"|"os"|"test"|"memory"',
      },
      {
        path: 'suppliers[0].operator_address',
        message: 'Invalid input: expected string, received undefined',
      },
      {
        path: 'suppliers[0].services[0]',
        message: 'Too small: expected string to have >=1 characters',
      },
      { path: 'block_time_seconds', message: 'Too small: expected number to be >0' },
      { path: 'block_health_monitor.slowness_threshold', message: 'must be greater than 1' },
      { path: 'leader_election.leader_ttl_seconds', message: 'must be a positive number of seconds' },
      {
        path: 'leader_election.heartbeat_rate_seconds',
        message: 'must have at most millisecond precision (e.g. 4 or 0.25)',
      },
      { path: 'supplier_claiming.claim_ttl_seconds', message: 'must be a positive number of seconds' },
      {
        path: 'supplier_claiming.renew_rate_seconds',
        message: 'Invalid input: expected number, received string',
      },
      {
        path: 'supplier_claiming.rebalance_interval_seconds',
        message: 'must be a positive number of seconds',
      },
      {
        path: 'cache_ttl',
        message: 'must be a duration of at least 1s; write it like 2h, 30m or 1h30m',
      },
      {
        path: 'session_ttl',
        message: 'must be a duration of at least 1s; write it like 2h, 30m or 1h30m',
      },
      {
        path: 'submission_tracking_ttl',
        message: 'must be a duration of at least 1s; write it like 2h, 30m or 1h30m',
      },
      {
        path: 'supplier_reconcile_interval_seconds',
        message: 'must be positive (or negative to disable)',
      },
      { path: 'default_service_factor', message: 'Too small: expected number to be >0' },
      { path: 'service_factors.eth', message: 'Too small: expected number to be >0' },
      { path: 'metrics.addr', message: 'must be host:port, e.g. 0.0.0.0:8080' },
      {
        path: 'logging.level',
        message: 'Invalid option: expected one of "trace"|"debug"|"info"|"warn"|"error"',
      },
      { path: 'supplier_claming', message: UNKNOWN },
    ]);
  });

  it('reports cross-field problems: timings, keys, suppliers, tx timeouts, thresholds, TTLs', () => {
    const text = `
pocket_node: { query_node_rpc_url: "http://n", query_node_grpc_url: "n:9090" }
leader_election: { leader_ttl_seconds: 2, heartbeat_rate_seconds: 2 }
supplier_claiming: { claim_ttl_seconds: 3, renew_rate_seconds: 5 }
suppliers:
  - { operator_address: pokt1a }
  - { operator_address: pokt1b }
  - { operator_address: pokt1a }
transaction: { tx_timeout_min_seconds: 300, tx_timeout_max_seconds: 600, tx_timeout_default_seconds: 100 }
balance_monitor: { stake_warning_proof_threshold: 2, stake_critical_proof_threshold: 5 }
cache_ttl: 1h
session_ttl: 2h
`;
    expect(issuesOf(text)).toEqual([
      {
        path: 'leader_election.heartbeat_rate_seconds',
        message: 'must be less than leader_ttl_seconds (2), or the lock expires before it is renewed',
      },
      {
        path: 'supplier_claiming.renew_rate_seconds',
        message: 'must be less than claim_ttl_seconds (3), or leases expire before they are renewed',
      },
      { path: 'keys', message: 'no supplier key source; set keys_file, keys_dir or keyring' },
      {
        path: 'suppliers[2].operator_address',
        message: "duplicate supplier 'pokt1a'; list each supplier once",
      },
      {
        path: 'transaction.tx_timeout_max_seconds',
        message:
          'must be below 600: the chain refuses unordered transactions timing out 10 minutes or more ahead',
      },
      {
        path: 'transaction.tx_timeout_default_seconds',
        message: 'must lie between tx_timeout_min_seconds (300) and tx_timeout_max_seconds (600)',
      },
      {
        path: 'balance_monitor.stake_critical_proof_threshold',
        message: 'must not exceed stake_warning_proof_threshold (2)',
      },
      {
        path: 'session_ttl',
        message: 'must not exceed cache_ttl (1h): a session snapshot outliving its trie cannot be resumed',
      },
    ]);
    expect(
      issuesOf(`${MINIMAL.replace('keys_file: /keys/k.yaml', 'keyring: { backend: file }')}
transaction: { tx_timeout_min_seconds: 200, tx_timeout_max_seconds: 150, tx_timeout_default_seconds: 150 }
`),
    ).toEqual([
      { path: 'keys.keyring.dir', message: "required for keyring backend 'file'" },
      {
        path: 'transaction.tx_timeout_min_seconds',
        message: 'must not exceed tx_timeout_max_seconds (150)',
      },
      {
        path: 'transaction.tx_timeout_default_seconds',
        message: 'must lie between tx_timeout_min_seconds (200) and tx_timeout_max_seconds (150)',
      },
    ]);
  });

  it('rejects YAML syntax errors and non-mapping documents', () => {
    expect(issuesOf('a: [1, 2\nb: 3\n')[0]!.message).toMatch(/^YAML syntax error at line \d+: /);
    expect(issuesOf('- 1\n- 2\n')).toEqual([
      { path: '', message: 'the document must be a YAML mapping of keys' },
    ]);
  });

  it('the error is a RelayMinerError with a stable code and the source in its message', () => {
    let err: unknown;
    try {
      validateMinerConfig('block_time_seconds: 0\n', 'miner.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('CONFIG_INVALID');
    expect((err as ConfigError).message).toBe(
      'miner.yaml: 2 problems:\n' +
        '  - pocket_node: Invalid input: expected object, received undefined\n' +
        '  - block_time_seconds: Too small: expected number to be >0',
    );
  });
});
