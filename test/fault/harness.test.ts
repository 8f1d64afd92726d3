/**
 * The fault stack with no fault: real relayer and miner processes serve an open-loop load, every
 * answer verifies, and the chain claims exactly the relays the client saw succeed, every claim
 * proved and settled.
 */
import { describe, expect, it } from 'vitest';
import { recordReliability } from '../helpers/reliability.js';
import { faultRecord, claimWindowOpenOffset, useFaultStack } from './harness.js';

// 1 s blocks (4 s sessions) and a claim window opening two blocks after the grace period:
// relays slowed by a busy machine still reach the miners before the claim is built.
const stack = useFaultStack({
  relayers: 2,
  miners: 2,
  blockTimeMs: 1_000,
  genesis: claimWindowOpenOffset(2),
});

describe('fault stack without a fault', () => {
  it('serves 100 RPS over two relayer processes and the chain claims exactly the client successes', async () => {
    const s = stack();
    expect(s.relayers.map((r) => r.running)).toEqual([true, true]);
    expect(s.miners.map((m) => m.running)).toEqual([true, true]);
    const load = await s.load({ rps: 100, durationMs: 4_000 });
    expect(load.failuresByReason).toEqual({});
    expect(load.successes).toBe(load.samples.length);
    expect(load.samples.length).toBeGreaterThanOrEqual(395);
    // Round robin: relayer i takes every other relay, and each relayer alternates the suppliers.
    const n = load.samples.length;
    expect([0, 1].map((i) => load.samples.filter((x) => x.relayer === i).length)).toEqual([
      Math.ceil(n / 2),
      Math.floor(n / 2),
    ]);
    expect(new Set(load.samples.map((x) => x.supplier))).toEqual(
      new Set(s.keys.suppliers.map((k) => k.address)),
    );
    const ledger = await s.ledger(load);
    recordReliability(
      'fault',
      'no-fault-baseline',
      faultRecord('no fault: 2 relayer and 2 miner processes, 100 RPS for 4 s', 100, load, ledger, {
        extra: { sessions: ledger.perSession.length },
      }),
    );
    expect({
      client: ledger.client_successes,
      claimed: ledger.claimed_on_chain,
      lost: ledger.relays_lost,
      expired: ledger.expired_claims,
      missed: ledger.missed_proofs,
    }).toEqual({ client: load.successes, claimed: load.successes, lost: 0, expired: 0, missed: 0 });
    for (const p of ledger.perSession) expect(p).toEqual({ ...p, claimed: p.client, proved: true });
    expect(new Set(ledger.perSession.map((p) => p.supplier))).toEqual(
      new Set(s.keys.suppliers.map((k) => k.address)),
    );
  }, 60_000);
});
