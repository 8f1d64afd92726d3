/**
 * App-stake relay meter (relayer.md §5): one uPOKT budget per (session, supplier), shared by every
 * relayer replica through Redis and consumed atomically by `lua/meter-consume.lua`.
 *
 * Budget = the app stake portion payable to one supplier for one session (poktroll
 * getAppStakePortionPayableToSessionSupplier), or app stake × service factor when a factor is set.
 * Cost of one relay = floor(CUPR × compute_units_to_tokens_multiplier / granularity) at the
 * session start height.
 *
 * Every outcome is a value (STYLE.md §5). A Redis or parameter failure becomes `METER_ERROR` with
 * `ok` decided by `fail_behavior` (open: allowed unmetered; closed: refused); the caller acts on it
 * (eager 503, optimistic drop). WebSocket and gRPC pass `failBehavior: 'open'` as upstream does.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { textChannel, type KeyBuilder, type PubSub, type Unsubscribe } from '../transport/index.js';
import type { SessionParams } from '../protocol/index.js';
import { MeterParamsError, MeterScriptReplyError } from './errors.js';
import { METER_CONSUME, METER_REVERT } from './lua/scripts.js';
import type { RelayerMetrics } from './metrics.js';

/** The session a relay belongs to, from its signed header. */
export interface MeterSession {
  session_id: string;
  supplier: string;
  app_address: string;
  service_id: string;
  session_start_height: number;
  session_end_height: number;
}

/** Chain facts the budget needs, resolved by the caller's caches at the heights of §5.1–§5.2. */
export interface MeterInputs {
  app_stake_upokt: bigint;
  /** Service compute units per relay at the session start height; 0 counts as 1. */
  compute_units_per_relay: bigint;
  /** Shared params at the session start height. */
  compute_units_to_tokens_multiplier: bigint;
  compute_unit_cost_granularity: bigint;
  /** Session param; 0 counts as 1. */
  num_suppliers_per_session: number;
  /** Shared params live (active session) or at the end height (ended session). */
  shared: Pick<
    SessionParams,
    | 'num_blocks_per_session'
    | 'claim_window_open_offset_blocks'
    | 'claim_window_close_offset_blocks'
    | 'proof_window_open_offset_blocks'
    | 'proof_window_close_offset_blocks'
  >;
  /** `ha:service_factor:service:{id}` else `…:default`; undefined when neither is set. */
  service_factor?: number;
}

/** Implemented by the cache layer; the meter only asks. */
export interface MeterInputsSource {
  meterInputs(session: MeterSession): Promise<MeterInputs>;
}

export interface RelayMeterConfig {
  enabled: boolean;
  fail_behavior: 'open' | 'closed';
  /** TTL of the meter keys (relay_meter.cache_ttl). */
  ttl_seconds: number;
}

export interface RelayMeterDeps {
  redis: Redis;
  /** Built with base_prefix = relay_meter.redis_key_prefix (meter keys ignore redis.namespace.base_prefix). */
  keys: KeyBuilder;
  inputs: MeterInputsSource;
  log: Logger;
  metrics: RelayerMetrics;
  /** Unix milliseconds; tests pass a fixed clock. */
  nowMs?: () => number;
}

export type MeterDecision =
  | { ok: true; code: 'METER_ALLOWED'; cost: bigint; consumed: bigint; max: bigint }
  | { ok: false; code: 'METER_EXHAUSTED'; cost: bigint; consumed: bigint; max: bigint }
  | { ok: boolean; code: 'METER_ERROR'; error: Error }
  | { ok: true; code: 'METER_DISABLED' };

/** JSON stored at the meta key (upstream SessionMeterMeta field names). */
export interface SessionMeterMeta {
  session_id: string;
  app_address: string;
  service_id: string;
  supplier_address: string;
  session_end_height: number;
  max_stake_upokt: number;
  created_at: number;
  created_with_factor: number;
  created_with_app_stake: number;
}

/** floor(CUPR × multiplier / granularity), CUPR 0 → 1. */
export function relayCostUpokt(i: MeterInputs): bigint {
  if (i.compute_unit_cost_granularity <= 0n) {
    throw new MeterParamsError('compute_unit_cost_granularity', 'is 0; the relay cost is undefined');
  }
  const cupr = i.compute_units_per_relay > 0n ? i.compute_units_per_relay : 1n;
  return (cupr * i.compute_units_to_tokens_multiplier) / i.compute_unit_cost_granularity;
}

/** Scale of the service factor: nine decimals, exact for every factor an operator writes. */
const FACTOR_SCALE = 1_000_000_000n;

/** The budget of one (session, supplier) in uPOKT (relayer.md §5.2). */
export function maxStakeUpokt(i: MeterInputs): { base: bigint; effective: bigint } {
  const suppliers = BigInt(Math.max(1, i.num_suppliers_per_session));
  const sh = i.shared;
  const blocksToClose = BigInt(
    Math.max(
      1,
      sh.claim_window_open_offset_blocks +
        sh.claim_window_close_offset_blocks +
        sh.proof_window_open_offset_blocks +
        sh.proof_window_close_offset_blocks,
    ),
  );
  const perSession = BigInt(Math.max(1, i.shared.num_blocks_per_session));
  const pending = (blocksToClose + perSession - 1n) / perSession + 1n;
  const base = i.app_stake_upokt / suppliers / pending;
  if (i.service_factor === undefined) return { base, effective: base };
  if (!Number.isFinite(i.service_factor) || i.service_factor < 0) {
    throw new MeterParamsError('service factor', `${i.service_factor} is not a non-negative number`);
  }
  const scaled = BigInt(Math.round(i.service_factor * Number(FACTOR_SCALE)));
  return { base, effective: (i.app_stake_upokt * scaled) / FACTOR_SCALE };
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MAX_LOCAL_ENTRIES = 100_000;

/** Turns the consume script's reply into a decision; the one place its codes are interpreted. */
export function consumeReplyToDecision(reply: unknown, cost: bigint): MeterDecision {
  if (!Array.isArray(reply) || reply.length !== 3 || !reply.every((x) => typeof x === 'number')) {
    throw new MeterScriptReplyError(METER_CONSUME.name, reply);
  }
  const [status, consumed, max] = reply as [number, number, number];
  switch (status) {
    case 1:
      return { ok: true, code: 'METER_ALLOWED', cost, consumed: BigInt(consumed), max: BigInt(max) };
    case -1:
      return { ok: false, code: 'METER_EXHAUSTED', cost, consumed: BigInt(consumed), max: BigInt(max) };
    default:
      throw new MeterScriptReplyError(METER_CONSUME.name, reply);
  }
}

interface LocalEntry {
  stake: bigint;
  factor: number | undefined;
  service_id: string;
}

export class RelayMeter {
  private readonly log: Logger;
  private readonly now: () => number;
  /** (session|supplier) → the inputs the stored meta was written with, to detect stake/factor changes. */
  private readonly local = new Map<string, LocalEntry>();

  constructor(
    private readonly deps: RelayMeterDeps,
    private readonly cfg: RelayMeterConfig,
  ) {
    this.log = deps.log.child({ component: 'relay_meter' });
    this.now = deps.nowMs ?? Date.now;
  }

  /** Check the budget and consume one relay's cost, atomically across replicas. */
  async consume(s: MeterSession, opts: { failBehavior?: 'open' | 'closed' } = {}): Promise<MeterDecision> {
    const m = this.deps.metrics.meterDecisions;
    if (!this.cfg.enabled) {
      m.inc({ service_id: s.service_id, result: 'disabled' });
      return { ok: true, code: 'METER_DISABLED' };
    }
    const failBehavior = opts.failBehavior ?? this.cfg.fail_behavior;
    let operation = 'inputs';
    try {
      const inputs = await this.deps.inputs.meterInputs(s);
      const cost = relayCostUpokt(inputs);
      const { base, effective } = maxStakeUpokt(inputs);
      if (effective > MAX_SAFE || cost > MAX_SAFE) {
        throw new MeterParamsError(
          'budget',
          `${effective} uPOKT exceeds 2^53; the Lua meter cannot count it exactly`,
        );
      }
      const member = this.deps.keys.meterMember(s.session_id, s.supplier);
      const prev = this.local.get(member);
      const recompute =
        prev !== undefined &&
        (prev.stake !== inputs.app_stake_upokt || prev.factor !== inputs.service_factor);
      if (inputs.service_factor !== undefined && effective > base && prev === undefined) {
        this.log.warn(
          {
            service_id: s.service_id,
            base_limit_upokt: String(base),
            effective_limit_upokt: String(effective),
          },
          'service factor allows more than the app stake portion payable to this supplier; relays above it may be unpaid work',
        );
      }
      const meta: SessionMeterMeta = {
        session_id: s.session_id,
        app_address: s.app_address,
        service_id: s.service_id,
        supplier_address: s.supplier,
        session_end_height: s.session_end_height,
        max_stake_upokt: Number(effective),
        created_at: Math.floor(this.now() / 1000),
        created_with_factor: inputs.service_factor ?? 0,
        created_with_app_stake: Number(inputs.app_stake_upokt),
      };
      operation = 'consume';
      const reply = await METER_CONSUME.run(
        this.deps.redis,
        [
          this.deps.keys.meterMeta(s.session_id, s.supplier),
          this.deps.keys.meterConsumed(s.session_id, s.supplier),
          this.deps.keys.meterActiveSessions(),
        ],
        [cost.toString(), JSON.stringify(meta), this.cfg.ttl_seconds, member, recompute ? '1' : '0'],
      );
      const decision = consumeReplyToDecision(reply, cost);
      // Bound memory: entries of ended sessions are only removed by cleanup messages, which can be
      // missed. Forgetting everything merely postpones a stake/factor recompute by one relay.
      if (this.local.size >= MAX_LOCAL_ENTRIES && !this.local.has(member)) this.local.clear();
      this.local.set(member, {
        stake: inputs.app_stake_upokt,
        factor: inputs.service_factor,
        service_id: s.service_id,
      });
      m.inc({ service_id: s.service_id, result: decision.ok ? 'allowed' : 'exhausted' });
      return decision;
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.deps.metrics.meterRedisErrors.inc({ operation });
      const ok = failBehavior === 'open';
      m.inc({ service_id: s.service_id, result: ok ? 'error_open' : 'error_closed' });
      this.log.debug(
        { err: error, service_id: s.service_id, session_id: s.session_id, operation },
        'relay meter failed',
      );
      return { ok, code: 'METER_ERROR', error };
    }
  }

  /** Gives back a consumed cost (a relay that was charged but not served). Faults throw. */
  async revert(s: MeterSession, cost: bigint): Promise<{ reverted: boolean; consumed: bigint }> {
    const reply = await METER_REVERT.run(
      this.deps.redis,
      [this.deps.keys.meterConsumed(s.session_id, s.supplier)],
      [cost.toString()],
    );
    if (!Array.isArray(reply) || reply.length !== 2)
      throw new MeterScriptReplyError(METER_REVERT.name, reply);
    const [status, consumed] = reply as [number, number];
    if (status === 1) return { reverted: true, consumed: BigInt(consumed) };
    if (status === -3) return { reverted: false, consumed: 0n };
    throw new MeterScriptReplyError(METER_REVERT.name, reply);
  }

  /**
   * Handles a `{p}:meter:cleanup` payload `"{session_id}|{supplier}"`: deletes both keys, the
   * active-set member and the local entry. Payloads without `|` are ignored (returns false).
   */
  async cleanup(payload: string): Promise<boolean> {
    const bar = payload.indexOf('|');
    if (bar <= 0 || bar === payload.length - 1) return false;
    const sessionId = payload.slice(0, bar);
    const supplier = payload.slice(bar + 1);
    const k = this.deps.keys;
    await this.deps.redis
      .multi()
      .del(k.meterMeta(sessionId, supplier), k.meterConsumed(sessionId, supplier))
      .srem(k.meterActiveSessions(), payload)
      .exec();
    this.local.delete(payload);
    return true;
  }

  /** Reads SCARD of the shared active set into the gauge; returns it. */
  async refreshActiveSessions(): Promise<number> {
    const n = await this.deps.redis.scard(this.deps.keys.meterActiveSessions());
    this.deps.metrics.meterSessionsActive.set(n);
    return n;
  }

  /** The cleanup channel relayers subscribe to (publisher: the miner after claims). */
  cleanupChannel(): string {
    return this.deps.keys.meterCleanupChannel();
  }

  /** Subscribes to the cleanup channel; each payload runs cleanup(). Resolves once subscribed. */
  subscribeCleanup(bus: PubSub): Promise<Unsubscribe> {
    return bus.subscribe(textChannel(this.cleanupChannel()), (payload) => {
      this.cleanup(payload).catch((err: unknown) => {
        this.deps.metrics.meterRedisErrors.inc({ operation: 'cleanup' });
        this.log.warn({ err }, 'relay meter cleanup failed; the keys expire with their TTL');
      });
    });
  }

  /** Refreshes the active-sessions gauge every `intervalMs` (upstream: 10 s); returns the stop function. */
  startActiveSessionsGauge(intervalMs = 10_000): () => void {
    const timer = setInterval(() => {
      this.refreshActiveSessions().catch((err: unknown) => {
        this.deps.metrics.meterRedisErrors.inc({ operation: 'scard' });
        this.log.debug({ err }, 'active meter sessions not refreshed');
      });
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }
}
