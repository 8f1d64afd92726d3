/**
 * The WebSocket compatibility listener (`websocket.listen_addr`): the same bridge as the relay
 * port (websocket-bridge.ts: handshake checks, admission, metering, signing, publishing, session
 * expiry, close codes, metrics), served by node:http + ws so that text frames are not required to
 * be UTF-8.
 *
 * PATH writes each protobuf RelayRequest with the frame type its user chose, so a JSON-RPC user's
 * request arrives as a text frame holding protobuf bytes. uWebSockets.js (the relay port) drops
 * such a connection with 1006 before the bridge sees the frame; this listener accepts it.
 * Suppliers stake this listener's URL as their WebSocket endpoint to serve PATH gateways.
 *
 * Differences from the relay port, all from the ws library: a frame over twice the read limit is
 * answered with close 1009 (uWS drops the connection), and a plain HTTP request gets 426.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import type { RelayCore } from './relay-core.js';
import {
  WS_CLOSE,
  createWebSocketHub,
  handshakeStatusText,
  rawDataBytes,
  type GatewayConnection,
  type GatewaySendResult,
  type GatewaySocket,
  type WebSocketBridge,
  type WebSocketBridgeOptions,
} from './websocket-bridge.js';

export interface WebSocketListener extends WebSocketBridge {
  /** The port it listens on (the one asked for, or the one the OS gave for 0). */
  readonly port: number;
  /** Closes every connection (closeAll, 1001 "server shutting down"), then frees the port. */
  close(): Promise<void>;
}

/** How long close() lets gateways answer the close frame before dropping them. */
const CLOSE_HANDSHAKE_MS = 1_000;

/** Default of `websocket.handshake_timeout_seconds`, in ms. */
export const WS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** GatewaySocket over a ws WebSocket; a send that completes is a drain opportunity. */
class NodeGatewaySocket implements GatewaySocket {
  constructor(
    private readonly ws: WebSocket,
    readonly remoteAddress: string,
    private readonly maxBufferedBytes: number,
    private readonly onWritten: () => void,
  ) {}

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  send(data: Uint8Array, isBinary: boolean): GatewaySendResult {
    if (this.ws.readyState !== WebSocket.OPEN || this.ws.bufferedAmount > this.maxBufferedBytes) {
      return 'dropped';
    }
    this.ws.send(data, { binary: isBinary }, () => this.onWritten());
    return this.ws.bufferedAmount > 0 ? 'buffered' : 'sent';
  }

  ping(): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.ping();
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }
}

/** The checks ws makes before upgrading, so that the bridge only counts upgrades that happen. */
function isWebSocketUpgrade(req: http.IncomingMessage): boolean {
  const version = req.headers['sec-websocket-version'];
  return (
    req.method === 'GET' &&
    (req.headers.upgrade ?? '').toLowerCase() === 'websocket' &&
    /^[+/0-9A-Za-z]{22}==$/.test(req.headers['sec-websocket-key'] ?? '') &&
    (version === '13' || version === '8')
  );
}

function refuseUpgrade(socket: Duplex, status: number, body: object): void {
  const text = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${handshakeStatusText(status)}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(text)}\r\n` +
      'Connection: close\r\n\r\n' +
      text,
  );
}

/** Lower-case header names, repeated headers joined as HTTP joins them. */
function flatHeaders(req: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/**
 * Starts the compatibility listener on `host:port` (port 0 = any free port). `handshakeTimeoutMs`
 * bounds how long a client may take to send its upgrade request (a slowloris trickling headers
 * is dropped after it); an upgraded connection is not affected.
 */
export async function startWebSocketListener(
  core: RelayCore,
  opts: WebSocketBridgeOptions,
  addr: { host: string; port: number; handshakeTimeoutMs?: number },
): Promise<WebSocketListener> {
  const hub = createWebSocketHub(core, opts);
  const log = core.log.child({ component: 'websocket_listener' });
  const sockets = new Set<WebSocket>();
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    // Frames up to twice the limit reach the bridge and are refused with 1009 (as on the relay port).
    maxPayload: hub.settings.readLimitBytes * 2,
    // The reason this listener exists: PATH sends protobuf bytes in text frames.
    skipUTF8Validation: true,
  });

  const accept = (ws: WebSocket, remoteAddress: string, conn: GatewayConnection): void => {
    sockets.add(ws);
    const socket = new NodeGatewaySocket(ws, remoteAddress, hub.settings.maxBufferedBytes, () =>
      conn.onDrain(),
    );
    ws.on('message', (data: RawData, isBinary: boolean) => conn.onFrame(rawDataBytes(data), isBinary, false));
    ws.on('pong', () => conn.onPong());
    ws.on('error', (err: Error) => log.debug({ err }, 'gateway websocket error'));
    ws.on('close', (code: number, reason: Buffer) => {
      sockets.delete(ws);
      conn.onClosed(code, reason.toString('utf8'));
    });
    conn.onOpen(socket);
  };

  const handshakeTimeoutMs = addr.handshakeTimeoutMs ?? WS_HANDSHAKE_TIMEOUT_MS;
  const timeouts: http.ServerOptions = {
    headersTimeout: handshakeTimeoutMs,
    requestTimeout: handshakeTimeoutMs,
    // Node checks these every 30 s by default, which would let a slow client stay 3× longer.
    connectionsCheckingInterval: Math.min(1_000, handshakeTimeoutMs),
  };
  const server = http.createServer(timeouts, (_req, res) => {
    res
      .writeHead(426, { 'Content-Type': 'application/json', Upgrade: 'websocket' })
      .end(JSON.stringify({ error: 'websocket upgrade required' }));
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (!isWebSocketUpgrade(req)) {
      refuseUpgrade(socket, 400, { error: 'invalid websocket upgrade request' });
      return;
    }
    const verdict = hub.handshake({
      headers: flatHeaders(req),
      path: (req.url ?? '/').split('?')[0] ?? '/',
    });
    if (!verdict.ok) {
      refuseUpgrade(socket, verdict.status, verdict.body);
      return;
    }
    const remoteAddress = req.socket.remoteAddress ?? '';
    wss.handleUpgrade(req, socket, head, (ws) => accept(ws, remoteAddress, verdict.connection));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : addr.port;
  log.info({ listen_addr: `${addr.host}:${port}` }, 'websocket listener started');

  let closing: Promise<void> | undefined;
  return {
    port,
    get connections(): number {
      return hub.connections;
    },
    closeAll: (code, reason) => hub.closeAll(code, reason),
    close: () => {
      closing ??= (async () => {
        await hub.closeAll(WS_CLOSE.GOING_AWAY, 'server shutting down');
        const deadline = Date.now() + CLOSE_HANDSHAKE_MS;
        while (sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        for (const ws of sockets) ws.terminate();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      })();
      return closing;
    },
  };
}
