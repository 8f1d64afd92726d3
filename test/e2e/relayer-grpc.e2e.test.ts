/**
 * Native gRPC and gRPC-Web relays end to end: the relayer's gRPC listener on a running relay
 * core (real Redis, the localnet chain, the demo gRPC backend). Valid relays come back as signed
 * RelayResponses that verify as a gateway verifies them and land exactly once in the supplier
 * stream; every refusal is the specified gRPC status and publishes nothing.
 */
import http2 from 'node:http2';
import { gzipSync } from 'node:zlib';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GrpcFrameDecoder,
  GrpcStatus,
  decodeGrpcMessage,
  encodeGrpcFrame,
  parseGrpcWebTrailers,
  type RawGrpcFrame,
} from '../../core/index.js';
import { GRPC_METHODS, demoMessages } from '../../localnet/backends/index.js';
import {
  decodeRelay,
  encodePoktHttpRequest,
  encodeRelayRequest,
  sha256,
  type SessionHeader,
} from '../../protocol/index.js';
import { startGrpcServer, type GrpcRelayServer } from '../../relayer/grpc-server.js';
import { APP, SUPPLIER } from './localnet-fixtures.js';
import { startRelayerStack, type RelayerStack } from './relayer-fixtures.js';

const SEND_RELAY = '/pocket.service.RelayService/SendRelay';
const MAX_MESSAGE_BYTES = 64 * 1024;

let s: RelayerStack;
let header: SessionHeader;
let server: GrpcRelayServer;
let registry: Registry;
let client: http2.ClientHttp2Session;

beforeAll(async () => {
  s = await startRelayerStack();
  header = await s.session('anvil');
  registry = new Registry();
  server = await startGrpcServer(s.relayer.core, {
    host: '127.0.0.1',
    port: 0,
    maxMessageBytes: MAX_MESSAGE_BYTES,
    registry,
  });
  client = http2.connect(`http://127.0.0.1:${server.port}`);
  client.on('error', () => undefined);
}, 30_000);
afterAll(async () => {
  client?.close();
  await server?.close(1_000);
  await s?.close();
});

/* ---------- clients ---------- */

interface NativeAnswer {
  headers: http2.IncomingHttpHeaders;
  /** True when the status came in the headers frame (trailers-only answer). */
  trailersOnly: boolean;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

function nativeCall(
  body: Uint8Array | undefined,
  metadata: Record<string, string> = {},
  path = SEND_RELAY,
  session: http2.ClientHttp2Session = client,
): Promise<NativeAnswer> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...metadata,
    });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    let trailersOnly = false;
    const chunks: Buffer[] = [];
    req.on('response', (h, flags) => {
      headers = h;
      trailersOnly = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    });
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('close', () => resolve({ headers, trailersOnly, trailers, body: Buffer.concat(chunks) }));
    if (body === undefined) return;
    req.end(body);
  });
}

function frames(body: Uint8Array): RawGrpcFrame[] {
  const r = new GrpcFrameDecoder(1 << 30).push(body);
  if (!r.ok) throw new Error('frame too large');
  return r.frames;
}

/** The status of a native answer, wherever it travelled. */
function nativeStatus(a: NativeAnswer): { code: number; message: string } {
  const src = a.trailersOnly ? a.headers : a.trailers;
  return {
    code: Number(src['grpc-status']),
    message: decodeGrpcMessage(String(src['grpc-message'] ?? '')),
  };
}

async function webCall(
  body: Uint8Array,
  mode: 'binary' | 'text',
  headers: Record<string, string> = {},
  path = SEND_RELAY,
): Promise<{ status: number; headers: Headers; frames: RawGrpcFrame[] }> {
  const res = await fetch(`http://127.0.0.1:${server.port}${path}`, {
    method: 'POST',
    headers: {
      'content-type': mode === 'text' ? 'application/grpc-web-text' : 'application/grpc-web+proto',
      'x-grpc-web': '1',
      ...headers,
    },
    body: mode === 'text' ? Buffer.from(body).toString('base64') : body,
  });
  const raw = Buffer.from(await res.arrayBuffer());
  const bytes = mode === 'text' ? Buffer.from(raw.toString('latin1'), 'base64') : raw;
  return { status: res.status, headers: res.headers, frames: frames(bytes) };
}

function webStatus(fs: RawGrpcFrame[]): { code: number; message: string } {
  const t = fs.find((f) => (f.flags & 0x80) !== 0);
  if (t === undefined) throw new Error('no trailer frame');
  const kv = parseGrpcWebTrailers(t.message);
  return { code: Number(kv['grpc-status']), message: decodeGrpcMessage(kv['grpc-message'] ?? '') };
}

/* ---------- relays ---------- */

function grpcPayload(path: string, message: Uint8Array, headers: Record<string, string> = {}): Uint8Array {
  return encodePoktHttpRequest({
    method: 'POST',
    url: path,
    headers: Object.entries({ 'content-type': 'application/grpc', ...headers }).map(
      ([k, v]) => [k, [v]] as const,
    ),
    body: encodeGrpcFrame(message),
  });
}

function heightRelay(): { request: ReturnType<RelayerStack['signRequest']>['request']; bytes: Uint8Array } {
  return s.signRequest(header, grpcPayload(GRPC_METHODS.getBlockHeight, new Uint8Array()));
}

async function newEntries(
  before: number,
  expected: number,
): Promise<Awaited<ReturnType<RelayerStack['streamEntries']>>> {
  await s.waitForEntries(before + expected, 3_000);
  await new Promise((r) => setTimeout(r, 50));
  await s.relayer.publisher.flush();
  return (await s.streamEntries()).slice(before);
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  if (m === undefined) return 0;
  return m.values
    .filter((v) => Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val))
    .reduce((a, v) => a + v.value, 0);
}

describe('valid relays', () => {
  it('native gRPC: signed RelayResponse that verifies, backend trailers inside, published exactly once', async () => {
    const before = (await s.streamEntries()).length;
    const { request, bytes } = heightRelay();
    const a = await nativeCall(encodeGrpcFrame(bytes));
    expect({
      status: a.headers[':status'],
      type: a.headers['content-type'],
      trailersOnly: a.trailersOnly,
      grpc: nativeStatus(a),
    }).toEqual({
      status: 200,
      type: 'application/grpc+proto',
      trailersOnly: false,
      grpc: { code: 0, message: '' },
    });
    const fs = frames(a.body);
    expect(fs.map((f) => f.flags)).toEqual([0]);
    const v = s.verifyHttp(fs[0]!.message, header);
    if (!v.ok) throw new Error(v.reason);
    expect(v.status).toBe(200);
    expect(Buffer.from(v.body)).toEqual(encodeGrpcFrame(demoMessages.encodeHeight(s.backends.grpc.height)));
    expect(v.headers.get('grpc-status')).toEqual(['0']);
    expect(v.headers.get('content-type')).toEqual(['application/grpc+proto']);
    const rows = await newEntries(before, 1);
    expect(rows).toHaveLength(1);
    const m = rows[0]!;
    expect([m.session_id, m.supplier_operator_address, m.application_address, m.service_id]).toEqual([
      header.sessionId,
      SUPPLIER.address,
      APP.address,
      'anvil',
    ]);
    expect(m.arrival_block_height).toBe(s.chain.net.chain.height);
    expect(Buffer.from(m.relay_hash)).toEqual(Buffer.from(sha256(m.relay_bytes)));
    const relay = decodeRelay(m.relay_bytes);
    if (!relay.ok) throw new Error(relay.reason);
    expect(Buffer.from(relay.value.req!.payload)).toEqual(Buffer.from(request.payload));
    expect(Buffer.from(relay.value.req!.meta!.signature)).toEqual(Buffer.from(request.meta!.signature));
  });

  it('native gRPC: a gzip-compressed request message is accepted', async () => {
    const before = (await s.streamEntries()).length;
    const payload = Buffer.from('compressed echo');
    const { bytes } = s.signRequest(header, grpcPayload(GRPC_METHODS.echo, demoMessages.encodeEcho(payload)));
    const a = await nativeCall(encodeGrpcFrame(gzipSync(bytes), true), { 'grpc-encoding': 'gzip' });
    expect(nativeStatus(a)).toEqual({ code: 0, message: '' });
    const v = s.verifyHttp(frames(a.body)[0]!.message, header);
    if (!v.ok) throw new Error(v.reason);
    expect(Buffer.from(v.body)).toEqual(encodeGrpcFrame(demoMessages.encodeEcho(payload)));
    expect(await newEntries(before, 1)).toHaveLength(1);
  });

  it('a backend gRPC error status comes back signed, carrying that status in the payload headers', async () => {
    const before = (await s.streamEntries()).length;
    const { bytes } = s.signRequest(
      header,
      grpcPayload(
        GRPC_METHODS.fail,
        demoMessages.encodeFail({ code: GrpcStatus.NOT_FOUND, message: 'no such block' }),
      ),
    );
    const a = await nativeCall(encodeGrpcFrame(bytes), { 'rpc-type': '1' });
    expect(nativeStatus(a)).toEqual({ code: 0, message: '' });
    const v = s.verifyHttp(frames(a.body)[0]!.message, header);
    if (!v.ok) throw new Error(v.reason);
    expect({
      status: v.status,
      grpc: v.headers.get('grpc-status'),
      msg: v.headers.get('grpc-message'),
      body: v.body.length,
    }).toEqual({
      status: 200,
      grpc: ['5'],
      msg: ['no such block'],
      body: 0,
    });
    // A trailers-only backend answer has an empty body: there is nothing to mine (as for HTTP).
    expect(await newEntries(before, 0)).toEqual([]);
  });

  it('gRPC-Web (binary, HTTP/1.1): message frame then trailer frame, CORS headers, published once', async () => {
    const before = (await s.streamEntries()).length;
    const payload = Buffer.from('grpc-web echo');
    const { bytes } = s.signRequest(header, grpcPayload(GRPC_METHODS.echo, demoMessages.encodeEcho(payload)));
    const r = await webCall(encodeGrpcFrame(bytes), 'binary', {
      origin: 'https://app.example',
      'rpc-type': 'grpc',
    });
    expect({
      status: r.status,
      type: r.headers.get('content-type'),
      origin: r.headers.get('access-control-allow-origin'),
      expose: r.headers.get('access-control-expose-headers'),
      flags: r.frames.map((f) => f.flags),
      grpc: webStatus(r.frames),
    }).toEqual({
      status: 200,
      type: 'application/grpc-web+proto',
      origin: 'https://app.example',
      expose: 'grpc-status, grpc-message, grpc-status-details-bin',
      flags: [0, 0x80],
      grpc: { code: 0, message: '' },
    });
    const v = s.verifyHttp(r.frames[0]!.message, header);
    if (!v.ok) throw new Error(v.reason);
    expect(Buffer.from(v.body)).toEqual(encodeGrpcFrame(demoMessages.encodeEcho(payload)));
    expect(await newEntries(before, 1)).toHaveLength(1);
    expect(
      await metric('ha_relayer_grpc_web_requests_total', { service_id: 'anvil' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('gRPC-Web text (base64) over HTTP/1.1', async () => {
    const before = (await s.streamEntries()).length;
    const { bytes } = heightRelay();
    const r = await webCall(encodeGrpcFrame(bytes), 'text');
    expect([
      r.status,
      r.headers.get('content-type'),
      r.frames.map((f) => f.flags),
      webStatus(r.frames),
    ]).toEqual([200, 'application/grpc-web-text+proto', [0, 0x80], { code: 0, message: '' }]);
    const v = s.verifyHttp(r.frames[0]!.message, header);
    if (!v.ok) throw new Error(v.reason);
    expect(Buffer.from(v.body)).toEqual(encodeGrpcFrame(demoMessages.encodeHeight(s.backends.grpc.height)));
    expect(await newEntries(before, 1)).toHaveLength(1);
  });

  it('gRPC-Web over HTTP/2 (h2c)', async () => {
    const before = (await s.streamEntries()).length;
    const { bytes } = heightRelay();
    const a = await new Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const req = client.request({
        ':method': 'POST',
        ':path': SEND_RELAY,
        'content-type': 'application/grpc-web',
      });
      let headers: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      req.on('response', (h) => (headers = h));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', reject);
      req.on('close', () => resolve({ headers, body: Buffer.concat(chunks) }));
      req.end(encodeGrpcFrame(bytes));
    });
    const fs = frames(a.body);
    expect([a.headers[':status'], a.headers['content-type'], fs.map((f) => f.flags), webStatus(fs)]).toEqual([
      200,
      'application/grpc-web+proto',
      [0, 0x80],
      { code: 0, message: '' },
    ]);
    expect(s.verifyHttp(fs[0]!.message, header).ok).toBe(true);
    expect(await newEntries(before, 1)).toHaveLength(1);
  });

  it("the relayer's own gRPC port (as cmd wires it) serves and counts on the relayer registry", async () => {
    expect(s.grpcPort).toBeGreaterThan(0);
    const before = (await s.streamEntries()).length;
    const okBefore = await s.metric('ha_relayer_grpc_requests_total', { service_id: 'anvil', code: 'OK' });
    const session = http2.connect(`http://127.0.0.1:${s.grpcPort}`);
    session.on('error', () => undefined);
    try {
      const a = await nativeCall(encodeGrpcFrame(heightRelay().bytes), {}, SEND_RELAY, session);
      expect(nativeStatus(a)).toEqual({ code: 0, message: '' });
      expect(s.verifyHttp(frames(a.body)[0]!.message, header).ok).toBe(true);
    } finally {
      session.close();
    }
    expect(await newEntries(before, 1)).toHaveLength(1);
    expect(
      (await s.metric('ha_relayer_grpc_requests_total', { service_id: 'anvil', code: 'OK' })) - okBefore,
    ).toBe(1);
  });

  it('counts served calls by service and code', async () => {
    expect(
      await metric('ha_relayer_grpc_requests_total', { service_id: 'anvil', code: 'OK' }),
    ).toBeGreaterThanOrEqual(4);
  });
});

describe('refusals publish nothing', () => {
  async function expectNative(
    body: Uint8Array | undefined,
    expected: { code: number; message: string },
    metadata: Record<string, string> = {},
    path = SEND_RELAY,
  ): Promise<void> {
    const before = (await s.streamEntries()).length;
    const a = await nativeCall(body, metadata, path);
    expect({
      status: a.headers[':status'],
      trailersOnly: a.trailersOnly,
      grpc: nativeStatus(a),
      body: a.body.length,
    }).toEqual({
      status: 200,
      trailersOnly: true,
      grpc: expected,
      body: 0,
    });
    expect(await newEntries(before, 0)).toEqual([]);
  }

  it('bad signature → PERMISSION_DENIED', async () => {
    const { request } = heightRelay();
    // The payload changed after signing: the ring signature no longer covers the request.
    const tampered = encodeRelayRequest({
      ...request,
      payload: Buffer.from(grpcPayload(GRPC_METHODS.echo, demoMessages.encodeEcho(Buffer.from('x')))),
    });
    const before = (await s.streamEntries()).length;
    const a = await nativeCall(encodeGrpcFrame(tampered));
    const st = nativeStatus(a);
    expect([a.trailersOnly, st.code]).toEqual([true, GrpcStatus.PERMISSION_DENIED]);
    expect(st.message).not.toBe('');
    expect(await newEntries(before, 0)).toEqual([]);
    // The same over gRPC-Web.
    const r = await webCall(encodeGrpcFrame(tampered), 'binary');
    expect([r.frames.map((f) => f.flags), webStatus(r.frames).code]).toEqual([
      [0x80],
      GrpcStatus.PERMISSION_DENIED,
    ]);
    expect(await newEntries(before, 0)).toEqual([]);
  });

  it('unknown service → NOT_FOUND', async () => {
    const { bytes } = s.signRequest(
      { ...header, serviceId: 'nope' },
      grpcPayload(GRPC_METHODS.getBlockHeight, new Uint8Array()),
    );
    await expectNative(encodeGrpcFrame(bytes), {
      code: GrpcStatus.NOT_FOUND,
      message: 'unknown service: nope',
    });
  });

  it('malformed protobuf → INVALID_ARGUMENT', async () => {
    await expectNative(encodeGrpcFrame(Buffer.from([0xff, 0xff, 0xff])), {
      code: GrpcStatus.INVALID_ARGUMENT,
      message: 'invalid relay request: body must be a valid RelayRequest protobuf',
    });
  });

  it('a payload that is not a POKTHTTPRequest → INVALID_ARGUMENT', async () => {
    const { bytes } = s.signRequest(header, Buffer.from([0xff, 0x01]));
    await expectNative(encodeGrpcFrame(bytes), {
      code: GrpcStatus.INVALID_ARGUMENT,
      message: 'invalid relay request: payload must be a POKTHTTPRequest',
    });
  });

  it('oversized message → RESOURCE_EXHAUSTED before the body is sent in full', async () => {
    const before = (await s.streamEntries()).length;
    const declared = 10 * 1024 * 1024;
    const head = Buffer.alloc(5 + 1024);
    head.writeUInt32BE(declared, 1);
    // Only the first KiB is written and the request is left open: the answer must not wait for the rest.
    const a = await new Promise<NativeAnswer>((resolve, reject) => {
      const req = client.request({
        ':method': 'POST',
        ':path': SEND_RELAY,
        'content-type': 'application/grpc',
      });
      let headers: http2.IncomingHttpHeaders = {};
      let trailersOnly = false;
      req.on('response', (h, flags) => {
        headers = h;
        trailersOnly = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      });
      req.on('error', reject);
      req.on('close', () => resolve({ headers, trailersOnly, trailers: {}, body: Buffer.alloc(0) }));
      req.write(head);
    });
    expect([a.trailersOnly, nativeStatus(a)]).toEqual([
      true,
      {
        code: GrpcStatus.RESOURCE_EXHAUSTED,
        message: `request message of ${declared} bytes exceeds the limit of ${MAX_MESSAGE_BYTES} bytes`,
      },
    ]);
    expect(await newEntries(before, 0)).toEqual([]);
  });

  it('a gzip message that inflates past the limit → RESOURCE_EXHAUSTED', async () => {
    await expectNative(
      encodeGrpcFrame(gzipSync(Buffer.alloc(MAX_MESSAGE_BYTES + 1)), true),
      {
        code: GrpcStatus.RESOURCE_EXHAUSTED,
        message: `decompressed request message exceeds the limit of ${MAX_MESSAGE_BYTES} bytes`,
      },
      { 'grpc-encoding': 'gzip' },
    );
  });

  it('unknown method → UNIMPLEMENTED', async () => {
    await expectNative(
      encodeGrpcFrame(heightRelay().bytes),
      { code: GrpcStatus.UNIMPLEMENTED, message: 'unknown method /pocket.service.RelayService/Other' },
      {},
      '/pocket.service.RelayService/Other',
    );
    const r = await webCall(encodeGrpcFrame(heightRelay().bytes), 'binary', {}, '/demo.DemoService/Echo');
    expect(webStatus(r.frames)).toEqual({
      code: GrpcStatus.UNIMPLEMENTED,
      message: 'unknown method /demo.DemoService/Echo',
    });
  });

  it('framing violations → INTERNAL; unsupported grpc-encoding → UNIMPLEMENTED', async () => {
    await expectNative(Buffer.alloc(0), {
      code: GrpcStatus.INTERNAL,
      message: 'unary call carried no request message',
    });
    await expectNative(Buffer.from([0, 0, 0, 0, 9, 1, 2]), {
      code: GrpcStatus.INTERNAL,
      message: 'request ends inside a message frame',
    });
    const one = encodeGrpcFrame(heightRelay().bytes);
    await expectNative(Buffer.concat([one, one]), {
      code: GrpcStatus.INTERNAL,
      message: 'unary call carried more than one request message',
    });
    await expectNative(encodeGrpcFrame(Buffer.from('x'), true), {
      code: GrpcStatus.INTERNAL,
      message: 'compressed message with grpc-encoding identity',
    });
    await expectNative(
      encodeGrpcFrame(Buffer.from('x'), true),
      { code: GrpcStatus.INTERNAL, message: 'gzip request message does not decompress' },
      { 'grpc-encoding': 'gzip' },
    );
    await expectNative(
      encodeGrpcFrame(heightRelay().bytes),
      {
        code: GrpcStatus.UNIMPLEMENTED,
        message: 'grpc-encoding snappy is not supported; use identity or gzip',
      },
      { 'grpc-encoding': 'snappy' },
    );
  });

  it('gRPC-Web text that is not base64 → INVALID_ARGUMENT', async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}${SEND_RELAY}`, {
      method: 'POST',
      headers: { 'content-type': 'application/grpc-web-text' },
      body: '!!!!',
    });
    const fs = frames(Buffer.from(Buffer.from(await res.arrayBuffer()).toString('latin1'), 'base64'));
    expect(webStatus(fs)).toEqual({
      code: GrpcStatus.INVALID_ARGUMENT,
      message: 'grpc-web-text body is not base64',
    });
  });

  it('an rpc-type without a backend → UNAVAILABLE, nothing billed or published', async () => {
    await expectNative(
      encodeGrpcFrame(heightRelay().bytes),
      { code: GrpcStatus.UNAVAILABLE, message: 'no nope backend for service anvil' },
      { 'rpc-type': 'nope' },
    );
  });
});

describe('HTTP edges of the listener', () => {
  it('CORS preflight is answered permissively', async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}${SEND_RELAY}`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-grpc-web,rpc-type',
      },
    });
    expect({
      status: res.status,
      origin: res.headers.get('access-control-allow-origin'),
      methods: res.headers.get('access-control-allow-methods'),
      headers: res.headers.get('access-control-allow-headers'),
      credentials: res.headers.get('access-control-allow-credentials'),
      maxAge: res.headers.get('access-control-max-age'),
    }).toEqual({
      status: 204,
      origin: 'https://app.example',
      methods: 'POST, OPTIONS',
      headers: 'content-type,x-grpc-web,rpc-type',
      credentials: 'true',
      maxAge: '600',
    });
  });

  it('native gRPC over HTTP/1.1 → 505; other content types → 415; GET → 405', async () => {
    const h1 = await fetch(`http://127.0.0.1:${server.port}${SEND_RELAY}`, {
      method: 'POST',
      headers: { 'content-type': 'application/grpc' },
      body: encodeGrpcFrame(new Uint8Array()),
    });
    const json = await fetch(`http://127.0.0.1:${server.port}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    const get = await fetch(`http://127.0.0.1:${server.port}${SEND_RELAY}`, {
      headers: { 'content-type': 'application/grpc-web' },
    });
    expect([h1.status, json.status, get.status, await json.text()]).toEqual([
      505,
      415,
      405,
      'content-type must be application/grpc (HTTP/2) or application/grpc-web[-text]\n',
    ]);
  });
});

describe('backend down', () => {
  let down: RelayerStack;
  let downServer: GrpcRelayServer;

  beforeAll(async () => {
    down = await startRelayerStack({
      configure: (cfg) => {
        cfg.services.anvil!.backends.grpc = { url: '127.0.0.1:1', max_retries: 0 };
      },
    });
    downServer = await startGrpcServer(down.relayer.core, {
      host: '127.0.0.1',
      port: 0,
      maxMessageBytes: 1 << 20,
    });
  }, 30_000);
  afterAll(async () => {
    await downServer?.close(1_000);
    await down?.close();
  });

  it('→ UNAVAILABLE, not signed, nothing published', async () => {
    const h = await down.session('anvil');
    const { bytes } = down.signRequest(h, grpcPayload(GRPC_METHODS.getBlockHeight, new Uint8Array()));
    const session = http2.connect(`http://127.0.0.1:${downServer.port}`);
    session.on('error', () => undefined);
    try {
      const a = await nativeCall(encodeGrpcFrame(bytes), {}, SEND_RELAY, session);
      expect([a.trailersOnly, nativeStatus(a), a.body.length]).toEqual([
        true,
        { code: GrpcStatus.UNAVAILABLE, message: 'backend error' },
        0,
      ]);
    } finally {
      session.close();
    }
    await new Promise((r) => setTimeout(r, 50));
    await down.relayer.publisher.flush();
    expect(await down.streamEntries()).toEqual([]);
  });
});
