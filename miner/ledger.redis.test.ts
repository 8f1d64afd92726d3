import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import { KeyBuilder } from '../transport/index.js';
import { useRedis } from '../test/helpers/redis.js';
import { MinerLedger, ledgerKey, settledClaimsFrom, type RelayBucket } from './ledger.js';
import { createMinerLifecycleMetrics } from './miner-metrics.js';

const r = useRedis();
const SUPPLIER = 'pokt1supplier';
const SESSION = 'abc123';

function build(ttl?: number) {
  const registry = new Registry();
  const metrics = createMinerLifecycleMetrics(registry);
  const ledger = new MinerLedger({ ...r.deps(), metrics }, ttl === undefined ? {} : { ttl_seconds: ttl });
  return { ledger, registry };
}

async function series(registry: Registry, name: string): Promise<unknown[]> {
  return (await registry.getSingleMetric(name)!.get()).values.map((v) => ({
    labels: v.labels,
    value: v.value,
  }));
}

describe('ledgerKey', () => {
  it('sits beside the session snapshot under the miner prefix', () => {
    expect(ledgerKey(new KeyBuilder(), SUPPLIER, SESSION)).toBe('ha:miner:ledger:pokt1supplier:abc123');
    expect(
      ledgerKey(new KeyBuilder({ namespace: { base_prefix: 'x', miner_prefix: 'm' } }), SUPPLIER, SESSION),
    ).toBe('x:m:ledger:pokt1supplier:abc123');
  });

  it('wraps the supplier in a hash tag with cluster_hash_tags', () => {
    expect(ledgerKey(new KeyBuilder({ cluster_hash_tags: true }), SUPPLIER, SESSION)).toBe(
      'ha:miner:ledger:{pokt1supplier}:abc123',
    );
  });

  it('refuses parts that would break the layout', () => {
    expect(() => ledgerKey(new KeyBuilder(), 'a b', SESSION)).toThrow(InvalidInputError);
    expect(() => ledgerKey(new KeyBuilder(), SUPPLIER, 'x:y')).toThrow(InvalidInputError);
    expect(() => ledgerKey(new KeyBuilder(), '', SESSION)).toThrow(InvalidInputError);
  });
});

describe('MinerLedger', () => {
  it('adds relays and uPOKT per session and mirrors them into the metrics', async () => {
    const { ledger, registry } = build();
    await ledger.addRelays(SUPPLIER, SESSION, 'mined', 5n);
    await ledger.addRelays(SUPPLIER, SESSION, 'mined', 2n);
    await ledger.addRelays(SUPPLIER, SESSION, 'claimed', 7n);
    await ledger.addRelays(SUPPLIER, SESSION, 'lost:proof_missing', 7n);
    await ledger.addRelays(SUPPLIER, 'other', 'dropped', 1n);
    await ledger.addUpokt(SUPPLIER, SESSION, 'settled_upokt', 252n);
    await ledger.recordUnprofitable(SUPPLIER, 'other', 3n, 9n);
    expect(await ledger.get(SUPPLIER, SESSION)).toEqual({
      relays: { mined: 7n, claimed: 7n, 'lost:proof_missing': 7n },
      upokt: { settled_upokt: 252n },
    });
    expect(await ledger.get(SUPPLIER, 'other')).toEqual({
      relays: { dropped: 1n, 'lost:skipped_unprofitable': 3n },
      upokt: { fee_estimated_upokt: 9n },
    });
    expect(await series(registry, 'ha_miner_ledger_relays_total')).toEqual([
      { labels: { bucket: 'mined' }, value: 7 },
      { labels: { bucket: 'claimed' }, value: 7 },
      { labels: { bucket: 'lost:proof_missing' }, value: 7 },
      { labels: { bucket: 'dropped' }, value: 1 },
      { labels: { bucket: 'lost:skipped_unprofitable' }, value: 3 },
    ]);
    expect(await series(registry, 'ha_miner_ledger_upokt_total')).toEqual([
      { labels: { kind: 'settled' }, value: 252 },
      { labels: { kind: 'fee_estimated' }, value: 9 },
    ]);
  });

  it('keeps counts written by another replica (HINCRBY, never overwritten)', async () => {
    const a = build().ledger;
    const b = build().ledger;
    await Promise.all([
      a.addRelays(SUPPLIER, SESSION, 'mined', 1n),
      b.addRelays(SUPPLIER, SESSION, 'mined', 1n),
    ]);
    expect(await a.get(SUPPLIER, SESSION)).toEqual({ relays: { mined: 2n }, upokt: {} });
  });

  it('sets the TTL on every write, none with 0', async () => {
    await build(120).ledger.addRelays(SUPPLIER, SESSION, 'mined', 1n);
    const key = ledgerKey(r.keys(), SUPPLIER, SESSION);
    expect(await r.client.ttl(key)).toBeGreaterThan(100);
    await build(0).ledger.addRelays(SUPPLIER, 's2', 'mined', 1n);
    expect(await r.client.ttl(ledgerKey(r.keys(), SUPPLIER, 's2'))).toBe(-1);
  });

  it('writes nothing for zero and reads an unknown session as empty', async () => {
    const { ledger } = build();
    await ledger.addRelays(SUPPLIER, SESSION, 'mined', 0n);
    await ledger.addUpokt(SUPPLIER, SESSION, 'settled_upokt', 0n);
    expect(await r.client.exists(ledgerKey(r.keys(), SUPPLIER, SESSION))).toBe(0);
    expect(await ledger.get(SUPPLIER, SESSION)).toEqual({ relays: {}, upokt: {} });
  });

  it('ignores fields it does not know when reading', async () => {
    const { ledger } = build();
    await r.client.hset(ledgerKey(r.keys(), SUPPLIER, SESSION), 'mined', '4', 'junk', '1', 'claimed', 'x');
    expect(await ledger.get(SUPPLIER, SESSION)).toEqual({ relays: { mined: 4n }, upokt: {} });
  });

  it('refuses negative amounts, unknown buckets and a bad TTL', async () => {
    const { ledger } = build();
    await expect(ledger.addRelays(SUPPLIER, SESSION, 'mined', -1n)).rejects.toThrow(InvalidInputError);
    await expect(ledger.addRelays(SUPPLIER, SESSION, 'lost:nope' as RelayBucket, 1n)).rejects.toThrow(
      InvalidInputError,
    );
    await expect(ledger.addUpokt(SUPPLIER, SESSION, 'settled_upokt', -5n)).rejects.toThrow(InvalidInputError);
    await expect(ledger.addUpokt(SUPPLIER, SESSION, 'tip' as never, 5n)).rejects.toThrow(InvalidInputError);
    await expect(ledger.addRelays(SUPPLIER, SESSION, 'mined', 2n ** 63n)).rejects.toThrow(InvalidInputError);
    await expect(ledger.recordUnprofitable(SUPPLIER, SESSION, 1n, -1n)).rejects.toThrow(InvalidInputError);
    expect(() => build(-1)).toThrow(InvalidInputError);
    expect(await r.client.exists(ledgerKey(r.keys(), SUPPLIER, SESSION))).toBe(0);
  });
});

describe('MinerLedger settlements', () => {
  const settled = { supplier: SUPPLIER, sessionId: SESSION, settledUpokt: 252n };

  it('sets the settled amount once per session, however often the block is read', async () => {
    const { ledger, registry } = build();
    await ledger.recordSettlement(settled, 14);
    await ledger.recordSettlement(settled, 14);
    expect(await ledger.get(SUPPLIER, SESSION)).toEqual({ relays: {}, upokt: { settled_upokt: 252n } });
    expect(await r.client.hget(ledgerKey(r.keys(), SUPPLIER, SESSION), 'settlement_height')).toBe('14');
    expect(await series(registry, 'ha_miner_ledger_upokt_total')).toEqual([
      { labels: { kind: 'settled' }, value: 252 },
    ]);
  });

  it('reads the settled claims of owned suppliers from block results', async () => {
    const { ledger } = build();
    const chain = {
      getBlockResults: (height: number) =>
        Promise.resolve({
          finalizeBlockEvents: [
            {
              type: 'pocket.tokenomics.EventClaimSettled',
              attributes: [
                { key: 'supplier_operator_address', value: `"${SUPPLIER}"` },
                { key: 'session_id', value: `"${SESSION}"` },
                { key: 'settled_upokt', value: `"${height}upokt"` },
              ],
            },
          ],
        }),
    };
    expect(await ledger.recordSettlementsAt(chain, 30, new Set([SUPPLIER]))).toEqual([
      { supplier: SUPPLIER, sessionId: SESSION, settledUpokt: 30n },
    ]);
    expect(await ledger.recordSettlementsAt(chain, 30, new Set(['pokt1other']))).toEqual([]);
    expect(await ledger.get(SUPPLIER, SESSION)).toEqual({ relays: {}, upokt: { settled_upokt: 30n } });
  });

  it('refuses a negative amount or a height below 1', async () => {
    const { ledger } = build();
    await expect(ledger.recordSettlement({ ...settled, settledUpokt: -1n }, 14)).rejects.toThrow(
      InvalidInputError,
    );
    await expect(ledger.recordSettlement(settled, 0)).rejects.toThrow(InvalidInputError);
    await expect(ledger.recordSettlement(settled, 1.5)).rejects.toThrow(InvalidInputError);
    expect(await r.client.exists(ledgerKey(r.keys(), SUPPLIER, SESSION))).toBe(0);
  });
});

describe('settledClaimsFrom', () => {
  const ev = (type: string, attrs: Record<string, string>) => ({
    type,
    attributes: Object.entries(attrs).map(([key, value]) => ({ key, value })),
  });

  it('reads settled claims of owned suppliers and skips everything else', () => {
    const owned = new Set(['pokt1a']);
    expect(
      settledClaimsFrom(
        [
          ev('pocket.tokenomics.EventClaimSettled', {
            supplier_operator_address: '"pokt1a"',
            session_id: '"s1"',
            settled_upokt: '"252upokt"',
          }),
          ev('pocket.tokenomics.EventClaimSettled', {
            supplier_operator_address: '"pokt1b"',
            session_id: '"s2"',
            settled_upokt: '"1upokt"',
          }),
          ev('pocket.tokenomics.EventClaimExpired', {
            supplier_operator_address: '"pokt1a"',
            session_id: '"s3"',
          }),
          ev('pocket.tokenomics.EventClaimSettled', {
            supplier_operator_address: '"pokt1a"',
            session_id: '"s4"',
            settled_upokt: '"12uatom"',
          }),
          ev('pocket.tokenomics.EventClaimSettled', {
            supplier_operator_address: '"pokt1a"',
            settled_upokt: '"1upokt"',
          }),
          ev('pocket.tokenomics.EventClaimSettled', {
            supplier_operator_address: 'not json',
            session_id: '"s5"',
            settled_upokt: '"1upokt"',
          }),
        ],
        owned,
      ),
    ).toEqual([{ supplier: 'pokt1a', sessionId: 's1', settledUpokt: 252n }]);
  });
});
