export {
  BackendPool,
  DEFAULT_BREAKER_THRESHOLD,
  type BackendEndpoint,
  type BackendFailureCode,
  type BackendPoolDeps,
  type BackendPoolOptions,
  type BackendRequest,
  type BackendResult,
} from './backend-pool.js';
export { BackendRegistry, rpcTypeToBackendType } from './backend-registry.js';
export { CircuitBreaker, type BreakerState, type CircuitBreakerConfig } from './circuit-breaker.js';
export {
  buildBackendHeaders,
  buildBackendUrl,
  cleanBackendPath,
  mergeBackendPath,
  type BackendAuth,
  type HeaderContext,
  type HeaderMap,
} from './request-shape.js';
