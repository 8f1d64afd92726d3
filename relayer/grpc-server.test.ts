/**
 * The gRPC listener on a RelayCore whose chain-facing collaborators (supplier gate, validator,
 * meter, mined publisher, simulation) are small recording stand-ins; the listener, the core, the
 * backend pools, the h2c client and the response signer are the real ones, and the backends are
 * real HTTP/1.1 and HTTP/2 servers. What the full stack proves end to end is in
 * test/e2e/relayer-grpc.e2e.test.ts.
 */
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  GrpcStatus,
  decodeGrpcMessage,
  encodeGrpcFrame,
  hexToBytes,
  parseGrpcFrames,
} from '../core/index.js';
import {
  addressFromPrivateKey,
  decodePoktHttpResponse,
  decodeRelayResponse,
  encodePoktHttpRequest,
  encodeRelayRequest,
  type RelayRequest,
} from '../protocol/index.js';
import { selectBackend } from '../rings/index.js';
import { BackendRegistry } from './backends/index.js';
import { validateRelayerConfig } from './config.js';
import { startGrpcServer, type GrpcRelayServer } from './grpc-server.js';
import { RelayerMetrics } from './metrics.js';
import type { MeterDecision, MeterSession } from './relay-meter.js';
import type { MinedRelayInput } from './mined-relay.js';
import { RelayCore, type RelayTransport, type SimulationVerdict } from './relay-core.js';
import { RelaySigner } from './signer.js';
import type { GateDecision } from './supplier-gate.js';
import type { ValidationResult } from './validator.js';

const log = pino({ level: 'silent' });
const KEY = hexToBytes('11'.repeat(32));
const SUPPLIER = addressFromPrivateKey(KEY);
const OTHER_SUPPLIER = addressFromPrivateKey(hexToBytes('33'.repeat(32)));
const APP = addressFromPrivateKey(hexToBytes('22'.repeat(32)));
const SEND_RELAY = '/pocket.service.RelayService/SendRelay';

/* ---------- backends ---------- */

let jsonrpcHits: { url: string; headers: http.IncomingHttpHeaders }[] = [];
let grpcHits: { path: string; headers: http2.IncomingHttpHeaders }[] = [];
let jsonrpc: http.Server;
let grpcBackend: http2.Http2Server;

async function listen(server: http.Server | http2.Http2Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/* ---------- the core's stand-in collaborators ---------- */

const calls = {
  gate: [] as [string, string, string][],
  consume: [] as MeterSession[],
  revert: [] as bigint[],
  published: [] as MinedRelayInput[],
  simulation: [] as [string, RelayTransport][],
  simulationResults: [] as [RelayTransport, string, string][],
};
let gateDecision: GateDecision;
let verdict: ValidationResult;
let meterDecision: MeterDecision;

const OK_VERDICT = { ok: true, inGracePeriod: false, height: 100 } as unknown as ValidationResult;

let core: RelayCore;
let server: GrpcRelayServer;
let registry: Registry;
let backends: BackendRegistry;
let client: http2.ClientHttp2Session;

beforeAll(async () => {
  jsonrpc = http.createServer((req, res) => {
    jsonrpcHits.push({ url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync('{"result":"0x1"}'));
    });
  });
  grpcBackend = http2.createServer();
  grpcBackend.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    grpcHits.push({ path: String(headers[':path']), headers });
    stream.resume();
    stream.on('end', () => {
      const path = String(headers[':path']);
      if (path === '/t.S/503') {
        stream.respond({ ':status': 503 }, { endStream: true });
        return;
      }
      const answer = (): void => {
        if (stream.destroyed) return;
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(encodeGrpcFrame(Buffer.from('pong')));
      };
      if (path === '/t.S/Slow') setTimeout(answer, 300);
      else if (path !== '/t.S/Never') answer();
    });
  });
  const [jsonrpcPort, grpcPort] = await Promise.all([listen(jsonrpc), listen(grpcBackend)]);
  const config = validateRelayerConfig(`
pocket_node: { query_node_rpc_url: "http://n", query_node_grpc_url: "n:9090" }
keys: { keys_file: /k.yaml }
services:
  demo:
    validation_mode: eager
    default_backend: jsonrpc
    backends:
      jsonrpc: { url: "http://127.0.0.1:${jsonrpcPort}" }
      grpc: { url: "127.0.0.1:${grpcPort}", max_retries: 0 }
      websocket: { url: "ws://127.0.0.1:9" }
`);
  registry = new Registry();
  const metrics = new RelayerMetrics(registry);
  backends = new BackendRegistry(config, { log, metrics });
  core = new RelayCore({
    config,
    backends,
    heights: { currentHeight: 100, onHeight: () => () => undefined },
    gate: {
      check: (supplier, serviceId, type) => {
        calls.gate.push([supplier, serviceId, type]);
        return Promise.resolve(gateDecision);
      },
    },
    validator: { validateRequest: () => Promise.resolve(verdict) },
    meter: {
      consume: (s) => {
        calls.consume.push(s);
        return Promise.resolve(meterDecision);
      },
      revert: (_s, cost) => {
        calls.revert.push(cost);
        return Promise.resolve({ reverted: true, consumed: 0n });
      },
    },
    signer: new RelaySigner({ backend: selectBackend('native'), log }, [KEY]),
    mined: {
      publish: (input) => {
        calls.published.push(input);
        return Promise.resolve({ ok: true });
      },
    },
    sharedParamsAtHeight: { get: () => Promise.resolve(undefined) },
    simulation: {
      enabled: true,
      admit: (keyId, _request, transport): Promise<SimulationVerdict> => {
        calls.simulation.push([keyId, transport]);
        return Promise.resolve({ ok: true, identity: keyId, release: () => undefined });
      },
      record: (transport, service, _supplier, result) => {
        calls.simulationResults.push([transport, service, result]);
      },
    },
    log,
    metrics,
  });
  server = await startGrpcServer(core, { host: '127.0.0.1', port: 0, maxMessageBytes: 1 << 20, registry });
  client = http2.connect(`http://127.0.0.1:${server.port}`);
  client.on('error', () => undefined);
});

afterAll(async () => {
  client?.close();
  await server?.close(500);
  await backends?.close();
  await new Promise((r) => jsonrpc?.close(r));
  await new Promise((r) => grpcBackend?.close(r));
});

beforeEach(() => {
  gateDecision = { ok: true, optimistic: false };
  verdict = OK_VERDICT;
  meterDecision = { ok: true, code: 'METER_ALLOWED', cost: 5n, consumed: 5n, max: 100n };
});

afterEach(() => {
  for (const list of Object.values(calls)) list.splice(0);
  jsonrpcHits = [];
  grpcHits = [];
});

/* ---------- helpers ---------- */

function relay(
  inner: { url: string; contentType?: string; body?: Uint8Array },
  supplier = SUPPLIER,
): RelayRequest {
  return {
    meta: {
      sessionHeader: {
        applicationAddress: APP,
        serviceId: 'demo',
        sessionId: 'session-1',
        sessionStartBlockHeight: 97n,
        sessionEndBlockHeight: 101n,
      },
      signature: Buffer.from([1, 2, 3]),
      supplierOperatorAddress: supplier,
    },
    payload: Buffer.from(
      encodePoktHttpRequest({
        method: 'POST',
        url: inner.url,
        headers: inner.contentType === undefined ? [] : [['Content-Type', [inner.contentType]]],
        body: inner.body ?? encodeGrpcFrame(Buffer.from('ping')),
      }),
    ),
  };
}

const grpcRelay = (path = '/t.S/Ok'): RelayRequest => relay({ url: path, contentType: 'application/grpc' });

interface Answer {
  code: number;
  message: string;
  /** The inner POKTHTTPResponse of an OK answer. */
  inner?: { status: number; headers: Record<string, string[]>; body: Buffer };
}

async function send(request: RelayRequest, metadata: Record<string, string> = {}): Promise<Answer> {
  const raw = await new Promise<{
    headers: http2.IncomingHttpHeaders;
    trailers: http2.IncomingHttpHeaders;
    body: Buffer;
  }>((resolve, reject) => {
    const req = client.request({
      ':method': 'POST',
      ':path': SEND_RELAY,
      'content-type': 'application/grpc',
      ...metadata,
    });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => (headers = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('close', () => resolve({ headers, trailers, body: Buffer.concat(chunks) }));
    req.end(encodeGrpcFrame(encodeRelayRequest(request)));
  });
  const status = raw.headers['grpc-status'] ?? raw.trailers['grpc-status'];
  const message = raw.headers['grpc-message'] ?? raw.trailers['grpc-message'];
  const out: Answer = { code: Number(status), message: decodeGrpcMessage(String(message ?? '')) };
  const { frames } = parseGrpcFrames(raw.body);
  if (frames.length === 1) {
    const res = decodeRelayResponse(frames[0]!.message);
    if (!res.ok) throw new Error(res.reason);
    const inner = decodePoktHttpResponse(res.value.payload);
    if (!inner.ok) throw new Error(inner.reason);
    out.inner = {
      status: inner.value.statusCode,
      headers: Object.fromEntries([...inner.value.header].map(([k, h]) => [k, h.values])),
      body: inner.value.bodyBz,
    };
  }
  return out;
}

/** Lets background publishing run. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  return (m?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val))
    .reduce((a, v) => a + v.value, 0);
}

/* ---------- tests ---------- */

describe('backend type', () => {
  it('metadata rpc-type (number or name) wins; the gate sees the type', async () => {
    for (const rpcType of ['3', 'JSONRPC', 'jsonrpc']) {
      const a = await send(grpcRelay(), { 'rpc-type': rpcType });
      expect([rpcType, a.code]).toEqual([rpcType, 0]);
    }
    expect([jsonrpcHits.length, grpcHits.length]).toEqual([3, 0]);
    expect(calls.gate).toEqual([
      [SUPPLIER, 'demo', 'jsonrpc'],
      [SUPPLIER, 'demo', 'jsonrpc'],
      [SUPPLIER, 'demo', 'jsonrpc'],
    ]);
  });

  it('no metadata: an application/grpc inner request goes to the grpc backend', async () => {
    const a = await send(grpcRelay());
    expect(a).toEqual({
      code: 0,
      message: '',
      inner: {
        status: 200,
        headers: { 'content-type': ['application/grpc'], 'grpc-status': ['0'], date: a.inner?.headers.date },
        body: encodeGrpcFrame(Buffer.from('pong')),
      },
    });
    expect(
      grpcHits.map((h) => [h.path, h.headers['pocket-supplier'], h.headers['pocket-service'], h.headers.te]),
    ).toEqual([['/t.S/Ok', SUPPLIER, 'demo', 'trailers']]);
    await settle();
    expect(calls.published.map((p) => [p.supplierAddress, p.arrivalHeight, Buffer.from(p.rawBody)])).toEqual([
      [SUPPLIER, 100, encodeGrpcFrame(Buffer.from('pong'))],
    ]);
  });

  it('no metadata, non-gRPC inner request: the service default backend, gzip answer decompressed', async () => {
    const a = await send(relay({ url: '/rpc', contentType: 'application/json', body: Buffer.from('{}') }));
    expect([a.code, a.inner?.status, a.inner?.body.toString(), a.inner?.headers['content-encoding']]).toEqual(
      [0, 200, '{"result":"0x1"}', undefined],
    );
    expect(jsonrpcHits.map((h) => h.url)).toEqual(['/rpc']);
    await settle();
    // Mined over the raw backend body, as received.
    expect(calls.published.map((p) => Buffer.from(p.rawBody))).toEqual([Buffer.from('{"result":"0x1"}')]);
  });

  it('rpc-type websocket is refused before admission', async () => {
    const a = await send(grpcRelay(), { 'rpc-type': '2' });
    expect(a).toEqual({
      code: GrpcStatus.FAILED_PRECONDITION,
      message: 'websocket backends are not reachable over gRPC; use the WebSocket transport',
    });
    expect([calls.gate.length, calls.consume.length]).toEqual([0, 0]);
  });
});

describe('admission', () => {
  it('a supplier without a key here → FAILED_PRECONDITION', async () => {
    expect(await send(relay({ url: '/t.S/Ok', contentType: 'application/grpc' }, OTHER_SUPPLIER))).toEqual({
      code: GrpcStatus.FAILED_PRECONDITION,
      message: `supplier ${OTHER_SUPPLIER} is not served by this relayer`,
    });
  });

  it('the supplier gate applies to gRPC (UNAVAILABLE with its message)', async () => {
    gateDecision = { ok: false, reason: 'supplier_inactive', message: `supplier ${SUPPLIER} is unstaking` };
    expect(await send(grpcRelay())).toEqual({
      code: GrpcStatus.UNAVAILABLE,
      message: `supplier ${SUPPLIER} is unstaking`,
    });
    expect([grpcHits.length, calls.consume.length]).toEqual([0, 0]);
  });

  it('a failed validation → PERMISSION_DENIED; the meter is not touched', async () => {
    verdict = {
      ok: false,
      code: 'RING_SIG_INVALID',
      reason: 'ring signature does not verify',
      httpStatus: 403,
    };
    expect(await send(grpcRelay())).toEqual({
      code: GrpcStatus.PERMISSION_DENIED,
      message: 'ring signature does not verify',
    });
    expect([grpcHits.length, calls.consume.length]).toEqual([0, 0]);
  });

  it('an exhausted meter → RESOURCE_EXHAUSTED; the backend is not called', async () => {
    meterDecision = { ok: false, code: 'METER_EXHAUSTED', cost: 5n, consumed: 100n, max: 100n };
    expect(await send(grpcRelay())).toEqual({
      code: GrpcStatus.RESOURCE_EXHAUSTED,
      message: 'session relay limit reached: claimable portion fully consumed',
    });
    await settle();
    expect([grpcHits.length, calls.published.length]).toEqual([0, 0]);
  });

  it('metadata pocket-simulation-key-id takes the simulated path: no meter, no publish', async () => {
    const a = await send(grpcRelay(), { 'pocket-simulation-key-id': 'probe-1' });
    expect(a.code).toBe(0);
    await settle();
    expect([calls.simulation, calls.consume.length, calls.published.length]).toEqual([
      [['probe-1', 'grpc']],
      0,
      0,
    ]);
  });
});

describe('backend failures give the meter its cost back and publish nothing', () => {
  it('backend HTTP 5xx → UNAVAILABLE', async () => {
    expect(await send(grpcRelay('/t.S/503'))).toEqual({
      code: GrpcStatus.UNAVAILABLE,
      message: 'backend service error (HTTP 503)',
    });
    await settle();
    expect([calls.revert, calls.published.length]).toEqual([[5n], 0]);
  });

  it('the client deadline (grpc-timeout) bounds the backend call → DEADLINE_EXCEEDED', async () => {
    expect(await send(grpcRelay('/t.S/Never'), { 'grpc-timeout': '100m' })).toEqual({
      code: GrpcStatus.DEADLINE_EXCEEDED,
      message: 'backend timed out',
    });
    await settle();
    expect([calls.revert, calls.published.length]).toEqual([[5n], 0]);
  });
});

describe('metrics', () => {
  it('counts calls by service and code', async () => {
    const okBefore = await metric('ha_relayer_grpc_requests_total', { service_id: 'demo', code: 'OK' });
    await send(grpcRelay());
    verdict = { ok: false, code: 'RING_SIG_INVALID', reason: 'bad', httpStatus: 403 };
    await send(grpcRelay());
    expect([
      (await metric('ha_relayer_grpc_requests_total', { service_id: 'demo', code: 'OK' })) - okBefore,
      (await metric('ha_relayer_grpc_requests_total', { service_id: 'demo', code: 'PERMISSION_DENIED' })) >=
        1,
      (await metric('ha_relayer_relays_rejected_total', {
        service_id: 'demo',
        reason: 'validation_failed',
      })) >= 1,
    ]).toEqual([1, true, true]);
  });
});

describe('gRPC-Web over HTTP/1.1', () => {
  /** Writes `chunks` one by one (optionally leaving the request open) and returns status, headers, body. */
  function h1Call(
    chunks: (string | Buffer)[],
    contentType: string,
    end = true,
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: server.port,
          method: 'POST',
          path: SEND_RELAY,
          headers: { 'content-type': contentType },
        },
        (res) => {
          const out: Buffer[] = [];
          res.on('data', (c: Buffer) => out.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(out) }),
          );
        },
      );
      req.on('error', reject);
      const write = (i: number): void => {
        if (i === chunks.length) {
          if (end) req.end();
          return;
        }
        req.write(chunks[i]!, () => setTimeout(() => write(i + 1), 10));
      };
      write(0);
    });
  }

  it('text bodies may arrive as several padded base64 segments split across writes', async () => {
    const frame = encodeGrpcFrame(encodeRelayRequest(grpcRelay()));
    const cut = 7;
    const a = frame.subarray(0, cut).toString('base64');
    const b = frame.subarray(cut).toString('base64');
    expect(a.endsWith('=')).toBe(true);
    const text = a + b;
    const r = await h1Call(
      [text.slice(0, 5), text.slice(5, 13), text.slice(13)],
      'application/grpc-web-text',
    );
    const { frames } = parseGrpcFrames(Buffer.from(r.body.toString('latin1'), 'base64'));
    expect([r.status, r.headers['content-type'], frames.length, grpcHits.length]).toEqual([
      200,
      'application/grpc-web-text+proto',
      2,
      1,
    ]);
  });

  it('an oversized message is refused at once and the connection is closed', async () => {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(2 << 20, 1);
    const r = await h1Call([head, Buffer.alloc(100)], 'application/grpc-web+proto', false);
    const { frames } = parseGrpcFrames(r.body);
    expect([r.status, r.headers.connection, frames.length]).toEqual([200, 'close', 1]);
    expect(frames[0]!.message.toString()).toBe(
      `grpc-status: 8\r\ngrpc-message: request message of ${2 << 20} bytes exceeds the limit of ${1 << 20} bytes\r\n`,
    );
  });
});

describe('clients that go away', () => {
  it('a call cancelled mid-request ends without admission and leaves nothing in flight', async () => {
    const req = client.request({
      ':method': 'POST',
      ':path': SEND_RELAY,
      'content-type': 'application/grpc',
    });
    req.on('error', () => undefined);
    req.write(encodeGrpcFrame(encodeRelayRequest(grpcRelay())).subarray(0, 10));
    await new Promise((r) => setTimeout(r, 30));
    req.close(http2.constants.NGHTTP2_CANCEL);
    await settle();
    expect([calls.gate.length, core.pending.inFlight]).toEqual([0, 0]);
  });

  it('a call cancelled while the backend works gives the meter its cost back and publishes nothing', async () => {
    const req = client.request({
      ':method': 'POST',
      ':path': SEND_RELAY,
      'content-type': 'application/grpc',
    });
    req.on('error', () => undefined);
    req.end(encodeGrpcFrame(encodeRelayRequest(grpcRelay('/t.S/Never'))));
    await new Promise((r) => setTimeout(r, 100));
    req.close(http2.constants.NGHTTP2_CANCEL);
    await new Promise((r) => setTimeout(r, 100));
    expect([grpcHits.length, calls.revert, calls.published.length, core.pending.inFlight]).toEqual([
      1,
      [5n],
      0,
      0,
    ]);
  });
});

describe('shutdown', () => {
  it('close(grace) lets a call in flight finish, then refuses new connections', async () => {
    const other = await startGrpcServer(core, { host: '127.0.0.1', port: 0, maxMessageBytes: 1 << 20 });
    const c = http2.connect(`http://127.0.0.1:${other.port}`);
    c.on('error', () => undefined);
    const inFlight = new Promise<{ status: string | undefined; body: Buffer }>((resolve, reject) => {
      const req = c.request({ ':method': 'POST', ':path': SEND_RELAY, 'content-type': 'application/grpc' });
      let status: string | undefined;
      const chunks: Buffer[] = [];
      req.on('trailers', (t) => (status = String(t['grpc-status'])));
      req.on('data', (b: Buffer) => chunks.push(b));
      req.on('error', reject);
      req.on('close', () => resolve({ status, body: Buffer.concat(chunks) }));
      req.end(encodeGrpcFrame(encodeRelayRequest(grpcRelay('/t.S/Slow'))));
    });
    await new Promise((r) => setTimeout(r, 100));
    await other.close(2_000);
    const done = await inFlight;
    expect([done.status, parseGrpcFrames(done.body).frames.length]).toEqual(['0', 1]);
    const refused = await new Promise<string>((resolve) => {
      const d = http2.connect(`http://127.0.0.1:${other.port}`);
      d.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
    c.close();
  });

  it('a draining core refuses calls with UNAVAILABLE', async () => {
    await core.drain(0);
    expect(await send(grpcRelay())).toEqual({
      code: GrpcStatus.UNAVAILABLE,
      message: 'relayer is shutting down',
    });
  });
});
