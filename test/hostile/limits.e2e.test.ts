/**
 * Size and time limits against hostile clients, on every listener of one relayer:
 *
 * - Oversized requests are refused from their declared size, without receiving them: HTTP 413
 *   (`default_max_body_size_bytes`), WebSocket frames over the read limit (uWS drops the
 *   connection: 1006; the compat listener closes 1009), gRPC messages over `grpc.max_message_bytes`
 *   (RESOURCE_EXHAUSTED, trailers-only).
 * - Slowloris clients are dropped within a bound while valid relays keep being served:
 *   relay port (uWS): its HTTP idle timeout (10 s, built into uWebSockets.js; a trickle of one byte
 *   per second does not reset it), for slow headers and slow bodies alike;
 *   WebSocket compat listener: `websocket.handshake_timeout_seconds` for the upgrade request;
 *   gRPC listener: `grpc.header_timeout_seconds` for HTTP/1.1 headers, `grpc.read_timeout_seconds`
 *   for a call's request message (HTTP/2 streams end with DEADLINE_EXCEEDED).
 */
import http2 from 'node:http2';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { GrpcStatus, decodeGrpcMessage } from '../../core/index.js';
import type { SessionHeader } from '../../protocol/index.js';
import { startRelayerStack, type RelayerStack } from '../e2e/relayer-fixtures.js';
import { recordReliability } from '../helpers/reliability.js';

const MAX_BODY_BYTES = 64 * 1024;
const MAX_GRPC_MESSAGE_BYTES = 64 * 1024;
const WS_HANDSHAKE_TIMEOUT_S = 3;
const GRPC_HEADER_TIMEOUT_S = 3;
const GRPC_READ_TIMEOUT_S = 5;
/** uWebSockets.js closes an HTTP connection that has not completed a request for 10 s. */
const UWS_IDLE_S = 10;
const SEND_RELAY = '/pocket.service.RelayService/SendRelay';
const RPC = '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}';

let s: RelayerStack;
let header: SessionHeader;

beforeAll(async () => {
  s = await startRelayerStack({
    configure: (cfg) => {
      cfg.default_max_body_size_bytes = MAX_BODY_BYTES;
      cfg.grpc = {
        ...cfg.grpc,
        max_message_bytes: MAX_GRPC_MESSAGE_BYTES,
        header_timeout_seconds: GRPC_HEADER_TIMEOUT_S,
        read_timeout_seconds: GRPC_READ_TIMEOUT_S,
      };
      cfg.websocket = { ...cfg.websocket, handshake_timeout_seconds: WS_HANDSHAKE_TIMEOUT_S };
    },
  });
  header = await s.session('anvil');
}, 30_000);
afterAll(async () => {
  await s?.close();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One valid relay over HTTP: verified 200 and its latency. */
async function validRelay(): Promise<{ ok: boolean; ms: number }> {
  const { bytes } = s.signRequest(header, s.httpPayload({ body: RPC }));
  const t0 = performance.now();
  const res = await fetch(`${s.url}/`, { method: 'POST', body: bytes, headers: { 'Rpc-Type': '3' } });
  const answer = new Uint8Array(await res.arrayBuffer());
  const ms = performance.now() - t0;
  return { ok: res.status === 200 && s.verifyHttp(answer, header).ok, ms };
}

function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/* ---------- oversized ---------- */

/** Raw HTTP/1.1 bytes; reads what comes back until the server closes. */
function rawHttp(port: number): { socket: Socket; reply: Promise<{ text: string; closedAtMs: number }> } {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const t0 = Date.now();
  let text = '';
  const reply = new Promise<{ text: string; closedAtMs: number }>((resolve) => {
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('close', () => resolve({ text, closedAtMs: Date.now() - t0 }));
  });
  return { socket, reply };
}

describe('oversized requests are refused from their declared size', () => {
  /** Declares `declared` bytes and pushes 16 KiB chunks until the server answers or closes. */
  async function oversizedPost(declared: number): Promise<{ text: string; sent: number }> {
    const { socket, reply } = rawHttp(s.relayer.relayPort);
    let answered = false;
    void reply.then(() => (answered = true));
    socket.write(`POST / HTTP/1.1\r\nHost: relayer\r\nRpc-Type: 3\r\nContent-Length: ${declared}\r\n\r\n`);
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    let sent = 0;
    while (!answered && sent < 4 * MAX_BODY_BYTES && !socket.destroyed) {
      await new Promise<void>((res) => socket.write(chunk, () => res()));
      sent += chunk.length;
      await sleep(5);
    }
    socket.end();
    return { text: (await reply).text, sent };
  }

  it('HTTP: a 100 MB body gets 413 and a closed connection once the limit is passed', async () => {
    const r = await oversizedPost(100_000_000);
    const statusLine = r.text.split('\r\n', 1)[0];
    const body = r.text.slice(r.text.indexOf('\r\n\r\n') + 4);
    expect({ statusLine, body: JSON.parse(body) as unknown }).toEqual({
      statusLine: 'HTTP/1.1 413 Payload Too Large',
      body: { error: 'request body too large' },
    });
    // What the client pushed before the refusal: the limit and a little more, not 100 MB.
    expect(r.sent).toBeLessThanOrEqual(4 * MAX_BODY_BYTES);
    expect((await validRelay()).ok).toBe(true);
  }, 30_000);

  it('HTTP: an absurd Content-Length (1 TiB) is dropped by the parser without an answer', async () => {
    const r = await oversizedPost(2 ** 40);
    expect(r.text).toBe('');
    expect(r.sent).toBeLessThanOrEqual(4 * MAX_BODY_BYTES);
    expect((await validRelay()).ok).toBe(true);
  }, 30_000);

  it.each([
    ['relay port', false],
    ['compat listener', true],
  ])('WebSocket %s: a frame declaring 1 TiB ends the connection before any payload', async (_n, compat) => {
    const url = compat ? `ws://127.0.0.1:${s.relayer.websocketPort}/anvil` : `${s.wsUrl}/anvil`;
    const ws = new WebSocket(url);
    await new Promise((res, rej) => {
      ws.once('open', res);
      ws.once('error', rej);
    });
    const closed = new Promise<number>((res) => ws.once('close', (code) => res(code)));
    ws.on('error', () => undefined);
    // Masked binary frame header, 64-bit length 2^40, then nothing.
    const head = Buffer.alloc(14);
    head[0] = 0x82;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(1n << 40n, 2);
    head.set([1, 2, 3, 4], 10);
    (ws as unknown as { _socket: Socket })._socket.write(head);
    // uWS drops the connection without a close frame; ws (compat) answers 1009.
    expect(await closed).toBe(compat ? 1009 : 1006);
    expect((await validRelay()).ok).toBe(true);
  });

  it('gRPC: a message declaring 2 GiB → RESOURCE_EXHAUSTED, trailers-only, before the body is sent', async () => {
    const declared = 0x7fffffff;
    const client = http2.connect(`http://127.0.0.1:${s.grpcPort}`);
    client.on('error', () => undefined);
    try {
      const answer = await new Promise<{ trailersOnly: boolean; status: string; message: string }>(
        (resolve, reject) => {
          const req = client.request({
            ':method': 'POST',
            ':path': SEND_RELAY,
            'content-type': 'application/grpc',
          });
          let result = { trailersOnly: false, status: '', message: '' };
          req.on('response', (h, flags) => {
            result = {
              trailersOnly: (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0,
              status: String(h['grpc-status']),
              message: decodeGrpcMessage(String(h['grpc-message'] ?? '')),
            };
          });
          req.on('error', reject);
          req.on('close', () => resolve(result));
          const head = Buffer.alloc(5 + 1024);
          head.writeUInt32BE(declared, 1);
          req.write(head);
        },
      );
      expect(answer).toEqual({
        trailersOnly: true,
        status: String(GrpcStatus.RESOURCE_EXHAUSTED),
        message: `request message of ${declared} bytes exceeds the limit of ${MAX_GRPC_MESSAGE_BYTES} bytes`,
      });
    } finally {
      client.close();
    }
  });
});

/* ---------- slowloris ---------- */

interface SlowClient {
  kind: string;
  /** Milliseconds from the start of the attack to the server closing the connection. */
  closed: Promise<number>;
  stop(): void;
}

/** Sends `bytes` one byte per second (after `burst` bytes at once); resolves when the server closes. */
function trickle(port: number, bytes: Buffer, burst: number, kind: string, t0: number): SlowClient {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let i = burst;
  socket.once('connect', () => socket.write(bytes.subarray(0, burst)));
  const timer = setInterval(() => {
    if (i < bytes.length && !socket.destroyed) socket.write(bytes.subarray(i, i + 1));
    i++;
  }, 1_000);
  const closed = new Promise<number>((resolve) =>
    socket.once('close', () => {
      clearInterval(timer);
      resolve(Date.now() - t0);
    }),
  );
  return {
    kind,
    closed,
    stop: () => {
      clearInterval(timer);
      socket.destroy();
    },
  };
}

/** An HTTP/2 SendRelay call whose request message (100 bytes declared) trickles one byte per second. */
function trickleH2(t0: number): SlowClient & { status: Promise<{ code: string; message: string }> } {
  const client = http2.connect(`http://127.0.0.1:${s.grpcPort}`);
  client.on('error', () => undefined);
  const req = client.request({ ':method': 'POST', ':path': SEND_RELAY, 'content-type': 'application/grpc' });
  req.on('error', () => undefined);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(100, 1);
  req.write(head);
  const timer = setInterval(() => {
    if (!req.closed) req.write(Buffer.from([0x0a]));
  }, 1_000);
  const status = new Promise<{ code: string; message: string }>((resolve) =>
    req.on('response', (h) =>
      resolve({
        code: String(h['grpc-status']),
        message: decodeGrpcMessage(String(h['grpc-message'] ?? '')),
      }),
    ),
  );
  const closed = new Promise<number>((resolve) =>
    req.once('close', () => {
      clearInterval(timer);
      client.close();
      resolve(Date.now() - t0);
    }),
  );
  return {
    kind: 'gRPC HTTP/2 slow message',
    closed,
    status,
    stop: () => {
      clearInterval(timer);
      client.destroy();
    },
  };
}

describe('slowloris', () => {
  it('slow sockets on every listener are closed within their bound while valid relays keep their latency', async () => {
    const baseline: number[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await validRelay();
      expect(r.ok).toBe(true);
      baseline.push(r.ms);
    }

    const relayHead = Buffer.from(
      `POST / HTTP/1.1\r\nHost: relayer\r\nRpc-Type: 3\r\nContent-Type: application/octet-stream\r\nContent-Length: 4096\r\n\r\n`,
    );
    const withBody = Buffer.concat([relayHead, Buffer.alloc(4096, 0x0a)]);
    const wsUpgrade = Buffer.from(
      'GET /anvil HTTP/1.1\r\nHost: relayer\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nTarget-Service-Id: anvil\r\n\r\n',
    );
    const grpcWebHead = Buffer.from(
      `POST ${SEND_RELAY} HTTP/1.1\r\nHost: relayer\r\nContent-Type: application/grpc-web+proto\r\nContent-Length: 105\r\n\r\n`,
    );
    // A gateway connection upgraded before the attack must outlive every handshake timeout.
    const gateway = new WebSocket(`ws://127.0.0.1:${s.relayer.websocketPort}/anvil`, {
      skipUTF8Validation: true,
    });
    gateway.on('error', () => undefined);
    await new Promise((res, rej) => {
      gateway.once('open', res);
      gateway.once('error', rej);
    });
    const t0 = Date.now();
    const clients: SlowClient[] = [];
    // 200 sockets on the relay port sending one header byte per second …
    for (let i = 0; i < 200; i++)
      clients.push(trickle(s.relayer.relayPort, relayHead, 0, 'relay port: slow headers', t0));
    // … 20 that send their headers at once and then trickle the body …
    for (let i = 0; i < 20; i++)
      clients.push(trickle(s.relayer.relayPort, withBody, relayHead.length, 'relay port: slow body', t0));
    // … 20 slow WebSocket upgrades on the compat listener, 20 slow gRPC-Web headers, 20 slow
    // gRPC-Web bodies (valid frame header, then the message one byte per second), 5 slow HTTP/2 calls.
    for (let i = 0; i < 20; i++) {
      clients.push(trickle(s.relayer.websocketPort!, wsUpgrade, 0, 'compat listener: slow upgrade', t0));
      clients.push(trickle(s.grpcPort, grpcWebHead, 0, 'gRPC listener: slow HTTP/1.1 headers', t0));
      const frame = Buffer.alloc(5 + 100, 0x0a);
      frame[0] = 0;
      frame.writeUInt32BE(100, 1);
      clients.push(
        trickle(
          s.grpcPort,
          Buffer.concat([grpcWebHead, frame]),
          grpcWebHead.length + 5,
          'gRPC listener: slow gRPC-Web body',
          t0,
        ),
      );
    }
    const h2 = Array.from({ length: 5 }, () => trickleH2(t0));
    clients.push(...h2);

    try {
      // Valid relays every 100 ms while the slow clients hang on.
      const during: { ok: boolean; ms: number }[] = [];
      while (Date.now() - t0 < (UWS_IDLE_S + 2) * 1_000) {
        during.push(await validRelay());
        await sleep(100);
      }
      const answer = new Promise<Buffer>((res) => gateway.once('message', (d: Buffer) => res(d)));
      gateway.send(s.signRequest(header, Buffer.from(RPC)).bytes);
      expect(s.verify(await answer, header).ok).toBe(true);
      gateway.close();
      const closedAt = await Promise.all(
        clients.map(async (c) => ({
          kind: c.kind,
          ms: await Promise.race([c.closed, sleep(30_000).then(() => Infinity)]),
        })),
      );
      const worst: Record<string, number> = {};
      for (const c of closedAt) worst[c.kind] = Math.max(worst[c.kind] ?? 0, c.ms);
      const bounds: Record<string, number> = {
        // Bound + check granularity (uWS sweeps its timers every 4 s; Node checks every 1 s) + slack.
        'relay port: slow headers': (UWS_IDLE_S + 8) * 1_000,
        'relay port: slow body': (UWS_IDLE_S + 8) * 1_000,
        'compat listener: slow upgrade': (WS_HANDSHAKE_TIMEOUT_S + 4) * 1_000,
        'gRPC listener: slow HTTP/1.1 headers': (GRPC_HEADER_TIMEOUT_S + 4) * 1_000,
        'gRPC listener: slow gRPC-Web body': (GRPC_READ_TIMEOUT_S + 4) * 1_000,
        'gRPC HTTP/2 slow message': (GRPC_READ_TIMEOUT_S + 4) * 1_000,
      };
      const overBound = Object.entries(worst)
        .filter(([k, ms]) => ms > bounds[k]!)
        .map(([k, ms]) => `${k}: ${ms} ms`);
      expect(overBound).toEqual([]);
      expect(Object.keys(worst).sort()).toEqual(Object.keys(bounds).sort());
      for (const st of await Promise.all(h2.map((c) => c.status))) {
        expect(st).toEqual({
          code: String(GrpcStatus.DEADLINE_EXCEEDED),
          message: `request message not received within ${GRPC_READ_TIMEOUT_S * 1000} ms`,
        });
      }

      const latencies = during.map((d) => d.ms);
      const record = {
        scenario:
          '200 slow-header + 20 slow-body sockets on the relay port, 20 slow upgrades on the WebSocket compat ' +
          'listener, 20 slow-header + 20 slow-body gRPC-Web sockets and 5 slow HTTP/2 calls on the gRPC listener; ' +
          'one byte per second each, valid HTTP relays every 100 ms meanwhile',
        slow_clients: clients.length,
        valid_relays: during.length,
        valid_relays_failed: during.filter((d) => !d.ok).length,
        baseline_p50_ms: Math.round(percentile(baseline, 50)),
        baseline_p95_ms: Math.round(percentile(baseline, 95)),
        during_p50_ms: Math.round(percentile(latencies, 50)),
        during_p95_ms: Math.round(percentile(latencies, 95)),
        during_max_ms: Math.round(Math.max(...latencies)),
        closed_by_ms: worst,
        closed_bound_ms: bounds,
      };
      recordReliability('hostile', 'slowloris', record);
      expect(record.valid_relays_failed).toBe(0);
      expect(during.length).toBeGreaterThanOrEqual(20);
      // "Normal latency": the relays never wait on the slow sockets (a loaded 2-core box can add
      // tens of ms, not seconds).
      expect(record.during_p95_ms).toBeLessThan(Math.max(10 * record.baseline_p95_ms, 1_000));
    } finally {
      for (const c of clients) c.stop();
    }
  }, 60_000);
});
