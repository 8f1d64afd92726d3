/**
 * The load runner and the numbers it reports: relays run `concurrency` at a time, paced to `rps`
 * when given, until `count` relays were sent or `durationMs` passed (whichever comes first); the
 * summary has success %, failures by reason, latency percentiles and the achieved rate.
 */
import type { RelayOutcome } from './client.js';

export interface LoadOptions {
  /** Relays to send; undefined = until the duration ends. */
  count?: number;
  concurrency: number;
  /** Relays started per second at most; 0 or undefined = as fast as the concurrency allows. */
  rps?: number;
  /** Stop starting relays after this long; undefined = until `count` is reached. */
  durationMs?: number;
}

export interface LatencySummary {
  min: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface LoadSummary {
  total: number;
  success: number;
  failed: number;
  /** success / total × 100, two decimals (0 when nothing was sent). */
  success_rate_pct: number;
  /** Failed relays per reason; the counts add up to `failed`. */
  failures: Record<string, number>;
  /** Latency of every finished relay (retries and hedges included), milliseconds. */
  latency_ms: LatencySummary;
  /** Wall time of the run, milliseconds. */
  duration_ms: number;
  /** Finished relays per second of wall time. */
  rps: number;
  /** Attempts sent in all (retries and hedges included). */
  attempts: number;
  /** Relays that sent a hedged second request. */
  hedged: number;
  /** Signed responses verified (stream batches and subscription pushes count one each). */
  verified_responses: number;
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(outcomes: readonly RelayOutcome[], durationMs: number): LoadSummary {
  const failures: Record<string, number> = {};
  let success = 0;
  let attempts = 0;
  let hedged = 0;
  let verified = 0;
  for (const o of outcomes) {
    attempts += o.attempts;
    if (o.hedged) hedged++;
    verified += o.verified;
    if (o.ok) success++;
    else {
      const reason = o.reason ?? 'unknown';
      failures[reason] = (failures[reason] ?? 0) + 1;
    }
  }
  const lat = outcomes.map((o) => o.latencyMs).sort((a, b) => a - b);
  const total = outcomes.length;
  return {
    total,
    success,
    failed: total - success,
    success_rate_pct: total === 0 ? 0 : round2((success / total) * 100),
    failures,
    latency_ms: {
      min: round2(lat[0] ?? 0),
      mean: round2(total === 0 ? 0 : lat.reduce((a, b) => a + b, 0) / total),
      p50: round2(percentile(lat, 50)),
      p95: round2(percentile(lat, 95)),
      p99: round2(percentile(lat, 99)),
      max: round2(lat[lat.length - 1] ?? 0),
    },
    duration_ms: round2(durationMs),
    rps: durationMs > 0 ? round2((total * 1000) / durationMs) : 0,
    attempts,
    hedged,
    verified_responses: verified,
  };
}

/** Runs `relay` under the load shape and returns every outcome and the wall time. */
export async function runLoad(
  relay: () => Promise<RelayOutcome>,
  o: LoadOptions,
): Promise<{ outcomes: RelayOutcome[]; durationMs: number }> {
  if (o.count === undefined && o.durationMs === undefined) {
    throw new RangeError('a load run needs a count or a duration');
  }
  const start = performance.now();
  const outcomes: RelayOutcome[] = [];
  let started = 0;
  const intervalMs = o.rps !== undefined && o.rps > 0 ? 1000 / o.rps : 0;
  const more = (): boolean =>
    (o.count === undefined || started < o.count) &&
    (o.durationMs === undefined || performance.now() - start < o.durationMs);
  const worker = async (): Promise<void> => {
    while (more()) {
      const slot = started++;
      if (intervalMs > 0) {
        const due = start + slot * intervalMs;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (o.durationMs !== undefined && performance.now() - start >= o.durationMs) {
          started--;
          return;
        }
      }
      outcomes.push(await relay());
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, () => worker()));
  return { outcomes, durationMs: performance.now() - start };
}
