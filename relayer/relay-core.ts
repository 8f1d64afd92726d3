/**
 * What every transport (HTTP, WebSocket, gRPC, gRPC-Web) does with one relay, in one place:
 * strict decode, admission (supplier gate → validation → meter, or simulated-relay admission),
 * response signing, background publishing of the mined relay, counters and in-flight tracking
 * for graceful shutdown. Transports only move bytes and map a refusal to their own status shape.
 *
 * Deliberate differences from upstream (relayer.md):
 * - Eager admission validates BEFORE metering: an invalid signature must not consume an app's
 *   budget (upstream meters first, so forged relays could exhaust a supplier's meter).
 * - A relay whose backend failed (5xx, transport error) gives its metered cost back (`unbill`).
 * - The supplier gate, validation and meter apply to WebSocket and gRPC too (upstream skipped the
 *   gate there and skipped everything on native gRPC).
 */
import type { Logger } from 'pino';
import {
  decodePoktHttpRequest,
  decodeRelayRequest,
  encodeRelayResponse,
  type pb,
  type RelayRequest,
  type RelayResponse,
  type SessionHeader,
} from '../protocol/index.js';
import type { BackendRegistry } from './backends/index.js';
import type { RelayerConfig } from './config.js';
import type { RelayerMetrics } from './metrics.js';
import type { MinedRelayInput } from './mined-relay.js';
import type { MeterDecision, MeterSession } from './relay-meter.js';
import type { SignResult } from './signer.js';
import type { GateDecision } from './supplier-gate.js';
import {
  isPlausibleSessionHeights,
  type SharedParamsAtHeightSource,
  type ValidateContext,
  type ValidationCode,
  type ValidationResult,
} from './validator.js';

export type RelayTransport = 'http' | 'websocket' | 'grpc' | 'grpc_web';

/** `reason` label of ha_relayer_relays_rejected_total. */
export type RejectReason =
  | 'read_body_error'
  | 'body_too_large'
  | 'invalid_relay_request'
  | 'unknown_service'
  | 'missing_supplier_address'
  | 'supplier_not_owned'
  | 'supplier_cache_error'
  | 'supplier_not_found'
  | 'supplier_inactive'
  | 'no_services'
  | 'wrong_service'
  | 'implausible_session_heights'
  | 'meter_error'
  | 'stake_exhausted'
  | 'validation_failed'
  | 'validation_unavailable'
  | 'backend_unavailable'
  | 'backend_5xx'
  | 'backend_timeout'
  | 'backend_network_error'
  | 'client_disconnected'
  | 'signing_error'
  | 'relay_not_recorded'
  | 'simulation_rejected'
  | 'shutting_down';

export interface RelayRefusal {
  ok: false;
  reason: RejectReason;
  message: string;
  httpStatus: number;
  /** Numeric gRPC status code. */
  grpcCode: number;
  wsCloseCode: number;
}

/** gRPC status codes used by refusals. */
export const GRPC = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

export interface AdmittedRelay {
  ok: true;
  request: RelayRequest;
  requestBytes: Uint8Array;
  header: SessionHeader;
  serviceId: string;
  supplierAddress: string;
  arrivalHeight: number;
  simulated: boolean;
  transport: RelayTransport;
  /** performance.now() at admission. */
  admittedAt: number;
  /** True once validation and the meter ran (always, except optimistic HTTP before serving). */
  checked: boolean;
  /** uPOKT consumed from the meter for this relay (0 when unmetered). */
  meterCost: bigint;
  /** Frees a simulated relay's concurrency slot; idempotent. */
  release?: () => void;
}

/* ---------- collaborators, by the shape the core needs ---------- */

export interface SupplierGateLike {
  check(supplier: string, serviceId: string, backendType: string): Promise<GateDecision>;
}
export interface RelayValidatorLike {
  validateRequest(request: RelayRequest, ctx?: ValidateContext): Promise<ValidationResult>;
}
export interface RelayMeterLike {
  consume(s: MeterSession, opts?: { failBehavior?: 'open' | 'closed' }): Promise<MeterDecision>;
  revert(s: MeterSession, cost: bigint): Promise<{ reverted: boolean; consumed: bigint }>;
}
export interface ResponseSignerLike {
  owns(address: string): boolean;
  sign(response: RelayResponse, supplierAddress: string): SignResult;
}
export interface MinedPublisherLike {
  publish(
    input: MinedRelayInput,
  ): Promise<{ ok: true; stored?: 'written' | 'buffered' } | { ok: false; code: string; reason: string }>;
}
export type SimulationVerdict =
  | { ok: true; identity: string; release(): void }
  | { ok: false; reason: string; httpStatus: number; grpcCode: number; wsCloseCode: number; message: string };
export interface SimulationLike {
  readonly enabled: boolean;
  admit(keyId: string, request: RelayRequest, transport: RelayTransport): Promise<SimulationVerdict>;
  /** Records a finished admitted simulated relay (result label, duration). */
  record(
    transport: RelayTransport,
    service: string,
    supplier: string,
    result: 'success' | 'backend_error' | 'sign_failed',
    seconds: number,
  ): void;
}
/** Block heights from Redis block events (BlockEventSubscriber satisfies it through an adapter). */
export interface HeightSource {
  readonly currentHeight: number;
  onHeight(fn: (height: number) => void): () => void;
}

/**
 * What became of a served relay on its way to the supplier stream: `written` (Redis stored it),
 * `buffered` (held in memory until Redis answers), `not_mined` (simulated or below the difficulty
 * target: correct, nothing to claim) or `refused` (not recorded; never claimed).
 */
export type MinedOutcome =
  { state: 'written' | 'buffered' | 'not_mined' } | { state: 'refused'; reason: string };

const NOT_MINED: MinedOutcome = Object.freeze({ state: 'not_mined' });
const NOT_RECORDED: ReadonlySet<string> = new Set([
  'MINE_CUPR_UNAVAILABLE',
  'MINE_PUBLISH_REFUSED',
  'MINE_WRITE_REFUSED',
]);

/** The relayer's ledger buckets (RelayerLedgerCounts satisfies it). */
export interface LedgerCountsLike {
  count(supplier: string, sessionId: string, bucket: 'below_difficulty' | 'over_serviced' | 'dropped'): void;
}

export interface RelayCoreDeps {
  config: RelayerConfig;
  backends: BackendRegistry;
  heights: HeightSource;
  gate: SupplierGateLike;
  validator: RelayValidatorLike;
  meter: RelayMeterLike;
  signer: ResponseSignerLike;
  mined: MinedPublisherLike;
  sharedParamsAtHeight: SharedParamsAtHeightSource;
  simulation?: SimulationLike;
  ledger?: LedgerCountsLike;
  log: Logger;
  metrics: RelayerMetrics;
}

export interface AdmitContext {
  transport: RelayTransport;
  /** Backend type the relay will use (jsonrpc, rest, websocket, grpc, cometbft, …). */
  rpcType: string;
  arrivalHeight: number;
  simulationKeyId?: string;
}

function refusal(
  reason: RejectReason,
  message: string,
  httpStatus: number,
  grpcCode: number,
  wsCloseCode = 4001,
): RelayRefusal {
  return { ok: false, reason, message, httpStatus, grpcCode, wsCloseCode };
}

/** The over-budget refusal (429 / ResourceExhausted / 4002). */
function exhausted(): RelayRefusal {
  return refusal(
    'stake_exhausted',
    'session relay limit reached: claimable portion fully consumed',
    429,
    GRPC.RESOURCE_EXHAUSTED,
    4002,
  );
}

const VALIDATION_REASONS: Partial<Record<ValidationCode, [RejectReason, number]>> = {
  RELAY_MALFORMED: ['invalid_relay_request', GRPC.INVALID_ARGUMENT],
  RELAY_MISSING_SESSION_HEADER: ['invalid_relay_request', GRPC.INVALID_ARGUMENT],
  RELAY_INVALID_SESSION_HEADER: ['invalid_relay_request', GRPC.INVALID_ARGUMENT],
  RELAY_MISSING_SIGNATURE: ['invalid_relay_request', GRPC.INVALID_ARGUMENT],
  RELAY_MISSING_SUPPLIER_ADDRESS: ['missing_supplier_address', GRPC.INVALID_ARGUMENT],
  SUPPLIER_NOT_OWNED: ['supplier_not_owned', GRPC.FAILED_PRECONDITION],
  SERVICE_UNKNOWN: ['unknown_service', GRPC.NOT_FOUND],
  HEIGHT_IMPLAUSIBLE: ['implausible_session_heights', GRPC.INVALID_ARGUMENT],
  RING_VERIFY_UNAVAILABLE: ['validation_unavailable', GRPC.UNAVAILABLE],
};

/** The meter's view of a relay's session. */
export function meterSessionOf(relay: AdmittedRelay): MeterSession {
  return {
    session_id: relay.header.sessionId,
    supplier: relay.supplierAddress,
    app_address: relay.header.applicationAddress,
    service_id: relay.serviceId,
    session_start_height: Number(relay.header.sessionStartBlockHeight),
    session_end_height: Number(relay.header.sessionEndBlockHeight),
  };
}

const EMPTY = new Uint8Array(0);

export class RelayCore {
  readonly config: RelayerConfig;
  readonly backends: BackendRegistry;
  readonly heights: HeightSource;
  readonly log: Logger;
  readonly metrics: RelayerMetrics;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly background = new Set<Promise<unknown>>();
  private isDraining = false;

  constructor(private readonly deps: RelayCoreDeps) {
    this.config = deps.config;
    this.backends = deps.backends;
    this.heights = deps.heights;
    this.log = deps.log.child({ component: 'relay_core' });
    this.metrics = deps.metrics;
  }

  get draining(): boolean {
    return this.isDraining;
  }

  /** Relays being handled plus background publishes not finished yet. */
  get pending(): { inFlight: number; background: number } {
    return { inFlight: this.inFlight.size, background: this.background.size };
  }

  /** Strict protobuf decode (what Go's Unmarshal refuses is refused here too). */
  decode(bytes: Uint8Array): { ok: true; request: RelayRequest } | RelayRefusal {
    if (bytes.length === 0) {
      return refusal(
        'invalid_relay_request',
        'invalid relay request: body must be a valid RelayRequest protobuf',
        400,
        GRPC.INVALID_ARGUMENT,
      );
    }
    const d = decodeRelayRequest(bytes);
    if (!d.ok) {
      return refusal(
        'invalid_relay_request',
        'invalid relay request: body must be a valid RelayRequest protobuf',
        400,
        GRPC.INVALID_ARGUMENT,
      );
    }
    return { ok: true, request: d.value };
  }

  /**
   * Decode for the HTTP family (HTTP and gRPC): the RelayRequest, its configured service and the
   * POKTHTTPRequest its payload carries, or the refusal for the first thing that is wrong.
   */
  decodeHttpFamily(
    bytes: Uint8Array,
  ):
    | { ok: true; request: RelayRequest; serviceId: string; inner: pb.sdkTypes.POKTHTTPRequest }
    | RelayRefusal {
    const decoded = this.decode(bytes);
    if (!decoded.ok) return decoded;
    const svc = this.serviceOf(decoded.request);
    if (!svc.ok) return svc;
    const inner = decodePoktHttpRequest(decoded.request.payload);
    if (!inner.ok) {
      return refusal(
        'invalid_relay_request',
        'invalid relay request: payload must be a POKTHTTPRequest',
        400,
        GRPC.INVALID_ARGUMENT,
      );
    }
    return { ok: true, request: decoded.request, serviceId: svc.serviceId, inner: inner.value };
  }

  /** The configured service of a request, or a refusal (missing header/service, unknown service). */
  serviceOf(request: RelayRequest): { ok: true; serviceId: string } | RelayRefusal {
    const serviceId = request.meta?.sessionHeader?.serviceId ?? '';
    if (serviceId === '') {
      return refusal(
        'invalid_relay_request',
        'invalid relay request: body must be a valid RelayRequest protobuf',
        400,
        GRPC.INVALID_ARGUMENT,
      );
    }
    if (this.config.services[serviceId] === undefined) {
      return refusal('unknown_service', `unknown service: ${serviceId}`, 404, GRPC.NOT_FOUND);
    }
    return { ok: true, serviceId };
  }

  /**
   * The checks that need no chain or signature work: service configured, supplier present and
   * its registry entry serving this service, session heights plausible. Optimistic HTTP serves
   * after these; everything else continues with `check()`.
   */
  async preAdmit(
    request: RelayRequest,
    requestBytes: Uint8Array,
    ctx: AdmitContext,
  ): Promise<AdmittedRelay | RelayRefusal> {
    if (this.isDraining) {
      return refusal('shutting_down', 'relayer is shutting down', 503, GRPC.UNAVAILABLE, 1001);
    }
    const svc = this.serviceOf(request);
    if (!svc.ok) return svc;
    const header = request.meta!.sessionHeader!;
    const supplierAddress = request.meta!.supplierOperatorAddress;
    if (supplierAddress === '') {
      return refusal(
        'missing_supplier_address',
        'missing supplier operator address in relay request',
        400,
        GRPC.INVALID_ARGUMENT,
      );
    }
    const base: AdmittedRelay = {
      ok: true,
      request,
      requestBytes,
      header,
      serviceId: svc.serviceId,
      supplierAddress,
      arrivalHeight: ctx.arrivalHeight,
      simulated: false,
      transport: ctx.transport,
      admittedAt: performance.now(),
      checked: false,
      meterCost: 0n,
    };
    const sim = this.deps.simulation;
    if (ctx.simulationKeyId !== undefined && sim?.enabled === true) {
      const v = await sim.admit(ctx.simulationKeyId, request, ctx.transport);
      if (!v.ok) {
        return {
          ok: false,
          reason: 'simulation_rejected',
          message: v.message,
          httpStatus: v.httpStatus,
          grpcCode: v.grpcCode,
          wsCloseCode: v.wsCloseCode,
        };
      }
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        clearTimeout(timer);
        v.release();
      };
      // A slot must come back even if a transport path forgets to finish the relay.
      const timer = setTimeout(release, 120_000);
      timer.unref();
      return { ...base, simulated: true, checked: true, release };
    }
    if (!this.deps.signer.owns(supplierAddress)) {
      return refusal(
        'supplier_not_owned',
        `supplier ${supplierAddress} is not served by this relayer`,
        403,
        GRPC.FAILED_PRECONDITION,
      );
    }
    let gate: GateDecision;
    try {
      gate = await this.deps.gate.check(supplierAddress, svc.serviceId, ctx.rpcType);
    } catch (err) {
      this.log.error({ err, supplier: supplierAddress }, 'supplier gate failed');
      return refusal('supplier_cache_error', 'failed to verify supplier state', 503, GRPC.UNAVAILABLE, 1011);
    }
    if (!gate.ok) return refusal(gate.reason, gate.message, 503, GRPC.UNAVAILABLE, 4001);
    const start = Number(header.sessionStartBlockHeight);
    const end = Number(header.sessionEndBlockHeight);
    const h = this.heights.currentHeight;
    if (!isPlausibleSessionHeights(start, end, h)) {
      return refusal(
        'implausible_session_heights',
        'implausible session heights',
        400,
        GRPC.INVALID_ARGUMENT,
      );
    }
    return base;
  }

  /** Validation then the meter for a pre-admitted relay (a no-op for simulated ones). */
  async check(relay: AdmittedRelay, ctx: AdmitContext): Promise<AdmittedRelay | RelayRefusal> {
    if (relay.checked) return relay;
    let verdict: ValidationResult;
    try {
      verdict = await this.deps.validator.validateRequest(relay.request, {
        arrivalHeight: relay.arrivalHeight,
      });
    } catch (err) {
      this.log.warn(
        { err, service_id: relay.serviceId },
        'relay could not be validated (cache or chain unavailable)',
      );
      return refusal(
        'validation_unavailable',
        'relay validation unavailable, retry later',
        503,
        GRPC.UNAVAILABLE,
        1011,
      );
    }
    if (!verdict.ok) {
      const [reason, grpcCode] = VALIDATION_REASONS[verdict.code] ?? [
        'validation_failed',
        GRPC.PERMISSION_DENIED,
      ];
      const status = reason === 'validation_failed' ? 403 : verdict.httpStatus;
      return refusal(
        reason,
        verdict.reason,
        status,
        grpcCode,
        reason === 'validation_unavailable' ? 1011 : 4001,
      );
    }
    if (verdict.inGracePeriod) {
      const last = await this.acceptUntilHeight(Number(relay.header.sessionEndBlockHeight)).catch(
        () => undefined,
      );
      if (last !== undefined && verdict.height >= last)
        this.metrics.lateRelays.inc({ service_id: relay.serviceId });
    }
    const failBehavior = ctx.transport === 'http' ? this.config.relay_meter.fail_behavior : 'open';
    const decision = await this.deps.meter.consume(meterSessionOf(relay), { failBehavior });
    if (!decision.ok) {
      if (decision.code === 'METER_EXHAUSTED') {
        return exhausted();
      }
      return refusal('meter_error', 'relay metering unavailable', 503, GRPC.UNAVAILABLE, 1011);
    }
    const meterCost = decision.code === 'METER_ALLOWED' ? decision.cost : 0n;
    return { ...relay, checked: true, meterCost };
  }

  /** preAdmit + check: everything a relay must pass before the backend sees it. */
  async admit(
    request: RelayRequest,
    requestBytes: Uint8Array,
    ctx: AdmitContext,
  ): Promise<AdmittedRelay | RelayRefusal> {
    const pre = await this.preAdmit(request, requestBytes, ctx);
    if (!pre.ok) return pre;
    return this.check(pre, ctx);
  }

  /**
   * Charges one more relay of an admitted relay's session (each WebSocket push after the first
   * answer is its own billed relay). Meter errors fail open, as everywhere on WebSocket; a refusal
   * means the session's budget is spent and the push must not be served.
   */
  async chargeAgain(relay: AdmittedRelay): Promise<RelayRefusal | undefined> {
    if (relay.simulated) return undefined;
    const decision = await this.deps.meter.consume(meterSessionOf(relay), { failBehavior: 'open' });
    if (decision.ok) return undefined;
    if (decision.code === 'METER_EXHAUSTED') {
      return exhausted();
    }
    return undefined;
  }

  /** Gives the meter back this relay's cost (it was not served). Never throws. */
  async unbill(relay: AdmittedRelay): Promise<void> {
    if (relay.simulated) this.finishSimulated(relay, 'backend_error');
    if (relay.meterCost === 0n) return;
    try {
      await this.deps.meter.revert(meterSessionOf(relay), relay.meterCost);
    } catch (err) {
      this.metrics.meterRedisErrors.inc({ operation: 'revert' });
      this.log.warn({ err, service_id: relay.serviceId }, 'meter cost of an unserved relay not given back');
    }
  }

  /** RelayResponse{session header of the request, payload} signed by the relay's supplier. */
  signResponse(
    relay: AdmittedRelay,
    payload: Uint8Array,
    relayMinerError?: RelayResponse['relayMinerError'],
  ): { ok: true; response: RelayResponse; bytes: Uint8Array } | RelayRefusal {
    const unsigned: RelayResponse = {
      meta: { sessionHeader: relay.header, supplierOperatorSignature: Buffer.alloc(0) },
      payload: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
      payloadHash: Buffer.alloc(0),
      relayMinerError,
    };
    let signed: SignResult;
    try {
      signed = this.deps.signer.sign(unsigned, relay.supplierAddress);
    } catch (err) {
      this.log.error({ err, service_id: relay.serviceId }, 'response signing failed');
      return refusal('signing_error', 'failed to sign response', 500, GRPC.INTERNAL, 1011);
    }
    if (!signed.ok) return refusal('signing_error', 'failed to sign response', 500, GRPC.INTERNAL, 1011);
    return { ok: true, response: signed.response, bytes: encodeRelayResponse(signed.response) };
  }

  /**
   * Background publishing of a served relay (mined over the raw backend body). Optimistic relays
   * are validated and metered first; a failure drops them (counted, never published).
   */
  publishMined(
    relay: AdmittedRelay,
    rawBody: Uint8Array,
    ctx?: AdmitContext,
    signedResponse?: RelayResponse,
  ): void {
    void this.mine(relay, rawBody, ctx, signedResponse, false);
  }

  /**
   * Hands a served unary relay (signed, not yet answered) to the supplier stream. With
   * `relay_streams.acknowledge: written` a checked relay is answered only once Redis stored it (or
   * holds it buffered while Redis is unreachable); when it cannot be recorded its meter cost is
   * given back and the refusal to answer instead is returned. Unchecked (optimistic), simulated
   * relays and `acknowledge: served` publish in the background and return undefined.
   */
  async settleServed(
    relay: AdmittedRelay,
    rawBody: Uint8Array,
    ctx: AdmitContext | undefined,
    signedResponse: RelayResponse,
  ): Promise<RelayRefusal | undefined> {
    if (!relay.checked || relay.simulated || this.config.relay_streams.acknowledge === 'served') {
      this.publishMined(relay, rawBody, ctx, signedResponse);
      return undefined;
    }
    const out = await this.recordMined(relay, rawBody, ctx, signedResponse);
    if (out.state !== 'refused') return undefined;
    await this.unbill(relay);
    return refusal('relay_not_recorded', 'relay could not be recorded', 503, GRPC.UNAVAILABLE, 1011);
  }

  /**
   * Publishes a served, already checked relay and resolves once Redis stored its stream entry
   * (or, while Redis is unreachable or slow, once it is buffered). `refused` means the relay is
   * not recorded and will never be claimed: the caller must not answer the client with success.
   */
  recordMined(
    relay: AdmittedRelay,
    rawBody: Uint8Array,
    ctx: AdmitContext | undefined,
    signedResponse: RelayResponse,
  ): Promise<MinedOutcome> {
    return this.mine(relay, rawBody, ctx, signedResponse, true);
  }

  private mine(
    relay: AdmittedRelay,
    rawBody: Uint8Array,
    ctx: AdmitContext | undefined,
    signedResponse: RelayResponse | undefined,
    awaitWrite: boolean,
  ): Promise<MinedOutcome> {
    if (relay.simulated) {
      this.finishSimulated(relay, 'success');
      return Promise.resolve(NOT_MINED);
    }
    const run = async (): Promise<MinedOutcome> => {
      let r = relay;
      if (!r.checked) {
        const checked = await this.check(
          r,
          ctx ?? { transport: 'http', rpcType: 'jsonrpc', arrivalHeight: r.arrivalHeight },
        );
        if (!checked.ok) {
          const reason =
            checked.reason === 'stake_exhausted' || checked.reason === 'meter_error'
              ? checked.reason
              : 'validation_failed';
          this.metrics.relaysDropped.inc({ service_id: r.serviceId, reason });
          this.deps.ledger?.count(
            r.supplierAddress,
            r.header.sessionId,
            reason === 'stake_exhausted' ? 'over_serviced' : 'dropped',
          );
          this.log.debug(
            { service_id: r.serviceId, reason, detail: checked.message },
            'served relay dropped',
          );
          return { state: 'refused', reason: checked.message };
        }
        r = checked;
      }
      const out = await this.deps.mined.publish({
        request: r.request,
        rawBody: rawBody.length === 0 ? EMPTY : rawBody,
        supplierAddress: r.supplierAddress,
        arrivalHeight: r.arrivalHeight,
        ...(signedResponse !== undefined ? { signedResponse } : {}),
        ...(awaitWrite ? { awaitWrite } : {}),
      });
      if (out.ok) {
        this.metrics.relaysPublished.inc({ service_id: r.serviceId });
        return { state: out.stored ?? 'buffered' };
      }
      const below = out.code === 'MINE_BELOW_DIFFICULTY';
      this.deps.ledger?.count(r.supplierAddress, r.header.sessionId, below ? 'below_difficulty' : 'dropped');
      // Relays the protocol does not mine (below the difficulty, empty backend body) were still
      // served correctly; only a relay that should be in the stream and is not is refused.
      if (!NOT_RECORDED.has(out.code)) return NOT_MINED;
      if (out.code === 'MINE_WRITE_REFUSED') {
        this.log.error(
          { service_id: r.serviceId, detail: out.reason },
          'redis refused to store a mined relay; the client is told it was not served',
        );
      }
      return { state: 'refused', reason: out.reason };
    };
    const p = run().catch((err: unknown): MinedOutcome => {
      this.metrics.relaysDropped.inc({ service_id: relay.serviceId, reason: 'publish_error' });
      this.deps.ledger?.count(relay.supplierAddress, relay.header.sessionId, 'dropped');
      this.log.error({ err, service_id: relay.serviceId }, 'mined relay not published');
      return { state: 'refused', reason: (err as Error).message };
    });
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
    return p;
  }

  private finishSimulated(relay: AdmittedRelay, result: 'success' | 'backend_error'): void {
    relay.release?.();
    this.deps.simulation?.record(
      relay.transport,
      relay.serviceId,
      relay.supplierAddress,
      result,
      (performance.now() - relay.admittedAt) / 1000,
    );
  }

  /** Last height at which relays of a session ending at `end` are accepted (end + grace). */
  async acceptUntilHeight(sessionEndHeight: number): Promise<number> {
    const params = await this.deps.sharedParamsAtHeight.get(sessionEndHeight);
    const grace = params === undefined ? 0 : Number(params.gracePeriodEndOffsetBlocks);
    return sessionEndHeight + grace;
  }

  onHeight(fn: (height: number) => void): () => void {
    return this.heights.onHeight(fn);
  }

  countReceived(serviceId: string, rpcType: string): void {
    this.metrics.relaysReceived.inc({ service_id: serviceId, rpc_type: rpcType });
  }

  countServed(serviceId: string, rpcType: string, status: number): void {
    this.metrics.relaysServed.inc({ service_id: serviceId, rpc_type: rpcType, status_code: String(status) });
  }

  countRejected(r: RelayRefusal, serviceId = ''): void {
    this.metrics.relaysRejected.inc({ service_id: serviceId, reason: r.reason });
  }

  /** Counts a relay as in flight until `p` settles (graceful shutdown waits for these). */
  track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    this.metrics.inFlight.set(this.inFlight.size);
    void p
      .catch(() => undefined)
      .finally(() => {
        this.inFlight.delete(p);
        this.metrics.inFlight.set(this.inFlight.size);
      });
    return p;
  }

  /**
   * Stops admitting relays, then waits up to `timeoutMs` for in-flight relays and their
   * background publishes. Returns what was still pending at the deadline.
   */
  async drain(timeoutMs: number): Promise<{ inFlight: number; background: number }> {
    this.isDraining = true;
    const deadline = Date.now() + timeoutMs;
    while ((this.inFlight.size > 0 || this.background.size > 0) && Date.now() < deadline) {
      const all = [...this.inFlight, ...this.background].map((p) => p.catch(() => undefined));
      let t: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(all),
        new Promise((res) => (t = setTimeout(res, deadline - Date.now()))),
      ]);
      clearTimeout(t);
    }
    return this.pending;
  }
}
