/**
 * The supplier registry view (cache-and-redis.md §2, relayer.md §3.1): `{base}:supplier:{operator}`
 * holds a JSON SupplierState written only by the miner; relayers read it through L1 (60 s) and
 * never query the chain for it. Invalidations use upstream's supplier channel with
 * `{"operator_address": …}` / `{}`. Staked + active + no services is treated as a corrupt entry:
 * a miss, counted in `ha_cache_supplier_contaminated_total{source}`.
 *
 * `get` returns `undefined` for a missing entry (a value) and throws CacheUnavailableError when
 * Redis fails, so the gate can apply its fail-open / fail-closed rule.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { KeyBuilder, PubSub, Unsubscribe } from '../transport/index.js';
import { CacheStateError, CacheUnavailableError } from './errors.js';
import { jsonInvalidation, type InvalidationMessage } from './invalidation.js';
import type { CacheMetrics } from './metrics.js';

export const supplierStateSchema = z.object({
  status: z.enum(['active', 'unstaking', 'not_staked']),
  staked: z.boolean(),
  services: z
    .array(z.string())
    .nullable()
    .transform((s) => s ?? []),
  staked_endpoints: z.array(z.object({ service_id: z.string(), rpc_type: z.string() })).optional(),
  unstake_session_end_height: z.number().int().nonnegative(),
  operator_address: z.string(),
  owner_address: z.string(),
  last_updated: z.number().int(),
  last_refresh_session_start: z.number().int().optional(),
  updated_by: z.string().optional(),
});

export type SupplierState = z.infer<typeof supplierStateSchema>;

/** "Active" as upstream: staked and not `not_staked`. */
export function isSupplierActive(s: SupplierState): boolean {
  return s.staked && s.status !== 'not_staked';
}

/** A failed write upstream once produced: staked, active, no services. */
export function isSupplierStateContaminated(s: SupplierState): boolean {
  return isSupplierActive(s) && s.status === 'active' && s.services.length === 0;
}

export interface SupplierStateCacheDeps {
  redis: Redis;
  keys: KeyBuilder;
  pubsub?: PubSub;
  log: Logger;
  metrics: CacheMetrics;
  now?: () => number;
}

export interface SupplierStateCacheConfig {
  l1_ttl_ms?: number;
}

const TYPE = 'supplier';
const invalidation = jsonInvalidation(TYPE, 'operator_address');

export class SupplierStateCache {
  private readonly l1 = new Map<string, { state: SupplierState; expiresAt: number }>();
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly log: Logger;
  private unsubscribe: Unsubscribe | undefined;
  private closed = false;

  constructor(
    private readonly deps: SupplierStateCacheDeps,
    cfg: SupplierStateCacheConfig = {},
  ) {
    this.ttlMs = cfg.l1_ttl_ms ?? 60_000;
    this.now = deps.now ?? Date.now;
    this.log = deps.log.child({ component: 'supplier_state_cache' });
  }

  /** Subscribes to invalidations and loads every `{base}:supplier:*` entry into L1. */
  async start(): Promise<void> {
    if (this.closed) throw new CacheStateError('supplier state cache: start() after close()');
    if (this.deps.pubsub !== undefined && this.unsubscribe === undefined) {
      this.unsubscribe = await this.deps.pubsub.subscribe(invalidation.channel(this.deps.keys), (msg) => {
        void this.applyRemote(msg);
      });
    }
    await this.loadAll();
  }

  async close(): Promise<void> {
    this.closed = true;
    const off = this.unsubscribe;
    this.unsubscribe = undefined;
    if (off !== undefined) await off();
    this.l1.clear();
  }

  /** The registry entry, or undefined when none exists (or it is corrupt). Throws when Redis fails. */
  async get(operator: string): Promise<SupplierState | undefined> {
    const entry = this.l1.get(operator);
    if (entry !== undefined && entry.expiresAt > this.now()) {
      if (!isSupplierStateContaminated(entry.state)) {
        this.deps.metrics.hits.inc({ cache: TYPE, level: 'l1' });
        return entry.state;
      }
      this.deps.metrics.supplierContaminated.inc({ source: 'l1_read' });
      this.l1.delete(operator);
    }
    this.deps.metrics.misses.inc({ cache: TYPE, level: 'l1' });
    let raw: string | null;
    try {
      raw = await this.deps.redis.get(this.deps.keys.supplierState(operator));
    } catch (err) {
      this.deps.metrics.errors.inc({ cache: TYPE, tier: 'l2_read' });
      throw new CacheUnavailableError('supplier state', operator, { cause: err });
    }
    const state = raw === null ? undefined : this.parse(raw);
    if (state === undefined) {
      this.deps.metrics.misses.inc({ cache: TYPE, level: 'l2' });
      return undefined;
    }
    this.deps.metrics.hits.inc({ cache: TYPE, level: 'l2' });
    this.l1.set(operator, { state, expiresAt: this.now() + this.ttlMs });
    return state;
  }

  /** Miner side: writes the entry (no TTL) and tells every relayer to reload it. */
  async put(state: SupplierState): Promise<void> {
    const value = supplierStateSchema.parse(state);
    await this.deps.redis.set(this.deps.keys.supplierState(value.operator_address), JSON.stringify(value));
    this.l1.set(value.operator_address, { state: value, expiresAt: this.now() + this.ttlMs });
    if (this.deps.pubsub !== undefined) {
      await this.deps.pubsub.publish(invalidation.channel(this.deps.keys), { id: value.operator_address });
    }
  }

  /** Every L1 entry (for the relayer's gate listings). */
  operators(): string[] {
    return [...this.l1.keys()];
  }

  private async loadAll(): Promise<void> {
    let cursor = '0';
    let loaded = 0;
    do {
      const [next, found] = await this.deps.redis.scan(
        cursor,
        'MATCH',
        this.deps.keys.supplierStatePattern(),
        'COUNT',
        1000,
      );
      cursor = next;
      if (found.length === 0) continue;
      const values = await this.deps.redis.mget(...found);
      found.forEach((key, i) => {
        const raw = values[i];
        const state = raw === null || raw === undefined ? undefined : this.parse(raw);
        if (state === undefined) return;
        const operator = this.deps.keys.supplierFromStateKey(key);
        if (operator === undefined) return;
        this.l1.set(operator, { state, expiresAt: this.now() + this.ttlMs });
        loaded++;
      });
    } while (cursor !== '0');
    this.log.info({ suppliers: loaded }, 'supplier registry loaded');
  }

  private parse(raw: string): SupplierState | undefined {
    let state: SupplierState;
    try {
      state = supplierStateSchema.parse(JSON.parse(raw));
    } catch (err) {
      this.deps.metrics.errors.inc({ cache: TYPE, tier: 'decode' });
      this.log.debug({ err }, 'supplier registry entry did not decode');
      return undefined;
    }
    if (isSupplierStateContaminated(state)) {
      this.deps.metrics.supplierContaminated.inc({ source: 'l2_read' });
      return undefined;
    }
    return state;
  }

  private async applyRemote(msg: InvalidationMessage): Promise<void> {
    if (msg.id === undefined) {
      this.l1.clear();
      return;
    }
    this.l1.delete(msg.id);
    try {
      await this.get(msg.id);
    } catch (err) {
      this.log.debug({ err }, 'supplier registry reload after invalidation failed');
    }
  }
}
