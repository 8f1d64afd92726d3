/**
 * The chain facts the relay meter needs (relayer.md §5.1–§5.2), resolved through the ChainCaches
 * at the heights the spec names:
 *
 *   app stake                      application cache (live)
 *   CUPR                           at the session start height (unknown → 0, the meter counts 1)
 *   multiplier, granularity        shared params at the session start height
 *   num_suppliers_per_session      session params (live)
 *   window offsets, session length shared params live while the session is active (end ≥ h or
 *                                  h ≤ 0), at the end height once it has ended
 *   service factor                 Redis `{base}:service_factor:service:{id}`, else `…:default`
 *
 * Every failure is thrown (the meter turns it into its fail behaviour): a missing application,
 * missing shared params, an unparsable stake, a cache that cannot reach Redis nor the chain. A
 * malformed service-factor entry is not a failure: it is ignored with a warning and a count, and
 * the next key (or none) applies.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RelayMinerError } from '../core/index.js';
import type { ChainCaches, SharedParams } from '../cache/index.js';
import type { KeyBuilder } from '../transport/index.js';
import type { MeterInputs, MeterInputsSource, MeterSession } from './relay-meter.js';
import type { RelayPipelineMetrics } from './pipeline-metrics.js';

/** A chain fact the meter needs does not exist or cannot be read; the meter's fail behaviour applies. */
export class MeterInputUnavailableError extends RelayMinerError {
  constructor(what: string, why: string, opts: { cause?: unknown; retryable?: boolean } = {}) {
    super('METER_INPUT_UNAVAILABLE', `relay meter input ${what}: ${why}`, opts);
  }
}

export interface CacheMeterInputsDeps {
  caches: Pick<
    ChainCaches,
    'applications' | 'computeUnitsPerRelay' | 'sharedParams' | 'sharedParamsAtHeight' | 'sessionParams'
  >;
  /** Current block height from block events (0 until the first event). */
  heights: { readonly currentHeight: number };
  redis: Redis;
  keys: KeyBuilder;
  log: Logger;
  metrics: Pick<RelayPipelineMetrics, 'serviceFactorInvalid'>;
  /** Milliseconds clock for the service-factor memo; tests pass a controllable one. */
  nowMs?: () => number;
}

export interface CacheMeterInputsConfig {
  /** How long a service-factor read is reused in process; 0 reads Redis for every relay. */
  service_factor_ttl_ms?: number;
}

export const DEFAULT_SERVICE_FACTOR_TTL_MS = 5_000;

/** The `{"factor": f, "updated_at": t}` JSON the miner writes. */
export type ServiceFactorParse = { ok: true; factor: number } | { ok: false; reason: string };

export function parseServiceFactor(raw: string): ServiceFactorParse {
  let doc: unknown;
  try {
    doc = JSON.parse(raw);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return { ok: false, reason: 'not a JSON object' };
  }
  const factor = (doc as { factor?: unknown }).factor;
  if (typeof factor !== 'number' || !Number.isFinite(factor) || factor < 0) {
    return { ok: false, reason: 'factor is not a non-negative number' };
  }
  return { ok: true, factor };
}

const UINT = /^\d+$/;

function stakeOf(app: { address: string; stake?: { denom: string; amount: string } }): bigint {
  const stake = app.stake;
  if (stake === undefined || stake.amount === '') return 0n;
  if (stake.denom !== 'upokt') {
    throw new MeterInputUnavailableError(
      `application ${app.address} stake`,
      `denomination ${JSON.stringify(stake.denom)} is not upokt`,
    );
  }
  if (!UINT.test(stake.amount)) {
    throw new MeterInputUnavailableError(
      `application ${app.address} stake`,
      `amount ${JSON.stringify(stake.amount)} is not a non-negative integer`,
    );
  }
  return BigInt(stake.amount);
}

function windowOffsets(p: SharedParams): MeterInputs['shared'] {
  return {
    num_blocks_per_session: Number(p.numBlocksPerSession),
    claim_window_open_offset_blocks: Number(p.claimWindowOpenOffsetBlocks),
    claim_window_close_offset_blocks: Number(p.claimWindowCloseOffsetBlocks),
    proof_window_open_offset_blocks: Number(p.proofWindowOpenOffsetBlocks),
    proof_window_close_offset_blocks: Number(p.proofWindowCloseOffsetBlocks),
  };
}

export class CacheMeterInputs implements MeterInputsSource {
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly factorTtlMs: number;
  private readonly factors = new Map<string, { factor: number | undefined; expiresAt: number }>();

  constructor(
    private readonly deps: CacheMeterInputsDeps,
    cfg: CacheMeterInputsConfig = {},
  ) {
    this.log = deps.log.child({ component: 'meter_inputs' });
    this.now = deps.nowMs ?? Date.now;
    this.factorTtlMs = cfg.service_factor_ttl_ms ?? DEFAULT_SERVICE_FACTOR_TTL_MS;
  }

  async meterInputs(s: MeterSession): Promise<MeterInputs> {
    const c = this.deps.caches;
    const h = this.deps.heights.currentHeight;
    const active = h <= 0 || s.session_end_height >= h;
    const cuprArgs = { serviceId: s.service_id, height: s.session_start_height };
    // Every fact is usually in memory (L1, the factor memo): then no promise is made per lookup.
    // What is not is fetched; each lookup is counted once (a hit here, or a miss by get()).
    const mem = {
      app: c.applications.cached(s.app_address),
      cupr: c.computeUnitsPerRelay.cached(cuprArgs),
      atStart: c.sharedParamsAtHeight.cached(s.session_start_height),
      windows: active ? c.sharedParams.cached(null) : c.sharedParamsAtHeight.cached(s.session_end_height),
      sessionParams: c.sessionParams.cached(null),
      factor: this.memoFactor(s.service_id),
    };
    if (
      mem.app !== undefined &&
      mem.cupr !== undefined &&
      mem.atStart !== undefined &&
      mem.windows !== undefined &&
      mem.sessionParams !== undefined &&
      mem.factor !== undefined
    ) {
      return this.assemble(
        s,
        active,
        mem.app.value,
        mem.cupr.value,
        mem.atStart.value,
        mem.windows.value,
        mem.sessionParams.value,
        mem.factor.value,
      );
    }
    // Every lookup is settled before answering, so a failed call leaves no cache fill running.
    const settled = await Promise.allSettled([
      mem.app === undefined ? c.applications.get(s.app_address) : Promise.resolve(mem.app.value),
      mem.cupr === undefined ? c.computeUnitsPerRelay.get(cuprArgs) : Promise.resolve(mem.cupr.value),
      mem.atStart === undefined
        ? c.sharedParamsAtHeight.get(s.session_start_height)
        : Promise.resolve(mem.atStart.value),
      mem.windows !== undefined
        ? Promise.resolve(mem.windows.value)
        : active
          ? c.sharedParams.get(null)
          : c.sharedParamsAtHeight.get(s.session_end_height),
      mem.sessionParams === undefined ? c.sessionParams.get(null) : Promise.resolve(mem.sessionParams.value),
      mem.factor === undefined ? this.serviceFactor(s.service_id) : Promise.resolve(mem.factor.value),
    ] as const);
    for (const r of settled) if (r.status === 'rejected') throw r.reason;
    const [app, cupr, atStart, windows, sessionParams, factor] = settled.map((r) =>
      r.status === 'fulfilled' ? r.value : undefined,
    ) as [
      Awaited<ReturnType<typeof c.applications.get>>,
      Awaited<ReturnType<typeof c.computeUnitsPerRelay.get>>,
      Awaited<ReturnType<typeof c.sharedParamsAtHeight.get>>,
      Awaited<ReturnType<typeof c.sharedParams.get>>,
      Awaited<ReturnType<typeof c.sessionParams.get>>,
      number | undefined,
    ];
    return this.assemble(s, active, app, cupr, atStart, windows, sessionParams, factor);
  }

  /** Checks the facts (a missing one throws) and builds the meter inputs from them. */
  private assemble(
    s: MeterSession,
    active: boolean,
    app: Awaited<ReturnType<CacheMeterInputsDeps['caches']['applications']['get']>>,
    cupr: Awaited<ReturnType<CacheMeterInputsDeps['caches']['computeUnitsPerRelay']['get']>>,
    atStart: SharedParams | undefined,
    windows: SharedParams | undefined,
    sessionParams: Awaited<ReturnType<CacheMeterInputsDeps['caches']['sessionParams']['get']>>,
    factor: number | undefined,
  ): MeterInputs {
    if (app === undefined) {
      throw new MeterInputUnavailableError(`application ${s.app_address}`, 'not found on chain');
    }
    if (atStart === undefined) {
      throw new MeterInputUnavailableError(
        `shared params at height ${s.session_start_height}`,
        'not found on chain',
      );
    }
    if (windows === undefined) {
      throw new MeterInputUnavailableError(
        active ? 'shared params' : `shared params at height ${s.session_end_height}`,
        'not found on chain',
      );
    }
    if (sessionParams === undefined) {
      throw new MeterInputUnavailableError('session params', 'not found on chain');
    }
    const inputs: MeterInputs = {
      app_stake_upokt: stakeOf(app),
      compute_units_per_relay: cupr ?? 0n,
      compute_units_to_tokens_multiplier: atStart.computeUnitsToTokensMultiplier,
      compute_unit_cost_granularity: atStart.computeUnitCostGranularity,
      num_suppliers_per_session: Number(sessionParams.numSuppliersPerSession),
      shared: windowOffsets(windows),
    };
    if (factor !== undefined) inputs.service_factor = factor;
    return inputs;
  }

  /** The service factor read within the memo's TTL, as `{ value }`; undefined when not memoized. */
  private memoFactor(serviceId: string): { value: number | undefined } | undefined {
    if (this.factorTtlMs <= 0) return undefined;
    const hit = this.factors.get(serviceId);
    return hit !== undefined && hit.expiresAt > this.now() ? { value: hit.factor } : undefined;
  }

  /** Service key first, then the default key; malformed entries are skipped. Redis errors throw. */
  private async serviceFactor(serviceId: string): Promise<number | undefined> {
    const memo = this.memoFactor(serviceId);
    if (memo !== undefined) return memo.value;
    const keys = this.deps.keys;
    let factor: number | undefined;
    for (const [scope, key] of [
      ['service', keys.serviceFactorServiceKey(serviceId)],
      ['default', keys.serviceFactorDefaultKey()],
    ] as const) {
      const raw = await this.deps.redis.get(key);
      if (raw === null) continue;
      const parsed = parseServiceFactor(raw);
      if (parsed.ok) {
        factor = parsed.factor;
        break;
      }
      this.deps.metrics.serviceFactorInvalid.inc({ scope });
      this.log.warn(
        { key, service_id: serviceId, reason: parsed.reason },
        'ignoring malformed service factor entry; expected {"factor": <non-negative number>, "updated_at": <unix>}',
      );
    }
    if (this.factorTtlMs > 0) {
      if (this.factors.size >= 10_000) this.factors.clear();
      this.factors.set(serviceId, { factor, expiresAt: this.now() + this.factorTtlMs });
    }
    return factor;
  }
}
