/**
 * The gRPC listener (relayer.md §7): `pocket.service.RelayService/SendRelay` over native gRPC
 * (HTTP/2 cleartext with prior knowledge) and gRPC-Web (HTTP/1.1 or HTTP/2; binary or base64
 * text bodies; trailers in a 0x80 body frame; permissive CORS) on one port. The first bytes of a
 * connection pick the protocol: the HTTP/2 preface goes to a node:http2 server (at most 250
 * concurrent streams per connection), anything else to a node:http server.
 *
 * Every call takes the same path as an HTTP relay: strict decode → service → backend type →
 * admission through RelayCore (supplier gate, validation, meter) → backend → signed
 * RelayResponse → background publish. Refusals are gRPC statuses with the refusal's message.
 *
 * Deliberate differences from upstream:
 * - Native gRPC relays are validated, metered and gated like every other transport.
 * - A backend transport failure is `UNAVAILABLE` (timeout: `DEADLINE_EXCEEDED`), never a signed
 *   error response, and the relay's metered cost is given back.
 * - Framing violations (no message, several messages, truncated frame) are `INTERNAL`, as gRPC
 *   itself reports protocol violations.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { Counter, Registry } from 'prom-client';
import {
  Cancellation,
  GRPC_FLAG_COMPRESSED,
  GRPC_WEB_FLAG_TRAILERS,
  GrpcFrameDecoder,
  GrpcStatus,
  decodeGrpcWebText,
  encodeGrpcFrame,
  encodeGrpcMessage,
  encodeGrpcWebTrailers,
  grpcStatusName,
  parseGrpcTimeoutMs,
  type CancelSignal,
} from '../core/index.js';
import { encodePoktHttpResponse, type pb } from '../protocol/index.js';
import {
  buildBackendHeaders,
  rpcTypeToBackendType,
  type BackendPool,
  type HeaderMap,
} from './backends/index.js';
import { BACKEND_TYPES, resolveTimeoutProfile } from './config.js';
import { forwardGrpc, H2cClient, type GrpcForwardResult } from './grpc-backend.js';
import type { AdmitContext, AdmittedRelay, RejectReason, RelayCore, RelayRefusal } from './relay-core.js';
import { readCapped } from './http-relay.js';

export const SEND_RELAY_PATH = '/pocket.service.RelayService/SendRelay';
/** HTTP/2 streams per connection (upstream's value). */
export const GRPC_MAX_CONCURRENT_STREAMS = 250;
/** A connection that sends nothing for this long is closed before a protocol is picked. */
export const FIRST_BYTES_TIMEOUT_MS = 10_000;
/** Largest backend body read for one relay (relayer.md §8). */
export const MAX_GRPC_BACKEND_BODY_BYTES = 200 * 1024 * 1024;

const HTTP2_PREFACE_START = Buffer.from('PRI');
const GRPC_WEB_EXPOSED_HEADERS = 'grpc-status, grpc-message, grpc-status-details-bin';
const GRPC_WEB_DEFAULT_ALLOWED_HEADERS =
  'content-type, x-grpc-web, x-user-agent, grpc-timeout, rpc-type, pocket-simulation-key-id, pocket-service-id';

/** The gRPC listener's own series (the relay counters live in RelayerMetrics). */
export class GrpcRelayMetrics {
  readonly requests: Counter<'service_id' | 'code'>;
  readonly webRequests: Counter<'service_id'>;

  constructor(registry: Registry) {
    this.requests = counter(
      registry,
      'ha_relayer_grpc_requests_total',
      'gRPC and gRPC-Web relay calls by status code',
      ['service_id', 'code'],
    );
    this.webRequests = counter(registry, 'ha_relayer_grpc_web_requests_total', 'gRPC-Web relay calls', [
      'service_id',
    ]);
  }
}

function counter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: L[],
): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing !== undefined) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

export interface GrpcServerOptions {
  host: string;
  port: number;
  /** Largest request message (after decompression) accepted. */
  maxMessageBytes: number;
  /**
   * Slow clients: the request headers (HTTP/1.1) must arrive within `headerTimeoutMs`, and the
   * whole request message of a call within `readTimeoutMs` of its start, else the call ends with
   * DEADLINE_EXCEEDED (HTTP/2) or the connection is closed (HTTP/1.1). Defaults 10 s and 30 s.
   */
  headerTimeoutMs?: number;
  readTimeoutMs?: number;
  registry?: Registry;
}

/** Defaults of GrpcServerOptions.headerTimeoutMs / readTimeoutMs (grpc.header_timeout_seconds, …). */
export const GRPC_HEADER_TIMEOUT_MS = 10_000;
export const GRPC_READ_TIMEOUT_MS = 30_000;

export interface GrpcRelayServer {
  readonly port: number;
  readonly metrics: GrpcRelayMetrics;
  /** Stops accepting, lets calls in flight finish for up to `graceMs`, then drops what is left. */
  close(graceMs: number): Promise<void>;
}

/* ---------- one call, whichever protocol carried it ---------- */

type WebMode = 'binary' | 'text';

interface CallIo {
  readonly web: WebMode | undefined;
  readonly headers: http.IncomingHttpHeaders;
  /** Fires when the client went away before the answer. */
  readonly signal: CancelSignal;
  /** Sends the RelayResponse message (status OK). */
  replyMessage(message: Uint8Array): void;
  /** Sends a status without a message; `unread` when the request body was not consumed. */
  replyStatus(code: number, message: string, unread?: boolean): void;
}

type BodyRead = { ok: true; message: Buffer } | { ok: false; code: number; message: string; unread: boolean };

function refusalOf(reason: RejectReason, message: string, grpcCode: number, httpStatus = 503): RelayRefusal {
  return { ok: false, reason, message, httpStatus, grpcCode, wsCloseCode: 1011 };
}

function first(h: http.IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

function mediaType(h: http.IncomingHttpHeaders): string {
  return (first(h, 'content-type') ?? '').split(';', 1)[0]!.trim().toLowerCase();
}

const WEB_TYPES: Readonly<Record<string, WebMode>> = {
  'application/grpc-web': 'binary',
  'application/grpc-web+proto': 'binary',
  'application/grpc-web-text': 'text',
  'application/grpc-web-text+proto': 'text',
};

/**
 * Reads the one request message of a unary call: frames checked as they arrive (a frame header
 * over the limit stops reading at once), exactly one message, gzip per `grpc-encoding`.
 */
function readUnaryMessage(
  src: Readable,
  opts: { maxMessageBytes: number; web: WebMode | undefined; encoding: string; readTimeoutMs: number },
): Promise<BodyRead> {
  return new Promise<BodyRead>((resolve) => {
    const decoder = new GrpcFrameDecoder(opts.maxMessageBytes);
    let message: { flags: number; message: Buffer } | undefined;
    let text = '';
    let done = false;
    // A client trickling its request must not hold the stream (and its memory) open without bound.
    const timer = setTimeout(
      () =>
        stop({
          ok: false,
          code: GrpcStatus.DEADLINE_EXCEEDED,
          message: `request message not received within ${opts.readTimeoutMs} ms`,
          unread: true,
        }),
      opts.readTimeoutMs,
    );
    const stop = (r: BodyRead): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      src.removeListener('data', onData);
      src.removeListener('end', onEnd);
      src.removeListener('error', onError);
      src.removeListener('close', onClose);
      if (!r.ok && r.unread) src.pause();
      resolve(r);
    };
    const feed = (bytes: Uint8Array): boolean => {
      const pushed = decoder.push(bytes);
      if (!pushed.ok) {
        stop({
          ok: false,
          code: GrpcStatus.RESOURCE_EXHAUSTED,
          message: `request message of ${pushed.declaredBytes} bytes exceeds the limit of ${pushed.maxMessageBytes} bytes`,
          unread: true,
        });
        return false;
      }
      for (const f of pushed.frames) {
        if (message !== undefined) {
          stop({
            ok: false,
            code: GrpcStatus.INTERNAL,
            message: 'unary call carried more than one request message',
            unread: true,
          });
          return false;
        }
        message = f;
      }
      if (message !== undefined && decoder.pendingBytes > 0) {
        stop({
          ok: false,
          code: GrpcStatus.INTERNAL,
          message: 'unary call carried more than one request message',
          unread: true,
        });
        return false;
      }
      return true;
    };
    const onData = (chunk: Buffer | string): void => {
      if (done) return;
      if (opts.web !== 'text') {
        feed(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
        return;
      }
      text += (typeof chunk === 'string' ? chunk : chunk.toString('latin1')).replace(/\s+/g, '');
      const whole = text.length - (text.length % 4);
      if (whole === 0) return;
      const decoded = decodeGrpcWebText(text.slice(0, whole));
      text = text.slice(whole);
      if (decoded === undefined) {
        stop({
          ok: false,
          code: GrpcStatus.INVALID_ARGUMENT,
          message: 'grpc-web-text body is not base64',
          unread: true,
        });
        return;
      }
      feed(decoded);
    };
    const onEnd = (): void => {
      if (done) return;
      if (text.length > 0) {
        const decoded = decodeGrpcWebText(text);
        text = '';
        if (decoded === undefined) {
          stop({
            ok: false,
            code: GrpcStatus.INVALID_ARGUMENT,
            message: 'grpc-web-text body is not base64',
            unread: false,
          });
          return;
        }
        if (!feed(decoded)) return;
      }
      if (message === undefined || decoder.pendingBytes > 0) {
        stop({
          ok: false,
          code: GrpcStatus.INTERNAL,
          message:
            decoder.pendingBytes > 0
              ? 'request ends inside a message frame'
              : 'unary call carried no request message',
          unread: false,
        });
        return;
      }
      if ((message.flags & GRPC_WEB_FLAG_TRAILERS) !== 0) {
        stop({
          ok: false,
          code: GrpcStatus.INTERNAL,
          message: 'request carried a trailer frame',
          unread: false,
        });
        return;
      }
      if ((message.flags & GRPC_FLAG_COMPRESSED) === 0) {
        stop({ ok: true, message: message.message });
        return;
      }
      if (opts.encoding !== 'gzip') {
        stop({
          ok: false,
          code: GrpcStatus.INTERNAL,
          message: `compressed message with grpc-encoding ${opts.encoding}`,
          unread: false,
        });
        return;
      }
      try {
        stop({ ok: true, message: gunzipSync(message.message, { maxOutputLength: opts.maxMessageBytes }) });
      } catch (err) {
        const tooBig = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
        stop({
          ok: false,
          code: tooBig ? GrpcStatus.RESOURCE_EXHAUSTED : GrpcStatus.INTERNAL,
          message: tooBig
            ? `decompressed request message exceeds the limit of ${opts.maxMessageBytes} bytes`
            : 'gzip request message does not decompress',
          unread: false,
        });
      }
    };
    const onError = (): void =>
      stop({ ok: false, code: GrpcStatus.CANCELLED, message: 'request stream failed', unread: false });
    // Closed before its end: the client went away mid-request.
    const onClose = (): void =>
      stop({ ok: false, code: GrpcStatus.CANCELLED, message: 'client went away', unread: false });
    src.on('data', onData);
    src.on('end', onEnd);
    src.on('error', onError);
    src.on('close', onClose);
  });
}

/* ---------- protocol adapters ---------- */

function nativeIo(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): CallIo {
  const stream = req.stream;
  const cancel = new Cancellation();
  let answered = false;
  stream.on('close', () => {
    if (!answered) cancel.abort(new Error('client disconnected'));
  });
  stream.on('error', () => undefined);
  const base = { 'content-type': 'application/grpc+proto', 'grpc-accept-encoding': 'identity,gzip' };
  return {
    web: undefined,
    headers: req.headers,
    signal: cancel,
    replyMessage(message) {
      if (answered || stream.destroyed) return;
      answered = true;
      // The compatibility response owns the stream's trailers: headers, one message, then grpc-status.
      res.writeHead(200, base);
      res.addTrailers({ 'grpc-status': '0' });
      res.end(encodeGrpcFrame(message));
    },
    replyStatus(code, message, unread = false) {
      if (answered || stream.destroyed) return;
      answered = true;
      // Trailers-only answer: the status travels in the one HEADERS frame, which ends the stream.
      stream.respond(
        {
          ':status': 200,
          ...base,
          'grpc-status': String(code),
          ...(message === '' ? {} : { 'grpc-message': encodeGrpcMessage(message) }),
        },
        { endStream: true },
      );
      // The rest of an unread request is refused at the HTTP/2 level instead of being received.
      if (unread) setImmediate(() => stream.close(http2.constants.NGHTTP2_NO_ERROR));
    },
  };
}

function corsHeaders(h: http.IncomingHttpHeaders): Record<string, string> {
  const origin = first(h, 'origin');
  return origin === undefined || origin === ''
    ? { 'access-control-allow-origin': '*', 'access-control-expose-headers': GRPC_WEB_EXPOSED_HEADERS }
    : {
        'access-control-allow-origin': origin,
        'access-control-allow-credentials': 'true',
        'access-control-expose-headers': GRPC_WEB_EXPOSED_HEADERS,
        vary: 'Origin',
      };
}

type CompatRequest = http.IncomingMessage | http2.Http2ServerRequest;
type CompatResponse = http.ServerResponse | http2.Http2ServerResponse;

function webIo(req: CompatRequest, res: CompatResponse, mode: WebMode): CallIo {
  const cancel = new Cancellation();
  let answered = false;
  res.on('close', () => {
    if (!answered) cancel.abort(new Error('client disconnected'));
  });
  const send = (body: Buffer, unread: boolean): void => {
    if (answered || res.destroyed) return;
    answered = true;
    const out = mode === 'text' ? Buffer.from(body.toString('base64'), 'latin1') : body;
    const headers: Record<string, string> = {
      'content-type': mode === 'text' ? 'application/grpc-web-text+proto' : 'application/grpc-web+proto',
      'grpc-accept-encoding': 'identity,gzip',
      ...corsHeaders(req.headers),
    };
    if (unread && req.httpVersionMajor === 1) headers.connection = 'close';
    res.writeHead(200, headers);
    res.end(out);
  };
  return {
    web: mode,
    headers: req.headers,
    signal: cancel,
    replyMessage(message) {
      send(Buffer.concat([encodeGrpcFrame(message), encodeGrpcWebTrailers({ 'grpc-status': '0' })]), false);
    },
    replyStatus(code, message, unread = false) {
      send(
        encodeGrpcWebTrailers({
          'grpc-status': String(code),
          ...(message === '' ? {} : { 'grpc-message': encodeGrpcMessage(message) }),
        }),
        unread,
      );
    },
  };
}

/* ---------- the server ---------- */

class GrpcRelayHandler {
  private readonly client: H2cClient;

  constructor(
    private readonly core: RelayCore,
    private readonly metrics: GrpcRelayMetrics,
    private readonly maxMessageBytes: number,
    private readonly readTimeoutMs: number = GRPC_READ_TIMEOUT_MS,
  ) {
    this.client = new H2cClient({
      log: core.log,
      maxResponseBytes: MAX_GRPC_BACKEND_BODY_BYTES,
      idleTimeoutMs: core.config.http_transport.idle_conn_timeout_seconds * 1000,
    });
  }

  /** Answers one SendRelay call; never throws. */
  async handle(io: CallIo, body: Readable): Promise<void> {
    let serviceId = '';
    const reply = (code: number, message: string, unread = false): void => {
      this.count(io, serviceId, code);
      io.replyStatus(code, message, unread);
    };
    const refuse = (r: RelayRefusal): void => {
      this.core.countRejected(r, serviceId);
      reply(r.grpcCode, r.message);
    };
    try {
      if (this.core.draining) {
        return reply(GrpcStatus.UNAVAILABLE, 'relayer is shutting down', true);
      }
      const encoding = (first(io.headers, 'grpc-encoding') ?? 'identity').trim().toLowerCase();
      if (encoding !== 'identity' && encoding !== 'gzip') {
        return reply(
          GrpcStatus.UNIMPLEMENTED,
          `grpc-encoding ${encoding} is not supported; use identity or gzip`,
          true,
        );
      }
      const read = await readUnaryMessage(body, {
        maxMessageBytes: this.maxMessageBytes,
        web: io.web,
        encoding,
        readTimeoutMs: this.readTimeoutMs,
      });
      if (!read.ok) {
        if (read.code === GrpcStatus.RESOURCE_EXHAUSTED) {
          this.core.countRejected(refusalOf('body_too_large', read.message, read.code, 413));
        } else if (read.code === GrpcStatus.DEADLINE_EXCEEDED) {
          this.core.countRejected(refusalOf('read_body_error', read.message, read.code, 408));
        } else if (read.code !== GrpcStatus.CANCELLED) {
          this.core.countRejected(refusalOf('invalid_relay_request', read.message, read.code, 400));
        }
        return reply(read.code, read.message, read.unread);
      }
      const decoded = this.core.decodeHttpFamily(read.message);
      if (!decoded.ok) return refuse(decoded);
      const { request, inner } = decoded;
      serviceId = decoded.serviceId;
      const rpcType = this.rpcTypeOf(io.headers, inner.header, serviceId);
      // A type that names no backend kind finds no pool; it never becomes a metric label.
      if (!(BACKEND_TYPES as readonly string[]).includes(rpcType)) {
        return refuse(
          refusalOf(
            'backend_unavailable',
            `no ${rpcType} backend for service ${serviceId}`,
            GrpcStatus.UNAVAILABLE,
          ),
        );
      }
      this.core.countReceived(serviceId, rpcType);
      if (rpcType === 'websocket') {
        return refuse(
          refusalOf(
            'backend_unavailable',
            'websocket backends are not reachable over gRPC; use the WebSocket transport',
            GrpcStatus.FAILED_PRECONDITION,
          ),
        );
      }
      const pool = this.core.backends.get(serviceId, rpcType);
      if (pool === undefined || !pool.hasHealthy()) {
        return refuse(
          refusalOf(
            'backend_unavailable',
            `no healthy ${rpcType} backend for service ${serviceId}`,
            GrpcStatus.UNAVAILABLE,
          ),
        );
      }
      const simKey = first(io.headers, 'pocket-simulation-key-id');
      const ctx: AdmitContext = {
        transport: io.web === undefined ? 'grpc' : 'grpc_web',
        rpcType,
        arrivalHeight: this.core.heights.currentHeight,
        ...(simKey !== undefined && simKey !== '' ? { simulationKeyId: simKey } : {}),
      };
      const admitted = await this.core.admit(request, read.message, ctx);
      if (!admitted.ok) return refuse(admitted);
      await this.serve(io, admitted, inner, pool, ctx, reply);
    } catch (err) {
      this.core.log.error({ err, service_id: serviceId }, 'gRPC relay failed');
      reply(GrpcStatus.INTERNAL, 'internal error');
    }
  }

  private rpcTypeOf(
    headers: http.IncomingHttpHeaders,
    inner: ReadonlyMap<string, { values: string[] }>,
    serviceId: string,
  ): string {
    const meta = (first(headers, 'rpc-type') ?? '').trim();
    if (meta !== '') return rpcTypeToBackendType(meta.toLowerCase());
    for (const [k, h] of inner) {
      if (
        k.toLowerCase() === 'content-type' &&
        (h.values[0] ?? '').toLowerCase().startsWith('application/grpc')
      ) {
        return 'grpc';
      }
    }
    return this.core.backends.defaultType(serviceId);
  }

  private async serve(
    io: CallIo,
    relay: AdmittedRelay,
    inner: InnerRequest,
    pool: BackendPool,
    ctx: AdmitContext,
    reply: (code: number, message: string) => void,
  ): Promise<void> {
    const serviceId = relay.serviceId;
    const fail = async (reason: RejectReason, code: number, message: string): Promise<void> => {
      await this.core.unbill(relay);
      this.core.countRejected(refusalOf(reason, message, code), serviceId);
      if (!io.signal.aborted) reply(code, message);
    };
    const result =
      ctx.rpcType === 'grpc'
        ? await this.forwardToGrpc(io, relay, inner, pool)
        : await this.forwardToHttp(io, relay, inner, pool, ctx.rpcType);
    if (!result.ok) {
      switch (result.code) {
        case 'BACKEND_UNAVAILABLE':
          return fail(
            'backend_unavailable',
            GrpcStatus.UNAVAILABLE,
            `no healthy ${ctx.rpcType} backend for service ${serviceId}`,
          );
        case 'BACKEND_TIMEOUT':
          return fail('backend_timeout', GrpcStatus.DEADLINE_EXCEEDED, 'backend timed out');
        case 'CLIENT_DISCONNECTED':
          return fail('client_disconnected', GrpcStatus.CANCELLED, 'client cancelled the call');
        case 'BACKEND_RESPONSE_TOO_LARGE':
          return fail('backend_network_error', GrpcStatus.UNAVAILABLE, 'backend response too large');
        default:
          return fail('backend_network_error', GrpcStatus.UNAVAILABLE, 'backend error');
      }
    }
    if (result.status >= 500) {
      return fail('backend_5xx', GrpcStatus.UNAVAILABLE, `backend service error (HTTP ${result.status})`);
    }
    const payload = encodePoktHttpResponse({
      statusCode: result.status,
      headers: Object.entries(result.headers),
      body: result.body,
    });
    const signed = this.core.signResponse(relay, payload);
    if (!signed.ok) {
      await this.core.unbill(relay);
      this.core.countRejected(signed, serviceId);
      if (!io.signal.aborted) reply(signed.grpcCode, signed.message);
      return;
    }
    const notRecorded = await this.core.settleServed(relay, result.body, ctx, signed.response);
    if (notRecorded !== undefined) {
      this.core.countRejected(notRecorded, serviceId);
      if (!io.signal.aborted) reply(notRecorded.grpcCode, notRecorded.message);
      return;
    }
    if (!io.signal.aborted) {
      this.count(io, serviceId, GrpcStatus.OK);
      io.replyMessage(signed.bytes);
    }
    this.core.countServed(serviceId, ctx.rpcType, result.status);
  }

  private timeoutMs(io: CallIo, serviceId: string): number {
    const service = resolveTimeoutProfile(this.core.config, serviceId).request_timeout_seconds * 1000;
    const client = parseGrpcTimeoutMs(first(io.headers, 'grpc-timeout'));
    return client === undefined ? service : Math.min(service, client);
  }

  private backendHeaders(io: CallIo, relay: AdmittedRelay, inner: InnerRequest, type: string): HeaderMap {
    const backendCfg = this.core.config.services[relay.serviceId]?.backends[type];
    const innerHeaders: HeaderMap = {};
    for (const [k, h] of inner.header) innerHeaders[k] = h.values.join(', ');
    // Only the Pocket context travels from the gRPC metadata; the rest describes this call, not the backend's.
    const wrapper: HeaderMap = {};
    for (const [k, v] of Object.entries(io.headers)) {
      if (k.startsWith('pocket-') && v !== undefined) wrapper[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    return buildBackendHeaders({
      inner: innerHeaders,
      wrapper,
      config: backendCfg?.headers,
      auth: backendCfg?.authentication,
      supplier: relay.supplierAddress,
      serviceId: relay.serviceId,
      application: relay.header.applicationAddress,
    });
  }

  private async forwardToGrpc(
    io: CallIo,
    relay: AdmittedRelay,
    inner: InnerRequest,
    pool: BackendPool,
  ): Promise<ForwardOutcome> {
    const backendCfg = this.core.config.services[relay.serviceId]?.backends.grpc;
    const headers = this.backendHeaders(io, relay, inner, 'grpc');
    if ((headers['content-type'] ?? '') === '') headers['content-type'] = 'application/grpc';
    const r: GrpcForwardResult = await forwardGrpc(
      pool,
      { method: inner.method, path: inner.url === '' ? '/' : inner.url, headers, body: inner.bodyBz },
      {
        serviceId: relay.serviceId,
        maxRetries: relay.simulated ? 0 : (backendCfg?.max_retries ?? 0),
        timeoutMs: this.timeoutMs(io, relay.serviceId),
        basePath: backendCfg?.base_path,
        signal: io.signal,
      },
      {
        client: this.client,
        metrics: this.core.metrics,
        log: this.core.log,
      },
    );
    if (!r.ok) return r;
    return { ok: true, status: r.status, headers: r.headers, body: r.body, rawBody: r.body };
  }

  private async forwardToHttp(
    io: CallIo,
    relay: AdmittedRelay,
    inner: InnerRequest,
    pool: BackendPool,
    type: string,
  ): Promise<ForwardOutcome> {
    const r = await pool.forward({
      method: inner.method === '' ? 'POST' : inner.method,
      url: inner.url === '' ? '/' : inner.url,
      headers: this.backendHeaders(io, relay, inner, type),
      body: inner.bodyBz,
      signal: io.signal,
      ...(relay.simulated ? { maxRetries: 0 } : {}),
    });
    if (!r.ok) return r;
    if (r.status >= 500) {
      await r.body.dump().catch(() => undefined);
      return { ok: true, status: r.status, headers: {}, body: Buffer.alloc(0), rawBody: Buffer.alloc(0) };
    }
    let raw: Buffer;
    try {
      raw = await readCapped(r.body, MAX_GRPC_BACKEND_BODY_BYTES);
    } catch (err) {
      return {
        ok: false,
        code: io.signal.aborted ? 'CLIENT_DISCONNECTED' : 'BACKEND_NETWORK_ERROR',
        attempts: r.attempts,
        error: err as Error,
      };
    }
    const headers: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(r.headers)) {
      if (v !== undefined) headers[k] = Array.isArray(v) ? v : [v];
    }
    let body = raw;
    const enc = (headers['content-encoding']?.[0] ?? '').toLowerCase();
    if (enc.includes('gzip') || (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b)) {
      try {
        body = gunzipSync(raw);
        delete headers['content-encoding'];
      } catch {
        body = raw;
      }
    }
    return { ok: true, status: r.status, headers, body, rawBody: raw };
  }

  private count(io: CallIo, serviceId: string, code: number): void {
    this.metrics.requests.inc({ service_id: serviceId, code: grpcStatusName(code) });
    if (io.web !== undefined) this.metrics.webRequests.inc({ service_id: serviceId });
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

type InnerRequest = pb.sdkTypes.POKTHTTPRequest;

type ForwardOutcome =
  | { ok: true; status: number; headers: Record<string, string[]>; body: Buffer; rawBody: Buffer }
  | Extract<GrpcForwardResult, { ok: false }>;

/** Starts the gRPC / gRPC-Web listener. */
export async function startGrpcServer(core: RelayCore, opts: GrpcServerOptions): Promise<GrpcRelayServer> {
  const metrics = new GrpcRelayMetrics(opts.registry ?? new Registry());
  const handler = new GrpcRelayHandler(
    core,
    metrics,
    opts.maxMessageBytes,
    opts.readTimeoutMs ?? GRPC_READ_TIMEOUT_MS,
  );
  const headerTimeoutMs = opts.headerTimeoutMs ?? GRPC_HEADER_TIMEOUT_MS;
  const inFlight = new Set<Promise<void>>();
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  let closing = false;

  const run = (io: CallIo, body: Readable): void => {
    const p = core.track(handler.handle(io, body));
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };

  const onRequest = (req: CompatRequest, res: CompatResponse): void => {
    const h = req.headers;
    const method = req.method ?? '';
    const type = mediaType(h);
    const web = WEB_TYPES[type];
    if (method === 'OPTIONS') {
      if (first(h, 'access-control-request-method') === undefined) {
        res.writeHead(405, { allow: 'POST, OPTIONS' });
        res.end();
        return;
      }
      res.writeHead(204, {
        ...corsHeaders(h),
        'access-control-allow-methods': 'POST, OPTIONS',
        'access-control-allow-headers':
          first(h, 'access-control-request-headers') ?? GRPC_WEB_DEFAULT_ALLOWED_HEADERS,
        'access-control-max-age': '600',
      });
      res.end();
      return;
    }
    const isNative =
      web === undefined && (type === 'application/grpc' || type.startsWith('application/grpc+'));
    if (web === undefined && !isNative) {
      res.writeHead(415, { 'content-type': 'text/plain' });
      res.end('content-type must be application/grpc (HTTP/2) or application/grpc-web[-text]\n');
      return;
    }
    if (method !== 'POST') {
      res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' });
      res.end('gRPC calls are POST\n');
      return;
    }
    if (isNative && !(req instanceof http2.Http2ServerRequest)) {
      res.writeHead(505, { 'content-type': 'text/plain', connection: 'close' });
      res.end('native gRPC needs HTTP/2 (h2c with prior knowledge); gRPC-Web works over HTTP/1.1\n');
      return;
    }
    const io =
      web !== undefined
        ? webIo(req, res, web)
        : nativeIo(req as http2.Http2ServerRequest, res as http2.Http2ServerResponse);
    if (isNative && type !== 'application/grpc' && type !== 'application/grpc+proto') {
      metrics.requests.inc({ service_id: '', code: grpcStatusName(GrpcStatus.UNIMPLEMENTED) });
      io.replyStatus(
        GrpcStatus.UNIMPLEMENTED,
        `codec ${type} is not supported; use application/grpc+proto`,
        true,
      );
      return;
    }
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== SEND_RELAY_PATH) {
      metrics.requests.inc({ service_id: '', code: grpcStatusName(GrpcStatus.UNIMPLEMENTED) });
      if (web !== undefined) metrics.webRequests.inc({ service_id: '' });
      io.replyStatus(GrpcStatus.UNIMPLEMENTED, `unknown method ${path}`, true);
      return;
    }
    if (closing) {
      metrics.requests.inc({ service_id: '', code: grpcStatusName(GrpcStatus.UNAVAILABLE) });
      io.replyStatus(GrpcStatus.UNAVAILABLE, 'relayer is shutting down', true);
      return;
    }
    run(io, req);
  };

  const h2 = http2.createServer({ settings: { maxConcurrentStreams: GRPC_MAX_CONCURRENT_STREAMS } });
  h2.on('request', onRequest);
  h2.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.setTimeout(120_000, () => s.close());
  });
  h2.on('sessionError', (err) => core.log.debug({ err }, 'gRPC HTTP/2 session error'));
  // headersTimeout bounds a client trickling its request headers; requestTimeout the whole request
  // (a unary gRPC-Web body included). Checked every second instead of Node's default 30 s.
  const h1 = http.createServer(
    {
      keepAliveTimeout: 120_000,
      headersTimeout: headerTimeoutMs,
      requestTimeout: Math.max(headerTimeoutMs, opts.readTimeoutMs ?? GRPC_READ_TIMEOUT_MS),
      connectionsCheckingInterval: Math.min(1_000, headerTimeoutMs),
    },
    onRequest,
  );
  h1.on('clientError', (_err, socket) => socket.destroy());
  // h1 never listens itself (the front socket hands it connections), and Node only starts the
  // checker that enforces headersTimeout/requestTimeout on 'listening': start it explicitly.
  // close() stops it again (http.Server.close clears the checker).
  h1.emit('listening');

  const front = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), FIRST_BYTES_TIMEOUT_MS);
    timer.unref();
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      if (
        head.length < HTTP2_PREFACE_START.length &&
        head.equals(HTTP2_PREFACE_START.subarray(0, head.length))
      )
        return;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.pause();
      socket.unshift(head);
      if (head.subarray(0, HTTP2_PREFACE_START.length).equals(HTTP2_PREFACE_START)) {
        h2.emit('connection', socket);
      } else {
        h1.emit('connection', socket);
        socket.resume();
      }
    };
    socket.on('data', onData);
  });

  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(opts.port, opts.host, () => {
      front.removeListener('error', reject);
      resolve();
    });
  });
  front.on('error', (err) => core.log.error({ err }, 'gRPC listener error'));
  const port = (front.address() as net.AddressInfo).port;
  core.log.info({ port }, 'gRPC / gRPC-Web relay listener started');

  return {
    port,
    metrics,
    async close(graceMs: number): Promise<void> {
      if (closing) return;
      closing = true;
      const stopped = new Promise<void>((resolve) => front.close(() => resolve()));
      // HTTP/2 sessions get GOAWAY and end once their streams (answers and trailers) are done.
      const sessionsClosed = [...sessions].map(
        (s) => new Promise<void>((resolve) => (s.closed ? resolve() : s.close(() => resolve()))),
      );
      h1.closeIdleConnections();
      let t: NodeJS.Timeout | undefined;
      const drained = (async (): Promise<void> => {
        await Promise.allSettled([...inFlight]);
        h1.closeIdleConnections();
        await Promise.all(sessionsClosed);
      })();
      await Promise.race([
        drained,
        new Promise((resolve) => (t = setTimeout(resolve, Math.max(0, graceMs)))),
      ]);
      clearTimeout(t);
      for (const s of sessions) s.destroy();
      h1.closeAllConnections();
      for (const s of sockets) s.destroy();
      h1.close();
      await stopped;
      await handler.close();
    },
  };
}
