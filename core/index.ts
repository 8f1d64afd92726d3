export { RelayMinerError, InvalidInputError, isRetryable } from './errors.js';
export {
  hexToBytes,
  bytesToHex,
  concatBytes,
  compareBytes,
  equalBytes,
  bytesToBigInt,
  bigIntToBytes,
  bigIntToMinimalBytes,
  constantTimeEqual,
} from './bytes.js';
export { Cancellation, type CancelSignal } from './cancellation.js';
export { VERSION } from './version.js';
export { createLogger, formatTextLine } from './log.js';
export {
  splitListenAddr,
  startOpsServer,
  type OpsReply,
  type OpsRoute,
  type OpsServer,
} from './ops-server.js';
export {
  GRPC_FLAG_COMPRESSED,
  GRPC_FRAME_HEADER_BYTES,
  GRPC_WEB_FLAG_TRAILERS,
  GrpcFrameDecoder,
  GrpcStatus,
  decodeGrpcMessage,
  decodeGrpcWebText,
  encodeGrpcFrame,
  encodeGrpcMessage,
  encodeGrpcWebTrailers,
  grpcStatusName,
  parseGrpcFrames,
  parseGrpcTimeoutMs,
  parseGrpcWebTrailers,
  type GrpcFrame,
  type GrpcFramePush,
  type GrpcStatusName,
  type RawGrpcFrame,
} from './grpc-frame.js';
