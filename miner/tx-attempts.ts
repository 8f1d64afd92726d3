/**
 * The attempt loop the claim and proof jobs share: send the group's tx until the chain accepts it,
 * the window closes, a refusal the caller recognises ends it, or `max_attempts` run out
 * (`retry_delay_ms` apart). Every attempt is counted in `ha_miner_tx_attempts_total{phase,result}`
 * and every failed one is logged; what a refusal means (window closed, a batch to split, a proof
 * not required) and what to do with each outcome stays with the job.
 */
import type { Logger } from 'pino';
import type { BroadcastResult } from '../chain/index.js';
import type { MinerLifecycleMetrics } from './miner-metrics.js';

const timerSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export type RefusedBroadcast = Extract<BroadcastResult, { ok: false }>;

export interface TxAttemptPlan {
  phase: 'claim' | 'proof';
  supplier: string;
  sessionEndHeight: number;
  /** Height the group was formed at; the attempt height is never below it. */
  groupHeight: number;
  /** The window's close height: no attempt is made at or after it. */
  closeHeight: number;
  maxAttempts: number;
  retryDelayMs: number;
  currentHeight: () => number;
  metrics: MinerLifecycleMetrics;
  log: Logger;
  /** Waits between attempts (tests pass an instant one); a timer by default. */
  sleep?: (ms: number) => Promise<void>;
  /** One broadcast of the group at attempt height `h`. */
  send(h: number): Promise<BroadcastResult>;
  /** Records an accepted tx; a throw here counts as a failed attempt, like a failed broadcast. */
  onAccepted(txHash: string, feeAmount: bigint, h: number): Promise<void>;
  /** A refusal that ends the attempts gives the sessions left for the next block; undefined tries again. */
  onRefused(res: RefusedBroadcast): Promise<string[] | undefined>;
}

export type TxAttemptOutcome =
  | { kind: 'accepted' }
  | { kind: 'window_closed' }
  | { kind: 'ended'; undecided: string[] }
  /** Every attempt failed; `chainAnswered` false means none reached the chain (node unreachable). */
  | { kind: 'exhausted'; chainAnswered: boolean; lastError: string; height: number };

export async function runTxAttempts(p: TxAttemptPlan): Promise<TxAttemptOutcome> {
  let lastError = '';
  let chainAnswered = false;
  for (let attempt = 1; attempt <= p.maxAttempts; attempt++) {
    const h = Math.max(p.groupHeight, p.currentHeight());
    if (h >= p.closeHeight) return { kind: 'window_closed' };
    try {
      const res = await p.send(h);
      if (res.ok) {
        p.metrics.txAttempts.inc({ phase: p.phase, result: 'accepted' });
        await p.onAccepted(res.txHash, res.feeAmount, h);
        return { kind: 'accepted' };
      }
      chainAnswered = true;
      p.metrics.txAttempts.inc({ phase: p.phase, result: `${res.stage}_rejected` });
      lastError = `${res.codespace}/${res.code}: ${res.log}`;
      const undecided = await p.onRefused(res);
      if (undecided !== undefined) return { kind: 'ended', undecided };
    } catch (err) {
      p.metrics.txAttempts.inc({ phase: p.phase, result: 'error' });
      lastError = err instanceof Error ? err.message : String(err);
    }
    p.log.warn(
      { supplier: p.supplier, session_end_height: p.sessionEndHeight, attempt, error: lastError },
      `${p.phase} tx attempt failed`,
    );
    if (attempt < p.maxAttempts) await (p.sleep ?? timerSleep)(p.retryDelayMs);
  }
  return {
    kind: 'exhausted',
    chainAnswered,
    lastError,
    height: Math.max(p.groupHeight, p.currentHeight()),
  };
}
