export {
  KeyBuilder,
  DEFAULT_NAMESPACE,
  type KeyBuilderOptions,
  type RedisNamespaceConfig,
  type SessionTreeKeys,
  type CacheEntityType,
  type InvalidationType,
  type KnownEntitySet,
  type RebroadcastPhase,
} from './keys.js';
export {
  createRedisClient,
  parseSentinelUrl,
  type SentinelTarget,
  deleteKeysWithPrefix,
  checkRedisVersion,
  parseRedisVersion,
  isVersionAtLeast,
  MIN_REDIS_VERSION,
  RedisUnavailableError,
  RedisVersionError,
  type RedisClientConfig,
} from './redis-client.js';
export {
  PubSub,
  PubSubError,
  PubSubPayloadError,
  binaryChannel,
  jsonChannel,
  textChannel,
  type Channel,
  type PubSubConfig,
  type PubSubDeps,
  type Unsubscribe,
} from './pubsub.js';
export { LuaScript, RedisScriptError, defineScript, loadScriptFile, type ScriptArg } from './scripts.js';
export * from './streams/index.js';
