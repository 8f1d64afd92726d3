/**
 * The miner's configuration (miner.md §9): every upstream key with upstream's names and defaults,
 * so an operator's `config.miner.yaml` loads unchanged. The exceptions are the lease timings of
 * `leader_election` and `supplier_claiming`, whose defaults here are short enough that a dead
 * replica's suppliers are taken over within 5 s (see config.miner.example.yaml for the cost).
 * `validateMinerConfig(text)` is the one function both the service start-up and
 * `miner validate --config` run.
 */
import { z } from 'zod';
import {
  ConfigError,
  loadConfigText,
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
import type { LeaderElectionTimings } from './leader.js';
import type { SupplierLeaseTimings } from './leases.js';

/** Cosmos SDK unordered transactions may not time out more than 10 minutes ahead. */
export const MAX_UNORDERED_TX_TIMEOUT_SECONDS = 600;

/**
 * A positive number of seconds with at most millisecond precision. Upstream takes whole seconds;
 * fractions are accepted so test and local stacks can run sub-second leases.
 */
const leaseSeconds = (): z.ZodNumber =>
  z
    .number()
    .positive({ message: 'must be a positive number of seconds' })
    .refine((s) => Math.abs(s * 1000 - Math.round(s * 1000)) < 1e-6, {
      message: 'must have at most millisecond precision (e.g. 4 or 0.25)',
    });

/** A Go duration of at least one second (`2h`, `30m`). */
const ttlDuration = (): z.ZodString =>
  z.string().refine((s) => (parseGoDurationMs(s) ?? 0) >= 1_000, {
    message: 'must be a duration of at least 1s; write it like 2h, 30m or 1h30m',
  });

/** `redis`: the shared section plus the miner's stream-consumer keys. */
const minerRedisSection = redisSection
  .unwrap()
  .extend({
    /** Readable prefix of this replica's stream consumer name; unset = derived from the host. */
    consumer_name: z.string().min(1).optional(),
    /** Pending entries idle this long are reclaimed with XAUTOCLAIM. */
    claim_idle_timeout_ms: z.number().int().positive().default(60_000),
  })
  .prefault({});

const supplierEntry = z.strictObject({
  operator_address: z.string().min(1, { message: 'required; the supplier operator address' }),
  signing_key_name: z.string().min(1).optional(),
  services: z.array(z.string().min(1)).default([]),
});

export const minerConfigSchema = z.strictObject({
  redis: minerRedisSection,
  pocket_node: z.strictObject({
    query_node_rpc_url: z
      .string()
      .min(1, { message: 'required; the CometBFT RPC URL, e.g. http://localhost:26657' }),
    query_node_grpc_url: z
      .string()
      .min(1, { message: 'required; the gRPC query endpoint, e.g. localhost:9090' }),
    chain_id: z.string().min(1).default('pocket'),
    grpc_insecure: z.boolean().default(false),
    query_timeout_seconds: z.number().int().positive().default(5),
  }),
  transaction: z
    .strictObject({
      gas_limit: nonNegativeInt().default(0),
      gas_price: z
        .string()
        .regex(/^\d+(\.\d+)?[a-z][a-z0-9/]*$/, {
          message: 'must be an amount followed by a denom, e.g. 0.00001upokt',
        })
        .default('0.00001upokt'),
      gas_adjustment: z.number().positive().default(1.7),
      disable_claim_batching: z.boolean().default(false),
      disable_proof_batching: z.boolean().default(false),
      tx_timeout_min_seconds: z.number().int().positive().default(120),
      tx_timeout_max_seconds: z.number().int().positive().default(590),
      tx_timeout_default_seconds: z.number().int().positive().default(120),
      tx_timeout_clock_skew_buffer_seconds: nonNegativeInt().default(60),
      disable_pre_proof_claim_verification: z.boolean().default(false),
      disable_inclusion_reconciler: z.boolean().default(false),
      inclusion_reconciler_max_concurrent: z.number().int().positive().default(64),
      max_rebroadcasts: nonNegativeInt().default(1),
      rebroadcast_safety_blocks: nonNegativeInt().default(1),
      inclusion_reconciler_per_group_timeout_ms: z.number().int().positive().default(10_000),
    })
    .prefault({}),
  keys: keysSection,
  suppliers: z.array(supplierEntry).default([]),
  block_time_seconds: z.number().int().positive().default(30),
  block_health_monitor: z
    .strictObject({
      enabled: z.boolean().default(false),
      slowness_threshold: z.number().gt(1, { message: 'must be greater than 1' }).default(1.5),
    })
    .prefault({}),
  balance_monitor: z
    .strictObject({
      enabled: z.boolean().default(false),
      check_interval_seconds: z.number().int().positive().default(300),
      balance_threshold_upokt: nonNegativeInt().default(0),
      stake_warning_proof_threshold: nonNegativeInt().default(10),
      stake_critical_proof_threshold: nonNegativeInt().default(3),
    })
    .prefault({}),
  settlement_monitor: z
    .strictObject({
      enabled: z.boolean().default(false),
    })
    .prefault({}),
  session_lifecycle: z
    .strictObject({
      max_concurrent_transitions: z.number().int().positive().default(10),
    })
    .prefault({}),
  worker_pools: z
    .strictObject({
      master_pool_size: nonNegativeInt().default(0),
      cpu_multiplier: z.number().int().positive().default(4),
      workers_per_supplier: z.number().int().positive().default(6),
      query_workers: z.number().int().positive().default(20),
      settlement_workers: z.number().int().positive().default(2),
    })
    .prefault({}),
  leader_election: z
    .strictObject({
      leader_ttl_seconds: leaseSeconds().default(4),
      heartbeat_rate_seconds: leaseSeconds().default(1),
    })
    .prefault({}),
  supplier_claiming: z
    .strictObject({
      claim_ttl_seconds: leaseSeconds().default(4),
      renew_rate_seconds: leaseSeconds().default(1),
      rebalance_interval_seconds: leaseSeconds().default(2),
    })
    .prefault({}),
  deduplication_ttl_blocks: z.number().int().positive().default(10),
  batch_size: z.number().int().positive().default(1000),
  ack_batch_size: z.number().int().positive().default(50),
  hot_reload_enabled: z.boolean().default(true),
  cache_ttl: ttlDuration().default('2h'),
  /** Unset = cache_ttl. */
  session_ttl: ttlDuration().optional(),
  smst_live_root_checkpoint_interval: z.number().int().positive().default(10),
  submission_tracking_ttl: ttlDuration().default('24h'),
  /** Negative disables the re-check (tests only); 0 is refused. */
  supplier_reconcile_interval_seconds: z
    .number()
    .int()
    .refine((n) => n !== 0, { message: 'must be positive (or negative to disable)' })
    .default(60),
  known_applications: z.array(z.string().min(1)).default([]),
  default_service_factor: z.number().positive().optional(),
  service_factors: z.record(z.string().min(1), z.number().positive()).default({}),
  metrics: metricsSection('0.0.0.0:9092'),
  pprof: pprofSection({ enabled: false, addr: '127.0.0.1:6060' }),
  logging: loggingSection,
});

export type MinerConfigInput = z.input<typeof minerConfigSchema>;
type MinerConfigRaw = z.output<typeof minerConfigSchema>;
export type MinerConfig = DeepReadonly<MinerConfigRaw>;
export type MinerSupplierConfig = MinerConfig['suppliers'][number];

/** Checks that span several keys (upstream `Validate`, plus what upstream leaves to run time). */
export function crossCheckMinerConfig(cfg: MinerConfigRaw, issues: IssueList): void {
  const le = cfg.leader_election;
  if (le.heartbeat_rate_seconds >= le.leader_ttl_seconds) {
    issues.add(
      'leader_election.heartbeat_rate_seconds',
      `must be less than leader_ttl_seconds (${le.leader_ttl_seconds}), or the lock expires before it is renewed`,
    );
  }
  const sc = cfg.supplier_claiming;
  if (sc.renew_rate_seconds >= sc.claim_ttl_seconds) {
    issues.add(
      'supplier_claiming.renew_rate_seconds',
      `must be less than claim_ttl_seconds (${sc.claim_ttl_seconds}), or leases expire before they are renewed`,
    );
  }

  const keys = cfg.keys;
  if (keys.keys_file === undefined && keys.keys_dir === undefined && keys.keyring === undefined) {
    issues.add('keys', 'no supplier key source; set keys_file, keys_dir or keyring');
  }
  if (keys.keyring?.backend === 'file' && (keys.keyring.dir ?? '') === '') {
    issues.add('keys.keyring.dir', "required for keyring backend 'file'");
  }

  const seen = new Set<string>();
  cfg.suppliers.forEach((s, i) => {
    if (seen.has(s.operator_address)) {
      issues.add(
        `suppliers[${i}].operator_address`,
        `duplicate supplier '${s.operator_address}'; list each supplier once`,
      );
    }
    seen.add(s.operator_address);
  });

  const tx = cfg.transaction;
  if (tx.tx_timeout_max_seconds >= MAX_UNORDERED_TX_TIMEOUT_SECONDS) {
    issues.add(
      'transaction.tx_timeout_max_seconds',
      `must be below ${MAX_UNORDERED_TX_TIMEOUT_SECONDS}: the chain refuses unordered transactions timing out 10 minutes or more ahead`,
    );
  }
  if (tx.tx_timeout_min_seconds > tx.tx_timeout_max_seconds) {
    issues.add(
      'transaction.tx_timeout_min_seconds',
      `must not exceed tx_timeout_max_seconds (${tx.tx_timeout_max_seconds})`,
    );
  }
  if (
    tx.tx_timeout_default_seconds < tx.tx_timeout_min_seconds ||
    tx.tx_timeout_default_seconds > tx.tx_timeout_max_seconds
  ) {
    issues.add(
      'transaction.tx_timeout_default_seconds',
      `must lie between tx_timeout_min_seconds (${tx.tx_timeout_min_seconds}) and tx_timeout_max_seconds (${tx.tx_timeout_max_seconds})`,
    );
  }

  const bm = cfg.balance_monitor;
  if (bm.stake_critical_proof_threshold > bm.stake_warning_proof_threshold) {
    issues.add(
      'balance_monitor.stake_critical_proof_threshold',
      `must not exceed stake_warning_proof_threshold (${bm.stake_warning_proof_threshold})`,
    );
  }

  if (cfg.session_ttl !== undefined) {
    const sessionMs = parseGoDurationMs(cfg.session_ttl)!;
    const cacheMs = parseGoDurationMs(cfg.cache_ttl)!;
    if (sessionMs > cacheMs) {
      issues.add(
        'session_ttl',
        `must not exceed cache_ttl (${cfg.cache_ttl}): a session snapshot outliving its trie cannot be resumed`,
      );
    }
  }
}

/**
 * YAML text → frozen miner config; throws ConfigError listing every problem with its dotted path.
 * Used by the service at start-up and by `miner validate --config`.
 */
export function validateMinerConfig(text: string, source = '<inline>'): MinerConfig {
  return loadConfigText(text, { schema: minerConfigSchema, crossCheck: crossCheckMinerConfig, source });
}

const secondsToMs = (s: number): number => Math.round(s * 1000);

/** `supplier_claiming` in milliseconds, as SupplierLeaseManager takes it. */
export function supplierLeaseTimings(cfg: MinerConfig): SupplierLeaseTimings {
  const sc = cfg.supplier_claiming;
  return {
    claim_ttl_ms: secondsToMs(sc.claim_ttl_seconds),
    renew_interval_ms: secondsToMs(sc.renew_rate_seconds),
    rebalance_interval_ms: secondsToMs(sc.rebalance_interval_seconds),
  };
}

/** `leader_election` in milliseconds, as GlobalLeaderElector takes it. */
export function leaderElectionTimings(cfg: MinerConfig): LeaderElectionTimings {
  const le = cfg.leader_election;
  return {
    leader_ttl_ms: secondsToMs(le.leader_ttl_seconds),
    heartbeat_interval_ms: secondsToMs(le.heartbeat_rate_seconds),
  };
}

/** `cache_ttl` in milliseconds (SMST and session data, stream trim age). */
export function cacheTtlMs(cfg: MinerConfig): number {
  return parseGoDurationMs(cfg.cache_ttl)!;
}

/** `session_ttl` in milliseconds, falling back to `cache_ttl`. */
export function sessionTtlMs(cfg: MinerConfig): number {
  return cfg.session_ttl === undefined ? cacheTtlMs(cfg) : parseGoDurationMs(cfg.session_ttl)!;
}

/** `submission_tracking_ttl` in milliseconds. */
export function submissionTrackingTtlMs(cfg: MinerConfig): number {
  return parseGoDurationMs(cfg.submission_tracking_ttl)!;
}

export { ConfigError };
