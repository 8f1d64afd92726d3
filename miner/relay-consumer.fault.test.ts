import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { InMemoryMapStore, SparseMerkleSumTrie } from '../protocol/smst/index.js';
import { KeyBuilder, createRedisClient, encodeMinedRelayMessage } from '../transport/index.js';
import { freePort, startRedisServer, stopRedisServer, waitFor } from '../test/helpers/redis-server.js';
import { SupplierRelayConsumer, type RelayBatchResult } from './relay-consumer.js';
import { SessionStore } from './session-store.js';
import { SmstRedisStore, type SessionTrie } from './smst-redis-store.js';

const log = pino({ level: 'silent' });
const SUPPLIER = 'pokt1faultsupplier';

/** Relay-shaped leaf values; the consumer only needs bytes whose SHA-256 is the key. */
function relayBytes(i: number): Uint8Array {
  return new TextEncoder().encode(`relay-${i}-${'x'.repeat(i % 50)}`);
}

function message(i: number): Buffer {
  const bytes = relayBytes(i);
  return Buffer.from(
    encodeMinedRelayMessage({
      relay_hash: new Uint8Array(0),
      relay_bytes: bytes,
      compute_units_per_relay: 3n,
      session_id: 'sessF',
      session_end_height: 20,
      supplier_operator_address: SUPPLIER,
      service_id: 'anvil',
      application_address: 'pokt1app',
      arrival_block_height: 15,
      published_at_unix_nano: 1n,
      session_start_height: 11,
    }),
  );
}

describe('SupplierRelayConsumer across a Redis restart', () => {
  let server: ChildProcess | undefined;
  const clients: Redis[] = [];
  let dir: string | undefined;
  let consumer: SupplierRelayConsumer | undefined;

  afterEach(async () => {
    await consumer?.stop();
    consumer = undefined;
    for (const c of clients.splice(0)) c.disconnect();
    if (server !== undefined) await stopRedisServer(server);
    server = undefined;
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('keeps consuming after the server is killed and restarted; every relay lands once', async () => {
    dir = mkdtempSync(join(tmpdir(), 'relay-consumer-fault-'));
    const port = await freePort();
    server = await startRedisServer(port, { appendonly: true, dir });
    const redis = await createRedisClient({ url: `redis://127.0.0.1:${port}`, connection_name: 'fault' });
    redis.on('error', () => undefined);
    clients.push(redis);
    const keys = new KeyBuilder();
    const batches: RelayBatchResult[] = [];
    const tries = new Map<string, Promise<SessionTrie>>();
    const sessions = new SessionStore({ redis, keys, log }, { ttl_seconds: 600 });
    consumer = new SupplierRelayConsumer(
      {
        redis,
        keys,
        log,
        sessions,
        registry: new Registry(),
        trie: (sid) => {
          let t = tries.get(sid);
          if (t === undefined) {
            t = SmstRedisStore.open({ redis, keys }, { supplier: SUPPLIER, session_id: sid });
            t.catch(() => tries.delete(sid));
            tries.set(sid, t);
          }
          return t;
        },
        onBatch: (b) => {
          batches.push(b);
        },
      },
      {
        supplier: SUPPLIER,
        consumer_name: 'miner-f',
        block_ms: 100,
        claim_idle_timeout_ms: 200,
        reclaim_interval_ms: 200,
      },
    );
    const acked = (): number => batches.reduce((n, b) => n + b.acked, 0);
    const publish = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i++) await redis.xadd(keys.relayStream(SUPPLIER), '*', 'data', message(i));
    };

    await consumer.start();
    await publish(0, 10);
    await waitFor(() => acked() === 10, 10_000);

    await stopRedisServer(server);
    await new Promise((res) => setTimeout(res, 300));
    server = await startRedisServer(port, { appendonly: true, dir });
    await waitFor(async () => (await redis.ping().catch(() => '')) === 'PONG', 10_000);
    await publish(10, 20);
    await waitFor(() => acked() === 20, 15_000);

    const expected = SparseMerkleSumTrie.create(new InMemoryMapStore());
    for (let i = 0; i < 20; i++) {
      const bytes = relayBytes(i);
      await expected.update(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), bytes, 3n);
    }
    await expected.commit();
    const resumed = await SmstRedisStore.open({ redis, keys }, { supplier: SUPPLIER, session_id: 'sessF' });
    expect(resumed.trie.root()).toEqual(expected.root());
    expect(await redis.xlen(keys.relayStream(SUPPLIER))).toBe(0);
    const snap = await sessions.get(SUPPLIER, 'sessF');
    expect([snap?.relay_count, snap?.total_compute_units]).toEqual([20, 60n]);
    expect(consumer.isRunning).toBe(true);
  });
});
