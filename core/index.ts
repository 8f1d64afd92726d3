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
export { VERSION } from './version.js';
export { createLogger, formatTextLine } from './log.js';
export { splitListenAddr, startOpsServer, type OpsReply, type OpsRoute, type OpsServer } from './ops-server.js';
