/**
 * A REST backend (test/dev only), shaped like a small chain API:
 *
 * | request | answer |
 * |---|---|
 * | `GET /v1/status` | `{"chain_id","height"}` |
 * | `GET /v1/accounts/{address}` | `{"address","balance"}` (decimal string, deterministic) |
 * | `POST /v1/echo` | the request body and content type, echoed with status 200 |
 * | `GET /v1/query?…` | the query parameters as a JSON object (repeated keys → arrays) |
 * | `GET /v1/slow?ms=N` | `{"slept_ms":N}` after N ms (capped at 30 s) |
 * | `GET /v1/status-code/{code}` | an answer with that HTTP status and `{"status":code}` |
 * | `GET /v1/gzip` | a gzip-compressed JSON body with `Content-Encoding: gzip` |
 * | `GET /health` | 200 |
 * | anything else | 404 `{"error":"not found"}` |
 */
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { MAX_SLOW_DELAY_MS, balanceOf } from './jsonrpc-backend.js';
import { closeServer, listenLoopback, readBody, type DemoBackend } from './server-lifecycle.js';

export interface RestBackendOptions {
  chainId?: string;
  startHeight?: number;
  maxBodyBytes?: number;
}

export const GZIP_DEMO_BODY = { compressed: true, items: ['a', 'b', 'c'] } as const;

export class RestBackend implements DemoBackend {
  requestCount = 0;
  height: number;

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
    private readonly opts: Required<RestBackendOptions>,
  ) {
    this.height = opts.startHeight;
  }

  static async start(options: RestBackendOptions = {}): Promise<RestBackend> {
    const opts = { chainId: 'demo-1', startHeight: 1000, maxBodyBytes: 1 << 20, ...options };
    const ref: { backend?: RestBackend } = {};
    const server = http.createServer(
      (req, res) => void ref.backend?.handle(req, res).catch(() => res.destroy()),
    );
    const port = await listenLoopback(server, 'rest backend');
    const backend = new RestBackend(server, `http://127.0.0.1:${port}`, opts);
    ref.backend = backend;
    return backend;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await closeServer(this.server);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.requestCount++;
    const url = new URL(req.url ?? '/', 'http://backend');
    const path = url.pathname.replace(/\/{2,}/g, '/');
    const method = req.method ?? 'GET';
    let m: RegExpExecArray | null;

    if (method === 'GET' && path === '/health') return sendJson(res, 200, { status: 'ok' });
    if (method === 'GET' && path === '/v1/status') {
      return sendJson(res, 200, { chain_id: this.opts.chainId, height: String(this.height) });
    }
    if (method === 'GET' && (m = /^\/v1\/accounts\/([^/]+)$/.exec(path))) {
      const address = decodeURIComponent(m[1]!);
      return sendJson(res, 200, { address, balance: balanceOf(address).toString() });
    }
    if (method === 'POST' && path === '/v1/echo') {
      const body = await readBody(req, this.opts.maxBodyBytes);
      if (body === undefined) return sendJson(res, 413, { error: 'body too large' });
      return sendJson(res, 200, {
        content_type: req.headers['content-type'] ?? '',
        body: body.toString('utf8'),
      });
    }
    if (method === 'GET' && path === '/v1/query') {
      const out: Record<string, string | string[]> = {};
      for (const key of new Set(url.searchParams.keys())) {
        const all = url.searchParams.getAll(key);
        out[key] = all.length === 1 ? all[0]! : all;
      }
      return sendJson(res, 200, out);
    }
    if (method === 'GET' && path === '/v1/slow') {
      const ms = Math.min(Math.max(0, Number(url.searchParams.get('ms') ?? '1000') || 0), MAX_SLOW_DELAY_MS);
      await new Promise((r) => setTimeout(r, ms));
      return sendJson(res, 200, { slept_ms: ms });
    }
    if (method === 'GET' && (m = /^\/v1\/status-code\/(\d{3})$/.exec(path))) {
      const status = Number(m[1]);
      if (status < 200 || status > 599) return sendJson(res, 400, { error: 'status must be 200..599' });
      return sendJson(res, status, { status });
    }
    if (method === 'GET' && path === '/v1/gzip') {
      const bytes = gzipSync(Buffer.from(JSON.stringify(GZIP_DEMO_BODY)));
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-encoding': 'gzip',
        'content-length': bytes.length,
      });
      res.end(bytes);
      return;
    }
    return sendJson(res, 404, { error: 'not found' });
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': bytes.length }).end(bytes);
}
