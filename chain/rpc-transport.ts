/**
 * JSON-RPC 2.0 over HTTP POST to a CometBFT node, on node:http with a keep-alive agent. Each call
 * carries its own deadline and optional abort signal; `bind()` exposes one deadline as the
 * RpcClient that @cosmjs/tendermint-rpc's Comet38Client drives.
 */
import http from 'node:http';
import https from 'node:https';
import type { RpcClient } from '@cosmjs/tendermint-rpc';
import {
  ChainConfigError,
  ChainResponseMalformedError,
  ChainTimeoutError,
  ChainUnavailableError,
  rpcErrorFromObject,
} from './errors.js';

type JsonRpcRequest = Parameters<RpcClient['execute']>[0];
type JsonRpcSuccessResponse = Awaited<ReturnType<RpcClient['execute']>>;

/** Largest JSON-RPC reply accepted (a block with many txs stays far below this). */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export interface CometRpcTransportOptions {
  /** Concurrent sockets to the node (keep-alive pool size). */
  maxSockets?: number;
}

export class CometRpcTransport {
  readonly url: URL;
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;

  constructor(url: string, opts: CometRpcTransportOptions = {}) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (err) {
      throw new ChainConfigError('query_node_rpc_url', `not a URL: ${url}`, { cause: err });
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new ChainConfigError(
        'query_node_rpc_url',
        `scheme must be http or https, got ${parsed.protocol}`,
      );
    }
    this.url = parsed;
    const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets ?? 16 };
    this.agent = parsed.protocol === 'https:' ? new https.Agent(agentOpts) : new http.Agent(agentOpts);
    this.request = parsed.protocol === 'https:' ? https.request : http.request;
  }

  /** An RpcClient whose every call runs under `timeoutMs` and `signal`. */
  bind(timeoutMs: number, signal?: AbortSignal): RpcClient {
    return {
      execute: (req: JsonRpcRequest) => this.call(req, timeoutMs, signal),
      disconnect: () => undefined,
    };
  }

  /** Sends one request; resolves with the success envelope, throws a typed fault otherwise. */
  call(req: JsonRpcRequest, timeoutMs: number, signal?: AbortSignal): Promise<JsonRpcSuccessResponse> {
    const body = Buffer.from(JSON.stringify(req));
    const what = `rpc ${req.method}`;
    return new Promise<JsonRpcSuccessResponse>((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | undefined, value?: JsonRpcSuccessResponse): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(value!);
      };
      const onAbort = (): void => {
        const reason = signal?.reason as unknown;
        const err = reason instanceof Error ? reason : new ChainUnavailableError(`${what} aborted`);
        finish(err);
        r.destroy();
      };
      const timer = setTimeout(() => {
        finish(new ChainTimeoutError(what, timeoutMs));
        r.destroy();
      }, timeoutMs);
      const r = this.request(
        this.url,
        {
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': body.length },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE_BYTES) {
              finish(new ChainResponseMalformedError(what, `reply larger than ${MAX_RESPONSE_BYTES} bytes`));
              res.destroy();
              return;
            }
            chunks.push(c);
          });
          res.on('error', (err) => finish(new ChainUnavailableError(what, { cause: err })));
          res.on('end', () => {
            try {
              finish(undefined, parseReply(what, req, res.statusCode ?? 0, Buffer.concat(chunks)));
            } catch (err) {
              finish(err as Error);
            }
          });
        },
      );
      r.on('error', (err) => finish(new ChainUnavailableError(what, { cause: err })));
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      r.end(body);
    });
  }

  /** Closes idle keep-alive sockets. In-flight calls finish or time out on their own. */
  close(): void {
    this.agent.destroy();
  }
}

function parseReply(what: string, req: JsonRpcRequest, status: number, raw: Buffer): JsonRpcSuccessResponse {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    // CometBFT answers request errors with a JSON body even on HTTP 4xx/5xx; a body that is not
    // JSON at all comes from a proxy or a dying process.
    if (status >= 500 || status === 429) {
      throw new ChainUnavailableError(`${what} (HTTP ${status})`, { cause: err });
    }
    throw new ChainResponseMalformedError(what, `HTTP ${status}, body is not JSON`, { cause: err });
  }
  if (typeof json !== 'object' || json === null) {
    throw new ChainResponseMalformedError(what, 'reply is not a JSON object');
  }
  const obj = json as Record<string, unknown>;
  if ('error' in obj && obj.error !== undefined && obj.error !== null) {
    throw rpcErrorFromObject(req.method, obj.error);
  }
  if (status >= 500 || status === 429) throw new ChainUnavailableError(`${what} (HTTP ${status})`);
  if (obj.jsonrpc !== '2.0' || !('result' in obj)) {
    throw new ChainResponseMalformedError(what, 'reply is not a JSON-RPC 2.0 success object');
  }
  if (obj.id !== req.id) {
    throw new ChainResponseMalformedError(
      what,
      `reply id ${String(obj.id)} does not match request id ${req.id}`,
    );
  }
  return { jsonrpc: '2.0', id: req.id, result: obj.result };
}
