/**
 * An Ethereum-like JSON-RPC 2.0 backend over HTTP POST (test/dev only). Deterministic answers so
 * relays can be compared byte for byte:
 *
 * | method | result |
 * |---|---|
 * | `eth_blockNumber` | current block number, hex quantity (advances with `advanceBlocks`) |
 * | `eth_chainId` | configured chain id, hex quantity |
 * | `eth_getBalance [address, tag]` | hex quantity derived from SHA-256(address) |
 * | `eth_call [{to, data}, tag]` | `0x` + hex SHA-256(to ‖ data) |
 * | `demo_error` | JSON-RPC error -32000 `execution reverted` |
 * | `demo_slow [delay_ms]` | `"slow"` after the delay (capped at 30 s) |
 * | `demo_httpStatus [status]` | an empty-bodied HTTP reply with that status (e.g. 503) |
 * | `demo_echoHeaders` | the request headers (lower-case names) |
 *
 * Batches (JSON arrays) are answered as arrays. `GET /health` answers 200.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { closeServer, listenLoopback, readBody, type DemoBackend } from './server-lifecycle.js';

export interface JsonRpcBackendOptions {
  /** Default 1 (mainnet). */
  chainId?: number;
  /** First block number; default 0x1000. */
  startBlock?: number;
  maxBodyBytes?: number;
}

export const MAX_SLOW_DELAY_MS = 30_000;

type JsonRpcId = string | number | null;
interface JsonRpcCall {
  jsonrpc?: unknown;
  id?: unknown;
  method?: unknown;
  params?: unknown;
}
type Reply =
  { jsonrpc: '2.0'; id: JsonRpcId; result: unknown } | { jsonrpc: '2.0'; id: JsonRpcId; error: object };
/** An answer that is not JSON-RPC at all: a bare HTTP status. */
class HttpStatusReply {
  constructor(readonly status: number) {}
}

export class JsonRpcBackend implements DemoBackend {
  /** Requests received (HTTP requests, not batch items). */
  requestCount = 0;
  private blockNumber: number;

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
    private readonly opts: Required<JsonRpcBackendOptions>,
  ) {
    this.blockNumber = opts.startBlock;
  }

  static async start(options: JsonRpcBackendOptions = {}): Promise<JsonRpcBackend> {
    const opts = { chainId: 1, startBlock: 0x1000, maxBodyBytes: 1 << 20, ...options };
    const ref: { backend?: JsonRpcBackend } = {};
    const server = http.createServer(
      (req, res) => void ref.backend?.handle(req, res).catch(() => res.destroy()),
    );
    const port = await listenLoopback(server, 'jsonrpc backend');
    const backend = new JsonRpcBackend(server, `http://127.0.0.1:${port}`, opts);
    ref.backend = backend;
    return backend;
  }

  get currentBlock(): number {
    return this.blockNumber;
  }

  advanceBlocks(n = 1): void {
    this.blockNumber += n;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await closeServer(this.server);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.requestCount++;
    if (req.method === 'GET' && req.url === '/health') {
      sendJson(res, 200, { status: 'ok' });
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    const body = await readBody(req, this.opts.maxBodyBytes);
    if (body === undefined) {
      res.writeHead(413).end();
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      sendJson(res, 200, errorReply(null, -32700, 'Parse error'));
      return;
    }
    if (Array.isArray(parsed)) {
      if (parsed.length === 0) {
        sendJson(res, 200, errorReply(null, -32600, 'Invalid Request'));
        return;
      }
      const replies = await Promise.all(parsed.map((c) => this.call(c as JsonRpcCall, req)));
      sendJson(
        res,
        200,
        replies.map((r) => (r instanceof HttpStatusReply ? errorReply(null, -32603, 'Internal error') : r)),
      );
      return;
    }
    const reply = await this.call(parsed as JsonRpcCall, req);
    if (reply instanceof HttpStatusReply) {
      res.writeHead(reply.status).end();
      return;
    }
    sendJson(res, 200, reply);
  }

  private async call(c: JsonRpcCall, req: http.IncomingMessage): Promise<Reply | HttpStatusReply> {
    const id: JsonRpcId = typeof c?.id === 'string' || typeof c?.id === 'number' ? c.id : null;
    if (typeof c !== 'object' || c === null || c.jsonrpc !== '2.0' || typeof c.method !== 'string') {
      return errorReply(id, -32600, 'Invalid Request');
    }
    const params = Array.isArray(c.params) ? (c.params as unknown[]) : [];
    switch (c.method) {
      case 'eth_blockNumber':
        return ok(id, hexQuantity(BigInt(this.blockNumber)));
      case 'eth_chainId':
        return ok(id, hexQuantity(BigInt(this.opts.chainId)));
      case 'eth_getBalance': {
        const address = params[0];
        if (typeof address !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(address)) {
          return errorReply(id, -32602, 'invalid argument 0: hex string of 20 bytes expected');
        }
        return ok(id, hexQuantity(balanceOf(address)));
      }
      case 'eth_call': {
        const tx = params[0] as { to?: unknown; data?: unknown } | undefined;
        if (typeof tx !== 'object' || tx === null || typeof tx.to !== 'string') {
          return errorReply(id, -32602, 'invalid argument 0: call object with "to" expected');
        }
        const data = typeof tx.data === 'string' ? tx.data : '0x';
        return ok(
          id,
          '0x' + createHash('sha256').update(`${tx.to.toLowerCase()}|${data.toLowerCase()}`).digest('hex'),
        );
      }
      case 'demo_error':
        return errorReply(id, -32000, 'execution reverted', '0x08c379a0');
      case 'demo_slow': {
        const delay =
          typeof params[0] === 'number' ? Math.min(Math.max(0, params[0]), MAX_SLOW_DELAY_MS) : 1000;
        await new Promise((r) => setTimeout(r, delay));
        return ok(id, 'slow');
      }
      case 'demo_httpStatus': {
        const status =
          typeof params[0] === 'number' && params[0] >= 200 && params[0] <= 599 ? params[0] : 500;
        return new HttpStatusReply(status);
      }
      case 'demo_echoHeaders':
        return ok(id, { ...req.headers });
      default:
        return errorReply(id, -32601, `the method ${c.method} does not exist/is not available`);
    }
  }
}

/** Deterministic demo balance: the low 64 bits of SHA-256(lower-case address), in wei. */
export function balanceOf(address: string): bigint {
  return createHash('sha256').update(address.toLowerCase()).digest().readBigUInt64BE(0);
}

export function hexQuantity(n: bigint): string {
  return '0x' + n.toString(16);
}

function ok(id: JsonRpcId, result: unknown): Reply {
  return { jsonrpc: '2.0', id, result };
}

function errorReply(id: JsonRpcId, code: number, message: string, data?: string): Reply {
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': bytes.length }).end(bytes);
}
