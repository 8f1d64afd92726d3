export {
  KeyBuilder,
  DEFAULT_NAMESPACE,
  type KeyBuilderOptions,
  type RedisNamespaceConfig,
  type SessionTreeKeys,
} from './keys.js';
export {
  createRedisClient,
  deleteKeysWithPrefix,
  checkRedisVersion,
  parseRedisVersion,
  isVersionAtLeast,
  MIN_REDIS_VERSION,
  RedisUnavailableError,
  RedisVersionError,
  type RedisClientConfig,
} from './redis-client.js';
