/**
 * The relayer's share of the per-session ledger (miner.md, issue ledger): the served relays that
 * never reach a claim because of something only the relayer sees — below the relay-mining
 * difficulty, served over the app's budget (optimistic services), or dropped (invalid after
 * serving, meter or publish failure). Counted with HINCRBY into the same Redis hash the miner
 * writes its buckets to, so `mined + below_difficulty + over_serviced + dropped` = relays served.
 * Writes are fire-and-forget; a failed write is counted, never retried, never blocks a relay.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { KeyBuilder } from '../transport/index.js';

export type RelayerLedgerBucket = 'below_difficulty' | 'over_serviced' | 'dropped';

/** Same default TTL as the miner's ledger hashes (24 h). */
export const LEDGER_TTL_SECONDS = 86_400;

export class RelayerLedgerCounts {
  private readonly errors: Counter<'bucket'>;
  private readonly counted: Counter<'bucket'>;

  constructor(
    private readonly deps: { redis: Redis; keys: KeyBuilder; log: Logger; registry: Registry },
    private readonly ttlSeconds = LEDGER_TTL_SECONDS,
  ) {
    const registers = [deps.registry];
    this.counted =
      (deps.registry.getSingleMetric('ha_relayer_ledger_relays_total') as Counter<'bucket'> | undefined) ??
      new Counter({
        name: 'ha_relayer_ledger_relays_total',
        help: 'Served relays the relayer put in a ledger bucket (below_difficulty, over_serviced, dropped)',
        labelNames: ['bucket'],
        registers,
      });
    this.errors =
      (deps.registry.getSingleMetric('ha_relayer_ledger_write_errors_total') as
        Counter<'bucket'> | undefined) ??
      new Counter({
        name: 'ha_relayer_ledger_write_errors_total',
        help: 'Ledger bucket writes that failed (the relay is still counted in Prometheus)',
        labelNames: ['bucket'],
        registers,
      });
  }

  /** Adds one relay of (supplier, session) to `bucket`. Never throws. */
  count(supplier: string, sessionId: string, bucket: RelayerLedgerBucket): void {
    this.counted.inc({ bucket });
    let key: string;
    try {
      key = this.deps.keys.minerLedger(supplier, sessionId);
    } catch {
      // Not a session id the key layout accepts (the relay was refused for it already).
      this.errors.inc({ bucket });
      return;
    }
    // Two plain commands, not MULTI: an ioredis Pipeline per relay outlives young collections
    // (see transport/redis-client.ts); ordering on the one connection is all this needs.
    Promise.all([
      this.deps.redis.hincrby(key, bucket, 1),
      this.deps.redis.expire(key, this.ttlSeconds),
    ]).catch((err: unknown) => {
      this.errors.inc({ bucket });
      this.deps.log.debug({ err, bucket }, 'ledger bucket not written');
    });
  }
}
