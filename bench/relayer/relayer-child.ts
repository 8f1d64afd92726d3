/**
 * Child entry: the full relayer (cmd/relayer.ts startRelayer) for the relayer bench, with what it
 * needs around it in this same process: the localnet chain simulator (queried only on cache
 * misses), the supplier registry entry the miner would write, and the block event the leader
 * would publish. Real Redis under the key prefix the bench process chose.
 *
 * Every service runs eager validation: ring signature (verify pool), session, meter (Lua in
 * Redis) and response signing are on the hot path, and mined relays are published to the
 * supplier's Redis stream. The application stake is large enough that the meter never refuses.
 *
 * Env: BENCH_BACKEND_URL, BENCH_REDIS_URL, BENCH_REDIS_PREFIX (all required),
 * BENCH_VERIFY_THREADS (ring_verify.threads, 0 = one per core).
 * Ready message: `{ port, header (the session to sign relays for), verify_threads, app_stake_upokt }`.
 * Requests: `usage` (CPU time and event-loop use so far), `stats` (counters, stream length),
 * `profile-start` / `profile-stop { file }` (main-thread CPU profile written to `file`).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import {
  BlockEventPublisher,
  SupplierStateCache,
  createCacheMetrics,
  type SupplierState,
} from '../../cache/index.js';
import { startRelayer, type RunningRelayer } from '../../cmd/relayer.js';
import { bytesToHex } from '../../core/index.js';
import { validateRelayerConfig, type RelayerConfigInput } from '../../relayer/index.js';
import { RingVerifyPool } from '../../rings/index.js';
import { KeyBuilder, PubSub, createRedisClient, deleteKeysWithPrefix } from '../../transport/index.js';
import {
  APP,
  SUPPLIER,
  startChainWithClient,
  testGenesis,
  type ChainWithClient,
} from '../../test/e2e/localnet-fixtures.js';
import { answerProfileRequests, parentChannel, processUsage } from './child-process.js';

/** Large enough that no bench run exhausts the per-session budget (relay-meter.ts maxStakeUpokt). */
const BENCH_APP_STAKE_UPOKT = 10n ** 15n;
const BENCH_SERVICE = 'anvil';

function required(name: string): string {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`${name} is required`);
  return v;
}

const backendUrl = required('BENCH_BACKEND_URL');
const redisUrl = required('BENCH_REDIS_URL');
const prefix = required('BENCH_REDIS_PREFIX');
const verifyThreads = Number(process.env['BENCH_VERIFY_THREADS'] ?? 0);

const parent = parentChannel();
const log = pino({ level: 'error' }, pino.destination(2));
const cleanups: (() => Promise<unknown>)[] = [];
let stopping: Promise<void> | undefined;
const cleanup = (): Promise<void> => {
  stopping ??= (async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  })();
  return stopping;
};
parent.onDisconnect(() => void cleanup().then(() => process.exit(0)));
parent.on('stop', async () => {
  await cleanup();
  process.exit(0);
});

try {
  const genesis = testGenesis();
  genesis.applications[0]!.stake_upokt = BENCH_APP_STAKE_UPOKT;
  const chain: ChainWithClient = await startChainWithClient(genesis, 5);
  cleanups.push(() => chain.stop());

  const redis = await createRedisClient({ url: redisUrl, connection_name: 'relayer-bench' });
  redis.on('error', () => undefined);
  cleanups.push(async () => {
    await deleteKeysWithPrefix(redis, prefix);
    await redis.quit();
  });
  const dir = mkdtempSync(join(tmpdir(), 'relayer-bench-'));
  cleanups.push(() => Promise.resolve(rmSync(dir, { recursive: true, force: true })));
  const keysFile = join(dir, 'keys.yaml');
  writeFileSync(keysFile, `keys:\n  - ${bytesToHex(SUPPLIER.privateKey)}\n`, { mode: 0o600 });

  const input: RelayerConfigInput = {
    listen_addr: '127.0.0.1:0',
    redis: { url: redisUrl, namespace: { base_prefix: `${prefix}ha` } },
    pocket_node: { query_node_rpc_url: chain.net.url, query_node_grpc_url: chain.net.url },
    keys: { keys_file: keysFile },
    services: {
      [BENCH_SERVICE]: {
        validation_mode: 'eager',
        default_backend: 'jsonrpc',
        backends: { jsonrpc: { url: backendUrl } },
      },
    },
    metrics: { enabled: false },
    pprof: { enabled: false },
    health_check: { enabled: false },
    grpc: { enabled: false },
    websocket: { enabled: false },
    relay_meter: { redis_key_prefix: `${prefix}ha`, fail_behavior: 'closed' },
    ring_verify: { threads: verifyThreads, backend: 'native' },
    shutdown: { drain_timeout_seconds: 5 },
    logging: { level: 'error' },
  };
  const config = validateRelayerConfig(JSON.stringify(input), 'relayer-bench');
  const keys = new KeyBuilder({ namespace: config.redis.namespace });

  const state: SupplierState = {
    status: 'active',
    staked: true,
    services: [BENCH_SERVICE],
    unstake_session_end_height: 0,
    operator_address: SUPPLIER.address,
    owner_address: genesis.suppliers[0]!.owner_address,
    last_updated: Math.floor(Date.now() / 1000),
  };
  await new SupplierStateCache({ redis, keys, log, metrics: createCacheMetrics(new Registry()) }).put(state);

  // Batch sizes reaching the verify workers (bench instrumentation; the pool packs verifications
  // made in the same event-loop turn into one task).
  const batchStats = { batches: 0, items: 0 };
  const proto = RingVerifyPool.prototype as unknown as { runBatch: (batch: unknown[]) => void };
  const runBatch = proto.runBatch;
  proto.runBatch = function (this: unknown, batch: unknown[]): void {
    batchStats.batches++;
    batchStats.items += batch.length;
    runBatch.call(this, batch);
  };

  const registry = new Registry();
  const relayer: RunningRelayer = await startRelayer(config, { log, registry });
  cleanups.push(() => relayer.stop());

  const subscriber = redis.duplicate();
  subscriber.on('error', () => undefined);
  const pubsub = new PubSub({ publisher: redis, subscriber, log });
  cleanups.push(() => pubsub.close());
  const height = chain.net.chain.height;
  await new BlockEventPublisher({ pubsub, keys }).publish({
    height,
    hash: new Uint8Array(32).fill(height % 256),
  });
  const deadline = Date.now() + 10_000;
  while (relayer.core.heights.currentHeight < height) {
    if (Date.now() > deadline) throw new Error(`relayer did not see block ${height}`);
    await new Promise((r) => setTimeout(r, 5));
  }

  const session = await chain.query.getSession(APP.address, BENCH_SERVICE, height);
  const header = session.header!;
  const counter = async (name: string): Promise<number> => {
    const m = await registry.getSingleMetric(name)?.get();
    return m === undefined ? 0 : m.values.reduce((a, v) => a + v.value, 0);
  };
  answerProfileRequests(parent);
  parent.on('usage', () =>
    parent.send({
      type: 'usage',
      ...processUsage(),
      verify_batches: batchStats.batches,
      verify_items: batchStats.items,
    }),
  );
  const byLabel = async (name: string, label: string): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    for (const v of (await registry.getSingleMetric(name)?.get())?.values ?? []) {
      const k = String(v.labels[label] ?? '');
      out[k] = (out[k] ?? 0) + v.value;
    }
    return out;
  };
  parent.on('stats', async () => {
    await relayer.publisher.flush();
    await parent.send({
      type: 'stats',
      served: await counter('ha_relayer_relays_served_total'),
      rejected: await counter('ha_relayer_relays_rejected_total'),
      rejected_by_reason: await byLabel('ha_relayer_relays_rejected_total', 'reason'),
      dropped_by_reason: await byLabel('ha_relayer_relays_dropped_total', 'reason'),
      published: await counter('ha_relayer_relays_published_total'),
      stream_entries: await redis.xlen(keys.relayStream(SUPPLIER.address)),
    });
  });
  await parent.send({
    type: 'ready',
    port: relayer.relayPort,
    header: {
      application_address: header.applicationAddress,
      service_id: header.serviceId,
      session_id: header.sessionId,
      session_start_block_height: header.sessionStartBlockHeight.toString(),
      session_end_block_height: header.sessionEndBlockHeight.toString(),
    },
    verify_threads: verifyThreads,
    app_stake_upokt: BENCH_APP_STAKE_UPOKT.toString(),
  });
} catch (err) {
  process.stderr.write(
    `relayer bench child: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  await cleanup();
  process.exit(1);
}
