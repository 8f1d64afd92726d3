import { Counter, Gauge, type Registry } from 'prom-client';

/** Series of the cache layer (`ha_cache_*`); label `cache` is the entity type, never an ID. */
export interface CacheMetrics {
  /** level: l1 | l2 | l2_retry (after waiting on another replica's fill lock). */
  hits: Counter<'cache' | 'level'>;
  /** level: l1 | l2. */
  misses: Counter<'cache' | 'level'>;
  /** Negative (not-found) entries answered from L1. */
  negativeHits: Counter<'cache'>;
  /** L3 loads; result: found | not_found | error. */
  fills: Counter<'cache' | 'result'>;
  /** result: acquired | contended | error. */
  lockAcquisitions: Counter<'cache' | 'result'>;
  /** Waits on another replica's fill lock; outcome: l2_hit | gave_up. */
  lockWaits: Counter<'cache' | 'outcome'>;
  /** tier: l2_read | l2_write | l2_delete | lock | decode | publish. Counted, not thrown. */
  errors: Counter<'cache' | 'tier'>;
  /** source: local | remote. */
  invalidations: Counter<'cache' | 'source'>;
  l1Entries: Gauge<'cache'>;
  /** Supplier registry entries read as staked + active with no services; source: l1_read | l2_read. */
  supplierContaminated: Counter<'source'>;
  blockEvents: Counter<'result'>;
  blockEventsDropped: Counter<'channel'>;
  currentHeight: Gauge;
}

export function createCacheMetrics(registry: Registry): CacheMetrics {
  const registers = [registry];
  return {
    hits: new Counter({
      name: 'ha_cache_hits_total',
      help: 'Cache hits by tier',
      labelNames: ['cache', 'level'],
      registers,
    }),
    misses: new Counter({
      name: 'ha_cache_misses_total',
      help: 'Cache misses by tier',
      labelNames: ['cache', 'level'],
      registers,
    }),
    negativeHits: new Counter({
      name: 'ha_cache_negative_hits_total',
      help: 'Lookups answered by a cached not-found',
      labelNames: ['cache'],
      registers,
    }),
    fills: new Counter({
      name: 'ha_cache_fills_total',
      help: 'Chain (L3) loads by result',
      labelNames: ['cache', 'result'],
      registers,
    }),
    lockAcquisitions: new Counter({
      name: 'ha_cache_lock_acquisitions_total',
      help: 'Fill-lock attempts by result',
      labelNames: ['cache', 'result'],
      registers,
    }),
    lockWaits: new Counter({
      name: 'ha_cache_lock_waits_total',
      help: 'Waits on another replica filling L2, by outcome',
      labelNames: ['cache', 'outcome'],
      registers,
    }),
    errors: new Counter({
      name: 'ha_cache_errors_total',
      help: 'Cache errors absorbed (counted, not thrown) by tier',
      labelNames: ['cache', 'tier'],
      registers,
    }),
    invalidations: new Counter({
      name: 'ha_cache_invalidations_total',
      help: 'Invalidations applied by source',
      labelNames: ['cache', 'source'],
      registers,
    }),
    l1Entries: new Gauge({
      name: 'ha_cache_l1_entries',
      help: 'Entries held in L1',
      labelNames: ['cache'],
      registers,
    }),
    supplierContaminated: new Counter({
      name: 'ha_cache_supplier_contaminated_total',
      help: 'Supplier registry entries ignored as corrupt (staked, active, no services)',
      labelNames: ['source'],
      registers,
    }),
    blockEvents: new Counter({
      name: 'ha_cache_block_events_total',
      help: 'Block events received, by result (advanced | stale | invalid)',
      labelNames: ['result'],
      registers,
    }),
    blockEventsDropped: new Counter({
      name: 'ha_cache_block_events_dropped_total',
      help: 'Block events dropped because a consumer queue was full',
      labelNames: ['channel'],
      registers,
    }),
    currentHeight: new Gauge({
      name: 'ha_cache_current_height',
      help: 'Highest block height seen on the block events channel',
      registers,
    }),
  };
}
