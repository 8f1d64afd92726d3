/**
 * Hostile relays refused on every transport: a ring signature by a key outside the app's ring
 * (non-member), a relay ring-signed for one application whose header names another (wrong app),
 * a session whose grace period is over (expired), and a relay addressed to a supplier this
 * relayer holds no key for (other supplier). relayer-http.e2e.test.ts already covers the HTTP
 * answers for three of them; here each case goes over HTTP, the WebSocket relay port, the
 * WebSocket compatibility listener, native gRPC and gRPC-Web, and each must leave the supplier
 * stream, the relay meter and the backends untouched.
 *
 * Stack: startRelayerStack (eager), chain advanced to 6. Active session [5, 8]; session [1, 4]
 * with 1 grace block was last accepted at 5, so at 6 it is expired.
 */
import http2 from 'node:http2';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, type RawData } from 'ws';
import {
  GrpcFrameDecoder,
  GrpcStatus,
  decodeGrpcMessage,
  encodeGrpcFrame,
  parseGrpcWebTrailers,
} from '../../core/index.js';
import { GRPC_METHODS } from '../../localnet/backends/index.js';
import { encodePoktHttpRequest, type SessionHeader } from '../../protocol/index.js';
import { GATEWAY, SUPPLIER, testKey } from '../e2e/localnet-fixtures.js';
import { startRelayerStack, type RelayerStack } from '../e2e/relayer-fixtures.js';

const OUTSIDER = testKey('hostile-outsider');
/** An address with no application staked: what a header claiming "app B" resolves to here. */
const OTHER_APP = testKey('application-2');
const RPC = '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}';
const SEND_RELAY = '/pocket.service.RelayService/SendRelay';

let s: RelayerStack;
let active: SessionHeader;
let expired: SessionHeader;

beforeAll(async () => {
  s = await startRelayerStack();
  expired = await s.session('anvil', 2);
  await s.advance(1);
  active = await s.session('anvil');
}, 30_000);
afterAll(async () => {
  await s?.close();
});

type Case = 'non-member' | 'wrong app' | 'expired' | 'other supplier';
const CASES: Case[] = ['non-member', 'wrong app', 'expired', 'other supplier'];

/** The relay of a case, signed over `payload`. */
function hostile(c: Case, payload: Uint8Array): Uint8Array {
  switch (c) {
    case 'non-member':
      return s.signRequest(active, payload, { ringMember: OUTSIDER }).bytes;
    case 'wrong app':
      // Ring-signed with the keys of the real app's ring, header naming another application.
      return s.signRequest({ ...active, applicationAddress: OTHER_APP.address }, payload).bytes;
    case 'expired':
      return s.signRequest(expired, payload).bytes;
    case 'other supplier':
      return s.signRequest(active, payload, { supplier: GATEWAY.address }).bytes;
  }
}

/** The refusal every transport gives (HTTP status, gRPC code, message; WebSocket: 4001 + message). */
function expected(c: Case): { http: number; grpc: number; message: string } {
  switch (c) {
    case 'non-member':
      return {
        http: 403,
        grpc: GrpcStatus.PERMISSION_DENIED,
        message: 'ring signature invalid: ring member 1 is not in the expected ring',
      };
    case 'wrong app':
      return {
        http: 403,
        grpc: GrpcStatus.PERMISSION_DENIED,
        message: `application ${OTHER_APP.address} not found`,
      };
    case 'expired':
      return {
        http: 403,
        grpc: GrpcStatus.PERMISSION_DENIED,
        message: 'session expired: ended at 4, grace 1 blocks, current height 6 (grace period elapsed)',
      };
    case 'other supplier':
      return {
        http: 403,
        grpc: GrpcStatus.FAILED_PRECONDITION,
        message: `supplier ${GATEWAY.address} is not served by this relayer`,
      };
  }
}

/* ---------- what must not change ---------- */

interface Observed {
  streams: Record<string, number>;
  meter: Record<string, string | null>;
  backendWsFrames: number;
}

async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out.sort();
}

/** Stream lengths of every supplier, every meter key's value, frames the WS backend received. */
async function observe(): Promise<Observed> {
  await s.relayer.publisher.flush();
  const streams: Record<string, number> = {};
  for (const addr of [SUPPLIER.address, GATEWAY.address]) {
    streams[addr] = await s.redis.xlen(s.keys.relayStream(addr));
  }
  const meter: Record<string, string | null> = {};
  const meterPattern = s.keys.meterActiveSessions().replace(/active_sessions$/, '*');
  for (const k of await scanKeys(s.redis, meterPattern)) {
    meter[k] =
      (await s.redis.type(k)) === 'string' ? await s.redis.get(k) : (await s.redis.smembers(k)).join();
  }
  return { streams, meter, backendWsFrames: s.backends.websocket.messageCount };
}

async function expectUntouched(before: Observed): Promise<void> {
  // Long enough for a wrongly admitted relay to reach the stream or the meter.
  await new Promise((r) => setTimeout(r, 100));
  expect(await observe()).toEqual(before);
}

/* ---------- transports ---------- */

async function viaHttp(
  body: Uint8Array,
): Promise<{ status: number; contentType: string | null; body: unknown }> {
  const res = await fetch(`${s.url}/`, { method: 'POST', body, headers: { 'Rpc-Type': '3' } });
  return { status: res.status, contentType: res.headers.get('content-type'), body: await res.json() };
}

/** Opens a gateway connection for service anvil, sends one frame, resolves with the close. */
function viaWebSocket(
  url: string,
  frame: Uint8Array,
  binary: boolean,
): Promise<{ code: number; reason: string; frames: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}/anvil`, { skipUTF8Validation: true });
    let frames = 0;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('the relayer did not close the connection'));
    }, 5_000);
    ws.on('message', (_d: RawData) => frames++);
    ws.once('open', () => ws.send(frame, { binary }));
    ws.once('error', reject);
    ws.once('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString(), frames });
    });
  });
}

function grpcPayload(): Uint8Array {
  return encodePoktHttpRequest({
    method: 'POST',
    url: GRPC_METHODS.getBlockHeight,
    headers: [['content-type', ['application/grpc']]],
    body: encodeGrpcFrame(new Uint8Array()),
  });
}

async function viaNativeGrpc(
  relay: Uint8Array,
): Promise<{ trailersOnly: boolean; code: number; message: string; body: number }> {
  const client = http2.connect(`http://127.0.0.1:${s.grpcPort}`);
  client.on('error', () => undefined);
  try {
    return await new Promise((resolve, reject) => {
      const req = client.request({
        ':method': 'POST',
        ':path': SEND_RELAY,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      let head: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      let trailersOnly = false;
      let body = 0;
      req.on('response', (h, flags) => {
        head = h;
        trailersOnly = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      });
      req.on('trailers', (t) => (trailers = t));
      req.on('data', (c: Buffer) => (body += c.length));
      req.on('error', reject);
      req.on('close', () => {
        const src = trailersOnly ? head : trailers;
        resolve({
          trailersOnly,
          code: Number(src['grpc-status']),
          message: decodeGrpcMessage(String(src['grpc-message'] ?? '')),
          body,
        });
      });
      req.end(encodeGrpcFrame(relay));
    });
  } finally {
    client.close();
  }
}

async function viaGrpcWeb(relay: Uint8Array): Promise<{ flags: number[]; code: number; message: string }> {
  const res = await fetch(`http://127.0.0.1:${s.grpcPort}${SEND_RELAY}`, {
    method: 'POST',
    headers: { 'content-type': 'application/grpc-web+proto', 'x-grpc-web': '1' },
    body: encodeGrpcFrame(relay),
  });
  const decoded = new GrpcFrameDecoder(1 << 20).push(Buffer.from(await res.arrayBuffer()));
  if (!decoded.ok) throw new Error('gRPC-Web answer is not framed');
  const trailer = decoded.frames.find((f) => (f.flags & 0x80) !== 0);
  const kv = trailer === undefined ? {} : parseGrpcWebTrailers(trailer.message);
  return {
    flags: decoded.frames.map((f) => f.flags),
    code: Number(kv['grpc-status']),
    message: decodeGrpcMessage(kv['grpc-message'] ?? ''),
  };
}

describe.each(CASES)('%s', (c) => {
  it('HTTP: refused with the specified status and JSON error; nothing published or metered', async () => {
    const before = await observe();
    const res = await viaHttp(hostile(c, s.httpPayload({ body: RPC })));
    const want = expected(c);
    expect({ status: res.status, contentType: res.contentType }).toEqual({
      status: want.http,
      contentType: 'application/json',
    });
    expect(res.body).toEqual({ error: want.message });
    await expectUntouched(before);
  });

  it.each([
    ['relay port (binary frame)', false],
    ['compat listener (text frame)', true],
  ])(
    'WebSocket %s: closed 4001 with the refusal, nothing forwarded, published or metered',
    async (_n, compat) => {
      const before = await observe();
      const url = compat ? `ws://127.0.0.1:${s.relayer.websocketPort}` : s.wsUrl;
      const closed = await viaWebSocket(url, hostile(c, s.httpPayload({ body: RPC })), !compat);
      const want = expected(c);
      expect(closed).toEqual({ code: 4001, reason: want.message, frames: 0 });
      await expectUntouched(before);
    },
  );

  it('native gRPC: trailers-only refusal with the specified code; nothing published or metered', async () => {
    const before = await observe();
    const a = await viaNativeGrpc(hostile(c, grpcPayload()));
    const want = expected(c);
    expect(a).toEqual({ trailersOnly: true, code: want.grpc, message: want.message, body: 0 });
    await expectUntouched(before);
  });

  it('gRPC-Web: a lone trailer frame with the specified code; nothing published or metered', async () => {
    const before = await observe();
    const a = await viaGrpcWeb(hostile(c, grpcPayload()));
    const want = expected(c);
    expect(a).toEqual({ flags: [0x80], code: want.grpc, message: want.message });
    await expectUntouched(before);
  });
});

describe('after the hostile relays', () => {
  it('a valid relay is still served, published once and metered once', async () => {
    const before = await observe();
    const res = await fetch(`${s.url}/`, {
      method: 'POST',
      body: s.signRequest(active, s.httpPayload({ body: RPC })).bytes,
      headers: { 'Rpc-Type': '3' },
    });
    const answer = new Uint8Array(await res.arrayBuffer());
    expect([res.status, s.verifyHttp(answer, active).ok]).toEqual([200, true]);
    const entries = await s.waitForEntries(before.streams[SUPPLIER.address]! + 1);
    expect(entries.length).toBe(before.streams[SUPPLIER.address]! + 1);
    const consumed = await s.redis.get(s.keys.meterConsumed(active.sessionId, SUPPLIER.address));
    // Cost of one relay: CUPR 2 × compute_units_to_tokens_multiplier 42 / granularity 1 = 84 uPOKT.
    expect(
      BigInt(consumed ?? '0') -
        BigInt(before.meter[s.keys.meterConsumed(active.sessionId, SUPPLIER.address)] ?? '0'),
    ).toBe(84n);
  });
});
