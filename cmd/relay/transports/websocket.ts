/**
 * WebSocket relays the way PATH bridges them: the upgrade carries the handshake headers
 * (Target-Service-Id, App-Address, Rpc-Type 2, the Pocket-Session-* headers, the supplier and a
 * ring signature over an empty-payload RelayRequest); every client frame is a freshly signed
 * RelayRequest (binary frame) and every relayer frame must be a supplier-signed RelayResponse.
 *
 * Connections are pooled per session: a relay takes an idle connection of its session (or dials
 * one), sends its frame and waits for the next frame. Subscriptions (`subscribe`) keep one
 * connection and verify every push.
 */
import { WebSocket, type RawData } from 'ws';
import type { EcBackend } from '../../../rings/index.js';
import type { SigningContext } from '../session.js';
import {
  checkWebSocketFrame,
  failure,
  judgeBody,
  transportFailure,
  type AttemptResult,
  type OutgoingRelay,
  type RelayTransport,
} from './types.js';

const READ_LIMIT_BYTES = 15 * 1024 * 1024;

/** Upgrade headers PATH sends (gateway.md §4); `handshakeSignature` is base64. */
export function handshakeHeaders(
  ctx: SigningContext,
  handshakeSignature: Uint8Array,
): Record<string, string> {
  return {
    'Target-Service-Id': ctx.header.serviceId,
    'App-Address': ctx.header.applicationAddress,
    'Rpc-Type': '2',
    'Pocket-Session-Id': ctx.header.sessionId,
    'Pocket-Session-Start-Height': String(ctx.header.sessionStartBlockHeight),
    'Pocket-Session-End-Height': String(ctx.header.sessionEndBlockHeight),
    'Pocket-Supplier-Address': ctx.supplierAddress,
    'Pocket-Signature': Buffer.from(handshakeSignature).toString('base64'),
  };
}

type FrameOrClose = { data: Buffer } | { closed: { code: number; reason: string } };

/** One gateway connection: frames queued in arrival order, the close recorded. */
export class WebSocketConnection {
  private readonly frames: FrameOrClose[] = [];
  private waiter: ((f: FrameOrClose) => void) | undefined;
  private closedWith: { code: number; reason: string } | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: RawData) => this.deliver({ data: toBuffer(data) }));
    ws.on('close', (code, reason) => {
      this.closedWith = { code, reason: reason.toString() };
      this.deliver({ closed: this.closedWith });
    });
  }

  static open(
    url: string,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<WebSocketConnection> {
    const ws = new WebSocket(url, { headers, skipUTF8Validation: true, maxPayload: READ_LIMIT_BYTES });
    const conn = new WebSocketConnection(ws);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        ws.terminate();
        reject(signal?.reason as Error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      ws.once('open', () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(conn);
      });
      ws.once('unexpected-response', (_req, res) => {
        signal?.removeEventListener('abort', onAbort);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const err = new Error(
            `handshake refused with HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`,
          );
          (err as Error & { status?: number }).status = res.statusCode;
          reject(err);
        });
        ws.terminate();
      });
      ws.once('error', (err) => {
        signal?.removeEventListener('abort', onAbort);
        reject(err);
      });
    });
  }

  get isOpen(): boolean {
    return this.closedWith === undefined && this.ws.readyState === WebSocket.OPEN;
  }

  private deliver(f: FrameOrClose): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (w !== undefined) w(f);
    else this.frames.push(f);
  }

  send(bytes: Uint8Array): void {
    this.ws.send(bytes, { binary: true });
  }

  /** The next frame, or the close; rejects when `signal` aborts first. */
  next(signal: AbortSignal): Promise<FrameOrClose> {
    const f = this.frames.shift();
    if (f !== undefined) return Promise.resolve(f);
    if (this.closedWith !== undefined) return Promise.resolve({ closed: this.closedWith });
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.waiter = undefined;
        reject(signal.reason as Error);
      };
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiter = (frame) => {
        signal.removeEventListener('abort', onAbort);
        resolve(frame);
      };
    });
  }

  close(): Promise<void> {
    if (this.closedWith !== undefined || this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.ws.terminate();
        resolve();
      }, 1_000);
      this.ws.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      this.ws.close(1000, 'done');
    });
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

export interface WebSocketTransportOptions {
  backend: EcBackend;
  /** ws:// or wss:// URL of the relayer's WebSocket endpoint. */
  url: string;
  /** Ring signature of an empty-payload RelayRequest for the context (the handshake signature). */
  handshakeSignature: (ctx: SigningContext) => Uint8Array;
  jsonRpc: boolean;
}

/** Verifies a frame and judges it as the answer to a relay. */
export function judgeFrame(
  backend: EcBackend,
  f: FrameOrClose,
  ctx: SigningContext,
  jsonRpc: boolean,
): AttemptResult {
  if ('closed' in f) {
    return failure(
      `ws_closed_${f.closed.code}`,
      `the relayer closed the connection with ${f.closed.code} ${f.closed.reason}`.trim(),
      f.closed.code === 4000 || f.closed.code === 1013 || f.closed.code === 1011,
    );
  }
  const c = checkWebSocketFrame(backend, f.data, ctx);
  if (!c.ok) return failure(c.reason, c.message);
  return judgeBody(c.status, c.body, 1, { jsonRpc });
}

export class WebSocketTransport implements RelayTransport {
  private readonly idle = new Map<string, WebSocketConnection[]>();
  private readonly all = new Set<WebSocketConnection>();

  constructor(private readonly o: WebSocketTransportOptions) {}

  /** Dials a connection for the context's session. */
  async connect(ctx: SigningContext, signal?: AbortSignal): Promise<WebSocketConnection> {
    const conn = await WebSocketConnection.open(
      this.o.url,
      handshakeHeaders(ctx, this.o.handshakeSignature(ctx)),
      signal,
    );
    this.all.add(conn);
    conn.ws.once('close', () => this.all.delete(conn));
    return conn;
  }

  async send(relay: OutgoingRelay, signal: AbortSignal): Promise<AttemptResult> {
    const key = relay.ctx.header.sessionId;
    for (const [other, conns] of this.idle) {
      // Connections of an earlier session are not reused: close them once a newer one is in use.
      if (other === key) continue;
      this.idle.delete(other);
      for (const c of conns) void c.close();
    }
    const pool = this.idle.get(key) ?? [];
    let conn = pool.pop();
    while (conn !== undefined && !conn.isOpen) conn = pool.pop();
    try {
      conn ??= await this.connect(relay.ctx, signal);
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (status !== undefined) {
        return failure(`relayer_http_${status}`, (err as Error).message, status >= 500);
      }
      return transportFailure(err, signal);
    }
    let frame: FrameOrClose;
    try {
      conn.send(relay.bytes);
      frame = await conn.next(signal);
    } catch (err) {
      // The answer may still come: the connection cannot be reused for another relay.
      void conn.close();
      return transportFailure(err, signal);
    }
    const result = judgeFrame(this.o.backend, frame, relay.ctx, this.o.jsonRpc);
    if (conn.isOpen) {
      const list = this.idle.get(key) ?? [];
      list.push(conn);
      this.idle.set(key, list);
    }
    return result;
  }

  async close(): Promise<void> {
    this.idle.clear();
    await Promise.all([...this.all].map((c) => c.close()));
  }
}
