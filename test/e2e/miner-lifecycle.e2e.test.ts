/**
 * The session lifecycle, claimer, prover, inclusion reconciler and ledger over real Redis and the
 * localnet chain simulator: a session trie filled through SmstRedisStore with signed relays,
 * blocks driven one by one through `onBlock` across the claim and proof windows, the claim and
 * the proof landing in their windows, the proof validated, the claim settled and the ledger adding
 * up. Also the proof-not-required path, a restart mid-`claiming` and a claim dropped from the
 * mempool that the reconciler re-broadcasts once.
 *
 * Session [1, 4] of testGenesis: claim window [6, 10], proof window [10, 14], settlement at 14.
 */
import pino from 'pino';
import { Registry } from 'prom-client';
import { AuthInfo, TxBody, TxRaw } from 'cosmjs-types/cosmos/tx/v1beta1/tx';
import { afterEach, describe, expect, it } from 'vitest';
import { TxClient } from '../../chain/index.js';
import { PROOF, SDK, attributeValue, type Genesis } from '../../localnet/index.js';
import { pb, type SessionHeader } from '../../protocol/index.js';
import { Claimer, StaticFeeEstimator, type StaticFeeEstimatorConfig } from '../../miner/claimer.js';
import { MinerLedger } from '../../miner/ledger.js';
import {
  RedisSessionTrees,
  SessionLifecycle,
  SessionWindowResolver,
  type SessionTrees,
} from '../../miner/lifecycle.js';
import { createMinerLifecycleMetrics, type MinerLifecycleMetrics } from '../../miner/miner-metrics.js';
import { Prover } from '../../miner/prover.js';
import {
  InclusionReconciler,
  RebroadcastStore,
  type InclusionReconcilerConfig,
} from '../../miner/reconciler.js';
import { SessionStore } from '../../miner/session-store.js';
import { SmstRedisStore } from '../../miner/smst-redis-store.js';
import { useRedis } from '../helpers/redis.js';
import {
  APP,
  OWNER,
  SUPPLIER,
  signedRelay,
  startChainWithClient,
  testGenesis,
  type ChainWithClient,
} from './localnet-fixtures.js';

const silent = pino({ level: 'silent' });
const r = useRedis();
const CUPR = 2n;

let handle: ChainWithClient | undefined;
afterEach(async () => {
  await handle?.stop();
  handle = undefined;
});

interface Miner {
  store: SessionStore;
  lifecycle: SessionLifecycle;
  reconciler: InclusionReconciler;
  ledger: MinerLedger;
  metrics: MinerLifecycleMetrics;
  registry: Registry;
  trees: RedisSessionTrees;
  published: string[];
}

interface MinerOptions {
  /** Wraps the trie access (fault injection). */
  wrapTrees?: (t: SessionTrees) => SessionTrees;
  fees?: StaticFeeEstimatorConfig;
  reconciler?: InclusionReconcilerConfig;
  /** Receives the log lines (JSON) of the replica. */
  logLines?: string[];
}

/** One miner replica's graph over the shared Redis and chain. */
async function buildMiner(h: ChainWithClient, opts: MinerOptions = {}): Promise<Miner> {
  const lines = opts.logLines;
  const log =
    lines === undefined
      ? silent
      : pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  const registry = new Registry();
  const metrics = createMinerLifecycleMetrics(registry);
  const deps = r.deps();
  const chain = h.query;
  const store = new SessionStore({ ...deps, log: silent }, { ttl_seconds: 3600 });
  const ledger = new MinerLedger({ ...deps, metrics });
  const trees = new RedisSessionTrees(deps, { live_root_checkpoint_interval: 1 });
  const rebroadcast = new RebroadcastStore(deps);
  const windows = new SessionWindowResolver(chain);
  const tx = new TxClient(
    {
      log: silent,
      query: chain,
      latestBlockTimeNs: () => BigInt(h.net.chain.latestBlock()!.timeMs) * 1_000_000n,
    },
    { chain_id: 'pocket', gas_price: '0.00001upokt' },
  );
  await tx.addSigner(SUPPLIER.privateKey);
  // The jobs re-check windows against the newest height the lifecycle has seen.
  const lifecycleRef: { lc?: SessionLifecycle } = {};
  const currentHeight = (): number => lifecycleRef.lc?.height ?? 0;
  const jobTrees = opts.wrapTrees?.(trees) ?? trees;
  const common = { store, chain, tx, trees: jobTrees, rebroadcast, ledger, currentHeight, log, metrics };
  const claimer = new Claimer(
    { ...common, fees: new StaticFeeEstimator({ chain }, opts.fees) },
    { retry_delay_ms: 10, block_time_ms: 1_000 },
  );
  const prover = new Prover(common, { retry_delay_ms: 10, block_time_ms: 1_000 });
  const published: string[] = [];
  const lifecycle = new SessionLifecycle({
    store,
    windows,
    claimer,
    prover,
    ledger,
    keys: deps.keys,
    publishMeterCleanup: (m) => {
      published.push(m);
      return Promise.resolve();
    },
    suppliers: () => [SUPPLIER.address],
    log,
    metrics,
  });
  const reconciler = new InclusionReconciler(
    { store: rebroadcast, chain, tx, windows, owns: (s) => s === SUPPLIER.address, log, metrics },
    { block_time_ms: 1_000, ...opts.reconciler },
  );
  lifecycleRef.lc = lifecycle;
  return { store, lifecycle, reconciler, ledger, metrics, registry, trees, published };
}

/** Relays of session 1 inserted the way the relay consumer does, through SmstRedisStore. */
async function fillSession(header: SessionHeader, count: number, miner: Miner, weight = CUPR): Promise<void> {
  await miner.store.ensure({
    session_id: header.sessionId,
    supplier_operator_address: SUPPLIER.address,
    service_id: header.serviceId,
    application_address: header.applicationAddress,
    session_start_height: Number(header.sessionStartBlockHeight),
    session_end_height: Number(header.sessionEndBlockHeight),
  });
  // A separate trie handle: the claimer resumes from what is in Redis, as after a failover.
  const { trie, store } = await SmstRedisStore.open(r.deps(), {
    supplier: SUPPLIER.address,
    session_id: header.sessionId,
    live_root_checkpoint_interval: 1,
  });
  for (let i = 0; i < count; i++) {
    const relay = signedRelay(header, i);
    await trie.update(relay.hash, relay.bytes, weight);
    await miner.store.addRelays(SUPPLIER.address, header.sessionId, 1, weight);
    await miner.ledger.addRelays(SUPPLIER.address, header.sessionId, 'mined', 1n);
  }
  await trie.commit();
  await store.checkpoint();
}

/** Commits blocks up to `to`, running the lifecycle (and its jobs) and the reconciler on each. */
async function driveTo(h: ChainWithClient, miner: Miner, to: number): Promise<void> {
  while (h.net.chain.height < to) {
    const b = h.net.chain.produceBlock();
    await miner.lifecycle.onBlock(b.height, b.hash);
    await miner.lifecycle.idle();
    await miner.reconciler.onBlock(b.height);
  }
}

function feeOf(h: ChainWithClient, txHash: string): bigint {
  const tx = h.net.chain.tx(txHash)!;
  const auth = AuthInfo.decode(TxRaw.decode(tx.bytes).authInfoBytes);
  return BigInt(auth.fee!.amount[0]!.amount);
}

async function start(
  genesis: Genesis = testGenesis(),
): Promise<{ h: ChainWithClient; header: SessionHeader }> {
  handle = await startChainWithClient(genesis, 4);
  const header = (await handle.query.getSession(APP.address, 'anvil', 1)).header!;
  return { h: handle, header };
}

async function series(registry: Registry, name: string): Promise<unknown[]> {
  return (await registry.getSingleMetric(name)!.get()).values.map((v) => ({
    labels: v.labels,
    value: v.value,
  }));
}

describe('miner session lifecycle on the localnet', () => {
  it('claims and proves in the windows; the chain validates, settles, and the ledger adds up', async () => {
    const { h, header } = await start();
    const miner = await buildMiner(h);
    await fillSession(header, 3, miner);
    const ownerBefore = h.net.chain.balance(OWNER.address);

    await driveTo(h, miner, 5);
    expect((await miner.store.get(SUPPLIER.address, header.sessionId))!.state).toBe('active');

    await driveTo(h, miner, 6);
    const claimed = (await miner.store.get(SUPPLIER.address, header.sessionId))!;
    expect(miner.published).toEqual([`${header.sessionId}|${SUPPLIER.address}`]);
    expect(claimed.state).toBe('claimed');
    await driveTo(h, miner, 7);
    const claimTx = h.net.chain.tx(claimed.claim_tx_hash!)!;
    expect({ height: claimTx.height, code: claimTx.result.code }).toEqual({ height: 7, code: 0 });
    const onChain = await h.query.getClaim(header.sessionId, SUPPLIER.address);
    expect(onChain).toEqual(
      pb.proofTypes.Claim.fromPartial({
        supplierOperatorAddress: SUPPLIER.address,
        sessionHeader: header,
        rootHash: Buffer.from(claimed.claimed_root_hash!),
        proofValidationStatus: pb.proofTypes.ClaimProofStatus.PENDING_VALIDATION,
      }),
    );
    const root = Buffer.from(claimed.claimed_root_hash!);
    expect({ sum: root.readBigUInt64BE(32), count: root.readBigUInt64BE(40) }).toEqual({
      sum: 6n,
      count: 3n,
    });

    await driveTo(h, miner, 10);
    const proved = (await miner.store.get(SUPPLIER.address, header.sessionId))!;
    expect(proved.state).toBe('proved');
    await driveTo(h, miner, 11);
    const proofTx = h.net.chain.tx(proved.proof_tx_hash!)!;
    expect({ height: proofTx.height, code: proofTx.result.code }).toEqual({ height: 11, code: 0 });
    const checked = h.net.chain
      .block(11)!
      .finalizeEvents.find((e) => e.type === 'pocket.proof.EventProofValidityChecked')!;
    expect(attributeValue(checked, 'claim_proof_status_int')).toBe(pb.proofTypes.ClaimProofStatus.VALIDATED);
    expect((await h.query.getClaim(header.sessionId, SUPPLIER.address)).proofValidationStatus).toBe(
      pb.proofTypes.ClaimProofStatus.VALIDATED,
    );
    // The trie is gone once proved.
    expect(
      await r.client.exists(...Object.values(r.keys().sessionTree(SUPPLIER.address, header.sessionId))),
    ).toBe(0);

    await driveTo(h, miner, 14);
    const owned = new Set([SUPPLIER.address]);
    const settled = await miner.ledger.recordSettlementsAt(h.query, 14, owned);
    expect(settled).toEqual([
      { supplier: SUPPLIER.address, sessionId: header.sessionId, settledUpokt: 252n },
    ]);
    // Reading the same block again changes nothing.
    await miner.ledger.recordSettlementsAt(h.query, 14, owned);
    expect(h.net.chain.balance(OWNER.address)).toBeGreaterThan(ownerBefore);

    expect(await miner.ledger.get(SUPPLIER.address, header.sessionId)).toEqual({
      relays: { mined: 3n, claimed: 3n, proven: 3n },
      upokt: {
        settled_upokt: 252n,
        fee_estimated_upokt: 2n,
        fee_actual_upokt: feeOf(h, claimed.claim_tx_hash!) + feeOf(h, proved.proof_tx_hash!),
      },
    });
    const rb = new RebroadcastStore(r.deps());
    expect(await rb.record(SUPPLIER.address, 4, header.sessionId)).toEqual({
      phase: 'proof',
      supplier: SUPPLIER.address,
      session_id: header.sessionId,
      session_end_height: 4,
      submit_height: 10,
      tx_hash: proved.proof_tx_hash,
      original_tx_hash: proved.proof_tx_hash,
      resends: 0,
      outcome: 'found',
      outcome_height: 11,
    });
    expect(await rb.groups('claim')).toEqual([]);
    expect(await rb.groups('proof')).toEqual([]);
    expect(await series(miner.registry, 'ha_miner_inclusion_outcomes_total')).toEqual([
      { labels: { phase: 'claim', outcome: 'found' }, value: 1 },
      { labels: { phase: 'proof', outcome: 'found' }, value: 1 },
    ]);
    expect(await series(miner.registry, 'ha_miner_ledger_upokt_total')).toEqual([
      { labels: { kind: 'fee_estimated' }, value: 2 },
      {
        labels: { kind: 'fee_actual' },
        value: Number(feeOf(h, claimed.claim_tx_hash!) + feeOf(h, proved.proof_tx_hash!)),
      },
      { labels: { kind: 'settled' }, value: 252 },
    ]);
    expect(await series(miner.registry, 'ha_miner_ledger_relays_total')).toEqual([
      { labels: { bucket: 'mined' }, value: 3 },
      { labels: { bucket: 'claimed' }, value: 3 },
      { labels: { bucket: 'proven' }, value: 3 },
    ]);
  });

  it('marks the session probabilistic_proved and sends no proof when none is required', async () => {
    const { h, header } = await start(
      testGenesis({
        proof: { proof_request_probability: 0, proof_requirement_threshold: '1000000000upokt' },
      }),
    );
    const miner = await buildMiner(h);
    await fillSession(header, 3, miner);
    await driveTo(h, miner, 10);
    const s = (await miner.store.get(SUPPLIER.address, header.sessionId))!;
    expect({ state: s.state, proof_tx_hash: s.proof_tx_hash }).toEqual({
      state: 'probabilistic_proved',
      proof_tx_hash: undefined,
    });
    expect(
      await r.client.exists(...Object.values(r.keys().sessionTree(SUPPLIER.address, header.sessionId))),
    ).toBe(0);
    await driveTo(h, miner, 14);
    for (let height = 8; height <= 14; height++) expect(h.net.chain.block(height)!.txs).toEqual([]);
    const settled = await miner.ledger.recordSettlementsAt(h.query, 14, new Set([SUPPLIER.address]));
    expect(settled).toEqual([
      { supplier: SUPPLIER.address, sessionId: header.sessionId, settledUpokt: 252n },
    ]);
    const ledger = await miner.ledger.get(SUPPLIER.address, header.sessionId);
    expect(ledger).toEqual({
      relays: { mined: 3n, claimed: 3n, proof_not_required: 3n },
      upokt: { settled_upokt: 252n, fee_estimated_upokt: 2n, fee_actual_upokt: feeOf(h, s.claim_tx_hash!) },
    });
  });

  it('restarts a session left in claiming without a tx hash, and its claim lands', async () => {
    const { h, header } = await start();
    const crashed = await buildMiner(h);
    await fillSession(header, 2, crashed);
    await driveTo(h, crashed, 5);
    // A replica wrote `claiming` at block 6 and died before its claim job ran.
    h.net.chain.produceBlock();
    expect(await crashed.store.transition(SUPPLIER.address, header.sessionId, ['active'], 'claiming')).toBe(
      true,
    );

    const next = await buildMiner(h);
    await driveTo(h, next, 7);
    const s = (await next.store.get(SUPPLIER.address, header.sessionId))!;
    expect(s.state).toBe('claimed');
    await driveTo(h, next, 8);
    expect(h.net.chain.tx(s.claim_tx_hash!)!.height).toBe(8);
    const claim = await h.query.getClaim(header.sessionId, SUPPLIER.address);
    expect(Buffer.from(claim.rootHash).readBigUInt64BE(40)).toBe(2n);
    expect(await series(next.registry, 'ha_miner_lifecycle_restarts_total')).toEqual([
      { labels: { phase: 'claim' }, value: 1 },
    ]);
  });

  it('re-broadcasts a claim dropped from the mempool once, at the window midpoint, and it lands', async () => {
    const { h, header } = await start();
    const miner = await buildMiner(h);
    await fillSession(header, 3, miner);
    await driveTo(h, miner, 5);
    h.net.chain.faults.dropNextTxs = 1;
    await driveTo(h, miner, 6);
    const s = (await miner.store.get(SUPPLIER.address, header.sessionId))!;
    expect(s.state).toBe('claimed');
    const original = s.claim_tx_hash!;
    await driveTo(h, miner, 7);
    expect(h.net.chain.tx(original)).toBeUndefined();
    const rb = new RebroadcastStore(r.deps());
    // Threshold = submit 6 + (close 10 − 6) / 2 = 8: nothing is resent at block 7.
    expect((await rb.load('claim', SUPPLIER.address, 4)).map((e) => e.resends)).toEqual([0]);
    await driveTo(h, miner, 8);
    const [entry] = await rb.load('claim', SUPPLIER.address, 4);
    expect({ resends: entry!.resends, original: entry!.originalTxHash }).toEqual({ resends: 1, original });
    expect(entry!.txHash).not.toBe(original);
    await driveTo(h, miner, 9);
    expect(h.net.chain.tx(entry!.txHash)!.height).toBe(9);
    expect(
      (await h.query.getAllClaimsBySupplier(SUPPLIER.address)).map((c) => c.sessionHeader!.sessionId),
    ).toEqual([header.sessionId]);
    expect(await rb.record(SUPPLIER.address, 4, header.sessionId)).toMatchObject({
      phase: 'claim',
      tx_hash: entry!.txHash,
      original_tx_hash: original,
      resends: 1,
      outcome: 'found',
      outcome_height: 9,
    });
    expect(await series(miner.registry, 'ha_miner_rebroadcasts_total')).toEqual([
      { labels: { phase: 'claim', result: 'accepted' }, value: 1 },
    ]);
    // The proof still follows from the claim that landed.
    await driveTo(h, miner, 11);
    expect((await h.query.getClaim(header.sessionId, SUPPLIER.address)).proofValidationStatus).toBe(
      pb.proofTypes.ClaimProofStatus.VALIDATED,
    );
  });

  it('skips a claim whose sum is not count × CUPR at session start, sending nothing', async () => {
    const { h, header } = await start();
    const miner = await buildMiner(h);
    await fillSession(header, 3, miner, 3n);
    await driveTo(h, miner, 8);
    expect((await miner.store.get(SUPPLIER.address, header.sessionId))!.state).toBe('claim_skipped');
    for (let height = 5; height <= 8; height++) expect(h.net.chain.block(height)!.txs).toEqual([]);
    expect((await miner.ledger.get(SUPPLIER.address, header.sessionId)).relays).toEqual({
      mined: 3n,
      'lost:cupr_mismatch': 3n,
    });
    expect(
      await r.client.exists(...Object.values(r.keys().sessionTree(SUPPLIER.address, header.sessionId))),
    ).toBe(0);
  });

  it('skips an unprofitable claim and records the fee estimate behind the decision', async () => {
    const { h, header } = await start();
    // 252 upokt of reward against 250 + 1 (proof submission fee) + 1.
    const miner = await buildMiner(h, {
      fees: { estimated_claim_fee_upokt: 250n, estimated_proof_fee_upokt: 1n },
    });
    await fillSession(header, 3, miner);
    await driveTo(h, miner, 8);
    expect((await miner.store.get(SUPPLIER.address, header.sessionId))!.state).toBe('claim_skipped');
    expect(await h.query.getAllClaimsBySupplier(SUPPLIER.address)).toEqual([]);
    expect(await miner.ledger.get(SUPPLIER.address, header.sessionId)).toEqual({
      relays: { mined: 3n, 'lost:skipped_unprofitable': 3n },
      upokt: { fee_estimated_upokt: 252n },
    });
  });

  it('quarantines a proof that fails local verification and never sends it', async () => {
    const { h, header } = await start();
    const lines: string[] = [];
    const miner = await buildMiner(h, {
      logLines: lines,
      wrapTrees: (t) => ({
        seal: (s, id) => t.seal(s, id),
        claimedRoot: (s, id) => t.claimedRoot(s, id),
        destroy: (s, id) => t.destroy(s, id),
        proveClosest: async (s, id, path) => {
          const proof = Uint8Array.from(await t.proveClosest(s, id, path));
          proof[proof.length - 1]! ^= 0x01;
          return proof;
        },
      }),
    });
    await fillSession(header, 3, miner);
    await driveTo(h, miner, 12);
    expect((await miner.store.get(SUPPLIER.address, header.sessionId))!.state).toBe('proof_tx_error');
    expect(h.net.chain.block(10)!.txs).toEqual([]);
    expect(h.net.chain.block(11)!.txs).toEqual([]);
    expect(await series(miner.registry, 'ha_miner_proofs_quarantined_total')).toEqual([
      { labels: { reason: 'proof_rejected' }, value: 1 },
    ]);
    const errors = lines.map((l) => JSON.parse(l)).filter((l) => l.level === 50);
    expect(
      errors.map((l) => ({ msg: l.msg, reason: l.reason, session_id: l.session_id, supplier: l.supplier })),
    ).toEqual([
      {
        msg: 'proof failed local verification; quarantined, not submitted',
        reason: 'proof_rejected',
        session_id: header.sessionId,
        supplier: SUPPLIER.address,
      },
    ]);
    expect((await miner.ledger.get(SUPPLIER.address, header.sessionId)).relays).toEqual({
      mined: 3n,
      claimed: 3n,
      'lost:proof_invalid': 3n,
    });
  });

  it('marks claim_missing when the claim never reached the chain and no resend was allowed', async () => {
    const { h, header } = await start();
    const miner = await buildMiner(h, { reconciler: { max_rebroadcasts: 0 } });
    await fillSession(header, 3, miner);
    await driveTo(h, miner, 5);
    h.net.chain.faults.dropNextTxs = 1;
    await driveTo(h, miner, 11);
    expect((await miner.store.get(SUPPLIER.address, header.sessionId))!.state).toBe('claim_missing');
    expect((await miner.ledger.get(SUPPLIER.address, header.sessionId)).relays).toEqual({
      mined: 3n,
      claimed: 3n,
      'lost:claim_missing': 3n,
    });
    expect(await new RebroadcastStore(r.deps()).record(SUPPLIER.address, 4, header.sessionId)).toMatchObject({
      outcome: 'missing',
      outcome_height: 11,
      resends: 0,
    });
  });

  it('re-broadcasts a dropped proof once; the chain validates it and settles the claim', async () => {
    const { h, header } = await start();
    const miner = await buildMiner(h);
    await fillSession(header, 3, miner);
    await driveTo(h, miner, 9);
    h.net.chain.faults.dropNextTxs = 1;
    await driveTo(h, miner, 10);
    const s = (await miner.store.get(SUPPLIER.address, header.sessionId))!;
    expect(s.state).toBe('proved');
    await driveTo(h, miner, 12);
    expect(h.net.chain.tx(s.proof_tx_hash!)).toBeUndefined();
    const [entry] = await new RebroadcastStore(r.deps()).load('proof', SUPPLIER.address, 4);
    // Threshold = submit 10 + (close 14 − 10) / 2 = 12.
    expect({ resends: entry!.resends, original: entry!.originalTxHash, submit: entry!.submitHeight }).toEqual(
      {
        resends: 1,
        original: s.proof_tx_hash,
        submit: 10,
      },
    );
    await driveTo(h, miner, 13);
    expect(h.net.chain.tx(entry!.txHash)!.result.code).toBe(0);
    expect((await h.query.getClaim(header.sessionId, SUPPLIER.address)).proofValidationStatus).toBe(
      pb.proofTypes.ClaimProofStatus.VALIDATED,
    );
    await driveTo(h, miner, 14);
    expect(await miner.ledger.recordSettlementsAt(h.query, 14, new Set([SUPPLIER.address]))).toEqual([
      { supplier: SUPPLIER.address, sessionId: header.sessionId, settledUpokt: 252n },
    ]);
    expect(await new RebroadcastStore(r.deps()).record(SUPPLIER.address, 4, header.sessionId)).toEqual({
      phase: 'proof',
      supplier: SUPPLIER.address,
      session_id: header.sessionId,
      session_end_height: 4,
      submit_height: 10,
      tx_hash: entry!.txHash,
      original_tx_hash: s.proof_tx_hash,
      resends: 1,
      outcome: 'found',
      outcome_height: 13,
    });
  });

  it('gives up after three rejected attempts with claim_tx_error and counts the relays lost', async () => {
    const { h, header } = await start();
    const miner = await buildMiner(h);
    await fillSession(header, 3, miner);
    await driveTo(h, miner, 5);
    h.net.chain.rejectNextBroadcasts(3, {
      codespace: 'sdk',
      code: SDK.INSUFFICIENT_FEE.code,
      log: 'insufficient fee',
    });
    await driveTo(h, miner, 7);
    const s = (await miner.store.get(SUPPLIER.address, header.sessionId))!;
    expect({ state: s.state, claim_tx_hash: s.claim_tx_hash }).toEqual({
      state: 'claim_tx_error',
      claim_tx_hash: undefined,
    });
    expect(await series(miner.registry, 'ha_miner_tx_attempts_total')).toEqual([
      { labels: { phase: 'claim', result: 'check_tx_rejected' }, value: 3 },
    ]);
    expect((await miner.ledger.get(SUPPLIER.address, header.sessionId)).relays).toEqual({
      mined: 3n,
      'lost:claim_failed': 3n,
    });
    expect(await h.query.getAllClaimsBySupplier(SUPPLIER.address)).toEqual([]);
  });

  it('stops at the first rejection naming the claim window: claim_window_closed', async () => {
    const { h, header } = await start();
    const miner = await buildMiner(h);
    await fillSession(header, 3, miner);
    await driveTo(h, miner, 5);
    h.net.chain.rejectNextBroadcasts(1, {
      codespace: 'proof',
      code: PROOF.CLAIM_OUTSIDE_OF_WINDOW.code,
      log: PROOF.CLAIM_OUTSIDE_OF_WINDOW.text,
    });
    await driveTo(h, miner, 6);
    expect((await miner.store.get(SUPPLIER.address, header.sessionId))!.state).toBe('claim_window_closed');
    expect(await series(miner.registry, 'ha_miner_tx_attempts_total')).toEqual([
      { labels: { phase: 'claim', result: 'check_tx_rejected' }, value: 1 },
    ]);
    expect((await miner.ledger.get(SUPPLIER.address, header.sessionId)).relays).toEqual({
      mined: 3n,
      'lost:claim_expired': 3n,
    });
  });

  it('keeps a session the chain does not know out of the batch, so the rest still lands', async () => {
    const { h, header } = await start();
    const miner = await buildMiner(h);
    const bogus = { ...header, sessionId: 'f'.repeat(64) };
    await fillSession(header, 3, miner);
    await fillSession(bogus, 2, miner);
    await driveTo(h, miner, 7);
    const good = (await miner.store.get(SUPPLIER.address, header.sessionId))!;
    const bad = (await miner.store.get(SUPPLIER.address, bogus.sessionId))!;
    expect({ good: good.state, bad: bad.state }).toEqual({ good: 'claimed', bad: 'claim_tx_error' });
    const tx = h.net.chain.tx(good.claim_tx_hash!)!;
    expect({ height: tx.height, code: tx.result.code }).toEqual({ height: 7, code: 0 });
    expect(TxBody.decode(TxRaw.decode(tx.bytes).bodyBytes).messages.map((m) => m.typeUrl)).toEqual([
      '/pocket.proof.MsgCreateClaim',
    ]);
    expect(
      (await h.query.getAllClaimsBySupplier(SUPPLIER.address)).map((c) => c.sessionHeader!.sessionId),
    ).toEqual([header.sessionId]);
    expect((await miner.ledger.get(SUPPLIER.address, bogus.sessionId)).relays).toEqual({
      mined: 2n,
      'lost:claim_failed': 2n,
    });
  });
});
