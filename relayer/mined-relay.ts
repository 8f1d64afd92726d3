/**
 * Turns a served relay into a mined relay on the supplier's Redis stream (relayer.md §10):
 *
 *   1. The request must name a supplier, a session ID, an application and a service.
 *   2. A new RelayResponse{session_header = the request's, payload = the raw backend body} is
 *      signed by the supplier (payload_hash = SHA-256(raw body)); its payload is then cleared;
 *      relay_bytes = Relay{request as received, that response}; relay_hash = SHA-256(relay_bytes).
 *   3. The relay is kept only if relay_hash is below the service's difficulty target at the
 *      session start height. No start height, no difficulty on chain, an empty target or a failed
 *      lookup → the base target (every relay kept), counted by reason.
 *   4. Weight = the service's compute units per relay at the session start height (0 → 1). A
 *      failed lookup is retried a few times with a doubling delay and then the relay is dropped:
 *      a guessed weight would make the claimed sum disagree with the chain's count × CUPR.
 *   5. The MinedRelayMessage goes to the StreamPublisher; a refusal is a counted drop.
 *
 * `publish` never throws: each outcome is a value, every drop is counted in
 * `ha_relayer_relays_dropped_total{service_id,reason}` and relays below the difficulty in
 * `ha_relayer_relays_skipped_difficulty_total{service_id}`.
 *
 * An empty backend body is dropped (reason `empty_body`): the signer refuses to sign an empty
 * payload, as upstream's signer does, so upstream loses these relays too.
 */
import type { Counter } from 'prom-client';
import type { Logger } from 'pino';
import {
  BASE_RELAY_DIFFICULTY_TARGET,
  isMinedRelayApplicable,
  mineRelay,
  type MinedRelay,
  type RelayRequest,
  type RelayResponse,
} from '../protocol/index.js';
import type { ChainCaches } from '../cache/index.js';
import type {
  MinedRelayMessage,
  PublishResult,
  StreamPublisher,
  WriteOutcome,
} from '../transport/streams/index.js';
import type { RelayPipelineMetrics } from './pipeline-metrics.js';
import type { RelaySigner } from './signer.js';

export interface MinedRelayInput {
  /** The RelayRequest as received from the gateway. */
  request: RelayRequest;
  /** The backend's response body (decompressed, the whole stream for streaming responses). */
  rawBody: Uint8Array;
  supplierAddress: string;
  /** Block height pinned when the relay arrived. */
  arrivalHeight: number;
  /**
   * The response already signed for the client (WebSocket frames, non-streamed HTTP answers).
   * When given it is mined as it is — the relay the client holds — and no second signature is
   * made; `rawBody` is then only used for the empty-body check.
   */
  signedResponse?: RelayResponse;
  /**
   * Resolve only once Redis stored the stream entry (or it had to stay buffered); a write Redis
   * refuses is then a `MINE_WRITE_REFUSED` result instead of a background drop.
   */
  awaitWrite?: boolean;
}

export type MinedRelayCode =
  | 'MINE_BELOW_DIFFICULTY'
  | 'MINE_INCOMPLETE'
  | 'MINE_SIGN_FAILED'
  | 'MINE_CUPR_UNAVAILABLE'
  | 'MINE_PUBLISH_REFUSED'
  | 'MINE_WRITE_REFUSED';

export type MinedPublishResult =
  | {
      ok: true;
      relayHash: Uint8Array;
      message: MinedRelayMessage;
      /** With `awaitWrite`: whether the entry is in Redis already or still in the buffer. */
      stored?: 'written' | 'buffered';
    }
  | { ok: false; code: MinedRelayCode; reason: string };

/** `reason` label values of relays_dropped_total written here. */
export type MinedDropReason =
  | 'incomplete'
  | 'empty_body'
  | 'supplier_not_owned'
  | 'sign_failed'
  | 'encode_failed'
  | 'cupr_unavailable'
  | 'publish_invalid'
  | 'publish_buffer_full'
  | 'publish_closed'
  | 'write_refused';

/** The two upstream relay counters (RelayerMetrics holds them). */
export interface MinedRelayCounters {
  relaysDropped: Pick<Counter<'service_id' | 'reason'>, 'inc'>;
  relaysSkippedDifficulty: Pick<Counter<'service_id'>, 'inc'>;
}

export interface MinedRelayPublisherDeps {
  caches: Pick<ChainCaches, 'relayMiningDifficulty' | 'computeUnitsPerRelay'>;
  signer: Pick<RelaySigner, 'sign'>;
  publisher: Pick<StreamPublisher, 'publish'>;
  log: Logger;
  counters: MinedRelayCounters;
  metrics: Pick<RelayPipelineMetrics, 'difficultyBaseFallbacks' | 'cuprLookupRetries'>;
  /** Unix nanoseconds for published_at_unix_nano; tests pass a fixed clock. */
  nowNs?: () => bigint;
  /** Waits between CUPR lookup attempts; tests may pass an instant one. */
  sleep?: (ms: number) => Promise<void>;
}

export interface MinedRelayPublisherConfig {
  /** CUPR lookups before the relay is dropped (≥ 1). */
  cupr_lookup_attempts: number;
  /** Delay before the first retry; doubled for each further one. */
  cupr_retry_delay_ms: number;
}

/** Four attempts over 50 + 100 + 200 ms: long enough to ride out a Redis/chain blip. */
export const DEFAULT_MINED_RELAY_PUBLISHER_CONFIG: Readonly<MinedRelayPublisherConfig> = Object.freeze({
  cupr_lookup_attempts: 4,
  cupr_retry_delay_ms: 50,
});

type DifficultyFallback = 'no_start_height' | 'not_found' | 'empty_target' | 'lookup_error';

interface SessionFacts {
  sessionId: string;
  serviceId: string;
  appAddress: string;
  startHeight: number;
  endHeight: number;
}

const EMPTY = Buffer.alloc(0);
const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function systemNowNs(): () => bigint {
  const epochBaseNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  return () => epochBaseNs + process.hrtime.bigint();
}

export class MinedRelayPublisher {
  private readonly log: Logger;
  private readonly nowNs: () => bigint;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly cfg: MinedRelayPublisherConfig;

  constructor(
    private readonly deps: MinedRelayPublisherDeps,
    cfg: Partial<MinedRelayPublisherConfig> = {},
  ) {
    this.log = deps.log.child({ component: 'mined_relay_publisher' });
    this.nowNs = deps.nowNs ?? systemNowNs();
    this.sleep = deps.sleep ?? defaultSleep;
    this.cfg = { ...DEFAULT_MINED_RELAY_PUBLISHER_CONFIG, ...cfg };
    this.cfg.cupr_lookup_attempts = Math.max(1, Math.floor(this.cfg.cupr_lookup_attempts));
  }

  async publish(input: MinedRelayInput): Promise<MinedPublishResult> {
    const facts = this.sessionFacts(input);
    if (typeof facts === 'string') {
      return this.drop(input.request.meta?.sessionHeader?.serviceId ?? '', 'incomplete', {
        code: 'MINE_INCOMPLETE',
        reason: facts,
      });
    }
    const svc = facts.serviceId;

    const mined = this.signAndMine(input);
    if (!mined.ok) return this.drop(svc, mined.drop, { code: 'MINE_SIGN_FAILED', reason: mined.reason });

    const target = await this.difficultyTarget(facts);
    if (!isMinedRelayApplicable(mined.relay, target)) {
      this.deps.counters.relaysSkippedDifficulty.inc({ service_id: svc });
      this.log.debug(
        { service_id: svc, session_id: facts.sessionId },
        'relay hash not below the difficulty target; not published',
      );
      return {
        ok: false,
        code: 'MINE_BELOW_DIFFICULTY',
        reason: `relay hash is not below the difficulty target of service ${svc} at height ${facts.startHeight}`,
      };
    }

    const cupr = await this.computeUnits(facts);
    if (typeof cupr === 'string') {
      return this.drop(svc, 'cupr_unavailable', { code: 'MINE_CUPR_UNAVAILABLE', reason: cupr });
    }

    const message: MinedRelayMessage = {
      relay_hash: mined.relay.hash,
      relay_bytes: mined.relay.bytes,
      compute_units_per_relay: cupr,
      session_id: facts.sessionId,
      session_end_height: facts.endHeight,
      supplier_operator_address: input.supplierAddress,
      service_id: svc,
      application_address: facts.appAddress,
      arrival_block_height: input.arrivalHeight,
      published_at_unix_nano: this.nowNs(),
      session_start_height: facts.startHeight,
    };
    let published: PublishResult;
    let written: Promise<WriteOutcome> | undefined;
    let onWrite: ((o: WriteOutcome) => void) | undefined;
    if (input.awaitWrite === true) written = new Promise<WriteOutcome>((resolve) => (onWrite = resolve));
    try {
      published = this.deps.publisher.publish(message, onWrite);
    } catch (err) {
      published = { ok: false, code: 'PUBLISH_INVALID', reason: (err as Error).message };
    }
    if (!published.ok) {
      const reason: MinedDropReason =
        published.code === 'PUBLISH_BUFFER_FULL'
          ? 'publish_buffer_full'
          : published.code === 'PUBLISH_CLOSED'
            ? 'publish_closed'
            : 'publish_invalid';
      return this.drop(svc, reason, {
        code: 'MINE_PUBLISH_REFUSED',
        reason: `${published.code}: ${published.reason}`,
      });
    }
    if (written === undefined) return { ok: true, relayHash: mined.relay.hash, message };
    const w = await written;
    if (!w.ok) {
      return this.drop(svc, 'write_refused', {
        code: 'MINE_WRITE_REFUSED',
        reason: `${w.code}: ${w.reason}`,
      });
    }
    return { ok: true, relayHash: mined.relay.hash, message, stored: w.state };
  }

  /** The session fields a mined relay needs, or why the request lacks them. */
  private sessionFacts(input: MinedRelayInput): SessionFacts | string {
    const meta = input.request.meta;
    const header = meta?.sessionHeader;
    if (input.supplierAddress === '') return 'missing supplier operator address';
    if (header === undefined) return 'missing session header';
    if (header.sessionId === '') return 'missing session id';
    if (header.applicationAddress === '') return 'missing application address';
    if (header.serviceId === '') return 'missing service id';
    if (meta !== undefined && meta.supplierOperatorAddress !== input.supplierAddress) {
      return `request is addressed to supplier ${meta.supplierOperatorAddress}, not ${input.supplierAddress}`;
    }
    const max = BigInt(Number.MAX_SAFE_INTEGER);
    const start = header.sessionStartBlockHeight;
    const end = header.sessionEndBlockHeight;
    if (start < 0n || start > max || end < 0n || end > max) {
      return `session heights ${start}..${end} out of range`;
    }
    if (!Number.isSafeInteger(input.arrivalHeight) || input.arrivalHeight < 0) {
      return `arrival height ${input.arrivalHeight} is not a non-negative integer`;
    }
    return {
      sessionId: header.sessionId,
      serviceId: header.serviceId,
      appAddress: header.applicationAddress,
      startHeight: Number(start),
      endHeight: Number(end),
    };
  }

  private signAndMine(
    input: MinedRelayInput,
  ): { ok: true; relay: MinedRelay } | { ok: false; drop: MinedDropReason; reason: string } {
    if (input.signedResponse !== undefined) {
      if (input.rawBody.length === 0) {
        return {
          ok: false,
          drop: 'empty_body',
          reason: 'SIGN_EMPTY_PAYLOAD: the backend answered an empty body',
        };
      }
      return this.mine(input.request, input.signedResponse);
    }
    const response: RelayResponse = {
      meta: { sessionHeader: input.request.meta?.sessionHeader, supplierOperatorSignature: EMPTY },
      payload: Buffer.from(input.rawBody.buffer, input.rawBody.byteOffset, input.rawBody.byteLength),
      relayMinerError: undefined,
      payloadHash: EMPTY,
    };
    let signed: ReturnType<MinedRelayPublisherDeps['signer']['sign']>;
    try {
      signed = this.deps.signer.sign(response, input.supplierAddress);
    } catch (err) {
      this.log.error({ err, supplier: input.supplierAddress }, 'signing a mined relay response failed');
      return { ok: false, drop: 'sign_failed', reason: `signing failed: ${(err as Error).message}` };
    }
    if (!signed.ok) {
      const drop: MinedDropReason =
        signed.code === 'SIGN_EMPTY_PAYLOAD'
          ? 'empty_body'
          : signed.code === 'SIGN_SUPPLIER_NOT_OWNED'
            ? 'supplier_not_owned'
            : 'sign_failed';
      return { ok: false, drop, reason: `${signed.code}: ${signed.reason}` };
    }
    return this.mine(input.request, signed.response);
  }

  private mine(
    request: RelayRequest,
    response: RelayResponse,
  ): { ok: true; relay: MinedRelay } | { ok: false; drop: MinedDropReason; reason: string } {
    try {
      return { ok: true, relay: mineRelay(request, response) };
    } catch (err) {
      return {
        ok: false,
        drop: 'encode_failed',
        reason: `cannot encode the relay: ${(err as Error).message}`,
      };
    }
  }

  /** The target at the session start height, or the base target (counted by reason). */
  private async difficultyTarget(f: SessionFacts): Promise<Uint8Array> {
    const fallback = (reason: DifficultyFallback, err?: unknown): Uint8Array => {
      this.deps.metrics.difficultyBaseFallbacks.inc({ service_id: f.serviceId, reason });
      this.log.debug(
        { err, service_id: f.serviceId, session_start_height: f.startHeight, reason },
        'using the base relay difficulty',
      );
      return BASE_RELAY_DIFFICULTY_TARGET;
    };
    if (f.startHeight <= 0) return fallback('no_start_height');
    let difficulty;
    try {
      difficulty = await this.deps.caches.relayMiningDifficulty.get({
        serviceId: f.serviceId,
        height: f.startHeight,
      });
    } catch (err) {
      return fallback('lookup_error', err);
    }
    if (difficulty === undefined) return fallback('not_found');
    if (difficulty.targetHash.length === 0) return fallback('empty_target');
    return difficulty.targetHash;
  }

  /** CUPR at the session start (0 → 1), or why it could not be known. */
  private async computeUnits(f: SessionFacts): Promise<bigint | string> {
    const attempts = this.cfg.cupr_lookup_attempts;
    let lastErr: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const cupr = await this.deps.caches.computeUnitsPerRelay.get({
          serviceId: f.serviceId,
          height: f.startHeight,
        });
        if (cupr === undefined) {
          this.log.error(
            { service_id: f.serviceId, session_start_height: f.startHeight },
            'service has no compute units per relay at the session start; mined relay dropped',
          );
          return `service ${f.serviceId} not found at height ${f.startHeight}`;
        }
        return cupr > 0n ? cupr : 1n;
      } catch (err) {
        lastErr = err;
        if (attempt < attempts) {
          this.deps.metrics.cuprLookupRetries.inc({ service_id: f.serviceId });
          await this.sleep(this.cfg.cupr_retry_delay_ms * 2 ** (attempt - 1));
        }
      }
    }
    this.log.error(
      { err: lastErr, service_id: f.serviceId, session_start_height: f.startHeight, attempts },
      'compute units per relay unavailable; mined relay dropped rather than weighted with a guess',
    );
    return `compute units per relay of service ${f.serviceId} at height ${f.startHeight} unavailable after ${attempts} attempts: ${(lastErr as Error | undefined)?.message ?? 'unknown error'}`;
  }

  private drop(
    serviceId: string,
    reason: MinedDropReason,
    result: { code: MinedRelayCode; reason: string },
  ): MinedPublishResult {
    this.deps.counters.relaysDropped.inc({ service_id: serviceId, reason });
    this.log.debug(
      { service_id: serviceId, drop_reason: reason, detail: result.reason },
      'mined relay dropped',
    );
    return { ok: false, ...result };
  }
}
