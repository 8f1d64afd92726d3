/** What other folders (cmd) may use from the relayer. */
export {
  BACKEND_TYPES,
  ConfigError,
  DEFAULT_POOL_PROFILES,
  DEFAULT_TIMEOUT_PROFILES,
  cacheTtlSeconds,
  crossCheckRelayerConfig,
  relayerConfigSchema,
  resolvePoolProfile,
  resolveTimeoutProfile,
  serviceValidationMode,
  validateRelayerConfig,
  type BackendConfig,
  type BackendType,
  type PoolProfile,
  type RelayerConfig,
  type RelayerConfigInput,
  type ServiceConfig,
  type TimeoutProfile,
} from './config.js';
export { MeterParamsError, MeterScriptReplyError } from './errors.js';
export { RelayerMetrics } from './metrics.js';
export {
  RelayMeter,
  consumeReplyToDecision,
  maxStakeUpokt,
  relayCostUpokt,
  type MeterDecision,
  type MeterInputs,
  type MeterInputsSource,
  type MeterSession,
  type RelayMeterConfig,
  type RelayMeterDeps,
  type SessionMeterMeta,
} from './relay-meter.js';
export {
  BackendPool,
  BackendRegistry,
  CircuitBreaker,
  DEFAULT_BREAKER_THRESHOLD,
  buildBackendHeaders,
  buildBackendUrl,
  cleanBackendPath,
  mergeBackendPath,
  rpcTypeToBackendType,
  type BackendAuth,
  type BackendEndpoint,
  type BackendFailureCode,
  type BackendPoolDeps,
  type BackendPoolOptions,
  type BackendRequest,
  type BackendResult,
  type BreakerState,
  type CircuitBreakerConfig,
  type HeaderContext,
  type HeaderMap,
} from './backends/index.js';
export { SharedParamsUnavailableError } from './errors.js';
export { RelaySigner, type RelaySignerDeps, type SignCode, type SignResult } from './signer.js';
export {
  MAX_PLAUSIBLE_SESSION_SPAN_BLOCKS,
  RelayValidator,
  isPlausibleSessionHeights,
  type ExpectedRingSource,
  type HeightProvider,
  type RelayValidatorConfig,
  type RelayValidatorDeps,
  type RingVerifier,
  type SessionSource,
  type SharedParamsAtHeightSource,
  type SupplierOwnership,
  type ValidateContext,
  type ValidatedRelay,
  type ValidationCode,
  type ValidationRejection,
  type ValidationResult,
} from './validator.js';
export {
  GRPC,
  RelayCore,
  meterSessionOf,
  type AdmitContext,
  type AdmittedRelay,
  type HeightSource,
  type RejectReason,
  type RelayCoreDeps,
  type RelayRefusal,
  type RelayTransport,
  type SimulationVerdict,
} from './relay-core.js';
export {
  HttpRelayHandler,
  isStreamingContentType,
  splitLines,
  type HttpRelayInput,
  type HttpSink,
} from './http-relay.js';
export { RelayServer, serviceReadiness, type RelayServerOptions } from './server.js';
export {
  SimulationAdmission,
  checkSimulationConfig,
  formatSimSessionId,
  parseSimSessionId,
  type SimAdmission,
  type SimRefusal,
  type SimTransport,
} from './simulation.js';
export { relayRequestBasicProblem, sessionHeaderProblem } from './relay-basic.js';
export {
  CacheMeterInputs,
  DEFAULT_SERVICE_FACTOR_TTL_MS,
  MeterInputUnavailableError,
  parseServiceFactor,
  type CacheMeterInputsConfig,
  type CacheMeterInputsDeps,
} from './meter-inputs.js';
export {
  DEFAULT_MINED_RELAY_PUBLISHER_CONFIG,
  MinedRelayPublisher,
  type MinedPublishResult,
  type MinedRelayCode,
  type MinedRelayInput,
  type MinedRelayPublisherConfig,
} from './mined-relay.js';
export { GATE_REFUSAL_STATUS, SupplierGate, transportLabel, type GateDecision } from './supplier-gate.js';
export { RelayPipelineMetrics } from './pipeline-metrics.js';
export { checkStakes, type StakeCheckReport, type StakedSupplier } from './stake-check.js';
export {
  WS_CLOSE,
  WebSocketBridgeMetrics,
  attachWebSocketBridge,
  type WebSocketBridge,
  type WebSocketBridgeOptions,
} from './websocket-bridge.js';
export { startWebSocketListener, type WebSocketListener } from './websocket-listener.js';
export { startGrpcServer } from './grpc-server.js';
export { LEDGER_TTL_SECONDS, RelayerLedgerCounts, type RelayerLedgerBucket } from './ledger-counts.js';
