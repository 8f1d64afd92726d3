/**
 * Closest proofs: ProveClosest → CompactClosestProof → gob bytes, on a trie of
 * SMST_BENCH_PROOF_LEAVES relays (100000), against the same on 1000 relays as the baseline; then
 * the same proof from a trie a new owner re-opens from Redis (nodes loaded lazily, cold cache),
 * and the chain-side verification of the bytes.
 *
 * Env: SMST_BENCH_PROOF_LEAVES (100000), SMST_BENCH_PROOFS (200), SMST_BENCH_VALUE_BYTES (256),
 * REDIS_URL.
 */
import { randomBytes } from 'node:crypto';
import { SmstRedisStore } from '../../miner/index.js';
import { InMemoryMapStore, SparseMerkleSumTrie, checkClosestProofBytes } from '../../protocol/smst/index.js';
import { KeyBuilder, createRedisClient } from '../../transport/index.js';
import { deleteKeysWithPrefix, redisUrl } from '../../test/helpers/redis.js';
import { envNumber, type BenchReporter } from '../report.js';

const BENCH = 'smst';
const WEIGHT = 100n;

async function fill(
  trie: SparseMerkleSumTrie,
  leaves: number,
  valueBytes: number,
  onBatch?: () => Promise<void>,
) {
  const value = randomBytes(valueBytes);
  for (let i = 0; i < leaves; i++) {
    await trie.update(randomBytes(32), value, WEIGHT);
    if ((i + 1) % 1000 === 0 || i === leaves - 1) {
      await trie.commit();
      await onBatch?.();
    }
  }
}

/** Mean milliseconds per proof (build + compact + gob) over `paths`, and the proof sizes. */
async function timeProofs(
  trie: SparseMerkleSumTrie,
  paths: Uint8Array[],
): Promise<{ ms: number; bytes: number[] }> {
  const bytes: number[] = [];
  const start = performance.now();
  for (const p of paths) bytes.push((await trie.proveClosestBytes(p)).length);
  return { ms: (performance.now() - start) / paths.length, bytes };
}

export default async function smstProofBench(reporter: BenchReporter): Promise<void> {
  const leaves = envNumber('SMST_BENCH_PROOF_LEAVES', 100_000);
  const proofs = envNumber('SMST_BENCH_PROOFS', 200);
  const valueBytes = envNumber('SMST_BENCH_VALUE_BYTES', 256);
  const paths = Array.from({ length: proofs }, () => randomBytes(32));

  const small = SparseMerkleSumTrie.create(new InMemoryMapStore());
  await fill(small, 1_000, valueBytes);
  const base = await timeProofs(small, paths);

  const big = SparseMerkleSumTrie.create(new InMemoryMapStore());
  await fill(big, leaves, valueBytes);
  const warm = await timeProofs(big, paths);
  reporter.emit({
    bench: BENCH,
    name: 'closest_proof_memory',
    ratio: warm.ms / base.ms,
    baseline: 'closest_proof_memory_1000_leaves',
    ms_per_proof: warm.ms,
    baseline_ms_per_proof: base.ms,
    proof_bytes_mean: warm.bytes.reduce((a, b) => a + b, 0) / warm.bytes.length,
    leaves,
  });

  const root = big.root();
  const proofBytes = await Promise.all(paths.map((p) => big.proveClosestBytes(p)));
  const verifyStart = performance.now();
  for (let i = 0; i < paths.length; i++) {
    if (!checkClosestProofBytes(proofBytes[i]!, root, paths[i]!).accepted)
      throw new Error('own proof rejected');
  }
  const verifyMs = (performance.now() - verifyStart) / paths.length;
  reporter.emit({
    bench: BENCH,
    name: 'closest_proof_verify',
    ratio: verifyMs / warm.ms,
    baseline: 'closest_proof_memory',
    ms_per_verify: verifyMs,
    leaves,
  });

  const redis = await createRedisClient({ url: redisUrl(), connection_name: 'bench-smst-proof' });
  const prefix = `bench:${randomBytes(6).toString('hex')}:`;
  try {
    const deps = { redis, keys: new KeyBuilder({ namespace: { base_prefix: `${prefix}ha` } }) };
    const cfg = { supplier: 'pokt1benchsupplier', session_id: 'proofsession' };
    const built = await SmstRedisStore.open(deps, cfg);
    await fill(built.trie, leaves, valueBytes, () => built.store.flush());
    await built.store.seal();
    const reopened = await SmstRedisStore.open(deps, cfg);
    const cold = await timeProofs(reopened.trie, paths.slice(0, Math.min(paths.length, 50)));
    reporter.emit({
      bench: BENCH,
      name: 'closest_proof_redis_reopened',
      ratio: cold.ms / warm.ms,
      baseline: 'closest_proof_memory',
      ms_per_proof: cold.ms,
      round_trips_per_proof: reopened.store.stats.roundTrips / cold.bytes.length,
      leaves,
    });
  } finally {
    await deleteKeysWithPrefix(redis, prefix);
    await redis.quit();
  }
}
