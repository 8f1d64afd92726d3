/**
 * Child of the miner RSS bench (a process of its own, so nothing else the bench did sits in its
 * heap). On `measure { prefix, suppliers, relays_per_session }` (the streams under `prefix` already
 * hold one live session's relays per supplier): takes the baseline after GC, then starts one SupplierRelayConsumer per supplier exactly as the miner
 * wires a held supplier (its own RedisSessionTrees, a blocking connection of its own, the shared
 * SessionStore), waits until every relay is in its trie, and measures again after GC.
 */
import pino from 'pino';
import { Registry } from 'prom-client';
import {
  RedisSessionTrees,
  SessionStore,
  SupplierRelayConsumer,
  type RelayBatchResult,
} from '../../miner/index.js';
import { KeyBuilder, createRedisClient, deleteKeysWithPrefix } from '../../transport/index.js';
import { redisUrl } from '../../test/helpers/redis.js';
import { parentChannel, type ChildMessage } from '../relayer/child-process.js';
import { supplierAddress } from './workload.js';

const TRIE_CONFIG = { live_root_checkpoint_interval: 10, cache_ttl_seconds: 7_200 };
const log = pino({ level: 'silent' });

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

async function settledMemory(): Promise<Memory> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

const MIB = 2 ** 20;

const parent = parentChannel();
parent.on('measure', async (msg) => {
  const suppliers = Number(msg['suppliers']);
  const relaysEach = Number(msg['relays_per_session']);
  const redis = await createRedisClient({ url: redisUrl(), connection_name: 'bench-miner-rss' });
  const prefix = String(msg['prefix']);
  const keys = new KeyBuilder({ namespace: { base_prefix: `${prefix}ha` } });
  const addresses = Array.from({ length: suppliers }, (_, i) => supplierAddress(i));
  const consumers: SupplierRelayConsumer[] = [];
  let result: ChildMessage | undefined;
  try {
    const gcExposed = typeof (globalThis as { gc?: unknown }).gc === 'function';
    const before = await settledMemory();

    const sessions = new SessionStore({ redis, keys, log }, { ttl_seconds: 7_200 });
    const registry = new Registry();
    const total = suppliers * relaysEach;
    let inserted = 0;
    let finish: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const onBatch = (b: RelayBatchResult): void => {
      for (const s of b.sessions) inserted += s.inserted;
      if (inserted >= total) finish();
    };
    const start = performance.now();
    for (const supplier of addresses) {
      const trees = new RedisSessionTrees({ redis, keys }, TRIE_CONFIG);
      const consumer = new SupplierRelayConsumer(
        { redis, keys, log, sessions, trie: (sid) => trees.trie(supplier, sid), registry, onBatch },
        { supplier, consumer_name: 'bench-miner' },
      );
      consumers.push(consumer);
      await consumer.start();
    }
    await done;
    const drainedMs = performance.now() - start;
    const after = await settledMemory();
    result = {
      type: 'result',
      gc_exposed: gcExposed,
      start_and_drain_ms: drainedMs,
      inserted,
      before_rss_mib: before.rss / MIB,
      rss_mib: after.rss / MIB,
      rss_delta_mib: (after.rss - before.rss) / MIB,
      heap_used_mib: after.heapUsed / MIB,
      heap_used_delta_mib: (after.heapUsed - before.heapUsed) / MIB,
      external_delta_mib: (after.external - before.external) / MIB,
      rss_delta_per_supplier_kib: (after.rss - before.rss) / 1024 / suppliers,
      heap_delta_per_supplier_kib: (after.heapUsed - before.heapUsed) / 1024 / suppliers,
    };
  } finally {
    await Promise.all(consumers.map((c) => c.stop()));
    await deleteKeysWithPrefix(redis, prefix);
    await redis.quit();
  }
  if (result === undefined) throw new Error('bench: no measurement taken');
  await parent.send(result);
});
parent.onDisconnect(() => process.exit(0));
parent.on('stop', () => process.exit(0));
void parent.send({ type: 'ready' });
