/**
 * SMST updates: in memory and on Redis (real Redis, keys under `bench:<random>:`, deleted after).
 *
 * Each row builds tries of SMST_BENCH_LEAVES relays (random 32-byte keys, SMST_BENCH_VALUE_BYTES
 * values, weight 100). "each" rows commit (and on Redis flush) after every relay, as the Go relay
 * miner does; "batched" rows commit and flush once per SMST_BENCH_BATCH relays, as a consumer
 * that drains a stream read does. Round trips count every request awaited from Redis.
 *
 * Env: SMST_BENCH_LEAVES (20000), SMST_BENCH_SESSIONS (16), SMST_BENCH_BATCH (100),
 * SMST_BENCH_VALUE_BYTES (256), REDIS_URL.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { SmstRedisStore } from '../../miner/index.js';
import { InMemoryMapStore, SparseMerkleSumTrie } from '../../protocol/smst/index.js';
import { KeyBuilder, createRedisClient } from '../../transport/index.js';
import { deleteKeysWithPrefix, redisUrl } from '../../test/helpers/redis.js';
import { envNumber, type BenchReporter } from '../report.js';

const BENCH = 'smst';
const WEIGHT = 100n;

interface Workload {
  keys: Uint8Array[];
  value: Uint8Array;
}

function workload(leaves: number, valueBytes: number): Workload {
  return { keys: Array.from({ length: leaves }, () => randomBytes(32)), value: randomBytes(valueBytes) };
}

async function memoryRun(w: Workload, batch: number): Promise<number> {
  const trie = SparseMerkleSumTrie.create(new InMemoryMapStore());
  const start = performance.now();
  for (let i = 0; i < w.keys.length; i++) {
    await trie.update(w.keys[i]!, w.value, WEIGHT);
    if ((i + 1) % batch === 0 || i === w.keys.length - 1) await trie.commit();
  }
  return (w.keys.length * 1000) / (performance.now() - start);
}

interface RedisRun {
  updatesPerSecond: number;
  roundTripsPerUpdate: number;
  checkpoints: number;
}

async function redisRun(redis: Redis, prefix: string, loads: Workload[], batch: number): Promise<RedisRun> {
  const keys = new KeyBuilder({ namespace: { base_prefix: `${prefix}ha` } });
  const sessions = await Promise.all(
    loads.map((_, s) =>
      SmstRedisStore.open({ redis, keys }, { supplier: 'pokt1benchsupplier', session_id: `session${s}` }),
    ),
  );
  const start = performance.now();
  await Promise.all(
    sessions.map(async ({ trie, store }, s) => {
      const w = loads[s]!;
      for (let i = 0; i < w.keys.length; i++) {
        await trie.update(w.keys[i]!, w.value, WEIGHT);
        if ((i + 1) % batch === 0 || i === w.keys.length - 1) {
          await trie.commit();
          await store.flush();
        }
      }
      await store.checkpoint();
    }),
  );
  const elapsedMs = performance.now() - start;
  const updates = loads.reduce((n, w) => n + w.keys.length, 0);
  const roundTrips = sessions.reduce((n, { store }) => n + store.stats.roundTrips, 0);
  const checkpoints = sessions.reduce((n, { store }) => n + store.stats.checkpoints, 0);
  await deleteKeysWithPrefix(redis, prefix);
  return {
    updatesPerSecond: (updates * 1000) / elapsedMs,
    roundTripsPerUpdate: roundTrips / updates,
    checkpoints,
  };
}

export default async function smstUpdateBench(reporter: BenchReporter): Promise<void> {
  const leaves = envNumber('SMST_BENCH_LEAVES', 20_000);
  const sessions = envNumber('SMST_BENCH_SESSIONS', 16);
  const batch = envNumber('SMST_BENCH_BATCH', 100);
  const valueBytes = envNumber('SMST_BENCH_VALUE_BYTES', 256);
  const one = workload(leaves, valueBytes);

  const memEach = await memoryRun(one, 1);
  reporter.emit({
    bench: BENCH,
    name: 'memory_commit_each',
    updates_per_second: memEach,
    leaves,
    value_bytes: valueBytes,
  });
  const memBatched = await memoryRun(one, batch);
  reporter.emit({
    bench: BENCH,
    name: 'memory_commit_batched',
    ratio: memBatched / memEach,
    baseline: 'memory_commit_each',
    updates_per_second: memBatched,
    batch,
    leaves,
  });

  const redis = await createRedisClient({ url: redisUrl(), connection_name: 'bench-smst' });
  const prefix = `bench:${randomBytes(6).toString('hex')}:`;
  try {
    const each1 = await redisRun(redis, prefix, [one], 1);
    reporter.emit({
      bench: BENCH,
      name: 'redis_1_session_flush_each',
      ratio: each1.updatesPerSecond / memEach,
      baseline: 'memory_commit_each',
      updates_per_second: each1.updatesPerSecond,
      round_trips_per_update: each1.roundTripsPerUpdate,
      leaves,
    });
    const batched1 = await redisRun(redis, prefix, [one], batch);
    reporter.emit({
      bench: BENCH,
      name: 'redis_1_session_batched',
      ratio: batched1.updatesPerSecond / each1.updatesPerSecond,
      baseline: 'redis_1_session_flush_each',
      updates_per_second: batched1.updatesPerSecond,
      round_trips_per_update: batched1.roundTripsPerUpdate,
      batch,
      leaves,
    });
    const many = Array.from({ length: sessions }, () => workload(Math.ceil(leaves / 4), valueBytes));
    const eachN = await redisRun(redis, prefix, many, 1);
    reporter.emit({
      bench: BENCH,
      name: `redis_${sessions}_sessions_flush_each`,
      ratio: eachN.updatesPerSecond / each1.updatesPerSecond,
      baseline: 'redis_1_session_flush_each',
      updates_per_second: eachN.updatesPerSecond,
      round_trips_per_update: eachN.roundTripsPerUpdate,
      sessions,
      leaves_per_session: Math.ceil(leaves / 4),
    });
    const batchedN = await redisRun(redis, prefix, many, batch);
    reporter.emit({
      bench: BENCH,
      name: `redis_${sessions}_sessions_batched`,
      ratio: batchedN.updatesPerSecond / eachN.updatesPerSecond,
      baseline: `redis_${sessions}_sessions_flush_each`,
      updates_per_second: batchedN.updatesPerSecond,
      round_trips_per_update: batchedN.roundTripsPerUpdate,
      sessions,
      batch,
      leaves_per_session: Math.ceil(leaves / 4),
    });
  } finally {
    await deleteKeysWithPrefix(redis, prefix);
    await redis.quit();
  }
}
