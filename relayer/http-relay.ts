/**
 * The HTTP relay pipeline (relayer.md §3): JSON-RPC, REST, CometBFT and streamed (SSE / NDJSON)
 * answers. Independent of the socket library: the server hands in the request body and headers
 * and a sink to answer through, so the same code serves uWS and any test harness.
 *
 * Order: decode → service → transport → per-service body limit → supplier gate + plausibility →
 * fast-fail → (eager: validation → meter) → backend → sign → answer → publish (optimistic:
 * validation → meter → publish in the background).
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import type { CancelSignal } from '../core/index.js';
import { encodePoktHttpResponse } from '../protocol/index.js';
import { POKT_STREAM_DELIMITER } from '../rings/index.js';
import {
  buildBackendHeaders,
  rpcTypeToBackendType,
  type BackendPool,
  type HeaderMap,
} from './backends/index.js';
import { serviceValidationMode } from './config.js';
import type { AdmitContext, AdmittedRelay, RelayCore, RelayRefusal } from './relay-core.js';

/** A batch is flushed at the first of: this age, this size, this many lines. */
export const STREAM_BATCH_MAX_AGE_MS = 100;
export const STREAM_BATCH_MAX_BYTES = 100 * 1024;
export const STREAM_BATCH_MAX_LINES = 100;
/** Longest line accepted from a streaming backend. */
export const STREAM_MAX_LINE_BYTES = 256 * 1024;
/** Hard cap on a buffered (non-streaming) backend body. */
export const MAX_BACKEND_BODY_BYTES = 200 * 1024 * 1024;

/** Where the pipeline writes its answer. */
export interface HttpSink {
  /** True once the client went away; nothing more is written. */
  readonly aborted: boolean;
  /** One complete answer. */
  reply(status: number, headers: readonly (readonly [string, string])[], body: Uint8Array): void;
  /** Starts a streamed answer. */
  startStream(status: number, headers: readonly (readonly [string, string])[]): void;
  /** Writes a chunk of a streamed answer; resolves when the socket can take more. */
  write(chunk: Uint8Array): Promise<void>;
  /** Ends a streamed answer. */
  end(): void;
}

export interface HttpRelayInput {
  body: Uint8Array;
  /** Wrapper request headers, lower-case names. */
  headers: Readonly<Record<string, string>>;
  /** Aborts when the client disconnects. */
  signal: CancelSignal;
}

function errorBody(message: string): Uint8Array {
  return Buffer.from(JSON.stringify({ error: message }));
}

const JSON_HEADERS: readonly (readonly [string, string])[] = [['Content-Type', 'application/json']];

/** `text/event-stream` or `application/x-ndjson` (parameters ignored, any case). */
export function isStreamingContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const media = value.split(';', 1)[0]!.trim().toLowerCase();
  return media === 'text/event-stream' || media === 'application/x-ndjson';
}

function headerValue(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

function isGzip(headers: Record<string, string | string[] | undefined>, body: Uint8Array): boolean {
  const enc = headerValue(headers, 'content-encoding')?.toLowerCase() ?? '';
  return enc.includes('gzip') || (body.length >= 2 && body[0] === 0x1f && body[1] === 0x8b);
}

/** Backend response headers as POKTHTTPResponse header entries (all values kept). */
function envelopeHeaders(
  headers: Record<string, string | string[] | undefined>,
  drop: ReadonlySet<string>,
): [string, string[]][] {
  const out: [string, string[]][] = [];
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || drop.has(k.toLowerCase())) continue;
    out.push([k, Array.isArray(v) ? v : [v]]);
  }
  return out;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'upgrade',
  'trailer',
  'te',
]);

/** The 413 refusal of a request body over a limit. */
export function bodyTooLarge(message: string): RelayRefusal {
  return { ok: false, reason: 'body_too_large', message, httpStatus: 413, grpcCode: 8, wsCloseCode: 1009 };
}

export class HttpRelayHandler {
  constructor(private readonly core: RelayCore) {}

  /** Handles one relay end to end; never throws (faults become 5xx answers). */
  async handle(input: HttpRelayInput, sink: HttpSink): Promise<void> {
    const started = performance.now();
    let serviceId = '';
    let rpcType = '';
    const refuse = (r: RelayRefusal): void => {
      this.core.countRejected(r, serviceId);
      if (sink.aborted) return;
      sink.reply(r.httpStatus, JSON_HEADERS, errorBody(r.message));
    };
    try {
      const cfg = this.core.config;
      if (input.body.length > cfg.default_max_body_size_bytes) {
        return refuse(bodyTooLarge('request body too large'));
      }
      const decoded = this.core.decodeHttpFamily(input.body);
      if (!decoded.ok) return refuse(decoded);
      const { request, inner } = decoded;
      serviceId = decoded.serviceId;
      const service = cfg.services[serviceId]!;
      const rpcHeader = input.headers['rpc-type'] ?? '';
      rpcType = rpcHeader === '' ? service.default_backend : rpcTypeToBackendType(rpcHeader);
      const simulationKeyId = input.headers['pocket-simulation-key-id'];
      this.core.countReceived(serviceId, rpcType);
      const limit = service.max_body_size_bytes ?? cfg.default_max_body_size_bytes;
      if (input.body.length > limit) return refuse(bodyTooLarge('request body too large for service'));

      const ctx: AdmitContext = {
        transport: 'http',
        rpcType,
        arrivalHeight: this.core.heights.currentHeight,
        ...(simulationKeyId !== undefined && simulationKeyId !== '' ? { simulationKeyId } : {}),
      };
      const pre = await this.core.preAdmit(request, input.body, ctx);
      if (!pre.ok) return refuse(pre);
      const pool = this.healthyPool(serviceId, rpcType);
      if (pool === undefined) {
        await this.core.unbill(pre);
        this.core.countRejected(
          {
            ok: false,
            reason: 'backend_unavailable',
            message: '',
            httpStatus: 503,
            grpcCode: 14,
            wsCloseCode: 1011,
          },
          serviceId,
        );
        if (!sink.aborted) {
          sink.reply(
            503,
            JSON_HEADERS,
            Buffer.from(JSON.stringify({ error: 'service temporarily unavailable', service: serviceId })),
          );
        }
        return;
      }
      let relay: AdmittedRelay = pre;
      if (serviceValidationMode(cfg, serviceId) === 'eager') {
        const checked = await this.core.check(pre, ctx);
        if (!checked.ok) return refuse(checked);
        relay = checked;
      }
      await this.forward(relay, inner, pool, input, sink, ctx);
    } catch (err) {
      this.core.log.error({ err, service_id: serviceId }, 'relay handling failed');
      refuse({
        ok: false,
        reason: 'signing_error',
        message: 'internal relayer error',
        httpStatus: 500,
        grpcCode: 13,
        wsCloseCode: 1011,
      });
    } finally {
      if (serviceId !== '' && rpcType !== '') {
        this.core.metrics.relayDuration.observe(
          { service_id: serviceId, rpc_type: rpcType },
          (performance.now() - started) / 1000,
        );
      }
    }
  }

  /** The (service, transport) pool when it has a healthy endpoint; counts a fast-fail otherwise. */
  private healthyPool(serviceId: string, rpcType: string): BackendPool | undefined {
    const pool = this.core.backends.get(serviceId, rpcType);
    if (pool === undefined || pool.endpoints[0]?.client === undefined || !pool.hasHealthy()) {
      this.core.metrics.fastFails.inc({ service_id: serviceId, rpc_type: rpcType });
      return undefined;
    }
    return pool;
  }

  private async forward(
    relay: AdmittedRelay,
    inner: { method: string; url: string; header: Map<string, { values: string[] }>; bodyBz: Uint8Array },
    pool: BackendPool,
    input: HttpRelayInput,
    sink: HttpSink,
    ctx: AdmitContext,
  ): Promise<void> {
    const serviceId = relay.serviceId;
    const backendCfg = this.core.config.services[serviceId]!.backends[ctx.rpcType];
    const innerHeaders: HeaderMap = {};
    for (const [k, h] of inner.header) innerHeaders[k] = h.values.join(', ');
    const headers = buildBackendHeaders({
      inner: innerHeaders,
      wrapper: input.headers,
      config: backendCfg?.headers,
      auth: backendCfg?.authentication,
      supplier: relay.supplierAddress,
      serviceId,
      application: relay.header.applicationAddress,
    });
    const result = await pool.forward({
      method: inner.method === '' ? 'POST' : inner.method,
      url: inner.url === '' ? '/' : inner.url,
      headers,
      body: inner.bodyBz,
      signal: input.signal,
      ...(relay.simulated ? { maxRetries: 0 } : {}),
    });
    const fail = (reason: RelayRefusal['reason'], status: number, message: string): void => {
      this.core.countRejected(
        { ok: false, reason, message, httpStatus: status, grpcCode: 14, wsCloseCode: 1011 },
        serviceId,
      );
      if (!sink.aborted) sink.reply(status, JSON_HEADERS, errorBody(message));
    };
    if (!result.ok) {
      await this.core.unbill(relay);
      switch (result.code) {
        case 'BACKEND_UNAVAILABLE':
          return fail('backend_unavailable', 503, 'service temporarily unavailable');
        case 'BACKEND_TIMEOUT':
          return fail('backend_timeout', 502, 'backend error');
        case 'CLIENT_DISCONNECTED':
          return fail('client_disconnected', 502, 'backend error');
        default:
          return fail('backend_network_error', 502, 'backend error');
      }
    }
    if (result.status >= 500) {
      await result.body.dump().catch(() => undefined);
      await this.core.unbill(relay);
      return fail('backend_5xx', result.status, 'backend service error');
    }
    const extra: [string, string][] =
      result.attempts > 1 ? [['Backend-Retries', String(result.attempts)]] : [];
    if (isStreamingContentType(headerValue(result.headers, 'content-type'))) {
      await this.stream(relay, result, sink, extra, ctx);
      return;
    }
    let raw: Uint8Array;
    try {
      raw = new Uint8Array(await readCapped(result.body, MAX_BACKEND_BODY_BYTES));
    } catch (err) {
      await this.core.unbill(relay);
      this.core.log.warn({ err, service_id: serviceId }, 'backend body not read');
      return fail(
        input.signal.aborted ? 'client_disconnected' : 'backend_network_error',
        502,
        'backend error',
      );
    }
    let body = raw;
    const drop = new Set<string>();
    if (isGzip(result.headers, raw)) {
      try {
        body = new Uint8Array(gunzipSync(raw));
        drop.add('content-encoding');
      } catch {
        body = raw;
      }
    }
    const payload = encodePoktHttpResponse({
      statusCode: result.status,
      headers: envelopeHeaders(result.headers, drop),
      body,
    });
    const signed = this.core.signResponse(relay, payload);
    if (!signed.ok) {
      await this.core.unbill(relay);
      this.core.countRejected(signed, serviceId);
      if (!sink.aborted) sink.reply(500, JSON_HEADERS, errorBody(signed.message));
      return;
    }
    const accept = input.headers['accept'] ?? '';
    const replyHeaders: [string, string][] = [
      ['Content-Type', accept === '' || accept === '*/*' ? 'application/json' : accept],
      ...extra,
    ];
    let out: Uint8Array = signed.bytes;
    const rc = this.core.config.response_compression;
    if (
      rc.enabled &&
      out.length >= rc.min_size_bytes &&
      (input.headers['accept-encoding'] ?? '').toLowerCase().includes('gzip')
    ) {
      out = gzipSync(out);
      replyHeaders.push(['Content-Encoding', 'gzip']);
    }
    // The relay the client holds is the one mined (one signature per relay), even if it left.
    const notRecorded = await this.core.settleServed(relay, body, ctx, signed.response);
    if (notRecorded !== undefined) {
      this.core.countRejected(notRecorded, serviceId);
      if (!sink.aborted) sink.reply(notRecorded.httpStatus, JSON_HEADERS, errorBody(notRecorded.message));
      return;
    }
    if (!sink.aborted) sink.reply(200, replyHeaders, out);
    this.core.countServed(serviceId, ctx.rpcType, result.status);
  }

  /** Streams signed batches; the whole stream is one relay published at its end. */
  private async stream(
    relay: AdmittedRelay,
    result: Extract<Awaited<ReturnType<BackendPool['forward']>>, { ok: true }>,
    sink: HttpSink,
    extra: [string, string][],
    ctx: AdmitContext,
  ): Promise<void> {
    const headers: [string, string][] = [];
    for (const [k, v] of Object.entries(result.headers)) {
      if (v === undefined || HOP_BY_HOP.has(k.toLowerCase())) continue;
      for (const one of Array.isArray(v) ? v : [v]) headers.push([k, one]);
    }
    headers.push(['Connection', 'close'], ...extra);
    if (!sink.aborted) sink.startStream(result.status, headers);
    const all: Uint8Array[] = [];
    let batch: Uint8Array[] = [];
    let batchBytes = 0;
    let batchStarted = 0;
    let failed = false;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const body = Buffer.concat(batch);
      batch = [];
      batchBytes = 0;
      const signed = this.core.signResponse(
        relay,
        encodePoktHttpResponse({ statusCode: result.status, headers: [], body }),
      );
      if (!signed.ok) {
        failed = true;
        return;
      }
      if (!sink.aborted) await sink.write(Buffer.concat([signed.bytes, POKT_STREAM_DELIMITER]));
    };
    let pending: Promise<void> = Promise.resolve();
    const ticker = setInterval(() => {
      if (batch.length > 0 && performance.now() - batchStarted >= STREAM_BATCH_MAX_AGE_MS) {
        pending = pending.then(flush);
      }
    }, STREAM_BATCH_MAX_AGE_MS);
    try {
      for await (const line of splitLines(result.body, STREAM_MAX_LINE_BYTES)) {
        if (sink.aborted || failed) break;
        if (batch.length === 0) batchStarted = performance.now();
        batch.push(line);
        all.push(line);
        batchBytes += line.length;
        if (
          batchBytes >= STREAM_BATCH_MAX_BYTES ||
          batch.length >= STREAM_BATCH_MAX_LINES ||
          performance.now() - batchStarted >= STREAM_BATCH_MAX_AGE_MS
        ) {
          pending = pending.then(flush);
          await pending;
        }
      }
    } catch (err) {
      this.core.log.warn({ err, service_id: relay.serviceId }, 'backend stream ended with an error');
    } finally {
      clearInterval(ticker);
    }
    await pending;
    await flush();
    if (!sink.aborted) sink.end();
    await result.body.dump().catch(() => undefined);
    if (all.length === 0 || failed) {
      await this.core.unbill(relay);
      return;
    }
    this.core.countServed(relay.serviceId, ctx.rpcType, result.status);
    this.core.publishMined(relay, Buffer.concat(all), ctx);
  }
}

/** Reads a body fully, refusing more than `cap` bytes. */
export async function readCapped(body: AsyncIterable<Uint8Array>, cap: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > cap) throw new Error(`backend body larger than ${cap} bytes`);
    chunks.push(Buffer.from(c));
  }
  return Buffer.concat(chunks, n);
}

/** Splits a byte stream into lines, each keeping its `\n`; a line longer than `max` is cut at `max`. */
export async function* splitLines(body: AsyncIterable<Uint8Array>, max: number): AsyncGenerator<Buffer> {
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of body) {
    rest = rest.length === 0 ? Buffer.from(chunk) : Buffer.concat([rest, chunk]);
    let nl: number;
    while ((nl = rest.indexOf(0x0a)) !== -1 || rest.length >= max) {
      const cut = nl === -1 || nl >= max ? max : nl + 1;
      yield rest.subarray(0, cut);
      rest = rest.subarray(cut);
    }
  }
  if (rest.length > 0) yield rest;
}
