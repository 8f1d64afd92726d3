/**
 * Prometheus series of the session lifecycle, the claimer, the prover, the inclusion reconciler
 * and the relay ledger, registered on the registry the caller gives. No session ids, addresses or
 * URLs as label values.
 */
import { Counter, Histogram, type Registry } from 'prom-client';

export interface MinerLifecycleMetrics {
  /** State changes written by the lifecycle, claimer and prover. */
  transitions: Counter<'from' | 'to'>;
  /** Per-block passes, by outcome (`ok`, `error`, `coalesced`). */
  passes: Counter<'outcome'>;
  passDuration: Histogram;
  /** Sessions in claiming/proving restarted after a start or takeover. */
  restarts: Counter<'phase'>;
  /** Claims that sealed before the supplier's relay stream was consumed (waited drain_timeout_ms). */
  claimDrainTimeouts: Counter;
  /** Claim or proof transactions, by attempt result. */
  txAttempts: Counter<'phase' | 'result'>;
  /** Sessions that left the claim/proof job and why (claimed, skipped_empty, cupr_mismatch, …). */
  sessionOutcomes: Counter<'phase' | 'outcome'>;
  /** Proofs that failed local verification and were never sent. */
  proofsQuarantined: Counter<'reason'>;
  /** Inclusion checks by outcome (found, missing, poll_error). */
  inclusionOutcomes: Counter<'phase' | 'outcome'>;
  /** Re-broadcasts by result. */
  rebroadcasts: Counter<'phase' | 'result'>;
  /** Relay ledger, mirrored from the per-session Redis hashes. */
  ledgerRelays: Counter<'bucket'>;
  /** uPOKT amounts in the ledger: settled, estimated fee, actual fee. */
  ledgerUpokt: Counter<'kind'>;
}

const PASS_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function createMinerLifecycleMetrics(registry: Registry): MinerLifecycleMetrics {
  const registers = [registry];
  return {
    transitions: new Counter({
      name: 'ha_miner_session_transitions_total',
      help: 'Session state changes written, by from and to state',
      labelNames: ['from', 'to'] as const,
      registers,
    }),
    passes: new Counter({
      name: 'ha_miner_lifecycle_passes_total',
      help: 'Per-block lifecycle passes, by outcome',
      labelNames: ['outcome'] as const,
      registers,
    }),
    passDuration: new Histogram({
      name: 'ha_miner_lifecycle_pass_duration_seconds',
      help: 'Duration of one per-block lifecycle pass (jobs run after it)',
      buckets: PASS_BUCKETS_SECONDS,
      registers,
    }),
    restarts: new Counter({
      name: 'ha_miner_lifecycle_restarts_total',
      help: 'Sessions found claiming or proving without a tx hash after a start or takeover, restarted',
      labelNames: ['phase'] as const,
      registers,
    }),
    claimDrainTimeouts: new Counter({
      name: 'ha_miner_claim_drain_timeouts_total',
      help: 'Claims sealed while relays published before the claim were still unconsumed in the stream',
      registers,
    }),
    txAttempts: new Counter({
      name: 'ha_miner_tx_attempts_total',
      help: 'Claim and proof transaction attempts, by result',
      labelNames: ['phase', 'result'] as const,
      registers,
    }),
    sessionOutcomes: new Counter({
      name: 'ha_miner_job_session_outcomes_total',
      help: 'Sessions leaving a claim or proof job, by outcome',
      labelNames: ['phase', 'outcome'] as const,
      registers,
    }),
    proofsQuarantined: new Counter({
      name: 'ha_miner_proofs_quarantined_total',
      help: 'Proofs that failed local verification with the chain rules and were not submitted',
      labelNames: ['reason'] as const,
      registers,
    }),
    inclusionOutcomes: new Counter({
      name: 'ha_miner_inclusion_outcomes_total',
      help: 'Inclusion reconciler verdicts on submitted claims and proofs',
      labelNames: ['phase', 'outcome'] as const,
      registers,
    }),
    rebroadcasts: new Counter({
      name: 'ha_miner_rebroadcasts_total',
      help: 'Claim and proof messages re-broadcast by the inclusion reconciler, by result',
      labelNames: ['phase', 'result'] as const,
      registers,
    }),
    ledgerRelays: new Counter({
      name: 'ha_miner_ledger_relays_total',
      help: 'Relays recorded in the per-session ledger, by bucket',
      labelNames: ['bucket'] as const,
      registers,
    }),
    ledgerUpokt: new Counter({
      name: 'ha_miner_ledger_upokt_total',
      help: 'uPOKT recorded in the per-session ledger (settled, fee_estimated, fee_actual)',
      labelNames: ['kind'] as const,
      registers,
    }),
  };
}
