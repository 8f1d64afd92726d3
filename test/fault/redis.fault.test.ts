/**
 * Redis faults under load, one stack (own append-only redis-server, 2 relayer and 2 miner
 * processes), one scenario after the other, each judged by the ledger: every relay the client saw
 * succeed is claimed on chain, nothing more, every claim proved.
 *
 * - restart: redis-server SIGKILLed and started again on the same files 1 s later. Relayers keep
 *   answering (meter fail-open), buffer the mined relays and publish them once Redis is back.
 * - pause: `DEBUG SLEEP 2` — Redis answers nothing for 2 s; relays wait, nothing is lost.
 * - OOM: `maxmemory` reached with `noeviction`. A relay whose mined relay Redis refuses is not
 *   answered as a success (503 "relay could not be recorded"); the refusal is logged with Redis's
 *   OOM error and counted in `ha_transport_redis_publish_errors_total{reason="oom"}`; once memory
 *   is freed, relays are served and claimed again and the miners still hold every lease.
 */
import { describe, expect, it } from 'vitest';
import { KeyBuilder } from '../../transport/index.js';
import { recordReliability } from '../helpers/reliability.js';
import {
  faultRecord,
  claimWindowOpenOffset,
  metricValue,
  type FaultStack,
  useFaultStack,
  expectExactLedger,
} from './harness.js';

const BLOCK_MS = 1_000;
const RPS = 120;

const stack = useFaultStack({
  relayers: 2,
  miners: 2,
  blockTimeMs: BLOCK_MS,
  genesis: claimWindowOpenOffset(2),
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function metricsPage(url: string): Promise<string> {
  return (await fetch(url, { signal: AbortSignal.timeout(2_000) })).text();
}

/** Sum over the relayers of a series on their metrics pages. */
async function relayerMetric(
  s: FaultStack,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const pages = await Promise.all(s.relayers.map((r) => metricsPage(r.metricsUrl)));
  return pages.reduce((n, p) => n + metricValue(p, name, labels), 0);
}

function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : Math.round(sorted[Math.ceil(0.99 * sorted.length) - 1]!);
}

describe('redis faults under load', () => {
  it('redis-restart: SIGKILL and restart of Redis loses no relay the client saw succeed', async () => {
    const s = stack();
    await s.awaitFreshSession();
    const started = performance.now();
    const loading = s.load({ rps: RPS, durationMs: 6_000, timeoutMs: 10_000 });
    await sleep(2_000);
    const publishedBefore = await Promise.all(
      s.relayers.map(async (r) =>
        metricValue(await metricsPage(r.metricsUrl), 'ha_transport_redis_published_total'),
      ),
    );
    const killedAt = performance.now();
    await s.redis.kill();
    await sleep(1_000);
    await s.redis.restart();
    const restartedAt = performance.now();
    // Recovery: every relayer has written to its streams again.
    let recoveredAt = 0;
    const deadline = Date.now() + 20_000;
    while (recoveredAt === 0 && Date.now() < deadline) {
      const now = await Promise.all(
        s.relayers.map(async (r) =>
          metricValue(await metricsPage(r.metricsUrl), 'ha_transport_redis_published_total'),
        ),
      );
      if (now.every((n, i) => n > publishedBefore[i]!)) recoveredAt = performance.now();
      else await sleep(50);
    }
    const load = await loading;
    expect(recoveredAt).toBeGreaterThan(0);
    expect(s.relayers.map((r) => r.running)).toEqual([true, true]);
    expect(s.miners.map((m) => m.running)).toEqual([true, true]);
    // Fail-open: the relayers kept answering while Redis was down.
    const downStart = killedAt - started;
    const downEnd = restartedAt - started;
    const during = load.samples.filter((x) => x.startMs >= downStart && x.startMs < downEnd);
    expect(during.length).toBeGreaterThan(50);
    const ledger = await s.ledger(load);
    recordReliability(
      'fault',
      'redis-restart',
      faultRecord(
        `redis-server SIGKILLed at 2 s and restarted (append-only, same files) 1 s later under ${RPS} RPS`,
        RPS,
        load,
        ledger,
        {
          recovery_ms: Math.round(recoveredAt - killedAt),
          extra: {
            redis_down_ms: Math.round(restartedAt - killedAt),
            publish_resumed_after_restart_ms: Math.round(recoveredAt - restartedAt),
            relays_sent_while_down: during.length,
            successes_while_down: during.filter((x) => x.ok).length,
          },
        },
      ),
    );
    expectExactLedger(ledger, load);
    // Most relays sent while Redis was down were still served (fail-open meter, buffered publish).
    expect(during.filter((x) => x.ok).length).toBeGreaterThan(during.length / 2);
  }, 60_000);

  it('redis-pause: DEBUG SLEEP 2 under load loses nothing', async () => {
    const s = stack();
    await s.awaitFreshSession();
    const started = performance.now();
    const loading = s.load({ rps: RPS, durationMs: 6_000, timeoutMs: 10_000 });
    await sleep(2_000);
    const pauseStart = performance.now() - started;
    await s.redis.pause(2_000);
    const pauseEnd = performance.now() - started;
    const load = await loading;
    const during = load.samples.filter((x) => x.startMs >= pauseStart && x.startMs < pauseEnd);
    const before = load.samples.filter((x) => x.startMs < pauseStart);
    expect(pauseEnd - pauseStart).toBeGreaterThanOrEqual(1_900);
    expect(during.length).toBeGreaterThan(100);
    const ledger = await s.ledger(load);
    recordReliability(
      'fault',
      'redis-pause',
      faultRecord(`Redis DEBUG SLEEP 2 at 2 s under ${RPS} RPS`, RPS, load, ledger, {
        recovery_ms: Math.round(Math.max(0, ...during.map((x) => x.startMs + x.latencyMs)) - pauseStart),
        extra: {
          pause_ms: Math.round(pauseEnd - pauseStart),
          p99_latency_ms_during_pause: p99(during.map((x) => x.latencyMs)),
          p99_latency_ms_before_pause: p99(before.map((x) => x.latencyMs)),
          relays_sent_during_pause: during.length,
          successes_during_pause: during.filter((x) => x.ok).length,
        },
      }),
    );
    expectExactLedger(ledger, load);
    // A 2 s pause is shorter than any timeout on the path: every relay was answered successfully.
    expect(load.failuresByReason).toEqual({});
  }, 60_000);

  it('redis-oom: refused writes are answered as failures, reported, and service resumes after memory is freed', async () => {
    const s = stack();
    await s.awaitFreshSession();
    const admin = s.redis.client();
    const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);
    // A limit just above what Redis holds now, then filler values until it refuses writes.
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', String(used + 2 * 1024 * 1024));
    // Fill with smaller and smaller values, each size until Redis refuses it, until not even a
    // small write fits (the miners' stream deletes free a little memory now and then).
    let fillers = 0;
    const fill = async (size: number): Promise<boolean> =>
      admin.set(`fault:filler:${fillers++}`, Buffer.alloc(size, 7)).then(
        () => false,
        (err: unknown) => err instanceof Error && err.message.startsWith('OOM '),
      );
    let full = false;
    for (let round = 0; round < 20 && !full; round++) {
      for (const size of [64 * 1024, 1024, 16]) {
        for (let n = 0; n < 1_000 && !(await fill(size)); n++);
      }
      full = await admin.set('fault:probe', 'x').then(
        () => false,
        (err: unknown) => err instanceof Error && err.message.startsWith('OOM '),
      );
    }
    expect(full).toBe(true);
    const oomAt = performance.now();
    const droppedBefore = await relayerMetric(s, 'ha_transport_redis_publish_errors_total', {
      reason: 'oom',
    });

    const underOom = await s.load({ rps: RPS, durationMs: 3_000, timeoutMs: 10_000 });
    const oomRefusalsMetric =
      (await relayerMetric(s, 'ha_transport_redis_publish_errors_total', { reason: 'oom' })) - droppedBefore;

    await admin.del('fault:probe', ...Array.from({ length: fillers }, (_, i) => `fault:filler:${i}`));
    await admin.config('SET', 'maxmemory', '0');
    const freedAt = performance.now();
    const after = await s.load({ rps: RPS, durationMs: 4_000, timeoutMs: 10_000 });
    const firstOk = after.samples.find((x) => x.ok);

    // Operator-visible: a warn/error line naming the OOM on a relayer.
    const oomLines = s.relayers.flatMap((r) =>
      r
        .logs()
        .split('\n')
        .filter((l) => /"level":(40|50)/.test(l) && l.includes('OOM command not allowed')),
    );
    const ledger = await s.ledger([underOom, after]);
    const failureReasons = Object.keys(underOom.failuresByReason).sort();
    recordReliability(
      'fault',
      'redis-oom',
      faultRecord(
        `Redis maxmemory reached (noeviction) for 3 s of ${RPS} RPS, then memory freed and 4 s more`,
        RPS,
        [underOom, after],
        ledger,
        {
          recovery_ms: firstOk === undefined ? -1 : Math.round(firstOk.startMs + firstOk.latencyMs),
          extra: {
            successes_under_oom: underOom.successes,
            failures_under_oom: underOom.failures,
            failure_reasons_under_oom: JSON.stringify(underOom.failuresByReason),
            successes_after_free: after.successes,
            failures_after_free: after.failures,
            oom_log_lines: oomLines.length,
            oom_refusals_metric: oomRefusalsMetric,
            oom_ms: Math.round(freedAt - oomAt),
          },
        },
      ),
    );
    // Nothing the client saw succeed may be unclaimed — during the OOM or after it.
    expectExactLedger(ledger, [underOom, after]);
    // Relays Redis could not take were refused at the client: 503, "could not be recorded".
    expect(underOom.failures).toBeGreaterThan(0);
    expect(failureReasons).toEqual(['relayer_http_503']);
    expect(new Set(underOom.samples.filter((y) => !y.ok).map((y) => y.message))).toEqual(
      new Set(['the relayer answered 503: {"error":"relay could not be recorded"}']),
    );
    // The operator sees why: warn/error lines carrying Redis's OOM error, and one
    // ha_transport_redis_publish_errors_total{reason="oom"} per refused relay.
    expect(oomLines.length).toBeGreaterThan(0);
    expect(oomRefusalsMetric).toBe(underOom.failures);
    // Service resumed once memory was freed, and the miners still hold every supplier's lease.
    expect(after.failuresByReason).toEqual({});
    const keys = new KeyBuilder({ namespace: { base_prefix: 'ha' } });
    const leases = await Promise.all(s.keys.suppliers.map((k) => admin.exists(keys.minerClaim(k.address))));
    expect(leases).toEqual(s.keys.suppliers.map(() => 1));
  }, 90_000);
});
