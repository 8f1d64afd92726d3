export {
  SmstRedisStore,
  type SmstRedisStoreConfig,
  type SmstRedisStoreDeps,
  type SmstRedisStoreStats,
  type SessionTrie,
  type ResumeSource,
} from './smst-redis-store.js';
export { SmstRedisError, SmstTreeSealedError } from './errors.js';
