/**
 * One pool per (service, backend type) (relayer.md §8): its endpoints, load balancing, a circuit
 * breaker per endpoint, retries on another endpoint, timeouts and optional active health checks.
 * HTTP-family backends go through one undici `Pool` per endpoint origin, sized by the service's
 * pool profile (connections are never shared between services, and global fetch is never used).
 * WebSocket pools only select endpoints (the bridge dials them).
 */
import type { Logger } from 'pino';
import { Pool, errors as undiciErrors, type Dispatcher } from 'undici';
import { Cancellation, type CancelSignal } from '../../core/index.js';
import type { BackendConfig, BackendType, PoolProfile, TimeoutProfile } from '../config.js';
import type { RelayerMetrics } from '../metrics.js';
import { CircuitBreaker, type BreakerState } from './circuit-breaker.js';
import { buildBackendUrl, type HeaderMap } from './request-shape.js';

/** Breaker threshold when health_check.unhealthy_threshold is unset (upstream). */
export const DEFAULT_BREAKER_THRESHOLD = 5;

export interface BackendEndpoint {
  readonly name: string;
  readonly url: URL;
  readonly breaker: CircuitBreaker;
  /** undici pool of this endpoint's origin; absent for websocket endpoints. */
  readonly client: Pool | undefined;
}

export interface BackendPoolOptions {
  serviceId: string;
  type: BackendType;
  backend: BackendConfig;
  timeouts: TimeoutProfile;
  pool: PoolProfile;
}

export interface BackendPoolDeps {
  log: Logger;
  metrics: RelayerMetrics;
  nowMs?: () => number;
}

export interface BackendRequest {
  method: string;
  /** Client path and query from the relay payload, e.g. `/v1/blocks?limit=2`. */
  url: string;
  /** Final backend headers (see buildBackendHeaders). */
  headers: HeaderMap;
  body?: Uint8Array | undefined;
  /** Aborts when the client went away. */
  signal?: CancelSignal | undefined;
  /** 0 disables retries (simulated relays). Default: the backend's max_retries. */
  maxRetries?: number;
}

export type BackendFailureCode =
  'BACKEND_UNAVAILABLE' | 'BACKEND_TIMEOUT' | 'BACKEND_NETWORK_ERROR' | 'CLIENT_DISCONNECTED';

export type BackendResult =
  | {
      ok: true;
      /** The backend's status; ≥ 500 means every attempt failed and this is the last answer. */
      status: number;
      headers: Record<string, string | string[] | undefined>;
      /** Consume or `dump()` it; streaming responses are read incrementally. */
      body: Dispatcher.ResponseData['body'];
      endpoint: string;
      attempts: number;
    }
  | { ok: false; code: BackendFailureCode; endpoint?: string; attempts: number; error?: Error };

type AttemptOutcome = 'ok' | 'http_4xx' | 'http_5xx' | 'timeout' | 'network_error' | 'cancelled';

function endpointName(u: URL): string {
  return u.port === '' ? u.hostname : `${u.hostname}:${u.port}`;
}

function normalizeUrl(raw: string, type: BackendType): URL {
  if (type === 'grpc' && !/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) return new URL(`http://${raw}`);
  const u = new URL(raw);
  if (type === 'grpc' && (u.protocol === 'grpc:' || u.protocol === 'grpcs:')) {
    return new URL(`${u.protocol === 'grpcs:' ? 'https' : 'http'}://${u.host}${u.pathname}${u.search}`);
  }
  return u;
}

export class BackendPool {
  readonly key: string;
  readonly endpoints: readonly BackendEndpoint[];
  readonly strategy: 'round_robin' | 'first_healthy';
  private counter = 0;
  private readonly log: Logger;
  private readonly now: () => number;
  private healthTimer: NodeJS.Timeout | undefined;
  private readonly probeStreak = new Map<string, { ok: number; fail: number }>();

  constructor(
    private readonly opts: BackendPoolOptions,
    private readonly deps: BackendPoolDeps,
  ) {
    this.key = `${opts.serviceId}:${opts.type}`;
    this.log = deps.log.child({ component: 'backend_pool', service_id: opts.serviceId, rpc_type: opts.type });
    this.now = deps.nowMs ?? Date.now;
    const b = opts.backend;
    const entries =
      b.url !== undefined && b.url !== ''
        ? [{ name: undefined, url: b.url }]
        : (b.urls ?? []).map((e) => (typeof e === 'string' ? { name: undefined, url: e } : e));
    const threshold = b.health_check?.unhealthy_threshold ?? DEFAULT_BREAKER_THRESHOLD;
    this.endpoints = entries.map((e) => {
      const url = normalizeUrl(e.url, opts.type);
      const name = e.name ?? endpointName(url);
      const labels = { service_id: opts.serviceId, rpc_type: opts.type, endpoint: name };
      const breaker = new CircuitBreaker(
        { failureThreshold: threshold, recoveryTimeoutMs: b.recovery_timeout_seconds * 1000 },
        this.now,
        (to, from) => this.onTransition(name, to, from),
      );
      deps.metrics.backendHealthy.set(labels, 1);
      return { name, url, breaker, client: opts.type === 'websocket' ? undefined : this.makeClient(url) };
    });
    this.strategy = b.load_balancing ?? (this.endpoints.length > 1 ? 'round_robin' : 'first_healthy');
  }

  private makeClient(url: URL): Pool {
    const t = this.opts.timeouts;
    const p = this.opts.pool;
    return new Pool(url.origin, {
      connections: p.max_conns_per_host > 0 ? p.max_conns_per_host : null,
      keepAliveTimeout: p.idle_conn_timeout_seconds * 1000,
      headersTimeout: t.response_header_timeout_seconds * 1000,
      bodyTimeout: 0,
      connect: { timeout: t.dial_timeout_seconds * 1000 },
    });
  }

  private onTransition(name: string, to: BreakerState, from: BreakerState): void {
    const labels = { service_id: this.opts.serviceId, rpc_type: this.opts.type };
    this.deps.metrics.breakerTransitions.inc({ ...labels, to });
    this.deps.metrics.backendHealthy.set({ ...labels, endpoint: name }, to === 'open' ? 0 : 1);
    // Healing needs healthy_threshold good probes counted from the trip.
    if (to === 'open') this.probeStreak.set(name, { ok: 0, fail: 0 });
    if (to === 'open') this.log.warn({ endpoint: name, from }, 'BACKEND DOWN: circuit breaker tripped');
    else if (to === 'closed') this.log.info({ endpoint: name, from }, 'BACKEND UP');
    else this.log.info({ endpoint: name }, 'backend half-open: letting traffic through to test recovery');
  }

  /** True when at least one endpoint may take traffic (the fast-fail check). */
  hasHealthy(): boolean {
    return this.endpoints.some((e) => e.breaker.isAvailable());
  }

  /** Next endpoint by the strategy, skipping unavailable and excluded ones; undefined if none. */
  pick(exclude: ReadonlySet<string> = new Set()): BackendEndpoint | undefined {
    const n = this.endpoints.length;
    if (n === 0) return undefined;
    const start = this.strategy === 'round_robin' ? this.counter++ % n : 0;
    for (let i = 0; i < n; i++) {
      const e = this.endpoints[(start + i) % n]!;
      if (!exclude.has(e.name) && e.breaker.isAvailable()) return e;
    }
    return undefined;
  }

  /**
   * Sends the request, retrying retryable outcomes (5xx, hard transport errors) on a different
   * available endpoint, all within the profile's request timeout. Never throws for backend
   * behaviour; the result says what happened.
   */
  async forward(req: BackendRequest): Promise<BackendResult> {
    const m = this.deps.metrics;
    const labels = { service_id: this.opts.serviceId, rpc_type: this.opts.type };
    const maxRetries = req.maxRetries ?? this.opts.backend.max_retries;
    const timeoutMs = this.opts.timeouts.request_timeout_seconds * 1000;
    // One cancellation per relay for both the deadline and the client going away. The timer and
    // the client listener stay while the answer body is read (a client leaving mid-stream stops
    // the backend stream); both are released once the returned body closes (read, dumped or
    // destroyed) or at once when no body is returned, so a finished relay leaves no timer and no
    // listener (nor the cancellation they hold) behind for the whole timeout.
    const controller = new Cancellation();
    const deadline = { aborted: false };
    const timer = setTimeout(() => {
      deadline.aborted = true;
      controller.abort(new Error(`backend request exceeded ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref();
    const onClientGone = (): void => controller.abort(req.signal?.reason);
    const release = (): void => {
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onClientGone);
    };
    const settled = (r: BackendResult): BackendResult => {
      if (r.ok && !r.body.closed) r.body.once('close', release);
      else release();
      return r;
    };
    if (req.signal !== undefined) {
      if (req.signal.aborted) controller.abort(req.signal.reason);
      else req.signal.addEventListener('abort', onClientGone, { once: true });
    }
    const tried = new Set<string>();
    let attempts = 0;
    let last: BackendResult | undefined;
    while (attempts <= maxRetries) {
      const ep = this.pick(tried);
      if (ep === undefined) break;
      tried.add(ep.name);
      if (attempts > 0) m.backendRetries.inc(labels);
      attempts++;
      const started = performance.now();
      try {
        const url = buildBackendUrl(ep.url, this.opts.backend.base_path, req.url);
        const res = await ep.client!.request({
          origin: url.origin,
          path: `${url.pathname}${url.search}`,
          method: req.method,
          headers: req.headers,
          body:
            req.body === undefined || req.body.length === 0
              ? null
              : Buffer.from(req.body.buffer, req.body.byteOffset, req.body.byteLength),
          signal: controller,
        });
        m.backendDuration.observe(labels, (performance.now() - started) / 1000);
        const result: BackendResult = {
          ok: true,
          status: res.statusCode,
          headers: res.headers,
          body: res.body,
          endpoint: ep.name,
          attempts,
        };
        if (res.statusCode >= 500) {
          ep.breaker.recordFailure();
          m.backendRequests.inc({ ...labels, outcome: 'http_5xx' });
          if (last?.ok === true) await last.body.dump().catch(() => undefined);
          last = result;
          continue;
        }
        ep.breaker.recordSuccess();
        m.backendRequests.inc({ ...labels, outcome: res.statusCode >= 400 ? 'http_4xx' : 'ok' });
        if (last?.ok === true) await last.body.dump().catch(() => undefined);
        return settled(result);
      } catch (err) {
        const outcome = this.classify(err, req.signal, deadline);
        m.backendRequests.inc({ ...labels, outcome });
        const error = err instanceof Error ? err : new Error(String(err));
        if (outcome === 'network_error') {
          ep.breaker.recordFailure();
          if (last?.ok !== true)
            last = { ok: false, code: 'BACKEND_NETWORK_ERROR', endpoint: ep.name, attempts, error };
          continue;
        }
        if (last?.ok === true) await last.body.dump().catch(() => undefined);
        // Timeouts and cancellations are not breaker failures and are not retried.
        return settled({
          ok: false,
          code: outcome === 'cancelled' ? 'CLIENT_DISCONNECTED' : 'BACKEND_TIMEOUT',
          endpoint: ep.name,
          attempts,
          error,
        });
      }
    }
    if (last === undefined) return settled({ ok: false, code: 'BACKEND_UNAVAILABLE', attempts });
    return settled({ ...last, attempts });
  }

  private classify(
    err: unknown,
    client: CancelSignal | undefined,
    deadline: { readonly aborted: boolean },
  ): AttemptOutcome {
    if (client?.aborted === true) return 'cancelled';
    if (deadline.aborted) return 'timeout';
    if (
      err instanceof undiciErrors.HeadersTimeoutError ||
      err instanceof undiciErrors.ConnectTimeoutError ||
      err instanceof undiciErrors.BodyTimeoutError
    ) {
      return 'timeout';
    }
    return 'network_error';
  }

  /** Starts active health checks when the backend enables them; idempotent. */
  startHealthChecks(): void {
    const hc = this.opts.backend.health_check;
    if (hc?.enabled !== true || this.healthTimer !== undefined || this.opts.type === 'websocket') return;
    const intervalMs = (hc.interval_seconds ?? 0) * 1000;
    this.healthTimer = setInterval(() => {
      void this.probeAll();
    }, intervalMs);
    this.healthTimer.unref();
  }

  /** One probe of every endpoint (also called by tests). */
  async probeAll(): Promise<void> {
    await Promise.all(this.endpoints.map((e) => this.probe(e)));
  }

  private async probe(ep: BackendEndpoint): Promise<void> {
    const hc = this.opts.backend.health_check;
    if (hc === undefined || ep.client === undefined) return;
    const labels = { service_id: this.opts.serviceId, rpc_type: this.opts.type };
    let healthy = false;
    try {
      const url = buildBackendUrl(ep.url, this.opts.backend.base_path, hc.endpoint ?? '');
      const headers: HeaderMap = {};
      for (const [k, v] of Object.entries(this.opts.backend.headers ?? {})) headers[k.toLowerCase()] = v;
      for (const [k, v] of Object.entries(hc.headers ?? {})) headers[k.toLowerCase()] = v;
      const body = hc.request_body;
      if (hc.content_type !== undefined) headers['content-type'] = hc.content_type;
      else if (body !== undefined && /^\s*[[{]/.test(body)) headers['content-type'] = 'application/json';
      const res = await ep.client.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: hc.method,
        headers,
        body: body ?? null,
        signal: AbortSignal.timeout(hc.timeout_seconds * 1000),
      });
      const text = await res.body.text();
      const statusOk =
        hc.expected_status !== undefined && hc.expected_status.length > 0
          ? hc.expected_status.includes(res.statusCode)
          : res.statusCode >= 200 && res.statusCode < 300;
      healthy = statusOk && (hc.expected_body === undefined || text.includes(hc.expected_body));
    } catch (err) {
      this.log.debug({ err, endpoint: ep.name }, 'health probe failed');
    }
    this.deps.metrics.healthChecks.inc({ ...labels, result: healthy ? 'ok' : 'fail' });
    const streak = this.probeStreak.get(ep.name) ?? { ok: 0, fail: 0 };
    if (healthy) {
      streak.ok++;
      streak.fail = 0;
      if (ep.breaker.state !== 'closed' && streak.ok >= (hc.healthy_threshold ?? 2))
        ep.breaker.recordSuccess();
    } else {
      streak.fail++;
      streak.ok = 0;
      if (ep.breaker.state !== 'open' && streak.fail >= (hc.unhealthy_threshold ?? 3)) ep.breaker.trip();
    }
    this.probeStreak.set(ep.name, streak);
  }

  async close(): Promise<void> {
    if (this.healthTimer !== undefined) clearInterval(this.healthTimer);
    this.healthTimer = undefined;
    await Promise.all(this.endpoints.flatMap((e) => (e.client === undefined ? [] : [e.client.close()])));
  }
}
