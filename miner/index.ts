export {
  SmstRedisStore,
  type SmstRedisStoreConfig,
  type SmstRedisStoreDeps,
  type SmstRedisStoreStats,
  type SessionTrie,
  type ResumeSource,
} from './smst-redis-store.js';
export { SmstRedisError, SmstTreeSealedError } from './errors.js';
export {
  MAX_UNORDERED_TX_TIMEOUT_SECONDS,
  cacheTtlMs,
  leaderElectionTimings,
  minerConfigSchema,
  sessionTtlMs,
  submissionTrackingTtlMs,
  supplierLeaseTimings,
  validateMinerConfig,
  type MinerConfig,
  type MinerConfigInput,
  type MinerSupplierConfig,
} from './config.js';
export {
  LeaseRedisError,
  SupplierLeaseManager,
  acquireLease,
  defaultInstanceId,
  releaseLease,
  renewLease,
  type LeaseLossReason,
  type SupplierLeaseConfig,
  type SupplierLeaseHandlers,
  type SupplierLeaseManagerDeps,
  type SupplierLeaseTimings,
} from './leases.js';
export {
  GlobalLeaderElector,
  type GlobalLeaderElectorDeps,
  type LeaderElectionTimings,
  type LeaderElectorConfig,
  type LeaderHandlers,
  type LeadershipLossReason,
} from './leader.js';
export {
  SESSION_STATES,
  SessionSnapshotCorruptError,
  SessionStore,
  SessionStoreError,
  TERMINAL_STATES,
  formatRfc3339Nano,
  isSessionState,
  type SessionFields,
  type SessionIdentity,
  type SessionSnapshot,
  type SessionState,
  type SessionStoreConfig,
  type SessionStoreDeps,
} from './session-store.js';
export {
  DEFAULT_RELAY_CONSUMER_CONFIG,
  RelayConsumerError,
  SupplierRelayConsumer,
  type ConsumedResult,
  type RelayBatchResult,
  type RelayConsumerConfig,
  type RelayConsumerDeps,
  type RelayConsumerMetrics,
  type SessionBatchResult,
} from './relay-consumer.js';
export {
  BlockFeed,
  BlockFeedConfigError,
  DEFAULT_BLOCK_FEED_CONFIG,
  createBlockFeedMetrics,
  type BlockFeedConfig,
  type BlockFeedDeps,
  type BlockFeedListener,
  type FeedBlockSource,
} from './block-feed.js';
export {
  DEFAULT_REFRESH_CONCURRENCY,
  DEFAULT_SERVICE_FACTOR_TTL_SECONDS,
  LeaderDuties,
  LeaderDutiesConfigError,
  LeaderDutiesRedisError,
  createLeaderDutiesMetrics,
  type LeaderDutiesConfig,
  type LeaderDutiesDeps,
} from './leader-duties.js';
export {
  DEFAULT_SUPPLIER_RECONCILE_INTERVAL_SECONDS,
  SupplierRegistryConfigError,
  SupplierRegistryWriter,
  createSupplierRegistryMetrics,
  supplierStateFromChain,
  type ReconcileResult,
  type SupplierRegistryWriterConfig,
  type SupplierRegistryWriterDeps,
} from './supplier-registry.js';
