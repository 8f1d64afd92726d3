/**
 * Claim build for MINER_BENCH_SUPPLIERS suppliers (1,000), each with one session of
 * MINER_BENCH_CLAIM_RELAYS relays (5) already in its Redis-backed trie (checkpointed, as the relay
 * consumer leaves it) and a snapshot in `claiming`. Jobs run MINER_BENCH_CLAIM_CONCURRENCY (10,
 * the lifecycle's max_concurrent_transitions) at a time, one group per supplier, as the lifecycle
 * starts them when the claim window opens.
 *
 * Rows:
 *   seal         RedisSessionTrees.seal (commit + flush + checkpoint + root/stats in one MULTI) on
 *                tries this process already holds: the trie part of every claim. The baseline.
 *   claimer      Claimer.runClaimGroup per supplier: seal, CUPR and profitability checks, header,
 *                MsgCreateClaim, the broadcast (answered in-process, accepted at once: no node, no
 *                signing), rebroadcast record, claiming → claimed, ledger. Ratio ÷ seal.
 *   cold_seal    a new owner after failover: a fresh RedisSessionTrees opens each trie from its
 *                live_root (MGET + HGET of the root node), then seals. Ratio ÷ seal.
 * Each row gets its own freshly built tries, so every seal really seals. Keys live under
 * `bench:<random>:` and are deleted after each row.
 *
 * Env: MINER_BENCH_SUPPLIERS (1000), MINER_BENCH_CLAIM_RELAYS (5), MINER_BENCH_CLAIM_CONCURRENCY
 * (10), REDIS_URL.
 */
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { BroadcastResult } from '../../chain/index.js';
import {
  Claimer,
  MinerLedger,
  RebroadcastStore,
  RedisSessionTrees,
  SessionStore,
  StaticFeeEstimator,
  createMinerLifecycleMetrics,
  sessionParamsFromPb,
  type MinerChain,
  type MinerLifecycleMetrics,
  type SessionSnapshot,
} from '../../miner/index.js';
import { pb, sessionWindows } from '../../protocol/index.js';
import { KeyBuilder, createRedisClient, deleteKeysWithPrefix } from '../../transport/index.js';
import { redisUrl } from '../../test/helpers/redis.js';
import { envNumber, type BenchReporter } from '../report.js';
import {
  APPLICATION,
  COMPUTE_UNITS_PER_RELAY,
  SERVICE_ID,
  SESSION_END_HEIGHT,
  SESSION_START_HEIGHT,
  buildRelay,
  forEachLimit,
  sessionId,
  supplierAddress,
} from './workload.js';

const BENCH = 'miner';
const TRIE_CONFIG = { live_root_checkpoint_interval: 10, cache_ttl_seconds: 7_200 };
const SESSION_TTL_SECONDS = 7_200;
const SETUP_CONCURRENCY = 50;
const log = pino({ level: 'silent' });

/** Session params whose sessions are 10 blocks long, so 91…100 is one session. */
const SHARED = pb.sharedParams.Params.fromPartial({
  numBlocksPerSession: 10n,
  gracePeriodEndOffsetBlocks: 1n,
  claimWindowOpenOffsetBlocks: 1n,
  claimWindowCloseOffsetBlocks: 4n,
  proofWindowOpenOffsetBlocks: 0n,
  proofWindowCloseOffsetBlocks: 4n,
  computeUnitsToTokensMultiplier: 42_000_000n,
  computeUnitCostGranularity: 1_000_000n,
});
const WINDOWS = sessionWindows(sessionParamsFromPb(SHARED), SESSION_END_HEIGHT);
/** A height inside the claim window with room to spare. */
const CLAIM_HEIGHT = WINDOWS.claim_window_open_height;

interface Fixture {
  prefix: string;
  keys: KeyBuilder;
  store: SessionStore;
  /** One RedisSessionTrees per supplier, as the miner holds them. */
  trees: RedisSessionTrees[];
  snapshots: SessionSnapshot[];
}

/** Suppliers with one checkpointed session trie each and a snapshot in `claiming`. */
async function buildFixture(redis: Redis, suppliers: number, relaysEach: number): Promise<Fixture> {
  const prefix = `bench:${randomBytes(6).toString('hex')}:`;
  const keys = new KeyBuilder({ namespace: { base_prefix: `${prefix}ha` } });
  const store = new SessionStore({ redis, keys, log }, { ttl_seconds: SESSION_TTL_SECONDS });
  const trees: RedisSessionTrees[] = [];
  const snapshots: SessionSnapshot[] = [];
  const addresses = Array.from({ length: suppliers }, (_, i) => supplierAddress(i));
  await forEachLimit(addresses, SETUP_CONCURRENCY, async (supplier, i) => {
    const sid = sessionId();
    const t = new RedisSessionTrees({ redis, keys }, TRIE_CONFIG);
    trees[i] = t;
    const { trie, store: nodes } = await t.trie(supplier, sid);
    for (let n = 0; n < relaysEach; n++) {
      const r = buildRelay(supplier, sid, n);
      await trie.update(r.hash, r.bytes, COMPUTE_UNITS_PER_RELAY);
    }
    await trie.commit();
    await nodes.checkpoint();
    await store.ensure({
      session_id: sid,
      supplier_operator_address: supplier,
      service_id: SERVICE_ID,
      application_address: APPLICATION,
      session_start_height: SESSION_START_HEIGHT,
      session_end_height: SESSION_END_HEIGHT,
    });
    await store.addRelays(supplier, sid, relaysEach, BigInt(relaysEach) * COMPUTE_UNITS_PER_RELAY);
    await store.transition(supplier, sid, ['active'], 'claiming');
    const snap = await store.get(supplier, sid);
    if (snap === undefined) throw new Error('bench: session snapshot missing after setup');
    snapshots[i] = snap;
  });
  return { prefix, keys, store, trees, snapshots };
}

/** Chain answers for a session: CUPR, params, an easy difficulty, the session listing its supplier. */
function chainFor(s: SessionSnapshot): MinerChain {
  const session = pb.sessionTypes.Session.fromPartial({
    header: {
      applicationAddress: s.application_address,
      serviceId: s.service_id,
      sessionId: s.session_id,
      sessionStartBlockHeight: BigInt(s.session_start_height),
      sessionEndBlockHeight: BigInt(s.session_end_height),
    },
    suppliers: [{ operatorAddress: s.supplier_operator_address }],
  });
  return {
    getComputeUnitsPerRelayAtHeight: () => Promise.resolve(COMPUTE_UNITS_PER_RELAY),
    getSharedParamsAtHeight: () => Promise.resolve(SHARED),
    getRelayMiningDifficultyAtHeight: () =>
      Promise.resolve(
        pb.serviceDifficulty.RelayMiningDifficulty.fromPartial({ targetHash: Buffer.alloc(32, 0xff) }),
      ),
    getProofParams: () => Promise.resolve(pb.proofParams.Params.fromPartial({})),
    getSession: () => Promise.resolve(session),
  } as unknown as MinerChain;
}

function claimerFor(
  redis: Redis,
  f: Fixture,
  i: number,
  metrics: MinerLifecycleMetrics,
  broadcasts: { n: number },
): Claimer {
  const chain = chainFor(f.snapshots[i]!);
  return new Claimer(
    {
      store: f.store,
      chain,
      tx: {
        createClaims: (): Promise<BroadcastResult> => {
          broadcasts.n++;
          return Promise.resolve({
            ok: true,
            txHash: broadcasts.n.toString(16).padStart(64, '0'),
            gasLimit: 100_000n,
            feeAmount: 10n,
            sequence: 0n,
          });
        },
      },
      trees: f.trees[i]!,
      rebroadcast: new RebroadcastStore({ redis, keys: f.keys }),
      ledger: new MinerLedger({ redis, keys: f.keys, metrics }),
      fees: new StaticFeeEstimator({ chain }),
      currentHeight: () => CLAIM_HEIGHT,
      log,
      metrics,
    },
    {},
  );
}

export default async function minerClaimBench(reporter: BenchReporter): Promise<void> {
  const suppliers = envNumber('MINER_BENCH_SUPPLIERS', 1_000);
  const relaysEach = envNumber('MINER_BENCH_CLAIM_RELAYS', 5);
  const concurrency = envNumber('MINER_BENCH_CLAIM_CONCURRENCY', 10);
  const redis = await createRedisClient({ url: redisUrl(), connection_name: 'bench-miner-claim' });
  const prefixes: string[] = [];
  try {
    // seal: tries already held in memory.
    let f = await buildFixture(redis, suppliers, relaysEach);
    prefixes.push(f.prefix);
    let start = performance.now();
    await forEachLimit(f.snapshots, concurrency, async (s, i) => {
      await f.trees[i]!.seal(s.supplier_operator_address, s.session_id);
    });
    const sealMs = performance.now() - start;
    await deleteKeysWithPrefix(redis, f.prefix);
    reporter.emit({
      bench: BENCH,
      name: `claim_${suppliers}_suppliers_seal`,
      total_ms: sealMs,
      per_supplier_ms: sealMs / suppliers,
      suppliers,
      relays_per_session: relaysEach,
      concurrency,
      load_avg_1m: loadavg()[0],
    });

    // claimer: the claim job per supplier with an in-process broadcast.
    f = await buildFixture(redis, suppliers, relaysEach);
    prefixes.push(f.prefix);
    const broadcasts = { n: 0 };
    const metrics = createMinerLifecycleMetrics(new Registry());
    const claimers = f.snapshots.map((_, i) => claimerFor(redis, f, i, metrics, broadcasts));
    start = performance.now();
    await forEachLimit(f.snapshots, concurrency, async (s, i) => {
      const undecided = await claimers[i]!.runClaimGroup({
        supplier: s.supplier_operator_address,
        sessionEndHeight: s.session_end_height,
        sessions: [s],
        windows: WINDOWS,
        height: CLAIM_HEIGHT,
      });
      if (undecided.length > 0) throw new Error(`bench: claim of ${s.session_id} left undecided`);
    });
    const claimMs = performance.now() - start;
    const claimed = (
      await Promise.all(f.snapshots.map((s) => f.store.get(s.supplier_operator_address, s.session_id)))
    ).filter((s) => s?.state === 'claimed').length;
    if (claimed !== suppliers || broadcasts.n !== suppliers) {
      throw new Error(
        `bench: ${claimed} sessions claimed, ${broadcasts.n} broadcasts, expected ${suppliers}`,
      );
    }
    await deleteKeysWithPrefix(redis, f.prefix);
    reporter.emit({
      bench: BENCH,
      name: `claim_${suppliers}_suppliers_claimer`,
      ratio: claimMs / sealMs,
      baseline: `claim_${suppliers}_suppliers_seal (time ÷ time)`,
      total_ms: claimMs,
      per_supplier_ms: claimMs / suppliers,
      suppliers,
      relays_per_session: relaysEach,
      concurrency,
      broadcast: 'in-process, accepted at once',
      load_avg_1m: loadavg()[0],
    });

    // cold_seal: a new owner opens each trie from live_root, then seals.
    f = await buildFixture(redis, suppliers, relaysEach);
    prefixes.push(f.prefix);
    const fresh = f.snapshots.map(() => new RedisSessionTrees({ redis, keys: f.keys }, TRIE_CONFIG));
    start = performance.now();
    await forEachLimit(f.snapshots, concurrency, async (s, i) => {
      await fresh[i]!.seal(s.supplier_operator_address, s.session_id);
    });
    const coldMs = performance.now() - start;
    await deleteKeysWithPrefix(redis, f.prefix);
    reporter.emit({
      bench: BENCH,
      name: `claim_${suppliers}_suppliers_cold_seal`,
      ratio: coldMs / sealMs,
      baseline: `claim_${suppliers}_suppliers_seal (time ÷ time)`,
      total_ms: coldMs,
      per_supplier_ms: coldMs / suppliers,
      suppliers,
      relays_per_session: relaysEach,
      concurrency,
      load_avg_1m: loadavg()[0],
    });
  } finally {
    for (const p of prefixes) await deleteKeysWithPrefix(redis, p);
    await redis.quit();
  }
}
