/** Each demo backend driven by a real client over 127.0.0.1. */
import http2 from 'node:http2';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  GRPC_METHODS,
  GZIP_DEMO_BODY,
  GrpcBackend,
  GrpcStatus,
  JsonRpcBackend,
  RestBackend,
  StreamingBackend,
  WebSocketBackend,
  balanceOf,
  decodeGrpcMessage,
  demoBlock,
  demoMessages,
  encodeGrpcFrame,
  encodeGrpcMessage,
  expectedNdjson,
  expectedSse,
  newHeadFor,
  parseGrpcFrames,
  parseGrpcTimeoutMs,
  startDemoBackends,
  type DemoBackend,
} from './index.js';

const open: DemoBackend[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((b) => b.close()));
});
function track<T extends DemoBackend>(b: T): T {
  open.push(b);
  return b;
}

async function rpc(url: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

describe('JsonRpcBackend', () => {
  it('answers the eth methods deterministically', async () => {
    const b = track(await JsonRpcBackend.start({ chainId: 0x7a69, startBlock: 0x10 }));
    expect(b.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await rpc(b.url, { jsonrpc: '2.0', id: 1, method: 'eth_blockNumber', params: [] })).toEqual({
      status: 200,
      json: { jsonrpc: '2.0', id: 1, result: '0x10' },
    });
    b.advanceBlocks(2);
    expect((await rpc(b.url, { jsonrpc: '2.0', id: 2, method: 'eth_blockNumber' })).json).toEqual({
      jsonrpc: '2.0',
      id: 2,
      result: '0x12',
    });
    expect((await rpc(b.url, { jsonrpc: '2.0', id: 'c', method: 'eth_chainId' })).json).toEqual({
      jsonrpc: '2.0',
      id: 'c',
      result: '0x7a69',
    });
    const addr = '0x' + 'ab'.repeat(20);
    expect(
      (await rpc(b.url, { jsonrpc: '2.0', id: 3, method: 'eth_getBalance', params: [addr, 'latest'] })).json,
    ).toEqual({
      jsonrpc: '2.0',
      id: 3,
      result: '0x' + balanceOf(addr).toString(16),
    });
    const call = await rpc(b.url, {
      jsonrpc: '2.0',
      id: 4,
      method: 'eth_call',
      params: [{ to: addr, data: '0x70a08231' }, 'latest'],
    });
    expect(call.json).toEqual({ jsonrpc: '2.0', id: 4, result: expect.stringMatching(/^0x[0-9a-f]{64}$/) });
    const again = await rpc(b.url, {
      jsonrpc: '2.0',
      id: 4,
      method: 'eth_call',
      params: [{ to: addr, data: '0x70a08231' }, 'latest'],
    });
    expect(again.json).toEqual(call.json);
  });

  it('returns JSON-RPC errors as values and supports batches', async () => {
    const b = track(await JsonRpcBackend.start());
    expect((await rpc(b.url, { jsonrpc: '2.0', id: 5, method: 'demo_error' })).json).toEqual({
      jsonrpc: '2.0',
      id: 5,
      error: { code: -32000, message: 'execution reverted', data: '0x08c379a0' },
    });
    expect((await rpc(b.url, { jsonrpc: '2.0', id: 6, method: 'nope' })).json).toEqual({
      jsonrpc: '2.0',
      id: 6,
      error: { code: -32601, message: 'the method nope does not exist/is not available' },
    });
    expect(
      (await rpc(b.url, { jsonrpc: '2.0', id: 7, method: 'eth_getBalance', params: ['0x12'] })).json,
    ).toEqual({
      jsonrpc: '2.0',
      id: 7,
      error: { code: -32602, message: 'invalid argument 0: hex string of 20 bytes expected' },
    });
    const parse = await fetch(b.url, { method: 'POST', body: '{oops', signal: AbortSignal.timeout(5000) });
    expect(await parse.json()).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32700, message: 'Parse error' },
    });
    expect(
      (
        await rpc(b.url, [
          { jsonrpc: '2.0', id: 1, method: 'eth_chainId' },
          { jsonrpc: '2.0', id: 2, method: 'demo_error' },
        ])
      ).json,
    ).toEqual([
      { jsonrpc: '2.0', id: 1, result: '0x1' },
      { jsonrpc: '2.0', id: 2, error: { code: -32000, message: 'execution reverted', data: '0x08c379a0' } },
    ]);
  });

  it('is slow on demand, fails with an HTTP status on demand, echoes headers', async () => {
    const b = track(await JsonRpcBackend.start());
    // A client deadline shorter than the requested delay fires; a short delay answers.
    await expect(
      fetch(b.url, {
        method: 'POST',
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'demo_slow', params: [2000] }),
        signal: AbortSignal.timeout(100),
      }),
    ).rejects.toThrow();
    expect((await rpc(b.url, { jsonrpc: '2.0', id: 1, method: 'demo_slow', params: [10] })).json).toEqual({
      jsonrpc: '2.0',
      id: 1,
      result: 'slow',
    });
    expect(await rpc(b.url, { jsonrpc: '2.0', id: 2, method: 'demo_httpStatus', params: [503] })).toEqual({
      status: 503,
      json: undefined,
    });
    const res = await fetch(b.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'pocket-supplier': 'pokt1s' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'demo_echoHeaders' }),
      signal: AbortSignal.timeout(5000),
    });
    const echoed = (await res.json()) as { result: Record<string, string> };
    expect({ supplier: echoed.result['pocket-supplier'], ct: echoed.result['content-type'] }).toEqual({
      supplier: 'pokt1s',
      ct: 'application/json',
    });
    expect(b.requestCount).toBe(4);
  });
});

describe('RestBackend', () => {
  it('serves the documented routes', async () => {
    const b = track(await RestBackend.start({ chainId: 'demo-9', startHeight: 77 }));
    const get = async (path: string): Promise<{ status: number; body: unknown; encoding: string | null }> => {
      const res = await fetch(b.url + path, { signal: AbortSignal.timeout(5000) });
      return { status: res.status, body: await res.json(), encoding: res.headers.get('content-encoding') };
    };
    expect(await get('/v1/status')).toEqual({
      status: 200,
      body: { chain_id: 'demo-9', height: '77' },
      encoding: null,
    });
    expect(await get('/v1/accounts/pokt1abc')).toEqual({
      status: 200,
      body: { address: 'pokt1abc', balance: balanceOf('pokt1abc').toString() },
      encoding: null,
    });
    expect(await get('/v1/query?a=1&b=2&b=3')).toEqual({
      status: 200,
      body: { a: '1', b: ['2', '3'] },
      encoding: null,
    });
    expect(await get('/v1/status-code/500')).toEqual({ status: 500, body: { status: 500 }, encoding: null });
    expect(await get('/v1/slow?ms=20')).toEqual({ status: 200, body: { slept_ms: 20 }, encoding: null });
    expect(await get('/nope')).toEqual({ status: 404, body: { error: 'not found' }, encoding: null });
    // fetch decompresses transparently; the header shows the wire was gzip.
    expect(await get('/v1/gzip')).toEqual({ status: 200, body: GZIP_DEMO_BODY, encoding: 'gzip' });
    const echo = await fetch(b.url + '/v1/echo', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
      signal: AbortSignal.timeout(5000),
    });
    expect(await echo.json()).toEqual({ content_type: 'text/plain', body: 'hello' });
  });
});

describe('WebSocketBackend', () => {
  function connect(url: string): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
  }
  function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
    return new Promise((resolve) =>
      ws.once('message', (data: Buffer, isBinary: boolean) => resolve({ data: Buffer.from(data), isBinary })),
    );
  }

  it('pushes newHeads to subscribers, stops after unsubscribe, echoes non-JSON-RPC frames', async () => {
    const b = track(await WebSocketBackend.start({ startBlock: 100 }));
    const ws = await connect(b.url);
    try {
      let msg = nextMessage(ws);
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_subscribe', params: ['newHeads'] }));
      const sub = JSON.parse((await msg).data.toString()) as { result: string };
      expect(sub).toEqual({ jsonrpc: '2.0', id: 1, result: expect.stringMatching(/^0x[0-9a-f]+$/) });

      msg = nextMessage(ws);
      b.pushNewHead();
      expect(JSON.parse((await msg).data.toString())).toEqual({
        jsonrpc: '2.0',
        method: 'eth_subscription',
        params: { subscription: sub.result, result: newHeadFor(101) },
      });

      msg = nextMessage(ws);
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'eth_unsubscribe', params: [sub.result] }));
      expect(JSON.parse((await msg).data.toString())).toEqual({ jsonrpc: '2.0', id: 2, result: true });
      b.pushNewHead();

      msg = nextMessage(ws);
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'eth_blockNumber' }));
      // The next frame is the blockNumber reply, not a head: the unsubscribe took effect.
      expect(JSON.parse((await msg).data.toString())).toEqual({ jsonrpc: '2.0', id: 3, result: '0x66' });

      msg = nextMessage(ws);
      ws.send('plain text');
      expect(await msg).toEqual({ data: Buffer.from('plain text'), isBinary: false });
      msg = nextMessage(ws);
      ws.send(Buffer.from([1, 2, 3]));
      expect(await msg).toEqual({ data: Buffer.from([1, 2, 3]), isBinary: true });
    } finally {
      ws.terminate();
    }
  });

  it('pushes on its own interval when configured', async () => {
    const b = track(await WebSocketBackend.start({ intervalMs: 20, startBlock: 0 }));
    const ws = await connect(b.url);
    try {
      const heads: string[] = [];
      const got3 = new Promise<void>((resolve) =>
        ws.on('message', (d: Buffer) => {
          const m = JSON.parse(d.toString()) as { method?: string; params?: { result: { number: string } } };
          if (m.method === 'eth_subscription') heads.push(m.params!.result.number);
          if (heads.length === 3) resolve();
        }),
      );
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_subscribe', params: ['newHeads'] }));
      await got3;
      const first = Number(heads[0]);
      expect(heads).toEqual([first, first + 1, first + 2].map((n) => '0x' + n.toString(16)));
    } finally {
      ws.terminate();
    }
  });
});

describe('StreamingBackend', () => {
  async function readAll(res: Response): Promise<{ text: string; chunks: number }> {
    const reader = res.body!.getReader();
    let text = '';
    let chunks = 0;
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { text, chunks };
      chunks++;
      text += dec.decode(value, { stream: true });
    }
  }

  it('streams SSE events over time', async () => {
    const b = track(await StreamingBackend.start());
    const res = await fetch(`${b.url}/sse?count=4&interval_ms=15`, { signal: AbortSignal.timeout(5000) });
    expect({ status: res.status, type: res.headers.get('content-type') }).toEqual({
      status: 200,
      type: 'text/event-stream',
    });
    const { text, chunks } = await readAll(res);
    expect(text).toBe(expectedSse(4));
    expect(chunks).toBeGreaterThan(1);
  });

  it('streams NDJSON, echoes NDJSON lines, and breaks mid-stream on demand', async () => {
    const b = track(await StreamingBackend.start());
    const res = await fetch(`${b.url}/ndjson?count=3&interval_ms=0`, {
      method: 'POST',
      signal: AbortSignal.timeout(5000),
    });
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    expect((await readAll(res)).text).toBe(expectedNdjson(3));

    const echo = await fetch(`${b.url}/ndjson/echo`, {
      method: 'POST',
      body: '{"a":1}\n{"b":2}\n',
      signal: AbortSignal.timeout(5000),
    });
    expect((await readAll(echo)).text).toBe('{"a":1}\n{"b":2}\n');

    const broken = await fetch(`${b.url}/ndjson?count=10&interval_ms=5&fail_after=2`, {
      signal: AbortSignal.timeout(5000),
    });
    await expect(readAll(broken)).rejects.toThrow();
  });
});

describe('GrpcBackend', () => {
  interface GrpcResult {
    status: number;
    headers: http2.IncomingHttpHeaders;
    messages: Buffer[];
    trailers: http2.IncomingHttpHeaders;
  }

  async function grpcCall(
    url: string,
    path: string,
    body: Buffer,
    extraHeaders: Record<string, string> = {},
  ): Promise<GrpcResult> {
    const client = http2.connect(url);
    try {
      return await new Promise<GrpcResult>((resolve, reject) => {
        client.on('error', reject);
        const req = client.request({
          ':method': 'POST',
          ':path': path,
          'content-type': 'application/grpc',
          te: 'trailers',
          ...extraHeaders,
        });
        let headers: http2.IncomingHttpHeaders = {};
        let trailers: http2.IncomingHttpHeaders = {};
        const chunks: Buffer[] = [];
        req.on('response', (h) => (headers = h));
        req.on('trailers', (t) => (trailers = t));
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('error', reject);
        req.on('end', () => {
          const { frames, rest } = parseGrpcFrames(Buffer.concat(chunks));
          if (rest.length) reject(new Error('partial frame'));
          resolve({
            status: Number(headers[':status']),
            headers,
            messages: frames.map((f) => f.message),
            trailers,
          });
        });
        req.end(body);
      });
    } finally {
      client.close();
    }
  }

  it('answers a unary call with framing and OK trailers', async () => {
    const b = track(await GrpcBackend.start({ startHeight: 4242n }));
    const r = await grpcCall(b.url, GRPC_METHODS.getBlockHeight, encodeGrpcFrame(new Uint8Array()));
    expect({
      status: r.status,
      type: r.headers['content-type'],
      heights: r.messages.map((m) => demoMessages.decodeHeight(m)),
      grpcStatus: r.trailers['grpc-status'],
    }).toEqual({ status: 200, type: 'application/grpc+proto', heights: [4242n], grpcStatus: '0' });

    const payload = Buffer.from('echo me');
    const echo = await grpcCall(b.url, GRPC_METHODS.echo, encodeGrpcFrame(demoMessages.encodeEcho(payload)));
    expect(echo.messages.map((m) => Buffer.from(demoMessages.decodeEcho(m)))).toEqual([payload]);
    const gz = await grpcCall(
      b.url,
      GRPC_METHODS.echo,
      encodeGrpcFrame(gzipSync(demoMessages.encodeEcho(payload)), true),
      {
        'grpc-encoding': 'gzip',
      },
    );
    expect({
      msgs: gz.messages.map((m) => Buffer.from(demoMessages.decodeEcho(m))),
      st: gz.trailers['grpc-status'],
    }).toEqual({
      msgs: [payload],
      st: '0',
    });
  });

  it('streams server messages and ends with OK', async () => {
    const b = track(await GrpcBackend.start({ startHeight: 10n }));
    const r = await grpcCall(
      b.url,
      GRPC_METHODS.streamBlocks,
      encodeGrpcFrame(demoMessages.encodeStreamRequest({ count: 3, intervalMs: 5 })),
    );
    expect({
      blocks: r.messages.map((m) => demoMessages.decodeBlock(m)),
      st: r.trailers['grpc-status'],
    }).toEqual({
      blocks: [demoBlock(10n), demoBlock(11n), demoBlock(12n)].map((x) => ({
        height: x.height,
        hash: new Uint8Array(x.hash),
      })),
      st: '0',
    });
  });

  it('answers errors as trailers-only responses', async () => {
    const b = track(await GrpcBackend.start());
    const unknown = await grpcCall(b.url, '/demo.DemoService/Nope', encodeGrpcFrame(new Uint8Array()));
    expect({
      status: unknown.status,
      grpcStatus: unknown.headers['grpc-status'],
      msg: decodeGrpcMessage(String(unknown.headers['grpc-message'])),
      messages: unknown.messages,
    }).toEqual({ status: 200, grpcStatus: '12', msg: 'unknown method /demo.DemoService/Nope', messages: [] });

    const fail = await grpcCall(
      b.url,
      GRPC_METHODS.fail,
      encodeGrpcFrame(
        demoMessages.encodeFail({ code: GrpcStatus.UNAVAILABLE, message: 'down 100% ünïcode' }),
      ),
    );
    expect({
      st: fail.headers['grpc-status'],
      msg: decodeGrpcMessage(String(fail.headers['grpc-message'])),
    }).toEqual({
      st: '14',
      msg: 'down 100% ünïcode',
    });

    const slow = await grpcCall(
      b.url,
      GRPC_METHODS.streamBlocks,
      encodeGrpcFrame(demoMessages.encodeStreamRequest({ count: 100, intervalMs: 50 })),
      { 'grpc-timeout': '120m' },
    );
    expect({
      n: slow.messages.length > 0 && slow.messages.length < 100,
      st: slow.trailers['grpc-status'],
    }).toEqual({
      n: true,
      st: '4',
    });
  });

  it('frames, percent-encodes and parses timeouts per the gRPC spec', () => {
    expect(encodeGrpcFrame(Buffer.from([0xaa, 0xbb]))).toEqual(Buffer.from([0, 0, 0, 0, 2, 0xaa, 0xbb]));
    const two = Buffer.concat([
      encodeGrpcFrame(Buffer.from('a')),
      encodeGrpcFrame(Buffer.from('bc'), true),
      Buffer.from([0, 0]),
    ]);
    expect(parseGrpcFrames(two)).toEqual({
      frames: [
        { compressed: false, message: Buffer.from('a') },
        { compressed: true, message: Buffer.from('bc') },
      ],
      rest: Buffer.from([0, 0]),
    });
    expect(encodeGrpcMessage('a%b\n')).toBe('a%25b%0A');
    expect(['1S', '250m', '2M', '5u', 'x', undefined].map((v) => parseGrpcTimeoutMs(v))).toEqual([
      1000,
      250,
      120_000,
      0.005,
      undefined,
      undefined,
    ]);
  });
});

describe('startDemoBackends', () => {
  it('starts all five on loopback and closes them', async () => {
    const all = await startDemoBackends();
    try {
      expect(
        [all.jsonrpc.url, all.rest.url, all.websocket.url, all.streaming.url, all.grpc.url].map(
          (u) => new URL(u).hostname,
        ),
      ).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1']);
    } finally {
      await all.close();
    }
    await expect(fetch(all.rest.url + '/health', { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
  });
});
