/** What other folders may use from rings/. */
export type { BackendName, EcBackend } from './ec-backend.js';
export { HALF_N, canonicalEcdsaSignature, reduceScalar } from './ec-backend.js';
export { nobleBackend, type NoblePoint } from './noble-backend.js';
export {
  NATIVE_INFINITY,
  loadNativeBackend,
  nativeBindingInfo,
  type NativeBindingInfo,
  type NativePoint,
} from './native-backend.js';
export { BACKEND_CHOICES, isBackendChoice, selectBackend, type BackendChoice } from './select-backend.js';
export {
  HASH_TO_CURVE_MAX_ATTEMPTS,
  challenge,
  decodeRingSignature,
  encodeRingSignature,
  hashToCurve,
  hashToScalar,
  keyImage,
  publicKeyId,
  randomScalar,
  ringSignatureChallenge,
  ringSignatureLength,
  signRingSignature,
  verifyRingSignature,
  type DecodeRingSignatureResult,
  type PreparedRing,
  type RingMember,
  type RingSigRejectCode,
  type RingSignature,
  type RingVerifyResult,
  type SignRingOptions,
} from './blsag.js';
export {
  DEFAULT_RING_POINT_CACHE_ENTRIES,
  RingPointCache,
  prepareRing,
  tryPrepareRing,
  type PrepareRingResult,
} from './ring-points.js';
export {
  DEFAULT_RING_CACHE_CONFIG,
  RingCache,
  expectedRingAddresses,
  resolveRing,
  ringGatewayAddresses,
  type ResolvedRing,
  type RingApplication,
  type RingCacheConfig,
  type RingCacheDeps,
  type RingLookupCode,
  type RingLookupResult,
  type RingSource,
} from './ring.js';
export {
  DEFAULT_RING_VERIFY_POOL_CONFIG,
  RingVerifyPool,
  type PoolVerifyResult,
  type RingVerifyPoolConfig,
  type RingVerifyPoolOptions,
  type RingVerifyUnavailable,
} from './verify-pool.js';
export type { VerifyItem } from './verify-batch.js';
export { NativeBackendUnavailableError, RingSignError, RingSourceError } from './errors.js';
export {
  POKT_STREAM_DELIMITER,
  signGatewayRelayRequest,
  splitStreamBatches,
  verifyHttpRelayResponse,
  verifyRelayResponse,
  type GatewayRelayInput,
  type ResponseCheck,
  type ResponseCheckCode,
} from './gateway-relay.js';
