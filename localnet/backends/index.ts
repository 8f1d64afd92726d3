/** Demo backends the local stack serves relays from (test/dev only; production never imports this). */
export { DemoBackendError, LOOPBACK, type DemoBackend } from './server-lifecycle.js';
export {
  JsonRpcBackend,
  MAX_SLOW_DELAY_MS,
  balanceOf,
  hexQuantity,
  type JsonRpcBackendOptions,
} from './jsonrpc-backend.js';
export { GZIP_DEMO_BODY, RestBackend, type RestBackendOptions } from './rest-backend.js';
export {
  WebSocketBackend,
  newHeadFor,
  type NewHead,
  type WebSocketBackendOptions,
} from './websocket-backend.js';
export {
  MAX_STREAM_INTERVAL_MS,
  MAX_STREAM_ITEMS,
  StreamingBackend,
  expectedNdjson,
  expectedSse,
  streamItem,
} from './streaming-backend.js';
export {
  DEMO_SERVICE,
  GRPC_METHODS,
  GrpcBackend,
  GrpcStatus,
  MAX_GRPC_MESSAGE_BYTES,
  decodeGrpcMessage,
  demoBlock,
  demoMessages,
  encodeGrpcFrame,
  encodeGrpcMessage,
  parseGrpcFrames,
  parseGrpcTimeoutMs,
  type DemoBlock,
  type GrpcBackendOptions,
  type GrpcFrame,
} from './grpc-backend.js';
export { startDemoBackends, type DemoBackends } from './demo-backends.js';
