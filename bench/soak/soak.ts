/**
 * `npm run soak -- --duration 60s --rps 200`: steady relay load against a stack of real child
 * processes (test/fault/harness.ts: its own redis-server, the localnet in this process, relayers
 * and miners started from the CLI), sampled every `--interval`:
 *
 *   - RSS of every child (VmRSS from /proc/<pid>/status),
 *   - event-loop lag of every child (nodejs_eventloop_lag_p99_seconds / _mean_seconds from its
 *     Prometheus endpoint; prom-client default metrics, reset at each scrape),
 *   - Redis used_memory (INFO memory) and XLEN of every relay stream (SCAN … TYPE stream).
 *
 * One JSON line per sample on stdout, then a summary line. A line fitted through the second half
 * of each series (trend.ts) must not grow beyond the stated limits; otherwise, or when more than
 * `--max-failure-pct` of the relays failed, the run exits 1. The summary is recorded through
 * recordReliability('soak', <record name>, …).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { startFaultStack, type FaultStack, type ManagedProcess } from '../../test/fault/harness.js';
import { recordReliability } from '../../test/helpers/reliability.js';
import { growthVerdict, type GrowthLimit, type GrowthVerdict, type Point } from './trend.js';

export interface SoakOptions {
  durationS: number;
  rps: number;
  intervalS: number;
  relayers: number;
  miners: number;
  rss: GrowthLimit;
  redisMemory: GrowthLimit;
  streamLength: GrowthLimit;
  lag: GrowthLimit;
  maxFailurePct: number;
  recordName: string | undefined;
}

export const DEFAULTS: SoakOptions = {
  durationS: 60,
  rps: 150,
  intervalS: 5,
  relayers: 2,
  miners: 2,
  // RSS: a Node process's heap saw-tooth is tens of MB; growth must exceed both.
  rss: { maxGrowthPct: 15, minGrowth: 24 * 1024 * 1024 },
  redisMemory: { maxGrowthPct: 25, minGrowth: 8 * 1024 * 1024 },
  // Miners delete what they consume: a stream that keeps growing is a backlog.
  streamLength: { maxGrowthPct: 50, minGrowth: 500 },
  // p99 event-loop lag, seconds.
  lag: { maxGrowthPct: 100, minGrowth: 0.05 },
  maxFailurePct: 1,
  recordName: 'steady',
};

export interface ProcessSample {
  name: string;
  pid: number | null;
  rss_bytes: number | null;
  eventloop_lag_p99_s: number | null;
  eventloop_lag_mean_s: number | null;
}

export interface SoakSample {
  type: 'sample';
  t_s: number;
  processes: ProcessSample[];
  redis_used_memory_bytes: number;
  streams: Record<string, number>;
  relays_ok: number;
  relays_failed: number;
}

export interface SeriesVerdict extends GrowthVerdict {
  series: string;
  limit: GrowthLimit;
}

export interface SoakSummary {
  type: 'summary';
  duration_s: number;
  rps: number;
  relayers: number;
  miners: number;
  samples: number;
  relays_ok: number;
  relays_failed: number;
  failures_by_reason: Record<string, number>;
  failure_pct: number;
  latency_p50_ms: number;
  latency_p99_ms: number;
  trends: SeriesVerdict[];
  growing: string[];
  passed: boolean;
}

/** `90`, `90s`, `5m`, `1h`, `250ms` → seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (m === null) throw new Error(`--duration ${JSON.stringify(text)}: expected e.g. 90, 90s, 5m, 1h`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return unit === 'ms' ? n / 1000 : unit === 'm' ? n * 60 : unit === 'h' ? n * 3600 : n;
}

/** VmRSS of a live process in bytes, null when it is gone. */
export function rssBytes(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? null : Number(m[1]) * 1024;
  } catch {
    return null;
  }
}

/** A gauge's value from a Prometheus text page, null when absent. */
export function gaugeValue(page: string, name: string): number | null {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(page);
  return m === null ? null : Number(m[1]);
}

async function processSample(p: ManagedProcess): Promise<ProcessSample> {
  let page: string;
  try {
    const res = await fetch(p.metricsUrl, { signal: AbortSignal.timeout(2_000) });
    page = await res.text();
  } catch {
    // A process being restarted or gone: its lag is unknown for this sample.
    page = '';
  }
  return {
    name: p.name,
    pid: p.pid ?? null,
    rss_bytes: rssBytes(p.pid),
    eventloop_lag_p99_s: gaugeValue(page, 'nodejs_eventloop_lag_p99_seconds'),
    eventloop_lag_mean_s: gaugeValue(page, 'nodejs_eventloop_lag_mean_seconds'),
  };
}

async function streamLengths(stack: FaultStack): Promise<Record<string, number>> {
  const redis = stack.redis.client();
  const out: Record<string, number> = {};
  let cursor = '0';
  do {
    const [next, keys] = (await redis.call('SCAN', cursor, 'COUNT', '500', 'TYPE', 'stream')) as [
      string,
      string[],
    ];
    cursor = next;
    for (const k of keys) out[k] = await redis.xlen(k);
  } while (cursor !== '0');
  return out;
}

async function usedMemory(stack: FaultStack): Promise<number> {
  const info = await stack.redis.client().info('memory');
  const m = /^used_memory:(\d+)/m.exec(info);
  return m === null ? 0 : Number(m[1]);
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Every series of the run with its verdict. */
export function verdicts(samples: readonly SoakSample[], o: SoakOptions): SeriesVerdict[] {
  const out: SeriesVerdict[] = [];
  const add = (series: string, points: Point[], limit: GrowthLimit): void => {
    out.push({ series, limit, ...growthVerdict(points, limit) });
  };
  const names = [...new Set(samples.flatMap((s) => s.processes.map((p) => p.name)))];
  for (const name of names) {
    const of = (f: (p: ProcessSample) => number | null): Point[] =>
      samples.flatMap((s) => {
        const v = s.processes.find((p) => p.name === name);
        const x = v === undefined ? null : f(v);
        return x === null ? [] : [{ t: s.t_s, v: x }];
      });
    add(
      `${name} rss_bytes`,
      of((p) => p.rss_bytes),
      o.rss,
    );
    add(
      `${name} eventloop_lag_p99_s`,
      of((p) => p.eventloop_lag_p99_s),
      o.lag,
    );
  }
  add(
    'redis used_memory_bytes',
    samples.map((s) => ({ t: s.t_s, v: s.redis_used_memory_bytes })),
    o.redisMemory,
  );
  const streams = [...new Set(samples.flatMap((s) => Object.keys(s.streams)))].sort();
  for (const k of streams) {
    add(
      `xlen ${k}`,
      samples.map((s) => ({ t: s.t_s, v: s.streams[k] ?? 0 })),
      o.streamLength,
    );
  }
  return out;
}

/** Runs the soak; `emit` receives every sample and the summary. */
export async function runSoak(
  o: SoakOptions,
  emit: (line: SoakSample | SoakSummary) => void,
): Promise<SoakSummary> {
  const stack = await startFaultStack({ relayers: o.relayers, miners: o.miners });
  const samples: SoakSample[] = [];
  let ok = 0;
  let failed = 0;
  const failuresByReason: Record<string, number> = {};
  const latencies: number[] = [];
  try {
    const t0 = performance.now();
    const sample = async (): Promise<void> => {
      const s: SoakSample = {
        type: 'sample',
        t_s: Math.round((performance.now() - t0) / 100) / 10,
        processes: await Promise.all([...stack.relayers, ...stack.miners].map(processSample)),
        redis_used_memory_bytes: await usedMemory(stack),
        streams: await streamLengths(stack),
        relays_ok: ok,
        relays_failed: failed,
      };
      samples.push(s);
      emit(s);
    };
    await sample();
    // Load in chunks of at most a minute, so a long run keeps only per-chunk samples.
    const loading = (async (): Promise<void> => {
      let left = o.durationS * 1000;
      while (left > 0) {
        const chunk = Math.min(left, 60_000);
        const r = await stack.load({ rps: o.rps, durationMs: chunk });
        ok += r.successes;
        failed += r.failures;
        for (const [k, n] of Object.entries(r.failuresByReason))
          failuresByReason[k] = (failuresByReason[k] ?? 0) + n;
        for (const s of r.samples) if (s.ok) latencies.push(Math.round(s.latencyMs * 10) / 10);
        left -= chunk;
      }
    })();
    let done = false;
    void loading.finally(() => (done = true)).catch(() => undefined);
    while (!done) {
      await Promise.race([
        loading.catch(() => undefined),
        new Promise((r) => setTimeout(r, o.intervalS * 1000)),
      ]);
      if (!done) await sample();
    }
    await loading;
    await sample();
  } finally {
    await stack.stop();
  }
  latencies.sort((a, b) => a - b);
  const trends = verdicts(samples, o);
  const total = ok + failed;
  const failurePct = total === 0 ? 100 : (failed / total) * 100;
  const growing = trends.filter((t) => t.growing).map((t) => t.series);
  const summary: SoakSummary = {
    type: 'summary',
    duration_s: o.durationS,
    rps: o.rps,
    relayers: o.relayers,
    miners: o.miners,
    samples: samples.length,
    relays_ok: ok,
    relays_failed: failed,
    failures_by_reason: failuresByReason,
    failure_pct: Math.round(failurePct * 1000) / 1000,
    latency_p50_ms: percentile(latencies, 50),
    latency_p99_ms: percentile(latencies, 99),
    trends,
    growing,
    passed: growing.length === 0 && failurePct <= o.maxFailurePct,
  };
  emit(summary);
  return summary;
}

const HELP = `Usage: npm run soak -- [options]

Steady relay load against relayers and miners running as child processes (own redis-server,
in-process localnet). Prints one JSON line per sample and a summary line; exits 1 when RSS,
event-loop lag, Redis memory or a relay stream's length grows over the second half of the run
beyond the limits below, or when too many relays fail.

  --duration <d>          how long to load: 90, 90s, 5m, 1h (default ${DEFAULTS.durationS}s)
  --rps <n>               relays per second, open loop (default ${DEFAULTS.rps})
  --interval <d>          sampling interval (default ${DEFAULTS.intervalS}s)
  --relayers <n>          relayer processes (default ${DEFAULTS.relayers})
  --miners <n>            miner processes (default ${DEFAULTS.miners})
  --max-rss-growth-pct <p>    RSS growth limit, % of the fitted start (default ${DEFAULTS.rss.maxGrowthPct}) …
  --min-rss-growth-mb <n>     … and at least this many MB (default ${DEFAULTS.rss.minGrowth / 2 ** 20})
  --max-redis-growth-pct <p>  Redis used_memory growth limit, % (default ${DEFAULTS.redisMemory.maxGrowthPct}) …
  --min-redis-growth-mb <n>   … and at least this many MB (default ${DEFAULTS.redisMemory.minGrowth / 2 ** 20})
  --max-stream-growth <n>     stream length growth limit, entries (default ${DEFAULTS.streamLength.minGrowth})
  --max-lag-growth-ms <n>     p99 event-loop lag growth limit, ms (default ${DEFAULTS.lag.minGrowth * 1000})
  --max-failure-pct <p>   relays allowed to fail, % (default ${DEFAULTS.maxFailurePct})
  --record <name>         reliability record name: reports/reliability/soak-<name>.json (default ${DEFAULTS.recordName});
                          --no-record writes none
  -h, --help              this text

Growth is the rise of a least-squares line through the samples of the second half of the run; a
series fails only when that rise exceeds both its absolute and its relative limit.
`;

export function parseSoakArgs(argv: string[]): SoakOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string' },
      rps: { type: 'string' },
      interval: { type: 'string' },
      relayers: { type: 'string' },
      miners: { type: 'string' },
      'max-rss-growth-pct': { type: 'string' },
      'min-rss-growth-mb': { type: 'string' },
      'max-redis-growth-pct': { type: 'string' },
      'min-redis-growth-mb': { type: 'string' },
      'max-stream-growth': { type: 'string' },
      'max-lag-growth-ms': { type: 'string' },
      'max-failure-pct': { type: 'string' },
      record: { type: 'string' },
      'no-record': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help === true) return 'help';
  const num = (name: string, v: string | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0)
      throw new Error(`--${name} ${JSON.stringify(v)}: expected a number ≥ 0`);
    return n;
  };
  const d = DEFAULTS;
  const rps = num('rps', values.rps, d.rps);
  if (rps <= 0) throw new Error('--rps must be > 0');
  return {
    durationS: values.duration === undefined ? d.durationS : parseDuration(values.duration),
    rps,
    intervalS: values.interval === undefined ? d.intervalS : parseDuration(values.interval),
    relayers: Math.max(1, Math.floor(num('relayers', values.relayers, d.relayers))),
    miners: Math.max(1, Math.floor(num('miners', values.miners, d.miners))),
    rss: {
      maxGrowthPct: num('max-rss-growth-pct', values['max-rss-growth-pct'], d.rss.maxGrowthPct),
      minGrowth: num('min-rss-growth-mb', values['min-rss-growth-mb'], d.rss.minGrowth / 2 ** 20) * 2 ** 20,
    },
    redisMemory: {
      maxGrowthPct: num('max-redis-growth-pct', values['max-redis-growth-pct'], d.redisMemory.maxGrowthPct),
      minGrowth:
        num('min-redis-growth-mb', values['min-redis-growth-mb'], d.redisMemory.minGrowth / 2 ** 20) *
        2 ** 20,
    },
    streamLength: {
      maxGrowthPct: d.streamLength.maxGrowthPct,
      minGrowth: num('max-stream-growth', values['max-stream-growth'], d.streamLength.minGrowth),
    },
    lag: {
      maxGrowthPct: d.lag.maxGrowthPct,
      minGrowth: num('max-lag-growth-ms', values['max-lag-growth-ms'], d.lag.minGrowth * 1000) / 1000,
    },
    maxFailurePct: num('max-failure-pct', values['max-failure-pct'], d.maxFailurePct),
    recordName: values['no-record'] === true ? undefined : (values.record ?? d.recordName),
  };
}

async function main(): Promise<number> {
  let o: SoakOptions | 'help';
  try {
    o = parseSoakArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`soak: ${err instanceof Error ? err.message : String(err)}\n\n${HELP}`);
    return 2;
  }
  if (o === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const opts = o;
  const summary = await runSoak(opts, (line) => process.stdout.write(`${JSON.stringify(line)}\n`));
  if (opts.recordName !== undefined) {
    const file = recordReliability('soak', opts.recordName, {
      scenario: `${opts.rps} RPS for ${opts.durationS} s over ${opts.relayers} relayer(s) and ${opts.miners} miner(s), sampled every ${opts.intervalS} s`,
      ...summary,
    });
    process.stderr.write(`soak: record written to ${file}\n`);
  }
  process.stderr.write(
    summary.passed
      ? `soak: passed (${summary.relays_ok} relays, ${summary.relays_failed} failed, nothing grows)\n`
      : `soak: FAILED (failure ${summary.failure_pct}%, growing: ${summary.growing.join(', ') || 'none'})\n`,
  );
  return summary.passed ? 0 : 1;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(resolve(entry)).href) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
