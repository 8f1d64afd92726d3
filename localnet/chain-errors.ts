/**
 * Transaction and query failures as the chain reports them: codespace, code and log. These are
 * values (a rejected tx is an expected outcome), never exceptions.
 *
 * Codes: cosmos-sdk `types/errors` (codespace `sdk`) and poktroll's module registrations
 * (`x/proof/types/errors.go`, codespace `proof`; `x/session/types/errors.go`, codespace `session`).
 */
export interface ChainError {
  codespace: string;
  code: number;
  log: string;
}

/** cosmos-sdk root errors used by the ante handler and tx decoding. */
export const SDK = {
  TX_DECODE: { code: 2, text: 'tx parse error' },
  INVALID_SEQUENCE: { code: 3, text: 'invalid sequence' },
  UNAUTHORIZED: { code: 4, text: 'unauthorized' },
  INSUFFICIENT_FUNDS: { code: 5, text: 'insufficient funds' },
  UNKNOWN_REQUEST: { code: 6, text: 'unknown request' },
  INVALID_ADDRESS: { code: 7, text: 'invalid address' },
  INVALID_PUBKEY: { code: 8, text: 'invalid pubkey' },
  UNKNOWN_ADDRESS: { code: 9, text: 'unknown address' },
  OUT_OF_GAS: { code: 11, text: 'out of gas' },
  INSUFFICIENT_FEE: { code: 13, text: 'insufficient fee' },
  NO_SIGNATURES: { code: 15, text: 'no signatures supplied' },
  INVALID_REQUEST: { code: 18, text: 'invalid request' },
  TX_IN_MEMPOOL_CACHE: { code: 19, text: 'tx already in mempool' },
  KEY_NOT_FOUND: { code: 22, text: 'key not found' },
  INVALID_CHAIN_ID: { code: 28, text: 'invalid chain-id' },
  TX_TIMEOUT_HEIGHT: { code: 30, text: 'tx timeout height' },
  WRONG_SEQUENCE: { code: 32, text: 'incorrect account sequence' },
  UNPACK_ANY: { code: 34, text: 'failed unpacking protobuf message from Any' },
  NOT_FOUND: { code: 38, text: 'not found' },
  TX_TIMEOUT: { code: 42, text: 'tx timeout' },
} as const;

/** poktroll x/proof registered errors (v0.1.35). */
export const PROOF = {
  INVALID_ADDRESS: { code: 1101, text: 'invalid address' },
  NOT_FOUND: { code: 1102, text: 'supplier not found' },
  INVALID_SERVICE: { code: 1103, text: 'invalid service in supplier' },
  INVALID_CLAIM_ROOT_HASH: { code: 1104, text: 'invalid root hash' },
  INVALID_QUERY_REQUEST: { code: 1105, text: 'invalid query request' },
  CLAIM_NOT_FOUND: { code: 1106, text: 'claim not found' },
  PROOF_NOT_FOUND: { code: 1107, text: 'proof not found' },
  INVALID_PROOF: { code: 1108, text: 'invalid proof' },
  INVALID_RELAY: { code: 1109, text: 'invalid relay' },
  INVALID_RELAY_REQUEST: { code: 1110, text: 'invalid relay request' },
  INVALID_RELAY_RESPONSE: { code: 1111, text: 'invalid relay response' },
  PUBKEY_NOT_FOUND: { code: 1114, text: 'public key not found' },
  INVALID_SESSION_HEADER: { code: 1115, text: 'invalid session header' },
  INVALID_SESSION_ID: { code: 1116, text: 'invalid session ID' },
  INVALID_SESSION_END_HEIGHT: { code: 1117, text: 'invalid session end height' },
  INVALID_SESSION_START_HEIGHT: { code: 1118, text: 'invalid session start height' },
  CLAIM_OUTSIDE_OF_WINDOW: { code: 1121, text: "claim attempted outside of the session's claim window" },
  PROOF_OUTSIDE_OF_WINDOW: { code: 1122, text: "proof attempted outside of the session's proof window" },
  SUPPLIER_MISMATCH: { code: 1123, text: 'supplier operator address does not match the claim or proof' },
  SERVICE_NOT_FOUND: { code: 1125, text: 'service not found' },
  COMPUTE_UNITS_MISMATCH: {
    code: 1126,
    text: 'mismatch: claim compute units != number of relays * service compute units per relay',
  },
  NOT_ENOUGH_FUNDS: { code: 1127, text: 'not enough funds to submit proof' },
  PROOF_NOT_REQUIRED: { code: 1129, text: 'proof not required' },
  INVALID_RELAY_DIFFICULTY: { code: 1130, text: 'invalid relay difficulty' },
} as const;

/** poktroll x/session registered errors. */
export const SESSION = {
  HYDRATION: { code: 1101, text: 'error during session hydration' },
  APP_NOT_FOUND: { code: 1102, text: 'application for session not found not found ' },
  APP_NOT_STAKED_FOR_SERVICE: { code: 1103, text: 'application in session not staked for requested service' },
  SUPPLIERS_NOT_FOUND: { code: 1104, text: 'no suppliers not found for session' },
  INVALID_APP_ADDRESS: { code: 1105, text: 'invalid application address for session' },
  INVALID_BLOCK_HEIGHT: { code: 1107, text: 'invalid block height for session' },
  APP_NOT_ACTIVE: { code: 1109, text: 'application is not active' },
} as const;

export interface RegisteredError {
  code: number;
  text: string;
}

/** A registered error wrapped with detail, formatted like errorsmod.Wrap: "detail: text". */
export function chainError(codespace: string, err: RegisteredError, detail?: string): ChainError {
  return { codespace, code: err.code, log: detail === undefined ? err.text : `${detail}: ${err.text}` };
}

export function sdkError(err: RegisteredError, detail?: string): ChainError {
  return chainError('sdk', err, detail);
}

export function proofError(err: RegisteredError, detail?: string): ChainError {
  return chainError('proof', err, detail);
}

/**
 * The gRPC status codes a pocket msg server wraps its errors in. Upstream returns
 * `status.Error(code, err.Error())`, so the log text reads `rpc error: code = X desc = …`.
 */
export type GrpcCode = 'InvalidArgument' | 'FailedPrecondition' | 'NotFound' | 'Internal';

/** A message handler failure: the log is what the SDK writes for message `index`. */
export function msgFailure(index: number, grpc: GrpcCode, inner: ChainError): ChainError {
  return {
    codespace: inner.codespace,
    code: inner.code,
    log: `failed to execute message; message index: ${index}: rpc error: code = ${grpc} desc = ${inner.log}`,
  };
}
