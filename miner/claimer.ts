/**
 * The claim job (miner.md §5.1): one group = the sessions of one supplier that end at the same
 * height, claimed in one unordered tx.
 *
 * Per session: seal the trie → 48-byte root; count or sum 0 → skipped without a state change
 * (the session times out); sum ≠ count × CUPR(session start) → `claim_skipped` (the chain would
 * reject the message and with it the whole batch); claimed uPOKT (shared params and difficulty at
 * the session start) ≤ the estimated claim + proof fee → `claim_skipped`; header from
 * GetSession(app, service, start), falling back to the snapshot; the root is checked locally with
 * the chain's MsgCreateClaim rules. Only messages that passed every check enter the batch, since one
 * failing message reverts the tx.
 *
 * The tx goes out with an unordered timeout derived from the blocks left in the claim window, up
 * to `max_attempts` times `retry_delay_ms` apart; a rejection naming the claim window is final
 * (`claim_window_closed`), exhausted attempts the chain refused give `claim_tx_error`. When no
 * attempt reached the chain (node unreachable) the sessions stay `claiming` and go back to the
 * lifecycle, which tries again next block while the window is open. Success → `claimed` with root
 * and tx hash, the messages stored for the inclusion reconciler.
 *
 * Fee estimate (injectable, `FeeEstimator`): the default is static configuration,
 * `estimated_claim_fee_upokt + estimated_proof_fee_upokt + proof_submission_fee` (live proof
 * params), at least `min_fee_upokt` (2). Upstream reads the latest on-chain claim fee from the tx
 * index, which nodes without an indexer cannot serve; operators set the estimates from their gas
 * price × typical gas instead.
 */
import type { Logger } from 'pino';
import type { TxClient } from '../chain/index.js';
import { bytesToHex } from '../core/index.js';
import { claimedUpokt, pb, type SessionHeader } from '../protocol/index.js';
import { checkClaimRoot, parseMerkleSumRoot } from '../protocol/smst/index.js';
import type { ClaimJobRunner, MinerChain, SessionGroup, SessionTrees } from './lifecycle.js';
import type { MinerLedger } from './ledger.js';
import type { MinerLifecycleMetrics } from './miner-metrics.js';
import type { RebroadcastStore } from './reconciler.js';
import { runTxAttempts } from './tx-attempts.js';
import type { SessionSnapshot, SessionState, SessionStore } from './session-store.js';

/** Estimated cost (uPOKT) of claiming and later proving one session of a supplier. */
export interface FeeEstimator {
  estimateUpokt(supplier: string): Promise<bigint>;
}

export interface StaticFeeEstimatorConfig {
  estimated_claim_fee_upokt?: bigint;
  estimated_proof_fee_upokt?: bigint;
  min_fee_upokt?: bigint;
  /** How long the live proof submission fee is reused. */
  cache_ms?: number;
}

/** Configured claim and proof gas fees plus the live proof submission fee, floored. */
export class StaticFeeEstimator implements FeeEstimator {
  private cached: { at: number; fee: bigint } | undefined;
  private readonly cfg: Required<StaticFeeEstimatorConfig>;

  constructor(
    private readonly deps: { chain: Pick<MinerChain, 'getProofParams'>; now?: () => number },
    cfg: StaticFeeEstimatorConfig = {},
  ) {
    this.cfg = {
      estimated_claim_fee_upokt: 0n,
      estimated_proof_fee_upokt: 0n,
      min_fee_upokt: 2n,
      cache_ms: 30_000,
      ...cfg,
    };
  }

  async estimateUpokt(_supplier: string): Promise<bigint> {
    const now = (this.deps.now ?? Date.now)();
    let submission: bigint;
    if (this.cached !== undefined && now - this.cached.at < this.cfg.cache_ms) submission = this.cached.fee;
    else {
      const p = await this.deps.chain.getProofParams();
      submission = BigInt(p.proofSubmissionFee?.amount ?? '0');
      this.cached = { at: now, fee: submission };
    }
    const total = this.cfg.estimated_claim_fee_upokt + this.cfg.estimated_proof_fee_upokt + submission;
    return total > this.cfg.min_fee_upokt ? total : this.cfg.min_fee_upokt;
  }
}

export type ClaimTxSubmitter = Pick<TxClient, 'createClaims'>;

export interface ClaimerDeps {
  store: SessionStore;
  chain: MinerChain;
  tx: ClaimTxSubmitter;
  trees: SessionTrees;
  rebroadcast: RebroadcastStore;
  ledger: MinerLedger;
  fees: FeeEstimator;
  /** Newest observed height (the lifecycle's). */
  currentHeight: () => number;
  log: Logger;
  metrics: MinerLifecycleMetrics;
  sleep?: (ms: number) => Promise<void>;
  /**
   * Resolves true once the supplier's relay stream holds nothing published before the call that
   * is not yet in the tries (the consumer's `drained`), false at the deadline. Called before
   * sealing, so no relay a client was answered for is left out of the claim by consumer lag.
   */
  drained?: (supplier: string, timeoutMs: number) => Promise<boolean>;
}

export interface ClaimerConfig {
  max_attempts?: number;
  retry_delay_ms?: number;
  /** Expected block interval (upstream block_time_seconds), for the unordered timeout. */
  block_time_ms?: number;
  /** A group is abandoned when close − h is at most this (upstream: 2). */
  min_blocks_left?: number;
  /** Longest wait for the relay stream to be consumed before sealing. */
  drain_timeout_ms?: number;
}

export const DEFAULT_CLAIMER_CONFIG: Readonly<Required<ClaimerConfig>> = Object.freeze({
  max_attempts: 3,
  retry_delay_ms: 2_000,
  block_time_ms: 30_000,
  min_blocks_left: 2,
  drain_timeout_ms: 5_000,
});

/** A built claim waiting for the group's tx. */
interface BuiltClaim {
  session: SessionSnapshot;
  msg: pb.proofTx.MsgCreateClaim;
  root: Uint8Array;
  count: bigint;
  /** The fee estimate the economic check used. */
  fee: bigint;
}

/** Whether a rejection log names the claim or proof window (final, retrying cannot help). */
export function isWindowRejection(log: string, codespace: string, code: number): boolean {
  if (codespace === 'proof' && (code === 1121 || code === 1122)) return true;
  return /outside\b.*\b(claim|proof) window|(claim|proof) window (is )?closed/i.test(log);
}

/** The header the claim carries: the chain's session at its start height, else the snapshot. */
export function headerFromSnapshot(s: SessionSnapshot): SessionHeader {
  return {
    applicationAddress: s.application_address,
    serviceId: s.service_id,
    sessionId: s.session_id,
    sessionStartBlockHeight: BigInt(s.session_start_height),
    sessionEndBlockHeight: BigInt(s.session_end_height),
  };
}

export class Claimer implements ClaimJobRunner {
  private readonly cfg: Required<ClaimerConfig>;
  private readonly log: Logger;

  constructor(
    private readonly deps: ClaimerDeps,
    cfg: ClaimerConfig = {},
  ) {
    this.cfg = { ...DEFAULT_CLAIMER_CONFIG, ...cfg };
    this.log = deps.log.child({ component: 'claimer' });
  }

  async runClaimGroup(group: SessionGroup): Promise<string[]> {
    const close = group.windows.claim_window_close_height;
    const h = Math.max(group.height, this.deps.currentHeight());
    const pending = group.sessions.filter((s) => s.claim_tx_hash === undefined);
    if (close - h <= this.cfg.min_blocks_left) {
      for (const s of pending) await this.finish(s, 'claim_window_closed', 'window_closing');
      return [];
    }
    if (pending.length > 0 && this.deps.drained !== undefined) {
      let drained = false;
      try {
        drained = await this.deps.drained(group.supplier, this.cfg.drain_timeout_ms);
      } catch (err) {
        this.log.warn({ err, supplier: group.supplier }, 'relay stream backlog not checked before the claim');
      }
      if (!drained) {
        this.deps.metrics.claimDrainTimeouts.inc();
        this.log.warn(
          {
            supplier: group.supplier,
            session_end_height: group.sessionEndHeight,
            wait_ms: this.cfg.drain_timeout_ms,
          },
          'relay stream not consumed before the claim; relays still in it will be dropped as late',
        );
      }
    }
    const built: BuiltClaim[] = [];
    const undecided: string[] = [];
    for (const s of pending) {
      try {
        const b = await this.build(s);
        if (b !== undefined) built.push(b);
      } catch (err) {
        // A fault for one session (Redis, the node) must not hold back the others.
        undecided.push(s.session_id);
        this.log.warn(
          { err, supplier: s.supplier_operator_address, session_id: s.session_id },
          'claim not built; retried next block',
        );
      }
    }
    if (built.length > 0) undecided.push(...(await this.submit(group, built)));
    return undecided;
  }

  /** Builds one claim, or decides the session without one (undefined). */
  private async build(s: SessionSnapshot): Promise<BuiltClaim | undefined> {
    const supplier = s.supplier_operator_address;
    const fields = { supplier, session_id: s.session_id };
    const root = await this.deps.trees.seal(supplier, s.session_id);
    if (root.length !== 48) {
      await this.finish(s, 'claim_tx_error', 'root_length');
      this.log.error({ ...fields, root_bytes: root.length }, 'sealed root is not 48 bytes');
      return undefined;
    }
    const { sum, count } = parseMerkleSumRoot(root);
    if (count === 0n || sum === 0n) {
      this.deps.metrics.sessionOutcomes.inc({ phase: 'claim', outcome: 'skipped_empty' });
      this.log.info(fields, 'empty session tree; nothing to claim');
      return undefined;
    }
    const start = s.session_start_height;
    const cupr = await this.deps.chain.getComputeUnitsPerRelayAtHeight(s.service_id, start);
    const rootCheck = checkClaimRoot(root, cupr);
    if (!rootCheck.ok) {
      if (await this.finish(s, 'claim_skipped', 'cupr_mismatch')) {
        await this.deps.ledger.addRelays(supplier, s.session_id, 'lost:cupr_mismatch', count);
        await this.deps.trees.destroy(supplier, s.session_id);
      }
      this.log.warn(
        { ...fields, reason: rootCheck.reason },
        'claim skipped: the chain would reject this root',
      );
      return undefined;
    }
    const [shared, difficulty] = await Promise.all([
      this.deps.chain.getSharedParamsAtHeight(start),
      this.deps.chain.getRelayMiningDifficultyAtHeight(s.service_id, start),
    ]);
    const reward = claimedUpokt(sum, difficulty.targetHash, {
      compute_units_to_tokens_multiplier: shared.computeUnitsToTokensMultiplier,
      compute_unit_cost_granularity: shared.computeUnitCostGranularity,
    });
    const fee = await this.deps.fees.estimateUpokt(supplier);
    if (reward <= fee) {
      if (await this.finish(s, 'claim_skipped', 'unprofitable')) {
        await this.deps.ledger.recordUnprofitable(supplier, s.session_id, count, fee);
        await this.deps.trees.destroy(supplier, s.session_id);
      }
      this.log.info(
        { ...fields, claimed_upokt: reward.toString(), estimated_fee_upokt: fee.toString() },
        'claim skipped: reward does not cover the estimated fees',
      );
      return undefined;
    }
    const header = await this.header(s);
    if (!header.ok) {
      if (await this.finish(s, 'claim_tx_error', 'session_mismatch')) {
        await this.deps.ledger.addRelays(supplier, s.session_id, 'lost:claim_failed', count);
      }
      this.log.error({ ...fields, reason: header.reason }, 'claim not sent');
      return undefined;
    }
    const msg: pb.proofTx.MsgCreateClaim = {
      supplierOperatorAddress: supplier,
      sessionHeader: header.header,
      rootHash: Buffer.from(root),
    };
    return { session: s, msg, root, count, fee };
  }

  /**
   * The header to claim with: the chain's session at its start height; the snapshot's fields when
   * the query fails (as upstream). A session the chain knows differently (another id, or without
   * this supplier) is refused: its claim would fail and revert the whole batch.
   */
  private async header(
    s: SessionSnapshot,
  ): Promise<{ ok: true; header: SessionHeader } | { ok: false; reason: string }> {
    let session: pb.sessionTypes.Session;
    try {
      session = await this.deps.chain.getSession(s.application_address, s.service_id, s.session_start_height);
    } catch (err) {
      this.log.warn(
        { err, supplier: s.supplier_operator_address, session_id: s.session_id },
        'GetSession failed; using the snapshot header',
      );
      return { ok: true, header: headerFromSnapshot(s) };
    }
    const h = session.header;
    if (h === undefined || h.sessionId !== s.session_id) {
      return { ok: false, reason: 'the chain hydrates this session with another id' };
    }
    if (!session.suppliers.some((x) => x.operatorAddress === s.supplier_operator_address)) {
      return { ok: false, reason: 'the chain session does not list this supplier' };
    }
    return { ok: true, header: h };
  }

  /**
   * Sends the claims; returns the sessions left for the next block: those whose every attempt
   * failed without an answer from the chain (node unreachable) while the window is still open.
   */
  private async submit(group: SessionGroup, built: BuiltClaim[]): Promise<string[]> {
    const { supplier } = group;
    const close = group.windows.claim_window_close_height;
    const out = await runTxAttempts({
      phase: 'claim',
      supplier,
      sessionEndHeight: group.sessionEndHeight,
      groupHeight: group.height,
      closeHeight: close,
      maxAttempts: this.cfg.max_attempts,
      retryDelayMs: this.cfg.retry_delay_ms,
      currentHeight: this.deps.currentHeight,
      metrics: this.deps.metrics,
      log: this.log,
      ...(this.deps.sleep !== undefined ? { sleep: this.deps.sleep } : {}),
      send: (h) =>
        this.deps.tx.createClaims(
          supplier,
          built.map((b) => b.msg),
          { blocksLeftInWindow: close - h, blockTimeMs: this.cfg.block_time_ms },
        ),
      onAccepted: (txHash, fee, h) => this.succeed(group, built, txHash, fee, h),
      onRefused: async (res) => {
        if (isWindowRejection(res.log, res.codespace, res.code)) {
          this.log.warn(
            { supplier, session_end_height: group.sessionEndHeight, raw_log: res.log },
            'claim window closed',
          );
          for (const b of built) await this.finish(b.session, 'claim_window_closed', 'window_rejected');
          return [];
        }
        if (res.stage === 'simulate' && built.length > 1) {
          // One message the chain refuses reverts the whole tx: find it by sending each alone.
          this.log.warn(
            { supplier, session_end_height: group.sessionEndHeight, raw_log: res.log },
            'claim batch refused in simulation; submitting its sessions one by one',
          );
          const left: string[] = [];
          for (const b of built) left.push(...(await this.submit(group, [b])));
          return left;
        }
        return undefined;
      },
    });
    if (out.kind === 'accepted') return [];
    if (out.kind === 'ended') return out.undecided;
    if (out.kind === 'window_closed') {
      for (const b of built) await this.finish(b.session, 'claim_window_closed', 'window_closed');
      return [];
    }
    const { chainAnswered, lastError, height: h } = out;
    if (!chainAnswered && close - h > this.cfg.min_blocks_left) {
      // Nothing reached the chain (node down): the sessions stay `claiming` and the next block
      // tries again while the window is open, instead of giving the claim up.
      this.log.warn(
        { supplier, session_end_height: group.sessionEndHeight, sessions: built.length, error: lastError },
        'claim tx not delivered; retried next block',
      );
      return built.map((b) => b.session.session_id);
    }
    this.log.error(
      { supplier, session_end_height: group.sessionEndHeight, sessions: built.length, error: lastError },
      'claim tx failed after every attempt',
    );
    for (const b of built) {
      if (await this.finish(b.session, 'claim_tx_error', 'tx_failed')) {
        await this.deps.ledger.addRelays(supplier, b.session.session_id, 'lost:claim_failed', b.count);
      }
    }
    return [];
  }

  private async succeed(
    group: SessionGroup,
    built: BuiltClaim[],
    txHash: string,
    feeUpokt: bigint,
    h: number,
  ): Promise<void> {
    const { supplier } = group;
    await this.deps.rebroadcast.saveSubmitted(
      'claim',
      supplier,
      group.sessionEndHeight,
      built.map((b) => ({
        sessionId: b.session.session_id,
        msg: pb.proofTx.MsgCreateClaim.encode(b.msg).finish(),
        serviceId: b.session.service_id,
      })),
      h,
      txHash,
      this.log,
    );
    const shares = splitFee(feeUpokt, built.length);
    for (const [i, b] of built.entries()) {
      const moved = await this.deps.store.transition(
        supplier,
        b.session.session_id,
        ['claiming'],
        'claimed',
        {
          claimed_root_hash: b.root,
          claim_tx_hash: txHash,
        },
      );
      if (!moved) {
        this.log.warn(
          { supplier, session_id: b.session.session_id },
          'session left claiming during its claim',
        );
        continue;
      }
      this.deps.metrics.transitions.inc({ from: 'claiming', to: 'claimed' });
      this.deps.metrics.sessionOutcomes.inc({ phase: 'claim', outcome: 'claimed' });
      await this.deps.ledger.addRelays(supplier, b.session.session_id, 'claimed', b.count);
      await this.deps.ledger.addUpokt(supplier, b.session.session_id, 'fee_estimated_upokt', b.fee);
      await this.deps.ledger.addUpokt(supplier, b.session.session_id, 'fee_actual_upokt', shares[i]!);
    }
    this.log.info(
      {
        supplier,
        session_end_height: group.sessionEndHeight,
        tx_hash: txHash,
        sessions: built.length,
        roots: built.map((b) => bytesToHex(b.root)),
      },
      'claims submitted',
    );
  }

  /** CAS claiming → `to`; true when this call moved it. */
  private async finish(s: SessionSnapshot, to: SessionState, outcome: string): Promise<boolean> {
    const moved = await this.deps.store.transition(
      s.supplier_operator_address,
      s.session_id,
      ['claiming'],
      to,
    );
    if (moved) {
      this.deps.metrics.transitions.inc({ from: 'claiming', to });
      this.deps.metrics.sessionOutcomes.inc({ phase: 'claim', outcome });
      if (to === 'claim_window_closed') {
        await this.deps.ledger.addRelays(
          s.supplier_operator_address,
          s.session_id,
          'lost:claim_expired',
          BigInt(s.relay_count),
        );
      }
    }
    return moved;
  }
}

/** `total` split in `n` integer shares, the remainder on the first. */
export function splitFee(total: bigint, n: number): bigint[] {
  if (n <= 0) return [];
  const each = total / BigInt(n);
  const out = Array.from({ length: n }, () => each);
  out[0] = out[0]! + (total - each * BigInt(n));
  return out;
}
