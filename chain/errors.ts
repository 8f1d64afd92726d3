/**
 * Faults raised by the chain client. Each has a stable code; `retryable` says whether the same
 * call may succeed later without any change by the caller (node down, timeout, overloaded).
 */
import { RelayMinerError } from '../core/index.js';

/** The node could not be reached or answered with a transport-level failure (HTTP 5xx, reset). */
export class ChainUnavailableError extends RelayMinerError {
  constructor(what: string, opts: { cause?: unknown } = {}) {
    super('CHAIN_UNAVAILABLE', `${what}: full node unavailable`, { ...opts, retryable: true });
  }
}

/** One attempt did not complete within its deadline. */
export class ChainTimeoutError extends RelayMinerError {
  constructor(what: string, timeoutMs: number, opts: { cause?: unknown } = {}) {
    super('CHAIN_TIMEOUT', `${what}: no answer within ${timeoutMs} ms`, { ...opts, retryable: true });
  }
}

/** The node answered a JSON-RPC call with an error object (not an ABCI query failure). */
export class ChainRpcError extends RelayMinerError {
  readonly rpcCode: number;
  readonly data: string;
  constructor(method: string, rpcCode: number, message: string, data: string, retryable: boolean) {
    super('CHAIN_RPC_ERROR', `${method}: JSON-RPC error ${rpcCode} ${message}${data ? `: ${data}` : ''}`, {
      retryable,
    });
    this.rpcCode = rpcCode;
    this.data = data;
  }
}

/** The queried object does not exist on chain (gRPC NotFound / sdk ErrKeyNotFound). */
export class ChainNotFoundError extends RelayMinerError {
  constructor(what: string, log: string) {
    super('CHAIN_NOT_FOUND', `${what}: not found on chain (${log})`);
  }
}

/** The node refused the request itself (bad address, bad id, malformed protobuf). */
export class ChainInvalidRequestError extends RelayMinerError {
  constructor(what: string, log: string) {
    super('CHAIN_INVALID_REQUEST', `${what}: request refused by the node (${log})`);
  }
}

/** The node does not serve this query path (gRPC Unimplemented / "unknown query path"). */
export class ChainQueryUnimplementedError extends RelayMinerError {
  constructor(what: string, log: string) {
    super('CHAIN_QUERY_UNIMPLEMENTED', `${what}: query not served by this node (${log})`);
  }
}

/** Any other ABCI query failure: the handler ran and returned an error. */
export class ChainQueryRejectedError extends RelayMinerError {
  readonly abciCode: number;
  readonly codespace: string;
  constructor(what: string, abciCode: number, codespace: string, log: string, retryable = false) {
    super('CHAIN_QUERY_REJECTED', `${what}: query failed with ${codespace}/${abciCode} (${log})`, {
      retryable,
    });
    this.abciCode = abciCode;
    this.codespace = codespace;
  }
}

/** The node answered, but with bytes or JSON that do not have the expected shape. */
export class ChainResponseMalformedError extends RelayMinerError {
  constructor(what: string, why: string, opts: { cause?: unknown } = {}) {
    super('CHAIN_RESPONSE_MALFORMED', `${what}: ${why}`, opts);
  }
}

/** An account exists but is not a BaseAccount (module or vesting account): it cannot sign here. */
export class UnsupportedAccountTypeError extends RelayMinerError {
  constructor(address: string, typeUrl: string) {
    super('CHAIN_UNSUPPORTED_ACCOUNT_TYPE', `account ${address} has type ${typeUrl}; only BaseAccount signs`);
  }
}

/** A client method was called after close(). */
export class ChainClientClosedError extends RelayMinerError {
  constructor(what: string) {
    super('CHAIN_CLIENT_CLOSED', `${what}: client already closed`);
  }
}

/** The configuration given to a chain client is unusable. */
export class ChainConfigError extends RelayMinerError {
  constructor(key: string, why: string, opts: { cause?: unknown } = {}) {
    super('CHAIN_CONFIG_INVALID', `${key}: ${why}`, opts);
  }
}

// Cosmos SDK root codespace codes (types/errors/errors.go) that gRPCErrorToSDKError maps to.
const SDK_CODESPACE = 'sdk';
const SDK_ERR_UNKNOWN_REQUEST = 6;
const SDK_ERR_INVALID_REQUEST = 18;
/** ErrKeyNotFound: what baseapp's gRPCErrorToSDKError turns gRPC NotFound into. */
const SDK_ERR_KEY_NOT_FOUND = 22;
/** ErrNotFound: accepted too, for nodes and handlers that register it directly. */
const SDK_ERR_NOT_FOUND = 38;

/**
 * Turns a failed ABCI query (code ≠ 0) into the matching fault. Cosmos SDK baseapp maps a gRPC
 * handler's status onto its own codes: NotFound → sdk/22 (ErrKeyNotFound; sdk/38 is accepted too), InvalidArgument and FailedPrecondition
 * → sdk/18, anything else → sdk/6 with the gRPC text ("rpc error: code = X desc = …") kept in the
 * log; an unregistered path is sdk/6 "unknown query path".
 */
export function abciQueryError(what: string, code: number, codespace: string, log: string): RelayMinerError {
  const grpc = /rpc error: code = (\w+)/.exec(log)?.[1];
  const sdk = codespace === SDK_CODESPACE;
  if (
    (sdk && (code === SDK_ERR_KEY_NOT_FOUND || code === SDK_ERR_NOT_FOUND)) ||
    grpc === 'NotFound' ||
    isModuleNotFound(codespace, code)
  )
    return new ChainNotFoundError(what, log);
  if (
    grpc === 'Unimplemented' ||
    (sdk && code === SDK_ERR_UNKNOWN_REQUEST && log.includes('unknown query path'))
  ) {
    return new ChainQueryUnimplementedError(what, log);
  }
  if ((sdk && code === SDK_ERR_INVALID_REQUEST) || grpc === 'InvalidArgument') {
    return new ChainInvalidRequestError(what, log);
  }
  const transient = grpc === 'Unavailable' || grpc === 'DeadlineExceeded' || grpc === 'ResourceExhausted';
  return new ChainQueryRejectedError(what, code, codespace, log, transient);
}

// JSON-RPC 2.0 codes that mean "your request is wrong", as opposed to a server-side failure.
const RPC_PARSE_ERROR = -32700;
const RPC_INVALID_REQUEST = -32600;
const RPC_METHOD_NOT_FOUND = -32601;
const RPC_INVALID_PARAMS = -32602;

/**
 * A JSON-RPC error object from CometBFT. Request-shape errors are final; everything else (mostly
 * -32603 "Internal error", e.g. a height the node has not reached yet) may clear up on retry.
 */
export function rpcErrorFromObject(method: string, error: unknown): ChainRpcError {
  const obj = typeof error === 'object' && error !== null ? (error as Record<string, unknown>) : {};
  const code = typeof obj.code === 'number' ? obj.code : 0;
  const message = typeof obj.message === 'string' ? obj.message : '';
  const data =
    typeof obj.data === 'string' ? obj.data : obj.data === undefined ? '' : JSON.stringify(obj.data);
  // "tx (…) not found" is an answer, not an outage: asking again will not change it.
  const final =
    [RPC_PARSE_ERROR, RPC_INVALID_REQUEST, RPC_METHOD_NOT_FOUND, RPC_INVALID_PARAMS].includes(code) ||
    /\bnot found\b/i.test(data);
  return new ChainRpcError(method, code, message, data, !final);
}

/**
 * poktroll registered "not found" errors (x/proof ErrProofClaimNotFound 1106,
 * ErrProofProofNotFound 1107). A real node wraps them in gRPC NotFound (sdk/22); the localnet
 * simulator answers them bare, and they mean the same thing.
 */
const MODULE_NOT_FOUND_CODES: Readonly<Record<string, readonly number[]>> = { proof: [1106, 1107] };

function isModuleNotFound(codespace: string, code: number): boolean {
  return MODULE_NOT_FOUND_CODES[codespace]?.includes(code) ?? false;
}
