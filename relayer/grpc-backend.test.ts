import http2 from 'node:http2';
import { createServer, type AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeGrpcFrame } from '../core/index.js';
import { BackendRegistry } from './backends/index.js';
import { validateRelayerConfig, type RelayerConfig } from './config.js';
import { GrpcAttemptError, H2cClient, forwardGrpc, type GrpcCall } from './grpc-backend.js';
import { RelayerMetrics } from './metrics.js';

const log = pino({ level: 'silent' });

/** A small h2c gRPC server whose methods misbehave on purpose. */
class TestServer {
  sessions = 0;
  calls: { path: string; headers: http2.IncomingHttpHeaders; body: Buffer }[] = [];
  private readonly live = new Set<http2.ServerHttp2Session>();
  private constructor(
    private readonly server: http2.Http2Server,
    readonly url: string,
  ) {}

  static async start(name: string): Promise<TestServer> {
    const server = http2.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const t = new TestServer(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on('session', (s) => {
      t.sessions++;
      t.live.add(s);
      s.on('close', () => t.live.delete(s));
    });
    server.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const path = String(headers[':path']);
        t.calls.push({ path, headers, body: Buffer.concat(chunks) });
        t.answer(name, path, stream, Buffer.concat(chunks));
      });
    });
    return t;
  }

  private answer(name: string, path: string, stream: http2.ServerHttp2Stream, body: Buffer): void {
    switch (path) {
      case '/t.S/Ok':
        stream.respond(
          { ':status': 200, 'content-type': 'application/grpc', 'x-served-by': name },
          {
            waitForTrailers: true,
          },
        );
        stream.once('wantTrailers', () =>
          stream.sendTrailers({
            'grpc-status': '0',
            'grpc-message': 'fine',
            'x-served-by': `${name}-trailer`,
          }),
        );
        stream.end(body);
        return;
      case '/t.S/Unavailable503':
        stream.respond({ ':status': 503 }, { endStream: true });
        return;
      case '/t.S/Never':
        return;
      case '/t.S/Reset':
        stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        return;
      case '/t.S/Big':
        stream.respond({ ':status': 200 });
        stream.end(Buffer.alloc(4096));
        return;
      case '/t.S/GoAway':
        stream.respond({ ':status': 200, 'grpc-status': '0' }, { endStream: true });
        stream.session?.goaway();
        return;
      default:
        stream.respond({ ':status': 200, 'grpc-status': '12' }, { endStream: true });
    }
  }

  async close(): Promise<void> {
    for (const s of this.live) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

let a: TestServer;
let b: TestServer;
let deadUrl: string;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  [a, b] = await Promise.all([TestServer.start('a'), TestServer.start('b')]);
  deadUrl = await new Promise<string>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(`http://127.0.0.1:${port}`));
    });
  });
});
afterAll(async () => {
  await Promise.all([a.close(), b.close()]);
});
afterEach(async () => {
  a.calls = [];
  b.calls = [];
  for (const c of cleanups.splice(0)) await c();
});

function config(backendYaml: string): RelayerConfig {
  return validateRelayerConfig(`
pocket_node: { query_node_rpc_url: "http://n", query_node_grpc_url: "n:9090" }
keys: { keys_file: /k.yaml }
services:
  demo:
    backends:
      grpc:
${backendYaml}
`);
}

function setup(backendYaml: string, clientOpts: { maxResponseBytes?: number } = {}) {
  const registry = new Registry();
  const metrics = new RelayerMetrics(registry);
  const reg = new BackendRegistry(config(backendYaml), { log, metrics });
  const client = new H2cClient({ log, ...clientOpts });
  cleanups.push(async () => {
    await client.close();
    await reg.close();
  });
  const pool = reg.get('demo', 'grpc')!;
  const forward = (
    call: Partial<GrpcCall> & { path: string },
    o: { maxRetries?: number; timeoutMs?: number; signal?: AbortSignal; basePath?: string } = {},
  ) =>
    forwardGrpc(
      pool,
      {
        method: 'POST',
        headers: { 'content-type': 'application/grpc' },
        body: encodeGrpcFrame(Buffer.from('hi')),
        ...call,
      },
      {
        serviceId: 'demo',
        maxRetries: o.maxRetries ?? 1,
        timeoutMs: o.timeoutMs ?? 2_000,
        signal: o.signal,
        basePath: o.basePath,
      },
      { client, metrics, log },
    );
  const counter = async (outcome: string): Promise<number> => {
    const m = await registry.getSingleMetric('ha_relayer_backend_requests_total')!.get();
    return m.values.filter((v) => v.labels.outcome === outcome).reduce((s, v) => s + v.value, 0);
  };
  return { pool, client, forward, counter, registry };
}

describe('H2cClient + forwardGrpc', () => {
  it('forwards over h2c and merges trailers into the headers (a trailer wins over a header)', async () => {
    const { forward } = setup(`        url: ${a.url.replace('http://', '')}`);
    const r = await forward({
      path: '/t.S/Ok',
      headers: { 'content-type': 'application/grpc', 'x-custom': 'v', connection: 'keep-alive', te: 'gzip' },
    });
    if (!r.ok) throw new Error(r.code);
    const { date: _date, ...headers } = r.headers;
    expect({ ...r, headers }).toEqual({
      ok: true,
      endpoint: a.url.replace('http://', ''),
      attempts: 1,
      status: 200,
      headers: {
        'content-type': ['application/grpc'],
        'x-served-by': ['a-trailer'],
        'grpc-status': ['0'],
        'grpc-message': ['fine'],
      },
      body: encodeGrpcFrame(Buffer.from('hi')),
    });
    const seen = a.calls[0]!;
    expect({
      path: seen.path,
      method: seen.headers[':method'],
      te: seen.headers.te,
      custom: seen.headers['x-custom'],
      connection: seen.headers.connection,
      body: seen.body,
    }).toEqual({
      path: '/t.S/Ok',
      method: 'POST',
      te: 'trailers',
      custom: 'v',
      connection: undefined,
      body: encodeGrpcFrame(Buffer.from('hi')),
    });
  });

  it('reuses one session per origin and dials again after GOAWAY', async () => {
    const { forward, client } = setup(`        url: ${a.url}`);
    const before = a.sessions;
    await Promise.all([
      forward({ path: '/t.S/Ok' }),
      forward({ path: '/t.S/Ok' }),
      forward({ path: '/t.S/Ok' }),
    ]);
    expect([a.sessions - before, client.sessionCount]).toEqual([1, 1]);
    const g = await forward({ path: '/t.S/GoAway' });
    expect(g.ok && g.headers['grpc-status']).toEqual(['0']);
    await new Promise((r) => setTimeout(r, 20));
    expect(client.sessionCount).toBe(0);
    const again = await forward({ path: '/t.S/Ok' });
    expect([again.ok, a.sessions - before, client.sessionCount]).toEqual([true, 2, 1]);
  });

  it('a refused connection is a breaker failure retried on another endpoint', async () => {
    const { forward, pool, counter } = setup(`        urls: ["${deadUrl}", "${b.url}"]
        load_balancing: first_healthy`);
    const r = await forward({ path: '/t.S/Ok' });
    expect(r.ok && [r.endpoint, r.attempts, r.headers['x-served-by']]).toEqual([
      b.url.replace('http://', ''),
      2,
      ['b-trailer'],
    ]);
    expect(pool.endpoints.map((e) => e.breaker.failures)).toEqual([1, 0]);
    expect([await counter('network_error'), await counter('ok')]).toEqual([1, 1]);
  });

  it('network failures stop after max_retries with BACKEND_NETWORK_ERROR', async () => {
    const { forward } = setup(`        urls: ["${deadUrl}", "${a.url}"]
        load_balancing: first_healthy`);
    const r = await forward({ path: '/t.S/Ok' }, { maxRetries: 0 });
    expect([r.ok, !r.ok && r.code, r.attempts, a.calls.length]).toEqual([
      false,
      'BACKEND_NETWORK_ERROR',
      1,
      0,
    ]);
  });

  it('a reset stream is a network failure', async () => {
    const { forward, pool } = setup(`        url: ${a.url}`);
    const r = await forward({ path: '/t.S/Reset' }, { maxRetries: 0 });
    expect([r.ok, !r.ok && r.code, pool.endpoints[0]!.breaker.failures]).toEqual([
      false,
      'BACKEND_NETWORK_ERROR',
      1,
    ]);
  });

  it('HTTP 5xx is returned as is, counted against the breaker and not retried', async () => {
    const { forward, pool, counter } = setup(`        urls: ["${a.url}", "${b.url}"]
        load_balancing: first_healthy`);
    const r = await forward({ path: '/t.S/Unavailable503' });
    expect(r.ok && [r.status, r.attempts, r.endpoint]).toEqual([503, 1, a.url.replace('http://', '')]);
    expect([pool.endpoints[0]!.breaker.failures, b.calls.length, await counter('http_5xx')]).toEqual([
      1, 0, 1,
    ]);
  });

  it('a gRPC error status is a success for the breaker', async () => {
    const { forward, pool } = setup(`        url: ${a.url}`);
    pool.endpoints[0]!.breaker.recordFailure();
    const r = await forward({ path: '/t.S/Unknown' });
    expect(r.ok && r.headers['grpc-status']).toEqual(['12']);
    expect(pool.endpoints[0]!.breaker.failures).toBe(0);
  });

  it('a timeout is BACKEND_TIMEOUT: not a breaker failure, not retried', async () => {
    const { forward, pool, counter } = setup(`        urls: ["${a.url}", "${b.url}"]
        load_balancing: first_healthy`);
    const r = await forward({ path: '/t.S/Never' }, { timeoutMs: 100 });
    expect([r.ok, !r.ok && r.code, r.attempts, b.calls.length]).toEqual([false, 'BACKEND_TIMEOUT', 1, 0]);
    expect([pool.endpoints[0]!.breaker.failures, await counter('timeout')]).toEqual([0, 1]);
  });

  it('a client cancellation is CLIENT_DISCONNECTED, before or during the call', async () => {
    const { forward, pool } = setup(`        url: ${a.url}`);
    const early = await forward({ path: '/t.S/Ok' }, { signal: AbortSignal.abort() });
    expect([early.ok, !early.ok && early.code]).toEqual([false, 'CLIENT_DISCONNECTED']);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const late = await forward({ path: '/t.S/Never' }, { signal: ac.signal });
    expect([late.ok, !late.ok && late.code, pool.endpoints[0]!.breaker.failures]).toEqual([
      false,
      'CLIENT_DISCONNECTED',
      0,
    ]);
  });

  it('a response body over the limit is refused without touching the breaker', async () => {
    const { forward, pool } = setup(`        url: ${a.url}`, { maxResponseBytes: 1024 });
    const r = await forward({ path: '/t.S/Big' });
    expect([r.ok, !r.ok && r.code, pool.endpoints[0]!.breaker.failures]).toEqual([
      false,
      'BACKEND_RESPONSE_TOO_LARGE',
      0,
    ]);
  });

  it('no available endpoint is BACKEND_UNAVAILABLE with no attempt', async () => {
    const { forward, pool } = setup(`        url: ${a.url}`);
    pool.endpoints[0]!.breaker.trip();
    expect(await forward({ path: '/t.S/Ok' })).toEqual({
      ok: false,
      code: 'BACKEND_UNAVAILABLE',
      attempts: 0,
    });
  });

  it('base_path prefixes the call path', async () => {
    const { forward } = setup(`        url: ${a.url}`);
    const r = await forward({ path: '/Ok' }, { basePath: '/t.S' });
    expect([r.ok, a.calls.map((c) => c.path)]).toEqual([true, ['/t.S/Ok']]);
  });

  it('refuses schemes other than http(s) as a configuration error', async () => {
    const client = new H2cClient({ log });
    cleanups.push(() => client.close());
    const err = await client
      .call(
        new URL('ftp://127.0.0.1:1/x'),
        { method: 'POST', path: '/x', headers: {}, body: new Uint8Array() },
        {
          deadline: AbortSignal.timeout(1000),
        },
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GrpcAttemptError);
    expect([(err as GrpcAttemptError).kind, (err as GrpcAttemptError).message]).toEqual([
      'config',
      'gRPC backend URL scheme ftp: is not supported; use http:// (h2c) or https://',
    ]);
  });

  it('refuses calls after close', async () => {
    const client = new H2cClient({ log });
    await client.close();
    const err = await client
      .call(
        new URL(a.url),
        { method: 'POST', path: '/t.S/Ok', headers: {}, body: new Uint8Array() },
        {
          deadline: AbortSignal.timeout(1000),
        },
      )
      .catch((e: unknown) => e);
    expect([(err as GrpcAttemptError).kind, (err as GrpcAttemptError).message]).toEqual([
      'config',
      'gRPC backend client is closed',
    ]);
  });
});
