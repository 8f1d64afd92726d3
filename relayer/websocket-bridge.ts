/**
 * The WebSocket transport (relayer.md §6): a gateway connection bridged to one backend connection,
 * where every gateway frame is a signed RelayRequest and every backend frame goes back as a
 * supplier-signed RelayResponse and is published as one mined relay.
 *
 * Two listeners accept gateway connections and share everything in this file (handshake checks,
 * admission, metering, signing, publishing, session expiry, close codes, metrics); they differ
 * only in the GatewaySocket adapter:
 * - the relay port (uWebSockets.js, `attachWebSocketBridge`). uWS drops a connection (1006) on a
 *   text frame that is not UTF-8 before any handler runs, so gateways there must send their
 *   protobuf RelayRequests in binary frames.
 * - the compatibility listener (`websocket.listen_addr`, `startWebSocketListener` in
 *   websocket-listener.ts, node:http + ws without UTF-8 validation). PATH writes the protobuf
 *   RelayRequest with the frame type its user chose, so JSON-RPC users' requests arrive as text
 *   frames that are not UTF-8; only this listener can serve them.
 *
 * Deliberate differences from upstream:
 * - A gateway frame that is not a valid RelayRequest closes the connection with 4001; upstream
 *   forwards it to the backend raw and unbilled, which lets anyone use a supplier's backend for free.
 * - Frames are the security boundary: each one is validated and metered. The handshake signature
 *   is not verified (a valid one would add nothing the first frame does not prove), but a
 *   handshake naming a supplier this relayer holds no key for is refused with 403 before upgrade.
 * - A relay's service and supplier must match the connection's (handshake service, declared
 *   supplier): the backend was chosen for that service, so billing another one would be wrong.
 * - Every backend frame is metered: the first answer to an admitted request is covered by its
 *   admission, every further frame (subscription pushes) is charged again, and a frame over the
 *   session's budget is not served and closes the connection with 4002. Upstream meters requests
 *   only, so a subscription kept being served after the app's budget was spent.
 * - Backend frames that arrive before any admitted request are dropped (never sent unsigned).
 *   A response that cannot be signed closes the connection (1011) instead of going out unsigned.
 * - The arrival height is taken per frame, not pinned once per connection.
 * - Session end: the connection lives while relays are accepted (session end + grace period, the
 *   shared param at the end height) and is closed with the signed 410 notice and 4000 only after
 *   that; upstream closes at the session end and cuts off grace-period traffic. A gateway that
 *   signs later frames with the next session keeps the connection across sessions.
 * - Backend close codes 4000–4003 are relayer codes the gateway acts on (4000 = reconnect on the
 *   next session); a backend using them is reported as 1011 instead of being passed through.
 * - Backpressure is bounded: backend reads pause while the gateway's send buffer is above the high
 *   water mark or too many backend frames wait to be metered; a gateway that stays stalled for the
 *   write deadline is closed with 1011, one that keeps more than `maxPendingFrames` requests
 *   unprocessed with 1013. Nothing is buffered without bound and a frame that could not be queued
 *   for the gateway is never published.
 *
 * Signed responses keep the backend's frame type, as upstream and PATH expect (PATH forwards that
 * type to its client). A JSON payload that arrived in a binary frame is written to the backend as
 * text (see backendFrameIsBinary).
 */
import { isUtf8 } from 'node:buffer';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { TemplatedApp, WebSocket as UwsSocket } from 'uWebSockets.js';
import { WebSocket as BackendSocket, type RawData } from 'ws';
import { encodePoktHttpResponse, type RelayMinerError } from '../protocol/index.js';
import { buildBackendHeaders } from './backends/index.js';
import { resolveTimeoutProfile } from './config.js';
import type { AdmittedRelay, RelayCore, RelayRefusal } from './relay-core.js';

/** Largest frame accepted from either peer (relayer.md §6.2). */
export const WS_READ_LIMIT_BYTES = 15 * 1024 * 1024;

/** Close codes of the bridge (relayer.md §6.3). */
export const WS_CLOSE = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  POLICY_VIOLATION: 1008,
  TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  TRY_AGAIN_LATER: 1013,
  SESSION_EXPIRED: 4000,
  VALIDATION_FAILED: 4001,
  STAKE_EXCEEDED: 4002,
  BACKEND_FAILED: 4003,
} as const;

/** Relayer-defined close codes a backend may not pass through to the gateway. */
const RELAYER_CODES = new Set<number>([
  WS_CLOSE.SESSION_EXPIRED,
  WS_CLOSE.VALIDATION_FAILED,
  WS_CLOSE.STAKE_EXCEEDED,
  WS_CLOSE.BACKEND_FAILED,
]);

export interface CloseFrame {
  code: number;
  reason: string;
}

/** Handshake headers the bridge reads, lower-case names. */
export interface HandshakeInfo {
  headers: Readonly<Record<string, string>>;
  /** Request path without the query, e.g. `/anvil`. */
  path: string;
}

/**
 * Service of a WebSocket connection (relayer.md §6.1 step 1): the first non-empty of
 * `Target-Service-Id`, `Pocket-Service-Id`, `X-Forwarded-Host` and the first path segment.
 */
export function resolveServiceId(h: HandshakeInfo): string {
  for (const name of ['target-service-id', 'pocket-service-id', 'x-forwarded-host']) {
    const v = (h.headers[name] ?? '').trim();
    if (v !== '') return v;
  }
  return h.path.split('/').find((s) => s !== '') ?? '';
}

/** True for codes a close frame may carry (RFC 6455 §7.4; 1005, 1006 and 1015 are never sent). */
export function isSendableCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  );
}

/** A close reason cut to the 123 bytes a close frame can carry, on a character boundary. */
export function truncateCloseReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let out = '';
  for (const ch of reason) {
    if (Buffer.byteLength(out + ch) > 123) break;
    out += ch;
  }
  return out;
}

/** What the backend is told when the bridge closes the gateway with `code` (relayer.md §6.3). */
export function backendCloseFor(code: number, reason: string): CloseFrame {
  switch (code) {
    case WS_CLOSE.SESSION_EXPIRED:
      return { code: WS_CLOSE.GOING_AWAY, reason: 'session ended' };
    case WS_CLOSE.VALIDATION_FAILED:
      return { code: WS_CLOSE.POLICY_VIOLATION, reason: 'request rejected' };
    case WS_CLOSE.STAKE_EXCEEDED:
      return { code: WS_CLOSE.TRY_AGAIN_LATER, reason: 'rate limited' };
    case WS_CLOSE.BACKEND_FAILED:
      return { code: WS_CLOSE.INTERNAL_ERROR, reason: 'connection failed' };
    case 1005:
      return { code: WS_CLOSE.NORMAL, reason: '' };
    default:
      if (isSendableCloseCode(code)) return { code, reason: truncateCloseReason(reason) };
      return { code: WS_CLOSE.GOING_AWAY, reason: 'gateway went away' };
  }
}

/** What the gateway is told when the backend closes with `code`. */
export function gatewayCloseForBackend(code: number, reason: string): CloseFrame {
  if (code === 1005) return { code: WS_CLOSE.NORMAL, reason: '' };
  if (RELAYER_CODES.has(code)) {
    return { code: WS_CLOSE.INTERNAL_ERROR, reason: `backend closed with ${code}` };
  }
  if (isSendableCloseCode(code)) return { code, reason: truncateCloseReason(reason) };
  return { code: WS_CLOSE.GOING_AWAY, reason: 'backend went away' };
}

/** Bounded label for a close code: the ones this bridge knows, else a range. */
export function closeCodeLabel(code: number): string {
  if ((code >= 1000 && code <= 1015) || RELAYER_CODES.has(code)) return String(code);
  if (code >= 3000 && code <= 3999) return '3xxx';
  if (code >= 4000 && code <= 4999) return '4xxx';
  return 'invalid';
}

/** The relay_miner_error of the session-end notice. */
export const SESSION_EXPIRED_ERROR: RelayMinerError = {
  codespace: '',
  code: 410,
  description: 'session expired',
  message: '',
};

/** Payload of the session-end notice: POKTHTTPResponse{410, JSON content type, error body}. */
export function sessionExpiredPayload(): Uint8Array {
  return encodePoktHttpResponse({
    statusCode: 410,
    headers: [['Content-Type', ['application/json']]],
    body: Buffer.from('{"error":"session expired"}'),
  });
}

/**
 * Frame type for a relay payload on the backend connection. The gateway's own frame type is kept,
 * except that a binary frame carrying JSON text (UTF-8 starting with `{` or `[`) goes to the
 * backend as text (gateways on the relay port must send binary frames even when the user's frame
 * was JSON-RPC text, and JSON-RPC backends expect text), and a payload that is not UTF-8 goes as
 * binary (a text frame cannot carry it; the backend would drop the connection with 1007).
 */
export function backendFrameIsBinary(gatewayFrameIsBinary: boolean, payload: Uint8Array): boolean {
  if (!gatewayFrameIsBinary) return !isUtf8(payload);
  let i = 0;
  while (
    i < payload.length &&
    (payload[i] === 0x20 || payload[i] === 0x09 || payload[i] === 0x0a || payload[i] === 0x0d)
  ) {
    i++;
  }
  if (payload[i] !== 0x7b && payload[i] !== 0x5b) return true;
  return !isUtf8(payload);
}

/** Kind of a failed backend dial: breaker failures are hard transport errors and 5xx answers. */
export function classifyDialError(err: Error): 'breaker_failure' | 'timeout' | 'refused_by_backend' {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (/timed out/i.test(err.message) || code === 'ETIMEDOUT') return 'timeout';
  const status = /Unexpected server response: (\d{3})/.exec(err.message);
  if (status !== null) return Number(status[1]) >= 500 ? 'breaker_failure' : 'refused_by_backend';
  return 'breaker_failure';
}

/* ---------- metrics ---------- */

export type WsDirection = 'from_gateway' | 'to_backend' | 'from_backend' | 'to_gateway' | 'backend_dropped';
export type WsCloseInitiator = 'relayer' | 'gateway' | 'backend';
export type WsUpgradeResult =
  | 'upgraded'
  | 'missing_service'
  | 'unknown_service'
  | 'supplier_not_owned'
  | 'backend_unavailable'
  | 'shutting_down';

/** The bridge series of a registry, created once however many listeners share it. */
const metricsByRegistry = new WeakMap<Registry, WebSocketBridgeMetrics>();

export function bridgeMetricsFor(registry: Registry): WebSocketBridgeMetrics {
  let m = metricsByRegistry.get(registry);
  if (m === undefined) {
    m = new WebSocketBridgeMetrics(registry);
    metricsByRegistry.set(registry, m);
  }
  return m;
}

export class WebSocketBridgeMetrics {
  readonly connections: Gauge<'service_id'>;
  readonly messages: Counter<'service_id' | 'direction'>;
  readonly closes: Counter<'code' | 'initiator'>;
  readonly upgrades: Counter<'result'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.connections = new Gauge({
      name: 'ha_relayer_websocket_connections',
      help: 'Open gateway WebSocket connections',
      labelNames: ['service_id'],
      registers,
    });
    this.messages = new Counter({
      name: 'ha_relayer_websocket_messages_total',
      help: 'WebSocket frames by direction (from_gateway, to_backend, from_backend, to_gateway, backend_dropped)',
      labelNames: ['service_id', 'direction'],
      registers,
    });
    this.closes = new Counter({
      name: 'ha_relayer_websocket_closes_total',
      help: 'Gateway WebSocket connections closed, by close code and by who closed first',
      labelNames: ['code', 'initiator'],
      registers,
    });
    this.upgrades = new Counter({
      name: 'ha_relayer_websocket_upgrades_total',
      help: 'WebSocket upgrade requests by result',
      labelNames: ['result'],
      registers,
    });
  }
}

/* ---------- gateway sockets ---------- */

/** What `GatewaySocket.send` did with a frame. */
export type GatewaySendResult =
  /** Written out at once. */
  | 'sent'
  /** Queued behind earlier frames (backpressure). */
  | 'buffered'
  /** Not queued: the send buffer is over its hard limit (or the socket is closed). */
  | 'dropped';

/** The gateway side of a connection as the bridge drives it; one adapter per server library. */
export interface GatewaySocket {
  readonly remoteAddress: string;
  /** Bytes queued for the gateway and not yet handed to the kernel. */
  readonly bufferedAmount: number;
  send(data: Uint8Array, isBinary: boolean): GatewaySendResult;
  ping(): void;
  /** Starts the close handshake; `reason` fits a close frame (see truncateCloseReason). */
  close(code: number, reason: string): void;
  /** Drops the connection without a close frame. */
  terminate(): void;
}

/** What a listener reports to the bridge about one accepted gateway connection. */
export interface GatewayConnection {
  /** The upgrade completed. */
  onOpen(socket: GatewaySocket): void;
  /** A data frame. `transient`: `data` is valid only during the call. */
  onFrame(data: Uint8Array, isBinary: boolean, transient: boolean): void;
  onPong(): void;
  /** The gateway's send buffer shrank. */
  onDrain(): void;
  /** The connection is gone, closed by either side (1005/1006 when no code was received). */
  onClosed(code: number, reason: string): void;
}

/** Answer to an upgrade request: go ahead with this connection, or refuse with status and JSON body. */
export type HandshakeVerdict =
  { ok: true; connection: GatewayConnection } | { ok: false; status: number; body: object };

/* ---------- the bridge ---------- */

/** Which supplier keys this relayer holds (RelaySigner satisfies it). */
export interface SupplierKeyHolder {
  owns(address: string): boolean;
}

export interface WebSocketBridgeOptions {
  /** Registry for the bridge's series (shared by every listener on it). */
  registry: Registry;
  /**
   * Refuses handshakes that name a supplier without a key here (pass the RelaySigner). Without
   * it the handshake is not checked and such a connection fails on its first frame (4001).
   */
  suppliers?: SupplierKeyHolder;
  /** Frame size limit for both peers. Default 15 MiB. */
  readLimitBytes?: number;
  /** Ping period for both peers; a peer that sends nothing (not even a pong) for a period is gone. Default 27 s. */
  pingIntervalMs?: number;
  /** Relay port only: uWS closes a gateway that sent nothing for this long. Default 32 s. */
  idleTimeoutSeconds?: number;
  /** Gateway send buffer above which backend reads pause. Default 1 MiB. */
  highWaterBytes?: number;
  /** How long the gateway may stay above the high water mark before 1011. Default 10 s. */
  stallTimeoutMs?: number;
  /**
   * Gateway frames received but not yet forwarded, above which the connection closes 1013; also
   * the backend frames waiting for the meter above which backend reads pause. Default 100.
   */
  maxPendingFrames?: number;
  /** closeAll: how long to wait for in-flight frames to be answered. Default 5 s. */
  drainTimeoutMs?: number;
}

export interface WebSocketBridge {
  /** Open gateway connections. */
  readonly connections: number;
  /**
   * Stops accepting upgrades and frames, waits (up to the drain timeout) until forwarded requests
   * have been answered, then closes every connection (default 1001 "server shutting down").
   */
  closeAll(code?: number, reason?: string): Promise<void>;
}

/** Options with their defaults applied. */
export interface BridgeSettings {
  readLimitBytes: number;
  pingIntervalMs: number;
  idleTimeoutSeconds: number;
  highWaterBytes: number;
  stallTimeoutMs: number;
  maxPendingFrames: number;
  drainTimeoutMs: number;
  /** Hard limit of a gateway's send buffer: one more full frame above the high water mark. */
  maxBufferedBytes: number;
}

export function resolveBridgeSettings(opts: WebSocketBridgeOptions): BridgeSettings {
  const readLimitBytes = opts.readLimitBytes ?? WS_READ_LIMIT_BYTES;
  const highWaterBytes = opts.highWaterBytes ?? 1024 * 1024;
  return {
    readLimitBytes,
    pingIntervalMs: opts.pingIntervalMs ?? 27_000,
    idleTimeoutSeconds: opts.idleTimeoutSeconds ?? 32,
    highWaterBytes,
    stallTimeoutMs: opts.stallTimeoutMs ?? 10_000,
    maxPendingFrames: opts.maxPendingFrames ?? 100,
    drainTimeoutMs: opts.drainTimeoutMs ?? 5_000,
    maxBufferedBytes: highWaterBytes + readLimitBytes * 2,
  };
}

/** The listener-independent half of the bridge: handshake checks, open connections, shutdown. */
export interface WebSocketHub extends WebSocketBridge {
  readonly settings: Readonly<BridgeSettings>;
  /**
   * Checks an upgrade request (relayer.md §6.1) and counts the verdict. On `ok` the listener
   * upgrades and calls `connection.onOpen`; otherwise it answers `status` with the JSON `body`.
   */
  handshake(h: HandshakeInfo): HandshakeVerdict;
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: '400 Bad Request',
  403: '403 Forbidden',
  404: '404 Not Found',
  426: '426 Upgrade Required',
  503: '503 Service Unavailable',
};

/** HTTP status line text of a handshake refusal, e.g. `403 Forbidden`. */
export function handshakeStatusText(status: number): string {
  return STATUS_TEXT[status] ?? String(status);
}

/** The bytes of a `ws` message (fragmented messages arrive as a list). */
export function rawDataBytes(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

class BridgeHub implements WebSocketHub {
  readonly metrics: WebSocketBridgeMetrics;
  readonly log: Logger;
  readonly open = new Set<BridgeConnection>();
  shuttingDown = false;
  private unsubscribe: (() => void) | undefined;

  constructor(
    readonly core: RelayCore,
    readonly opts: WebSocketBridgeOptions,
    readonly settings: BridgeSettings,
  ) {
    this.metrics = bridgeMetricsFor(opts.registry);
    this.log = core.log.child({ component: 'websocket_bridge' });
    this.unsubscribe = core.onHeight((h) => {
      for (const c of this.open) c.onHeight(h);
    });
  }

  get connections(): number {
    return this.open.size;
  }

  private refuse(status: number, body: object, result: WsUpgradeResult): HandshakeVerdict {
    this.metrics.upgrades.inc({ result });
    return { ok: false, status, body };
  }

  handshake(h: HandshakeInfo): HandshakeVerdict {
    const { headers } = h;
    const core = this.core;
    const serviceId = resolveServiceId(h);
    if (serviceId === '') return this.refuse(400, { error: 'missing service ID' }, 'missing_service');
    if (core.config.services[serviceId] === undefined) {
      return this.refuse(404, { error: `unknown service: ${serviceId}` }, 'unknown_service');
    }
    if (this.shuttingDown || core.draining) {
      return this.refuse(503, { error: 'server shutting down' }, 'shutting_down');
    }
    const supplier = (headers['pocket-supplier-address'] ?? '').trim();
    if (supplier !== '' && this.opts.suppliers !== undefined && !this.opts.suppliers.owns(supplier)) {
      return this.refuse(
        403,
        { error: `supplier ${supplier} is not served by this relayer` },
        'supplier_not_owned',
      );
    }
    const pool = core.backends.get(serviceId, 'websocket');
    if (pool === undefined || !pool.hasHealthy()) {
      return this.refuse(
        503,
        { error: 'service temporarily unavailable', service: serviceId },
        'backend_unavailable',
      );
    }
    const simKey = headers['pocket-simulation-key-id'];
    const simulationKeyId =
      core.config.simulation.enabled && simKey !== undefined && simKey !== '' ? simKey : undefined;
    const declared =
      (headers['pocket-session-id'] ?? '') !== '' &&
      supplier !== '' &&
      (headers['pocket-signature'] ?? '') !== '';
    this.log.debug(
      {
        service_id: serviceId,
        supplier,
        session_id: headers['pocket-session-id'],
        application: headers['app-address'],
        handshake: declared ? 'v2' : 'v1',
        simulated: simulationKeyId !== undefined,
      },
      'websocket handshake',
    );
    this.metrics.upgrades.inc({ result: 'upgraded' });
    return { ok: true, connection: new BridgeConnection(this, serviceId, supplier, simulationKeyId) };
  }

  async closeAll(code: number = WS_CLOSE.GOING_AWAY, reason = 'server shutting down'): Promise<void> {
    this.shuttingDown = true;
    const deadline = Date.now() + this.settings.drainTimeoutMs;
    await Promise.all([...this.open].map((c) => c.shutdown(code, reason, deadline)));
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }
}

/** The shared bridge for one listener: metrics on `opts.registry`, block heights from `core`. */
export function createWebSocketHub(core: RelayCore, opts: WebSocketBridgeOptions): WebSocketHub {
  return new BridgeHub(core, opts, resolveBridgeSettings(opts));
}

type ConnState = 'upgrading' | 'open' | 'closed';

class BridgeConnection implements GatewayConnection {
  private sock: GatewaySocket | undefined;
  private state: ConnState = 'upgrading';
  private backend: BackendSocket | undefined;
  private readonly backendReady: Promise<boolean>;
  private resolveBackendReady: (ok: boolean) => void = () => undefined;
  private latest: AdmittedRelay | undefined;
  /** Gateway frames, one after the other. */
  private chain: Promise<void> = Promise.resolve();
  private pendingFrames = 0;
  /** Backend frames, one after the other (metering is asynchronous, order is kept). */
  private outbound: Promise<void> = Promise.resolve();
  private queuedFrames = 0;
  /** Admitted requests whose meter charge no backend frame has used yet. */
  private prepaid = 0;
  /** Requests forwarded since the backend last sent a frame (closeAll waits for 0). */
  private unanswered = 0;
  private answered: (() => void) | undefined;
  private draining = false;
  private acceptUntil: number | undefined;
  private acceptUntilFor: number | undefined;
  private trackingEnd: number | undefined;
  private trackingCalls = 0;
  private pingTimer: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private backendAlive = true;
  private gatewayAlive = true;
  /** Backend reads pause while the gateway is slow or too many frames wait for the meter. */
  private pausedForGateway = false;
  private pausedForQueue = false;
  private backendPaused = false;
  private log: Logger;

  constructor(
    private readonly hub: BridgeHub,
    readonly serviceId: string,
    /** Supplier named in the handshake ('' = any supplier this relayer holds). */
    private readonly supplier: string,
    private readonly simulationKeyId: string | undefined,
  ) {
    this.log = hub.log.child({ service_id: serviceId });
    this.backendReady = new Promise((resolve) => (this.resolveBackendReady = resolve));
  }

  /* ----- lifecycle ----- */

  onOpen(socket: GatewaySocket): void {
    this.sock = socket;
    this.state = 'open';
    this.log = this.log.child({ remote_addr: socket.remoteAddress });
    this.hub.open.add(this);
    this.hub.metrics.connections.inc({ service_id: this.serviceId });
    this.dial();
  }

  private dial(): void {
    const core = this.hub.core;
    const endpoint = core.backends.get(this.serviceId, 'websocket')?.pick();
    if (endpoint === undefined) {
      this.resolveBackendReady(false);
      this.close(WS_CLOSE.BACKEND_FAILED, 'backend connection failed', 'relayer');
      return;
    }
    const svc = core.config.services[this.serviceId];
    const backendCfg = svc?.backends['websocket'];
    const headers = buildBackendHeaders({
      inner: {},
      wrapper: {},
      config: backendCfg?.headers,
      auth: backendCfg?.authentication,
      supplier: this.supplier,
      serviceId: this.serviceId,
    });
    const dialTimeoutMs = resolveTimeoutProfile(core.config, this.serviceId).dial_timeout_seconds * 1000;
    const backend = new BackendSocket(endpoint.url, {
      headers,
      handshakeTimeout: dialTimeoutMs > 0 ? dialTimeoutMs : 10_000,
      perMessageDeflate: false,
      maxPayload: this.hub.settings.readLimitBytes,
      followRedirects: false,
    });
    this.backend = backend;
    let opened = false;
    backend.on('open', () => {
      opened = true;
      endpoint.breaker.recordSuccess();
      if (this.state !== 'open') {
        backend.close(WS_CLOSE.NORMAL, 'gateway gone');
        this.resolveBackendReady(false);
        return;
      }
      this.startPing();
      this.resolveBackendReady(true);
    });
    backend.on('error', (err: Error) => {
      if (opened) {
        this.log.debug({ err, endpoint: endpoint.name }, 'backend websocket error');
        return;
      }
      this.resolveBackendReady(false);
      // A dial the relayer aborted (gateway gone) says nothing about the backend.
      if (this.state !== 'open') return;
      const kind = classifyDialError(err);
      if (kind === 'breaker_failure') endpoint.breaker.recordFailure();
      this.log.warn({ err, endpoint: endpoint.name, kind }, 'backend websocket dial failed');
      this.close(WS_CLOSE.BACKEND_FAILED, 'backend connection failed', 'relayer');
    });
    backend.on('message', (data: RawData, isBinary: boolean) =>
      this.onBackendFrame(rawDataBytes(data), isBinary),
    );
    backend.on('pong', () => {
      this.backendAlive = true;
    });
    backend.on('close', (code: number, reason: Buffer) => {
      this.stopTimers();
      if (!opened) return;
      const out = gatewayCloseForBackend(code, reason.toString('utf8'));
      this.close(out.code, out.reason, 'backend');
    });
  }

  /** One keep-alive for both peers: a peer that sent nothing since the last ping is gone. */
  private startPing(): void {
    this.pingTimer = setInterval(() => {
      const b = this.backend;
      if (this.state !== 'open' || b === undefined || b.readyState !== BackendSocket.OPEN) return;
      if (!this.gatewayAlive) {
        this.close(WS_CLOSE.GOING_AWAY, 'gateway did not answer ping', 'gateway', true);
        return;
      }
      if (!this.backendAlive) {
        b.terminate();
        this.close(WS_CLOSE.GOING_AWAY, 'backend did not answer ping', 'backend');
        return;
      }
      this.gatewayAlive = false;
      this.backendAlive = false;
      this.sock!.ping();
      b.ping();
    }, this.hub.settings.pingIntervalMs);
    this.pingTimer.unref();
  }

  private stopTimers(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.stallTimer);
    this.pingTimer = undefined;
    this.stallTimer = undefined;
  }

  /**
   * Closes the gateway with `code` (or drops it, `terminate`) and the backend with the code the
   * table maps it to. Idempotent; the first caller decides the code.
   */
  close(code: number, reason: string, initiator: WsCloseInitiator, terminate = false): void {
    if (this.state !== 'open') {
      if (this.state === 'upgrading') this.state = 'closed';
      return;
    }
    const text = truncateCloseReason(reason);
    if (initiator !== 'backend') this.closeBackend(backendCloseFor(code, text));
    else this.closeBackend(undefined);
    this.finish(code, initiator);
    // The socket's own close event (synchronous on uWS, later on ws) finds the connection finished.
    if (terminate) this.sock!.terminate();
    else this.sock!.close(code, text);
  }

  private closeBackend(frame: CloseFrame | undefined): void {
    const b = this.backend;
    if (b === undefined) return;
    if (b.readyState === BackendSocket.OPEN && frame !== undefined) {
      b.close(frame.code, frame.reason);
      setTimeout(() => b.terminate(), 5_000).unref();
    } else if (b.readyState === BackendSocket.CONNECTING || b.readyState === BackendSocket.OPEN) {
      b.terminate();
    }
  }

  /** Bookkeeping of a connection that is gone; runs once. */
  private finish(code: number, initiator: WsCloseInitiator): void {
    this.state = 'closed';
    this.stopTimers();
    this.resolveBackendReady(false);
    this.latest?.release?.();
    this.answered?.();
    this.hub.open.delete(this);
    this.hub.metrics.connections.dec({ service_id: this.serviceId });
    this.hub.metrics.closes.inc({ code: closeCodeLabel(code), initiator });
    this.log.debug({ code, initiator }, 'websocket closed');
  }

  onClosed(code: number, reason: string): void {
    if (this.state !== 'open') {
      this.state = 'closed';
      return;
    }
    this.closeBackend(backendCloseFor(code, reason));
    this.finish(code, 'gateway');
  }

  onPong(): void {
    this.gatewayAlive = true;
  }

  /* ----- gateway → backend ----- */

  onFrame(data: Uint8Array, isBinary: boolean, transient: boolean): void {
    if (this.state !== 'open') return;
    this.gatewayAlive = true;
    this.hub.metrics.messages.inc({ service_id: this.serviceId, direction: 'from_gateway' });
    if (data.byteLength > this.hub.settings.readLimitBytes) {
      this.close(WS_CLOSE.TOO_BIG, 'message too big', 'relayer');
      return;
    }
    if (this.draining) return;
    if (this.pendingFrames >= this.hub.settings.maxPendingFrames) {
      this.close(WS_CLOSE.TRY_AGAIN_LATER, 'too many unprocessed messages', 'relayer');
      return;
    }
    const bytes = transient ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const arrivalHeight = this.hub.core.heights.currentHeight;
    this.pendingFrames++;
    const step = this.chain.then(() => this.processGatewayFrame(bytes, isBinary, arrivalHeight));
    this.chain = this.hub.core
      .track(step)
      .catch((err: unknown) => {
        this.log.error({ err }, 'websocket frame handling failed');
        this.close(WS_CLOSE.INTERNAL_ERROR, 'internal error', 'relayer');
      })
      .finally(() => {
        this.pendingFrames--;
      });
  }

  private reject(r: RelayRefusal): void {
    this.hub.core.countRejected(r, this.serviceId);
    this.close(r.wsCloseCode, r.message, 'relayer');
  }

  private async processGatewayFrame(bytes: Buffer, isBinary: boolean, arrivalHeight: number): Promise<void> {
    if (this.state !== 'open') return;
    const core = this.hub.core;
    const decoded = core.decode(bytes);
    if (!decoded.ok) {
      this.reject({ ...decoded, wsCloseCode: WS_CLOSE.VALIDATION_FAILED });
      return;
    }
    core.countReceived(this.serviceId, 'websocket');
    const request = decoded.request;
    const relayService = request.meta?.sessionHeader?.serviceId ?? '';
    const relaySupplier = request.meta?.supplierOperatorAddress ?? '';
    if (relayService !== this.serviceId) {
      this.reject(
        mismatch(`relay service "${relayService}" is not the connection's service "${this.serviceId}"`),
      );
      return;
    }
    if (this.supplier !== '' && relaySupplier !== this.supplier) {
      this.reject(
        mismatch(`relay supplier ${relaySupplier} is not the connection's supplier ${this.supplier}`),
      );
      return;
    }
    const admitted = await core.admit(request, bytes, {
      transport: 'websocket',
      rpcType: 'websocket',
      arrivalHeight,
      ...(this.simulationKeyId === undefined ? {} : { simulationKeyId: this.simulationKeyId }),
    });
    if (!admitted.ok) {
      this.reject(admitted);
      return;
    }
    if (!(await this.backendReady) || this.state !== 'open') {
      await core.unbill(admitted);
      return;
    }
    await this.trackSession(admitted);
    if (this.state !== 'open') {
      await core.unbill(admitted);
      return;
    }
    if (this.latest !== admitted) this.latest?.release?.();
    this.latest = admitted;
    this.prepaid++;
    const backend = this.backend!;
    this.unanswered++;
    const flushed = new Promise<Error | undefined>((resolve) =>
      backend.send(request.payload, { binary: backendFrameIsBinary(isBinary, request.payload) }, (err) =>
        resolve(err ?? undefined),
      ),
    );
    this.hub.metrics.messages.inc({ service_id: this.serviceId, direction: 'to_backend' });
    // Backend slower than the gateway: wait for the socket to take this frame before the next.
    if (backend.bufferedAmount > this.hub.settings.highWaterBytes) {
      const err = await flushed;
      if (err !== undefined) this.close(WS_CLOSE.INTERNAL_ERROR, 'backend write failed', 'relayer');
    } else {
      void flushed.then((err) => {
        if (err !== undefined) this.close(WS_CLOSE.INTERNAL_ERROR, 'backend write failed', 'relayer');
      });
    }
  }

  /* ----- session end ----- */

  /**
   * Learns the last accepting height of `relay`'s session (cached per end height); the most
   * recent call wins. When the grace period cannot be read nothing is assumed and the next block
   * retries.
   */
  private async trackSession(relay: AdmittedRelay): Promise<void> {
    const end = Number(relay.header.sessionEndBlockHeight);
    if (this.acceptUntilFor === end) return;
    this.acceptUntil = undefined;
    this.acceptUntilFor = undefined;
    this.trackingEnd = end;
    this.trackingCalls++;
    try {
      const until = await this.hub.core.acceptUntilHeight(end);
      if (this.trackingEnd === end) {
        this.acceptUntil = until;
        this.acceptUntilFor = end;
      }
    } catch (err) {
      this.log.warn({ err, session_end_height: end }, 'grace period unknown; retried on the next block');
    } finally {
      this.trackingCalls--;
    }
  }

  onHeight(height: number): void {
    if (this.state !== 'open') return;
    if (this.acceptUntil === undefined) {
      if (this.latest !== undefined && this.trackingCalls === 0) {
        void this.trackSession(this.latest).then(() => {
          if (this.acceptUntil !== undefined) this.onHeight(height);
        });
      }
      return;
    }
    if (height <= this.acceptUntil) return;
    const relay = this.latest;
    if (relay !== undefined) {
      const notice = this.hub.core.signResponse(relay, sessionExpiredPayload(), SESSION_EXPIRED_ERROR);
      if (notice.ok && this.sock!.send(notice.bytes, true) !== 'dropped') {
        this.hub.metrics.messages.inc({ service_id: this.serviceId, direction: 'to_gateway' });
      }
    }
    this.log.debug({ block_height: height, accept_until: this.acceptUntil }, 'websocket session expired');
    this.close(WS_CLOSE.SESSION_EXPIRED, 'session expired', 'relayer');
  }

  /* ----- backend → gateway ----- */

  private onBackendFrame(frame: Buffer, isBinary: boolean): void {
    const m = this.hub.metrics;
    m.messages.inc({ service_id: this.serviceId, direction: 'from_backend' });
    if (this.state !== 'open') return;
    this.backendAlive = true;
    const relay = this.latest;
    if (relay === undefined) {
      m.messages.inc({ service_id: this.serviceId, direction: 'backend_dropped' });
      this.log.debug({ bytes: frame.length }, 'backend frame before any relay request dropped');
    } else if (frame.length === 0) {
      m.messages.inc({ service_id: this.serviceId, direction: 'backend_dropped' });
    } else {
      this.queuedFrames++;
      if (this.queuedFrames > this.hub.settings.maxPendingFrames) {
        this.pausedForQueue = true;
        this.updateBackendFlow();
      }
      // The first frame after an admission uses the admission's charge; every other one is
      // charged now, so that charges of queued frames overlap while answers keep their order.
      let charge: Promise<Charge> | undefined;
      if (this.prepaid > 0) this.prepaid--;
      else {
        charge = this.hub.core.chargeAgain(relay).then(
          (refused) => ({ refused }),
          (err: unknown) => ({ err }),
        );
      }
      this.outbound = this.outbound
        .then(() => this.answer(relay, frame, isBinary, charge))
        .catch((err: unknown) => {
          this.log.error({ err }, 'websocket backend frame handling failed');
          this.close(WS_CLOSE.INTERNAL_ERROR, 'internal error', 'relayer');
        })
        .finally(() => {
          this.queuedFrames--;
          if (this.pausedForQueue && this.queuedFrames <= this.hub.settings.maxPendingFrames / 2) {
            this.pausedForQueue = false;
            this.updateBackendFlow();
          }
        });
    }
    // closeAll waits for this, then for the frame to be answered (this.outbound).
    this.unanswered = 0;
    this.answered?.();
  }

  /**
   * Signs, sends and publishes one backend frame answering `relay` once its meter charge (none for
   * the first answer to an admission) is through; a refused charge closes with 4002 unserved.
   */
  private async answer(
    relay: AdmittedRelay,
    frame: Buffer,
    isBinary: boolean,
    charge: Promise<Charge> | undefined,
  ): Promise<void> {
    const core = this.hub.core;
    let charged = false;
    if (charge !== undefined) {
      const c = await charge;
      if ('err' in c) throw c.err;
      if (c.refused !== undefined) {
        if (this.state === 'open') this.reject(c.refused);
        return;
      }
      charged = !relay.simulated;
    }
    if (this.state !== 'open') {
      if (charged) await core.unbill(relay);
      return;
    }
    const signed = core.signResponse(relay, frame);
    if (!signed.ok) {
      this.reject(signed);
      if (charged) await core.unbill(relay);
      return;
    }
    const sock = this.sock!;
    if (sock.send(signed.bytes, isBinary) === 'dropped') {
      // Over the send buffer's hard limit: the frame was not queued, so it is not billed.
      this.close(WS_CLOSE.INTERNAL_ERROR, 'gateway not reading', 'relayer');
      if (charged) await core.unbill(relay);
      return;
    }
    this.hub.metrics.messages.inc({ service_id: this.serviceId, direction: 'to_gateway' });
    core.countServed(this.serviceId, 'websocket', 200);
    core.publishMined(relay, frame, undefined, signed.response);
    if (sock.bufferedAmount > this.hub.settings.highWaterBytes) this.pauseForGateway();
  }

  /* ----- backpressure ----- */

  private updateBackendFlow(): void {
    const pause = this.pausedForGateway || this.pausedForQueue;
    if (pause === this.backendPaused) return;
    this.backendPaused = pause;
    if (pause) this.backend?.pause();
    else this.backend?.resume();
  }

  private pauseForGateway(): void {
    if (this.pausedForGateway) return;
    this.pausedForGateway = true;
    this.updateBackendFlow();
    this.stallTimer = setTimeout(() => {
      if (this.pausedForGateway) this.close(WS_CLOSE.INTERNAL_ERROR, 'gateway not reading', 'relayer');
    }, this.hub.settings.stallTimeoutMs);
    this.stallTimer.unref();
  }

  onDrain(): void {
    if (!this.pausedForGateway || this.state !== 'open') return;
    if (this.sock!.bufferedAmount > this.hub.settings.highWaterBytes / 2) return;
    this.pausedForGateway = false;
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.updateBackendFlow();
  }

  /* ----- shutdown ----- */

  async shutdown(code: number, reason: string, deadlineMs: number): Promise<void> {
    this.draining = true;
    const remaining = (): number => Math.max(0, deadlineMs - Date.now());
    await withTimeout(this.chain, remaining());
    while (this.state === 'open' && this.unanswered > 0 && remaining() > 0) {
      await withTimeout(new Promise<void>((resolve) => (this.answered = resolve)), remaining());
      this.answered = undefined;
    }
    await withTimeout(this.outbound, remaining());
    this.close(code, reason, 'relayer');
  }
}

/** Outcome of charging the meter for one more frame. */
type Charge = { refused: RelayRefusal | undefined } | { err: unknown };

function mismatch(message: string): RelayRefusal {
  return {
    ok: false,
    reason: 'invalid_relay_request',
    message,
    httpStatus: 400,
    grpcCode: 3,
    wsCloseCode: WS_CLOSE.VALIDATION_FAILED,
  };
}

async function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
  ]);
  clearTimeout(timer);
}

/* ---------- the relay port (uWebSockets.js) ---------- */

interface UwsUserData {
  conn: GatewayConnection;
  socket?: UwsGatewaySocket;
}

/** GatewaySocket over a uWS WebSocket; every call after the close is a no-op (uWS would throw). */
class UwsGatewaySocket implements GatewaySocket {
  readonly remoteAddress: string;
  private closed = false;

  constructor(private readonly ws: UwsSocket<UwsUserData>) {
    this.remoteAddress = Buffer.from(ws.getRemoteAddressAsText()).toString();
  }

  get bufferedAmount(): number {
    return this.closed ? 0 : this.ws.getBufferedAmount();
  }

  send(data: Uint8Array, isBinary: boolean): GatewaySendResult {
    if (this.closed) return 'dropped';
    let status = 2;
    this.ws.cork(() => {
      status = this.ws.send(data, isBinary);
    });
    return status === 1 ? 'sent' : status === 0 ? 'buffered' : 'dropped';
  }

  ping(): void {
    if (!this.closed) this.ws.ping();
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.cork(() => this.ws.end(code, reason));
  }

  terminate(): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close();
  }

  /** uWS close handler ran: the socket may no longer be touched. */
  markClosed(): void {
    this.closed = true;
  }
}

/**
 * Registers the WebSocket route `/*` on the relay server's uWS app. The server registers its
 * plain-HTTP routes with `app.any('/*')`; uWS sends upgrade requests here.
 */
export function attachWebSocketBridge(
  app: TemplatedApp,
  core: RelayCore,
  opts: WebSocketBridgeOptions,
): WebSocketBridge {
  const hub = createWebSocketHub(core, opts);
  const settings = hub.settings;
  app.ws<UwsUserData>('/*', {
    // Frames up to twice the limit reach the handler and are refused with 1009; beyond that uWS
    // drops the connection itself, so a peer can never make the relayer buffer more.
    maxPayloadLength: settings.readLimitBytes * 2,
    maxBackpressure: settings.maxBufferedBytes,
    closeOnBackpressureLimit: 0,
    idleTimeout: settings.idleTimeoutSeconds,
    // The bridge pings (every pingIntervalMs); a pong resets the idle timeout.
    sendPingsAutomatically: false,
    // Everything before the upgrade runs synchronously: uWS request objects die after return.
    upgrade: (res, req, context) => {
      const headers: Record<string, string> = {};
      req.forEach((k, v) => {
        headers[k.toLowerCase()] = v;
      });
      const verdict = hub.handshake({ headers, path: req.getUrl() });
      if (!verdict.ok) {
        res
          .writeStatus(handshakeStatusText(verdict.status))
          .writeHeader('Content-Type', 'application/json')
          .end(JSON.stringify(verdict.body));
        return;
      }
      res.upgrade<UwsUserData>(
        { conn: verdict.connection },
        headers['sec-websocket-key'] ?? '',
        headers['sec-websocket-protocol'] ?? '',
        headers['sec-websocket-extensions'] ?? '',
        context,
      );
    },
    open: (ws) => {
      const data = ws.getUserData();
      data.socket = new UwsGatewaySocket(ws);
      data.conn.onOpen(data.socket);
    },
    // The ArrayBuffer is neutered when this callback returns.
    message: (ws, message, isBinary) =>
      ws.getUserData().conn.onFrame(new Uint8Array(message), isBinary, true),
    pong: (ws) => ws.getUserData().conn.onPong(),
    drain: (ws) => ws.getUserData().conn.onDrain(),
    close: (ws, code, message) => {
      const data = ws.getUserData();
      data.socket?.markClosed();
      data.conn.onClosed(code, Buffer.from(message).toString('utf8'));
    },
  });
  return {
    get connections(): number {
      return hub.connections;
    },
    closeAll: (code, reason) => hub.closeAll(code, reason),
  };
}
