/**
 * Simulated-relay admission (relayer.md §9): relays signed by an identity pinned in configuration
 * (an application key plus its gateway keys), served through the normal data path but never
 * metered or published. Health checkers use them to probe a supplier end to end without an
 * on-chain session.
 *
 * Admission runs in the spec's order and stops at the first refusal: concurrency slot → identity
 * → supplier → ValidateBasic → application address → service → session-id freshness → replay
 * guard (Redis, shared by the fleet) → ring signature against the pinned ring → per-identity
 * token bucket. Refusals are values carrying their HTTP status, gRPC code and WebSocket close
 * code; only a failing ring verifier call or a caller bug throws.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';
import { ConfigError, IssueList } from '../core/config/index.js';
import { InvalidInputError, hexToBytes } from '../core/index.js';
import {
  addressFromPublicKey,
  isCompressedPublicKey,
  isPlaceholderPublicKey,
  relayRequestSignableHash,
  type RelayRequest,
} from '../protocol/index.js';
import { expectedRingAddresses } from '../rings/index.js';
import type { KeyBuilder } from '../transport/index.js';
import { relayRequestBasicProblem } from './relay-basic.js';
import type { RingVerifier, SupplierOwnership } from './validator.js';

/** One pinned identity (`simulation.identities[]`), keys as in the YAML. */
export interface SimulationIdentityConfig {
  readonly key_id: string;
  readonly enabled: boolean;
  /** RFC 3339; absent = never expires. */
  readonly not_after?: string | undefined;
  readonly max_rps: number;
  readonly app_pubkey_hex: string;
  readonly gateway_pubkeys_hex: readonly string[];
  /** Empty = every configured service. */
  readonly allowed_services: readonly string[];
}

/** Section `simulation` of the relayer config (RelayerConfig['simulation'] satisfies it). */
export interface SimulationConfig {
  readonly enabled: boolean;
  readonly max_concurrent: number;
  readonly freshness_window_seconds: number;
  readonly identities: readonly SimulationIdentityConfig[];
}

export type SimTransport = 'http' | 'websocket' | 'grpc' | 'grpc_web';

export type SimRejectCode =
  | 'SIM_CONCURRENCY_LIMIT'
  | 'SIM_UNKNOWN_KEY_ID'
  | 'SIM_IDENTITY_DISABLED'
  | 'SIM_IDENTITY_EXPIRED'
  | 'SIM_SUPPLIER_MISSING'
  | 'SIM_SUPPLIER_NOT_LOADED'
  | 'SIM_INVALID_REQUEST'
  | 'SIM_IDENTITY_MISMATCH'
  | 'SIM_SERVICE_UNKNOWN'
  | 'SIM_SERVICE_NOT_ALLOWED'
  | 'SIM_BAD_SESSION_ID'
  | 'SIM_STALE'
  | 'SIM_REPLAY'
  | 'SIM_DEDUP_UNAVAILABLE'
  | 'SIM_BAD_SIGNATURE'
  | 'SIM_VERIFY_UNAVAILABLE'
  | 'SIM_RATE_LIMITED';

/** Values of the `result` label of `ha_relayer_simulated_relays_total` (upstream's set). */
export type SimResult =
  | 'success'
  | 'meter_degraded'
  | 'rate_limited'
  | 'verify_failed'
  | 'replay_rejected'
  | 'identity_mismatch'
  | 'service_unknown'
  | 'service_not_allowed'
  | 'supplier_not_loaded'
  | 'sign_failed'
  | 'backend_error'
  | 'dedup_unavailable';

export interface SimAdmitted {
  ok: true;
  /** The key_id of the identity that signed. */
  identity: string;
  serviceId: string;
  supplierAddress: string;
  /** Frees the concurrency slot; later calls do nothing. */
  release(): void;
}

export interface SimRefusal {
  ok: false;
  code: SimRejectCode;
  /** Metric label the refusal was counted under. */
  result: SimResult;
  reason: string;
  httpStatus: 400 | 403 | 404 | 409 | 429 | 503;
  grpcCode: number;
  wsCloseCode: 4001 | 1013;
  /** `simulation rejected: <reason>`, the error body / status message / close reason. */
  message: string;
}

export type SimAdmission = SimAdmitted | SimRefusal;

/** gRPC status codes used by the refusals. */
const GRPC = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNAVAILABLE: 14,
} as const;

/** Close code for every admission refusal except the two limits. */
const WS_REJECTED = 4001;
/** "Try again later": concurrency or rate limit. */
const WS_TRY_LATER = 1013;

type RefusalShape = Pick<SimRefusal, 'result' | 'httpStatus' | 'grpcCode' | 'wsCloseCode'>;

const FORBIDDEN: Omit<RefusalShape, 'result'> = {
  httpStatus: 403,
  grpcCode: GRPC.PERMISSION_DENIED,
  wsCloseCode: WS_REJECTED,
};
const LIMITED: RefusalShape = {
  result: 'rate_limited',
  httpStatus: 429,
  grpcCode: GRPC.RESOURCE_EXHAUSTED,
  wsCloseCode: WS_TRY_LATER,
};

const REFUSALS: Readonly<Record<SimRejectCode, RefusalShape>> = {
  SIM_CONCURRENCY_LIMIT: LIMITED,
  SIM_RATE_LIMITED: LIMITED,
  SIM_UNKNOWN_KEY_ID: { ...FORBIDDEN, result: 'verify_failed' },
  SIM_IDENTITY_DISABLED: { ...FORBIDDEN, result: 'verify_failed' },
  SIM_IDENTITY_EXPIRED: { ...FORBIDDEN, result: 'verify_failed' },
  SIM_SUPPLIER_MISSING: {
    result: 'supplier_not_loaded',
    httpStatus: 400,
    grpcCode: GRPC.INVALID_ARGUMENT,
    wsCloseCode: WS_REJECTED,
  },
  SIM_SUPPLIER_NOT_LOADED: { ...FORBIDDEN, result: 'supplier_not_loaded' },
  SIM_INVALID_REQUEST: { ...FORBIDDEN, result: 'verify_failed' },
  SIM_IDENTITY_MISMATCH: { ...FORBIDDEN, result: 'identity_mismatch' },
  SIM_SERVICE_UNKNOWN: {
    result: 'service_unknown',
    httpStatus: 404,
    grpcCode: GRPC.NOT_FOUND,
    wsCloseCode: WS_REJECTED,
  },
  SIM_SERVICE_NOT_ALLOWED: { ...FORBIDDEN, result: 'service_not_allowed' },
  SIM_BAD_SESSION_ID: {
    result: 'verify_failed',
    httpStatus: 400,
    grpcCode: GRPC.INVALID_ARGUMENT,
    wsCloseCode: WS_REJECTED,
  },
  SIM_STALE: { ...FORBIDDEN, result: 'verify_failed' },
  SIM_REPLAY: {
    result: 'replay_rejected',
    httpStatus: 409,
    grpcCode: GRPC.ALREADY_EXISTS,
    wsCloseCode: WS_REJECTED,
  },
  SIM_DEDUP_UNAVAILABLE: {
    result: 'dedup_unavailable',
    httpStatus: 503,
    grpcCode: GRPC.UNAVAILABLE,
    wsCloseCode: WS_REJECTED,
  },
  SIM_BAD_SIGNATURE: { ...FORBIDDEN, result: 'verify_failed' },
  // The signature was not judged (verify pool down or saturated): a server error, not a verdict.
  SIM_VERIFY_UNAVAILABLE: {
    result: 'verify_failed',
    httpStatus: 503,
    grpcCode: GRPC.UNAVAILABLE,
    wsCloseCode: WS_REJECTED,
  },
};

/** The refusal value of `code` with its status map (§9). */
export function simRefusal(code: SimRejectCode, reason: string): SimRefusal {
  return { ok: false, code, ...REFUSALS[code], reason, message: `simulation rejected: ${reason}` };
}

const SESSION_ID_RE = /^simv1:(\d{1,15}):([0-9a-fA-F]+)$/;

/** `simv1:<unix seconds>:<nonce hex>` → the unix seconds, or undefined when malformed. */
export function parseSimSessionId(sessionId: string): number | undefined {
  const m = SESSION_ID_RE.exec(sessionId);
  return m === null ? undefined : Number(m[1]);
}

/** The synthetic session id a simulated relay carries. */
export function formatSimSessionId(unixSeconds: number, nonceHex: string): string {
  const id = `simv1:${unixSeconds}:${nonceHex}`;
  if (!Number.isSafeInteger(unixSeconds) || parseSimSessionId(id) === undefined) {
    throw new InvalidInputError(
      'simulated session id',
      `must be simv1:<unix seconds>:<nonce hex>, got ${id}`,
    );
  }
  return id;
}

/**
 * Problem with a pinned public key, or undefined: it must be a 33-byte compressed point on the
 * curve and must not be the ring placeholder key (whose private key is public).
 */
export function pinnedKeyProblem(hex: string): string | undefined {
  if (!/^[0-9a-fA-F]{66}$/.test(hex)) return 'must be a 33-byte compressed secp256k1 public key in hex';
  const key = hexToBytes(hex);
  if (!isCompressedPublicKey(key)) return 'is not a compressed secp256k1 point on the curve';
  if (isPlaceholderPublicKey(key)) {
    return 'is the well-known ring placeholder key, whose private key is public; pin a key of your own';
  }
  return undefined;
}

/**
 * The §9 configuration checks (only when `enabled`): identities required, unique key_id, keys
 * valid and not the placeholder, at least one gateway key, a parseable not_after, allowed
 * services configured. `services` = the configured service ids.
 */
export function checkSimulationConfig(
  sim: SimulationConfig,
  services: readonly string[],
  issues: IssueList,
): void {
  if (!sim.enabled) return;
  if (sim.identities.length === 0) {
    issues.add(
      'simulation.identities',
      'simulation is enabled but no identities are pinned; add one or disable simulation',
    );
  }
  const known = new Set(services);
  const seen = new Set<string>();
  sim.identities.forEach((idn, i) => {
    const ip = `simulation.identities[${i}]`;
    if (idn.key_id === '') issues.add(`${ip}.key_id`, 'key_id is required');
    else if (seen.has(idn.key_id)) issues.add(`${ip}.key_id`, `duplicate key_id '${idn.key_id}'`);
    seen.add(idn.key_id);
    const appProblem = pinnedKeyProblem(idn.app_pubkey_hex);
    if (appProblem !== undefined) issues.add(`${ip}.app_pubkey_hex`, appProblem);
    if (idn.gateway_pubkeys_hex.length === 0) {
      issues.add(`${ip}.gateway_pubkeys_hex`, 'at least one gateway public key is required');
    }
    idn.gateway_pubkeys_hex.forEach((k, j) => {
      const problem = pinnedKeyProblem(k);
      if (problem !== undefined) issues.add(`${ip}.gateway_pubkeys_hex[${j}]`, problem);
    });
    if (idn.not_after !== undefined && Number.isNaN(Date.parse(idn.not_after))) {
      issues.add(`${ip}.not_after`, 'must be an RFC 3339 timestamp, e.g. 2027-01-01T00:00:00Z');
    }
    if (!Number.isInteger(idn.max_rps) || idn.max_rps <= 0) issues.add(`${ip}.max_rps`, 'must be > 0');
    for (const s of idn.allowed_services) {
      if (!known.has(s)) issues.add(`${ip}.allowed_services`, `service '${s}' is not configured`);
    }
  });
}

/** Token bucket of one identity: `rate` tokens per second, holding at most `rate`. */
class TokenBucket {
  private tokens: number;

  constructor(
    private readonly rate: number,
    private lastMs: number,
  ) {
    this.tokens = rate;
  }

  take(nowMs: number): boolean {
    const elapsedMs = nowMs - this.lastMs;
    if (elapsedMs > 0) {
      this.tokens = Math.min(this.rate, this.tokens + (elapsedMs / 1000) * this.rate);
      this.lastMs = nowMs;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** An identity resolved once at start-up. */
interface PinnedIdentity {
  readonly keyId: string;
  readonly enabled: boolean;
  /** Epoch ms; undefined = never expires. */
  readonly notAfterMs: number | undefined;
  readonly appAddress: string;
  /** [app, gateways…] in the order the chain builds a ring: sorted by address, de-duplicated. */
  readonly ring: readonly Uint8Array[];
  /** Empty = every configured service. */
  readonly allowedServices: ReadonlySet<string>;
  readonly bucket: TokenBucket;
}

/** The pinned ring ordered as rings/ring.ts orders an on-chain ring. */
function pinnedRing(appKey: Uint8Array, gatewayKeys: readonly Uint8Array[]): Uint8Array[] {
  const byAddress = new Map<string, Uint8Array>();
  const appAddress = addressFromPublicKey(appKey);
  byAddress.set(appAddress, appKey);
  const gateways: string[] = [];
  for (const key of gatewayKeys) {
    const address = addressFromPublicKey(key);
    byAddress.set(address, key);
    gateways.push(address);
  }
  const ordered = expectedRingAddresses(
    appAddress,
    { delegateeGatewayAddresses: gateways, pendingUndelegations: new Map() },
    0,
  );
  return [...new Set(ordered)].map((a) => byAddress.get(a)!);
}

export interface SimulationAdmissionDeps {
  config: SimulationConfig;
  /** Service ids configured on this relayer. */
  services: readonly string[];
  suppliers: SupplierOwnership;
  redis: Redis;
  keys: KeyBuilder;
  verifier: RingVerifier;
  registry: Registry;
  log: Logger;
  /** Milliseconds clock (not_after, freshness, token buckets); Date.now when absent. */
  nowMs?: () => number;
}

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Label value for a service or supplier the request named but this relayer does not have. */
const UNKNOWN_LABEL = 'unknown';

type Verdict =
  | { ok: true; identity: PinnedIdentity; serviceId: string; supplierAddress: string }
  | { ok: false; code: SimRejectCode; reason: string };

function no(code: SimRejectCode, reason: string): Verdict {
  return { ok: false, code, reason };
}

export class SimulationAdmission {
  private readonly cfg: SimulationConfig;
  private readonly services: ReadonlySet<string>;
  private readonly identities = new Map<string, PinnedIdentity>();
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly relays: Counter<'transport' | 'service' | 'supplier' | 'result'>;
  private readonly duration: Histogram<'transport' | 'service'>;
  private slotsInUse = 0;

  /** Throws ConfigError when simulation is enabled and its section fails the §9 checks. */
  constructor(private readonly deps: SimulationAdmissionDeps) {
    this.cfg = deps.config;
    this.services = new Set(deps.services);
    this.now = deps.nowMs ?? Date.now;
    this.log = deps.log.child({ component: 'simulation' });
    const registers = [deps.registry];
    this.relays = new Counter({
      name: 'ha_relayer_simulated_relays_total',
      help: 'Simulated relays by transport, service, supplier and result; real-relay series never count them',
      labelNames: ['transport', 'service', 'supplier', 'result'],
      registers,
    });
    this.duration = new Histogram({
      name: 'ha_relayer_simulated_relay_duration_seconds',
      help: 'End-to-end duration of admitted simulated relays',
      labelNames: ['transport', 'service'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    if (!this.cfg.enabled) return;

    const issues = new IssueList();
    checkSimulationConfig(this.cfg, deps.services, issues);
    if (issues.items.length > 0) throw new ConfigError('simulation', issues.items);
    const startMs = this.now();
    for (const idn of this.cfg.identities) {
      const appKey = hexToBytes(idn.app_pubkey_hex);
      const notAfterMs = idn.not_after === undefined ? undefined : Date.parse(idn.not_after);
      this.identities.set(idn.key_id, {
        keyId: idn.key_id,
        enabled: idn.enabled,
        notAfterMs,
        appAddress: addressFromPublicKey(appKey),
        ring: pinnedRing(
          appKey,
          idn.gateway_pubkeys_hex.map((k) => hexToBytes(k)),
        ),
        allowedServices: new Set(idn.allowed_services),
        bucket: new TokenBucket(idn.max_rps, startMs),
      });
      if (notAfterMs !== undefined && startMs > notAfterMs) {
        this.log.warn(
          { key_id: idn.key_id, not_after: idn.not_after },
          'simulation identity has expired; its relays will be refused',
        );
      }
    }
    this.log.info(
      { identities: this.identities.size, max_concurrent: this.cfg.max_concurrent },
      'simulated relays enabled',
    );
  }

  /** True when the transports should honour the simulation header at all. */
  get enabled(): boolean {
    return this.cfg.enabled;
  }

  /** Concurrency slots held by admitted relays not yet released. */
  get inFlight(): number {
    return this.slotsInUse;
  }

  /**
   * Admits or refuses one simulated relay (`keyId` from the simulation header, `request` already
   * decoded). An admitted relay holds a concurrency slot until `release()`. Refusals are counted
   * here; the transport calls `record` only for admitted relays. With simulation disabled no
   * identity is loaded, so everything is refused as an unknown key id.
   */
  async admit(keyId: string, request: RelayRequest, transport: SimTransport): Promise<SimAdmission> {
    if (this.slotsInUse >= this.cfg.max_concurrent) {
      return this.refuse(keyId, request, transport, 'SIM_CONCURRENCY_LIMIT', 'concurrency limit reached');
    }
    this.slotsInUse++;
    let held = true;
    const release = (): void => {
      if (!held) return;
      held = false;
      this.slotsInUse--;
    };
    let verdict: Verdict;
    try {
      verdict = await this.check(keyId, request);
    } catch (err) {
      release();
      throw err;
    }
    if (!verdict.ok) {
      release();
      return this.refuse(keyId, request, transport, verdict.code, verdict.reason);
    }
    return {
      ok: true,
      identity: verdict.identity.keyId,
      serviceId: verdict.serviceId,
      supplierAddress: verdict.supplierAddress,
      release,
    };
  }

  /** The non-mutating meter probe's Redis half: true when PING answers. */
  async probeMeter(): Promise<boolean> {
    try {
      return (await this.deps.redis.ping()) === 'PONG';
    } catch (err) {
      this.log.debug({ err }, 'simulation meter probe: redis ping failed');
      return false;
    }
  }

  /** Counts a finished admitted relay and observes its duration. */
  record(
    transport: SimTransport,
    service: string,
    supplier: string,
    result: SimResult,
    seconds: number,
  ): void {
    this.relays.inc({ transport, service, supplier, result });
    this.duration.observe({ transport, service }, seconds);
  }

  private async check(keyId: string, request: RelayRequest): Promise<Verdict> {
    const nowMs = this.now();

    const identity = this.identities.get(keyId);
    if (identity === undefined) return no('SIM_UNKNOWN_KEY_ID', 'unknown key id');
    if (!identity.enabled) return no('SIM_IDENTITY_DISABLED', 'identity is disabled');
    if (identity.notAfterMs !== undefined && nowMs > identity.notAfterMs) {
      return no('SIM_IDENTITY_EXPIRED', 'identity has expired (not_after)');
    }

    const meta = request.meta;
    const supplierAddress = meta?.supplierOperatorAddress ?? '';
    if (supplierAddress === '') return no('SIM_SUPPLIER_MISSING', 'no supplier operator address');
    if (!this.deps.suppliers.owns(supplierAddress)) {
      return no('SIM_SUPPLIER_NOT_LOADED', 'supplier key is not loaded on this relayer');
    }

    const basic = relayRequestBasicProblem(request);
    if (basic !== undefined) return no('SIM_INVALID_REQUEST', `invalid relay request: ${basic.reason}`);
    // ValidateBasic guarantees both.
    const header = meta!.sessionHeader!;

    if (header.applicationAddress !== identity.appAddress) {
      return no('SIM_IDENTITY_MISMATCH', 'application address does not match the pinned identity');
    }
    const serviceId = header.serviceId;
    if (!this.services.has(serviceId)) {
      return no('SIM_SERVICE_UNKNOWN', 'service is not configured on this relayer');
    }
    if (identity.allowedServices.size > 0 && !identity.allowedServices.has(serviceId)) {
      return no('SIM_SERVICE_NOT_ALLOWED', 'service is not allowed for this identity');
    }

    const ts = parseSimSessionId(header.sessionId);
    if (ts === undefined) {
      return no('SIM_BAD_SESSION_ID', 'session id is not simv1:<unix seconds>:<nonce hex>');
    }
    const window = this.cfg.freshness_window_seconds;
    if (Math.abs(Math.floor(nowMs / 1000) - ts) >= window) {
      return no('SIM_STALE', `session timestamp is not within ${window}s of the relayer clock`);
    }

    const signature = meta!.signature;
    const replayKey = this.deps.keys.simulationReplayKey(
      createHash('sha256').update(signature).digest('hex'),
    );
    let first: string | null;
    try {
      first = await this.deps.redis.set(replayKey, '1', 'EX', 2 * window, 'NX');
    } catch (err) {
      this.log.debug({ err }, 'simulation replay guard: redis unavailable');
      return no('SIM_DEDUP_UNAVAILABLE', 'replay guard store unavailable');
    }
    if (first === null) return no('SIM_REPLAY', 'signature already seen (replay)');

    const verdict = await this.deps.verifier.verify(
      signature,
      relayRequestSignableHash(request),
      identity.ring,
    );
    if (!verdict.ok) {
      return verdict.code === 'RING_VERIFY_UNAVAILABLE'
        ? no('SIM_VERIFY_UNAVAILABLE', `ring signature not checked: ${verdict.reason}`)
        : no(
            'SIM_BAD_SIGNATURE',
            `ring signature does not verify against the pinned ring: ${verdict.reason}`,
          );
    }

    if (!identity.bucket.take(nowMs)) return no('SIM_RATE_LIMITED', 'rate limit reached');
    return { ok: true, identity, serviceId, supplierAddress };
  }

  private refuse(
    keyId: string,
    request: RelayRequest,
    transport: SimTransport,
    code: SimRejectCode,
    reason: string,
  ): SimRefusal {
    const refusal = simRefusal(code, reason);
    const service = request.meta?.sessionHeader?.serviceId ?? '';
    const supplier = request.meta?.supplierOperatorAddress ?? '';
    this.relays.inc({
      transport,
      service: this.services.has(service) ? service : UNKNOWN_LABEL,
      supplier: supplier !== '' && this.deps.suppliers.owns(supplier) ? supplier : UNKNOWN_LABEL,
      result: refusal.result,
    });
    this.log.debug({ key_id: keyId, transport, code, reason }, 'simulated relay refused');
    return refusal;
  }
}
