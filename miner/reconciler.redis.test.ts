import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { RelayMinerError } from '../core/index.js';
import { useRedis } from '../test/helpers/redis.js';
import { createMinerLifecycleMetrics } from './miner-metrics.js';
import { SessionWindowResolver } from './lifecycle.js';
import {
  InclusionReconciler,
  RebroadcastStore,
  decodeStoredMessage,
  mayResend,
  type StoredMessage,
} from './reconciler.js';

const r = useRedis();
const SUPPLIER = 'pokt1supplier';

function entry(over: Partial<StoredMessage> = {}): StoredMessage {
  return {
    sessionId: 's1',
    msg: new Uint8Array([1, 2, 3]),
    submitHeight: 6,
    txHash: 'AA',
    originalTxHash: 'AA',
    serviceId: 'anvil',
    resends: 0,
    ...over,
  };
}

describe('mayResend', () => {
  const gate = { max_rebroadcasts: 1, rebroadcast_safety_blocks: 1 };

  it('waits for the window midpoint after a broadcast that got a tx hash', () => {
    // submit 6, close 10: threshold 6 + 2 = 8, last allowed height 10 − 1 − 1 = 8.
    expect([6, 7, 8, 9, 10].map((h) => mayResend(entry(), h, 10, gate))).toEqual([
      false,
      false,
      true,
      false,
      false,
    ]);
  });

  it('resends at submit + 1 when the original never got a tx hash', () => {
    expect([6, 7, 8].map((h) => mayResend(entry({ txHash: '' }), h, 10, gate))).toEqual([false, true, true]);
  });

  it('stops at the cap, and 0 observes only', () => {
    expect(mayResend(entry({ resends: 1 }), 8, 10, gate)).toBe(false);
    expect(mayResend(entry(), 8, 10, { ...gate, max_rebroadcasts: 0 })).toBe(false);
    expect(mayResend(entry({ resends: 1 }), 8, 20, { ...gate, max_rebroadcasts: 2 })).toBe(false);
    expect(mayResend(entry({ resends: 1 }), 13, 20, { ...gate, max_rebroadcasts: 2 })).toBe(true);
  });

  it('keeps the safety margin before close', () => {
    expect(mayResend(entry({ txHash: '' }), 7, 10, { ...gate, rebroadcast_safety_blocks: 3 })).toBe(false);
    expect(mayResend(entry({ txHash: '' }), 9, 10, { ...gate, rebroadcast_safety_blocks: 0 })).toBe(true);
  });
});

describe('decodeStoredMessage', () => {
  it('reads the upstream JSON shape', () => {
    expect(decodeStoredMessage('s1', '{"m":"AQID","h":6,"t":"AA","o":"AA","s":"anvil","n":0}')).toEqual(
      entry(),
    );
  });

  it('refuses anything else', () => {
    for (const bad of [
      'not json',
      'null',
      '[]',
      '{"h":6,"t":"AA","o":"AA","s":"anvil","n":0}',
      '{"m":"AQID","h":"6","t":"AA","o":"AA","s":"anvil","n":0}',
      '{"m":"AQID","h":6,"t":1,"o":"AA","s":"anvil","n":0}',
      '{"m":"AQID","h":6,"t":"AA","o":"AA","s":"anvil","n":0.5}',
      '{"m":"AQID","h":6,"t":"AA","o":"AA","n":0}',
    ]) {
      expect(decodeStoredMessage('s1', bad)).toBeUndefined();
    }
  });
});

describe('RebroadcastStore', () => {
  it('stores a tx, lists its group, updates and finishes entries with submission records', async () => {
    const store = new RebroadcastStore(r.deps());
    const k = r.keys();
    await store.save(
      'claim',
      SUPPLIER,
      4,
      [
        { sessionId: 's1', msg: new Uint8Array([1, 2, 3]), serviceId: 'anvil' },
        { sessionId: 's2', msg: new Uint8Array([9]), serviceId: 'anvil' },
      ],
      6,
      'AA',
    );
    expect(await r.client.hget(k.rebroadcast('claim', SUPPLIER, 4), 's1')).toBe(
      '{"m":"AQID","h":6,"t":"AA","o":"AA","s":"anvil","n":0}',
    );
    expect(await r.client.ttl(k.rebroadcast('claim', SUPPLIER, 4))).toBeGreaterThan(3500);
    expect(await store.groups('claim')).toEqual([{ supplier: SUPPLIER, sessionEndHeight: 4 }]);
    expect(await store.groups('proof')).toEqual([]);
    expect(await store.load('claim', SUPPLIER, 4)).toEqual([
      entry(),
      entry({ sessionId: 's2', msg: new Uint8Array([9]) }),
    ]);

    await store.update('claim', SUPPLIER, 4, entry({ resends: 1, txHash: 'BB' }));
    expect(await store.record(SUPPLIER, 4, 's1')).toEqual({
      phase: 'claim',
      supplier: SUPPLIER,
      session_id: 's1',
      session_end_height: 4,
      submit_height: 6,
      tx_hash: 'BB',
      original_tx_hash: 'AA',
      resends: 1,
    });
    expect(await r.client.ttl(k.txTrack(SUPPLIER, 4, 's1'))).toBeGreaterThan(86_000);

    await store.finish('claim', SUPPLIER, 4, 's1', 'found', 7);
    expect(await store.groups('claim')).toEqual([{ supplier: SUPPLIER, sessionEndHeight: 4 }]);
    await store.finish('claim', SUPPLIER, 4, 's2', 'missing', 11);
    expect(await store.groups('claim')).toEqual([]);
    expect(await store.load('claim', SUPPLIER, 4)).toEqual([]);
    expect(await store.record(SUPPLIER, 4, 's2')).toEqual({
      phase: 'claim',
      supplier: SUPPLIER,
      session_id: 's2',
      session_end_height: 4,
      submit_height: 6,
      tx_hash: 'AA',
      original_tx_hash: 'AA',
      resends: 0,
      outcome: 'missing',
      outcome_height: 11,
    });
  });

  it('skips index members and entries that do not parse', async () => {
    const store = new RebroadcastStore(r.deps());
    const k = r.keys();
    await r.client.sadd(k.rebroadcastIndex('proof'), 'garbage', `${SUPPLIER}|x`, `${SUPPLIER}|8`);
    await r.client.hset(k.rebroadcast('proof', SUPPLIER, 8), 's1', '{"broken":true}');
    expect(await store.groups('proof')).toEqual([{ supplier: SUPPLIER, sessionEndHeight: 8 }]);
    expect(await store.load('proof', SUPPLIER, 8)).toEqual([]);
    expect(await store.record(SUPPLIER, 8, 's1')).toBeUndefined();
  });
});

describe('InclusionReconciler', () => {
  it('refuses negative or fractional settings', () => {
    const metrics = createMinerLifecycleMetrics(new Registry());
    const deps = {
      store: new RebroadcastStore(r.deps()),
      chain: { getAllClaimsBySupplier: () => Promise.resolve([]) },
      tx: {
        createClaims: () => Promise.reject(new Error('unused')),
        submitProofs: () => Promise.reject(new Error('unused')),
      },
      windows: new SessionWindowResolver({
        getSharedParams: () => Promise.reject(new Error('unused')),
        getSharedParamsAtHeight: () => Promise.reject(new Error('unused')),
      }),
      owns: () => true,
      log: pino({ level: 'silent' }),
      metrics,
    };
    expect(() => new InclusionReconciler(deps, { max_rebroadcasts: -1 })).toThrow(RelayMinerError);
    expect(() => new InclusionReconciler(deps, { rebroadcast_safety_blocks: 0.5 })).toThrow(RelayMinerError);
    expect(() => new InclusionReconciler(deps, { max_concurrent: 0 })).toThrow(RelayMinerError);
    expect(() => new InclusionReconciler(deps, { per_group_timeout_ms: 0 })).toThrow(RelayMinerError);
    expect(() => new InclusionReconciler(deps, { max_rebroadcasts: 0 })).not.toThrow();
  });

  it('leaves groups of suppliers it does not own alone', async () => {
    const store = new RebroadcastStore(r.deps());
    await store.save(
      'claim',
      SUPPLIER,
      4,
      [{ sessionId: 's1', msg: new Uint8Array([1]), serviceId: 'a' }],
      6,
      'AA',
    );
    let queried = 0;
    const rec = new InclusionReconciler({
      store,
      chain: {
        getAllClaimsBySupplier: () => {
          queried++;
          return Promise.resolve([]);
        },
      },
      tx: {
        createClaims: () => Promise.reject(new Error('unused')),
        submitProofs: () => Promise.reject(new Error('unused')),
      },
      windows: new SessionWindowResolver({
        getSharedParams: () => Promise.reject(new Error('unused')),
        getSharedParamsAtHeight: () => Promise.reject(new Error('unused')),
      }),
      owns: () => false,
      log: pino({ level: 'silent' }),
      metrics: createMinerLifecycleMetrics(new Registry()),
    });
    expect(await rec.onBlock(20)).toBe(true);
    expect(queried).toBe(0);
    expect((await store.load('claim', SUPPLIER, 4)).length).toBe(1);
  });
});
