/**
 * The one builder of Redis key names (cache-and-redis.md §5, upstream transport/redis/namespace.go).
 * By default it emits upstream's exact strings (`ha:smst:{supplier}:{session_id}:nodes` …), so a
 * mixed fleet can share one Redis. With `cluster_hash_tags` the supplier part is wrapped in a hash
 * tag, so every key of one supplier (and so every key a transaction on its session trie touches)
 * lands in one Redis Cluster slot.
 */
import { InvalidInputError } from '../core/index.js';

/** `redis.namespace` in the YAML; each field defaults independently, as upstream. */
export interface RedisNamespaceConfig {
  base_prefix?: string;
  cache_prefix?: string;
  events_prefix?: string;
  streams_prefix?: string;
  miner_prefix?: string;
  supplier_prefix?: string;
  meter_prefix?: string;
  params_prefix?: string;
  consumer_group_prefix?: string;
}

export const DEFAULT_NAMESPACE: Readonly<Required<RedisNamespaceConfig>> = Object.freeze({
  base_prefix: 'ha',
  cache_prefix: 'cache',
  events_prefix: 'events',
  streams_prefix: 'relays',
  miner_prefix: 'miner',
  supplier_prefix: 'supplier',
  meter_prefix: 'meter',
  params_prefix: 'params',
  consumer_group_prefix: 'miners',
});

export interface KeyBuilderOptions {
  namespace?: RedisNamespaceConfig;
  /** Wrap the supplier in `{…}` so a supplier's keys share a Redis Cluster slot. */
  cluster_hash_tags?: boolean;
}

/** Entity types whose L2 entries use the generic `{base}:{cache}:{type}:{id}` layout. */
/** `supplier` here is the on-chain Supplier record (this implementation's cache), not the registry view. */
export type CacheEntityType = 'application' | 'service' | 'account' | 'supplier';

/**
 * Types carried on `{base}:{events}:cache:{type}:invalidate`. The first seven are upstream's;
 * the rest are caches this implementation adds (same channel scheme).
 */
export type InvalidationType =
  | 'application'
  | 'service'
  | 'account'
  | 'supplier'
  | 'shared_params'
  | 'proof_params'
  | 'session_params'
  | 'service_factor'
  | 'session'
  | 'shared_params_at_height'
  | 'relay_mining_difficulty'
  | 'compute_units_per_relay';

/** Sets of known entity IDs the leader refreshes each block. */
export type KnownEntitySet = 'applications' | 'services' | 'suppliers';

/** Claim/proof phase of the rebroadcast store. */
export type RebroadcastPhase = 'claim' | 'proof';

/** The Redis keys of one (supplier, session) trie. */
export interface SessionTreeKeys {
  /** Hash: lowercase hex digest → node preimage. */
  nodes: string;
  /** String: the 48-byte root sealed for the claim. */
  root: string;
  /** String: the 48-byte root checkpointed mid-session. */
  liveRoot: string;
  /** String: ASCII `{count}:{sum}` written with the claimed root. */
  stats: string;
}

export class KeyBuilder {
  readonly namespace: Readonly<Required<RedisNamespaceConfig>>;
  readonly clusterHashTags: boolean;

  constructor(opts: KeyBuilderOptions = {}) {
    const ns = { ...DEFAULT_NAMESPACE };
    for (const [k, v] of Object.entries(opts.namespace ?? {}) as [
      keyof RedisNamespaceConfig,
      string | undefined,
    ][]) {
      if (v !== undefined && v !== '') ns[k] = v;
    }
    this.namespace = Object.freeze(ns);
    this.clusterHashTags = opts.cluster_hash_tags ?? false;
  }

  private supplierPart(supplier: string): string {
    if (supplier === '' || /[{}\s]/.test(supplier)) {
      throw new InvalidInputError(
        'supplier address in a Redis key',
        'must be non-empty, without braces or spaces',
      );
    }
    return this.clusterHashTags ? `{${supplier}}` : supplier;
  }

  private sessionPart(sessionId: string): string {
    if (sessionId === '' || /[{}\s:]/.test(sessionId)) {
      throw new InvalidInputError(
        'session id in a Redis key',
        'must be non-empty, without braces, colons or spaces',
      );
    }
    return sessionId;
  }

  /** An address, service ID, instance ID or hex digest: non-empty, no braces, colons, spaces or globs. */
  private idPart(what: string, value: string): string {
    if (value === '' || /[{}\s:*?[\]]/.test(value)) {
      throw new InvalidInputError(
        `${what} in a Redis key`,
        'must be non-empty, without braces, colons, spaces or glob characters',
      );
    }
    return value;
  }

  private heightPart(what: string, height: number): string {
    if (!Number.isSafeInteger(height) || height < 0) {
      throw new InvalidInputError(`${what} in a Redis key`, `must be a non-negative integer, got ${height}`);
    }
    return String(height);
  }

  private get base(): string {
    return this.namespace.base_prefix;
  }

  // ---------------------------------------------------------------- cache (L2) entries and locks

  /** `{base}:{cache}` — prefix of every cache entry and lock. */
  cachePrefix(): string {
    return `${this.base}:${this.namespace.cache_prefix}`;
  }

  /** `{base}:{cache}:{type}:{id}` — e.g. `ha:cache:application:pokt1abc`. */
  cacheKey(type: CacheEntityType, id: string): string {
    return `${this.cachePrefix()}:${type}:${this.idPart(`${type} id`, id)}`;
  }

  /** `{base}:{cache}:{type}:*`, for SCAN over one entity type. */
  cachePattern(type: CacheEntityType): string {
    return `${this.cachePrefix()}:${type}:*`;
  }

  /** `{base}:{cache}:lock:{type}:{id}` — the SET NX fill lock of one entry. */
  cacheLockKey(type: CacheEntityType, id: string): string {
    return `${this.cachePrefix()}:lock:${type}:${this.idPart(`${type} id`, id)}`;
  }

  applicationKey(address: string): string {
    return this.cacheKey('application', address);
  }

  applicationLockKey(address: string): string {
    return this.cacheLockKey('application', address);
  }

  serviceKey(serviceId: string): string {
    return this.cacheKey('service', serviceId);
  }

  serviceLockKey(serviceId: string): string {
    return this.cacheLockKey('service', serviceId);
  }

  accountKey(address: string): string {
    return this.cacheKey('account', address);
  }

  accountLockKey(address: string): string {
    return this.cacheLockKey('account', address);
  }

  /** `{base}:{cache}:supplier:{operator}` — the on-chain Supplier (not the `ha:supplier:` registry view). */
  supplierCacheKey(operator: string): string {
    return this.cacheKey('supplier', operator);
  }

  supplierCacheLockKey(operator: string): string {
    return this.cacheLockKey('supplier', operator);
  }

  /** `{base}:{cache}:known:{applications|services|suppliers}` — set of known IDs. */
  knownSet(set: KnownEntitySet): string {
    return `${this.cachePrefix()}:known:${set}`;
  }

  private sessionCacheId(app: string, serviceId: string, height: number): string {
    return `${this.idPart('application address', app)}:${this.idPart('service id', serviceId)}:${this.heightPart('height', height)}`;
  }

  /** `{base}:{cache}:session:{app}:{service}:{height}`. */
  sessionKey(app: string, serviceId: string, height: number): string {
    return `${this.cachePrefix()}:session:${this.sessionCacheId(app, serviceId, height)}`;
  }

  /** `{base}:{cache}:lock:session:{app}:{service}:{height}` (upstream has no session fill lock). */
  sessionLockKey(app: string, serviceId: string, height: number): string {
    return `${this.cachePrefix()}:lock:session:${this.sessionCacheId(app, serviceId, height)}`;
  }

  /** `{base}:{cache}:session:validation:{app}:{service}:{height}`. */
  sessionValidationKey(app: string, serviceId: string, height: number): string {
    return `${this.cachePrefix()}:session:validation:${this.sessionCacheId(app, serviceId, height)}`;
  }

  /** `{base}:{cache}:session:rewardable:{session_id}`. */
  sessionRewardableKey(sessionId: string): string {
    return `${this.cachePrefix()}:session:rewardable:${this.sessionPart(sessionId)}`;
  }

  /** `{base}:{cache}:params:shared:{height}`. */
  sharedParamsAtHeightKey(height: number): string {
    return `${this.cachePrefix()}:params:shared:${this.heightPart('height', height)}`;
  }

  /** `{base}:{cache}:lock:params:shared:{height}`. */
  sharedParamsAtHeightLockKey(height: number): string {
    return `${this.cachePrefix()}:lock:params:shared:${this.heightPart('height', height)}`;
  }

  /** `{base}:{cache}:shared_params` (singleton). */
  sharedParamsKey(): string {
    return `${this.cachePrefix()}:shared_params`;
  }

  /** `{base}:{cache}:lock:shared_params`. */
  sharedParamsLockKey(): string {
    return `${this.cachePrefix()}:lock:shared_params`;
  }

  /** `{base}:{cache}:proof_params` (singleton). */
  proofParamsKey(): string {
    return `${this.cachePrefix()}:proof_params`;
  }

  /** `{base}:{cache}:lock:proof_params`. */
  proofParamsLockKey(): string {
    return `${this.cachePrefix()}:lock:proof_params`;
  }

  /** `{base}:{cache}:lock:session_params`. */
  sessionParamsLockKey(): string {
    return `${this.cachePrefix()}:lock:session_params`;
  }

  /** `{base}:{cache}:params:supplier` (singleton). */
  supplierParamsKey(): string {
    return `${this.cachePrefix()}:params:supplier`;
  }

  /** `{base}:{cache}:lock:params:supplier`. */
  supplierParamsLockKey(): string {
    return `${this.cachePrefix()}:lock:params:supplier`;
  }

  /** `{base}:{cache}:session_params` (listed by the CLI only). */
  sessionParamsKey(): string {
    return `${this.cachePrefix()}:session_params`;
  }

  /** `{base}:{cache}:relay_mining_difficulty:{service}:{height}` (this implementation's cache). */
  relayMiningDifficultyKey(serviceId: string, height: number): string {
    return `${this.cachePrefix()}:relay_mining_difficulty:${this.serviceAtHeight(serviceId, height)}`;
  }

  /** `{base}:{cache}:lock:relay_mining_difficulty:{service}:{height}`. */
  relayMiningDifficultyLockKey(serviceId: string, height: number): string {
    return `${this.cachePrefix()}:lock:relay_mining_difficulty:${this.serviceAtHeight(serviceId, height)}`;
  }

  /** `{base}:{cache}:compute_units_per_relay:{service}:{height}` (this implementation's cache). */
  computeUnitsPerRelayKey(serviceId: string, height: number): string {
    return `${this.cachePrefix()}:compute_units_per_relay:${this.serviceAtHeight(serviceId, height)}`;
  }

  /** `{base}:{cache}:lock:compute_units_per_relay:{service}:{height}`. */
  computeUnitsPerRelayLockKey(serviceId: string, height: number): string {
    return `${this.cachePrefix()}:lock:compute_units_per_relay:${this.serviceAtHeight(serviceId, height)}`;
  }

  private serviceAtHeight(serviceId: string, height: number): string {
    return `${this.idPart('service id', serviceId)}:${this.heightPart('height', height)}`;
  }

  /** `{base}:service_factor:default`. */
  serviceFactorDefaultKey(): string {
    return `${this.base}:service_factor:default`;
  }

  /** `{base}:service_factor:service:{service_id}`. */
  serviceFactorServiceKey(serviceId: string): string {
    return `${this.base}:service_factor:service:${this.idPart('service id', serviceId)}`;
  }

  // ---------------------------------------------------------------- pub/sub channels

  /** `{base}:{events}:{cache}` — prefix of the cache invalidation channels. */
  eventsCachePrefix(): string {
    return `${this.base}:${this.namespace.events_prefix}:${this.namespace.cache_prefix}`;
  }

  /** `{base}:{events}:cache:{type}:invalidate` — payload JSON with the key field, `{}` = all. */
  invalidationChannel(type: InvalidationType): string {
    return `${this.base}:${this.namespace.events_prefix}:cache:${type}:invalidate`;
  }

  /** `{base}:{events}:invalidate:params` — payload: decimal height. */
  sharedParamsHeightInvalidateChannel(): string {
    return `${this.base}:${this.namespace.events_prefix}:invalidate:params`;
  }

  /** `{base}:{events}:{cache}:invalidate:supplier_params` — payload `refresh` / `invalidate`. */
  supplierParamsInvalidateChannel(): string {
    return `${this.eventsCachePrefix()}:invalidate:supplier_params`;
  }

  /** `{base}:{events}:session:rewardable`. */
  sessionRewardableChannel(): string {
    return `${this.base}:${this.namespace.events_prefix}:session:rewardable`;
  }

  /** `{base}:{events}:blocks` — JSON block events from the leader miner. */
  blockEventsChannel(): string {
    return `${this.base}:${this.namespace.events_prefix}:blocks`;
  }

  /** `{base}:{events}:supplier_update` — miner supplier registry events. */
  supplierUpdateChannel(): string {
    return `${this.base}:${this.namespace.events_prefix}:supplier_update`;
  }

  /** `{base}:{meter}:cleanup` — payload `{session_id}|{supplier}` (meterMember). */
  meterCleanupChannel(): string {
    return `${this.base}:${this.namespace.meter_prefix}:cleanup`;
  }

  // ---------------------------------------------------------------- relay streams

  /** `{base}:{streams}` — e.g. `ha:relays`. */
  streamPrefix(): string {
    return `${this.base}:${this.namespace.streams_prefix}`;
  }

  /** `{base}:{streams}:{supplier}` — one stream of mined relays per supplier. */
  relayStream(supplier: string): string {
    return `${this.streamPrefix()}:${this.supplierPart(supplier)}`;
  }

  /** `{base}:{streams}:*`, for SCAN over every relay stream. */
  relayStreamPattern(): string {
    return `${this.streamPrefix()}:*`;
  }

  /** `{base}-{consumer_group_prefix}` — e.g. `ha-miners`. A group name, not a key. */
  consumerGroup(): string {
    return `${this.base}-${this.namespace.consumer_group_prefix}`;
  }

  // ---------------------------------------------------------------- relay meter

  /** `{base}:{meter}:{session_id}:{supplier}:meta` — JSON budget. */
  meterMeta(sessionId: string, supplier: string): string {
    return `${this.base}:${this.namespace.meter_prefix}:${this.sessionPart(sessionId)}:${this.supplierPart(supplier)}:meta`;
  }

  /** `{base}:{meter}:{session_id}:{supplier}:consumed` — uPOKT counter. */
  meterConsumed(sessionId: string, supplier: string): string {
    return `${this.base}:${this.namespace.meter_prefix}:${this.sessionPart(sessionId)}:${this.supplierPart(supplier)}:consumed`;
  }

  /** `{base}:{meter}:active_sessions` — set of meterMember values. */
  meterActiveSessions(): string {
    return `${this.base}:${this.namespace.meter_prefix}:active_sessions`;
  }

  /** `{session_id}|{supplier}` — member of active_sessions and payload of the cleanup channel. */
  meterMember(sessionId: string, supplier: string): string {
    return `${this.sessionPart(sessionId)}|${this.idPart('supplier address', supplier)}`;
  }

  /** `{base}:{meter}:{session_id}` — legacy meter hash, read only by the CLI. */
  legacyMeterSessionKey(sessionId: string): string {
    return `${this.base}:${this.namespace.meter_prefix}:${this.sessionPart(sessionId)}`;
  }

  /** `{base}:app_stake:{app}` — upstream meter-subsystem key. */
  appStakeKey(app: string): string {
    return `${this.base}:app_stake:${this.idPart('application address', app)}`;
  }

  /** `{base}:service:{service_id}:compute_units` — upstream meter-subsystem key. */
  serviceComputeUnitsKey(serviceId: string): string {
    return `${this.base}:service:${this.idPart('service id', serviceId)}:compute_units`;
  }

  /** `{base}:sim:replay:{sha256(signature) hex}` — simulated-relay replay guard. */
  simulationReplayKey(signatureHashHex: string): string {
    return `${this.base}:sim:replay:${this.idPart('signature hash', signatureHashHex)}`;
  }

  // ---------------------------------------------------------------- supplier registry

  /** `{base}:{supplier}` */
  supplierKeyPrefix(): string {
    return `${this.base}:${this.namespace.supplier_prefix}`;
  }

  /** `{base}:{supplier}:{operator}` — JSON SupplierState read by the relayer gate. */
  supplierState(operator: string): string {
    return `${this.supplierKeyPrefix()}:${this.supplierPart(operator)}`;
  }

  /** Inverse of supplierState (hash tag removed); undefined for a key outside that layout. */
  supplierFromStateKey(key: string): string | undefined {
    const prefix = `${this.supplierKeyPrefix()}:`;
    if (!key.startsWith(prefix)) return undefined;
    const part = key.slice(prefix.length);
    const operator = this.clusterHashTags && /^\{[^{}]+\}$/.test(part) ? part.slice(1, -1) : part;
    return operator === '' || /[{}\s:]/.test(operator) ? undefined : operator;
  }

  /** `{base}:{supplier}:*` */
  supplierStatePattern(): string {
    return `${this.supplierKeyPrefix()}:*`;
  }

  /** `{base}:suppliers` */
  suppliersRegistryPrefix(): string {
    return `${this.base}:suppliers`;
  }

  /** `{base}:suppliers:{operator}` — miner supplier registry entry. */
  suppliersRegistry(operator: string): string {
    return `${this.suppliersRegistryPrefix()}:${this.supplierPart(operator)}`;
  }

  /** `{base}:suppliers:index` */
  suppliersRegistryIndex(): string {
    return `${this.suppliersRegistryPrefix()}:index`;
  }

  // ---------------------------------------------------------------- miner: leadership, leases, sessions

  private get minerBase(): string {
    return `${this.base}:${this.namespace.miner_prefix}`;
  }

  /** `{base}:{miner}:global_leader` — value: instance ID. */
  globalLeader(): string {
    return `${this.minerBase}:global_leader`;
  }

  /** `{base}:{miner}:leader:{supplier}` — per-supplier leader election. */
  minerLeader(supplier: string): string {
    return `${this.minerBase}:leader:${this.supplierPart(supplier)}`;
  }

  /** `{base}:{miner}:claim:{supplier}` — which replica owns a supplier (lease). */
  minerClaim(supplier: string): string {
    return `${this.minerBase}:claim:${this.supplierPart(supplier)}`;
  }

  /** `{base}:{miner}:instance:{id}` — liveness heartbeat. */
  minerInstance(instanceId: string): string {
    return `${this.minerBase}:instance:${this.idPart('instance id', instanceId)}`;
  }

  /** `{base}:{miner}:active` — set of live instance IDs. */
  minerActiveSet(): string {
    return `${this.minerBase}:active`;
  }

  /** `{base}:{miner}:sessions` */
  minerSessionsPrefix(): string {
    return `${this.minerBase}:sessions`;
  }

  /** `{base}:{miner}:sessions:{supplier}:{session_id}` — session snapshot hash. */
  minerSession(supplier: string, sessionId: string): string {
    return `${this.minerSessionsPrefix()}:${this.supplierPart(supplier)}:${this.sessionPart(sessionId)}`;
  }

  /** `{base}:{miner}:sessions:{supplier}:index` */
  minerSessionsIndex(supplier: string): string {
    return `${this.minerSessionsPrefix()}:${this.supplierPart(supplier)}:index`;
  }

  /** `{base}:{miner}:sessions:{supplier}:state:{state}` */
  minerSessionStateIndex(supplier: string, state: string): string {
    return `${this.minerSessionsPrefix()}:${this.supplierPart(supplier)}:state:${this.idPart('session state', state)}`;
  }

  /**
   * `{base}:{miner}:ledger:{supplier}:{session_id}` — per-session relay fate counters (HINCRBY
   * only; the miner writes mined…settled, relayers below_difficulty, over_serviced, dropped).
   */
  minerLedger(supplier: string, sessionId: string): string {
    return `${this.minerBase}:ledger:${this.supplierPart(supplier)}:${this.sessionPart(sessionId)}`;
  }

  /** `{base}:{miner}:dedup:session:{session_id}` — set of raw relay hashes. */
  minerDedupSession(sessionId: string): string {
    return `${this.minerBase}:dedup:session:${this.sessionPart(sessionId)}`;
  }

  /**
   * `{base}:{miner}:rebroadcast:{phase}:{supplier}:{session_end}` with the phase in braces as
   * upstream (always a hash tag, so the supplier is never wrapped here).
   */
  rebroadcast(phase: RebroadcastPhase, supplier: string, sessionEndHeight: number): string {
    return `${this.minerBase}:rebroadcast:{${phase}}:${this.idPart('supplier address', supplier)}:${this.heightPart('session end height', sessionEndHeight)}`;
  }

  /** `{base}:{miner}:rebroadcast:{phase}:index` */
  rebroadcastIndex(phase: RebroadcastPhase): string {
    return `${this.minerBase}:rebroadcast:{${phase}}:index`;
  }

  /** `{base}:tx:track:{supplier}:{session_end}:{session_id}` */
  txTrack(supplier: string, sessionEndHeight: number, sessionId: string): string {
    return `${this.base}:tx:track:${this.supplierPart(supplier)}:${this.heightPart('session end height', sessionEndHeight)}:${this.sessionPart(sessionId)}`;
  }

  /** `{base}:tx:track:{supplier}:*` */
  txTrackPattern(supplier: string): string {
    return `${this.base}:tx:track:${this.supplierPart(supplier)}:*`;
  }

  /** `{base}:tx:track:*` */
  txTrackAllPattern(): string {
    return `${this.base}:tx:track:*`;
  }

  // ---------------------------------------------------------------- legacy params, patterns

  /** `{base}:{params}:{name}` — legacy params keys (`shared`, `session`), CLI only. */
  legacyParamsKey(name: 'shared' | 'session'): string {
    return `${this.base}:${this.namespace.params_prefix}:${name}`;
  }

  /** `{base}:{params}:*` */
  legacyParamsPattern(): string {
    return `${this.base}:${this.namespace.params_prefix}:*`;
  }

  /** `{base}:*` — every key of the namespace. */
  allKeysPattern(): string {
    return `${this.base}:*`;
  }

  // ---------------------------------------------------------------- session tries (SMST)

  /** `{base}:smst:` — the prefix of every session-trie key. */
  smstPrefix(): string {
    return `${this.namespace.base_prefix}:smst:`;
  }

  /** `{base}:smst:*:*:nodes`, for SCAN over all tries. */
  smstNodesPattern(): string {
    return `${this.smstPrefix()}*:*:nodes`;
  }

  /** `{base}:smst:*:{session_id}:nodes` */
  smstSessionNodesPattern(sessionId: string): string {
    return `${this.smstPrefix()}*:${this.sessionPart(sessionId)}:nodes`;
  }

  /** `{base}:smst:{supplier}:{session_id}:*` */
  smstSessionAllPattern(supplier: string, sessionId: string): string {
    return this.smstKey(supplier, sessionId, '*');
  }

  private smstKey(supplier: string, sessionId: string, suffix: string): string {
    return `${this.smstPrefix()}${this.supplierPart(supplier)}:${this.sessionPart(sessionId)}:${suffix}`;
  }

  smstNodes(supplier: string, sessionId: string): string {
    return this.smstKey(supplier, sessionId, 'nodes');
  }

  smstRoot(supplier: string, sessionId: string): string {
    return this.smstKey(supplier, sessionId, 'root');
  }

  smstLiveRoot(supplier: string, sessionId: string): string {
    return this.smstKey(supplier, sessionId, 'live_root');
  }

  smstStats(supplier: string, sessionId: string): string {
    return this.smstKey(supplier, sessionId, 'stats');
  }

  sessionTree(supplier: string, sessionId: string): SessionTreeKeys {
    return {
      nodes: this.smstNodes(supplier, sessionId),
      root: this.smstRoot(supplier, sessionId),
      liveRoot: this.smstLiveRoot(supplier, sessionId),
      stats: this.smstStats(supplier, sessionId),
    };
  }
}
