/**
 * The relay client (`pocket-relay-miner relay`) against a running relayer, the localnet chain,
 * the demo backends and real Redis: its ring signatures are accepted for every transport (each
 * relay lands in the supplier stream), its verification refuses a tampered answer, the load
 * summary adds up, `--json` has the documented fields and bad input fails clearly.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRelay, type RelayCliOptions, type RelayReport } from '../../cmd/relay/index.js';
import { bytesToHex, encodeGrpcFrame } from '../../core/index.js';
import { GRPC_METHODS, demoMessages, expectedSse } from '../../localnet/backends/index.js';
import { decodeRelay, decodeRelayResponse, encodeRelayResponse } from '../../protocol/index.js';
import { APP, GATEWAY, SUPPLIER, testKey } from './localnet-fixtures.js';
import { STREAM_SERVICE, startRelayerStack, type RelayerStack } from './relayer-fixtures.js';

let s: RelayerStack;
let dir: string;
let gatewayKeyFile: string;
let appKeyFile: string;
let outsiderKeyFile: string;

beforeAll(async () => {
  s = await startRelayerStack();
  dir = mkdtempSync(join(tmpdir(), 'relay-client-'));
  gatewayKeyFile = join(dir, 'gateway.hex');
  appKeyFile = join(dir, 'app.hex');
  outsiderKeyFile = join(dir, 'outsider.hex');
  writeFileSync(gatewayKeyFile, `${bytesToHex(GATEWAY.privateKey)}\n`, { mode: 0o600 });
  writeFileSync(appKeyFile, `0x${bytesToHex(APP.privateKey)}`, { mode: 0o600 });
  writeFileSync(outsiderKeyFile, bytesToHex(testKey('relay-client-outsider').privateKey), { mode: 0o600 });
}, 30_000);
afterAll(async () => {
  await s?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  out: string[];
  err: string[];
}

function base(): RelayCliOptions {
  return {
    node: s.chain.net.url,
    app: APP.address,
    gatewayKeyFile,
    service: 'anvil',
    supplier: SUPPLIER.address,
    url: s.url,
  };
}

async function run(opts: RelayCliOptions): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runRelay(opts, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

async function runJson(opts: RelayCliOptions): Promise<{ code: number; report: RelayReport; err: string[] }> {
  const r = await run({ ...opts, json: true });
  expect(r.out).toHaveLength(1);
  return { code: r.code, report: JSON.parse(r.out[0]!) as RelayReport, err: r.err };
}

/** Stream entries so far, after the relayer's publisher has flushed. */
async function entryCount(): Promise<number> {
  await s.relayer.publisher.flush();
  return (await s.streamEntries()).length;
}

/** Waits for `n` new stream entries after `before` and returns them. */
async function newEntries(
  before: number,
  n: number,
): Promise<Awaited<ReturnType<RelayerStack['streamEntries']>>> {
  await s.waitForEntries(before + n, 5_000);
  await new Promise((r) => setTimeout(r, 50));
  await s.relayer.publisher.flush();
  return (await s.streamEntries()).slice(before);
}

const RPC = '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}';

function sessionOf(h: Awaited<ReturnType<RelayerStack['session']>>): RelayReport['session'] {
  return {
    id: h.sessionId,
    start_height: Number(h.sessionStartBlockHeight),
    end_height: Number(h.sessionEndBlockHeight),
  };
}

/** The summary of `n` relays that all succeeded with one attempt each. */
function allOk(n: number, verified = n): Record<string, unknown> {
  return {
    total: n,
    success: n,
    failed: 0,
    success_rate_pct: 100,
    failures: {},
    latency_ms: expect.any(Object) as unknown,
    duration_ms: expect.any(Number) as unknown,
    rps: expect.any(Number) as unknown,
    attempts: n,
    hedged: 0,
    verified_responses: verified,
  };
}

/**
 * A relayer stand-in between client and relayer: forwards every POST to the relayer and lets
 * `alter` change the answer (tamper with it, delay it, replace it).
 */
async function startProxy(
  alter: (n: number, status: number, body: Buffer) => Promise<{ status: number; body: Buffer }>,
): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let n = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const i = n++;
      void (async () => {
        const upstream = await fetch(s.url + (req.url ?? '/'), {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'Rpc-Type': String(req.headers['rpc-type'] ?? '') },
          body: Buffer.concat(chunks),
        });
        const body = Buffer.from(await upstream.arrayBuffer());
        const a = await alter(i, upstream.status, body);
        res.writeHead(a.status, { 'content-type': 'application/json' });
        res.end(a.body);
      })().catch(() => res.destroy());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests: () => n,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The relayer's answer with one byte of the supplier signature flipped. */
function tamperSignature(body: Buffer): Buffer {
  const d = decodeRelayResponse(body);
  if (!d.ok) throw new Error(d.reason);
  const sig = Buffer.from(d.value.meta!.supplierOperatorSignature);
  sig[10] = sig[10]! ^ 0x01;
  return Buffer.from(
    encodeRelayResponse({ ...d.value, meta: { ...d.value.meta!, supplierOperatorSignature: sig } }),
  );
}

describe('signatures the relayer accepts', () => {
  it('JSON-RPC as a delegated gateway: verified answer, one relay in the stream, documented --json', async () => {
    const header = await s.session('anvil');
    const before = await entryCount();
    const { code, report } = await runJson({ ...base(), data: RPC });
    expect(code).toBe(0);
    expect(report).toEqual({
      mode: 'single',
      rpc_type: 'jsonrpc',
      url: s.url,
      service: 'anvil',
      application: APP.address,
      supplier: SUPPLIER.address,
      signer: GATEWAY.address,
      session: sessionOf(header),
      summary: allOk(1),
      response: { status: 200, body: '{"jsonrpc":"2.0","id":1,"result":"0x1"}' },
    });
    const lat = report.summary.latency_ms;
    expect(lat.min <= lat.p50 && lat.p50 <= lat.p95 && lat.p95 <= lat.p99 && lat.p99 <= lat.max).toBe(true);
    const rows = await newEntries(before, 1);
    expect(
      rows.map((r) => [r.session_id, r.application_address, r.service_id, r.supplier_operator_address]),
    ).toEqual([[header.sessionId, APP.address, 'anvil', SUPPLIER.address]]);
    // The mined request carries the payload a fixture-signed request would carry.
    const relay = decodeRelay(rows[0]!.relay_bytes);
    if (!relay.ok) throw new Error(relay.reason);
    const fixture = s.signRequest(header, s.httpPayload({ url: '', body: RPC }));
    expect(Buffer.from(relay.value.req!.payload)).toEqual(Buffer.from(fixture.request.payload));
  });

  it('signing as the application itself (--app-key-file) is accepted too', async () => {
    const before = await entryCount();
    const { code, report } = await runJson({ ...base(), gatewayKeyFile: undefined, appKeyFile, data: RPC });
    expect([code, report.signer, report.summary.success, report.response]).toEqual([
      0,
      APP.address,
      1,
      { status: 200, body: '{"jsonrpc":"2.0","id":1,"result":"0x1"}' },
    ]);
    expect(await newEntries(before, 1)).toHaveLength(1);
  });

  it('REST: the method, path and query reach the REST backend', async () => {
    const before = await entryCount();
    const { code, report } = await runJson({
      ...base(),
      rpcType: 'rest',
      method: 'GET',
      path: '/v1/query?a=1&a=2&b=x',
    });
    expect([code, report.rpc_type, report.summary.success]).toEqual([0, 'rest', 1]);
    expect(JSON.parse(report.response!.body)).toEqual({ a: ['1', '2'], b: 'x' });
    expect(await newEntries(before, 1)).toHaveLength(1);
  });

  it('WebSocket: a request/response relay and an eth_subscribe with every push verified', async () => {
    const before = await entryCount();
    const single = await runJson({
      ...base(),
      rpcType: 'websocket',
      url: s.wsUrl,
      data: '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}',
    });
    expect([single.code, single.report.summary, single.report.response]).toEqual([
      0,
      allOk(1),
      {
        status: 200,
        body: expect.stringMatching(/^\{"jsonrpc":"2\.0","id":1,"result":"0x[0-9a-f]+"\}$/) as unknown,
      },
    ]);
    const pusher = setInterval(() => s.backends.websocket.pushNewHead(), 50);
    let sub;
    try {
      sub = await runJson({ ...base(), rpcType: 'websocket', url: s.wsUrl, subscribe: true, pushes: '3' });
    } finally {
      clearInterval(pusher);
    }
    expect(sub.code).toBe(0);
    expect(sub.report.mode).toBe('subscribe');
    expect(sub.report.subscription_id).toMatch(/^0x[0-9a-f]+$/);
    expect(sub.report.summary).toEqual(allOk(4));
    // The single relay, the subscribe reply and three pushes are billed.
    expect(await newEntries(before, 5)).toHaveLength(5);
  });

  it('native gRPC and gRPC-Web to the gRPC listener', async () => {
    const grpcUrl = `http://127.0.0.1:${s.grpcPort}`;
    const message = demoMessages.encodeEcho(Buffer.from('hello relay'));
    const echo = Buffer.from(encodeGrpcFrame(message)).toString('utf8');
    const before = await entryCount();
    for (const rpcType of ['grpc', 'grpc-web']) {
      const { code, report } = await runJson({
        ...base(),
        url: grpcUrl,
        rpcType,
        path: GRPC_METHODS.echo,
        dataHex: bytesToHex(message),
      });
      expect([code, report.rpc_type, report.summary, report.response]).toEqual([
        0,
        rpcType,
        allOk(1),
        { status: 200, body: echo },
      ]);
    }
    expect(await newEntries(before, 2)).toHaveLength(2);
  });

  it('SSE: every signed batch is verified on its own and the events reassemble exactly', async () => {
    const before = await entryCount();
    const { code, report } = await runJson({
      ...base(),
      service: STREAM_SERVICE,
      rpcType: 'sse',
      path: '/sse?count=12&interval_ms=20',
    });
    expect(code).toBe(0);
    expect(report.response).toEqual({ status: 200, body: expectedSse(12) });
    expect(report.summary.verified_responses).toBeGreaterThan(1);
    expect(report.summary).toEqual(allOk(1, report.summary.verified_responses));
    const rows = await newEntries(before, 1);
    expect(rows.map((r) => r.service_id)).toEqual([STREAM_SERVICE]);
  });
  it('CometBFT (Rpc-Type 5) and health-check relays (JSON-RPC, REST)', async () => {
    const before = await entryCount();
    const comet = await runJson({ ...base(), rpcType: 'cometbft', method: 'POST', path: '/', data: RPC });
    expect([comet.code, comet.report.summary, comet.report.response]).toEqual([
      0,
      allOk(1),
      { status: 200, body: '{"jsonrpc":"2.0","id":1,"result":"0x1"}' },
    ]);
    for (const rpcType of ['jsonrpc', 'rest']) {
      const h = await runJson({ ...base(), rpcType, healthCheck: true });
      expect([h.code, h.report.mode, h.report.summary, h.report.response?.status]).toEqual([
        0,
        'health_check',
        allOk(1),
        200,
      ]);
    }
    const text = await run({ ...base(), healthCheck: true });
    expect([text.code, text.out[0]]).toEqual([
      0,
      expect.stringMatching(
        /^health check ok: status 200, [\d.]+ ms, 1 attempt\(s\), 1 verified response\(s\)$/,
      ),
    ]);
    expect(await newEntries(before, 4)).toHaveLength(4);
  });
});

describe('answers the client refuses', () => {
  it('a supplier signature with one flipped byte → response_signature_invalid, exit 1, not retried', async () => {
    const proxy = await startProxy((_n, status, body) =>
      Promise.resolve({ status, body: tamperSignature(body) }),
    );
    try {
      const { code, report, err } = await runJson({ ...base(), url: proxy.url, data: RPC });
      expect(code).toBe(1);
      expect(err).toEqual([]);
      expect(report.error).toEqual({
        reason: 'response_signature_invalid',
        message: 'supplier signature does not verify',
      });
      expect(report.summary).toEqual({
        ...allOk(0),
        total: 1,
        failed: 1,
        success_rate_pct: 0,
        failures: { response_signature_invalid: 1 },
        attempts: 1,
        verified_responses: 0,
      });
      expect(proxy.requests()).toBe(1);
      const text = await run({ ...base(), url: proxy.url, data: RPC });
      expect([text.code, text.err]).toEqual([
        1,
        ['relay failed: response_signature_invalid: supplier signature does not verify'],
      ]);
    } finally {
      await proxy.close();
    }
  });

  it('a supplier key that is not the signer of the answers → every answer refused', async () => {
    const { code, report } = await runJson({
      ...base(),
      data: RPC,
      supplierPubkey: bytesToHex(GATEWAY.publicKey),
    });
    expect([code, report.error]).toEqual([
      1,
      { reason: 'response_signature_invalid', message: 'supplier signature does not verify' },
    ]);
  });

  it('a relayer 503 is retried once (PATH default); with --retries 0 it is a failure', async () => {
    const proxy = await startProxy((n, status, body) =>
      Promise.resolve(
        n === 0 ? { status: 503, body: Buffer.from('{"error":"overloaded"}') } : { status, body },
      ),
    );
    try {
      const { code, report } = await runJson({ ...base(), url: proxy.url, data: RPC });
      expect([code, report.summary.success, report.summary.attempts, proxy.requests()]).toEqual([0, 1, 2, 2]);
    } finally {
      await proxy.close();
    }
    const down = await startProxy(() =>
      Promise.resolve({ status: 503, body: Buffer.from('{"error":"overloaded"}') }),
    );
    try {
      const { code, report } = await runJson({ ...base(), url: down.url, data: RPC, retries: '0' });
      expect([code, report.error, report.summary.attempts, down.requests()]).toEqual([
        1,
        { reason: 'relayer_http_503', message: 'the relayer answered 503: {"error":"overloaded"}' },
        1,
        1,
      ]);
    } finally {
      await down.close();
    }
  });

  it('an answer slower than --timeout-ms is a timeout', async () => {
    const slow = await startProxy(async (_n, status, body) => {
      await new Promise((r) => setTimeout(r, 600));
      return { status, body };
    });
    try {
      const { code, report } = await runJson({
        ...base(),
        url: slow.url,
        data: RPC,
        timeoutMs: '100',
        retries: '0',
      });
      expect([code, report.error]).toEqual([1, { reason: 'timeout', message: 'the relay timed out' }]);
    } finally {
      await slow.close();
    }
  });

  it('a slow first answer is hedged: the second request wins', async () => {
    const proxy = await startProxy(async (n, status, body) => {
      if (n === 0) await new Promise((r) => setTimeout(r, 1_000));
      return { status, body };
    });
    try {
      const before = await entryCount();
      const { code, report } = await runJson({ ...base(), url: proxy.url, data: RPC, hedgeMs: '100' });
      expect([code, report.summary.success, report.summary.attempts, report.summary.hedged]).toEqual([
        0, 1, 2, 1,
      ]);
      expect(report.summary.latency_ms.max).toBeLessThan(900);
      // Like PATH's hedge, both requests reached the relayer and both are billed.
      expect(await newEntries(before, 2)).toHaveLength(2);
    } finally {
      await proxy.close();
    }
  });
});

describe('load test', () => {
  it('200 relays at concurrency 8: 100 % success, every relay in the stream, numbers consistent', async () => {
    const before = await entryCount();
    const { code, report } = await runJson({
      ...base(),
      data: RPC,
      loadTest: true,
      count: '200',
      concurrency: '8',
    });
    expect(code).toBe(0);
    expect(report.mode).toBe('load_test');
    expect(report.summary).toEqual(allOk(200));
    const sm = report.summary;
    expect(sm.rps).toBeCloseTo((sm.total * 1000) / sm.duration_ms, 0);
    const l = sm.latency_ms;
    expect(l.min <= l.p50 && l.p50 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.max && l.mean <= l.max).toBe(
      true,
    );
    expect(await newEntries(before, 200)).toHaveLength(200);
  }, 60_000);

  it('failures are broken down by reason and add up to the total', async () => {
    const proxy = await startProxy((n, status, body) =>
      Promise.resolve(
        n % 4 === 0
          ? { status, body: tamperSignature(body) }
          : n % 4 === 1
            ? { status: 404, body: Buffer.from('not here') }
            : { status, body },
      ),
    );
    try {
      const { code, report } = await runJson({
        ...base(),
        url: proxy.url,
        data: RPC,
        loadTest: true,
        count: '40',
        concurrency: '1',
        retries: '0',
      });
      expect(code).toBe(1);
      expect({ ...report.summary, latency_ms: undefined, duration_ms: undefined, rps: undefined }).toEqual({
        total: 40,
        success: 20,
        failed: 20,
        success_rate_pct: 50,
        failures: { response_signature_invalid: 10, relayer_http_404: 10 },
        latency_ms: undefined,
        duration_ms: undefined,
        rps: undefined,
        attempts: 40,
        hedged: 0,
        verified_responses: 20,
      });
      const text = await run({
        ...base(),
        url: proxy.url,
        data: RPC,
        loadTest: true,
        count: '8',
        concurrency: '1',
        retries: '0',
      });
      expect(text.code).toBe(1);
      expect(text.out[0]).toMatch(
        /^relays: 8 sent, 4 ok, 4 failed \(50\.00% success\) in \d+ ms, [\d.]+ relays\/s$/,
      );
      expect(text.out[2]).toBe('failures: response_signature_invalid 2, relayer_http_404 2');
    } finally {
      await proxy.close();
    }
  }, 60_000);

  it('WebSocket load: pooled connections, one relay in flight per connection, all verified', async () => {
    const before = await entryCount();
    const { code, report } = await runJson({
      ...base(),
      rpcType: 'websocket',
      url: s.wsUrl,
      data: '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}',
      loadTest: true,
      count: '40',
      concurrency: '4',
    });
    expect([code, report.summary]).toEqual([0, allOk(40)]);
    expect(await newEntries(before, 40)).toHaveLength(40);
  });

  it('--rps paces the relays', async () => {
    const { code, report } = await runJson({
      ...base(),
      data: RPC,
      loadTest: true,
      count: '10',
      concurrency: '4',
      rps: '50',
    });
    expect([code, report.summary.total, report.summary.success]).toEqual([0, 10, 10]);
    // Ten relays at 50/s start over at least 180 ms.
    expect(report.summary.duration_ms).toBeGreaterThanOrEqual(180);
  });
});

describe('bad input', () => {
  it('an unknown RPC type → exit 2 and a message naming the valid ones', async () => {
    const r = await run({ ...base(), rpcType: 'soap' });
    expect(r).toEqual({
      code: 2,
      out: [],
      err: [
        "relay: --rpc-type: unknown RPC type 'soap'; expected one of jsonrpc, rest, cometbft, websocket, grpc, grpc-web, sse",
      ],
    });
  });

  it('a missing key file → exit 2; with --json the error is a JSON document', async () => {
    const missing = join(dir, 'nope.hex');
    const r = await run({ ...base(), gatewayKeyFile: missing, json: true });
    const msg = `--gateway-key-file ${missing}: cannot read the file (ENOENT)`;
    expect(r).toEqual({
      code: 2,
      out: [JSON.stringify({ error: msg, exit_code: 2 })],
      err: [`relay: ${msg}`],
    });
  });

  it('an unreachable node → exit 3 naming the node', async () => {
    const r = await run({ ...base(), node: 'http://127.0.0.1:1' });
    expect(r.code).toBe(3);
    expect(r.out).toEqual([]);
    expect(r.err).toHaveLength(1);
    expect(r.err[0]).toMatch(
      /^relay: node http:\/\/127\.0\.0\.1:1: session of application pokt1\w+ for service anvil: /,
    );
  });

  it('a key outside the application ring → exit 2 before anything is sent', async () => {
    const before = await entryCount();
    const r = await run({ ...base(), gatewayKeyFile: outsiderKeyFile });
    expect(r.code).toBe(2);
    expect(r.err[0]).toMatch(
      /is not in the ring of application .*is the gateway delegated to by the application\?$/,
    );
    expect(await entryCount()).toBe(before);
  });

  it('a supplier outside the session → exit 2 naming the session suppliers', async () => {
    const header = await s.session('anvil');
    const r = await run({ ...base(), supplier: GATEWAY.address });
    expect(r).toEqual({
      code: 2,
      out: [],
      err: [
        `relay: supplier ${GATEWAY.address} is not in session ${header.sessionId} of application ` +
          `${APP.address} for service anvil (session suppliers: ${SUPPLIER.address})`,
      ],
    });
  });

  it('missing required options and conflicting modes are named', async () => {
    expect((await run({ ...base(), app: undefined })).err).toEqual(['relay: --app is required']);
    expect((await run({ ...base(), supplier: 'pokt1nope' })).err).toEqual([
      "relay: --supplier: 'pokt1nope' is not a pokt bech32 address",
    ]);
    expect((await run({ ...base(), appKeyFile })).err).toEqual([
      'relay: give exactly one of --gateway-key-file (sign as a delegated gateway) and --app-key-file (sign as the application)',
    ]);
    expect((await run({ ...base(), subscribe: true })).err).toEqual([
      'relay: --subscribe needs --rpc-type websocket',
    ]);
    expect((await run({ ...base(), loadTest: true })).err).toEqual([
      'relay: --load-test needs --count or --duration',
    ]);
  });
});

describe('the registered command', () => {
  function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'cmd/main.ts', 'relay', ...args], {
        cwd: join(import.meta.dirname, '..', '..'),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('`relay --json` sends a verified relay; an unknown --rpc-type exits non-zero', async () => {
    const args = [
      '--node',
      s.chain.net.url,
      '--app',
      APP.address,
      '--gateway-key-file',
      gatewayKeyFile,
      '--service',
      'anvil',
      '--supplier',
      SUPPLIER.address,
      '--url',
      s.url,
    ];
    const ok = await cli([...args, '--json']);
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.stdout) as RelayReport;
    expect([report.summary.success, report.response?.status]).toEqual([1, 200]);
    const bad = await cli([...args, '--rpc-type', 'soap']);
    expect([bad.code, bad.stdout, bad.stderr.trim()]).toEqual([
      2,
      '',
      "relay: --rpc-type: unknown RPC type 'soap'; expected one of jsonrpc, rest, cometbft, websocket, grpc, grpc-web, sse",
    ]);
  }, 60_000);
});
