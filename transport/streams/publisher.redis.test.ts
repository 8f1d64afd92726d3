import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { KeyBuilder } from '../keys.js';
import { useRedis } from '../../test/helpers/redis.js';
import { freePort, startRedisServer, stopRedisServer, waitFor } from '../../test/helpers/redis-server.js';
import { decodeMinedRelayMessage, type MinedRelayMessage } from './mined-relay-message.js';
import { StreamPublisherMetrics } from './metrics.js';
import { StreamPublisher, type StreamPublisherConfig, type WriteOutcome } from './publisher.js';

const log = pino({ level: 'silent' });
const r = useRedis();

function relay(i: number, over: Partial<MinedRelayMessage> = {}): MinedRelayMessage {
  return {
    relay_hash: new Uint8Array(32).fill(i % 256),
    relay_bytes: new Uint8Array([1, 2, 3, i % 256]),
    compute_units_per_relay: 1n,
    session_id: 'sess1',
    session_end_height: 20,
    supplier_operator_address: 'pokt1sup',
    service_id: 'eth',
    application_address: 'pokt1app',
    arrival_block_height: 12,
    published_at_unix_nano: 0n,
    session_start_height: 11,
    ...over,
  };
}

const CFG: StreamPublisherConfig = {
  max_len: 0,
  ttl_seconds: 600,
  batch_size: 50,
  flush_interval_ms: 1,
  max_buffered: 1000,
  ack_timeout_ms: 1_000,
};

function build(redis: Redis, keys: KeyBuilder, cfg: Partial<StreamPublisherConfig> = {}) {
  const registry = new Registry();
  const pub = new StreamPublisher(
    { redis, keys, log, metrics: new StreamPublisherMetrics(registry), nowNs: () => 42n },
    { ...CFG, ...cfg },
  );
  return { pub, registry };
}

async function counters(registry: Registry, name: string): Promise<Record<string, number>> {
  const m = await registry.getSingleMetric(name)!.get();
  return Object.fromEntries(m.values.map((v) => [Object.values(v.labels).join(',') || '_', v.value]));
}

async function readStream(redis: Redis, key: string): Promise<MinedRelayMessage[]> {
  const entries = await redis.xrangeBuffer(key, '-', '+');
  return entries.map(([, fields]) => {
    expect(fields.length).toBe(2);
    expect(fields[0]!.toString()).toBe('data');
    return decodeMinedRelayMessage(fields[1]!);
  });
}

describe('StreamPublisher on the shared Redis', () => {
  it('writes one `data` entry per relay, in order, with the stamped time and a TTL', async () => {
    const { pub, registry } = build(r.client, r.keys());
    for (let i = 0; i < 120; i++) expect(pub.publish(relay(i))).toEqual({ ok: true });
    await pub.flush();
    const key = r.keys().relayStream('pokt1sup');
    expect(key).toBe(`${r.prefix}ha:relays:pokt1sup`);
    const got = await readStream(r.client, key);
    expect(got).toEqual(Array.from({ length: 120 }, (_, i) => relay(i, { published_at_unix_nano: 42n })));
    const ttl = await r.client.ttl(key);
    expect(ttl > 590 && ttl <= 600).toBe(true);
    expect(await counters(registry, 'ha_transport_redis_published_total')).toEqual({ eth: 120 });
    expect(pub.buffered).toBe(0);
    await pub.close();
  });

  it('keeps a caller-set published_at and refuses invalid relays with a counted reason', async () => {
    const { pub, registry } = build(r.client, r.keys());
    expect(pub.publish(relay(1, { published_at_unix_nano: 7n }))).toEqual({ ok: true });
    expect(pub.publish(relay(2, { session_id: '' }))).toEqual({
      ok: false,
      code: 'PUBLISH_INVALID',
      reason: 'session_id is required',
    });
    expect(pub.publish(relay(3, { session_end_height: 0 }))).toEqual({
      ok: false,
      code: 'PUBLISH_INVALID',
      reason: 'session_end_height must be > 0',
    });
    expect(pub.publish(relay(4, { supplier_operator_address: '' })).ok).toBe(false);
    await pub.flush();
    expect(await readStream(r.client, r.keys().relayStream('pokt1sup'))).toEqual([
      relay(1, { published_at_unix_nano: 7n }),
    ]);
    expect(await counters(registry, 'ha_transport_redis_publish_dropped_total')).toEqual({ invalid: 3 });
    await pub.close();
    expect(pub.publish(relay(5))).toEqual({
      ok: false,
      code: 'PUBLISH_CLOSED',
      reason: 'publisher is closed',
    });
  });

  it('refreshes a stream TTL at most once a minute, not on every batch', async () => {
    const { pub } = build(r.client, r.keys());
    const key = r.keys().relayStream('pokt1sup');
    pub.publish(relay(1));
    await pub.flush();
    expect(await r.client.ttl(key)).toBeGreaterThan(590);
    await r.client.persist(key);
    pub.publish(relay(2));
    await pub.flush();
    expect(await r.client.xlen(key)).toBe(2);
    expect(await r.client.ttl(key)).toBe(-1);
    await pub.close();
  });

  it('bounds the stream with MAXLEN ~', async () => {
    const { pub } = build(r.client, r.keys(), { max_len: 10, batch_size: 500 });
    for (let i = 0; i < 2000; i++) pub.publish(relay(i));
    await pub.flush();
    const len = await r.client.xlen(r.keys().relayStream('pokt1sup'));
    expect(len >= 10 && len < 2000, `length ${len}`).toBe(true);
    await pub.close();
  });

  it('drops an entry Redis refuses (WRONGTYPE) and still writes the rest', async () => {
    const { pub, registry } = build(r.client, r.keys());
    await r.client.set(r.keys().relayStream('pokt1bad'), 'x');
    pub.publish(relay(1, { supplier_operator_address: 'pokt1bad' }));
    pub.publish(relay(2));
    await pub.flush();
    expect(await readStream(r.client, r.keys().relayStream('pokt1sup'))).toEqual([
      relay(2, { published_at_unix_nano: 42n }),
    ]);
    expect(await counters(registry, 'ha_transport_redis_publish_dropped_total')).toEqual({
      command_error: 1,
    });
    await pub.close();
  });

  it('keeps only the entries whose XADD failed on the connection; the written ones are not sent again', async () => {
    const { pub, registry } = build(r.client, r.keys(), { flush_interval_ms: 60_000 });
    const key = r.keys().relayStream('pokt1sup');
    // The connection breaks under the second XADD of the batch (ioredis's own error for it); the
    // first and third reach Redis.
    const xadd = r.client.xadd.bind(r.client);
    let calls = 0;
    const spy = vi.spyOn(r.client, 'xadd').mockImplementation((...args: Parameters<typeof xadd>) => {
      calls++;
      return calls === 2 ? Promise.reject(new Error('Connection is closed.')) : xadd(...args);
    });
    try {
      const acks = new Map<number, WriteOutcome>();
      for (const i of [1, 2, 3]) pub.publish(relay(i), (o) => acks.set(i, o));
      await waitFor(() => acks.size === 3);
      expect(pub.buffered).toBe(1);
      expect(await readStream(r.client, key)).toEqual(
        [1, 3].map((i) => relay(i, { published_at_unix_nano: 42n })),
      );
      await pub.flush();
      expect(pub.buffered).toBe(0);
      expect(await readStream(r.client, key)).toEqual(
        [1, 3, 2].map((i) => relay(i, { published_at_unix_nano: 42n })),
      );
      expect([1, 2, 3].map((i) => acks.get(i))).toEqual([
        { ok: true, state: 'written' },
        { ok: true, state: 'buffered' },
        { ok: true, state: 'written' },
      ]);
      expect(await counters(registry, 'ha_transport_redis_publish_errors_total')).toEqual({ connection: 1 });
      expect(await counters(registry, 'ha_transport_redis_published_total')).toEqual({ eth: 3 });
    } finally {
      spy.mockRestore();
      await pub.close();
    }
  });

  it('sends a batch without ioredis Pipeline objects (V8 keeps each until a full collection)', async () => {
    const { pub } = build(r.client, r.keys());
    const pipeline = vi.spyOn(r.client, 'pipeline');
    const multi = vi.spyOn(r.client, 'multi');
    try {
      for (const i of [1, 2, 3]) pub.publish(relay(i));
      await pub.flush();
      expect(await r.client.xlen(r.keys().relayStream('pokt1sup'))).toBe(3);
      expect([pipeline.mock.calls.length, multi.mock.calls.length]).toEqual([0, 0]);
    } finally {
      pipeline.mockRestore();
      multi.mockRestore();
      await pub.close();
    }
  });
});

describe('StreamPublisher write acknowledgements (onWrite)', () => {
  function waitWrite(pub: StreamPublisher, msg: MinedRelayMessage) {
    let resolve!: (o: WriteOutcome) => void;
    const done = new Promise<WriteOutcome>((res) => (resolve = res));
    const accepted = pub.publish(msg, resolve);
    return { accepted, done };
  }

  it('answers `written` only once the entry is in the stream, without the flush interval wait', async () => {
    const { pub } = build(r.client, r.keys(), { flush_interval_ms: 60_000 });
    const key = r.keys().relayStream('pokt1sup');
    const a = waitWrite(pub, relay(1));
    expect(a.accepted).toEqual({ ok: true });
    expect(await a.done).toEqual({ ok: true, state: 'written' });
    expect(await readStream(r.client, key)).toEqual([relay(1, { published_at_unix_nano: 42n })]);
    await pub.close();
  });

  it('sends acknowledged relays before any timer fires, relays of one event-loop turn in one batch', async () => {
    const { pub, registry } = build(r.client, r.keys(), { flush_interval_ms: 60_000 });
    const key = r.keys().relayStream('pokt1sup');
    // Watch the XADDs leave: the flush must come from setImmediate, not a (≥ 1 ms) timer.
    const sent = vi.spyOn(r.client, 'sendCommand');
    const xadds = (): number => sent.mock.calls.filter(([cmd]) => cmd.name === 'xadd').length;
    let xaddsBeforeTimer = -1;
    const timerFired = new Promise<void>((res) =>
      setTimeout(() => {
        xaddsBeforeTimer = xadds();
        res();
      }, 0),
    );
    const writes = [1, 2, 3].map((i) => waitWrite(pub, relay(i)));
    await timerFired;
    try {
      expect(xaddsBeforeTimer).toBe(3);
      for (const w of writes) expect(await w.done).toEqual({ ok: true, state: 'written' });
      expect(await readStream(r.client, key)).toEqual(
        [1, 2, 3].map((i) => relay(i, { published_at_unix_nano: 42n })),
      );
      const text = await registry.metrics();
      expect(text).toMatch(/^ha_transport_redis_publish_batch_size_count 1$/m);
      expect(text).toMatch(/^ha_transport_redis_publish_batch_size_sum 3$/m);
    } finally {
      sent.mockRestore();
      await pub.close();
    }
  });

  it("answers a refusal with Redis's reason when the XADD is rejected; the others are written", async () => {
    const { pub, registry } = build(r.client, r.keys());
    await r.client.set(r.keys().relayStream('pokt1bad'), 'x');
    const bad = waitWrite(pub, relay(1, { supplier_operator_address: 'pokt1bad' }));
    const good = waitWrite(pub, relay(2));
    const outcome = await bad.done;
    expect(outcome.ok).toBe(false);
    expect(outcome.ok ? '' : `${outcome.code} ${outcome.reason}`).toMatch(/^WRITE_REFUSED WRONGTYPE /);
    expect(await good.done).toEqual({ ok: true, state: 'written' });
    expect(await counters(registry, 'ha_transport_redis_publish_errors_total')).toEqual({ command: 1 });
    await pub.close();
  });

  it('never calls back for a relay publish() refused', async () => {
    const { pub } = build(r.client, r.keys());
    let called = 0;
    expect(pub.publish(relay(1, { session_id: '' }), () => called++)).toEqual({
      ok: false,
      code: 'PUBLISH_INVALID',
      reason: 'session_id is required',
    });
    await pub.flush();
    await new Promise((res) => setTimeout(res, 20));
    expect(called).toBe(0);
    await pub.close();
  });
});

// ------------------------------------------------------------------ own redis-server, killed and restarted

describe('StreamPublisher across a Redis restart', () => {
  const servers: ChildProcess[] = [];
  const clients: Redis[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect();
    for (const s of servers.splice(0)) await stopRedisServer(s);
  });

  async function ownServer(extra: string[] = []): Promise<Redis> {
    const port = await freePort();
    servers.push(await startRedisServer(port, { enableDebug: true }));
    const redis = new Redis({ port, host: '127.0.0.1', retryStrategy: () => 50, maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    clients.push(redis);
    await waitFor(() => redis.status === 'ready');
    for (let i = 0; i < extra.length; i += 2) await redis.config('SET', extra[i]!, extra[i + 1]!);
    return redis;
  }

  function waitWrite(pub: StreamPublisher, msg: MinedRelayMessage): Promise<WriteOutcome> {
    return new Promise<WriteOutcome>((resolve) => pub.publish(msg, resolve));
  }

  it('answers `buffered` while Redis is down or slower than ack_timeout_ms, and still writes the relay later', async () => {
    const redis = await ownServer();
    const keys = new KeyBuilder();
    const { pub } = build(redis, keys, { ack_timeout_ms: 200 });

    // Slow: the server sleeps 600 ms; the caller is answered at the timeout, the entry lands after.
    const probe = redis.duplicate();
    probe.on('error', () => undefined);
    clients.push(probe);
    void probe.call('DEBUG', 'SLEEP', '0.6');
    await new Promise((res) => setTimeout(res, 20));
    const t0 = performance.now();
    expect(await waitWrite(pub, relay(1))).toEqual({ ok: true, state: 'buffered' });
    const waited = performance.now() - t0;
    expect(waited >= 150 && waited < 550, `waited ${waited} ms`).toBe(true);
    await waitFor(async () => (await redis.xlen('ha:relays:pokt1sup')) === 1, 5_000);

    // Down: answered at once from the buffer; written after the restart.
    const port = redis.options.port!;
    await stopRedisServer(servers.pop()!);
    await waitFor(() => redis.status !== 'ready');
    expect(await waitWrite(pub, relay(2))).toEqual({ ok: true, state: 'buffered' });
    servers.push(await startRedisServer(port));
    await waitFor(() => pub.buffered === 0, 10_000);
    expect(await readStream(redis, 'ha:relays:pokt1sup')).toEqual([
      relay(2, { published_at_unix_nano: 42n }),
    ]);
    expect(await pub.close()).toEqual({ unsent: 0 });
  });

  it('refuses with the OOM reason when Redis is at maxmemory (noeviction), counted as oom', async () => {
    const redis = await ownServer(['maxmemory-policy', 'noeviction']);
    const keys = new KeyBuilder();
    const { pub, registry } = build(redis, keys);
    const used = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
    await redis.config('SET', 'maxmemory', String(used + 1024));
    await redis.set('filler', 'x'.repeat(64 * 1024)).catch(() => undefined);
    const outcome = await waitWrite(pub, relay(1));
    expect(outcome.ok ? '' : `${outcome.code} ${outcome.reason}`).toMatch(/^WRITE_REFUSED OOM /);
    expect(await counters(registry, 'ha_transport_redis_publish_errors_total')).toEqual({ oom: 1 });
    await redis.config('SET', 'maxmemory', '0');
    expect(await waitWrite(pub, relay(2))).toEqual({ ok: true, state: 'written' });
    await pub.close();
  });

  it('buffers while Redis is down, then lands every relay after the restart; over the bound it refuses and counts', async () => {
    const port = await freePort();
    servers.push(await startRedisServer(port));
    const redis = new Redis({ port, host: '127.0.0.1', retryStrategy: () => 50, maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    clients.push(redis);
    await waitFor(() => redis.status === 'ready');
    const keys = new KeyBuilder();
    const { pub, registry } = build(redis, keys, { max_buffered: 30, batch_size: 10 });

    pub.publish(relay(0));
    await pub.flush();
    expect((await readStream(redis, 'ha:relays:pokt1sup')).length).toBe(1);

    await stopRedisServer(servers.pop()!);
    await waitFor(() => redis.status !== 'ready');
    const results = Array.from({ length: 35 }, (_, i) => pub.publish(relay(i + 1)));
    expect(results.filter((x) => x.ok).length).toBe(30);
    expect(results.slice(30).map((x) => (x.ok ? 'ok' : x.code))).toEqual(
      Array(5).fill('PUBLISH_BUFFER_FULL'),
    );
    await pub.flush();
    expect(pub.buffered).toBe(30);
    expect(await counters(registry, 'ha_transport_redis_publish_dropped_total')).toEqual({ buffer_full: 5 });

    servers.push(await startRedisServer(port));
    await waitFor(() => pub.buffered === 0, 10_000);
    // The restarted server is empty (no persistence): exactly the buffered relays landed, in order,
    // and the recreated stream has its TTL again.
    expect(await redis.ttl('ha:relays:pokt1sup')).toBeGreaterThan(590);
    expect(await readStream(redis, 'ha:relays:pokt1sup')).toEqual(
      Array.from({ length: 30 }, (_, i) => relay(i + 1, { published_at_unix_nano: 42n })),
    );
    expect(await counters(registry, 'ha_transport_redis_published_total')).toEqual({ eth: 31 });
    expect(await pub.close()).toEqual({ unsent: 0 });
  });
});
