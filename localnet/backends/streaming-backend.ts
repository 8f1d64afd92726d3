/**
 * A streaming backend (test/dev only): Server-Sent Events and NDJSON.
 *
 * | request | answer |
 * |---|---|
 * | `GET|POST /sse?count=N&interval_ms=M` | `text/event-stream`: N events `id: i`, `data: {"seq":i,"total":N}` |
 * | `GET|POST /ndjson?count=N&interval_ms=M` | `application/x-ndjson`: N lines `{"seq":i,"total":N}` |
 * | either with `&fail_after=K` | the connection is destroyed after K items (a mid-stream failure) |
 * | `POST /ndjson/echo` | every line of the request body, streamed back one per line |
 *
 * Defaults: count 5, interval 10 ms; count is capped at 10 000 and the interval at 5 s.
 */
import http from 'node:http';
import { closeServer, listenLoopback, readBody, type DemoBackend } from './server-lifecycle.js';

export const MAX_STREAM_ITEMS = 10_000;
export const MAX_STREAM_INTERVAL_MS = 5_000;

/** The JSON of stream item `seq` of `total`. */
export function streamItem(seq: number, total: number): string {
  return JSON.stringify({ seq, total });
}

/** The exact SSE bytes for N events (what a client should reassemble). */
export function expectedSse(count: number): string {
  let out = '';
  for (let i = 0; i < count; i++) out += `id: ${i}\ndata: ${streamItem(i, count)}\n\n`;
  return out;
}

/** The exact NDJSON bytes for N lines. */
export function expectedNdjson(count: number): string {
  let out = '';
  for (let i = 0; i < count; i++) out += `${streamItem(i, count)}\n`;
  return out;
}

export class StreamingBackend implements DemoBackend {
  requestCount = 0;
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
  ) {}

  static async start(): Promise<StreamingBackend> {
    const ref: { backend?: StreamingBackend } = {};
    const server = http.createServer(
      (req, res) => void ref.backend?.handle(req, res).catch(() => res.destroy()),
    );
    const port = await listenLoopback(server, 'streaming backend');
    const backend = new StreamingBackend(server, `http://127.0.0.1:${port}`);
    ref.backend = backend;
    return backend;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.server.closeAllConnections();
    await closeServer(this.server);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.requestCount++;
    const url = new URL(req.url ?? '/', 'http://backend');
    const q = url.searchParams;
    const count = clampInt(q.get('count'), 5, 0, MAX_STREAM_ITEMS);
    const intervalMs = clampInt(q.get('interval_ms'), 10, 0, MAX_STREAM_INTERVAL_MS);
    const failAfter = q.has('fail_after') ? clampInt(q.get('fail_after'), 0, 0, MAX_STREAM_ITEMS) : undefined;

    if (url.pathname === '/ndjson/echo' && req.method === 'POST') {
      const body = await readBody(req, 1 << 20);
      if (body === undefined) {
        res.writeHead(413).end();
        return;
      }
      const lines = body
        .toString('utf8')
        .split('\n')
        .filter((l) => l.length > 0);
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' });
      this.emit(res, lines.length, intervalMs, undefined, (i) => `${lines[i]}\n`);
      return;
    }
    // Drain any request body (POST is accepted like GET).
    req.resume();
    if (url.pathname === '/sse') {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      this.emit(res, count, intervalMs, failAfter, (i) => `id: ${i}\ndata: ${streamItem(i, count)}\n\n`);
      return;
    }
    if (url.pathname === '/ndjson') {
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' });
      this.emit(res, count, intervalMs, failAfter, (i) => `${streamItem(i, count)}\n`);
      return;
    }
    const bytes = Buffer.from(JSON.stringify({ error: 'not found' }));
    res.writeHead(404, { 'content-type': 'application/json', 'content-length': bytes.length }).end(bytes);
  }

  /** Writes item 0 at once, then one item per interval; ends or breaks the connection at the end. */
  private emit(
    res: http.ServerResponse,
    count: number,
    intervalMs: number,
    failAfter: number | undefined,
    item: (i: number) => string,
  ): void {
    let i = 0;
    const step = (): void => {
      if (res.destroyed) return;
      if (failAfter !== undefined && i >= failAfter) {
        res.socket?.destroy();
        return;
      }
      if (i >= count) {
        res.end();
        return;
      }
      res.write(item(i++));
      const t = setTimeout(() => {
        this.timers.delete(t);
        step();
      }, intervalMs);
      this.timers.add(t);
    };
    step();
  }
}

function clampInt(text: string | null, dflt: number, min: number, max: number): number {
  const n = text === null ? dflt : Number.parseInt(text, 10);
  if (!Number.isFinite(n)) return dflt;
  return Math.min(max, Math.max(min, n));
}
