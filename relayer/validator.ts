/**
 * Relay request validation (relayer.md §4), in the spec's order: basic well-formedness, supplier
 * allow-list, service configured, height plausibility (§4.1), target session height and grace
 * period (§4.2), ring signature (relay-protocol.md §4), session lookup, field-by-field header
 * comparison, supplier in session. Expected rejections are values; faults of the caches (Redis or
 * chain unreachable) propagate as exceptions for the caller to answer with a server error.
 */
import { isRetryable } from '../core/index.js';
import { decodeRelayRequest, relayRequestSignableHash, type RelayRequest } from '../protocol/index.js';
import type { PoolVerifyResult, RingLookupResult } from '../rings/index.js';
import type { Session, SessionArgs, SharedParams } from '../cache/index.js';
import { SharedParamsUnavailableError } from './errors.js';
import { relayRequestBasicProblem } from './relay-basic.js';

/** Widest session span and distance from the current height accepted before any lookup. */
export const MAX_PLAUSIBLE_SESSION_SPAN_BLOCKS = 10_000;

export type ValidationCode =
  | 'RELAY_MALFORMED'
  | 'RELAY_MISSING_SESSION_HEADER'
  | 'RELAY_INVALID_SESSION_HEADER'
  | 'RELAY_MISSING_SIGNATURE'
  | 'RELAY_MISSING_SUPPLIER_ADDRESS'
  | 'SUPPLIER_NOT_OWNED'
  | 'SERVICE_UNKNOWN'
  | 'HEIGHT_IMPLAUSIBLE'
  | 'SESSION_EXPIRED'
  | 'RING_APP_NOT_FOUND'
  | 'RING_UNRESOLVABLE'
  | 'RING_SIG_MALFORMED'
  | 'RING_SIG_NOT_MEMBER'
  | 'RING_SIG_INVALID'
  | 'RING_VERIFY_UNAVAILABLE'
  | 'SESSION_NOT_FOUND'
  | 'SESSION_MISMATCH'
  | 'SUPPLIER_NOT_IN_SESSION';

export interface ValidationRejection {
  ok: false;
  code: ValidationCode;
  reason: string;
  httpStatus: number;
}

export interface ValidatedRelay {
  ok: true;
  request: RelayRequest;
  /** The on-chain session the request's header matched. */
  session: Session;
  supplierAddress: string;
  serviceId: string;
  /** Height the checks ran against (0 = no block seen yet). */
  height: number;
  /** The caller's pinned arrival height, or `height` when none was given. */
  arrivalHeight: number;
  /** Height the session was looked up at: its start while active, its end in the grace period. */
  lookupHeight: number;
  /** True when the session had ended and the relay was accepted in the grace period. */
  inGracePeriod: boolean;
}

export type ValidationResult = ValidatedRelay | ValidationRejection;

/** Current block height from block events (BlockEventSubscriber satisfies it). */
export interface HeightProvider {
  readonly currentHeight: number;
}
/** Point-in-time shared params (ChainCaches.sharedParamsAtHeight satisfies it). */
export interface SharedParamsAtHeightSource {
  get(height: number): Promise<SharedParams | undefined>;
}
/** Sessions by (app, service, height) (ChainCaches.sessions satisfies it). */
export interface SessionSource {
  get(args: SessionArgs): Promise<Session | undefined>;
}
/** Expected ring of an app for a session end height (rings.RingCache satisfies it). */
export interface ExpectedRingSource {
  get(appAddress: string, sessionEndHeight: number | bigint): Promise<RingLookupResult<unknown>>;
}
/** Ring signature verification (rings.RingVerifyPool satisfies it). */
export interface RingVerifier {
  verify(
    signature: Uint8Array,
    message32: Uint8Array,
    ringPublicKeys: readonly Uint8Array[],
  ): Promise<PoolVerifyResult>;
}
/** Which supplier keys this relayer holds (RelaySigner satisfies it). */
export interface SupplierOwnership {
  owns(address: string): boolean;
  readonly addresses: readonly string[];
}

export interface RelayValidatorDeps {
  heights: HeightProvider;
  sharedParamsAtHeight: SharedParamsAtHeightSource;
  sessions: SessionSource;
  rings: ExpectedRingSource;
  verifier: RingVerifier;
  suppliers: SupplierOwnership;
}

export interface RelayValidatorConfig {
  /** Service IDs configured locally. */
  services: readonly string[];
}

export interface ValidateContext {
  /**
   * Height the transport pinned when the relay arrived, echoed in the result for the meter and
   * the published relay. The checks themselves always use the provider's current height, as
   * upstream does: a WebSocket pins its arrival height once per connection and would drift.
   */
  arrivalHeight?: number;
}

function reject(code: ValidationCode, reason: string, httpStatus = 403): ValidationRejection {
  return { ok: false, code, reason, httpStatus };
}

/** relayer.md §4.1; `h ≤ 0` skips the two window checks. */
export function isPlausibleSessionHeights(start: number, end: number, h: number): boolean {
  const span = MAX_PLAUSIBLE_SESSION_SPAN_BLOCKS;
  if (start < 1 || end <= start || end - start > span) return false;
  if (h > 0 && (start > h + span || end < h - span)) return false;
  return true;
}

export class RelayValidator {
  private readonly services: ReadonlySet<string>;

  constructor(
    private readonly deps: RelayValidatorDeps,
    cfg: RelayValidatorConfig,
  ) {
    this.services = new Set(cfg.services);
  }

  async validate(requestBytes: Uint8Array, ctx: ValidateContext = {}): Promise<ValidationResult> {
    const decoded = decodeRelayRequest(requestBytes);
    if (!decoded.ok) return reject('RELAY_MALFORMED', `invalid relay request: ${decoded.reason}`, 400);
    return this.validateRequest(decoded.value, ctx);
  }

  /** The same checks on a request the transport already decoded strictly. */
  async validateRequest(request: RelayRequest, ctx: ValidateContext = {}): Promise<ValidationResult> {
    // 1. ValidateBasic
    const basic = relayRequestBasicProblem(request);
    if (basic !== undefined) return reject(basic.code, basic.reason, 400);
    const meta = request.meta!;
    const header = meta.sessionHeader!;
    const supplierAddress = meta.supplierOperatorAddress;

    // 2. supplier allow-list (skipped when no key is loaded, as upstream)
    if (!this.deps.suppliers.owns(supplierAddress) && this.deps.suppliers.addresses.length > 0) {
      return reject('SUPPLIER_NOT_OWNED', `supplier ${supplierAddress} is not served by this relayer`);
    }
    const serviceId = header.serviceId;
    if (!this.services.has(serviceId)) return reject('SERVICE_UNKNOWN', `unknown service: ${serviceId}`, 404);

    // 3. height plausibility
    const h = this.deps.heights.currentHeight;
    const start = Number(header.sessionStartBlockHeight);
    const end = Number(header.sessionEndBlockHeight);
    if (!isPlausibleSessionHeights(start, end, h)) {
      return reject(
        'HEIGHT_IMPLAUSIBLE',
        `implausible session heights [${start}, ${end}] at height ${h}`,
        400,
      );
    }

    // 4. target session height
    let lookupHeight = start;
    let inGracePeriod = false;
    if (h > 0 && end < h) {
      const params = await this.deps.sharedParamsAtHeight.get(end);
      if (params === undefined) throw new SharedParamsUnavailableError(end);
      const grace = Number(params.gracePeriodEndOffsetBlocks);
      if (h > end + grace) {
        return reject(
          'SESSION_EXPIRED',
          `session expired: ended at ${end}, grace ${grace} blocks, current height ${h} (grace period elapsed)`,
        );
      }
      lookupHeight = end;
      inGracePeriod = true;
    }

    // 5. ring signature
    const app = header.applicationAddress;
    const ring = await this.deps.rings.get(app, end);
    if (!ring.ok) {
      return ring.code === 'RING_APP_NOT_FOUND'
        ? reject('RING_APP_NOT_FOUND', ring.reason)
        : reject('RING_UNRESOLVABLE', `expected ring of ${app}: ${ring.reason}`);
    }
    const verdict = await this.deps.verifier.verify(
      meta.signature,
      relayRequestSignableHash(request),
      ring.ring.publicKeys,
    );
    if (!verdict.ok) {
      switch (verdict.code) {
        case 'RING_VERIFY_UNAVAILABLE':
          return reject('RING_VERIFY_UNAVAILABLE', verdict.reason, 503);
        case 'RING_SIG_NOT_MEMBER':
          return reject('RING_SIG_NOT_MEMBER', `ring signature invalid: ${verdict.reason}`);
        case 'RING_SIG_INVALID':
          return reject('RING_SIG_INVALID', `ring signature invalid: ${verdict.reason}`);
        default:
          return reject('RING_SIG_MALFORMED', `ring signature malformed: ${verdict.reason}`);
      }
    }

    // 6. session lookup
    let session: Session | undefined;
    try {
      session = await this.deps.sessions.get({ appAddress: app, serviceId, height: lookupHeight });
    } catch (err) {
      if (isRetryable(err)) throw err;
      return reject(
        'SESSION_NOT_FOUND',
        `no session for ${app}/${serviceId} at ${lookupHeight}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    if (session?.header === undefined) {
      return reject('SESSION_NOT_FOUND', `no session for ${app}/${serviceId} at ${lookupHeight}`);
    }

    // 7. field-by-field header comparison
    const onChain = session.header;
    const mismatch =
      onChain.applicationAddress !== header.applicationAddress
        ? 'application address'
        : onChain.serviceId !== header.serviceId
          ? 'service id'
          : onChain.sessionStartBlockHeight !== header.sessionStartBlockHeight
            ? 'session start height'
            : onChain.sessionEndBlockHeight !== header.sessionEndBlockHeight
              ? 'session end height'
              : onChain.sessionId !== header.sessionId
                ? 'session id'
                : undefined;
    if (mismatch !== undefined) {
      return reject('SESSION_MISMATCH', `session header ${mismatch} differs from the on-chain session`);
    }

    // 8. supplier in session
    if (!session.suppliers.some((s) => s.operatorAddress === supplierAddress)) {
      return reject(
        'SUPPLIER_NOT_IN_SESSION',
        `supplier ${supplierAddress} is not in session ${header.sessionId}`,
      );
    }

    return {
      ok: true,
      request,
      session,
      supplierAddress,
      serviceId,
      height: h,
      arrivalHeight: ctx.arrivalHeight ?? h,
      lookupHeight,
      inGracePeriod,
    };
  }
}
