/** What other folders may use from cache/. */
export { CacheStateError, CacheUnavailableError } from './errors.js';
export { createCacheMetrics, type CacheMetrics } from './metrics.js';
export {
  DEFAULT_TIERED_CACHE_CONFIG,
  TieredCache,
  type CacheEntity,
  type TieredCacheConfig,
  type TieredCacheDeps,
} from './tiered-cache.js';
export {
  CacheInvalidator,
  heightInvalidation,
  jsonInvalidation,
  type Invalidatable,
  type InvalidationFormat,
  type InvalidationMessage,
} from './invalidation.js';
export {
  BlockEventPublisher,
  BlockEventSubscriber,
  blockEventsChannel,
  type BlockEventMessage,
  type BlockEventPublisherDeps,
  type BlockEventSubscriberConfig,
  type BlockEventSubscriberDeps,
  type BlockHandler,
} from './block-events.js';
export { CacheRingSource, type CacheRingSourceDeps } from './ring-source.js';
export {
  ChainCaches,
  type ChainCachesClient,
  type ChainCachesConfig,
  type ChainCachesDeps,
} from './chain-caches.js';
export { accountPublicKeyEntity } from './entities/account.js';
export { applicationEntity, type Application } from './entities/application.js';
export {
  BLOCK_TIME_MS,
  SINGLETON_ID,
  type EntityTtlConfig,
  type ServiceAtHeight,
} from './entities/common.js';
export {
  proofParamsEntity,
  sessionParamsEntity,
  sharedParamsAtHeightEntity,
  sharedParamsEntity,
  type ProofParams,
  type SessionParamsValue,
  type SharedParams,
} from './entities/params.js';
export {
  computeUnitsPerRelayEntity,
  relayMiningDifficultyEntity,
  type RelayMiningDifficulty,
} from './entities/relay-mining.js';
export { serviceEntity, type Service } from './entities/service.js';
export {
  parseSessionId,
  sessionEntity,
  sessionId,
  sessionL2TtlMs,
  type Session,
  type SessionArgs,
  type SessionEntityConfig,
} from './entities/session.js';
export { supplierEntity, type Supplier } from './entities/supplier.js';
export {
  SupplierStateCache,
  isSupplierActive,
  isSupplierStateContaminated,
  supplierStateSchema,
  type SupplierState,
  type SupplierStateCacheConfig,
  type SupplierStateCacheDeps,
} from './supplier-state.js';
