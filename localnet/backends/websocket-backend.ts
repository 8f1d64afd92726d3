/**
 * A WebSocket backend (test/dev only) speaking Ethereum-style JSON-RPC:
 *
 * * `eth_subscribe ["newHeads"]` → a subscription id; then every new head (each `intervalMs`, or
 *   on `pushNewHead()`) is pushed as `{"method":"eth_subscription","params":{"subscription",
 *   "result":{number, hash, parentHash, timestamp}}}`.
 * * `eth_unsubscribe [id]` → true/false.
 * * `eth_blockNumber` → current head number (hex).
 * * `echo [...]` → the params.
 * * A frame that is not JSON-RPC is echoed back unchanged, with the same frame type (text/binary).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { hexQuantity } from './jsonrpc-backend.js';
import { closeServer, listenLoopback, type DemoBackend } from './server-lifecycle.js';

export interface WebSocketBackendOptions {
  /** Push a new head every this many ms; 0 = only on pushNewHead(). Default 0. */
  intervalMs?: number;
  startBlock?: number;
}

export interface NewHead {
  number: string;
  hash: string;
  parentHash: string;
  timestamp: string;
}

/** The deterministic head for block `n`. */
export function newHeadFor(n: number): NewHead {
  const hash = (k: number): string => '0x' + createHash('sha256').update(`head-${k}`).digest('hex');
  return {
    number: hexQuantity(BigInt(n)),
    hash: hash(n),
    parentHash: hash(n - 1),
    timestamp: hexQuantity(BigInt(1_700_000_000 + n * 12)),
  };
}

export class WebSocketBackend implements DemoBackend {
  /** Frames received from clients. */
  messageCount = 0;
  private head: number;
  private nextSubscription = 1;
  private readonly subscriptions = new Map<WebSocket, Set<string>>();
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly server: http.Server,
    private readonly wss: WebSocketServer,
    readonly url: string,
    opts: Required<WebSocketBackendOptions>,
  ) {
    this.head = opts.startBlock;
    if (opts.intervalMs > 0) this.timer = setInterval(() => this.pushNewHead(), opts.intervalMs);
  }

  static async start(options: WebSocketBackendOptions = {}): Promise<WebSocketBackend> {
    const opts = { intervalMs: 0, startBlock: 0x1000, ...options };
    const server = http.createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end('websocket upgrade required');
    });
    const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 15 * 1024 * 1024 });
    const port = await listenLoopback(server, 'websocket backend');
    const backend = new WebSocketBackend(server, wss, `ws://127.0.0.1:${port}`, opts);
    wss.on('connection', (ws) => backend.accept(ws));
    return backend;
  }

  /** Number of open client connections. */
  get connectionCount(): number {
    return this.wss.clients.size;
  }

  /** Advances the head and pushes it to every newHeads subscription. */
  pushNewHead(): NewHead {
    this.head++;
    const head = newHeadFor(this.head);
    for (const [ws, subs] of this.subscriptions) {
      for (const subscription of subs) {
        ws.send(
          JSON.stringify({
            jsonrpc: '2.0',
            method: 'eth_subscription',
            params: { subscription, result: head },
          }),
        );
      }
    }
    return head;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const ws of this.wss.clients) ws.close(1001, 'backend closing');
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.server.closeAllConnections();
    await closeServer(this.server);
  }

  private accept(ws: WebSocket): void {
    this.subscriptions.set(ws, new Set());
    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(ws, data, isBinary));
    ws.on('close', () => this.subscriptions.delete(ws));
    ws.on('error', () => this.subscriptions.delete(ws));
  }

  private onMessage(ws: WebSocket, data: RawData, isBinary: boolean): void {
    this.messageCount++;
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    let call: { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown } | undefined;
    if (!isBinary) {
      try {
        call = JSON.parse(bytes.toString('utf8')) as typeof call;
      } catch {
        call = undefined;
      }
    }
    if (
      call === undefined ||
      call === null ||
      typeof call !== 'object' ||
      call.jsonrpc !== '2.0' ||
      typeof call.method !== 'string'
    ) {
      ws.send(bytes, { binary: isBinary });
      return;
    }
    const id = call.id ?? null;
    const params = Array.isArray(call.params) ? (call.params as unknown[]) : [];
    const reply = (body: object): void => ws.send(JSON.stringify({ jsonrpc: '2.0', id, ...body }));
    switch (call.method) {
      case 'eth_subscribe': {
        if (params[0] !== 'newHeads') {
          reply({ error: { code: -32602, message: `unsupported subscription ${String(params[0])}` } });
          return;
        }
        const subscription = hexQuantity(BigInt(this.nextSubscription++) * 0x1000n + 0xabcn);
        this.subscriptions.get(ws)?.add(subscription);
        reply({ result: subscription });
        return;
      }
      case 'eth_unsubscribe':
        reply({ result: this.subscriptions.get(ws)?.delete(String(params[0])) ?? false });
        return;
      case 'eth_blockNumber':
        reply({ result: hexQuantity(BigInt(this.head)) });
        return;
      case 'echo':
        reply({ result: params });
        return;
      default:
        reply({
          error: { code: -32601, message: `the method ${call.method} does not exist/is not available` },
        });
    }
  }
}
