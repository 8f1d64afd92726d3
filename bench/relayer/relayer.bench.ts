/**
 * Relayer throughput and latency: (a) a bare uWS → undici pass-through vs (b) the full relayer
 * with eager validation (ring signature on the verify pool, session, Redis meter, response
 * signing, publishing to the Redis stream), same backend, same topology, same run. Ratio: b ÷ a.
 * The crypto ceiling (verify pool + response signing, ops/s) is measured in the same run.
 *
 * Topology (identical for a and b): the load client runs in this process; the proxy under test
 * (bare or full relayer) runs in a child process; the demo JSON-RPC backend (eth_chainId) runs in
 * another child process. All share the machine's cores; the full relayer also holds the localnet
 * chain simulator in its process (queried only on cache misses) and talks to the local Redis.
 *
 * Env: RELAYER_BENCH_CONCURRENCY (closed loop, default 64), RELAYER_BENCH_MS (measured time per
 * closed-loop run, default 10000), RELAYER_BENCH_OPEN_MS (measured time per open-loop run, default
 * 30000: long enough that the relayer's full garbage collections, rare at 1,000 relays/s (0–2 per
 * 30 s), are counted in p99 at their real rate), RELAYER_BENCH_WARMUP_MS (default 2000),
 * RELAYER_BENCH_OPEN_RPS (open-loop rate, default 1000), RELAYER_BENCH_REQUESTS (distinct pre-signed relays, default 2000),
 * RELAYER_BENCH_VERIFY_THREADS (relayer ring_verify.threads and the ceiling's pool; default one
 * per core, as the relayer's own default ring_verify.threads: 0),
 * RELAYER_BENCH_CRYPTO_MS (per crypto measurement, default 3000), RELAYER_BENCH_CPU_PROF (a
 * directory: CPU profiles of the proxy's main thread during the measured part of each run are
 * written there; summarize with bench/relayer/profile-summary.ts),
 * REDIS_URL (default redis://127.0.0.1:6379).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { request } from 'undici';
import { createRedisClient, deleteKeysWithPrefix } from '../../transport/index.js';
import { envNumber, type BenchReporter } from '../report.js';
import {
  startChild,
  usageBetween,
  type BenchChild,
  type ChildMessage,
  type ProcessUsage,
} from './child-process.js';
import { signerOpsPerSecond, verifyPoolOpsPerSecond } from './crypto-ceiling.js';
import { RELAYER_NODE_FLAGS, RELAYER_NODE_OPTIONS } from './node-options.js';
import { closedLoop, openLoop, type ClosedLoopResult, type LoadTarget, type OpenLoopResult } from './load.js';
import {
  checkRelayAnswer,
  jsonRpcBody,
  sessionHeaderFromWire,
  signRelayRequests,
  type WireSessionHeader,
} from './relay-requests.js';

const BENCH = 'relayer';
/** Issue goals on a 2-core machine. */
const TARGET_FULL_RPS = 2_000;
const TARGET_OPEN_P99_MS = 10;
/** Upstream Go relayer, published numbers (local Docker). */
const UPSTREAM_GO = { rps: 1_182, p50_ms: 1.33, p99_ms: 26 };

interface BackendReady extends ChildMessage {
  url: string;
}
interface ProxyReady extends ChildMessage {
  port: number;
}
interface RelayerReady extends ProxyReady {
  header: WireSessionHeader;
  verify_threads: number;
  app_stake_upokt: string;
}

/** Runs `fn` and reports the CPU use of the proxy under test and of the backend meanwhile. */
async function withUsage<T extends { sent: number }>(
  proxy: BenchChild<ChildMessage>,
  backend: BenchChild<ChildMessage>,
  redis: Redis,
  fn: () => Promise<T>,
): Promise<{ result: T; usage: Record<string, number> }> {
  const ask = (c: BenchChild<ChildMessage>): Promise<ProcessUsage & ChildMessage> =>
    c.ask<ProcessUsage & ChildMessage>({ type: 'usage' }, 'usage');
  const redisCpuSeconds = async (): Promise<number> => {
    const info = await redis.info('cpu');
    const field = (k: string): number => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)?.[1] ?? 0);
    return field('used_cpu_sys') + field('used_cpu_user');
  };
  const [p0, b0, r0, c0, t0] = [
    await ask(proxy),
    await ask(backend),
    await redisCpuSeconds(),
    process.cpuUsage(),
    performance.now(),
  ];
  const result = await fn();
  const [p1, b1, r1, c1, t1] = [
    await ask(proxy),
    await ask(backend),
    await redisCpuSeconds(),
    process.cpuUsage(c0),
    performance.now(),
  ];
  const p = usageBetween(p0, p1);
  const b = usageBetween(b0, b1);
  const wallMs = t1 - t0;
  return {
    result,
    usage: {
      proxy_cpu_pct: p.cpu_pct,
      proxy_main_thread_busy: p.main_thread_busy,
      proxy_loop_delay_p99_ms: p1.loop_delay_p99_ms,
      proxy_loop_delay_max_ms: p1.loop_delay_max_ms,
      proxy_gc_major: p1.gc_major,
      proxy_gc_major_max_pause_ms: p1.gc_major_max_pause_ms,
      proxy_gc_minor: p1.gc_minor,
      proxy_gc_minor_max_pause_ms: p1.gc_minor_max_pause_ms,
      proxy_gc_pause_ms_per_s: (p1.gc_pause_total_ms * 1000) / wallMs,
      proxy_cpu_us_per_request: (p1.cpu_us - p0.cpu_us) / result.sent,
      ...(p0.main_cpu_us !== undefined && p1.main_cpu_us !== undefined
        ? { proxy_main_thread_cpu_us_per_request: (p1.main_cpu_us - p0.main_cpu_us) / result.sent }
        : {}),
      backend_cpu_pct: b.cpu_pct,
      redis_cpu_pct: ((r1 - r0) * 1000 * 100) / wallMs,
      ...(typeof p1['verify_batches'] === 'number' && typeof p0['verify_batches'] === 'number'
        ? {
            verify_batches: p1['verify_batches'] - p0['verify_batches'],
            verify_mean_batch:
              (Number(p1['verify_items']) - Number(p0['verify_items'])) /
              Math.max(1, p1['verify_batches'] - p0['verify_batches']),
          }
        : {}),
      client_cpu_pct: ((c1.user + c1.system) / 1000 / wallMs) * 100,
    },
  };
}

function latency(r: ClosedLoopResult | OpenLoopResult): Record<string, unknown> {
  return {
    p50_ms: r.p50_ms,
    p90_ms: r.p90_ms,
    p99_ms: r.p99_ms,
    max_ms: r.max_ms,
    mean_ms: r.mean_ms,
    requests: r.requests,
    errors: r.errors,
    ...(r.errors > 0 ? { error_kinds: r.error_kinds } : {}),
    ok_per_second: r.ok_per_second,
  };
}

export default async function relayerBench(reporter: BenchReporter): Promise<void> {
  const concurrency = envNumber('RELAYER_BENCH_CONCURRENCY', 64);
  const durationMs = envNumber('RELAYER_BENCH_MS', 10_000);
  const warmupMs = envNumber('RELAYER_BENCH_WARMUP_MS', 2_000);
  const openRps = envNumber('RELAYER_BENCH_OPEN_RPS', 1_000);
  const openMs = envNumber('RELAYER_BENCH_OPEN_MS', 30_000);
  const requestCount = envNumber('RELAYER_BENCH_REQUESTS', 2_000);
  const verifyThreads = envNumber('RELAYER_BENCH_VERIFY_THREADS', availableParallelism());
  const cryptoMs = envNumber('RELAYER_BENCH_CRYPTO_MS', 3_000);
  const profileDir = process.env['RELAYER_BENCH_CPU_PROF'];
  const redisUrl = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  if (profileDir !== undefined && profileDir !== '') mkdirSync(profileDir, { recursive: true });
  const prefix = `bench:relayer:${randomBytes(6).toString('hex')}:`;

  const redis = await createRedisClient({ url: redisUrl, connection_name: 'relayer-bench' });
  redis.on('error', () => undefined);
  const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
  const children: BenchChild<ChildMessage>[] = [];
  const onSignal = (): void => {
    void Promise.allSettled(children.map((c) => c.stop(5_000)))
      .then(() => deleteKeysWithPrefix(redis, prefix))
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const backend = await startChild<BackendReady>('backend', './backend-child.ts');
    children.push(backend);
    // Both proxies run with the V8 heap flags of the relayer Deployment (k8s/base), as in production.
    const bare = await startChild<ProxyReady>('bare-proxy', './bare-proxy-child.ts', {
      env: { BENCH_BACKEND_URL: backend.ready.url, NODE_OPTIONS: RELAYER_NODE_OPTIONS },
      nodeFlags: RELAYER_NODE_FLAGS,
    });
    children.push(bare);
    const relayer = await startChild<RelayerReady>('relayer', './relayer-child.ts', {
      env: {
        NODE_OPTIONS: RELAYER_NODE_OPTIONS,
        BENCH_BACKEND_URL: backend.ready.url,
        BENCH_REDIS_URL: redisUrl,
        BENCH_REDIS_PREFIX: prefix,
        BENCH_VERIFY_THREADS: String(verifyThreads),
      },
      nodeFlags: RELAYER_NODE_FLAGS,
      readyTimeoutMs: 120_000,
    });
    children.push(relayer);
    const header = sessionHeaderFromWire(relayer.ready.header);
    const signStart = performance.now();
    const signed = signRelayRequests(header, requestCount);
    const presignMs = performance.now() - signStart;
    const fullOrigin = `http://127.0.0.1:${relayer.ready.port}`;
    const fullHeaders = { 'content-type': 'application/octet-stream', 'rpc-type': '3' };
    // One relay end to end before measuring: 200, supplier signature, the backend's answer inside.
    const probe = await request(`${fullOrigin}/`, { method: 'POST', body: signed[0]!, headers: fullHeaders });
    checkRelayAnswer(probe.statusCode, new Uint8Array(await probe.body.arrayBuffer()), header);

    const topology =
      'load client (undici Pool, keep-alive) in the bench process → proxy under test in child process 1 ' +
      '(a: bare uWS+undici; b: full relayer, + chain simulator, + Redis) → demo JSON-RPC backend ' +
      '(node:http, eth_chainId) in child process 2; all on the same cores';
    reporter.emit({
      bench: BENCH,
      name: 'setup',
      topology,
      redis_version: redisVersion,
      load_avg_1m_before: loadavg()[0],
      verify_threads: verifyThreads,
      presigned_requests: signed.length,
      presign_ms: presignMs,
      app_stake_upokt: relayer.ready.app_stake_upokt,
      validation_mode: 'eager',
    });

    const bareTarget: LoadTarget = {
      origin: `http://127.0.0.1:${bare.ready.port}`,
      bodies: Array.from({ length: requestCount }, (_, i) => jsonRpcBody(i)),
      headers: { 'content-type': 'application/json' },
    };
    const fullTarget: LoadTarget = {
      origin: fullOrigin,
      bodies: signed,
      headers: fullHeaders,
    };

    // Crypto ceiling first, while the children are idle.
    const verify = await verifyPoolOpsPerSecond({
      threads: verifyThreads,
      durationMs: cryptoMs,
      warmupMs: 1_000,
    });
    const verifyUnbatched = await verifyPoolOpsPerSecond({
      threads: verifyThreads,
      durationMs: cryptoMs,
      warmupMs: 1_000,
      maxBatch: 1,
    });
    const signOps = await signerOpsPerSecond({ durationMs: cryptoMs, warmupMs: 500 });
    const ceiling = 1 / (1 / verify.ops_per_second + 1 / signOps);

    /** Runs `fn`; with RELAYER_BENCH_CPU_PROF, profiles the child's main thread after the warm-up. */
    const profileFiles: string[] = [];
    const profiled = async <T>(
      child: BenchChild<ChildMessage>,
      name: string,
      afterMs: number,
      fn: () => Promise<T>,
    ): Promise<T> => {
      if (profileDir === undefined || profileDir === '') return fn();
      const started = new Promise((r) => setTimeout(r, afterMs)).then(() =>
        child.ask({ type: 'profile-start' }, 'profile-started'),
      );
      const out = await fn();
      await started;
      const file = join(profileDir, `${child.name}-${name}-${Date.now()}.cpuprofile`);
      await child.ask({ type: 'profile-stop', file }, 'profile-stopped');
      profileFiles.push(file);
      return out;
    };
    const measured = <T extends { sent: number }>(
      child: BenchChild<ChildMessage>,
      name: string,
      warmup: number,
      load: () => Promise<T>,
    ): Promise<{ result: T; usage: Record<string, number> }> =>
      profiled(child, name, warmup, () => withUsage(child, backend, redis, load));

    const closed = { concurrency, warmupMs, durationMs };
    const { result: a, usage: aUsage } = await measured(bare, 'bare_passthrough_closed', warmupMs, () =>
      closedLoop(bareTarget, closed),
    );
    reporter.emit({
      bench: BENCH,
      name: 'bare_passthrough_closed',
      rps: a.rps,
      concurrency,
      duration_s: a.duration_s,
      ...latency(a),
      ...aUsage,
    });
    const { result: b, usage: bUsage } = await measured(relayer, 'full_validation_closed', warmupMs, () =>
      closedLoop(fullTarget, closed),
    );
    reporter.emit({
      bench: BENCH,
      name: 'full_validation_closed',
      ratio: b.rps / a.rps,
      baseline: 'bare_passthrough_closed',
      rps: b.rps,
      concurrency,
      duration_s: b.duration_s,
      ...latency(b),
      ...bUsage,
      cpu_per_request_over_bare: bUsage['proxy_cpu_us_per_request']! / aUsage['proxy_cpu_us_per_request']!,
      target_rps: TARGET_FULL_RPS,
      meets_target: b.rps >= TARGET_FULL_RPS && b.errors === 0,
      upstream_go_rps: UPSTREAM_GO.rps,
      over_upstream_go: b.rps / UPSTREAM_GO.rps,
    });

    const open = {
      rps: openRps,
      warmupMs: Math.min(warmupMs, 1_000),
      durationMs: openMs,
      connections: concurrency,
    };
    const { result: ao, usage: aoUsage } = await measured(
      bare,
      `bare_passthrough_open_${openRps}rps`,
      open.warmupMs,
      () => openLoop(bareTarget, open),
    );
    reporter.emit({
      bench: BENCH,
      name: `bare_passthrough_open_${openRps}rps`,
      target_rps: ao.target_rps,
      achieved_rps: ao.achieved_rps,
      duration_s: ao.duration_s,
      ...latency(ao),
      ...aoUsage,
      unfinished: ao.unfinished,
    });
    const { result: bo, usage: boUsage } = await measured(
      relayer,
      `full_validation_open_${openRps}rps`,
      open.warmupMs,
      () => openLoop(fullTarget, open),
    );
    reporter.emit({
      bench: BENCH,
      name: `full_validation_open_${openRps}rps`,
      ratio: bo.p99_ms / ao.p99_ms,
      baseline: `bare_passthrough_open_${openRps}rps`,
      ratio_of: 'p99_ms',
      target_rps: bo.target_rps,
      achieved_rps: bo.achieved_rps,
      duration_s: bo.duration_s,
      ...latency(bo),
      ...boUsage,
      unfinished: bo.unfinished,
      target_p99_ms: TARGET_OPEN_P99_MS,
      meets_target: bo.p99_ms <= TARGET_OPEN_P99_MS && bo.errors === 0,
      upstream_go_p50_ms: UPSTREAM_GO.p50_ms,
      upstream_go_p99_ms: UPSTREAM_GO.p99_ms,
    });

    reporter.emit({
      bench: BENCH,
      name: 'crypto_ceiling',
      ratio: b.rps / ceiling,
      baseline: 'combined ceiling (full_validation_closed rps ÷ ceiling)',
      verify_pool_ops_per_second: verify.ops_per_second,
      verify_pool_unbatched_ops_per_second: verifyUnbatched.ops_per_second,
      sign_ops_per_second: signOps,
      combined_ops_per_second: ceiling,
      verify_threads: verifyThreads,
      verify_max_batch: verify.max_batch,
      verify_inflight: verify.inflight,
      ring_members: 2,
      backend: 'native',
    });

    const rs = await relayer.ask<ChildMessage>({ type: 'stats' }, 'stats');
    const bs = await bare.ask<ChildMessage>({ type: 'stats' }, 'stats');
    const be = await backend.ask<ChildMessage>({ type: 'stats' }, 'stats');
    reporter.emit({
      bench: BENCH,
      name: 'counters',
      relayer_served: rs['served'],
      relayer_rejected: rs['rejected'],
      relayer_rejected_by_reason: rs['rejected_by_reason'],
      relayer_dropped_by_reason: rs['dropped_by_reason'],
      relayer_published: rs['published'],
      relayer_stream_entries: rs['stream_entries'],
      bare_served: bs['served'],
      bare_failed: bs['failed'],
      backend_requests: be['requests'],
      load_avg_1m_after: loadavg()[0],
      ...(profileFiles.length > 0 ? { cpu_profiles: profileFiles } : {}),
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await Promise.allSettled(children.reverse().map((c) => c.stop()));
    await deleteKeysWithPrefix(redis, prefix).catch(() => undefined);
    await redis.quit().catch(() => redis.disconnect());
  }
}
