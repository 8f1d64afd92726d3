/** What every relay transport of the relay client shares: RPC types, attempt results, verification. */
import { decodePoktHttpResponse, type RelayResponse } from '../../../protocol/index.js';
import {
  verifyHttpRelayResponse,
  verifyRelayResponse,
  type EcBackend,
  type ResponseCheckCode,
} from '../../../rings/index.js';
import type { SigningContext } from '../session.js';

export const RPC_TYPES = ['jsonrpc', 'rest', 'cometbft', 'websocket', 'grpc', 'grpc-web', 'sse'] as const;
export type RpcType = (typeof RPC_TYPES)[number];

export function isRpcType(s: string): s is RpcType {
  return (RPC_TYPES as readonly string[]).includes(s);
}

/** The `Rpc-Type` header value (1 gRPC, 2 WebSocket, 3 JSON-RPC, 4 REST, 5 CometBFT). */
export const RPC_TYPE_HEADER: Readonly<Record<RpcType, string>> = {
  grpc: '1',
  'grpc-web': '1',
  websocket: '2',
  jsonrpc: '3',
  rest: '4',
  sse: '4',
  cometbft: '5',
};

/** One signed relay on its way out. */
export interface OutgoingRelay {
  /** Serialized, ring-signed RelayRequest. */
  bytes: Uint8Array;
  ctx: SigningContext;
}

export type AttemptResult =
  | {
      ok: true;
      /** The backend's status inside the signed answer (HTTP status; 200 for WebSocket data frames). */
      status: number;
      body: Uint8Array;
      /** Signed responses verified for this relay (stream batches count one each). */
      verified: number;
    }
  | { ok: false; reason: string; message: string; retryable: boolean };

export function failure(reason: string, message: string, retryable = false): AttemptResult {
  return { ok: false, reason, message, retryable };
}

export interface RelayTransport {
  send(relay: OutgoingRelay, signal: AbortSignal): Promise<AttemptResult>;
  close(): Promise<void>;
}

/** `RESPONSE_SIGNATURE_INVALID` → `response_signature_invalid`. */
export function reasonOf(code: ResponseCheckCode): string {
  return code.toLowerCase();
}

/**
 * The JSON-RPC error of a body, if it has one: `{"error": ...}` or a batch with an erroring
 * element. Bodies that are not JSON are not JSON-RPC errors.
 */
export function jsonRpcError(body: Uint8Array): string | undefined {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    return undefined;
  }
  const items = Array.isArray(v) ? v : [v];
  for (const item of items) {
    if (item !== null && typeof item === 'object' && 'error' in item) {
      const e = (item as { error: unknown }).error;
      if (e !== null && e !== undefined) return JSON.stringify(e);
    }
  }
  return undefined;
}

export interface CheckOptions {
  /** Check the inner body for a JSON-RPC error field. */
  jsonRpc: boolean;
}

/** Verifies one signed HTTP-family answer (supplier signature, header, hash) and its inner status. */
export function checkHttpAnswer(
  backend: EcBackend,
  bytes: Uint8Array,
  ctx: SigningContext,
): { ok: true; status: number; body: Uint8Array } | { ok: false; reason: string; message: string } {
  const v = verifyHttpRelayResponse(backend, bytes, ctx.supplierPublicKey, ctx.header);
  if (!v.ok) return { ok: false, reason: reasonOf(v.code), message: v.reason };
  return { ok: true, status: v.status, body: v.body };
}

/** The final verdict on a verified body: backend status and the JSON-RPC error field. */
export function judgeBody(
  status: number,
  body: Uint8Array,
  verified: number,
  o: CheckOptions,
): AttemptResult {
  if (status < 200 || status > 299) {
    return failure(
      `backend_status_${status}`,
      `the backend answered ${status}: ${Buffer.from(body.subarray(0, 200)).toString('utf8')}`,
    );
  }
  if (o.jsonRpc) {
    const err = jsonRpcError(body);
    if (err !== undefined) return failure('jsonrpc_error', `JSON-RPC error: ${err}`);
  }
  return { ok: true, status, body, verified };
}

/**
 * Verifies one WebSocket frame from the relayer: a supplier-signed RelayResponse whose payload is
 * either raw data (starts with `{` or `[`) or a POKTHTTPResponse envelope carrying an error status.
 */
export function checkWebSocketFrame(
  backend: EcBackend,
  frame: Uint8Array,
  ctx: SigningContext,
):
  | { ok: true; response: RelayResponse; status: number; body: Uint8Array }
  | { ok: false; reason: string; message: string } {
  const v = verifyRelayResponse(backend, frame, ctx.supplierPublicKey, ctx.header);
  if (!v.ok) return { ok: false, reason: reasonOf(v.code), message: v.reason };
  const payload = v.response.payload;
  let i = 0;
  while (
    i < payload.length &&
    (payload[i] === 0x20 || payload[i] === 0x0a || payload[i] === 0x0d || payload[i] === 0x09)
  )
    i++;
  if (payload.length === 0 || payload[i] === 0x7b || payload[i] === 0x5b) {
    return { ok: true, response: v.response, status: 200, body: payload };
  }
  const env = decodePoktHttpResponse(payload);
  if (!env.ok) return { ok: true, response: v.response, status: 200, body: payload };
  return { ok: true, response: v.response, status: env.value.statusCode, body: env.value.bodyBz };
}

/** Reason and retryability of a thrown transport error. */
export function transportFailure(err: unknown, signal: AbortSignal): AttemptResult {
  if (signal.aborted) {
    const r: unknown = signal.reason;
    if (r instanceof Error && r.name === 'TimeoutError')
      return failure('timeout', 'the relay timed out', true);
    return failure('cancelled', 'the attempt was cancelled', false);
  }
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (err as { code?: string }).code;
  const text = cause?.message ?? (err instanceof Error ? err.message : String(err));
  return failure('connection_error', code !== undefined ? `${code}: ${text}` : text, true);
}
