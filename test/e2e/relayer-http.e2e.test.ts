/**
 * The relayer over real sockets: HTTP JSON-RPC, REST, CometBFT and streamed (SSE / NDJSON)
 * relays through uWS, real Redis, the localnet chain and the demo backends. Every valid relay's
 * answer is verified as a gateway verifies it and lands exactly once in the supplier stream;
 * every rejection gives the specified status and body and publishes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRelay, sha256, type SessionHeader } from '../../protocol/index.js';
import { splitStreamBatches } from '../../rings/index.js';
import { expectedNdjson, expectedSse } from '../../localnet/backends/index.js';
import { APP, GATEWAY, SUPPLIER, testKey } from './localnet-fixtures.js';
import { STREAM_SERVICE, startRelayerStack, type RelayerStack } from './relayer-fixtures.js';

let s: RelayerStack;
let header: SessionHeader;

beforeAll(async () => {
  s = await startRelayerStack();
  header = await s.session('anvil');
}, 30_000);
afterAll(async () => {
  await s?.close();
});

const RPC = '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}';

async function post(
  body: Uint8Array,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; bytes: Uint8Array }> {
  const res = await fetch(`${s.url}/`, { method: 'POST', body, headers });
  return { status: res.status, headers: res.headers, bytes: new Uint8Array(await res.arrayBuffer()) };
}

function text(b: Uint8Array): string {
  return Buffer.from(b).toString('utf8');
}

/** Entries published since `before` (the stream is shared by the tests of this file). */
async function newEntries(
  before: number,
  expected: number,
): Promise<Awaited<ReturnType<RelayerStack['streamEntries']>>> {
  await s.waitForEntries(before + expected, 3_000);
  // A short wait so a wrongly published extra relay would show up too.
  await new Promise((r) => setTimeout(r, 50));
  await s.relayer.publisher.flush();
  return (await s.streamEntries()).slice(before);
}

describe('valid relays', () => {
  it('JSON-RPC: the signed answer verifies and the relay lands exactly once in the stream', async () => {
    const before = (await s.streamEntries()).length;
    const { request, bytes } = s.signRequest(header, s.httpPayload({ body: RPC }));
    const res = await post(bytes, { 'Rpc-Type': '3', Accept: 'application/json' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const v = s.verifyHttp(res.bytes, header);
    if (!v.ok) throw new Error(v.reason);
    expect(v.status).toBe(200);
    expect(JSON.parse(text(v.body))).toEqual({ jsonrpc: '2.0', id: 1, result: '0x1' });
    const rows = await newEntries(before, 1);
    expect(rows).toHaveLength(1);
    const m = rows[0]!;
    expect(m.session_id).toBe(header.sessionId);
    expect(m.supplier_operator_address).toBe(SUPPLIER.address);
    expect(m.application_address).toBe(APP.address);
    expect(m.service_id).toBe('anvil');
    expect(m.session_start_height).toBe(Number(header.sessionStartBlockHeight));
    expect(m.session_end_height).toBe(Number(header.sessionEndBlockHeight));
    expect(m.compute_units_per_relay).toBe(2n);
    expect(m.arrival_block_height).toBe(s.chain.net.chain.height);
    expect(Buffer.from(m.relay_hash)).toEqual(Buffer.from(sha256(m.relay_bytes)));
    const relay = decodeRelay(m.relay_bytes);
    if (!relay.ok) throw new Error(relay.reason);
    // The mined request is the request as received, byte for byte.
    expect(Buffer.from(relay.value.req!.meta!.signature)).toEqual(Buffer.from(request.meta!.signature));
    expect(Buffer.from(relay.value.req!.payload)).toEqual(Buffer.from(request.payload));
    // The mined response is the signed response the client holds, with its payload cleared.
    expect(relay.value.res!.payload.length).toBe(0);
    expect(Buffer.from(relay.value.res!.payloadHash)).toEqual(Buffer.from(v.response.payloadHash));
    expect(Buffer.from(relay.value.res!.meta!.supplierOperatorSignature)).toEqual(
      Buffer.from(v.response.meta!.supplierOperatorSignature),
    );
  });

  it('REST (Rpc-Type 4) reaches the REST backend with the relay path and query', async () => {
    const before = (await s.streamEntries()).length;
    const { bytes } = s.signRequest(
      header,
      s.httpPayload({ method: 'GET', url: '/v1/query?a=1&a=2&b=x', body: '' }),
    );
    const res = await post(bytes, { 'Rpc-Type': '4' });
    expect(res.status).toBe(200);
    const v = s.verifyHttp(res.bytes, header);
    if (!v.ok) throw new Error(v.reason);
    expect(v.status).toBe(200);
    expect(JSON.parse(text(v.body))).toEqual({ a: ['1', '2'], b: 'x' });
    expect(await newEntries(before, 1)).toHaveLength(1);
  });

  it('CometBFT (Rpc-Type 5) uses the cometbft pool', async () => {
    const before = (await s.streamEntries()).length;
    const { bytes } = s.signRequest(header, s.httpPayload({ body: RPC }));
    const res = await post(bytes, { 'Rpc-Type': '5' });
    expect(res.status).toBe(200);
    const v = s.verifyHttp(res.bytes, header);
    expect(v.ok && JSON.parse(text(v.body))).toEqual({ jsonrpc: '2.0', id: 1, result: '0x1' });
    expect(await newEntries(before, 1)).toHaveLength(1);
  });

  it('a backend 4xx answer is signed and billed; gzip bodies are decompressed before signing', async () => {
    const before = (await s.streamEntries()).length;
    const a = s.signRequest(header, s.httpPayload({ method: 'GET', url: '/v1/status-code/404', body: '' }));
    const r404 = await post(a.bytes, { 'Rpc-Type': '4' });
    expect(r404.status).toBe(200);
    const v404 = s.verifyHttp(r404.bytes, header);
    expect(v404.ok && [v404.status, JSON.parse(text(v404.body))]).toEqual([404, { status: 404 }]);
    const g = s.signRequest(header, s.httpPayload({ method: 'GET', url: '/v1/gzip', body: '' }));
    const rg = await post(g.bytes, { 'Rpc-Type': '4' });
    const vg = s.verifyHttp(rg.bytes, header);
    if (!vg.ok) throw new Error(vg.reason);
    expect(vg.headers.has('Content-Encoding') || vg.headers.has('content-encoding')).toBe(false);
    expect(JSON.parse(text(vg.body))).toBeTypeOf('object');
    expect(await newEntries(before, 2)).toHaveLength(2);
  });

  it('SSE: every batch verifies on its own, the events reassemble exactly, one relay is published', async () => {
    const sh = await s.session(STREAM_SERVICE);
    const before = (await s.streamEntries()).length;
    const { bytes } = s.signRequest(
      sh,
      s.httpPayload({ method: 'GET', url: '/sse?count=12&interval_ms=30', body: '' }),
    );
    const res = await post(bytes, { 'Rpc-Type': '3' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const { batches, rest } = splitStreamBatches(res.bytes);
    expect(rest.length).toBe(0);
    expect(batches.length).toBeGreaterThan(1);
    let body = '';
    for (const b of batches) {
      const v = s.verifyHttp(b, sh);
      if (!v.ok) throw new Error(v.reason);
      expect(v.status).toBe(200);
      body += text(v.body);
    }
    expect(body).toBe(expectedSse(12));
    const rows = await newEntries(before, 1);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.service_id).toBe(STREAM_SERVICE);
    const relay = decodeRelay(rows[0]!.relay_bytes);
    expect(relay.ok && Buffer.from(relay.value.res!.payloadHash)).toEqual(
      Buffer.from(sha256(Buffer.from(body))),
    );
  });

  it('NDJSON streams are batched the same way', async () => {
    const sh = await s.session(STREAM_SERVICE);
    const { bytes } = s.signRequest(
      sh,
      s.httpPayload({ method: 'GET', url: '/ndjson?count=250&interval_ms=0', body: '' }),
    );
    const res = await post(bytes, { 'Rpc-Type': '4' });
    const { batches } = splitStreamBatches(res.bytes);
    let body = '';
    for (const b of batches) {
      const v = s.verifyHttp(b, sh);
      if (!v.ok) throw new Error(v.reason);
      body += text(v.body);
    }
    expect(body).toBe(expectedNdjson(250));
    // At most 100 lines per batch.
    expect(batches.length).toBeGreaterThanOrEqual(3);
  });

  it('health and readiness answer on the relay port', async () => {
    const h = await fetch(`${s.url}/health`);
    expect(await h.json()).toEqual({ status: 'healthy', block_height: s.chain.net.chain.height });
    const r = await fetch(`${s.url}/ready/anvil`);
    expect(r.status).toBe(200);
    const body = (await r.json()) as {
      service_id: string;
      ready: boolean;
      backends: { total: number; healthy: number };
    };
    expect([body.service_id, body.ready, body.backends.total, body.backends.healthy]).toEqual([
      'anvil',
      true,
      5,
      5,
    ]);
    expect((await fetch(`${s.url}/ready/nope`)).status).toBe(404);
  });
});

describe('rejections: status, body, nothing published', () => {
  async function expectRejected(
    body: Uint8Array,
    status: number,
    error: string | RegExp,
    headers: Record<string, string> = { 'Rpc-Type': '3' },
  ): Promise<void> {
    const before = (await s.streamEntries()).length;
    const res = await post(body, headers);
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toBe('application/json');
    const parsed = JSON.parse(text(res.bytes)) as { error: string };
    if (typeof error === 'string') expect(parsed.error).toBe(error);
    else expect(parsed.error).toMatch(error);
    await new Promise((r) => setTimeout(r, 50));
    await s.relayer.publisher.flush();
    expect((await s.streamEntries()).length).toBe(before);
  }

  it('bad ring signature (a non-member signs) → 403', async () => {
    const { bytes } = s.signRequest(header, s.httpPayload({ body: RPC }), {
      ringMember: testKey('outsider'),
    });
    await expectRejected(bytes, 403, /ring/i);
  });

  it('signature that does not cover the bytes (payload changed after signing) → 403', async () => {
    const { request } = s.signRequest(header, s.httpPayload({ body: RPC }));
    const tampered = {
      ...request,
      payload: Buffer.from(s.httpPayload({ body: '{"jsonrpc":"2.0","id":9,"method":"eth_chainId"}' })),
    };
    const { encodeRelayRequest } = await import('../../protocol/index.js');
    await expectRejected(encodeRelayRequest(tampered), 403, /^ring signature invalid: /);
  });

  it('wrong session id → 403', async () => {
    const { bytes } = s.signRequest({ ...header, sessionId: 'f'.repeat(64) }, s.httpPayload({ body: RPC }));
    await expectRejected(bytes, 403, /session id differs/);
  });

  it('supplier this relayer does not hold → 403', async () => {
    const { bytes } = s.signRequest(header, s.httpPayload({ body: RPC }), { supplier: GATEWAY.address });
    await expectRejected(bytes, 403, `supplier ${GATEWAY.address} is not served by this relayer`);
  });

  it('unknown service → 404', async () => {
    const { bytes } = s.signRequest({ ...header, serviceId: 'nosuch' }, s.httpPayload({ body: RPC }));
    await expectRejected(bytes, 404, 'unknown service: nosuch');
  });

  it('expired session (grace period over) → 403', async () => {
    const old = await s.session('anvil', 2);
    await s.advance(1); // height 6: the session [1, 4] with 1 grace block ended at 5
    const { bytes } = s.signRequest(old, s.httpPayload({ body: RPC }));
    await expectRejected(bytes, 403, /session expired/);
  });

  it('malformed protobuf, empty body, not-a-relay JSON → 400', async () => {
    const msg = 'invalid relay request: body must be a valid RelayRequest protobuf';
    await expectRejected(Buffer.from([0x0a, 0xff, 0xff]), 400, msg);
    await expectRejected(new Uint8Array(0), 400, msg);
    await expectRejected(Buffer.from(RPC), 400, msg);
  });

  it('body over default_max_body_size_bytes → 413, and the server keeps serving', async () => {
    const big = new Uint8Array(s.config.default_max_body_size_bytes + 1);
    const res = await post(big, { 'Rpc-Type': '3' }).catch(() => undefined);
    if (res !== undefined) {
      expect(res.status).toBe(413);
      expect(JSON.parse(text(res.bytes))).toEqual({ error: 'request body too large' });
    }
    const { bytes } = s.signRequest(header, s.httpPayload({ body: RPC }));
    expect((await post(bytes, { 'Rpc-Type': '3' })).status).toBe(200);
  });

  it('unconfigured transport for the service → 503 fast-fail', async () => {
    const sh = await s.session(STREAM_SERVICE);
    const { bytes } = s.signRequest(sh, s.httpPayload({ body: RPC }));
    const res = await post(bytes, { 'Rpc-Type': '5' });
    expect(res.status).toBe(503);
    expect(JSON.parse(text(res.bytes))).toEqual({
      error: 'service temporarily unavailable',
      service: STREAM_SERVICE,
    });
  });

  it('backend 5xx → the backend status with {"error":"backend service error"}, not signed, not mined', async () => {
    const { bytes } = s.signRequest(
      header,
      s.httpPayload({ body: '{"jsonrpc":"2.0","id":1,"method":"demo_httpStatus","params":[503]}' }),
    );
    await expectRejected(bytes, 503, 'backend service error');
  });
});

describe('eager budget', () => {
  let b: RelayerStack;
  beforeAll(async () => {
    // A service factor that allows exactly two relays per session (cost 2 CU × 42 = 84 uPOKT each).
    b = await startRelayerStack({
      beforeStart: async (redis, keys) => {
        await redis.set(
          keys.serviceFactorServiceKey('anvil'),
          JSON.stringify({ factor: 168 / 100_000_000, updated_at: 0 }),
        );
      },
    });
  }, 30_000);
  afterAll(async () => {
    await b?.close();
  });

  it('over budget → 429 once the meter is exhausted; the refused relay is not published', async () => {
    const h = await b.session('anvil');
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const { bytes } = b.signRequest(h, b.httpPayload({ body: RPC }));
      const res = await fetch(`${b.url}/`, { method: 'POST', body: bytes, headers: { 'Rpc-Type': '3' } });
      statuses.push(res.status);
      if (res.status === 429) {
        expect(await res.json()).toEqual({
          error: 'session relay limit reached: claimable portion fully consumed',
        });
      } else await res.arrayBuffer();
    }
    expect(statuses).toEqual([200, 200, 429]);
    await b.waitForEntries(2);
    await new Promise((r) => setTimeout(r, 50));
    await b.relayer.publisher.flush();
    expect(await b.streamEntries()).toHaveLength(2);
    expect(await b.metric('ha_relayer_relays_rejected_total', { reason: 'stake_exhausted' })).toBe(1);
  });
});

describe('acknowledge: written (the default)', () => {
  let w: RelayerStack;
  let served: RelayerStack;
  beforeAll(async () => {
    // Budget for exactly two relays per session, so a credited-back meter shows as a third success.
    const budget = async (redis: RelayerStack['redis'], keys: RelayerStack['keys']): Promise<void> => {
      await redis.set(
        keys.serviceFactorServiceKey('anvil'),
        JSON.stringify({ factor: 168 / 100_000_000, updated_at: 0 }),
      );
    };
    w = await startRelayerStack({ beforeStart: budget });
    served = await startRelayerStack({
      beforeStart: budget,
      configure: (c) => {
        c.relay_streams = { acknowledge: 'served' };
      },
    });
  }, 30_000);
  afterAll(async () => {
    await w?.close();
    await served?.close();
  });

  async function send(st: RelayerStack, h: SessionHeader): Promise<{ status: number; body: string }> {
    const { bytes } = st.signRequest(h, st.httpPayload({ body: RPC }));
    const res = await fetch(`${st.url}/`, { method: 'POST', body: bytes, headers: { 'Rpc-Type': '3' } });
    const body = Buffer.from(await res.arrayBuffer());
    return { status: res.status, body: res.status === 200 ? '' : body.toString('utf8') };
  }

  it('answers only after Redis stored the relay: the stream holds it when the client has the answer', async () => {
    const h = await s.session('anvil');
    const stream = s.keys.relayStream(SUPPLIER.address);
    for (let i = 0; i < 5; i++) {
      const before = await s.redis.xlen(stream);
      expect((await send(s, h)).status).toBe(200);
      expect(await s.redis.xlen(stream)).toBe(before + 1);
    }
  });

  it('Redis refusing the write → 503 "relay could not be recorded", the meter is credited back, nothing published', async () => {
    const h = await w.session('anvil');
    const stream = w.keys.relayStream(SUPPLIER.address);
    await w.redis.set(stream, 'not a stream');
    expect(await send(w, h)).toEqual({ status: 503, body: '{"error":"relay could not be recorded"}' });
    expect(await w.metric('ha_relayer_relays_rejected_total', { reason: 'relay_not_recorded' })).toBe(1);
    expect(
      await w.metric('ha_relayer_relays_dropped_total', { service_id: 'anvil', reason: 'write_refused' }),
    ).toBe(1);
    await w.redis.del(stream);
    // Both budgeted relays are still available: the refused one gave its cost back.
    expect((await send(w, h)).status).toBe(200);
    expect((await send(w, h)).status).toBe(200);
    expect((await send(w, h)).status).toBe(429);
    expect(await w.streamEntries()).toHaveLength(2);
  });

  it('acknowledge: served answers first and counts the write Redis refused as a dropped relay', async () => {
    const h = await served.session('anvil');
    const stream = served.keys.relayStream(SUPPLIER.address);
    await served.redis.set(stream, 'not a stream');
    expect((await send(served, h)).status).toBe(200);
    await served.relayer.publisher.flush();
    await new Promise((r) => setTimeout(r, 50));
    expect(await served.redis.get(stream)).toBe('not a stream');
    expect(await served.metric('ha_transport_redis_publish_dropped_total', { reason: 'command_error' })).toBe(
      1,
    );
    await served.redis.del(stream);
  });
});
