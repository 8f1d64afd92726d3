/** The load runner's pacing and stopping rules and the summary arithmetic. */
import { describe, expect, it } from 'vitest';
import type { RelayOutcome } from './client.js';
import { percentile, runLoad, summarize } from './load.js';

function outcome(latencyMs: number, reason?: string): RelayOutcome {
  return reason === undefined
    ? { ok: true, latencyMs, attempts: 1, hedged: false, status: 200, verified: 1 }
    : { ok: false, reason, message: reason, latencyMs, attempts: 2, hedged: true, verified: 0 };
}

describe('percentile (nearest rank)', () => {
  it('picks the ranked value and handles the edges', () => {
    const v = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([percentile(v, 50), percentile(v, 95), percentile(v, 99), percentile(v, 100)]).toEqual([
      50, 95, 99, 100,
    ]);
    expect([percentile([], 50), percentile([7], 1), percentile([7], 99)]).toEqual([0, 7, 7]);
  });
});

describe('summarize', () => {
  it('counts successes, failures by reason, attempts and hedges; latency over every relay', () => {
    const outcomes = [
      outcome(10),
      outcome(20),
      outcome(30, 'timeout'),
      outcome(40, 'response_signature_invalid'),
      outcome(50, 'timeout'),
    ];
    expect(summarize(outcomes, 500)).toEqual({
      total: 5,
      success: 2,
      failed: 3,
      success_rate_pct: 40,
      failures: { timeout: 2, response_signature_invalid: 1 },
      latency_ms: { min: 10, mean: 30, p50: 30, p95: 50, p99: 50, max: 50 },
      duration_ms: 500,
      rps: 10,
      attempts: 8,
      hedged: 3,
      verified_responses: 2,
    });
  });

  it('an empty run is all zeros', () => {
    expect(summarize([], 0)).toEqual({
      total: 0,
      success: 0,
      failed: 0,
      success_rate_pct: 0,
      failures: {},
      latency_ms: { min: 0, mean: 0, p50: 0, p95: 0, p99: 0, max: 0 },
      duration_ms: 0,
      rps: 0,
      attempts: 0,
      hedged: 0,
      verified_responses: 0,
    });
  });
});

describe('runLoad', () => {
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  it('sends exactly `count` relays, never more than `concurrency` at once', async () => {
    let inFlight = 0;
    let peak = 0;
    const { outcomes } = await runLoad(
      async () => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await sleep(2);
        inFlight--;
        return outcome(2);
      },
      { count: 37, concurrency: 5 },
    );
    expect([outcomes.length, peak]).toEqual([37, 5]);
  });

  it('paces to rps and stops at the duration', async () => {
    const paced = await runLoad(() => Promise.resolve(outcome(0)), { count: 6, concurrency: 6, rps: 100 });
    expect(paced.outcomes).toHaveLength(6);
    // Six starts at 100/s: the last one is due 50 ms after the first.
    expect(paced.durationMs).toBeGreaterThanOrEqual(45);
    const timed = await runLoad(() => Promise.resolve(outcome(0)), {
      concurrency: 2,
      rps: 50,
      durationMs: 200,
    });
    expect(timed.outcomes.length).toBeGreaterThanOrEqual(8);
    expect(timed.outcomes.length).toBeLessThanOrEqual(11);
  });

  it('refuses a run with neither count nor duration', async () => {
    await expect(runLoad(() => Promise.resolve(outcome(0)), { concurrency: 1 })).rejects.toThrow(
      'a load run needs a count or a duration',
    );
  });
});
