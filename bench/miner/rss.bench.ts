/**
 * Memory at MINER_BENCH_SUPPLIERS (1,000) held suppliers, each with one live session of
 * MINER_BENCH_RSS_RELAYS (10) relays, published here beforehand: a child process
 * (`rss-child.ts`, run with --expose-gc) measures RSS and heap after GC before and after starting
 * one relay consumer per supplier as the miner does (its RedisSessionTrees, its own blocking Redis connection, the session trie opened
 * and filled from the stream, the snapshot). The numbers reported are the child's, so neither the
 * rest of this bench's heap nor the relays built for the streams count in them. Keys live under
 * `bench:<random>:` and are deleted afterwards.
 *
 * Env: MINER_BENCH_SUPPLIERS (1000), MINER_BENCH_RSS_RELAYS (10), REDIS_URL.
 */
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { KeyBuilder, createRedisClient, deleteKeysWithPrefix } from '../../transport/index.js';
import { redisUrl } from '../../test/helpers/redis.js';
import { envNumber, type BenchReporter } from '../report.js';
import { startChild, type ChildMessage } from '../relayer/child-process.js';
import { buildRelays, forEachLimit, publishEntries, sessionId, supplierAddress } from './workload.js';

const BENCH = 'miner';

export default async function minerRssBench(reporter: BenchReporter): Promise<void> {
  const suppliers = envNumber('MINER_BENCH_SUPPLIERS', 1_000);
  const relaysEach = envNumber('MINER_BENCH_RSS_RELAYS', 10);
  const redis = await createRedisClient({ url: redisUrl(), connection_name: 'bench-miner-rss-fill' });
  const prefix = `bench:${randomBytes(6).toString('hex')}:`;
  const keys = new KeyBuilder({ namespace: { base_prefix: `${prefix}ha` } });
  try {
    await forEachLimit(
      Array.from({ length: suppliers }, (_, i) => supplierAddress(i)),
      20,
      async (supplier) => {
        const stream = keys.relayStream(supplier);
        await redis.xgroup('CREATE', stream, keys.consumerGroup(), '0', 'MKSTREAM');
        const relays = buildRelays(supplier, [sessionId()], relaysEach);
        await publishEntries(
          redis,
          stream,
          relays.map((r) => r.entry),
        );
      },
    );
    await measureInChild(reporter, prefix, suppliers, relaysEach);
  } finally {
    await deleteKeysWithPrefix(redis, prefix);
    await redis.quit();
  }
}

async function measureInChild(
  reporter: BenchReporter,
  prefix: string,
  suppliers: number,
  relaysEach: number,
): Promise<void> {
  const nodeOptions = [process.env['NODE_OPTIONS'], '--expose-gc'].filter((o) => o !== undefined && o !== '');
  const child = await startChild<ChildMessage>('miner-rss', '../miner/rss-child.ts', {
    env: { NODE_OPTIONS: nodeOptions.join(' ') },
  });
  try {
    const r = await child.ask<ChildMessage>(
      { type: 'measure', prefix, suppliers, relays_per_session: relaysEach },
      'result',
      120_000,
    );
    const { type: _type, ...fields } = r;
    reporter.emit({
      bench: BENCH,
      name: `rss_${suppliers}_suppliers_live_sessions`,
      ...fields,
      suppliers,
      relays_per_session: relaysEach,
      redis_connections: suppliers + 1,
      load_avg_1m: loadavg()[0],
    });
  } finally {
    await child.stop();
  }
}
