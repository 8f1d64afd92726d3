import { createServer } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Cancellation } from '../../core/index.js';
import {
  JsonRpcBackend,
  StreamingBackend,
  expectedNdjson,
  streamItem,
} from '../../localnet/backends/index.js';
import { validateRelayerConfig, type RelayerConfig } from '../../relayer/config.js';
import { RelayerMetrics } from '../../relayer/metrics.js';
import { BackendRegistry, rpcTypeToBackendType } from '../../relayer/backends/backend-registry.js';
import type { BackendResult } from '../../relayer/backends/backend-pool.js';

const log = pino({ level: 'silent' });
let a: JsonRpcBackend;
let b: JsonRpcBackend;
let deadUrl: string;
const registries: BackendRegistry[] = [];

beforeAll(async () => {
  [a, b] = await Promise.all([JsonRpcBackend.start(), JsonRpcBackend.start()]);
  // A port that was free a moment ago: connections are refused.
  deadUrl = await new Promise<string>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(`http://127.0.0.1:${port}`));
    });
  });
});
afterAll(async () => {
  await Promise.all([a.close(), b.close()]);
});
afterEach(async () => {
  await Promise.all(registries.splice(0).map((r) => r.close()));
});

function config(backendYaml: string, extra = ''): RelayerConfig {
  return validateRelayerConfig(`
pocket_node: { query_node_rpc_url: "http://n", query_node_grpc_url: "n:9090" }
keys: { keys_file: /k.yaml }
timeout_profiles:
  fast: { request_timeout_seconds: 1, response_header_timeout_seconds: 1, dial_timeout_seconds: 1, tls_handshake_timeout_seconds: 1 }
  streaming: { request_timeout_seconds: 600 }
${extra}
services:
  eth:
    backends:
      jsonrpc:
${backendYaml}
`);
}

function build(cfg: RelayerConfig, nowMs?: () => number) {
  const registry = new Registry();
  const metrics = new RelayerMetrics(registry);
  const reg = new BackendRegistry(cfg, { log, metrics, ...(nowMs === undefined ? {} : { nowMs }) });
  registries.push(reg);
  return { reg, pool: reg.get('eth', 'jsonrpc')!, registry };
}

const call = (method: string, params: unknown[] = []) => ({
  method: 'POST',
  url: '/',
  headers: { 'content-type': 'application/json' },
  body: new TextEncoder().encode(JSON.stringify({ jsonrpc: '2.0', id: 1, method, params })),
});

async function settle(r: BackendResult): Promise<Record<string, unknown>> {
  if (!r.ok) return { ok: false, code: r.code, endpoint: r.endpoint, attempts: r.attempts };
  const text = await r.body.text();
  return {
    ok: true,
    status: r.status,
    endpoint: r.endpoint,
    attempts: r.attempts,
    body: text === '' ? '' : JSON.parse(text),
  };
}

function hostPort(url: string): string {
  return new URL(url).host;
}

async function counter(registry: Registry, name: string): Promise<Record<string, number>> {
  const m = await registry.getSingleMetric(name)!.get();
  return Object.fromEntries(m.values.map((v) => [Object.values(v.labels).join(','), v.value]));
}

describe('BackendPool against demo JSON-RPC backends', () => {
  it('round-robins over two endpoints by default', async () => {
    const { pool } = build(config(`        urls: ["${a.url}", { name: b, url: "${b.url}" }]`));
    expect(pool.strategy).toBe('round_robin');
    const got = [];
    for (let i = 0; i < 4; i++)
      got.push(((await settle(await pool.forward(call('eth_chainId')))) as { endpoint: string }).endpoint);
    expect(got).toEqual([hostPort(a.url), 'b', hostPort(a.url), 'b']);
  });

  it('first_healthy sticks to the first endpoint', async () => {
    const { pool } = build(
      config(`        load_balancing: first_healthy\n        urls: ["${a.url}", "${b.url}"]`),
    );
    const r1 = await settle(await pool.forward(call('eth_chainId')));
    const r2 = await settle(await pool.forward(call('eth_chainId')));
    expect([r1['endpoint'], r2['endpoint']]).toEqual([hostPort(a.url), hostPort(a.url)]);
    expect(r1).toEqual({
      ok: true,
      status: 200,
      endpoint: hostPort(a.url),
      attempts: 1,
      body: { jsonrpc: '2.0', id: 1, result: '0x1' },
    });
  });

  it('retries a refused connection on the other endpoint, then trips the dead endpoint’s breaker', async () => {
    let now = 0;
    const { pool, registry } = build(
      config(
        `        load_balancing: first_healthy\n        max_retries: 1\n        urls: ["${deadUrl}", "${a.url}"]\n        health_check: { unhealthy_threshold: 2, endpoint: /health, interval_seconds: 60 }`,
      ),
      () => now,
    );
    expect(await settle(await pool.forward(call('eth_chainId')))).toEqual({
      ok: true,
      status: 200,
      endpoint: hostPort(a.url),
      attempts: 2,
      body: { jsonrpc: '2.0', id: 1, result: '0x1' },
    });
    await pool.forward(call('eth_chainId')).then(settle);
    expect(pool.endpoints.map((e) => e.breaker.state)).toEqual(['open', 'closed']);
    // Now the dead endpoint is skipped: one attempt.
    expect((await settle(await pool.forward(call('eth_chainId'))))['attempts']).toBe(1);
    // After recovery_timeout (default 30 s) it is tried again (half-open) and fails back to open.
    now += 30_000;
    expect((await settle(await pool.forward(call('eth_chainId'))))['attempts']).toBe(2);
    expect(pool.endpoints[0]!.breaker.state).toBe('open');
    expect(await counter(registry, 'ha_relayer_backend_breaker_transitions_total')).toEqual({
      'eth,jsonrpc,open': 2,
      'eth,jsonrpc,half_open': 1,
    });
  });

  it('retries a 5xx on another endpoint and returns the last 5xx when all fail', async () => {
    const { pool, registry } = build(
      config(`        urls: ["${a.url}", "${b.url}"]\n        max_retries: 3`),
    );
    const before = a.requestCount + b.requestCount;
    expect(await settle(await pool.forward(call('demo_httpStatus', [503])))).toEqual({
      ok: true,
      status: 503,
      endpoint: hostPort(b.url),
      attempts: 2,
      body: '',
    });
    expect(a.requestCount + b.requestCount - before).toBe(2);
    expect(await counter(registry, 'ha_relayer_backend_requests_total')).toEqual({
      'eth,jsonrpc,http_5xx': 2,
    });
    expect(await counter(registry, 'ha_relayer_backend_retries_total')).toEqual({ 'eth,jsonrpc': 1 });
  });

  it('a 4xx is an answer: not retried, not a breaker failure', async () => {
    const { pool } = build(config(`        urls: ["${a.url}", "${b.url}"]`));
    expect(await settle(await pool.forward(call('demo_httpStatus', [404])))).toMatchObject({
      ok: true,
      status: 404,
      attempts: 1,
    });
    expect(pool.endpoints.map((e) => e.breaker.failures)).toEqual([0, 0]);
  });

  it('times out after the profile’s request timeout without tripping the breaker or retrying', async () => {
    const { pool } = build(config(`        urls: ["${a.url}", "${b.url}"]`));
    expect(await settle(await pool.forward(call('demo_slow', [3000])))).toEqual({
      ok: false,
      code: 'BACKEND_TIMEOUT',
      endpoint: hostPort(a.url),
      attempts: 1,
    });
    expect(pool.endpoints.map((e) => e.breaker.failures)).toEqual([0, 0]);
  });

  it('clears its deadline timer once the answer body is read, or at once when there is no body', async () => {
    // A timer left running for the whole request timeout would hold every finished relay's
    // controller (and what it references) for that long.
    const { pool } = build(config(`        urls: ["${a.url}"]`));
    /** Watches timers of ≥ 1 s (the request deadline; the profile's timeout is 1 s or more). */
    const deadlines = () => {
      const set = vi.spyOn(globalThis, 'setTimeout');
      const clear = vi.spyOn(globalThis, 'clearTimeout');
      return {
        created: (): unknown[] =>
          set.mock.calls.flatMap((c, i) => ((c[1] ?? 0) >= 1000 ? [set.mock.results[i]!.value] : [])),
        cleared: (t: unknown): boolean => clear.mock.calls.some((c) => c[0] === t),
        restore: () => {
          set.mockRestore();
          clear.mockRestore();
        },
      };
    };

    const ok = deadlines();
    try {
      const r = await pool.forward(call('eth_chainId'));
      expect(ok.created()).toHaveLength(1);
      // Still running while the body is unread: it also bounds reading the body.
      expect(ok.cleared(ok.created()[0])).toBe(false);
      expect(await settle(r)).toMatchObject({ ok: true, status: 200, body: { result: '0x1' } });
      await new Promise((res) => setImmediate(res));
      expect(ok.cleared(ok.created()[0])).toBe(true);
    } finally {
      ok.restore();
    }

    const dead = build(config(`        url: "${deadUrl}"\n        max_retries: 0`)).pool;
    const failed = deadlines();
    try {
      expect((await settle(await dead.forward(call('eth_chainId'))))['code']).toBe('BACKEND_NETWORK_ERROR');
      expect(failed.created()).toHaveLength(1);
      expect(failed.cleared(failed.created()[0])).toBe(true);
    } finally {
      failed.restore();
    }
  });

  it('stops the backend stream when the client leaves mid-body; drops its client listener once the body closed', async () => {
    const streaming = await StreamingBackend.start();
    try {
      const { pool } = build(config(`        url: "${streaming.url}"`));
      const get = (path: string, signal: Cancellation) =>
        pool.forward({ method: 'GET', url: path, headers: {}, signal });

      // Read to the end: the listener the pool put on the client's cancellation is gone after.
      const done = new Cancellation();
      const full = await get('/ndjson?count=3&interval_ms=1', done);
      expect(done.listenerCount('abort')).toBe(1);
      expect(full.ok ? await full.body.text() : full.code).toBe(expectedNdjson(3));
      await new Promise((res) => setImmediate(res));
      expect(done.listenerCount('abort')).toBe(0);

      // Leave after the first line of a long stream: the body read fails, the listener is gone.
      const leaving = new Cancellation();
      const long = await get('/ndjson?count=1000&interval_ms=20', leaving);
      if (!long.ok) throw new Error(long.code);
      const lines: string[] = [];
      const read = (async () => {
        for await (const chunk of long.body) {
          lines.push(String(chunk));
          leaving.abort(new Error('client disconnected'));
        }
      })();
      await expect(read).rejects.toThrow('client disconnected');
      expect(lines).toEqual([`${streamItem(0, 1000)}\n`]);
      await new Promise((res) => setImmediate(res));
      expect(leaving.listenerCount('abort')).toBe(0);
    } finally {
      await streaming.close();
    }
  });

  it('reports a client that went away as CLIENT_DISCONNECTED', async () => {
    const { pool } = build(config(`        url: "${a.url}"`));
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    expect(await settle(await pool.forward({ ...call('demo_slow', [3000]), signal: ac.signal }))).toEqual({
      ok: false,
      code: 'CLIENT_DISCONNECTED',
      endpoint: hostPort(a.url),
      attempts: 1,
    });
  });

  it('no available endpoint → BACKEND_UNAVAILABLE and hasHealthy() is false', async () => {
    const { pool } = build(
      config(
        `        url: "${deadUrl}"\n        max_retries: 0\n        recovery_timeout_seconds: 0\n        health_check: { unhealthy_threshold: 1, endpoint: /h, interval_seconds: 60 }`,
      ),
    );
    expect((await settle(await pool.forward(call('eth_chainId'))))['code']).toBe('BACKEND_NETWORK_ERROR');
    expect(pool.hasHealthy()).toBe(false);
    expect(await settle(await pool.forward(call('eth_chainId')))).toEqual({
      ok: false,
      code: 'BACKEND_UNAVAILABLE',
      attempts: 0,
    });
  });

  it('forwards the built headers and path (base_path, query) to the backend', async () => {
    const { pool } = build(config(`        url: "${a.url}/ignored?k=1"\n        base_path: /`));
    const r = await settle(
      await pool.forward({
        ...call('demo_echoHeaders'),
        headers: { 'content-type': 'application/json', 'pocket-supplier': 'pokt1s', 'x-api': 'v' },
      }),
    );
    const result = (r['body'] as { result: Record<string, string> }).result;
    expect({ supplier: result['pocket-supplier'], api: result['x-api'], ct: result['content-type'] }).toEqual(
      {
        supplier: 'pokt1s',
        api: 'v',
        ct: 'application/json',
      },
    );
  });

  it('active health checks trip after unhealthy_threshold and heal after healthy_threshold', async () => {
    const { pool, registry } = build(
      config(
        `        urls: ["${a.url}", "${deadUrl}"]\n        recovery_timeout_seconds: 0\n        health_check: { enabled: true, endpoint: /health, interval_seconds: 3600, unhealthy_threshold: 2, healthy_threshold: 2, expected_body: ok }`,
      ),
    );
    await pool.probeAll();
    expect(pool.endpoints.map((e) => e.breaker.state)).toEqual(['closed', 'closed']);
    await pool.probeAll();
    expect(pool.endpoints.map((e) => e.breaker.state)).toEqual(['closed', 'open']);
    expect(await counter(registry, 'ha_relayer_backend_health_checks_total')).toEqual({
      'eth,jsonrpc,ok': 2,
      'eth,jsonrpc,fail': 2,
    });
    // Heal the first endpoint artificially to check healing by probes: trip it, then two good probes.
    pool.endpoints[0]!.breaker.trip();
    await pool.probeAll();
    expect(pool.endpoints[0]!.breaker.state).toBe('open');
    await pool.probeAll();
    expect(pool.endpoints[0]!.breaker.state).toBe('closed');
  });
});

describe('BackendRegistry', () => {
  it('looks pools up by exact type and counts misses of configured services', async () => {
    const { reg, registry } = build(config(`        url: "${a.url}"`));
    expect(reg.all().map((p) => p.key)).toEqual(['eth:jsonrpc']);
    expect(reg.get('eth', 'rest')).toBeUndefined();
    expect(reg.get('nope', 'jsonrpc')).toBeUndefined();
    expect(reg.defaultType('eth')).toBe('jsonrpc');
    expect(await counter(registry, 'ha_relayer_backend_missing_total')).toEqual({ 'eth,rest': 1 });
  });

  it('maps numeric Rpc-Type values', () => {
    expect(['1', '2', '3', '4', '5', 'rest', '9'].map(rpcTypeToBackendType)).toEqual([
      'grpc',
      'websocket',
      'jsonrpc',
      'rest',
      'cometbft',
      'rest',
      '9',
    ]);
  });
});
