/**
 * Backend faults under load, one stack with the JSON-RPC backend behind the harness proxy:
 *
 * - killed: the backend goes away mid-load (connections reset, then refused) and comes back.
 *   The client gets 502/503 for relays the backend could not answer; those are not billed and
 *   not claimed; after the restart relays are served again.
 * - slow: 300 ms of injected latency — relays are slower but all correct and all claimed; then
 *   3 s of latency against a 2 s relayer request timeout — the relayer answers with an error,
 *   the client counts a failure, and nothing of it is claimed.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_TIMEOUT_PROFILES } from '../../relayer/index.js';
import { recordReliability } from '../helpers/reliability.js';
import { faultRecord, claimWindowOpenOffset, useFaultStack, expectExactLedger } from './harness.js';

const BLOCK_MS = 1_000;
const RPS = 100;

const stack = useFaultStack({
  relayers: 2,
  miners: 2,
  blockTimeMs: BLOCK_MS,
  genesis: claimWindowOpenOffset(2),
  relayerConfig: (_i, cfg) => {
    // A 2 s request timeout for the demo service, so a slower backend becomes a relayer timeout.
    cfg['timeout_profiles'] = {
      ...DEFAULT_TIMEOUT_PROFILES,
      fault: {
        request_timeout_seconds: 2,
        response_header_timeout_seconds: 2,
        dial_timeout_seconds: 2,
        tls_handshake_timeout_seconds: 2,
      },
    };
    cfg['services']['anvil']['timeout_profile'] = 'fault';
    // The breaker lets a request through 1 s after it opened (default 30 s), so recovery is seen.
    cfg['services']['anvil']['backends']['jsonrpc']['recovery_timeout_seconds'] = 1;
  },
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : Math.round(sorted[Math.floor(sorted.length / 2)]!);
}

const BACKEND_ERRORS = /^(relayer_http_50[234]|backend_status_50[234])$/;

describe('backend faults under load', () => {
  it('backend-killed: failures while it is gone are not claimed, service resumes after restart', async () => {
    const s = stack();
    await s.awaitFreshSession();
    const started = performance.now();
    const loading = s.load({ rps: RPS, durationMs: 6_000, timeoutMs: 10_000 });
    await sleep(2_000);
    const killedAt = performance.now() - started;
    await s.backends.kill();
    await sleep(2_000);
    await s.backends.restart();
    const restartedAt = performance.now() - started;
    const load = await loading;

    const failures = load.samples.filter((x) => !x.ok);
    expect(failures.length).toBeGreaterThan(0);
    for (const f of failures) expect(f.reason).toMatch(BACKEND_ERRORS);
    // Every failure falls in the outage (relays started before the kill may fail as it happens).
    const early = failures.filter((f) => f.startMs + f.latencyMs < killedAt);
    expect(early.map((f) => [Math.round(f.startMs), f.reason, f.message])).toEqual([]);
    const late = failures.filter((f) => f.startMs >= restartedAt + 3_000);
    expect(late.map((f) => [Math.round(f.startMs), f.reason, f.message])).toEqual([]);
    const back = load.samples.filter((x) => x.ok && x.startMs >= restartedAt);
    expect(back.length).toBeGreaterThan(0);
    const recoveryMs = Math.round(Math.min(...back.map((x) => x.startMs + x.latencyMs)) - restartedAt);

    const ledger = await s.ledger(load);
    recordReliability(
      'fault',
      'backend-killed',
      faultRecord(`JSON-RPC backend killed at 2 s and restarted at 4 s under ${RPS} RPS`, RPS, load, ledger, {
        recovery_ms: recoveryMs,
        extra: {
          outage_ms: Math.round(restartedAt - killedAt),
        },
      }),
    );
    expectExactLedger(ledger, [load]);
  }, 60_000);

  it('backend-slow: injected latency keeps relays correct; relayer timeouts are failures, not claims', async () => {
    const s = stack();
    await s.awaitFreshSession();
    s.backends.setLatencyMs(300);
    const slow = await s.load({ rps: RPS, durationMs: 3_000, timeoutMs: 10_000 });
    s.backends.setLatencyMs(3_000);
    const timingOut = await s.load({ rps: RPS, durationMs: 2_000, timeoutMs: 10_000 });
    s.backends.setLatencyMs(0);

    expect(slow.failuresByReason).toEqual({});
    const slowMedian = median(slow.samples.map((x) => x.latencyMs));
    expect(slowMedian).toBeGreaterThanOrEqual(300);
    expect(timingOut.successes).toBe(0);
    for (const f of timingOut.samples) expect(f.reason).toMatch(BACKEND_ERRORS);
    const ledger = await s.ledger([slow, timingOut]);
    recordReliability(
      'fault',
      'backend-slow',
      faultRecord(
        `JSON-RPC backend 300 ms slower for 3 s, then 3 s slower (relayer timeout 2 s) for 2 s, ${RPS} RPS`,
        RPS,
        [slow, timingOut],
        ledger,
        {
          extra: {
            median_latency_ms_at_300ms: slowMedian,
            median_latency_ms_at_3000ms: median(timingOut.samples.map((x) => x.latencyMs)),
            timeouts: timingOut.failures,
          },
        },
      ),
    );
    expectExactLedger(ledger, [slow, timingOut]);
    expect(ledger.client_successes).toBe(slow.samples.length);
  }, 60_000);
});
