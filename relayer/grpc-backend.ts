/**
 * The relayer's client for `grpc` backends (relayer.md §7.1, §8): HTTP/2 to each endpoint origin
 * (cleartext h2c with prior knowledge for `http://`, TLS for `https://`), one session per origin
 * reused by every call and re-dialled after GOAWAY, close or error. `forwardGrpc` picks endpoints
 * from the service's pool, records breaker outcomes and retries network failures on another
 * endpoint; response trailers are merged into the response headers so `grpc-status` and
 * `grpc-message` travel inside the signed POKTHTTPResponse.
 */
import http2 from 'node:http2';
import type { Logger } from 'pino';
import { Cancellation, type CancelSignal } from '../core/index.js';
import type { BackendEndpoint, BackendFailureCode, BackendPool, HeaderMap } from './backends/index.js';
import { buildBackendUrl } from './backends/index.js';
import type { RelayerMetrics } from './metrics.js';

/** Largest backend response body the client reads (relayer.md §8 hard cap). */
export const DEFAULT_MAX_GRPC_RESPONSE_BYTES = 200 * 1024 * 1024;

/** Why one attempt failed; only `network` counts against the breaker and is retried. */
export type GrpcAttemptFailure = 'network' | 'timeout' | 'cancelled' | 'too_large' | 'config';

export class GrpcAttemptError extends Error {
  constructor(
    readonly kind: GrpcAttemptFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'GrpcAttemptError';
  }
}

export interface GrpcCall {
  method: string;
  /** Path (and query) on the backend, e.g. `/demo.DemoService/GetBlockHeight`. */
  path: string;
  /** Lower-case header names; pseudo-headers and connection headers are dropped. */
  headers: HeaderMap;
  body: Uint8Array;
}

export interface GrpcCallResponse {
  /** HTTP/2 `:status`. */
  status: number;
  /** Response headers then trailers (a trailer replaces a header of the same name). */
  headers: Record<string, string[]>;
  body: Buffer;
}

export interface H2cClientOptions {
  log: Logger;
  maxResponseBytes?: number;
  /** Idle sessions are closed after this long (0 keeps them). */
  idleTimeoutMs?: number;
}

// Connection-specific headers HTTP/2 forbids; `te` is re-added as `trailers` for gRPC.
const FORBIDDEN_H2_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'host',
  'te',
]);

/** Node's error codes for a connection that failed or broke (vs. our own deadline/abort). */
function attemptErrorOf(err: unknown): GrpcAttemptError {
  if (err instanceof GrpcAttemptError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new GrpcAttemptError('network', msg, { cause: err });
}

export class H2cClient {
  private readonly sessions = new Map<string, http2.ClientHttp2Session>();
  private readonly log: Logger;
  private readonly maxResponseBytes: number;
  private readonly idleTimeoutMs: number;
  private closed = false;

  constructor(opts: H2cClientOptions) {
    this.log = opts.log.child({ component: 'grpc_backend_client' });
    this.maxResponseBytes = opts.maxResponseBytes ?? DEFAULT_MAX_GRPC_RESPONSE_BYTES;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 90_000;
  }

  /** Open sessions (for tests and shutdown). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  private session(origin: URL): http2.ClientHttp2Session {
    if (this.closed) throw new GrpcAttemptError('config', 'gRPC backend client is closed');
    if (origin.protocol !== 'http:' && origin.protocol !== 'https:') {
      throw new GrpcAttemptError(
        'config',
        `gRPC backend URL scheme ${origin.protocol} is not supported; use http:// (h2c) or https://`,
      );
    }
    const key = origin.origin;
    const existing = this.sessions.get(key);
    if (existing !== undefined && !existing.closed && !existing.destroyed) return existing;
    const s = http2.connect(key);
    s.unref();
    const forget = (): void => {
      if (this.sessions.get(key) === s) this.sessions.delete(key);
    };
    s.on('error', (err) => {
      forget();
      this.log.debug({ err, origin: key }, 'gRPC backend session error');
    });
    s.on('goaway', () => {
      forget();
      s.close();
    });
    s.on('close', forget);
    if (this.idleTimeoutMs > 0) {
      s.setTimeout(this.idleTimeoutMs, () => {
        forget();
        s.close();
      });
    }
    this.sessions.set(key, s);
    return s;
  }

  /**
   * One HTTP/2 call to `endpoint`'s origin. Rejects with a GrpcAttemptError: `timeout` when
   * `signal` fired because of the deadline, `cancelled` when `cancel` fired, `network` for a
   * refused, reset or broken connection, `too_large` for a body over the limit.
   */
  call(
    endpoint: URL,
    req: GrpcCall,
    signals: { deadline: CancelSignal; cancel?: CancelSignal | undefined },
  ): Promise<GrpcCallResponse> {
    return new Promise<GrpcCallResponse>((resolve, reject) => {
      let settled = false;
      let stream: http2.ClientHttp2Stream | undefined;
      const finish = (err: GrpcAttemptError | undefined, res?: GrpcCallResponse): void => {
        if (settled) return;
        settled = true;
        signals.deadline.removeEventListener('abort', onDeadline);
        signals.cancel?.removeEventListener('abort', onCancel);
        if (err !== undefined) {
          if (stream !== undefined && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
          reject(err);
        } else resolve(res!);
      };
      const onDeadline = (): void => finish(new GrpcAttemptError('timeout', 'gRPC backend call timed out'));
      const onCancel = (): void => finish(new GrpcAttemptError('cancelled', 'client cancelled the call'));
      if (signals.cancel?.aborted === true) return onCancel();
      if (signals.deadline.aborted) return onDeadline();
      signals.deadline.addEventListener('abort', onDeadline, { once: true });
      signals.cancel?.addEventListener('abort', onCancel, { once: true });

      let session: http2.ClientHttp2Session;
      try {
        session = this.session(endpoint);
      } catch (err) {
        return finish(attemptErrorOf(err));
      }
      const headers: http2.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(req.headers)) {
        const name = k.toLowerCase();
        if (name.startsWith(':') || FORBIDDEN_H2_HEADERS.has(name)) continue;
        headers[name] = v;
      }
      headers[':method'] = req.method === '' ? 'POST' : req.method;
      headers[':path'] = req.path;
      headers[':scheme'] = endpoint.protocol === 'https:' ? 'https' : 'http';
      headers[':authority'] = endpoint.host;
      headers.te = 'trailers';
      try {
        stream = session.request(headers, { endStream: false });
      } catch (err) {
        return finish(attemptErrorOf(err));
      }
      const s = stream;
      let status = 0;
      const merged: Record<string, string[]> = {};
      const absorb = (h: http2.IncomingHttpHeaders): void => {
        for (const [k, v] of Object.entries(h)) {
          if (k.startsWith(':') || v === undefined) continue;
          merged[k] = Array.isArray(v) ? [...v] : [String(v)];
        }
      };
      const chunks: Buffer[] = [];
      let size = 0;
      s.on('response', (h) => {
        status = Number(h[':status'] ?? 0);
        absorb(h);
      });
      s.on('trailers', (h: http2.IncomingHttpHeaders) => absorb(h));
      s.on('data', (c: Buffer) => {
        size += c.length;
        if (size > this.maxResponseBytes) {
          finish(
            new GrpcAttemptError('too_large', `gRPC backend response exceeds ${this.maxResponseBytes} bytes`),
          );
          return;
        }
        chunks.push(c);
      });
      s.on('error', (err) => finish(attemptErrorOf(err)));
      s.on('close', () => {
        if (status === 0) {
          finish(
            new GrpcAttemptError(
              'network',
              `gRPC backend stream closed before a response (code ${s.rstCode ?? 'none'})`,
            ),
          );
          return;
        }
        if (s.rstCode !== undefined && s.rstCode !== http2.constants.NGHTTP2_NO_ERROR && !s.readableEnded) {
          finish(new GrpcAttemptError('network', `gRPC backend reset the stream (code ${s.rstCode})`));
          return;
        }
        finish(undefined, { status, headers: merged, body: Buffer.concat(chunks, size) });
      });
      s.end(
        req.body.length === 0
          ? undefined
          : Buffer.from(req.body.buffer, req.body.byteOffset, req.body.byteLength),
      );
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(
      all.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.closed || s.destroyed) return resolve();
            const t = setTimeout(() => {
              s.destroy();
              resolve();
            }, 1000);
            t.unref();
            s.close(() => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
  }
}

export interface GrpcForwardOptions {
  serviceId: string;
  /** Retries on another endpoint after a network failure (the backend's max_retries). */
  maxRetries: number;
  /** Overall deadline for all attempts (the service's request timeout, or the caller's if shorter). */
  timeoutMs: number;
  /** `services.<id>.backends.grpc.base_path`. */
  basePath?: string | undefined;
  /** Fires when the relay's client went away. */
  signal?: CancelSignal | undefined;
}

export interface GrpcForwardDeps {
  client: H2cClient;
  metrics: RelayerMetrics;
  log: Logger;
}

export type GrpcForwardResult =
  | ({ ok: true; endpoint: string; attempts: number } & GrpcCallResponse)
  | {
      ok: false;
      code: BackendFailureCode | 'BACKEND_RESPONSE_TOO_LARGE';
      endpoint?: string;
      attempts: number;
      error?: Error;
    };

/**
 * Sends one gRPC call through `pool` (relayer.md §8): endpoint by the pool's strategy; HTTP 5xx
 * and network failures open the breaker; any other answer closes it; network failures are
 * retried on an endpoint not tried yet, within one deadline. Timeouts, cancellations and oversized
 * answers are neither breaker failures nor retried. Never throws for backend behaviour.
 */
export async function forwardGrpc(
  pool: BackendPool,
  call: GrpcCall,
  opts: GrpcForwardOptions,
  deps: GrpcForwardDeps,
): Promise<GrpcForwardResult> {
  // The deadline covers all attempts; its timer is cleared as soon as the call is over.
  const deadline = new Cancellation();
  const timer = setTimeout(
    () => deadline.abort(new Error(`gRPC backend call exceeded ${opts.timeoutMs} ms`)),
    Math.max(1, opts.timeoutMs),
  );
  timer.unref();
  try {
    return await attemptGrpc(pool, call, opts, deps, deadline);
  } finally {
    clearTimeout(timer);
  }
}

/** forwardGrpc's attempts, all under `deadline`. */
async function attemptGrpc(
  pool: BackendPool,
  call: GrpcCall,
  opts: GrpcForwardOptions,
  deps: GrpcForwardDeps,
  deadline: CancelSignal,
): Promise<GrpcForwardResult> {
  const labels = { service_id: opts.serviceId, rpc_type: 'grpc' };
  const tried = new Set<string>();
  let attempts = 0;
  let last: GrpcForwardResult | undefined;
  for (;;) {
    if (attempts > opts.maxRetries) break;
    const ep: BackendEndpoint | undefined = pool.pick(tried);
    if (ep === undefined) break;
    tried.add(ep.name);
    let url: URL;
    try {
      url = buildBackendUrl(ep.url, opts.basePath, call.path);
    } catch (err) {
      deps.log.warn(
        { err, endpoint: ep.name, service_id: opts.serviceId },
        'gRPC call path does not form a URL',
      );
      return { ok: false, code: 'BACKEND_UNAVAILABLE', endpoint: ep.name, attempts, error: err as Error };
    }
    if (attempts > 0) deps.metrics.backendRetries.inc(labels);
    attempts++;
    const started = performance.now();
    try {
      const res = await deps.client.call(
        url,
        { ...call, path: `${url.pathname}${url.search}` },
        { deadline, cancel: opts.signal },
      );
      deps.metrics.backendDuration.observe(labels, (performance.now() - started) / 1000);
      if (res.status >= 500) {
        ep.breaker.recordFailure();
        deps.metrics.backendRequests.inc({ ...labels, outcome: 'http_5xx' });
      } else {
        ep.breaker.recordSuccess();
        deps.metrics.backendRequests.inc({ ...labels, outcome: res.status >= 400 ? 'http_4xx' : 'ok' });
      }
      return { ok: true, endpoint: ep.name, attempts, ...res };
    } catch (err) {
      const e = attemptErrorOf(err);
      switch (e.kind) {
        case 'network':
          ep.breaker.recordFailure();
          deps.metrics.backendRequests.inc({ ...labels, outcome: 'network_error' });
          last = { ok: false, code: 'BACKEND_NETWORK_ERROR', endpoint: ep.name, attempts, error: e };
          continue;
        case 'config':
          // A configuration problem says nothing about the endpoint's health: not a breaker failure.
          deps.log.warn(
            { err: e, endpoint: ep.name, service_id: opts.serviceId },
            'gRPC backend misconfigured',
          );
          last = { ok: false, code: 'BACKEND_UNAVAILABLE', endpoint: ep.name, attempts, error: e };
          continue;
        case 'timeout':
          deps.metrics.backendRequests.inc({ ...labels, outcome: 'timeout' });
          return { ok: false, code: 'BACKEND_TIMEOUT', endpoint: ep.name, attempts, error: e };
        case 'cancelled':
          deps.metrics.backendRequests.inc({ ...labels, outcome: 'cancelled' });
          return { ok: false, code: 'CLIENT_DISCONNECTED', endpoint: ep.name, attempts, error: e };
        case 'too_large':
          return { ok: false, code: 'BACKEND_RESPONSE_TOO_LARGE', endpoint: ep.name, attempts, error: e };
      }
    }
  }
  return last ?? { ok: false, code: 'BACKEND_UNAVAILABLE', attempts };
}
