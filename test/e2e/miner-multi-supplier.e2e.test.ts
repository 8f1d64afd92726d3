/**
 * Several suppliers end to end on one machine: the localnet, real Redis, a real relayer holding
 * three supplier keys (relayer-fixtures.ts, `extraSuppliers`) and two miner replicas that split the
 * suppliers between them by leases. A gateway-side client sends relays to every supplier in two
 * sessions, a different number per (supplier, session) so a mix-up cannot cancel out. The test
 * then produces blocks through the claim, proof and settlement windows and checks, for every
 * (supplier, session): the claim lands in its window with exactly the relays and compute units the
 * client saw succeed, the required proof lands and validates, settlement credits the supplier's
 * owner, and the ledger's buckets add up to the relays served.
 *
 * testGenesis: 4-block sessions, proof_request_probability 1, num_suppliers_per_session left at
 * its default (50), so all three suppliers are in every session. Session [5, 8]: claim window
 * [10, 14], proof window [14, 18], settled at 18. Session [9, 12]: claim [14, 18], proof [18, 22],
 * settled at 22.
 */
import pino from 'pino';
import { Registry } from 'prom-client';
import { AuthInfo, TxRaw } from 'cosmjs-types/cosmos/tx/v1beta1/tx';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningMiner } from '../../cmd/miner.js';
import {
  MinerLedger,
  SessionStore,
  createMinerLifecycleMetrics,
  settledClaimsFrom,
} from '../../miner/index.js';
import { pb, type SessionHeader } from '../../protocol/index.js';
import { APP, APP_STAKE, OWNER, SUPPLIER, testKey, type TestKey } from './localnet-fixtures.js';
import { driveTo, sendRelays, startMinerReplica, waitFor } from './miner-fixtures.js';
import { startRelayerStack, type RelayerStack } from './relayer-fixtures.js';

/** compute_units_per_relay of `anvil` in testGenesis. */
const CUPR = 2n;
/** compute_units_to_tokens_multiplier / compute_unit_cost_granularity (localnet defaults). */
const UPOKT_PER_CU = 42_000_000n / 1_000_000n;
/** mint_ratio 1, mint_equals_burn_claim_distribution.supplier 0.7 (localnet defaults). */
const supplierShare = (settled: bigint): bigint => (settled * 7n) / 10n;

const SUPPLIER_2 = testKey('supplier-2');
const OWNER_2 = testKey('supplier-2-owner');
const SUPPLIER_3 = testKey('supplier-3');
const OWNER_3 = testKey('supplier-3-owner');

interface Supplier {
  name: string;
  key: TestKey;
  owner: TestKey;
  /** Relays the client sends in the first and the second session. */
  sends: [number, number];
}

const SUPPLIERS: readonly Supplier[] = [
  { name: 'supplier-1', key: SUPPLIER, owner: OWNER, sends: [5, 2] },
  { name: 'supplier-2', key: SUPPLIER_2, owner: OWNER_2, sends: [3, 6] },
  { name: 'supplier-3', key: SUPPLIER_3, owner: OWNER_3, sends: [7, 4] },
];

const silent = pino({ level: 'silent' });

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

function txOf(stack: RelayerStack, hash: string | undefined): { height: number; code: number } {
  const tx = stack.chain.net.chain.tx(hash ?? '');
  return { height: tx?.height ?? -1, code: tx?.result.code ?? -1 };
}

function feeOf(stack: RelayerStack, hash: string): bigint {
  const tx = stack.chain.net.chain.tx(hash)!;
  return BigInt(AuthInfo.decode(TxRaw.decode(tx.bytes).authInfoBytes).fee!.amount[0]!.amount);
}

/** `{phase}:{result}` → value of ha_miner_tx_attempts_total on a replica. */
async function txAttempts(m: RunningMiner): Promise<Record<string, number>> {
  const metric = await m.registry.getSingleMetric('ha_miner_tx_attempts_total')!.get();
  return Object.fromEntries(
    metric.values.map((v) => [`${v.labels['phase']}:${v.labels['result']}`, v.value]),
  );
}

/** Relays, compute units and validation status of the claim the chain holds. */
async function onChainClaim(
  stack: RelayerStack,
  header: SessionHeader,
  supplier: string,
): Promise<{ count: bigint; sum: bigint; status: pb.proofTypes.ClaimProofStatus }> {
  const claim = await stack.chain.query.getClaim(header.sessionId, supplier);
  const root = Buffer.from(claim.rootHash);
  return {
    count: root.readBigUInt64BE(40),
    sum: root.readBigUInt64BE(32),
    status: claim.proofValidationStatus,
  };
}

/** The supplier's settled upokt for the session in the block results at `height` (-1 if none). */
async function settledAt(
  stack: RelayerStack,
  height: number,
  supplier: string,
  sessionId: string,
): Promise<bigint> {
  const results = await stack.chain.query.getBlockResults(height);
  const s = settledClaimsFrom(results.finalizeBlockEvents, new Set([supplier])).filter(
    (c) => c.sessionId === sessionId,
  );
  return s.length === 1 ? s[0]!.settledUpokt : -1n;
}

describe('miner service with three suppliers split over two replicas', () => {
  it('every (supplier, session) is claimed and proved in its windows with exactly the relays served, settled to its owner, and its ledger adds up', async () => {
    const stack = await startRelayerStack({
      extraSuppliers: [
        { operator: SUPPLIER_2, owner: OWNER_2 },
        { operator: SUPPLIER_3, owner: OWNER_3 },
      ],
    });
    cleanups.push(() => stack.close());
    expect(stack.suppliers.map((k) => k.address)).toEqual(SUPPLIERS.map((s) => s.key.address));
    const store = new SessionStore(
      { redis: stack.redis, keys: stack.keys, log: silent },
      { ttl_seconds: 3600 },
    );
    const ledger = new MinerLedger({
      redis: stack.redis,
      keys: stack.keys,
      metrics: createMinerLifecycleMetrics(new Registry()),
    });
    const a = await startMinerReplica(stack, 'miner-a');
    cleanups.push(() => a.stop());
    const b = await startMinerReplica(stack, 'miner-b');
    cleanups.push(() => b.stop());
    const miners = [a, b];

    // Fair share ceil(3 / 2) = 2: the first replica takes all three, then hands one over.
    const splitMs = await waitFor(
      () => a.owned().length > 0 && b.owned().length > 0 && a.owned().length + b.owned().length === 3,
      10_000,
      'the replicas to split the suppliers',
    );
    const ownerOf = new Map<string, RunningMiner>();
    for (const m of miners) for (const op of m.owned()) ownerOf.set(op, m);
    expect([...ownerOf.keys()].sort()).toEqual(SUPPLIERS.map((s) => s.key.address).sort());
    expect([a.owned().length, b.owned().length].sort()).toEqual([1, 2]);
    expect(miners.filter((m) => m.isLeader).length).toBe(1);
    process.stdout.write(
      `miner multi-supplier: leases split ${a.owned().length}/${b.owned().length} after ${splitMs} ms\n`,
    );

    // All three suppliers are in the application's session.
    const sessionOf = await stack.chain.query.getSession(APP.address, 'anvil', stack.chain.net.chain.height);
    expect(sessionOf.suppliers.map((s) => s.operatorAddress).sort()).toEqual(
      SUPPLIERS.map((s) => s.key.address).sort(),
    );

    const consumed = async (s: Supplier, header: SessionHeader, n: number): Promise<void> => {
      await waitFor(
        async () => (await store.get(s.key.address, header.sessionId))?.relay_count === n,
        5_000,
        `${n} relays of ${s.name} in session ${header.sessionId} consumed`,
      );
    };

    const sessions: SessionHeader[] = [];
    /** ok[supplier index][session index] = relays the client saw succeed. */
    const ok: number[][] = SUPPLIERS.map(() => []);

    const first = await stack.session('anvil');
    expect([Number(first.sessionStartBlockHeight), Number(first.sessionEndBlockHeight)]).toEqual([5, 8]);
    sessions.push(first);
    for (const [i, s] of SUPPLIERS.entries())
      ok[i]!.push(await sendRelays(stack, first, s.sends[0], { supplier: s.key }));
    for (const [i, s] of SUPPLIERS.entries()) await consumed(s, first, ok[i]![0]!);

    await driveTo(stack, miners, 9);
    const second = await stack.session('anvil');
    expect([Number(second.sessionStartBlockHeight), Number(second.sessionEndBlockHeight)]).toEqual([9, 12]);
    expect(second.sessionId).not.toBe(first.sessionId);
    sessions.push(second);
    for (const [i, s] of SUPPLIERS.entries())
      ok[i]!.push(await sendRelays(stack, second, s.sends[1], { supplier: s.key }));
    for (const [i, s] of SUPPLIERS.entries()) await consumed(s, second, ok[i]![1]!);
    expect(ok).toEqual(SUPPLIERS.map((s) => s.sends));

    // Each supplier's stream was drained: consumed entries are acked and deleted.
    for (const s of SUPPLIERS) expect((await stack.streamEntries(s.key.address)).length).toBe(0);

    const balancesBefore = await Promise.all(
      SUPPLIERS.map((s) => stack.chain.query.getBalance(s.owner.address)),
    );
    expect(balancesBefore).toEqual([0n, 0n, 0n]);

    // Claims of [5, 8] go out at 10 and land at 11; at 14 its proofs and the claims of [9, 12] go
    // out (land at 15); the proofs of [9, 12] go out at 18 (land at 19). Settled at 18 and 22.
    const windows = [
      { claim: [10, 14], proof: [14, 18], settledAt: 18 },
      { claim: [14, 18], proof: [18, 22], settledAt: 22 },
    ] as const;
    const claimTx: string[][] = SUPPLIERS.map(() => []);
    const proofTx: string[][] = SUPPLIERS.map(() => []);

    const checkClaimed = async (k: number): Promise<void> => {
      for (const [i, s] of SUPPLIERS.entries()) {
        const header = sessions[k]!;
        const state = (await store.get(s.key.address, header.sessionId))!;
        const tx = txOf(stack, state.claim_tx_hash);
        const [open, close] = windows[k]!.claim;
        expect({
          supplier: s.name,
          state: state.state,
          code: tx.code,
          inWindow: tx.height > open && tx.height <= close,
          claim: await onChainClaim(stack, header, s.key.address),
        }).toEqual({
          supplier: s.name,
          state: 'claimed',
          code: 0,
          inWindow: true,
          claim: {
            count: BigInt(ok[i]![k]!),
            sum: BigInt(ok[i]![k]!) * CUPR,
            status: pb.proofTypes.ClaimProofStatus.PENDING_VALIDATION,
          },
        });
        claimTx[i]![k] = state.claim_tx_hash!;
      }
    };
    const checkProved = async (k: number): Promise<void> => {
      for (const [i, s] of SUPPLIERS.entries()) {
        const header = sessions[k]!;
        const state = (await store.get(s.key.address, header.sessionId))!;
        const tx = txOf(stack, state.proof_tx_hash);
        const [open, close] = windows[k]!.proof;
        expect({
          supplier: s.name,
          state: state.state,
          code: tx.code,
          inWindow: tx.height > open && tx.height <= close,
          claim: await onChainClaim(stack, header, s.key.address),
        }).toEqual({
          supplier: s.name,
          state: 'proved',
          code: 0,
          inWindow: true,
          claim: {
            count: BigInt(ok[i]![k]!),
            sum: BigInt(ok[i]![k]!) * CUPR,
            status: pb.proofTypes.ClaimProofStatus.VALIDATED,
          },
        });
        proofTx[i]![k] = state.proof_tx_hash!;
      }
    };

    await driveTo(stack, miners, 12);
    await checkClaimed(0);
    await driveTo(stack, miners, 16);
    await checkProved(0);
    await checkClaimed(1);
    await driveTo(stack, miners, 20);
    await checkProved(1);
    await driveTo(stack, miners, 22);

    // Every claim and proof was sent by the replica holding the supplier's lease, once.
    for (const m of miners) {
      const n = m.owned().length * sessions.length;
      expect({ instance: m.instanceId, attempts: await txAttempts(m) }).toEqual({
        instance: m.instanceId,
        attempts: { 'claim:accepted': n, 'proof:accepted': n },
      });
    }
    // Each tx was signed by the supplier it claims for (its operator paid the fee).
    for (const [i, s] of SUPPLIERS.entries()) {
      for (const hash of [...claimTx[i]!, ...proofTx[i]!]) {
        const signer = AuthInfo.decode(TxRaw.decode(stack.chain.net.chain.tx(hash)!.bytes).authInfoBytes)
          .signerInfos[0]!.publicKey!.value;
        expect({
          supplier: s.name,
          signedByOperator: Buffer.from(signer).includes(Buffer.from(s.key.publicKey)),
        }).toEqual({
          supplier: s.name,
          signedByOperator: true,
        });
      }
    }

    // Settlement: each claim settles relays × CUPR × 42 upokt; the owner gets the supplier share.
    const settled: bigint[][] = [];
    for (const [i, s] of SUPPLIERS.entries()) {
      settled.push([]);
      for (const [k, header] of sessions.entries()) {
        settled[i]!.push(await settledAt(stack, windows[k]!.settledAt, s.key.address, header.sessionId));
      }
    }
    expect(settled).toEqual(ok.map((row) => row.map((n) => BigInt(n) * CUPR * UPOKT_PER_CU)));
    const balancesAfter = await Promise.all(
      SUPPLIERS.map((s) => stack.chain.query.getBalance(s.owner.address)),
    );
    expect(balancesAfter.map((v, i) => v - balancesBefore[i]!)).toEqual(
      settled.map((row) => row.reduce((acc, v) => acc + supplierShare(v), 0n)),
    );
    const totalSettled = settled.flat().reduce((x, y) => x + y, 0n);
    const app = await stack.chain.query.getApplication(APP.address);
    expect(BigInt(app.stake!.amount)).toBe(APP_STAKE - totalSettled);

    // The ledger of every (supplier, session): mined = claimed = proven = the client's successes,
    // the settlement the chain reported, and the fees of its two txs.
    for (const [i, s] of SUPPLIERS.entries()) {
      for (const [k, header] of sessions.entries()) {
        const n = BigInt(ok[i]![k]!);
        expect({
          supplier: s.name,
          session: k,
          ledger: await ledger.get(s.key.address, header.sessionId),
        }).toEqual({
          supplier: s.name,
          session: k,
          ledger: {
            relays: { mined: n, claimed: n, proven: n },
            upokt: {
              settled_upokt: settled[i]![k]!,
              fee_estimated_upokt: 2n,
              fee_actual_upokt: feeOf(stack, claimTx[i]![k]!) + feeOf(stack, proofTx[i]![k]!),
            },
          },
        });
      }
    }

    // The replicas' ledger counters together add up to every relay served.
    const served = ok.flat().reduce((x, y) => x + y, 0);
    expect(served).toBe(27);
    const bucketTotals: Record<string, number> = {};
    for (const m of miners) {
      const metric = await m.registry.getSingleMetric('ha_miner_ledger_relays_total')!.get();
      for (const v of metric.values) {
        const bucket = String(v.labels['bucket']);
        bucketTotals[bucket] = (bucketTotals[bucket] ?? 0) + v.value;
      }
    }
    expect(bucketTotals).toEqual({ mined: served, claimed: served, proven: served });
  }, 60_000);
});
