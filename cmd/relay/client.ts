/**
 * One relay as PATH sends it: the current session's signing context, a ring-signed RelayRequest
 * (gateway key under delegation, or the application's own), the transport of the RPC type, a
 * retry on another attempt when the relayer failed quickly, and an optional hedged second
 * request after `hedgeMs` (first good answer wins). Every answer is verified before it counts.
 */
import { encodeGrpcFrame } from '../../core/index.js';
import { encodePoktHttpRequest, encodeRelayRequest } from '../../protocol/index.js';
import { signGatewayRelayRequest, type EcBackend } from '../../rings/index.js';
import { EXIT, RelayClientError, type SessionResolver, type SigningContext } from './session.js';
import { GrpcTransport } from './transports/grpc.js';
import { HttpTransport } from './transports/http.js';
import {
  RPC_TYPE_HEADER,
  failure,
  type AttemptResult,
  type RelayTransport,
  type RpcType,
} from './transports/types.js';
import { WebSocketTransport, judgeFrame } from './transports/websocket.js';

/** What the user asked the backend; turned into the relay payload per RPC type. */
export interface RelayPayloadSpec {
  /** HTTP method inside the relay (REST, CometBFT, SSE); POST for JSON-RPC and gRPC. */
  method: string;
  /** Path and query inside the relay (REST, CometBFT, SSE) or the gRPC method (`/pkg.Svc/Method`). */
  path: string;
  body: Uint8Array;
  headers: Record<string, string>;
}

/** The payload a health-check relay carries per RPC type (a cheap read of the chain head). */
export function healthCheckPayload(rpcType: RpcType): RelayPayloadSpec {
  const rpc = Buffer.from('{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}');
  switch (rpcType) {
    case 'rest':
    case 'sse':
      return { method: 'GET', path: '/health', body: new Uint8Array(), headers: {} };
    case 'cometbft':
      return { method: 'GET', path: '/status', body: new Uint8Array(), headers: {} };
    case 'grpc':
    case 'grpc-web':
      return { method: 'POST', path: '/grpc.health.v1.Health/Check', body: new Uint8Array(), headers: {} };
    default:
      return { method: 'POST', path: '/', body: rpc, headers: {} };
  }
}

/** Relay payload bytes: POKTHTTPRequest (HTTP family, gRPC) or the raw frame (WebSocket). */
export function buildPayload(rpcType: RpcType, spec: RelayPayloadSpec): Uint8Array {
  if (rpcType === 'websocket') return spec.body;
  if (rpcType === 'grpc' || rpcType === 'grpc-web') {
    return encodePoktHttpRequest({
      method: 'POST',
      url: spec.path,
      headers: Object.entries({ 'content-type': 'application/grpc', ...spec.headers }).map(
        ([k, v]) => [k, [v]] as const,
      ),
      body: encodeGrpcFrame(spec.body),
    });
  }
  const url = rpcType === 'jsonrpc' ? '' : spec.path;
  return encodePoktHttpRequest({
    method: rpcType === 'jsonrpc' ? 'POST' : spec.method,
    url,
    headers: Object.entries({ 'Content-Type': 'application/json', ...spec.headers }).map(
      ([k, v]) => [k, [v]] as const,
    ),
    body: spec.body,
  });
}

/** Signs `payload` for the context's session and supplier. */
export function signRelay(backend: EcBackend, ctx: SigningContext, payload: Uint8Array): Uint8Array {
  const request = signGatewayRelayRequest(backend, {
    header: ctx.header,
    supplierOperatorAddress: ctx.supplierAddress,
    payload,
    ringPublicKeys: ctx.ringPublicKeys,
    signerIndex: ctx.signerIndex,
    signerPrivateKey: ctx.signerPrivateKey,
  });
  return encodeRelayRequest(request);
}

export interface TransportOptions {
  backend: EcBackend;
  rpcType: RpcType;
  url: string;
}

/** The transport of an RPC type. */
export function createTransport(o: TransportOptions): RelayTransport {
  switch (o.rpcType) {
    case 'grpc':
    case 'grpc-web':
      return new GrpcTransport({ backend: o.backend, url: o.url, web: o.rpcType === 'grpc-web' });
    case 'websocket':
      return new WebSocketTransport({
        backend: o.backend,
        url: o.url.replace(/^http(s?):/, 'ws$1:'),
        jsonRpc: true,
        handshakeSignature: (ctx) => handshakeSignature(o.backend, ctx),
      });
    default:
      return new HttpTransport({
        backend: o.backend,
        url: o.url,
        rpcTypeHeader: RPC_TYPE_HEADER[o.rpcType],
        jsonRpc: o.rpcType === 'jsonrpc' || o.rpcType === 'cometbft',
      });
  }
}

/** `Pocket-Signature`: the ring signature of a RelayRequest with an empty payload. */
function handshakeSignature(backend: EcBackend, ctx: SigningContext): Uint8Array {
  const request = signGatewayRelayRequest(backend, {
    header: ctx.header,
    supplierOperatorAddress: ctx.supplierAddress,
    payload: new Uint8Array(),
    ringPublicKeys: ctx.ringPublicKeys,
    signerIndex: ctx.signerIndex,
    signerPrivateKey: ctx.signerPrivateKey,
  });
  return request.meta!.signature;
}

export interface RelayClientOptions {
  backend: EcBackend;
  resolver: Pick<SessionResolver, 'current'>;
  transport: RelayTransport;
  rpcType: RpcType;
  payload: RelayPayloadSpec;
  /** Per-attempt timeout (PATH: relay_timeout, 10 s). */
  timeoutMs: number;
  /** Further attempts after a retryable failure (PATH: 1). */
  retries: number;
  /** Retry only when the failed attempt took less than this; 0 = always (PATH: 500 ms). */
  retryWithinMs: number;
  /** Start a hedged second request when the first has not answered after this long; 0 = off. */
  hedgeMs: number;
}

export interface RelayOutcome {
  ok: boolean;
  /** Failure reason (`response_signature_invalid`, `relayer_http_503`, `timeout`, …). */
  reason?: string;
  message?: string;
  latencyMs: number;
  /** Attempts sent, hedges included. */
  attempts: number;
  /** Whether a hedged request was sent. */
  hedged: boolean;
  status?: number;
  body?: Uint8Array;
  /** Signed responses verified (stream batches count one each). */
  verified: number;
}

export class RelayClient {
  private readonly payload: Uint8Array;

  constructor(private readonly o: RelayClientOptions) {
    this.payload = buildPayload(o.rpcType, o.payload);
  }

  /** Sends one relay with retries and hedging; never throws for relay failures. */
  async relay(): Promise<RelayOutcome> {
    const start = performance.now();
    let attempts = 0;
    let hedged = false;
    let last: AttemptResult = failure('not_sent', 'no attempt was made');
    for (let round = 0; round <= this.o.retries; round++) {
      const roundStart = performance.now();
      const r = await this.hedgedAttempt();
      attempts += r.attempts;
      hedged ||= r.hedged;
      last = r.result;
      if (last.ok || !last.retryable) break;
      const took = performance.now() - roundStart;
      if (this.o.retryWithinMs > 0 && took >= this.o.retryWithinMs) break;
    }
    const latencyMs = performance.now() - start;
    if (last.ok) {
      return {
        ok: true,
        latencyMs,
        attempts,
        hedged,
        status: last.status,
        body: last.body,
        verified: last.verified,
      };
    }
    return {
      ok: false,
      reason: last.reason,
      message: last.message,
      latencyMs,
      attempts,
      hedged,
      verified: 0,
    };
  }

  private async attempt(signal: AbortSignal): Promise<AttemptResult> {
    const ctx = await this.o.resolver.current();
    const bytes = signRelay(this.o.backend, ctx, this.payload);
    return this.o.transport.send({ bytes, ctx }, signal);
  }

  private hedgedAttempt(): Promise<{ result: AttemptResult; attempts: number; hedged: boolean }> {
    return new Promise((resolve) => {
      const controllers: AbortController[] = [];
      const results: AttemptResult[] = [];
      let settled = false;
      let hedgeFired = false;
      let hedgeTimer: NodeJS.Timeout | undefined;
      const finish = (result: AttemptResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(hedgeTimer);
        for (const c of controllers) c.abort(new Error('another attempt answered'));
        resolve({ result, attempts: controllers.length, hedged: controllers.length > 1 });
      };
      const launch = (): void => {
        const c = new AbortController();
        controllers.push(c);
        const signal = AbortSignal.any([c.signal, AbortSignal.timeout(this.o.timeoutMs)]);
        void this.attempt(signal)
          .catch((err: unknown) =>
            err instanceof RelayClientError
              ? failure('session_unavailable', err.message, err.exitCode === EXIT.CHAIN)
              : failure('client_error', err instanceof Error ? err.message : String(err)),
          )
          .then((r) => {
            results.push(r);
            // A failure before the hedge fired ends the round (the retry layer decides what next);
            // after it, the round ends when every attempt has answered or one succeeded.
            if (r.ok || !hedgeFired || results.length === controllers.length) {
              finish(r.ok ? r : results[0]!);
            }
          });
      };
      launch();
      if (this.o.hedgeMs > 0) {
        hedgeTimer = setTimeout(() => {
          hedgeFired = true;
          if (!settled) launch();
        }, this.o.hedgeMs);
      }
    });
  }
}

export interface SubscriptionOptions {
  backend: EcBackend;
  resolver: Pick<SessionResolver, 'current'>;
  transport: WebSocketTransport;
  /** The subscribe request frame, e.g. `{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}`. */
  body: Uint8Array;
  /** Pushes to receive and verify after the subscription is confirmed. */
  pushes: number;
  /** Longest wait for the reply and for each push. */
  timeoutMs: number;
}

export interface SubscriptionResult {
  subscriptionId: string | undefined;
  /** The reply first, then one outcome per push (latency = wait since the previous frame). */
  outcomes: RelayOutcome[];
}

function outcomeOf(r: AttemptResult, latencyMs: number): RelayOutcome {
  return r.ok
    ? {
        ok: true,
        latencyMs,
        attempts: 1,
        hedged: false,
        status: r.status,
        body: r.body,
        verified: r.verified,
      }
    : { ok: false, reason: r.reason, message: r.message, latencyMs, attempts: 1, hedged: false, verified: 0 };
}

/** `eth_subscribe` over one connection: the signed reply, then every push verified on its own. */
export async function runSubscription(o: SubscriptionOptions): Promise<SubscriptionResult> {
  const ctx = await o.resolver.current();
  const outcomes: RelayOutcome[] = [];
  let t = performance.now();
  let conn;
  try {
    conn = await o.transport.connect(ctx, AbortSignal.timeout(o.timeoutMs));
  } catch (err) {
    const r = failure('connection_error', err instanceof Error ? err.message : String(err));
    return { subscriptionId: undefined, outcomes: [outcomeOf(r, performance.now() - t)] };
  }
  try {
    conn.send(signRelay(o.backend, ctx, o.body));
    const frame = async (): Promise<AttemptResult> => {
      try {
        return judgeFrame(o.backend, await conn.next(AbortSignal.timeout(o.timeoutMs)), ctx, true);
      } catch {
        return failure('timeout', `no frame within ${o.timeoutMs} ms`);
      }
    };
    const reply = await frame();
    outcomes.push(outcomeOf(reply, performance.now() - t));
    if (!reply.ok) return { subscriptionId: undefined, outcomes };
    let subscriptionId: string | undefined;
    try {
      const v = JSON.parse(Buffer.from(reply.body).toString('utf8')) as { result?: unknown };
      if (typeof v.result === 'string') subscriptionId = v.result;
    } catch {
      subscriptionId = undefined;
    }
    for (let i = 0; i < o.pushes; i++) {
      t = performance.now();
      const push = await frame();
      outcomes.push(outcomeOf(push, performance.now() - t));
      if (!push.ok) break;
    }
    return { subscriptionId, outcomes };
  } finally {
    await conn.close();
  }
}
