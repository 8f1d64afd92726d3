/**
 * The proof job (miner.md §5.2): one group = the claimed sessions of one supplier that end at the
 * same height, proven in one unordered tx.
 *
 * Seed = hash of block `proof_window_open − 1` (the earliest proof commit height − 1). Per session:
 * the claimed root (snapshot, else the trie's `…:root`; none → `proof_tx_error`); GetClaim
 * (NotFound → `claim_missing`, other errors fail open); the proof requirement exactly as the chain
 * draws it (claim as stored, difficulty and pricing at the session start, live proof params) — not
 * required → `probabilistic_proved` and the trie is deleted. A required proof is built at
 * SHA-256(seed ‖ session id) and checked locally with the chain's rules (gob decode, decompact,
 * path, closest-proof verification against the claimed root, and the proven relay's headers and
 * supplier). A proof that fails is quarantined — `proof_tx_error`, an error log and
 * `ha_miner_proofs_quarantined_total` — and never sent, so it cannot sink the batch.
 *
 * Submission retries like claims (attempts nobody on the chain answered leave the sessions
 * `proving` for the next block while the window is open); "proof not required" from the chain
 * counts as success without a proof (`probabilistic_proved`). Success → `proved`, trie deleted, messages stored for the
 * inclusion reconciler.
 */
import type { Logger } from 'pino';
import { ChainNotFoundError, type TxClient } from '../chain/index.js';
import { bytesToHex, equalBytes } from '../core/index.js';
import {
  decodeRelay,
  pb,
  proofPath,
  sessionHeadersEqual,
  proofRequirement,
  type ProofRequirement,
  type SessionHeader,
} from '../protocol/index.js';
import { checkClosestProofBytes, parseMerkleSumRoot } from '../protocol/smst/index.js';
import { headerFromSnapshot, isWindowRejection, splitFee } from './claimer.js';
import type { MinerChain, ProofJobRunner, SessionGroup, SessionTrees } from './lifecycle.js';
import type { LostReason, MinerLedger } from './ledger.js';
import type { MinerLifecycleMetrics } from './miner-metrics.js';
import type { RebroadcastStore } from './reconciler.js';
import { runTxAttempts } from './tx-attempts.js';
import type { SessionSnapshot, SessionState, SessionStore } from './session-store.js';

export type ProofTxSubmitter = Pick<TxClient, 'submitProofs'>;

export interface ProverDeps {
  store: SessionStore;
  chain: MinerChain;
  tx: ProofTxSubmitter;
  trees: SessionTrees;
  rebroadcast: RebroadcastStore;
  ledger: MinerLedger;
  currentHeight: () => number;
  log: Logger;
  metrics: MinerLifecycleMetrics;
  sleep?: (ms: number) => Promise<void>;
}

export interface ProverConfig {
  max_attempts?: number;
  retry_delay_ms?: number;
  block_time_ms?: number;
  /** Skip the GetClaim check before proving (upstream disable_pre_proof_claim_verification). */
  disable_pre_proof_claim_verification?: boolean;
}

export const DEFAULT_PROVER_CONFIG: Readonly<Required<ProverConfig>> = Object.freeze({
  max_attempts: 3,
  retry_delay_ms: 2_000,
  block_time_ms: 30_000,
  disable_pre_proof_claim_verification: false,
});

/** Why a built proof was not sent. */
export type QuarantineReason =
  | 'root_mismatch'
  | 'proof_rejected'
  | 'relay_undecodable'
  | 'relay_header_mismatch'
  | 'relay_supplier_mismatch'
  | 'prove_failed';

/** Outcome of checking a built proof locally; rejections are values. */
export type LocalProofCheck = { ok: true } | { ok: false; reason: QuarantineReason; detail: string };

/**
 * What the proof module checks of MsgSubmitProof.proof that can be checked off-chain: decoding,
 * path, closest-proof verification against the claimed root, the proven relay decoding as a Relay
 * whose request and response carry the claim's header, and the request naming the supplier.
 */
export function checkProofLocally(
  proofBytes: Uint8Array,
  claimedRoot: Uint8Array,
  path: Uint8Array,
  header: SessionHeader,
  supplier: string,
): LocalProofCheck {
  const verdict = checkClosestProofBytes(proofBytes, claimedRoot, path);
  if (!verdict.accepted) {
    return {
      ok: false,
      reason: 'proof_rejected',
      detail: `${verdict.rejection!.code}: ${verdict.rejection!.reason}`,
    };
  }
  if (verdict.relayBytes === undefined) {
    return { ok: false, reason: 'relay_undecodable', detail: 'the proof carries no relay' };
  }
  const decoded = decodeRelay(verdict.relayBytes);
  if (!decoded.ok) return { ok: false, reason: 'relay_undecodable', detail: decoded.reason };
  const relay = decoded.value;
  if (
    !sessionHeadersEqual(relay.req?.meta?.sessionHeader, header) ||
    !sessionHeadersEqual(relay.res?.meta?.sessionHeader, header)
  ) {
    return {
      ok: false,
      reason: 'relay_header_mismatch',
      detail: 'the proven relay belongs to another session',
    };
  }
  if (relay.req?.meta?.supplierOperatorAddress !== supplier) {
    return {
      ok: false,
      reason: 'relay_supplier_mismatch',
      detail: 'the proven relay names another supplier',
    };
  }
  return { ok: true };
}

interface BuiltProof {
  session: SessionSnapshot;
  msg: pb.proofTx.MsgSubmitProof;
  count: bigint;
}

export class Prover implements ProofJobRunner {
  private readonly cfg: Required<ProverConfig>;
  private readonly log: Logger;

  constructor(
    private readonly deps: ProverDeps,
    cfg: ProverConfig = {},
  ) {
    this.cfg = { ...DEFAULT_PROVER_CONFIG, ...cfg };
    this.log = deps.log.child({ component: 'prover' });
  }

  async runProofGroup(group: SessionGroup): Promise<string[]> {
    const pending = group.sessions.filter((s) => s.proof_tx_hash === undefined);
    if (pending.length === 0) return [];
    const seedHeight = group.windows.proof_window_open_height - 1;
    const seed = (await this.deps.chain.getBlock(seedHeight)).hash;
    const params = await this.deps.chain.getProofParams();
    const built: BuiltProof[] = [];
    const undecided: string[] = [];
    for (const s of pending) {
      try {
        const b = await this.build(s, seed, params);
        if (b !== undefined) built.push(b);
      } catch (err) {
        undecided.push(s.session_id);
        this.log.warn(
          { err, supplier: s.supplier_operator_address, session_id: s.session_id },
          'proof not built; retried next block',
        );
      }
    }
    if (built.length > 0) undecided.push(...(await this.submit(group, built)));
    return undecided;
  }

  private async build(
    s: SessionSnapshot,
    seed: Uint8Array,
    params: pb.proofParams.Params,
  ): Promise<BuiltProof | undefined> {
    const supplier = s.supplier_operator_address;
    const fields = { supplier, session_id: s.session_id };
    const root = s.claimed_root_hash ?? (await this.deps.trees.claimedRoot(supplier, s.session_id));
    if (root === undefined || root.length !== 48) {
      await this.finish(s, 'proof_tx_error', 'no_claimed_root', 'proof_missing', BigInt(s.relay_count));
      this.log.error(fields, 'no claimed root for this session; not proving against a guess');
      return undefined;
    }
    const { count } = parseMerkleSumRoot(root);
    let claim: pb.proofTypes.Claim | undefined;
    if (!this.cfg.disable_pre_proof_claim_verification) {
      try {
        claim = await this.deps.chain.getClaim(s.session_id, supplier);
      } catch (err) {
        if (err instanceof ChainNotFoundError) {
          await this.finish(s, 'claim_missing', 'claim_missing', 'claim_missing', count);
          this.log.warn(fields, 'claim absent on chain at proof time');
          return undefined;
        }
        this.log.warn({ ...fields, err }, 'GetClaim failed; proving anyway');
      }
    }
    const header = claim?.sessionHeader ?? headerFromSnapshot(s);
    if (claim !== undefined && !equalBytes(claim.rootHash, root)) {
      await this.quarantine(s, count, 'root_mismatch', `on-chain root ${bytesToHex(claim.rootHash)}`);
      return undefined;
    }
    const requirement = await this.requirement(s, header, root, seed, params);
    if (requirement !== undefined && !requirement.required) {
      await this.notRequired(s, count, requirement);
      return undefined;
    }
    const path = proofPath(seed, s.session_id);
    let proof: Uint8Array;
    try {
      proof = await this.deps.trees.proveClosest(supplier, s.session_id, path);
    } catch (err) {
      await this.quarantine(s, count, 'prove_failed', err instanceof Error ? err.message : String(err));
      return undefined;
    }
    const check = checkProofLocally(proof, root, path, header, supplier);
    if (!check.ok) {
      await this.quarantine(s, count, check.reason, check.detail);
      return undefined;
    }
    return {
      session: s,
      msg: { supplierOperatorAddress: supplier, sessionHeader: header, proof: Buffer.from(proof) },
      count,
    };
  }

  /** The chain's proof requirement; undefined when it cannot be computed (then the proof is sent). */
  private async requirement(
    s: SessionSnapshot,
    header: SessionHeader,
    root: Uint8Array,
    seed: Uint8Array,
    params: pb.proofParams.Params,
  ): Promise<ProofRequirement | undefined> {
    try {
      const start = s.session_start_height;
      const [shared, difficulty] = await Promise.all([
        this.deps.chain.getSharedParamsAtHeight(start),
        this.deps.chain.getRelayMiningDifficultyAtHeight(s.service_id, start),
      ]);
      return proofRequirement({
        supplierOperatorAddress: s.supplier_operator_address,
        sessionHeader: header,
        rootHash: root,
        seedBlockHash: seed,
        target: difficulty.targetHash,
        pricing: {
          compute_units_to_tokens_multiplier: shared.computeUnitsToTokensMultiplier,
          compute_unit_cost_granularity: shared.computeUnitCostGranularity,
        },
        proofRequestProbability: params.proofRequestProbability,
        proofRequirementThresholdUpokt: BigInt(params.proofRequirementThreshold?.amount ?? '0'),
      });
    } catch (err) {
      this.log.warn(
        { err, supplier: s.supplier_operator_address, session_id: s.session_id },
        'proof requirement unknown; proving',
      );
      return undefined;
    }
  }

  private async notRequired(s: SessionSnapshot, count: bigint, r: ProofRequirement): Promise<void> {
    const supplier = s.supplier_operator_address;
    if (!(await this.finish(s, 'probabilistic_proved', 'not_required'))) return;
    await this.deps.ledger.addRelays(supplier, s.session_id, 'proof_not_required', count);
    await this.deps.trees.destroy(supplier, s.session_id);
    this.log.info(
      { supplier, session_id: s.session_id, sample: r.sample, claimed_upokt: r.claimedUpokt.toString() },
      'proof not required',
    );
  }

  private async quarantine(
    s: SessionSnapshot,
    count: bigint,
    reason: QuarantineReason,
    detail: string,
  ): Promise<void> {
    this.deps.metrics.proofsQuarantined.inc({ reason });
    this.log.error(
      { supplier: s.supplier_operator_address, session_id: s.session_id, reason, detail },
      'proof failed local verification; quarantined, not submitted',
    );
    await this.finish(s, 'proof_tx_error', `quarantined_${reason}`, 'proof_invalid', count);
  }

  /**
   * Sends the proofs; returns the sessions left for the next block: those whose every attempt
   * failed without an answer from the chain (node unreachable) while the window is still open.
   */
  private async submit(group: SessionGroup, built: BuiltProof[]): Promise<string[]> {
    const { supplier } = group;
    const close = group.windows.proof_window_close_height;
    const out = await runTxAttempts({
      phase: 'proof',
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
        this.deps.tx.submitProofs(
          supplier,
          built.map((b) => b.msg),
          { blocksLeftInWindow: close - h, blockTimeMs: this.cfg.block_time_ms },
        ),
      onAccepted: (txHash, fee, h) => this.succeed(group, built, txHash, fee, h),
      onRefused: async (res) => {
        if (isWindowRejection(res.log, res.codespace, res.code)) {
          for (const b of built) {
            await this.finish(b.session, 'proof_window_closed', 'window_rejected', 'proof_missing', b.count);
          }
          return [];
        }
        const notRequired =
          (res.codespace === 'proof' && res.code === 1129) || /proof not required/i.test(res.log);
        if ((notRequired || res.stage === 'simulate') && built.length > 1) {
          // One message the chain refuses reverts the whole tx (and a "not required" verdict
          // names none): each session is sent alone, so no required proof is given up.
          this.log.warn(
            { supplier, session_end_height: group.sessionEndHeight, raw_log: res.log },
            'proof batch refused; submitting its sessions one by one',
          );
          const left: string[] = [];
          for (const b of built) left.push(...(await this.submit(group, [b])));
          return left;
        }
        if (notRequired) {
          for (const b of built) {
            if (await this.finish(b.session, 'probabilistic_proved', 'chain_not_required')) {
              await this.deps.ledger.addRelays(supplier, b.session.session_id, 'proof_not_required', b.count);
              await this.deps.trees.destroy(supplier, b.session.session_id);
            }
          }
          return [];
        }
        return undefined;
      },
    });
    if (out.kind === 'accepted') return [];
    if (out.kind === 'ended') return out.undecided;
    if (out.kind === 'window_closed') {
      for (const b of built)
        await this.finish(b.session, 'proof_window_closed', 'window_closed', 'proof_missing', b.count);
      return [];
    }
    const { chainAnswered, lastError, height: h } = out;
    if (!chainAnswered && h < close - 1) {
      // Nothing reached the chain (node down): the sessions stay `proving` and the next block
      // tries again while the window is open, instead of giving the proof up.
      this.log.warn(
        { supplier, session_end_height: group.sessionEndHeight, sessions: built.length, error: lastError },
        'proof tx not delivered; retried next block',
      );
      return built.map((b) => b.session.session_id);
    }
    this.log.error(
      { supplier, session_end_height: group.sessionEndHeight, sessions: built.length, error: lastError },
      'proof tx failed after every attempt',
    );
    for (const b of built)
      await this.finish(b.session, 'proof_tx_error', 'tx_failed', 'proof_missing', b.count);
    return [];
  }

  private async succeed(
    group: SessionGroup,
    built: BuiltProof[],
    txHash: string,
    feeUpokt: bigint,
    h: number,
  ): Promise<void> {
    const { supplier } = group;
    await this.deps.rebroadcast.saveSubmitted(
      'proof',
      supplier,
      group.sessionEndHeight,
      built.map((b) => ({
        sessionId: b.session.session_id,
        msg: pb.proofTx.MsgSubmitProof.encode(b.msg).finish(),
        serviceId: b.session.service_id,
      })),
      h,
      txHash,
      this.log,
    );
    const shares = splitFee(feeUpokt, built.length);
    for (const [i, b] of built.entries()) {
      const moved = await this.deps.store.transition(supplier, b.session.session_id, ['proving'], 'proved', {
        proof_tx_hash: txHash,
      });
      if (!moved) continue;
      this.deps.metrics.transitions.inc({ from: 'proving', to: 'proved' });
      this.deps.metrics.sessionOutcomes.inc({ phase: 'proof', outcome: 'proved' });
      await this.deps.ledger.addRelays(supplier, b.session.session_id, 'proven', b.count);
      await this.deps.ledger.addUpokt(supplier, b.session.session_id, 'fee_actual_upokt', shares[i]!);
      await this.deps.trees.destroy(supplier, b.session.session_id);
    }
    this.log.info(
      { supplier, session_end_height: group.sessionEndHeight, tx_hash: txHash, sessions: built.length },
      'proofs submitted',
    );
  }

  /** CAS proving → `to` (plus a lost bucket); true when this call moved it. */
  private async finish(
    s: SessionSnapshot,
    to: SessionState,
    outcome: string,
    lost?: LostReason,
    relays?: bigint,
  ): Promise<boolean> {
    const moved = await this.deps.store.transition(
      s.supplier_operator_address,
      s.session_id,
      ['proving'],
      to,
    );
    if (!moved) return false;
    this.deps.metrics.transitions.inc({ from: 'proving', to });
    this.deps.metrics.sessionOutcomes.inc({ phase: 'proof', outcome });
    if (lost !== undefined && relays !== undefined) {
      await this.deps.ledger.addRelays(s.supplier_operator_address, s.session_id, `lost:${lost}`, relays);
    }
    return true;
  }
}
