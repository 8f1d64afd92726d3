/**
 * The relay listener on uWebSockets.js (relayer.md §1–§2): `/health`, `/healthz`, `/ready`,
 * `/ready/{service}`, WebSocket upgrades (through the bridge the caller attaches) and every other
 * request as an HTTP relay. gRPC needs HTTP/2, which uWS lacks: it has its own listener and a
 * gRPC request arriving here gets a 415 that names that listener.
 */
import { STATUS_CODES } from 'node:http';
import uWS from 'uWebSockets.js';
import { Cancellation } from '../core/index.js';
import { HttpRelayHandler, bodyTooLarge, type HttpSink } from './http-relay.js';
import type { RelayCore } from './relay-core.js';

export interface RelayServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
}

function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
}

/** `user:pass@` removed so readiness output never shows backend credentials. */
function redactUrl(u: URL): string {
  if (u.username === '' && u.password === '') return u.toString();
  const c = new URL(u.toString());
  c.username = '';
  c.password = '';
  return c.toString();
}

/** Per-service readiness (relayer.md §11); status 200 when ≥ 1 backend endpoint is healthy. */
export function serviceReadiness(core: RelayCore, serviceId: string): { status: number; body: unknown } {
  if (serviceId === '') return { status: 400, body: { error: 'service id required: /ready/{service_id}' } };
  const svc = core.config.services[serviceId];
  if (svc === undefined)
    return { status: 404, body: { service_id: serviceId, ready: false, error: 'unknown service' } };
  const pools = core.backends.all().filter((p) => p.key.startsWith(`${serviceId}:`));
  const endpoints = pools.flatMap((p) =>
    p.endpoints.map((e) => ({
      name: e.name,
      type: p.key.slice(serviceId.length + 1),
      url: redactUrl(e.url),
      healthy: e.breaker.isAvailable(),
    })),
  );
  const healthy = endpoints.filter((e) => e.healthy).length;
  const profileName = svc.pool_profile;
  const profile = profileName === undefined ? undefined : core.config.pool_profiles[profileName];
  const t = core.config.http_transport;
  const maxConns = profile?.max_conns_per_host || t.max_conns_per_host;
  const inFlight = core.pending.inFlight;
  const ready = healthy > 0;
  return {
    status: ready ? 200 : 503,
    body: {
      service_id: serviceId,
      ready,
      block_height: core.heights.currentHeight,
      pool: {
        profile: profileName ?? 'default',
        max_conns_per_host: maxConns,
        max_idle_conns_per_host: profile?.max_idle_conns_per_host || t.max_idle_conns_per_host,
        idle_conn_timeout_seconds: profile?.idle_conn_timeout_seconds || t.idle_conn_timeout_seconds,
        in_flight: inFlight,
        saturation_pct: maxConns > 0 ? Math.min(100, Math.round((inFlight / maxConns) * 100)) : 0,
      },
      backends: { total: endpoints.length, healthy, endpoints },
      error: ready ? '' : 'no healthy backend endpoint',
    },
  };
}

/** A uWS response wrapped as the pipeline's sink (writes corked, backpressure honoured). */
class UwsSink implements HttpSink {
  aborted = false;
  private waiting: (() => void) | undefined;

  constructor(private readonly res: uWS.HttpResponse) {}

  abort(): void {
    this.aborted = true;
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  reply(status: number, headers: readonly (readonly [string, string])[], body: Uint8Array): void {
    if (this.aborted) return;
    this.aborted = true;
    this.res.cork(() => {
      this.res.writeStatus(statusLine(status));
      for (const [k, v] of headers) this.res.writeHeader(k, v);
      this.res.end(body);
    });
  }

  startStream(status: number, headers: readonly (readonly [string, string])[]): void {
    if (this.aborted) return;
    this.res.cork(() => {
      this.res.writeStatus(statusLine(status));
      for (const [k, v] of headers) this.res.writeHeader(k, v);
    });
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.aborted) return Promise.resolve();
    let ok = true;
    this.res.cork(() => {
      ok = this.res.write(chunk);
    });
    if (ok) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.res.onWritable(() => {
        const w = this.waiting;
        this.waiting = undefined;
        w?.();
        return true;
      });
    });
  }

  end(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.res.cork(() => this.res.end());
  }
}

const JSON_CT = 'application/json';

/** A JSON answer; `close` also closes the connection after it. */
function replyJson(res: uWS.HttpResponse, status: number, body: unknown, close = false): void {
  res.cork(() => {
    res.writeStatus(statusLine(status)).writeHeader('Content-Type', JSON_CT).end(JSON.stringify(body), close);
  });
}

export class RelayServer {
  private listenSocket: uWS.us_listen_socket | undefined;

  private constructor(
    readonly app: uWS.TemplatedApp,
    readonly port: number,
    listenSocket: uWS.us_listen_socket,
  ) {
    this.listenSocket = listenSocket;
  }

  /**
   * Builds the app, lets `attach` register more routes (the WebSocket bridge) and listens.
   * Fails with a clear message when the address is taken.
   */
  static async start(
    core: RelayCore,
    opts: RelayServerOptions,
    attach: (app: uWS.TemplatedApp) => void = () => undefined,
  ): Promise<RelayServer> {
    const app = uWS.App();
    const handler = new HttpRelayHandler(core);
    attach(app);
    app.any('/*', (res, req) => {
      const url = req.getUrl();
      if (core.draining) {
        // Kept-alive connections outlive the closed listener: answer and close them.
        const body =
          url === '/health' || url === '/healthz' || url === '/ready'
            ? { status: 'shutting_down', block_height: core.heights.currentHeight }
            : { error: 'relayer is shutting down' };
        replyJson(res, 503, body, true);
        return;
      }
      if (url === '/health' || url === '/healthz' || url === '/ready') {
        replyJson(res, 200, { status: 'healthy', block_height: core.heights.currentHeight });
        return;
      }
      if (url.startsWith('/ready/')) {
        const r = serviceReadiness(core, decodeURIComponent(url.slice('/ready/'.length)));
        replyJson(res, r.status, r.body);
        return;
      }
      const contentType = req.getHeader('content-type');
      if (contentType.startsWith('application/grpc')) {
        replyJson(res, 415, {
          error: 'gRPC and gRPC-Web relays are served on the gRPC listener (grpc.listen_addr), not this port',
        });
        return;
      }
      const headers: Record<string, string> = {};
      req.forEach((k, v) => {
        headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
      });
      const sink = new UwsSink(res);
      const cancel = new Cancellation();
      res.onAborted(() => {
        sink.abort();
        cancel.abort(new Error('client disconnected'));
      });
      const limit = core.config.default_max_body_size_bytes;
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      res.onData((ab, isLast) => {
        if (done) return;
        size += ab.byteLength;
        if (size > limit) {
          done = true;
          const refusal = bodyTooLarge('request body too large');
          core.countRejected(refusal);
          if (!sink.aborted) {
            sink.aborted = true;
            replyJson(res, refusal.httpStatus, { error: refusal.message }, true);
          }
          return;
        }
        // The ArrayBuffer is only valid during this call: copy it.
        chunks.push(Buffer.from(new Uint8Array(ab)));
        if (!isLast) return;
        done = true;
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
        void core.track(handler.handle({ body, headers, signal: cancel }, sink));
      });
    });
    const socket = await new Promise<uWS.us_listen_socket | false>((resolve) => {
      app.listen(opts.host, opts.port, resolve);
    });
    if (socket === false) {
      throw new Error(
        `relay listener could not bind ${opts.host}:${opts.port} (address in use or not permitted); set listen_addr`,
      );
    }
    return new RelayServer(app, uWS.us_socket_local_port(socket), socket);
  }

  /** Stops accepting connections (open keep-alive connections finish their current request). */
  stopListening(): void {
    if (this.listenSocket === undefined) return;
    uWS.us_listen_socket_close(this.listenSocket);
    this.listenSocket = undefined;
  }
}
