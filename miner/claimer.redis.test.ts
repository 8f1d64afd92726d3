import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { BroadcastResult } from '../chain/index.js';
import { pb, sessionWindows } from '../protocol/index.js';
import { useRedis } from '../test/helpers/redis.js';
import { Claimer, StaticFeeEstimator } from './claimer.js';
import { MinerLedger } from './ledger.js';
import { RedisSessionTrees, sessionParamsFromPb, type MinerChain } from './lifecycle.js';
import { createMinerLifecycleMetrics } from './miner-metrics.js';
import { RebroadcastStore } from './reconciler.js';
import { SessionStore } from './session-store.js';

const r = useRedis();
const log = pino({ level: 'silent' });
const SUPPLIER = 'pokt1supplier';
const SHARED = pb.sharedParams.Params.fromPartial({
  numBlocksPerSession: 4n,
  gracePeriodEndOffsetBlocks: 1n,
  claimWindowOpenOffsetBlocks: 1n,
  claimWindowCloseOffsetBlocks: 4n,
  proofWindowCloseOffsetBlocks: 4n,
  computeUnitsToTokensMultiplier: 42_000_000n,
  computeUnitCostGranularity: 1_000_000n,
});
const W4 = sessionWindows(sessionParamsFromPb(SHARED), 4);

/** Chain answers for sessions a, b, c of app pokt1app / service anvil at start 1 (CUPR 2). */
const chain = {
  getComputeUnitsPerRelayAtHeight: () => Promise.resolve(2n),
  getSharedParamsAtHeight: () => Promise.resolve(SHARED),
  getRelayMiningDifficultyAtHeight: () =>
    Promise.resolve(
      pb.serviceDifficulty.RelayMiningDifficulty.fromPartial({ targetHash: Buffer.alloc(32, 0xff) }),
    ),
  getProofParams: () => Promise.resolve(pb.proofParams.Params.fromPartial({})),
  getSession: () => Promise.reject(new Error('node unreachable')),
} as unknown as MinerChain;

type CreateClaims = (s: string, msgs: readonly pb.proofTx.MsgCreateClaim[]) => Promise<BroadcastResult>;

async function setup(
  sessions: string[],
  createClaims?: CreateClaims,
  drained?: (supplier: string, timeoutMs: number) => Promise<boolean>,
) {
  const metrics = createMinerLifecycleMetrics(new Registry());
  const store = new SessionStore({ ...r.deps(), log }, { ttl_seconds: 600 });
  const trees = new RedisSessionTrees(r.deps());
  for (const [i, id] of sessions.entries()) {
    await store.ensure({
      session_id: id,
      supplier_operator_address: SUPPLIER,
      service_id: 'anvil',
      application_address: 'pokt1app',
      session_start_height: 1,
      session_end_height: 4,
    });
    await store.transition(SUPPLIER, id, ['active'], 'claiming');
    const { trie } = await trees.trie(SUPPLIER, id);
    for (let n = 0; n <= i; n++) {
      await trie.update(new Uint8Array(32).fill(n + 1), new TextEncoder().encode(`${id}/${n}`), 2n);
    }
  }
  const sent: string[][] = [];
  let nextHash = 0;
  const tx = {
    /** Refuses any batch holding session b in simulation; accepts the rest. */
    createClaims:
      createClaims ??
      ((_s: string, msgs: readonly pb.proofTx.MsgCreateClaim[]): Promise<BroadcastResult> => {
        const ids = msgs.map((m) => m.sessionHeader!.sessionId);
        sent.push(ids);
        if (ids.includes('b')) {
          return Promise.resolve({
            ok: false,
            stage: 'simulate',
            code: 1126,
            codespace: 'proof',
            log: 'compute units mismatch',
            txHash: undefined,
          });
        }
        nextHash++;
        return Promise.resolve({
          ok: true,
          txHash: String(nextHash).padStart(64, '0'),
          gasLimit: 100n,
          feeAmount: 10n,
          sequence: 0n,
        });
      }),
  };
  const ledger = new MinerLedger({ ...r.deps(), metrics });
  const claimer = new Claimer(
    {
      store,
      chain,
      tx,
      trees,
      rebroadcast: new RebroadcastStore(r.deps()),
      ledger,
      fees: new StaticFeeEstimator({ chain }),
      currentHeight: () => 6,
      log,
      metrics,
      sleep: () => Promise.resolve(),
      ...(drained !== undefined ? { drained } : {}),
    },
    { retry_delay_ms: 0 },
  );
  return { store, claimer, sent, ledger, metrics };
}

describe('Claimer batches', () => {
  it('splits a batch the chain refuses in simulation and claims every session it accepts', async () => {
    const { store, claimer, sent, ledger } = await setup(['a', 'b', 'c']);
    const sessions = await store.list(SUPPLIER);
    const undecided = await claimer.runClaimGroup({
      supplier: SUPPLIER,
      sessionEndHeight: 4,
      sessions,
      windows: W4,
      height: 6,
    });
    expect(undecided).toEqual([]);
    const ids = sessions.map((s) => s.session_id);
    expect(sent[0]).toEqual(ids);
    // Then one tx per session; b alone is refused on each of its three attempts.
    expect(sent.slice(1)).toEqual(ids.flatMap((id) => (id === 'b' ? [['b'], ['b'], ['b']] : [[id]])));
    const states = Object.fromEntries(
      (await store.list(SUPPLIER)).map((s) => [
        s.session_id,
        { state: s.state, tx: s.claim_tx_hash !== undefined },
      ]),
    );
    expect(states).toEqual({
      a: { state: 'claimed', tx: true },
      b: { state: 'claim_tx_error', tx: false },
      c: { state: 'claimed', tx: true },
    });
    expect({
      a: await ledger.get(SUPPLIER, 'a'),
      b: await ledger.get(SUPPLIER, 'b'),
      c: await ledger.get(SUPPLIER, 'c'),
    }).toEqual({
      a: { relays: { claimed: 1n }, upokt: { fee_estimated_upokt: 2n, fee_actual_upokt: 10n } },
      b: { relays: { 'lost:claim_failed': 2n }, upokt: {} },
      c: { relays: { claimed: 3n }, upokt: { fee_estimated_upokt: 2n, fee_actual_upokt: 10n } },
    });
  });

  it('keeps the sessions claiming and hands them back when no attempt reached the chain', async () => {
    let calls = 0;
    let down = true;
    const { store, claimer, ledger } = await setup(['a'], () => {
      calls++;
      if (down) return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:26657'));
      return Promise.resolve({
        ok: true,
        txHash: 'ab'.repeat(32),
        gasLimit: 100n,
        feeAmount: 10n,
        sequence: 0n,
      });
    });
    const group = async () => ({
      supplier: SUPPLIER,
      sessionEndHeight: 4,
      sessions: await store.list(SUPPLIER),
      windows: W4,
      height: 6,
    });
    expect(await claimer.runClaimGroup(await group())).toEqual(['a']);
    expect(calls).toBe(3);
    expect((await store.get(SUPPLIER, 'a'))!.state).toBe('claiming');
    expect(await ledger.get(SUPPLIER, 'a')).toEqual({ relays: {}, upokt: {} });
    down = false;
    expect(await claimer.runClaimGroup(await group())).toEqual([]);
    expect((await store.get(SUPPLIER, 'a'))!.state).toBe('claimed');
    expect((await ledger.get(SUPPLIER, 'a')).relays).toEqual({ claimed: 1n });
  });

  it('waits for the relay stream to be consumed before sealing, and counts a wait that timed out', async () => {
    const order: string[] = [];
    const waits: [string, number][] = [];
    let drainedAnswer = true;
    const { store, claimer, metrics } = await setup(
      ['a'],
      (_s, msgs) => {
        order.push(`claim ${msgs.length}`);
        return Promise.resolve({
          ok: true,
          txHash: 'cd'.repeat(32),
          gasLimit: 100n,
          feeAmount: 10n,
          sequence: 0n,
        });
      },
      (supplier, timeoutMs) => {
        waits.push([supplier, timeoutMs]);
        order.push('drained');
        return Promise.resolve(drainedAnswer);
      },
    );
    const group = {
      supplier: SUPPLIER,
      sessionEndHeight: 4,
      sessions: await store.list(SUPPLIER),
      windows: W4,
      height: 6,
    };
    expect(await claimer.runClaimGroup(group)).toEqual([]);
    expect(order).toEqual(['drained', 'claim 1']);
    expect(waits).toEqual([[SUPPLIER, 5_000]]);
    expect((await metrics.claimDrainTimeouts.get()).values[0]?.value ?? 0).toBe(0);
    drainedAnswer = false;
    await store.transition(SUPPLIER, 'a', ['claimed'], 'claiming');
    const again = {
      ...group,
      sessions: (await store.list(SUPPLIER)).map((x) => ({ ...x, claim_tx_hash: undefined })),
    };
    await claimer.runClaimGroup(again);
    expect((await metrics.claimDrainTimeouts.get()).values[0]?.value).toBe(1);
  });

  it('abandons the group when at most two blocks are left in the window', async () => {
    const { store, claimer, sent, ledger } = await setup(['a']);
    const sessions = await store.list(SUPPLIER);
    await claimer.runClaimGroup({
      supplier: SUPPLIER,
      sessionEndHeight: 4,
      sessions,
      windows: W4,
      height: 8,
    });
    expect(sent).toEqual([]);
    expect((await store.get(SUPPLIER, 'a'))!.state).toBe('claim_window_closed');
    // The snapshot counted no relays, so nothing is booked as lost.
    expect(await ledger.get(SUPPLIER, 'a')).toEqual({ relays: {}, upokt: {} });
  });
});
