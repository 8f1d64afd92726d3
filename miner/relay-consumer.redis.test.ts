import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import { InMemoryMapStore, SparseMerkleSumTrie } from '../protocol/smst/index.js';
import {
  SECP256K1_N,
  mineRelay,
  type RelayRequest,
  type RelayResponse,
  type SessionHeader,
} from '../protocol/index.js';
import { ringSignatureChallenge } from '../rings/index.js';
import { encodeMinedRelayMessage, type KeyBuilder, type MinedRelayMessage } from '../transport/index.js';
import { useRedis } from '../test/helpers/redis.js';
import {
  SupplierRelayConsumer,
  type RelayBatchResult,
  type RelayConsumerConfig,
  type SessionBatchResult,
} from './relay-consumer.js';
import { SessionStore } from './session-store.js';
import { SmstRedisError } from './errors.js';
import { SmstRedisStore, type SessionTrie } from './smst-redis-store.js';

const log = pino({ level: 'silent' });
const SUPPLIER = 'pokt1consumersupplier';
const APP = 'pokt1consumerapp';
const SERVICE = 'anvil';
const CUPR = 7n;

interface Built {
  msg: MinedRelayMessage;
  hash: Uint8Array;
  bytes: Uint8Array;
}

function header(sessionId: string, end: number): SessionHeader {
  return {
    applicationAddress: APP,
    serviceId: SERVICE,
    sessionId,
    sessionStartBlockHeight: BigInt(end - 9),
    sessionEndBlockHeight: BigInt(end),
  };
}

/** A mined relay as the relayer publishes it: Relay{request, signed response without payload}. */
function relay(
  sessionId: string,
  i: number,
  end = 20,
  supplier = SUPPLIER,
  signature: Uint8Array = randomBytes(64),
): Built {
  const h = header(sessionId, end);
  const req: RelayRequest = {
    meta: { sessionHeader: h, signature: Buffer.from(signature), supplierOperatorAddress: supplier },
    payload: Buffer.from(`{"jsonrpc":"2.0","id":${i},"method":"eth_blockNumber"}`),
  };
  const res: RelayResponse = {
    meta: { sessionHeader: h, supplierOperatorSignature: Buffer.from(randomBytes(64)) },
    payload: Buffer.from(`{"jsonrpc":"2.0","id":${i},"result":"0x${i.toString(16)}"}`),
    payloadHash: Buffer.from(randomBytes(32)),
    relayMinerError: undefined,
  };
  const mined = mineRelay(req, res);
  return {
    hash: mined.hash,
    bytes: mined.bytes,
    msg: {
      relay_hash: mined.hash,
      relay_bytes: mined.bytes,
      compute_units_per_relay: CUPR,
      session_id: sessionId,
      session_end_height: end,
      supplier_operator_address: supplier,
      service_id: SERVICE,
      application_address: APP,
      arrival_block_height: end - 5,
      published_at_unix_nano: 1n,
      session_start_height: end - 9,
    },
  };
}

async function expectedRoot(relays: readonly Built[]): Promise<Uint8Array> {
  const t = SparseMerkleSumTrie.create(new InMemoryMapStore());
  for (const r of relays) await t.update(r.hash, r.bytes, r.msg.compute_units_per_relay);
  await t.commit();
  return t.root();
}

async function until(cond: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function counterValues(registry: Registry, name: string): Promise<Record<string, number>> {
  const m = registry.getSingleMetric(name);
  if (m === undefined) return {};
  const out: Record<string, number> = {};
  for (const v of (await m.get()).values) out[String(v.labels['result'] ?? '')] = v.value;
  return out;
}

/** Totals over the session results of every batch seen. */
function totals(batches: readonly RelayBatchResult[]): Record<string, number> {
  const t = { inserted: 0, duplicates: 0, sealed: 0, malformed: 0, retried: 0, acked: 0 };
  for (const b of batches) {
    t.malformed += b.malformed;
    t.acked += b.acked;
    for (const s of b.sessions) {
      t.inserted += s.inserted;
      t.duplicates += s.duplicates;
      t.sealed += s.sealed;
      t.retried += s.retried;
    }
  }
  return t;
}

describe('SupplierRelayConsumer (miner.md §2)', () => {
  const r = useRedis();
  const running: SupplierRelayConsumer[] = [];
  const extraClients: Redis[] = [];

  afterEach(async () => {
    for (const c of running.splice(0)) await c.stop();
    for (const c of extraClients.splice(0)) c.disconnect();
  });

  interface Harness {
    consumer: SupplierRelayConsumer;
    batches: RelayBatchResult[];
    registry: Registry;
    sessions: SessionStore;
    tries: Map<string, Promise<SessionTrie>>;
  }

  function harness(
    keys: KeyBuilder,
    opts: {
      name?: string;
      redis?: Redis;
      cfg?: Partial<RelayConsumerConfig>;
      wrapTrie?: (t: SessionTrie) => SessionTrie;
      onTrie?: (t: SessionTrie) => void;
      /** Provider calls that fail before the real trie is handed out. */
      trieFailures?: number;
      registry?: Registry;
    } = {},
  ): Harness {
    const redis = opts.redis ?? r.client;
    const registry = opts.registry ?? new Registry();
    const batches: RelayBatchResult[] = [];
    const sessions = new SessionStore({ redis, keys, log }, { ttl_seconds: 600 });
    const tries = new Map<string, Promise<SessionTrie>>();
    let failures = opts.trieFailures ?? 0;
    const consumer = new SupplierRelayConsumer(
      {
        redis,
        keys,
        log,
        sessions,
        registry,
        trie: (sid) => {
          if (failures > 0) {
            failures--;
            return Promise.reject(new SmstRedisError('MGET of the trie roots', 'nodes'));
          }
          let t = tries.get(sid);
          if (t === undefined) {
            t = SmstRedisStore.open({ redis: r.client, keys }, { supplier: SUPPLIER, session_id: sid }).then(
              (x) => opts.wrapTrie?.(x) ?? x,
            );
            tries.set(sid, t);
          }
          const hook = opts.onTrie;
          return hook === undefined ? t : t.then((x) => (hook(x), x));
        },
        onBatch: (b) => {
          batches.push(b);
        },
      },
      {
        supplier: SUPPLIER,
        consumer_name: opts.name ?? 'miner-a',
        block_ms: 100,
        claim_idle_timeout_ms: 60_000,
        reclaim_interval_ms: 60_000,
        ...opts.cfg,
      },
    );
    running.push(consumer);
    return { consumer, batches, registry, sessions, tries };
  }

  async function publish(
    keys: KeyBuilder,
    items: readonly (Built | Buffer | [string, Buffer])[],
  ): Promise<void> {
    const pipe = r.client.pipeline();
    for (const it of items) {
      if (Array.isArray(it)) pipe.xadd(keys.relayStream(SUPPLIER), '*', it[0], it[1]);
      else if (Buffer.isBuffer(it)) pipe.xadd(keys.relayStream(SUPPLIER), '*', 'data', it);
      else pipe.xadd(keys.relayStream(SUPPLIER), '*', 'data', Buffer.from(encodeMinedRelayMessage(it.msg)));
    }
    await pipe.exec();
  }

  async function storedRoot(keys: KeyBuilder, sid: string): Promise<Uint8Array> {
    const t = await SmstRedisStore.open({ redis: r.client, keys }, { supplier: SUPPLIER, session_id: sid });
    expect(t.resumedFrom).toBe('live_root');
    return t.trie.root();
  }

  async function streamState(keys: KeyBuilder): Promise<{ len: number; pending: number }> {
    const stream = keys.relayStream(SUPPLIER);
    const p = (await r.client.xpending(stream, keys.consumerGroup())) as [number, ...unknown[]];
    return { len: await r.client.xlen(stream), pending: Number(p[0]) };
  }

  it('inserts every relay into its session trie, counts it, then acks and deletes the entries', async () => {
    const keys = r.keys();
    const s1 = Array.from({ length: 40 }, (_, i) => relay('sessA', i));
    const s2 = Array.from({ length: 25 }, (_, i) => relay('sessB', i, 30));
    const h = harness(keys, { cfg: { batch_size: 16 } });
    await publish(keys, [...s1.slice(0, 20), ...s2, ...s1.slice(20)]);
    await h.consumer.start();
    await until(() => totals(h.batches).acked === 65);

    expect(await storedRoot(keys, 'sessA')).toEqual(await expectedRoot(s1));
    expect(await storedRoot(keys, 'sessB')).toEqual(await expectedRoot(s2));
    expect((await h.tries.get('sessA'))!.trie.root()).toEqual(await expectedRoot(s1));
    expect(await streamState(keys)).toEqual({ len: 0, pending: 0 });
    const snapA = await h.sessions.get(SUPPLIER, 'sessA');
    const snapB = await h.sessions.get(SUPPLIER, 'sessB');
    expect([
      snapA?.state,
      snapA?.relay_count,
      snapA?.total_compute_units,
      snapA?.session_start_height,
    ]).toEqual(['active', 40, 40n * CUPR, 11]);
    expect([snapB?.relay_count, snapB?.total_compute_units, snapB?.session_end_height]).toEqual([
      25,
      25n * CUPR,
      30,
    ]);
    expect(totals(h.batches)).toEqual({
      inserted: 65,
      duplicates: 0,
      sealed: 0,
      malformed: 0,
      retried: 0,
      acked: 65,
    });
    expect(await counterValues(h.registry, 'ha_miner_relays_consumed_total')).toEqual({ inserted: 65 });
    const dedup = keys.minerDedupSession('sessA');
    expect(await r.client.scard(dedup)).toBe(40);
    expect(await r.client.ttl(dedup)).toBeGreaterThan(290);
    expect(await r.client.smembers(keys.knownSet('applications'))).toEqual([APP]);
    expect(await r.client.smembers(keys.knownSet('services'))).toEqual([SERVICE]);
    const lag = await h.registry.getSingleMetric('ha_miner_stream_lag')!.get();
    expect(lag.values.map((v) => v.value)).toEqual([0]);
  });

  it('caughtUp resolves once the backlog found at start, a dead consumer pending entries included, is in the trie', async () => {
    const keys = r.keys();
    const relays = Array.from({ length: 40 }, (_, i) => relay('sessA', i));
    await publish(keys, relays);
    const stream = keys.relayStream(SUPPLIER);
    await r.client.xgroup('CREATE', stream, keys.consumerGroup(), '0');
    // A consumer that read 16 entries and died before acknowledging them.
    await r.client.xreadgroup(
      'GROUP',
      keys.consumerGroup(),
      'miner-dead',
      'COUNT',
      16,
      'STREAMS',
      stream,
      '>',
    );
    // Claimed at start although far from idle for claim_idle_timeout_ms: the owner is gone.
    const h = harness(keys, { cfg: { batch_size: 16, claim_idle_timeout_ms: 60_000 } });
    await h.consumer.start();
    await h.consumer.caughtUp();

    expect(totals(h.batches)).toEqual({
      inserted: 40,
      duplicates: 0,
      sealed: 0,
      malformed: 0,
      retried: 0,
      acked: 40,
    });
    expect((await h.sessions.get(SUPPLIER, 'sessA'))?.relay_count).toBe(40);
    expect(await storedRoot(keys, 'sessA')).toEqual(await expectedRoot(relays));
    expect(await streamState(keys)).toEqual({ len: 0, pending: 0 });
  });

  it('caughtUp resolves on stop, also for a consumer that never started', async () => {
    const h = harness(r.keys());
    await h.consumer.stop();
    await expect(h.consumer.caughtUp()).resolves.toBeUndefined();
  });

  it('reports each batch per session through onBatch', async () => {
    const keys = r.keys();
    const rel = [relay('sessA', 1), relay('sessA', 2)];
    const h = harness(keys);
    await publish(keys, rel);
    await h.consumer.start();
    await until(() => h.batches.length > 0);
    const expected: SessionBatchResult = {
      session_id: 'sessA',
      service_id: SERVICE,
      application_address: APP,
      session_start_height: 11,
      session_end_height: 20,
      inserted: 2,
      inserted_compute_units: 2n * CUPR,
      duplicates: 0,
      sealed: 0,
      malformed: 0,
      retried: 0,
      created: true,
    };
    expect(h.batches).toEqual([
      { supplier: SUPPLIER, reclaimed: false, entries: 2, acked: 2, malformed: 0, sessions: [expected] },
    ]);
  });

  it('inserts a relay published twice only once, in one batch and across batches', async () => {
    const keys = r.keys();
    const rel = Array.from({ length: 10 }, (_, i) => relay('sessA', i));
    const h = harness(keys);
    await publish(keys, [...rel, rel[3]!, rel[3]!, rel[7]!]);
    await h.consumer.start();
    await until(() => totals(h.batches).acked === 13);
    await publish(keys, [rel[0]!, rel[9]!]);
    await until(() => totals(h.batches).acked === 15);

    expect(await storedRoot(keys, 'sessA')).toEqual(await expectedRoot(rel));
    expect((await h.sessions.get(SUPPLIER, 'sessA'))?.relay_count).toBe(10);
    expect(totals(h.batches)).toEqual({
      inserted: 10,
      duplicates: 5,
      sealed: 0,
      malformed: 0,
      retried: 0,
      acked: 15,
    });
    expect(await counterValues(h.registry, 'ha_miner_relays_consumed_total')).toEqual({
      inserted: 10,
      duplicate: 5,
    });
    expect(await streamState(keys)).toEqual({ len: 0, pending: 0 });
  });

  it('claims a replayed request once: same ring-signature challenge, different responses and encodings', async () => {
    const keys = r.keys();
    const sig = randomBytes(100);
    sig.writeUInt32BE(1, 0);
    // c0 + N and trailing bytes still verify upstream, and are the same signing.
    const c0 = BigInt(`0x${sig.subarray(4, 36).toString('hex')}`) % SECP256K1_N;
    const lifted = Buffer.from(sig);
    if (c0 + SECP256K1_N < 2n ** 256n)
      Buffer.from((c0 + SECP256K1_N).toString(16).padStart(64, '0'), 'hex').copy(lifted, 4);
    else Buffer.from(c0.toString(16).padStart(64, '0'), 'hex').copy(lifted, 4);
    const variants = [sig, sig, lifted, Buffer.concat([sig, Buffer.from([1, 2, 3])])];
    // Each replay was answered anew (relay() signs a fresh response), so every relay hash differs.
    const replays = variants.map((v, i) => relay('sessR', i, 20, SUPPLIER, v));
    expect(new Set(replays.map((x) => Buffer.from(x.hash).toString('hex'))).size).toBe(4);
    const other = relay('sessR', 9);
    const h = harness(keys);
    await publish(keys, [replays[0]!, other, replays[1]!, replays[2]!]);
    await h.consumer.start();
    await until(() => totals(h.batches).acked === 4);
    await publish(keys, [replays[3]!]);
    await until(() => totals(h.batches).acked === 5);
    expect(await storedRoot(keys, 'sessR')).toEqual(await expectedRoot([replays[0]!, other]));
    expect((await h.sessions.get(SUPPLIER, 'sessR'))?.relay_count).toBe(2);
    expect(totals(h.batches)).toMatchObject({ inserted: 2, duplicates: 3, acked: 5 });
  });

  it('acks, deletes and counts malformed entries without stopping', async () => {
    const keys = r.keys();
    const good = [relay('sessA', 1), relay('sessA', 2)];
    const wrongSupplier = relay('sessA', 3, 20, 'pokt1someoneelse');
    const badHash = relay('sessA', 4);
    badHash.msg = { ...badHash.msg, relay_hash: new Uint8Array(32).fill(9) };
    const emptyRelay = relay('sessA', 5);
    emptyRelay.msg = { ...emptyRelay.msg, relay_bytes: new Uint8Array(0), relay_hash: new Uint8Array(0) };
    const badSession = relay('bad:session', 6);
    const noService = relay('sessA', 7);
    noService.msg = { ...noService.msg, service_id: '' };
    const h = harness(keys);
    await publish(keys, [
      noService,
      good[0]!,
      Buffer.from([0xff, 0xff, 0xff]),
      ['other', Buffer.from('x')],
      wrongSupplier,
      badHash,
      emptyRelay,
      badSession,
      good[1]!,
    ]);
    await h.consumer.start();
    await until(() => totals(h.batches).acked === 9);

    expect(totals(h.batches)).toEqual({
      inserted: 2,
      duplicates: 0,
      sealed: 0,
      malformed: 7,
      retried: 0,
      acked: 9,
    });
    expect(h.batches[0]!.sessions.map((s) => [s.session_id, s.service_id, s.malformed, s.inserted])).toEqual([
      ['sessA', SERVICE, 3, 2],
    ]);
    const snap = await h.sessions.get(SUPPLIER, 'sessA');
    expect([snap?.service_id, snap?.relay_count]).toEqual([SERVICE, 2]);
    expect(await counterValues(h.registry, 'ha_miner_relays_consumed_total')).toEqual({
      inserted: 2,
      malformed: 7,
    });
    expect(await storedRoot(keys, 'sessA')).toEqual(await expectedRoot(good));
    expect(await streamState(keys)).toEqual({ len: 0, pending: 0 });
    expect(h.consumer.isRunning).toBe(true);
  });

  it('computes a missing relay hash from the relay bytes', async () => {
    const keys = r.keys();
    const sig = randomBytes(64);
    const rel = relay('sessA', 1, 20, SUPPLIER, sig);
    rel.msg = { ...rel.msg, relay_hash: new Uint8Array(0) };
    const h = harness(keys);
    await publish(keys, [rel]);
    await h.consumer.start();
    await until(() => totals(h.batches).acked === 1);
    expect(await storedRoot(keys, 'sessA')).toEqual(await expectedRoot([rel]));
    // The dedup set holds the request's identity (its ring-signature challenge), not the relay hash.
    expect(await r.client.smembersBuffer(keys.minerDedupSession('sessA'))).toEqual([
      Buffer.from(ringSignatureChallenge(sig)!),
    ]);
  });

  it('drops relays of a terminal session as session_sealed', async () => {
    const keys = r.keys();
    const h = harness(keys);
    await h.sessions.ensure({
      session_id: 'sessA',
      supplier_operator_address: SUPPLIER,
      service_id: SERVICE,
      application_address: APP,
      session_start_height: 11,
      session_end_height: 20,
    });
    await h.sessions.transition(SUPPLIER, 'sessA', ['active'], 'claim_window_closed');
    await publish(keys, [relay('sessA', 1), relay('sessA', 2)]);
    await h.consumer.start();
    await until(() => totals(h.batches).acked === 2);
    expect(totals(h.batches)).toEqual({
      inserted: 0,
      duplicates: 0,
      sealed: 2,
      malformed: 0,
      retried: 0,
      acked: 2,
    });
    expect(await counterValues(h.registry, 'ha_miner_relays_consumed_total')).toEqual({ session_sealed: 2 });
    expect(await r.client.exists(keys.sessionTree(SUPPLIER, 'sessA').nodes)).toBe(0);
    expect((await h.sessions.get(SUPPLIER, 'sessA'))?.relay_count).toBe(0);
    expect(await streamState(keys)).toEqual({ len: 0, pending: 0 });
  });

  it('drops relays of a sealed trie as session_sealed and leaves the claimed root alone', async () => {
    const keys = r.keys();
    const first = [relay('sessA', 1), relay('sessA', 2)];
    const h = harness(keys);
    await publish(keys, first);
    await h.consumer.start();
    await until(() => totals(h.batches).acked === 2);
    const st = await h.tries.get('sessA')!;
    const claimed = await st.store.seal();
    expect(claimed).toEqual(await expectedRoot(first));

    await publish(keys, [relay('sessA', 3)]);
    await until(() => totals(h.batches).acked === 3);
    expect(totals(h.batches)).toEqual({
      inserted: 2,
      duplicates: 0,
      sealed: 1,
      malformed: 0,
      retried: 0,
      acked: 3,
    });
    expect(st.trie.root()).toEqual(claimed);
    expect(new Uint8Array((await r.client.getBuffer(keys.sessionTree(SUPPLIER, 'sessA').root))!)).toEqual(
      claimed,
    );
  });

  it('a relay racing a seal is removed from the in-memory trie again, so it matches the claim', async () => {
    const keys = r.keys();
    const first = [relay('sessA', 1)];
    let sealing: Promise<Uint8Array> | undefined;
    let sealNext = false;
    const h = harness(keys, {
      onTrie: (t) => {
        if (!sealNext) return;
        sealNext = false;
        // The lifecycle seals after the consumer's sealed check and before its commit.
        setImmediate(() => {
          sealing = t.trie.commit().then(() => t.store.seal());
        });
      },
    });
    await publish(keys, first);
    await h.consumer.start();
    await until(() => totals(h.batches).acked === 1);
    sealNext = true;
    await publish(keys, [relay('sessA', 2)]);
    await until(() => totals(h.batches).acked === 2);
    const claimed = await sealing!;
    expect(claimed).toEqual(await expectedRoot(first));
    expect(totals(h.batches)).toEqual({
      inserted: 1,
      duplicates: 0,
      sealed: 1,
      malformed: 0,
      retried: 0,
      acked: 2,
    });
    const st = await h.tries.get('sessA')!;
    expect(st.trie.root()).toEqual(claimed);
    expect(await r.client.scard(keys.minerDedupSession('sessA'))).toBe(1);
  });

  it('after a crash between trie checkpoint and ack, another consumer reclaims and every relay lands once', async () => {
    const keys = r.keys();
    const rel = Array.from({ length: 30 }, (_, i) => relay('sessA', i));
    const doomed = r.client.duplicate();
    extraClients.push(doomed);
    // Consumer 1 loses its connection right after the trie checkpoint: no dedup, no snapshot, no ack.
    const c1 = harness(keys, {
      name: 'miner-dead',
      redis: doomed,
      wrapTrie: (t) => {
        const checkpoint = t.store.checkpoint.bind(t.store);
        t.store.checkpoint = async () => {
          await checkpoint();
          doomed.disconnect();
        };
        return t;
      },
    });
    await publish(keys, rel.slice(0, 12));
    await c1.consumer.start();
    await until(() => c1.batches.length > 0);
    await c1.consumer.stop();
    expect(totals(c1.batches)).toEqual({
      inserted: 0,
      duplicates: 0,
      sealed: 0,
      malformed: 0,
      retried: 12,
      acked: 0,
    });
    expect(await streamState(keys)).toEqual({ len: 12, pending: 12 });
    expect(await storedRoot(keys, 'sessA')).toEqual(await expectedRoot(rel.slice(0, 12)));

    await publish(keys, rel.slice(12));
    await new Promise((res) => setTimeout(res, 300));
    const c2 = harness(keys, {
      name: 'miner-b',
      cfg: { claim_idle_timeout_ms: 250, reclaim_interval_ms: 200 },
    });
    await c2.consumer.start();
    await until(() => totals(c2.batches).acked === 30);

    expect(c2.batches.some((b) => b.reclaimed)).toBe(true);
    expect(await storedRoot(keys, 'sessA')).toEqual(await expectedRoot(rel));
    expect((await c2.tries.get('sessA'))!.trie.count()).toBe(30n);
    expect(totals(c2.batches)).toEqual({
      inserted: 30,
      duplicates: 0,
      sealed: 0,
      malformed: 0,
      retried: 0,
      acked: 30,
    });
    const snap = await c2.sessions.get(SUPPLIER, 'sessA');
    expect([snap?.relay_count, snap?.total_compute_units]).toEqual([30, 30n * CUPR]);
    expect(await streamState(keys)).toEqual({ len: 0, pending: 0 });
    const reclaimed = await c2.registry.getSingleMetric('ha_miner_relays_reclaimed_total')!.get();
    expect(reclaimed.values.map((v) => v.value)).toEqual([12]);
  });

  it('entries reclaimed after their relays were already counted are duplicates, not recounted', async () => {
    const keys = r.keys();
    const rel = Array.from({ length: 5 }, (_, i) => relay('sessA', i));
    const h1 = harness(keys, { name: 'miner-a' });
    await publish(keys, rel);
    await h1.consumer.start();
    await until(() => totals(h1.batches).acked === 5);
    await h1.consumer.stop();
    // The same relays come back as pending entries of a dead consumer (ack lost).
    await publish(keys, rel);
    await r.client.xreadgroup(
      'GROUP',
      keys.consumerGroup(),
      'miner-dead',
      'COUNT',
      100,
      'STREAMS',
      keys.relayStream(SUPPLIER),
      '>',
    );
    await new Promise((res) => setTimeout(res, 150));
    const h2 = harness(keys, { name: 'miner-b', cfg: { claim_idle_timeout_ms: 100 } });
    await h2.consumer.start();
    await until(() => totals(h2.batches).acked === 5);
    expect(totals(h2.batches)).toEqual({
      inserted: 0,
      duplicates: 5,
      sealed: 0,
      malformed: 0,
      retried: 0,
      acked: 5,
    });
    expect(h2.batches.every((b) => b.reclaimed)).toBe(true);
    expect((await h2.sessions.get(SUPPLIER, 'sessA'))?.relay_count).toBe(5);
    expect(await storedRoot(keys, 'sessA')).toEqual(await expectedRoot(rel));
  });

  it('leaves relays pending after a transient failure and processes them on the next reclaim pass', async () => {
    const keys = r.keys();
    const rel = [relay('sessA', 1), relay('sessA', 2), relay('sessB', 3)];
    const h = harness(keys, {
      trieFailures: 1,
      cfg: { claim_idle_timeout_ms: 150, reclaim_interval_ms: 100 },
    });
    await publish(keys, rel);
    await h.consumer.start();
    await until(() => totals(h.batches).acked === 3);
    expect(h.batches[0]!.sessions.map((s) => [s.session_id, s.retried, s.inserted])).toEqual([
      ['sessA', 2, 0],
      ['sessB', 0, 1],
    ]);
    expect(h.batches[0]!.acked).toBe(1);
    expect(h.batches.some((b) => b.reclaimed)).toBe(true);
    expect(totals(h.batches)).toEqual({
      inserted: 3,
      duplicates: 0,
      sealed: 0,
      malformed: 0,
      retried: 2,
      acked: 3,
    });
    expect(await counterValues(h.registry, 'ha_miner_relays_consumed_total')).toEqual({
      inserted: 3,
      retry: 2,
    });
    expect(await storedRoot(keys, 'sessA')).toEqual(await expectedRoot(rel.slice(0, 2)));
    expect(await streamState(keys)).toEqual({ len: 0, pending: 0 });
  });

  it('drained() waits until everything published before it is in the trie, retrying a failed batch at once', async () => {
    const keys = r.keys();
    const rel = [relay('sessA', 1), relay('sessA', 2), relay('sessB', 3)];
    // Without drained() the failed batch would wait a minute for its idle timeout and reclaim pass.
    const h = harness(keys, {
      trieFailures: 1,
      cfg: { claim_idle_timeout_ms: 60_000, reclaim_interval_ms: 60_000, block_ms: 100 },
    });
    await publish(keys, rel);
    // Not consuming yet: the entries stay, so drained() says no at its deadline.
    const t0 = Date.now();
    expect(await h.consumer.drained(150)).toBe(false);
    expect(Date.now() - t0).toBeLessThan(1_000);
    await h.consumer.start();
    await until(() => h.batches.length >= 1);
    expect(h.batches[0]!.sessions.find((x) => x.session_id === 'sessA')?.retried).toBe(2);
    expect(await h.consumer.drained(5_000)).toBe(true);
    expect(await storedRoot(keys, 'sessA')).toEqual(await expectedRoot(rel.slice(0, 2)));
    expect(await streamState(keys)).toEqual({ len: 0, pending: 0 });
    // An empty stream is drained at once.
    expect(await h.consumer.drained(0)).toBe(true);
  });

  it('recreates the consumer group when the stream disappears while reading', async () => {
    const keys = r.keys();
    const h = harness(keys);
    await h.consumer.start();
    await r.client.del(keys.relayStream(SUPPLIER));
    await new Promise((res) => setTimeout(res, 250));
    const rel = [relay('sessA', 1)];
    await publish(keys, rel);
    await until(() => totals(h.batches).acked === 1);
    expect(await storedRoot(keys, 'sessA')).toEqual(await expectedRoot(rel));
  });

  it('start creates the group with MKSTREAM, tolerates an existing group, and stops one consumer without the other', async () => {
    const keys = r.keys();
    const a = harness(keys, { cfg: { block_ms: 200 } });
    await a.consumer.start();
    const groups = (await r.client.xinfo('GROUPS', keys.relayStream(SUPPLIER))) as unknown[][];
    expect(groups.map((g) => g[1])).toEqual([keys.consumerGroup()]);
    const registry = a.registry;
    const b = harness(keys, { name: 'miner-b', registry });
    await b.consumer.start();
    await a.consumer.stop();
    expect(a.consumer.isRunning).toBe(false);
    expect(b.consumer.isRunning).toBe(true);
    await a.consumer.stop();
  });

  it.each<[string, Partial<RelayConsumerConfig>]>([
    ['an empty consumer name', { consumer_name: '' }],
    ['a consumer name with a space', { consumer_name: 'a b' }],
    ['a zero batch size', { batch_size: 0 }],
    ['a fractional block time', { block_ms: 1.5 }],
    ['a negative idle timeout', { claim_idle_timeout_ms: -1 }],
    ['a zero reclaim interval', { reclaim_interval_ms: 0 }],
    ['a zero dedup TTL', { dedup_ttl_seconds: 0 }],
    ['an empty supplier', { supplier: '' }],
  ])('refuses %s', (_, bad) => {
    const keys = r.keys();
    expect(
      () =>
        new SupplierRelayConsumer(
          {
            redis: r.client,
            keys,
            log,
            sessions: new SessionStore({ redis: r.client, keys, log }, { ttl_seconds: 1 }),
            registry: new Registry(),
            trie: () => Promise.reject(new Error('unused')),
          },
          { supplier: SUPPLIER, consumer_name: 'x', ...bad },
        ),
    ).toThrow(InvalidInputError);
  });
});
