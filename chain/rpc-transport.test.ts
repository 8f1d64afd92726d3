import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CometRpcTransport } from './rpc-transport.js';

/** Answers each request with whatever `next` says (status + raw body), or never. */
let next: { status: number; body: string } | 'hang' = { status: 200, body: '' };
let server: http.Server;
let url: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (next === 'hang') return;
      res.writeHead(next.status, { 'content-type': 'application/json' }).end(next.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const REQ = { jsonrpc: '2.0' as const, id: 7, method: 'status', params: {} };

async function outcome(t: CometRpcTransport, timeoutMs = 2000, signal?: AbortSignal): Promise<object> {
  try {
    return { ok: await t.call(REQ, timeoutMs, signal) };
  } catch (err) {
    const e = err as { code: string; retryable: boolean };
    return { code: e.code, retryable: e.retryable };
  }
}

describe('CometRpcTransport', () => {
  it('returns the success envelope', async () => {
    const t = new CometRpcTransport(url);
    next = { status: 200, body: JSON.stringify({ jsonrpc: '2.0', id: 7, result: { a: 1 } }) };
    expect(await outcome(t)).toEqual({ ok: { jsonrpc: '2.0', id: 7, result: { a: 1 } } });
    t.close();
  });

  it('classifies every failure shape', async () => {
    const t = new CometRpcTransport(url);
    const cases: [typeof next, object][] = [
      [
        { status: 200, body: 'not json' },
        { code: 'CHAIN_RESPONSE_MALFORMED', retryable: false },
      ],
      [
        { status: 502, body: '<html>bad gateway</html>' },
        { code: 'CHAIN_UNAVAILABLE', retryable: true },
      ],
      [
        { status: 429, body: '{}' },
        { code: 'CHAIN_UNAVAILABLE', retryable: true },
      ],
      [
        { status: 200, body: JSON.stringify({ jsonrpc: '2.0', id: 8, result: {} }) },
        { code: 'CHAIN_RESPONSE_MALFORMED', retryable: false },
      ],
      [
        {
          status: 500,
          body: JSON.stringify({
            jsonrpc: '2.0',
            id: 7,
            error: { code: -32603, message: 'Internal error', data: 'x' },
          }),
        },
        { code: 'CHAIN_RPC_ERROR', retryable: true },
      ],
      [
        {
          status: 200,
          body: JSON.stringify({ jsonrpc: '2.0', id: 7, error: { code: -32602, message: 'Invalid params' } }),
        },
        { code: 'CHAIN_RPC_ERROR', retryable: false },
      ],
      ['hang', { code: 'CHAIN_TIMEOUT', retryable: true }],
    ];
    const got: object[] = [];
    for (const [reply] of cases) {
      next = reply;
      got.push(await outcome(t, 100));
    }
    expect(got).toEqual(cases.map(([, want]) => want));
    t.close();
  });

  it('stops at once when the caller aborts', async () => {
    const t = new CometRpcTransport(url);
    next = 'hang';
    const ac = new AbortController();
    const reason = Object.assign(new Error('shutting down'), { code: 'X_ABORTED', retryable: false });
    setTimeout(() => ac.abort(reason), 20);
    expect(await outcome(t, 5000, ac.signal)).toEqual({ code: 'X_ABORTED', retryable: false });
    t.close();
  });

  it('rejects URLs it cannot use', () => {
    expect(() => new CometRpcTransport('ws://127.0.0.1:1')).toThrowError(
      expect.objectContaining({ code: 'CHAIN_CONFIG_INVALID' }),
    );
    expect(() => new CometRpcTransport('nope')).toThrowError(
      expect.objectContaining({ code: 'CHAIN_CONFIG_INVALID' }),
    );
  });
});
