/**
 * The soak run's logic: the trend detector on synthetic series (flat with noise, GC saw-tooth,
 * warm-up then flat, a slow leak, a stream backlog), the argument parser, and one short real run
 * of `bench/soak/soak.ts` (10 s of load on one relayer and one miner) whose JSON lines are checked
 * field by field.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULTS,
  gaugeValue,
  parseDuration,
  parseSoakArgs,
  verdicts,
  type SoakSample,
  type SoakSummary,
} from '../../bench/soak/soak.js';
import { fitLine, growthVerdict, robustLine, secondHalf, type Point } from '../../bench/soak/trend.js';
import { seededRandom } from '../helpers/prng.js';

const MB = 1024 * 1024;

function series(n: number, f: (t: number) => number, stepS = 5): Point[] {
  return Array.from({ length: n }, (_, i) => ({ t: i * stepS, v: f(i * stepS) }));
}

describe('trend detector', () => {
  it('fits an exact line exactly and uses only the second half', () => {
    expect(fitLine(series(5, (t) => 3 + 2 * t, 1))).toEqual({ slope: 2, intercept: 3, points: 5 });
    expect(secondHalf(series(5, (t) => t, 1)).map((p) => p.t)).toEqual([2, 3, 4]);
    expect(fitLine([])).toEqual({ slope: 0, intercept: 0, points: 0 });
    expect(robustLine(series(5, (t) => 3 + 2 * t, 1))).toEqual({ slope: 2, intercept: 3, points: 5 });
  });

  it('ignores a single spike that would tilt a least-squares line', () => {
    // Flat 10 ms lag with one 400 ms pause in the last sample.
    const lag = series(10, (t) => (t === 45 ? 0.4 : 0.01));
    expect(fitLine(secondHalf(lag)).slope).toBeGreaterThan(0.01);
    expect(robustLine(secondHalf(lag)).slope).toBe(0);
    expect(growthVerdict(lag, { maxGrowthPct: 100, minGrowth: 0.05 }).growing).toBe(false);
  });

  it('does not flag a flat series with noise, a GC saw-tooth, or warm-up growth in the first half', () => {
    const rnd = seededRandom(7);
    const limit = { maxGrowthPct: 15, minGrowth: 24 * MB };
    const noisy = series(60, () => 150 * MB + (rnd() - 0.5) * 20 * MB);
    const sawTooth = series(60, (t) => 140 * MB + ((t / 5) % 6) * 8 * MB);
    const warmUp = series(60, (t) => (t < 100 ? 80 * MB + t * MB : 180 * MB));
    for (const s of [noisy, sawTooth, warmUp]) expect(growthVerdict(s, limit).growing).toBe(false);
  });

  it('flags a slow leak once it passes both the relative and the absolute limit', () => {
    const limit = { maxGrowthPct: 15, minGrowth: 24 * MB };
    // 0.5 MB per sample of 5 s = 6 MB/min; the second half spans 145 s → 14.5 MB: under the floor.
    const slow = growthVerdict(
      series(60, (t) => 150 * MB + (t / 5) * 0.5 * MB),
      limit,
    );
    expect({ growing: slow.growing, growthMb: Math.round(slow.growth / MB) }).toEqual({
      growing: false,
      growthMb: 15,
    });
    // 2 MB per sample: 58 MB over the second half of a 150 MB process (≈ 30 %).
    const leak = growthVerdict(
      series(60, (t) => 150 * MB + (t / 5) * 2 * MB),
      limit,
    );
    expect({
      growing: leak.growing,
      growthMb: Math.round(leak.growth / MB),
      slopeMbPerMin: Math.round(leak.slopePerMinute / MB),
    }).toEqual({ growing: true, growthMb: 58, slopeMbPerMin: 24 });
  });

  it('flags a stream backlog from zero (no base for a percentage) only above the entry floor', () => {
    const limit = { maxGrowthPct: 50, minGrowth: 500 };
    const backlog = growthVerdict(
      series(20, (t) => (t < 50 ? 0 : (t - 50) * 40)),
      limit,
    );
    expect({ growing: backlog.growing, growthPct: backlog.growthPct }).toEqual({
      growing: true,
      growthPct: null,
    });
    const jitter = growthVerdict(
      series(20, (t) => (t % 10 === 0 ? 120 : 0)),
      limit,
    );
    expect(jitter.growing).toBe(false);
  });

  it('judges every series of a run: per-process RSS and lag, Redis memory, every stream', () => {
    const samples: SoakSample[] = Array.from({ length: 12 }, (_, i) => ({
      type: 'sample',
      t_s: i * 5,
      processes: [
        {
          name: 'relayer-0',
          pid: 1,
          rss_bytes: 100 * MB + i * 10 * MB,
          eventloop_lag_p99_s: 0.01,
          eventloop_lag_mean_s: 0.01,
        },
        {
          name: 'miner-0',
          pid: 2,
          rss_bytes: 100 * MB,
          eventloop_lag_p99_s: 0.01,
          eventloop_lag_mean_s: 0.01,
        },
      ],
      redis_used_memory_bytes: 2 * MB,
      streams: { 'ha:relays:a': 0, 'ha:relays:b': i * 200 },
      relays_ok: i * 100,
      relays_failed: 0,
    }));
    const v = verdicts(samples, DEFAULTS);
    expect(v.map((x) => [x.series, x.growing])).toEqual([
      ['relayer-0 rss_bytes', true],
      ['relayer-0 eventloop_lag_p99_s', false],
      ['miner-0 rss_bytes', false],
      ['miner-0 eventloop_lag_p99_s', false],
      ['redis used_memory_bytes', false],
      ['xlen ha:relays:a', false],
      ['xlen ha:relays:b', true],
    ]);
  });
});

describe('soak arguments', () => {
  it('parses durations and options; --help and bad values are distinguished', () => {
    expect([
      parseDuration('90'),
      parseDuration('90s'),
      parseDuration('5m'),
      parseDuration('1h'),
      parseDuration('250ms'),
    ]).toEqual([90, 90, 300, 3600, 0.25]);
    expect(() => parseDuration('soon')).toThrow('--duration "soon": expected e.g. 90, 90s, 5m, 1h');
    expect(parseSoakArgs(['--help'])).toBe('help');
    const o = parseSoakArgs([
      '--duration',
      '60s',
      '--rps',
      '200',
      '--max-stream-growth',
      '100',
      '--no-record',
    ]);
    expect(o).toEqual({
      ...DEFAULTS,
      durationS: 60,
      rps: 200,
      streamLength: { ...DEFAULTS.streamLength, minGrowth: 100 },
      recordName: undefined,
    });
    expect(() => parseSoakArgs(['--rps', '0'])).toThrow('--rps must be > 0');
    expect(() => parseSoakArgs(['--bogus'])).toThrow();
  });

  it('reads a gauge from a Prometheus page', () => {
    const page =
      '# HELP x\nnodejs_eventloop_lag_p99_seconds 0.012\nnodejs_eventloop_lag_mean_seconds{a="b"} 0.004\n';
    expect([
      gaugeValue(page, 'nodejs_eventloop_lag_p99_seconds'),
      gaugeValue(page, 'nodejs_eventloop_lag_mean_seconds'),
      gaugeValue(page, 'nodejs_heap_size_total_bytes'),
    ]).toEqual([0.012, 0.004, null]);
  });
});

describe('a short real soak run', () => {
  it('10 s on one relayer and one miner: one JSON sample per interval and a passing summary', async () => {
    const root = join(import.meta.dirname, '..', '..');
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(root, 'bench', 'soak', 'soak.ts'),
        '--duration',
        '10s',
        '--rps',
        '40',
        '--interval',
        '2s',
        '--relayers',
        '1',
        '--miners',
        '1',
        // A 10 s run on a shared 2-core box is all warm-up: only the output is checked here.
        '--min-rss-growth-mb',
        '512',
        '--max-lag-growth-ms',
        '1000',
        // Other test files run beside this one; timeouts under that contention are not its subject.
        '--max-failure-pct',
        '50',
        '--no-record',
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 28_000);
    const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
    clearTimeout(killer);
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as SoakSample | SoakSummary);
    const samples = lines.filter((l): l is SoakSample => l.type === 'sample');
    const summary = lines.find((l): l is SoakSummary => l.type === 'summary');
    expect({ code, stderrTail: err.trim().split('\n').slice(-1) }).toEqual({
      code: 0,
      stderrTail: [
        expect.stringMatching(/^soak: passed \(\d+ relays, \d+ failed, nothing grows\)$/) as string,
      ],
    });
    // A sample at 0 s, every 2 s during the 10 s and one at the end.
    expect(samples.length).toBeGreaterThanOrEqual(6);
    for (const s of samples) {
      expect(Object.keys(s).sort()).toEqual(
        [
          'type',
          't_s',
          'processes',
          'redis_used_memory_bytes',
          'streams',
          'relays_ok',
          'relays_failed',
        ].sort(),
      );
      expect(s.processes.map((p) => p.name)).toEqual(['relayer-0', 'miner-0']);
      for (const p of s.processes) {
        expect(p.rss_bytes).toBeGreaterThan(20 * MB);
        expect(typeof p.eventloop_lag_p99_s).toBe('number');
        expect(typeof p.eventloop_lag_mean_s).toBe('number');
      }
      expect(s.redis_used_memory_bytes).toBeGreaterThan(0);
      expect(Object.keys(s.streams).length).toBeGreaterThan(0);
      for (const k of Object.keys(s.streams)) expect(k).toMatch(/^ha:relays:pokt1[0-9a-z]+$/);
    }
    expect(summary).toBeDefined();
    const sm = summary!;
    expect({
      duration_s: sm.duration_s,
      rps: sm.rps,
      relayers: sm.relayers,
      miners: sm.miners,
      samples: sm.samples,
      relays: sm.relays_ok + sm.relays_failed,
      failures_counted: Object.values(sm.failures_by_reason).reduce((a, n) => a + n, 0),
      growing: sm.growing,
      passed: sm.passed,
    }).toEqual({
      duration_s: 10,
      rps: 40,
      relayers: 1,
      miners: 1,
      samples: samples.length,
      relays: 400,
      failures_counted: sm.relays_failed,
      growing: [],
      passed: true,
    });
    expect(sm.relays_ok).toBeGreaterThan(200);
    expect(sm.failure_pct).toBeCloseTo((sm.relays_failed / 400) * 100, 2);
    expect(sm.latency_p99_ms).toBeGreaterThanOrEqual(sm.latency_p50_ms);
    expect(sm.latency_p50_ms).toBeGreaterThan(0);
    expect(sm.trends.map((t) => t.series).slice(0, 5)).toEqual([
      'relayer-0 rss_bytes',
      'relayer-0 eventloop_lag_p99_s',
      'miner-0 rss_bytes',
      'miner-0 eventloop_lag_p99_s',
      'redis used_memory_bytes',
    ]);
  }, 30_000);
});
