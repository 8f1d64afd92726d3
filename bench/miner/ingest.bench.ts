/**
 * Relay ingest: a real SupplierRelayConsumer drains a supplier stream pre-filled with
 * MINER_BENCH_RELAYS mined relays (built and XADDed before timing) into Redis-backed session tries
 * (RedisSessionTrees with the miner's defaults: checkpoint interval 10, 2 h TTL), the session
 * snapshots and the dedup sets, acknowledging and deleting every entry. Timed from start() to the
 * batch that acknowledges the last relay; every relay must come out inserted and the trie root
 * must equal the in-memory root of the same relays, or the bench fails.
 *
 * Rows, for 1 session and for MINER_BENCH_SESSIONS sessions interleaved in one stream, per batch
 * size (XREADGROUP COUNT): relays/s; ratio = ÷ the in-memory SMST (InMemoryMapStore) inserting the
 * same relays with one commit per session per batch. A stream-only row times the consumer's Redis
 * round trips without the work between them (XREADGROUP, then XACK + XDEL + XLEN in one MULTI).
 * The summary row per session count names the best batch size and compares with the goal.
 *
 * Each row is the best of MINER_BENCH_REPEATS runs (in-memory and Redis alternating), which damps
 * other load on the machine; `load_avg_1m` says how much there was.
 *
 * Env: MINER_BENCH_RELAYS (15000), MINER_BENCH_SESSIONS (16), MINER_BENCH_REPEATS (2),
 * MINER_BENCH_BATCHES (500,1000,5000; the consumer default 1000 always runs), REDIS_URL. Keys live
 * under `bench:<random>:` and are deleted after every run.
 */
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { Registry } from 'prom-client';
import {
  DEFAULT_RELAY_CONSUMER_CONFIG,
  RedisSessionTrees,
  SessionStore,
  SupplierRelayConsumer,
  type RelayBatchResult,
} from '../../miner/index.js';
import { InMemoryMapStore, SparseMerkleSumTrie } from '../../protocol/smst/index.js';
import { KeyBuilder, createRedisClient, deleteKeysWithPrefix } from '../../transport/index.js';
import { redisUrl } from '../../test/helpers/redis.js';
import { envNumber, type BenchReporter } from '../report.js';
import {
  COMPUTE_UNITS_PER_RELAY,
  buildRelays,
  publishEntries,
  sessionId,
  supplierAddress,
  type BenchRelay,
} from './workload.js';

const BENCH = 'miner';
/** Issue goal on this 2-core machine. */
const GOAL_RELAYS_PER_SECOND = 10_000;
/** What the miner runs with (miner config defaults). */
const TRIE_CONFIG = { live_root_checkpoint_interval: 10, cache_ttl_seconds: 7_200 };
const SESSION_TTL_SECONDS = 7_200;
const log = pino({ level: 'silent' });

function batchSizes(): number[] {
  const raw = process.env['MINER_BENCH_BATCHES'] ?? '500,1000,5000';
  const list = raw.split(',').map((s) => Number(s.trim()));
  if (list.some((n) => !Number.isSafeInteger(n) || n <= 0)) {
    throw new Error(`MINER_BENCH_BATCHES must be a comma-separated list of positive integers, got "${raw}"`);
  }
  return [...new Set([...list, DEFAULT_RELAY_CONSUMER_CONFIG.batch_size])].sort((a, b) => a - b);
}

/** In-memory baseline: the same relays, same batches, one commit per session per batch. */
async function memoryIngest(
  relays: readonly BenchRelay[],
  batch: number,
): Promise<{ rate: number; roots: Map<string, Uint8Array> }> {
  const tries = new Map<string, SparseMerkleSumTrie>();
  const start = performance.now();
  for (let i = 0; i < relays.length; i += batch) {
    const touched = new Set<SparseMerkleSumTrie>();
    for (const r of relays.slice(i, i + batch)) {
      let t = tries.get(r.sessionId);
      if (t === undefined) {
        t = SparseMerkleSumTrie.create(new InMemoryMapStore());
        tries.set(r.sessionId, t);
      }
      await t.update(r.hash, r.bytes, COMPUTE_UNITS_PER_RELAY);
      touched.add(t);
    }
    for (const t of touched) await t.commit();
  }
  const rate = (relays.length * 1000) / (performance.now() - start);
  const roots = new Map([...tries].map(([sid, t]) => [sid, t.root()]));
  return { rate, roots };
}

interface IngestRun {
  relaysPerSecond: number;
  elapsedMs: number;
  batches: number;
  publishPerSecond: number;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

/** The consumer, for real, over a freshly filled stream under its own prefix. */
async function redisIngest(
  redis: Redis,
  supplier: string,
  relays: readonly BenchRelay[],
  expectedRoots: Map<string, Uint8Array>,
  batch: number,
): Promise<IngestRun> {
  const prefix = `bench:${randomBytes(6).toString('hex')}:`;
  const keys = new KeyBuilder({ namespace: { base_prefix: `${prefix}ha` } });
  const stream = keys.relayStream(supplier);
  try {
    await redis.xgroup('CREATE', stream, keys.consumerGroup(), '0', 'MKSTREAM');
    const pubStart = performance.now();
    await publishEntries(
      redis,
      stream,
      relays.map((r) => r.entry),
    );
    const publishPerSecond = (relays.length * 1000) / (performance.now() - pubStart);

    const trees = new RedisSessionTrees({ redis, keys }, TRIE_CONFIG);
    const sessions = new SessionStore({ redis, keys, log }, { ttl_seconds: SESSION_TTL_SECONDS });
    let acked = 0;
    let inserted = 0;
    let batches = 0;
    let finish: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const onBatch = (b: RelayBatchResult): void => {
      batches++;
      acked += b.acked;
      for (const s of b.sessions) inserted += s.inserted;
      if (acked >= relays.length) finish();
    };
    const consumer = new SupplierRelayConsumer(
      {
        redis,
        keys,
        log,
        sessions,
        trie: (sid) => trees.trie(supplier, sid),
        registry: new Registry(),
        onBatch,
      },
      { supplier, consumer_name: 'bench-miner', batch_size: batch, block_ms: 200 },
    );
    const start = performance.now();
    await consumer.start();
    await done;
    const elapsedMs = performance.now() - start;
    await consumer.stop();

    if (inserted !== relays.length) {
      throw new Error(`bench: ${inserted} of ${relays.length} relays inserted at batch ${batch}`);
    }
    for (const [sid, root] of expectedRoots) {
      const { trie } = await trees.trie(supplier, sid);
      if (!sameBytes(trie.root(), root))
        throw new Error(`bench: session ${sid} root differs from the in-memory trie`);
    }
    return { relaysPerSecond: (relays.length * 1000) / elapsedMs, elapsedMs, batches, publishPerSecond };
  } finally {
    await deleteKeysWithPrefix(redis, prefix);
  }
}

/** The consumer's stream round trips alone: XREADGROUP COUNT batch, then XACK + XDEL + XLEN in one MULTI. */
async function streamOnly(
  redis: Redis,
  supplier: string,
  relays: readonly BenchRelay[],
  batch: number,
): Promise<number> {
  const prefix = `bench:${randomBytes(6).toString('hex')}:`;
  const keys = new KeyBuilder({ namespace: { base_prefix: `${prefix}ha` } });
  const stream = keys.relayStream(supplier);
  const group = keys.consumerGroup();
  try {
    await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
    await publishEntries(
      redis,
      stream,
      relays.map((r) => r.entry),
    );
    let seen = 0;
    const start = performance.now();
    while (seen < relays.length) {
      const reply = (await redis.callBuffer(
        'XREADGROUP',
        'GROUP',
        group,
        'bench-miner',
        'COUNT',
        String(batch),
        'STREAMS',
        stream,
        '>',
      )) as [Buffer, [Buffer, Buffer[]][]][] | null;
      const ids = (reply ?? []).flatMap(([, entries]) => entries.map(([id]) => id.toString('latin1')));
      if (ids.length === 0) throw new Error('bench: stream ran dry before every entry was read');
      const tx = redis.multi();
      tx.xack(stream, group, ...ids);
      tx.xdel(stream, ...ids);
      tx.xlen(stream);
      await tx.exec();
      seen += ids.length;
    }
    return (relays.length * 1000) / (performance.now() - start);
  } finally {
    await deleteKeysWithPrefix(redis, prefix);
  }
}

export default async function minerIngestBench(reporter: BenchReporter): Promise<void> {
  const count = envNumber('MINER_BENCH_RELAYS', 15_000);
  const manySessions = envNumber('MINER_BENCH_SESSIONS', 16);
  const repeats = envNumber('MINER_BENCH_REPEATS', 2);
  const sizes = batchSizes();
  const defaultBatch = DEFAULT_RELAY_CONSUMER_CONFIG.batch_size;
  const supplier = supplierAddress(0);
  const redis = await createRedisClient({ url: redisUrl(), connection_name: 'bench-miner-ingest' });
  try {
    // Warm-up (not reported): the first pass through the trie, codecs and scripts pays for JIT.
    const warm = buildRelays(supplier, [sessionId(), sessionId()], 4_000);
    const warmMem = await memoryIngest(warm, defaultBatch);
    await redisIngest(redis, supplier, warm, warmMem.roots, defaultBatch);
    for (const sessionCount of [1, manySessions]) {
      const relays = buildRelays(
        supplier,
        Array.from({ length: sessionCount }, () => sessionId()),
        count,
      );
      const label = sessionCount === 1 ? '1_session' : `${sessionCount}_sessions`;
      const entryBytes = relays.reduce((n, r) => n + r.entry.length, 0) / relays.length;
      const relayBytes = relays.reduce((n, r) => n + r.bytes.length, 0) / relays.length;
      const rows: { batch: number; rate: number; memRate: number }[] = [];
      for (const batch of sizes) {
        // Best of `repeats` (in-memory and Redis alternating), to damp other load on the machine.
        let mem = await memoryIngest(relays, batch);
        let run = await redisIngest(redis, supplier, relays, mem.roots, batch);
        for (let rep = 1; rep < repeats; rep++) {
          const m = await memoryIngest(relays, batch);
          if (m.rate > mem.rate) mem = m;
          const r = await redisIngest(redis, supplier, relays, mem.roots, batch);
          if (r.relaysPerSecond > run.relaysPerSecond) run = r;
        }
        rows.push({ batch, rate: run.relaysPerSecond, memRate: mem.rate });
        reporter.emit({
          bench: BENCH,
          name: `ingest_${label}_batch_${batch}`,
          ratio: run.relaysPerSecond / mem.rate,
          baseline: `memory_smst_${label}_batch_${batch}`,
          relays_per_second: run.relaysPerSecond,
          memory_relays_per_second: mem.rate,
          elapsed_ms: run.elapsedMs,
          batches: run.batches,
          relays: count,
          sessions: sessionCount,
          batch_size: batch,
          best_of: repeats,
          is_default_batch: batch === defaultBatch,
          relay_bytes: relayBytes,
          stream_entry_bytes: entryBytes,
          xadd_per_second: run.publishPerSecond,
          load_avg_1m: loadavg()[0],
        });
      }
      const streamRate = await streamOnly(redis, supplier, relays, defaultBatch);
      const def = rows.find((r) => r.batch === defaultBatch)!;
      reporter.emit({
        bench: BENCH,
        name: `stream_only_${label}_batch_${defaultBatch}`,
        ratio: def.rate / streamRate,
        baseline: 'ingest at the default batch ÷ XREADGROUP + XACK/XDEL alone',
        relays_per_second: streamRate,
        relays: count,
        batch_size: defaultBatch,
      });
      const best = rows.reduce((a, b) => (b.rate > a.rate ? b : a));
      reporter.emit({
        bench: BENCH,
        name: `ingest_${label}_summary`,
        ratio: best.rate / GOAL_RELAYS_PER_SECOND,
        baseline: `goal ${GOAL_RELAYS_PER_SECOND} relays/s`,
        best_batch_size: best.batch,
        best_relays_per_second: best.rate,
        default_batch_size: defaultBatch,
        default_relays_per_second: def.rate,
        meets_goal_at_default: def.rate >= GOAL_RELAYS_PER_SECOND,
        meets_goal_at_best: best.rate >= GOAL_RELAYS_PER_SECOND,
        load_avg_1m: loadavg()[0],
      });
    }
  } finally {
    await redis.quit();
  }
}
