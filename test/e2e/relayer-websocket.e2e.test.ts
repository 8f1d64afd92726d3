/**
 * The WebSocket bridge end to end: a gateway client (the `ws` package, handshake headers as PATH
 * sends them, ring-signed RelayRequests) against the running relayer, the demo WebSocket backend,
 * the localnet chain and real Redis. Every answer is verified as PATH verifies it and every billed
 * frame is looked up in the supplier's relay stream.
 *
 * Both listeners run the same suites: the relay port (uWebSockets.js; requests in binary frames)
 * and the compatibility listener (websocket.listen_addr; requests in text frames, as PATH sends
 * them for JSON-RPC users, which are not UTF-8).
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { connect as connectTcp, type Socket } from 'node:net';
import { Registry } from 'prom-client';
import uWS from 'uWebSockets.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, type RawData } from 'ws';
import { newHeadFor } from '../../localnet/backends/index.js';
import {
  decodePoktHttpResponse,
  minedRelayBytes,
  type RelayRequest,
  type RelayResponse,
  type SessionHeader,
} from '../../protocol/index.js';
import type { RelayCore } from '../../relayer/relay-core.js';
import {
  attachWebSocketBridge,
  type WebSocketBridge,
  type WebSocketBridgeOptions,
} from '../../relayer/websocket-bridge.js';
import { startWebSocketListener } from '../../relayer/websocket-listener.js';
import type { MinedRelayMessage } from '../../transport/index.js';
import { APP, SUPPLIER, testKey } from './localnet-fixtures.js';
import { startRelayerStack, type RelayerStack } from './relayer-fixtures.js';

const OUTSIDER = testKey('ws-outsider');
const READ_LIMIT = 15 * 1024 * 1024;

interface Frame {
  data: Buffer;
  isBinary: boolean;
}

interface Closed {
  code: number;
  reason: string;
}

/**
 * A gateway connection that records frames and the close. `textFrames`: send RelayRequests in text
 * frames, as PATH does for a user who sent text (JSON-RPC); otherwise in binary frames.
 */
class GatewayClient {
  private readonly frames: Frame[] = [];
  private waiting: ((f: Frame) => void) | undefined;
  readonly closed: Promise<Closed>;

  private constructor(
    readonly ws: WebSocket,
    private readonly textFrames: boolean,
  ) {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const f = { data: toBuffer(data), isBinary };
      const w = this.waiting;
      this.waiting = undefined;
      if (w !== undefined) w(f);
      else this.frames.push(f);
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
  }

  static connect(
    url: string,
    headers: Record<string, string>,
    o: { textFrames?: boolean } = {},
  ): Promise<GatewayClient> {
    // Signed responses keep the backend's frame type, so text frames carry protobuf bytes.
    const ws = new WebSocket(url, { headers, skipUTF8Validation: true, maxPayload: 64 * 1024 * 1024 });
    const client = new GatewayClient(ws, o.textFrames ?? false);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
    });
  }

  send(bytes: Uint8Array, binary = !this.textFrames): void {
    this.ws.send(bytes, { binary });
  }

  next(timeoutMs = 5_000): Promise<Frame> {
    const f = this.frames.shift();
    if (f !== undefined) return Promise.resolve(f);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error('no frame from the relayer'));
      }, timeoutMs);
      this.waiting = (frame) => {
        clearTimeout(t);
        resolve(frame);
      };
    });
  }

  /** Frames received and not yet read. */
  get unread(): number {
    return this.frames.length;
  }

  close(): void {
    this.ws.close(1000, 'done');
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** Upgrade request that the relayer refuses: status and JSON body. */
function refusedHandshake(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({
          status: res.statusCode ?? 0,
          body: JSON.parse(Buffer.concat(chunks).toString()) as unknown,
        });
        ws.terminate();
      });
    });
    ws.on('open', () => {
      ws.terminate();
      reject(new Error('upgrade was accepted'));
    });
    ws.on('error', () => undefined);
  });
}

/** One masked binary client frame (RFC 6455 §5.2), for writing many in a single socket write. */
function wsBinaryFrame(payload: Uint8Array): Buffer {
  const mask = Buffer.from([1, 2, 3, 4]);
  const len = payload.length;
  const head =
    len < 126
      ? Buffer.from([0x82, 0x80 | len])
      : len < 65536
        ? Buffer.from([0x82, 0x80 | 126, len >> 8, len & 0xff])
        : (() => {
            const h = Buffer.alloc(10);
            h[0] = 0x82;
            h[1] = 0x80 | 127;
            h.writeBigUInt64BE(BigInt(len), 2);
            return h;
          })();
  const body = Buffer.from(payload);
  for (let k = 0; k < body.length; k++) body[k]! ^= mask[k % 4]!;
  return Buffer.concat([head, mask, body]);
}

/** A close reason as the relayer cuts it (123 bytes). */
function truncate(reason: string): string {
  return Buffer.from(reason).subarray(0, 123).toString();
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The upgrade headers PATH sends (gateway.md §4). */
function pathHeaders(
  s: RelayerStack,
  header: SessionHeader,
  supplier = SUPPLIER.address,
): Record<string, string> {
  const handshake = s.signRequest(header, new Uint8Array(0), { supplier });
  return {
    'Target-Service-Id': header.serviceId,
    'App-Address': header.applicationAddress,
    'Rpc-Type': '2',
    'Pocket-Session-Id': header.sessionId,
    'Pocket-Session-Start-Height': String(header.sessionStartBlockHeight),
    'Pocket-Session-End-Height': String(header.sessionEndBlockHeight),
    'Pocket-Supplier-Address': supplier,
    'Pocket-Signature': Buffer.from(handshake.request.meta!.signature).toString('base64'),
  };
}

function jsonRpc(id: number, method: string, params: unknown[] = []): Buffer {
  return Buffer.from(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
}

/** Verifies a frame as PATH does and returns the signed response. */
function verified(s: RelayerStack, frame: Frame, header: SessionHeader): RelayResponse {
  const v = s.verify(frame.data, header);
  if (!v.ok) throw new Error(`relay response does not verify: ${v.code} ${v.reason}`);
  return v.response;
}

/** The stream entry a (request, signed response) pair must have produced, field by field. */
function expectedEntry(request: RelayRequest, response: RelayResponse, header: SessionHeader): EntryFields {
  const bytes = Buffer.from(minedRelayBytes(request, response));
  return {
    relay_hash: createHash('sha256').update(bytes).digest(),
    relay_bytes: bytes,
    session_id: header.sessionId,
    session_end_height: Number(header.sessionEndBlockHeight),
    supplier_operator_address: SUPPLIER.address,
    service_id: header.serviceId,
    application_address: APP.address,
    session_start_height: Number(header.sessionStartBlockHeight),
  };
}

type EntryFields = Pick<
  MinedRelayMessage,
  | 'relay_hash'
  | 'relay_bytes'
  | 'session_id'
  | 'session_end_height'
  | 'supplier_operator_address'
  | 'service_id'
  | 'application_address'
  | 'session_start_height'
>;

function entryFields(e: MinedRelayMessage): EntryFields {
  return {
    relay_hash: Buffer.from(e.relay_hash),
    relay_bytes: Buffer.from(e.relay_bytes),
    session_id: e.session_id,
    session_end_height: e.session_end_height,
    supplier_operator_address: e.supplier_operator_address,
    service_id: e.service_id,
    application_address: e.application_address,
    session_start_height: e.session_start_height,
  };
}

type ListenerKind = 'relay port' | 'compat listener';
const LISTENERS: ListenerKind[] = ['relay port', 'compat listener'];

/** Where a gateway connects for `kind`, and how it frames requests there. */
function target(s: RelayerStack, kind: ListenerKind): { url: string; textFrames: boolean } {
  if (kind === 'relay port') return { url: s.wsUrl, textFrames: false };
  return { url: `ws://127.0.0.1:${s.relayer.websocketPort}`, textFrames: true };
}

/** A PATH-like gateway connection to `kind`. */
function connect(
  s: RelayerStack,
  kind: ListenerKind,
  headers: Record<string, string>,
  path = '',
): Promise<GatewayClient> {
  const t = target(s, kind);
  return GatewayClient.connect(`${t.url}${path}`, headers, { textFrames: t.textFrames });
}

/** A second listener of `kind` on the stack's relay core, with its own bridge options. */
async function sideListener(
  core: RelayCore,
  kind: ListenerKind,
  opts: Omit<WebSocketBridgeOptions, 'registry' | 'suppliers'>,
): Promise<{ url: string; textFrames: boolean; bridge: WebSocketBridge; close(): Promise<void> }> {
  const full: WebSocketBridgeOptions = {
    ...opts,
    registry: new Registry(),
    suppliers: { owns: (a) => a === SUPPLIER.address },
  };
  if (kind === 'compat listener') {
    const l = await startWebSocketListener(core, full, { host: '127.0.0.1', port: 0 });
    return { url: `ws://127.0.0.1:${l.port}`, textFrames: true, bridge: l, close: () => l.close() };
  }
  const app = uWS.App();
  const bridge = attachWebSocketBridge(app, core, full);
  const listen = await new Promise<uWS.us_listen_socket | false>((r) => app.listen('127.0.0.1', 0, r));
  if (listen === false) throw new Error('no port for the second listener');
  return {
    url: `ws://127.0.0.1:${uWS.us_socket_local_port(listen)}`,
    textFrames: false,
    bridge,
    close: async () => {
      uWS.us_listen_socket_close(listen);
      await bridge.closeAll();
    },
  };
}

/** A fresh connection still gets a verified answer (published before this returns). */
async function expectStillServing(s: RelayerStack, kind: ListenerKind, header: SessionHeader): Promise<void> {
  const before = (await s.streamEntries()).length;
  const gw = await connect(s, kind, pathHeaders(s, header));
  gw.send(s.signRequest(header, jsonRpc(99, 'eth_blockNumber')).bytes);
  verified(s, await gw.next(), header);
  gw.close();
  await gw.closed;
  expect((await s.waitForEntries(before + 1)).length).toBe(before + 1);
}

/** Stream entries in relay-hash order (relays of one connection may be published in any order). */
function byHash(entries: EntryFields[]): EntryFields[] {
  return [...entries].sort((a, b) => Buffer.compare(a.relay_hash, b.relay_hash));
}

/** Waits until the demo backend has no connection left (the bridge closed its side). */
async function backendConnectionsGone(s: RelayerStack): Promise<number> {
  for (let i = 0; i < 100 && s.backends.websocket.connectionCount > 0; i++) await sleep(10);
  return s.backends.websocket.connectionCount;
}

describe('WebSocket bridge', () => {
  let s: RelayerStack;
  let header: SessionHeader;

  beforeAll(async () => {
    s = await startRelayerStack({
      configure: (cfg) => {
        // A second service on the same backend, and one per listener whose only websocket
        // endpoint refuses connections (nothing listens on port 9).
        cfg.services['other'] = {
          backends: { websocket: { url: cfg.services['anvil']!.backends.websocket!.url! } },
        };
        for (const name of ['deadws-relay', 'deadws-compat']) {
          cfg.services[name] = {
            backends: {
              websocket: {
                url: 'ws://127.0.0.1:9',
                health_check: { enabled: false, unhealthy_threshold: 2 },
              },
            },
          };
        }
      },
    });
    header = await s.session('anvil');
  });
  afterAll(async () => {
    await s?.close();
  });

  it('starts the compatibility listener on its own port', () => {
    expect(s.relayer.websocketPort).toBeGreaterThan(0);
    expect(s.relayer.websocketPort).not.toBe(s.relayer.relayPort);
  });

  it('answers plain HTTP on the compat listener with 426 and a malformed upgrade with 400', async () => {
    const res = await fetch(`http://127.0.0.1:${s.relayer.websocketPort}/anvil`);
    expect([res.status, res.headers.get('upgrade'), await res.json()]).toEqual([
      426,
      'websocket',
      { error: 'websocket upgrade required' },
    ]);
    // No Sec-WebSocket-Key: refused before the bridge looks at it.
    const raw = await new Promise<string>((resolve, reject) => {
      const sock = connectTcp(s.relayer.websocketPort!, '127.0.0.1', () =>
        sock.write(
          'GET /anvil HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
            'Sec-WebSocket-Version: 13\r\n\r\n',
        ),
      );
      let text = '';
      sock.on('data', (d: Buffer) => (text += d.toString()));
      sock.on('end', () => resolve(text));
      sock.on('error', reject);
    });
    expect(raw).toBe(
      'HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 45\r\n' +
        'Connection: close\r\n\r\n{"error":"invalid websocket upgrade request"}',
    );
  });

  describe('PATH text frames (protobuf bytes, not UTF-8)', () => {
    it('are served on the compat listener: verified signed answer, published exactly once', async () => {
      const before = (await s.streamEntries()).length;
      const gw = await connect(s, 'compat listener', pathHeaders(s, header));
      const req = s.signRequest(header, jsonRpc(1, 'eth_blockNumber'));
      expect(isUtf8(req.bytes)).toBe(false);
      gw.ws.send(req.bytes, { binary: false });
      const frame = await gw.next();
      expect(frame.isBinary).toBe(false);
      const res = verified(s, frame, header);
      expect(res.payload.toString()).toBe('{"jsonrpc":"2.0","id":1,"result":"0x1000"}');
      await s.waitForEntries(before + 1);
      await sleep(200);
      const after = await s.streamEntries();
      expect(after.slice(before).map(entryFields)).toEqual([expectedEntry(req.request, res, header)]);
      gw.close();
      expect(await gw.closed).toEqual({ code: 1000, reason: 'done' });
    });

    it('make uWebSockets.js drop the connection (1006) on the relay port before the bridge sees them', async () => {
      const before = (await s.streamEntries()).length;
      const backendFrames = s.backends.websocket.messageCount;
      const gw = await connect(s, 'relay port', pathHeaders(s, header));
      gw.ws.send(s.signRequest(header, jsonRpc(1, 'eth_blockNumber')).bytes, { binary: false });
      expect(await gw.closed).toEqual({ code: 1006, reason: '' });
      expect(gw.unread).toBe(0);
      await sleep(200);
      expect(s.backends.websocket.messageCount).toBe(backendFrames);
      expect((await s.streamEntries()).length).toBe(before);
      await expectStillServing(s, 'relay port', header);
    });
  });

  describe.each(LISTENERS)('on the %s', (kind) => {
    it('answers a relay with a RelayResponse the supplier signed and publishes it exactly once', async () => {
      const before = (await s.streamEntries()).length;
      const gw = await connect(s, kind, pathHeaders(s, header));
      const req = s.signRequest(header, jsonRpc(1, 'echo', [kind]));
      gw.send(req.bytes);
      const frame = await gw.next();
      expect(frame.isBinary).toBe(false);
      const res = verified(s, frame, header);
      expect(res.payload.toString()).toBe(`{"jsonrpc":"2.0","id":1,"result":["${kind}"]}`);
      expect(res.relayMinerError).toBeUndefined();

      const entries = await s.waitForEntries(before + 1);
      await sleep(200);
      const after = await s.streamEntries();
      expect(after.length).toBe(before + 1);
      expect(entries.length).toBe(before + 1);
      expect(entryFields(after[before]!)).toEqual(expectedEntry(req.request, res, header));
      expect(after[before]!.arrival_block_height).toBe(s.chain.net.chain.height);
      gw.close();
      expect(await gw.closed).toEqual({ code: 1000, reason: 'done' });
      // The gateway's close reaches the backend connection too.
      expect(await backendConnectionsGone(s)).toBe(0);
    });

    it('signs and bills every subscription push against the subscribing request', async () => {
      const before = (await s.streamEntries()).length;
      const gw = await connect(s, kind, pathHeaders(s, header));
      const sub = s.signRequest(header, jsonRpc(7, 'eth_subscribe', ['newHeads']));
      gw.send(sub.bytes);
      const reply = verified(s, await gw.next(), header);
      const subscription = (JSON.parse(reply.payload.toString()) as { result: string }).result;
      expect(subscription).toMatch(/^0x[0-9a-f]+$/);

      const pushes: RelayResponse[] = [];
      const heads = [];
      for (let i = 0; i < 3; i++) {
        heads.push(s.backends.websocket.pushNewHead());
        const f = await gw.next();
        expect(f.isBinary).toBe(false);
        pushes.push(verified(s, f, header));
      }
      expect(pushes.map((p) => JSON.parse(p.payload.toString()) as unknown)).toEqual(
        heads.map((h) => ({
          jsonrpc: '2.0',
          method: 'eth_subscription',
          params: { subscription, result: h },
        })),
      );
      const first = Number.parseInt(heads[0]!.number, 16);
      expect(heads.map((h) => h.number)).toEqual(heads.map((_, i) => newHeadFor(first + i).number));

      const entries = await s.waitForEntries(before + 4);
      await sleep(200);
      expect((await s.streamEntries()).length).toBe(before + 4);
      expect(byHash(entries.slice(before).map(entryFields))).toEqual(
        byHash([reply, ...pushes].map((r) => expectedEntry(sub.request, r, header))),
      );
      gw.close();
      await gw.closed;
    });

    it('sends the backend binary frames back as binary frames, still signed and billed', async () => {
      const before = (await s.streamEntries()).length;
      const gw = await connect(s, kind, pathHeaders(s, header));
      const payload = Buffer.from([0x00, 0xff, 0x10, 0x80]);
      const req = s.signRequest(header, payload);
      // A payload that is not UTF-8 reaches the backend in a binary frame whatever the gateway used.
      gw.send(req.bytes);
      const frame = await gw.next();
      expect(frame.isBinary).toBe(true);
      const res = verified(s, frame, header);
      expect(Buffer.from(res.payload)).toEqual(payload);
      const entries = await s.waitForEntries(before + 1);
      expect(entries.slice(before).map(entryFields)).toEqual([expectedEntry(req.request, res, header)]);
      gw.close();
      await gw.closed;
    });

    it('closes 4001 on an invalid ring signature and forwards and publishes nothing', async () => {
      const before = (await s.streamEntries()).length;
      const backendFrames = s.backends.websocket.messageCount;
      const rejected = await s.metric('ha_relayer_relays_rejected_total', {
        service_id: 'anvil',
        reason: 'validation_failed',
      });
      const gw = await connect(s, kind, pathHeaders(s, header));
      gw.send(s.signRequest(header, jsonRpc(2, 'eth_blockNumber'), { ringMember: OUTSIDER }).bytes);
      const closed = await gw.closed;
      expect(closed.code).toBe(4001);
      expect(closed.reason).not.toBe('');
      expect(gw.unread).toBe(0);
      await sleep(200);
      expect((await s.streamEntries()).length).toBe(before);
      expect(s.backends.websocket.messageCount).toBe(backendFrames);
      expect(
        await s.metric('ha_relayer_relays_rejected_total', {
          service_id: 'anvil',
          reason: 'validation_failed',
        }),
      ).toBe(rejected + 1);
    });

    it('closes 4001 on a frame that is not a RelayRequest, forwards nothing and keeps serving', async () => {
      const backendFrames = s.backends.websocket.messageCount;
      for (const bad of [
        Buffer.from('{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}'),
        Buffer.from([0xff, 0xff, 0xff]),
        Buffer.alloc(0),
      ]) {
        const gw = await connect(s, kind, pathHeaders(s, header));
        gw.send(bad);
        expect(await gw.closed).toEqual({
          code: 4001,
          reason: 'invalid relay request: body must be a valid RelayRequest protobuf',
        });
      }
      expect(s.backends.websocket.messageCount).toBe(backendFrames);
      await expectStillServing(s, kind, header);
    });

    it('closes 4001 when a relay names another service or supplier than the connection', async () => {
      const backendFrames = s.backends.websocket.messageCount;
      const gw = await connect(s, kind, { ...pathHeaders(s, header), 'Target-Service-Id': 'other' });
      gw.send(s.signRequest(header, jsonRpc(3, 'eth_blockNumber')).bytes);
      expect(await gw.closed).toEqual({
        code: 4001,
        reason: 'relay service "anvil" is not the connection\'s service "other"',
      });
      const gw2 = await connect(s, kind, pathHeaders(s, header));
      gw2.send(s.signRequest(header, jsonRpc(3, 'eth_blockNumber'), { supplier: OUTSIDER.address }).bytes);
      expect(await gw2.closed).toEqual({
        code: 4001,
        reason: truncate(
          `relay supplier ${OUTSIDER.address} is not the connection's supplier ${SUPPLIER.address}`,
        ),
      });
      expect(s.backends.websocket.messageCount).toBe(backendFrames);
    });

    it('closes 1009 on a frame over 15 MiB and keeps serving', async () => {
      const backendFrames = s.backends.websocket.messageCount;
      const gw = await connect(s, kind, pathHeaders(s, header));
      gw.send(Buffer.alloc(READ_LIMIT + 1, 1));
      expect(await gw.closed).toEqual({ code: 1009, reason: 'message too big' });
      expect(s.backends.websocket.messageCount).toBe(backendFrames);
      await expectStillServing(s, kind, header);
    });

    it('ends the connection on a frame over twice the limit without buffering it, and keeps serving', async () => {
      const gw = await connect(s, kind, pathHeaders(s, header));
      gw.send(Buffer.alloc(2 * READ_LIMIT + 1, 1));
      // uWS drops the connection; ws answers with a close frame of its own.
      expect(await gw.closed).toEqual(
        kind === 'relay port' ? { code: 1006, reason: '' } : { code: 1009, reason: '' },
      );
      await expectStillServing(s, kind, header);
    });

    it('closes 1013 when the gateway keeps more than 100 frames unprocessed', async () => {
      const gw = await connect(s, kind, pathHeaders(s, header));
      const frame = s.signRequest(header, jsonRpc(5, 'eth_blockNumber')).bytes;
      const burst = Buffer.concat(Array.from({ length: 150 }, () => wsBinaryFrame(frame)));
      // One write, so the relayer reads the whole burst before it can process any of it.
      (gw.ws as unknown as { _socket: Socket })._socket.write(burst);
      expect(await gw.closed).toEqual({ code: 1013, reason: 'too many unprocessed messages' });
      await expectStillServing(s, kind, header);
    });

    it('refuses handshakes before upgrading: 400 without a service, 404 unknown service, 403 foreign supplier', async () => {
      const { url } = target(s, kind);
      expect(await refusedHandshake(`${url}/`, {})).toEqual({
        status: 400,
        body: { error: 'missing service ID' },
      });
      expect(await refusedHandshake(`${url}/`, { 'Target-Service-Id': 'nope' })).toEqual({
        status: 404,
        body: { error: 'unknown service: nope' },
      });
      expect(await refusedHandshake(`${url}/nope`, {})).toEqual({
        status: 404,
        body: { error: 'unknown service: nope' },
      });
      expect(await refusedHandshake(url, pathHeaders(s, header, OUTSIDER.address))).toEqual({
        status: 403,
        body: { error: `supplier ${OUTSIDER.address} is not served by this relayer` },
      });
      // The path names the service when no header does.
      const before = (await s.streamEntries()).length;
      const gw = await connect(s, kind, {}, '/anvil');
      gw.send(s.signRequest(header, jsonRpc(4, 'eth_blockNumber')).bytes);
      verified(s, await gw.next(), header);
      gw.close();
      await gw.closed;
      expect((await s.waitForEntries(before + 1)).length).toBe(before + 1);
    });

    it('closes 4003 when the backend cannot be dialled, then refuses with 503 once the breaker opens', async () => {
      const service = kind === 'relay port' ? 'deadws-relay' : 'deadws-compat';
      for (let i = 0; i < 2; i++) {
        const gw = await connect(s, kind, { 'Target-Service-Id': service });
        expect(await gw.closed).toEqual({ code: 4003, reason: 'backend connection failed' });
      }
      expect(await refusedHandshake(target(s, kind).url, { 'Target-Service-Id': service })).toEqual({
        status: 503,
        body: { error: 'service temporarily unavailable', service },
      });
    });

    it('keeps its connection gauge and close counters in step', async () => {
      const closes = async (): Promise<number[]> => [
        await s.metric('ha_relayer_websocket_closes_total', { code: '1000', initiator: 'gateway' }),
        await s.metric('ha_relayer_websocket_closes_total', { code: '4001', initiator: 'relayer' }),
      ];
      const before = await closes();
      const gw = await connect(s, kind, pathHeaders(s, header));
      await sleep(50);
      expect(await s.metric('ha_relayer_websocket_connections', { service_id: 'anvil' })).toBe(1);
      gw.close();
      await gw.closed;
      const bad = await connect(s, kind, pathHeaders(s, header));
      bad.send(Buffer.from([0xff]));
      await bad.closed;
      await sleep(50);
      expect(await s.metric('ha_relayer_websocket_connections', { service_id: 'anvil' })).toBe(0);
      expect(await closes()).toEqual([before[0]! + 1, before[1]! + 1]);
    });
  });

  it('answers in-flight frames on both listeners on shutdown, then closes 1001', async () => {
    const before = (await s.streamEntries()).length;
    const gateways = await Promise.all(LISTENERS.map((kind) => connect(s, kind, pathHeaders(s, header))));
    for (const gw of gateways) gw.send(s.signRequest(header, jsonRpc(9, 'eth_blockNumber')).bytes);
    const frames = gateways.map((gw) => gw.next());
    await sleep(20);
    const stopped = s.relayer.stop();
    for (const f of frames) verified(s, await f, header);
    expect(await Promise.all(gateways.map((gw) => gw.closed))).toEqual([
      { code: 1001, reason: 'server shutting down' },
      { code: 1001, reason: 'server shutting down' },
    ]);
    await stopped;
    expect((await s.streamEntries()).length).toBe(before + 2);
  });
});

describe('WebSocket bridge: slow and silent gateways', () => {
  let s: RelayerStack;
  let header: SessionHeader;
  beforeAll(async () => {
    // Thousands of pushes below: a budget of 10 000 × the app stake keeps the meter out of the way.
    s = await startRelayerStack({
      beforeStart: async (redis, keys) => {
        await redis.set(
          keys.serviceFactorServiceKey('anvil'),
          JSON.stringify({ factor: 10_000, updated_at: 0 }),
        );
      },
    });
    header = await s.session('anvil');
  });
  afterAll(async () => {
    await s?.close();
  });

  describe.each(LISTENERS)('on the %s', (kind) => {
    it('closes 1011 when the gateway stops reading instead of buffering pushes without bound', async () => {
      const side = await sideListener(s.relayer.core, kind, {
        highWaterBytes: 16 * 1024,
        stallTimeoutMs: 300,
      });
      try {
        const gw = await GatewayClient.connect(side.url, pathHeaders(s, header), side);
        gw.send(s.signRequest(header, jsonRpc(8, 'eth_subscribe', ['newHeads'])).bytes);
        verified(s, await gw.next(), header);
        const socket = (gw.ws as unknown as { _socket: Socket })._socket;
        socket.pause();
        for (let round = 0; round < 1000 && side.bridge.connections > 0; round++) {
          for (let k = 0; k < 200; k++) s.backends.websocket.pushNewHead();
          await sleep(10);
        }
        expect(side.bridge.connections).toBe(0);
        socket.resume();
        expect(await gw.closed).toEqual({ code: 1011, reason: 'gateway not reading' });
      } finally {
        await side.close();
      }
    });

    it('pings an idle gateway and keeps it, and drops one that stops answering pings', async () => {
      const side = await sideListener(s.relayer.core, kind, { pingIntervalMs: 100 });
      try {
        const gw = await GatewayClient.connect(side.url, pathHeaders(s, header), side);
        let pings = 0;
        gw.ws.on('ping', () => pings++);
        gw.send(s.signRequest(header, jsonRpc(1, 'eth_blockNumber')).bytes);
        verified(s, await gw.next(), header);
        await sleep(550);
        expect(pings).toBeGreaterThanOrEqual(3);
        expect(side.bridge.connections).toBe(1);
        const socket = (gw.ws as unknown as { _socket: Socket })._socket;
        socket.pause();
        for (let i = 0; i < 100 && side.bridge.connections > 0; i++) await sleep(10);
        expect(side.bridge.connections).toBe(0);
        socket.resume();
        expect(await gw.closed).toEqual({ code: 1006, reason: '' });
      } finally {
        await side.close();
      }
    });
  });
});

describe.each(LISTENERS)('WebSocket bridge: app stake budget on the %s', (kind) => {
  let s: RelayerStack;
  beforeAll(async () => {
    // One relay costs 2 CU × 42 = 84 uPOKT; a factor of 252e-8 on a 100 POKT stake allows 3.
    s = await startRelayerStack({
      beforeStart: async (redis, keys) => {
        await redis.set(
          keys.serviceFactorServiceKey('anvil'),
          JSON.stringify({ factor: 252 / 100_000_000, updated_at: 0 }),
        );
      },
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('meters every subscription push: exactly the budget is served and published, then 4002', async () => {
    const header = await s.session('anvil');
    const gw = await connect(s, kind, pathHeaders(s, header));
    const sub = s.signRequest(header, jsonRpc(1, 'eth_subscribe', ['newHeads']));
    gw.send(sub.bytes);
    const answers = [verified(s, await gw.next(), header)];
    for (let i = 0; i < 2; i++) {
      s.backends.websocket.pushNewHead();
      answers.push(verified(s, await gw.next(), header));
    }
    // The fourth frame is over the budget: not signed, not sent, not published.
    s.backends.websocket.pushNewHead();
    expect(await gw.closed).toEqual({
      code: 4002,
      reason: 'session relay limit reached: claimable portion fully consumed',
    });
    expect(gw.unread).toBe(0);
    expect(await backendConnectionsGone(s)).toBe(0);
    await s.waitForEntries(3);
    await sleep(200);
    await s.relayer.publisher.flush();
    expect(byHash((await s.streamEntries()).map(entryFields))).toEqual(
      byHash(answers.map((r) => expectedEntry(sub.request, r, header))),
    );
    expect(await s.metric('ha_relayer_relays_rejected_total', { reason: 'stake_exhausted' })).toBe(1);
  });

  it('closes 4002 when a request would exceed the spent budget, without forwarding it', async () => {
    const header = await s.session('anvil');
    const backendFrames = s.backends.websocket.messageCount;
    const gw = await connect(s, kind, pathHeaders(s, header));
    gw.send(s.signRequest(header, jsonRpc(2, 'eth_blockNumber')).bytes);
    expect(await gw.closed).toEqual({
      code: 4002,
      reason: 'session relay limit reached: claimable portion fully consumed',
    });
    expect(gw.unread).toBe(0);
    expect(s.backends.websocket.messageCount).toBe(backendFrames);
    await sleep(200);
    expect((await s.streamEntries()).length).toBe(3);
    expect(await s.metric('ha_relayer_relays_rejected_total', { reason: 'stake_exhausted' })).toBe(2);
  });
});

describe.each(LISTENERS)('WebSocket bridge: session end on the %s', (kind) => {
  let s: RelayerStack;
  beforeAll(async () => {
    // Height 5: session [5, 8]; grace period 1 block, so relays are accepted up to height 9.
    s = await startRelayerStack({ height: 5 });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('keeps serving through the grace period, then sends the signed 410 notice and closes 4000', async () => {
    const header = await s.session('anvil');
    expect([header.sessionStartBlockHeight, header.sessionEndBlockHeight]).toEqual([5n, 8n]);
    const gw = await connect(s, kind, pathHeaders(s, header));
    const sub = s.signRequest(header, jsonRpc(1, 'eth_subscribe', ['newHeads']));
    gw.send(sub.bytes);
    verified(s, await gw.next(), header);

    // Heights 6..9: session end (8) and its grace block (9) keep the connection and bill pushes.
    for (let h = 6; h <= 9; h++) {
      expect(await s.advance()).toBe(h);
      s.backends.websocket.pushNewHead();
      const push = verified(s, await gw.next(), header);
      expect((JSON.parse(push.payload.toString()) as { method: string }).method).toBe('eth_subscription');
    }
    // A new request inside the grace period is still a valid relay.
    gw.send(s.signRequest(header, jsonRpc(2, 'eth_blockNumber')).bytes);
    verified(s, await gw.next(), header);
    const billed = (await s.waitForEntries(6)).length;
    expect(billed).toBe(6);

    expect(await s.advance()).toBe(10);
    const notice = await gw.next();
    expect(notice.isBinary).toBe(true);
    const res = verified(s, notice, header);
    expect(res.relayMinerError).toEqual({
      codespace: '',
      code: 410,
      description: 'session expired',
      message: '',
    });
    const http = decodePoktHttpResponse(res.payload);
    expect(http.ok).toBe(true);
    if (http.ok) {
      expect(http.value.statusCode).toBe(410);
      expect([...http.value.header.entries()]).toEqual([
        ['Content-Type', { key: 'Content-Type', values: ['application/json'] }],
      ]);
      expect(http.value.bodyBz.toString()).toBe('{"error":"session expired"}');
    }
    expect(await gw.closed).toEqual({ code: 4000, reason: 'session expired' });
    await sleep(200);
    // The notice is not a relay: nothing more was billed.
    expect((await s.streamEntries()).length).toBe(billed);
  });

  it('stays open across sessions when the gateway signs its frames with the next session', async () => {
    const first = await s.session('anvil');
    const gw = await connect(s, kind, pathHeaders(s, first));
    gw.send(s.signRequest(first, jsonRpc(1, 'eth_blockNumber')).bytes);
    verified(s, await gw.next(), first);
    const end = Number(first.sessionEndBlockHeight);
    while (s.chain.net.chain.height < end + 1) await s.advance();
    const next = await s.session('anvil');
    expect(Number(next.sessionStartBlockHeight)).toBe(end + 1);
    gw.send(s.signRequest(next, jsonRpc(2, 'eth_blockNumber')).bytes);
    verified(s, await gw.next(), next);
    // Past the first session's grace period the connection is still there.
    await s.advance();
    await s.advance();
    gw.send(s.signRequest(next, jsonRpc(3, 'eth_blockNumber')).bytes);
    verified(s, await gw.next(), next);
    gw.close();
    expect(await gw.closed).toEqual({ code: 1000, reason: 'done' });
  });

  it('passes a backend close on to the gateway with its code', async () => {
    const h = await s.session('anvil');
    const gw = await connect(s, kind, pathHeaders(s, h));
    gw.send(s.signRequest(h, jsonRpc(1, 'eth_blockNumber')).bytes);
    verified(s, await gw.next(), h);
    await s.backends.websocket.close();
    expect(await gw.closed).toEqual({ code: 1001, reason: 'backend closing' });
  });
});
