/**
 * The fate of every relay of a (supplier, session): one Redis hash of counters, written only with
 * HINCRBY so every replica can add to it, mirrored into Prometheus counters without session ids.
 *
 * Relay buckets: `mined`, `below_difficulty`, `over_serviced`, `dropped`, `claimed`, `proven`,
 * `proof_not_required` and `lost:{reason}`. uPOKT fields: `settled_upokt`, `fee_estimated_upokt`
 * (the estimate a claim decision used) and `fee_actual_upokt` (this session's share of the fees
 * of the transactions that carried its claim and proof).
 *
 * Key: `{base}:{miner}:ledger:{supplier}:{session_id}` (KeyBuilder.minerLedger). Relayers add the
 * buckets only they see (below_difficulty, over_serviced, dropped) to the same hash.
 */
import type { Redis } from 'ioredis';
import { InvalidInputError, RelayMinerError } from '../core/index.js';
import type { KeyBuilder } from '../transport/index.js';
import type { MinerLifecycleMetrics } from './miner-metrics.js';

export type LostReason =
  | 'claim_expired'
  | 'claim_missing'
  | 'claim_failed'
  | 'cupr_mismatch'
  | 'proof_missing'
  | 'proof_invalid'
  | 'skipped_unprofitable';

export const LOST_REASONS: readonly LostReason[] = [
  'claim_expired',
  'claim_missing',
  'claim_failed',
  'cupr_mismatch',
  'proof_missing',
  'proof_invalid',
  'skipped_unprofitable',
];

export type RelayBucket =
  | 'mined'
  | 'below_difficulty'
  | 'over_serviced'
  | 'dropped'
  | 'claimed'
  | 'proven'
  | 'proof_not_required'
  | `lost:${LostReason}`;

export const RELAY_BUCKETS: readonly RelayBucket[] = [
  'mined',
  'below_difficulty',
  'over_serviced',
  'dropped',
  'claimed',
  'proven',
  'proof_not_required',
  ...LOST_REASONS.map((r) => `lost:${r}` as const),
];

export type UpoktField = 'settled_upokt' | 'fee_estimated_upokt' | 'fee_actual_upokt';

/** Field holding the height whose end-block settled the session (written once). */
const SETTLEMENT_HEIGHT_FIELD = 'settlement_height';

const UPOKT_FIELDS: readonly UpoktField[] = ['settled_upokt', 'fee_estimated_upokt', 'fee_actual_upokt'];

/** The ledger of one (supplier, session); buckets never written are absent. */
export interface SessionLedger {
  relays: Partial<Record<RelayBucket, bigint>>;
  upokt: Partial<Record<UpoktField, bigint>>;
}

export interface MinerLedgerConfig {
  /** TTL of each ledger hash, refreshed on every write; 0 = none. Default 24 h. */
  ttl_seconds?: number;
}

export interface MinerLedgerDeps {
  redis: Redis;
  keys: KeyBuilder;
  metrics: MinerLifecycleMetrics;
}

export class LedgerRedisError extends RelayMinerError {
  constructor(what: string, opts: { cause?: unknown } = {}) {
    super('LEDGER_REDIS_FAILED', `ledger ${what} failed`, { ...opts, retryable: true });
  }
}

const DEFAULT_TTL_SECONDS = 24 * 3600;

/** `{base}:{miner}:ledger:{supplier}:{session_id}`. */
export function ledgerKey(keys: KeyBuilder, supplier: string, sessionId: string): string {
  return keys.minerLedger(supplier, sessionId);
}

function assertCount(what: string, n: bigint): void {
  if (n < 0n) throw new InvalidInputError(what, `must not be negative, got ${n}`);
  if (n > 9_223_372_036_854_775_807n) throw new InvalidInputError(what, 'exceeds int64');
}

export class MinerLedger {
  private readonly ttlSeconds: number;

  constructor(
    private readonly deps: MinerLedgerDeps,
    cfg: MinerLedgerConfig = {},
  ) {
    const ttl = cfg.ttl_seconds ?? DEFAULT_TTL_SECONDS;
    if (!Number.isSafeInteger(ttl) || ttl < 0) {
      throw new InvalidInputError('ledger.ttl_seconds', `must be a non-negative integer, got ${ttl}`);
    }
    this.ttlSeconds = ttl;
  }

  key(supplier: string, sessionId: string): string {
    return ledgerKey(this.deps.keys, supplier, sessionId);
  }

  /** Adds `relays` to a bucket. Zero is a no-op. */
  async addRelays(supplier: string, sessionId: string, bucket: RelayBucket, relays: bigint): Promise<void> {
    if (!RELAY_BUCKETS.includes(bucket)) throw new InvalidInputError('ledger bucket', `unknown: ${bucket}`);
    assertCount(`ledger ${bucket}`, relays);
    if (relays === 0n) return;
    await this.incr(supplier, sessionId, [[bucket, relays]]);
    this.deps.metrics.ledgerRelays.inc({ bucket }, Number(relays));
  }

  /** Adds uPOKT to `settled_upokt`, `fee_estimated_upokt` or `fee_actual_upokt`. Zero is a no-op. */
  async addUpokt(supplier: string, sessionId: string, field: UpoktField, upokt: bigint): Promise<void> {
    if (!UPOKT_FIELDS.includes(field)) throw new InvalidInputError('ledger field', `unknown: ${field}`);
    assertCount(`ledger ${field}`, upokt);
    if (upokt === 0n) return;
    await this.incr(supplier, sessionId, [[field, upokt]]);
    this.deps.metrics.ledgerUpokt.inc({ kind: field.replace(/_upokt$/, '') }, Number(upokt));
  }

  /** A lost bucket plus the fee estimate behind a skipped claim, in one write. */
  async recordUnprofitable(
    supplier: string,
    sessionId: string,
    relays: bigint,
    estimatedFeeUpokt: bigint,
  ): Promise<void> {
    assertCount('ledger lost:skipped_unprofitable', relays);
    assertCount('ledger fee_estimated_upokt', estimatedFeeUpokt);
    await this.incr(supplier, sessionId, [
      ['lost:skipped_unprofitable', relays],
      ['fee_estimated_upokt', estimatedFeeUpokt],
    ]);
    this.deps.metrics.ledgerRelays.inc({ bucket: 'lost:skipped_unprofitable' }, Number(relays));
    this.deps.metrics.ledgerUpokt.inc({ kind: 'fee_estimated' }, Number(estimatedFeeUpokt));
  }

  /**
   * Records a settlement: `settled_upokt` is set to the settled amount (not added), so reading the
   * same block again changes nothing; the metric counts only the first record of a session.
   */
  async recordSettlement(s: SettledClaim, height: number): Promise<void> {
    assertCount('settled uPOKT', s.settledUpokt);
    if (!Number.isSafeInteger(height) || height < 1) {
      throw new InvalidInputError('settlement height', `must be a positive integer, got ${height}`);
    }
    const key = this.key(s.supplier, s.sessionId);
    const tx = this.deps.redis.multi();
    tx.hsetnx(key, SETTLEMENT_HEIGHT_FIELD, String(height));
    tx.hset(key, 'settled_upokt', s.settledUpokt.toString());
    if (this.ttlSeconds > 0) tx.expire(key, this.ttlSeconds);
    let res: [Error | null, unknown][] | null;
    try {
      res = await tx.exec();
    } catch (err) {
      throw new LedgerRedisError('settlement write', { cause: err });
    }
    if (res === null) throw new LedgerRedisError('settlement write (transaction aborted)');
    for (const [err] of res) if (err !== null) throw new LedgerRedisError('settlement write', { cause: err });
    if (res[0]![1] === 1) this.deps.metrics.ledgerUpokt.inc({ kind: 'settled' }, Number(s.settledUpokt));
  }

  /**
   * Reads `/block_results` of `height` and records the settled claims of `owned` suppliers; returns
   * what it recorded. Run it for the settlement height of each claimed session (= its proof
   * window close), e.g. from the per-block hook.
   */
  async recordSettlementsAt(
    chain: { getBlockResults(height: number): Promise<{ finalizeBlockEvents: readonly EventLike[] }> },
    height: number,
    owned: ReadonlySet<string>,
  ): Promise<SettledClaim[]> {
    const results = await chain.getBlockResults(height);
    const settled = settledClaimsFrom(results.finalizeBlockEvents, owned);
    for (const s of settled) await this.recordSettlement(s, height);
    return settled;
  }

  async get(supplier: string, sessionId: string): Promise<SessionLedger> {
    let raw: Record<string, string>;
    try {
      raw = await this.deps.redis.hgetall(this.key(supplier, sessionId));
    } catch (err) {
      throw new LedgerRedisError('HGETALL', { cause: err });
    }
    const out: SessionLedger = { relays: {}, upokt: {} };
    for (const [field, value] of Object.entries(raw)) {
      if (!/^-?\d+$/.test(value)) continue;
      if ((RELAY_BUCKETS as readonly string[]).includes(field))
        out.relays[field as RelayBucket] = BigInt(value);
      else if ((UPOKT_FIELDS as readonly string[]).includes(field))
        out.upokt[field as UpoktField] = BigInt(value);
    }
    return out;
  }

  private async incr(supplier: string, sessionId: string, fields: [string, bigint][]): Promise<void> {
    const key = this.key(supplier, sessionId);
    const tx = this.deps.redis.multi();
    for (const [f, n] of fields) if (n !== 0n) tx.hincrby(key, f, n.toString());
    if (this.ttlSeconds > 0) tx.expire(key, this.ttlSeconds);
    let res: [Error | null, unknown][] | null;
    try {
      res = await tx.exec();
    } catch (err) {
      throw new LedgerRedisError('HINCRBY', { cause: err });
    }
    if (res === null) throw new LedgerRedisError('HINCRBY (transaction aborted)');
    for (const [err] of res) if (err !== null) throw new LedgerRedisError('HINCRBY', { cause: err });
  }
}

/** A settled claim read from a block's end-block events. */
export interface SettledClaim {
  supplier: string;
  sessionId: string;
  settledUpokt: bigint;
}

interface EventLike {
  type: string;
  attributes: readonly { key: string; value: string }[];
}

function jsonAttr(e: EventLike, key: string): unknown {
  const a = e.attributes.find((x) => x.key === key);
  if (a === undefined) return undefined;
  try {
    return JSON.parse(a.value) as unknown;
  } catch {
    return a.value;
  }
}

/**
 * The `pocket.tokenomics.EventClaimSettled` events of `owned` suppliers in `/block_results`
 * finalize events (typed-event attributes are proto-JSON; `settled_upokt` is `"<n>upokt"`).
 * Events without a session id, supplier or a parsable amount are ignored.
 */
export function settledClaimsFrom(events: readonly EventLike[], owned: ReadonlySet<string>): SettledClaim[] {
  const out: SettledClaim[] = [];
  for (const e of events) {
    if (e.type !== 'pocket.tokenomics.EventClaimSettled') continue;
    const supplier = jsonAttr(e, 'supplier_operator_address');
    const sessionId = jsonAttr(e, 'session_id');
    const settled = jsonAttr(e, 'settled_upokt');
    if (typeof supplier !== 'string' || typeof sessionId !== 'string' || typeof settled !== 'string')
      continue;
    if (!owned.has(supplier)) continue;
    const m = /^(\d+)upokt$/.exec(settled);
    if (m === null) continue;
    out.push({ supplier, sessionId, settledUpokt: BigInt(m[1]!) });
  }
  return out;
}
