import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { RelayMinerError } from '../core/index.js';
import { pb, sessionWindows, type SessionWindows } from '../protocol/index.js';
import { useRedis } from '../test/helpers/redis.js';
import { MinerLedger } from './ledger.js';
import {
  SessionLifecycle,
  SessionWindowResolver,
  decideTransition,
  sessionParamsFromPb,
  type SessionGroup,
} from './lifecycle.js';
import { createMinerLifecycleMetrics } from './miner-metrics.js';
import { SessionStore, type SessionState } from './session-store.js';

const r = useRedis();
const log = pino({ level: 'silent' });
const SUPPLIER = 'pokt1supplier';

/** N = 4, claim window [end+2, end+6], proof window [end+6, end+10]. */
const SHARED: pb.sharedParams.Params = pb.sharedParams.Params.fromPartial({
  numBlocksPerSession: 4n,
  gracePeriodEndOffsetBlocks: 1n,
  claimWindowOpenOffsetBlocks: 1n,
  claimWindowCloseOffsetBlocks: 4n,
  proofWindowOpenOffsetBlocks: 0n,
  proofWindowCloseOffsetBlocks: 4n,
  computeUnitsToTokensMultiplier: 42_000_000n,
  computeUnitCostGranularity: 1_000_000n,
});
const W4: SessionWindows = sessionWindows(sessionParamsFromPb(SHARED), 4);

describe('decideTransition', () => {
  it('follows the transition table at every height around the windows', () => {
    const states: SessionState[] = ['active', 'claiming', 'claimed', 'proving'];
    const table = Object.fromEntries(
      states.map((s) => [
        s,
        [5, 6, 9, 10, 13, 14].map((h) => {
          const d = decideTransition(s, W4, h);
          return d === undefined ? '-' : `${d.to}${d.job ? `+${d.job}` : ''}${d.lost ? `!${d.lost}` : ''}`;
        }),
      ]),
    );
    expect(table).toEqual({
      active: [
        '-',
        'claiming+claim',
        'claiming+claim',
        'claim_window_closed!claim_expired',
        'claim_window_closed!claim_expired',
        'claim_window_closed!claim_expired',
      ],
      claiming: [
        '-',
        '-',
        '-',
        'claim_window_closed!claim_expired',
        'claim_window_closed!claim_expired',
        'claim_window_closed!claim_expired',
      ],
      claimed: ['-', '-', '-', 'proving+proof', 'proving+proof', 'proof_window_closed!proof_missing'],
      proving: ['-', '-', '-', '-', '-', 'proof_window_closed!proof_missing'],
    });
  });

  it('never moves a terminal state', () => {
    for (const s of [
      'proved',
      'probabilistic_proved',
      'claim_skipped',
      'claim_window_closed',
      'claim_tx_error',
      'claim_missing',
      'proof_window_closed',
      'proof_tx_error',
    ] as const) {
      expect(decideTransition(s, W4, 100)).toBeUndefined();
    }
  });
});

describe('SessionWindowResolver', () => {
  it('uses live params until the session ends and ParamsAtHeight(end) after, cached', async () => {
    const calls: string[] = [];
    const later = { ...SHARED, claimWindowCloseOffsetBlocks: 8n };
    const resolver = new SessionWindowResolver({
      getSharedParams: () => {
        calls.push('live');
        return Promise.resolve(later);
      },
      getSharedParamsAtHeight: (h: number) => {
        calls.push(`at ${h}`);
        return Promise.resolve(SHARED);
      },
    });
    expect((await resolver.windows(4, 3)).claim_window_close_height).toBe(14);
    expect((await resolver.windows(8, 3)).claim_window_close_height).toBe(18);
    expect((await resolver.windows(4, 4)).claim_window_close_height).toBe(14);
    expect(await resolver.windows(4, 5)).toEqual(W4);
    expect(await resolver.windows(4, 9)).toEqual(W4);
    expect(calls).toEqual(['live', 'live', 'at 4']);
  });

  it('does not cache a failed lookup', async () => {
    let fail = true;
    const resolver = new SessionWindowResolver({
      getSharedParams: () => Promise.resolve(SHARED),
      getSharedParamsAtHeight: () =>
        fail ? Promise.reject(new Error('node down')) : Promise.resolve(SHARED),
    });
    await expect(resolver.windows(4, 6)).rejects.toThrow('node down');
    fail = false;
    expect(await resolver.windows(4, 6)).toEqual(W4);
  });
});

interface Harness {
  lc: SessionLifecycle;
  store: SessionStore;
  claims: SessionGroup[];
  proofs: SessionGroup[];
  published: string[];
  registry: Registry;
  /** Session ids whose claim job answers "undecided" (fault) the next time. */
  failClaims: Set<string>;
  gate: { wait?: Promise<void> };
  /** While set, claim jobs wait for it; `running` counts jobs inside the claimer, `peak` the most at once. */
  jobGate: { wait?: Promise<void>; running: number; peak: number };
}

function harness(opts: { maxConcurrent?: number; suppliers?: string[] } = {}): Harness {
  const registry = new Registry();
  const metrics = createMinerLifecycleMetrics(registry);
  const store = new SessionStore({ ...r.deps(), log }, { ttl_seconds: 600 });
  const claims: SessionGroup[] = [];
  const proofs: SessionGroup[] = [];
  const published: string[] = [];
  const failClaims = new Set<string>();
  const gate: { wait?: Promise<void> } = {};
  const jobGate: Harness['jobGate'] = { running: 0, peak: 0 };
  const chain = {
    getSharedParams: () => Promise.resolve(SHARED),
    getSharedParamsAtHeight: async () => {
      if (gate.wait !== undefined) await gate.wait;
      return SHARED;
    },
  };
  const lc = new SessionLifecycle(
    {
      store,
      windows: new SessionWindowResolver(chain),
      claimer: {
        runClaimGroup: async (g) => {
          claims.push(g);
          jobGate.running++;
          jobGate.peak = Math.max(jobGate.peak, jobGate.running);
          if (jobGate.wait !== undefined) await jobGate.wait;
          jobGate.running--;
          return g.sessions.map((s) => s.session_id).filter((id) => failClaims.delete(id));
        },
      },
      prover: {
        runProofGroup: (g) => {
          proofs.push(g);
          return Promise.resolve([]);
        },
      },
      ledger: new MinerLedger({ ...r.deps(), metrics }),
      keys: r.keys(),
      publishMeterCleanup: (m) => {
        published.push(m);
        return Promise.resolve();
      },
      suppliers: () => opts.suppliers ?? [SUPPLIER],
      log,
      metrics,
    },
    opts.maxConcurrent === undefined ? {} : { max_concurrent_transitions: opts.maxConcurrent },
  );
  return { lc, store, claims, proofs, published, registry, failClaims, gate, jobGate };
}

async function addSession(store: SessionStore, id: string, end = 4, relays = 3): Promise<void> {
  await store.ensure({
    session_id: id,
    supplier_operator_address: SUPPLIER,
    service_id: 'anvil',
    application_address: 'pokt1app',
    session_start_height: end - 3,
    session_end_height: end,
  });
  if (relays > 0) await store.addRelays(SUPPLIER, id, relays, BigInt(relays) * 2n);
}

const HASH = new Uint8Array(32);

async function block(h: Harness, height: number): Promise<void> {
  await h.lc.onBlock(height, HASH);
  await h.lc.idle();
}

async function states(store: SessionStore): Promise<Record<string, string>> {
  const list = await store.list(SUPPLIER);
  return Object.fromEntries(list.map((s) => [s.session_id, s.state]).sort());
}

async function series(registry: Registry, name: string): Promise<unknown[]> {
  return (await registry.getSingleMetric(name)!.get()).values.map((v) => ({
    labels: v.labels,
    value: v.value,
  }));
}

describe('SessionLifecycle', () => {
  it('writes claiming before queuing one claim job per end height and publishes the meter cleanup', async () => {
    const h = harness();
    await addSession(h.store, 'a');
    await addSession(h.store, 'b');
    await addSession(h.store, 'c', 8);
    await block(h, 5);
    expect(h.claims).toEqual([]);
    await block(h, 6);
    expect(await states(h.store)).toEqual({ a: 'claiming', b: 'claiming', c: 'active' });
    expect(
      h.claims.map((g) => ({
        end: g.sessionEndHeight,
        height: g.height,
        ids: g.sessions.map((s) => s.session_id).sort(),
        states: g.sessions.map((s) => s.state),
      })),
    ).toEqual([{ end: 4, height: 6, ids: ['a', 'b'], states: ['claiming', 'claiming'] }]);
    expect(h.claims[0]!.windows).toEqual(W4);
    expect(h.published.sort()).toEqual([`a|${SUPPLIER}`, `b|${SUPPLIER}`]);
    // The next block does not queue the same sessions again.
    await block(h, 7);
    expect(h.claims.length).toBe(1);
  });

  it('moves claimed sessions to proving at proof window open and times out the rest', async () => {
    const h = harness();
    await addSession(h.store, 'claimed');
    await addSession(h.store, 'stuck');
    await addSession(h.store, 'late');
    await h.store.transition(SUPPLIER, 'claimed', ['active'], 'claimed', { claim_tx_hash: 'AA' });
    await h.store.transition(SUPPLIER, 'stuck', ['active'], 'claiming', {});
    await block(h, 9);
    expect(h.claims.map((g) => g.sessions.map((s) => s.session_id).sort())).toEqual([['late', 'stuck']]);
    h.claims.length = 0;
    await block(h, 10);
    expect(await states(h.store)).toEqual({
      claimed: 'proving',
      late: 'claim_window_closed',
      stuck: 'claim_window_closed',
    });
    expect(h.proofs.map((g) => g.sessions.map((s) => s.session_id))).toEqual([['claimed']]);
    await block(h, 14);
    expect(await states(h.store)).toEqual({
      claimed: 'proof_window_closed',
      late: 'claim_window_closed',
      stuck: 'claim_window_closed',
    });
    const ledger = new MinerLedger({ ...r.deps(), metrics: createMinerLifecycleMetrics(new Registry()) });
    expect(await ledger.get(SUPPLIER, 'stuck')).toEqual({ relays: { 'lost:claim_expired': 3n }, upokt: {} });
    expect(await ledger.get(SUPPLIER, 'claimed')).toEqual({
      relays: { 'lost:proof_missing': 3n },
      upokt: {},
    });
  });

  it('restarts claiming/proving sessions without a tx hash on its first pass only', async () => {
    const h = harness();
    await addSession(h.store, 'c1');
    await addSession(h.store, 'c2');
    await addSession(h.store, 'p1');
    await h.store.transition(SUPPLIER, 'c1', ['active'], 'claiming');
    await h.store.transition(SUPPLIER, 'c2', ['active'], 'claiming', { claim_tx_hash: 'AA' });
    await h.store.transition(SUPPLIER, 'p1', ['active'], 'proving', { claim_tx_hash: 'BB' });
    await block(h, 11);
    expect(h.claims).toEqual([]);
    expect(h.proofs.map((g) => g.sessions.map((s) => s.session_id))).toEqual([['p1']]);
    await block(h, 12);
    expect(h.proofs.length).toBe(1);
    expect(await series(h.registry, 'ha_miner_lifecycle_restarts_total')).toEqual([
      { labels: { phase: 'proof' }, value: 1 },
    ]);
    // A re-taken supplier is restarted again.
    h.lc.release(SUPPLIER);
    await block(h, 13);
    expect(h.proofs.length).toBe(2);
  });

  it('retries a session its job could not decide on the next block', async () => {
    const h = harness();
    await addSession(h.store, 'a');
    h.failClaims.add('a');
    await block(h, 6);
    await block(h, 7);
    await block(h, 8);
    expect(h.claims.map((g) => g.height)).toEqual([6, 7]);
  });

  it('coalesces blocks that arrive during a pass: only the newest runs next', async () => {
    const h = harness();
    await addSession(h.store, 'a', 4, 1);
    let release!: () => void;
    h.gate.wait = new Promise((res) => (release = res));
    const first = h.lc.onBlock(6, HASH);
    const second = h.lc.onBlock(7, HASH);
    const third = h.lc.onBlock(8, HASH);
    expect(second).toBe(first);
    expect(third).toBe(first);
    release();
    await first;
    await h.lc.idle();
    expect(h.lc.height).toBe(8);
    expect(h.claims.map((g) => g.height)).toEqual([6]);
    expect(await series(h.registry, 'ha_miner_lifecycle_passes_total')).toEqual([
      { labels: { outcome: 'coalesced' }, value: 2 },
      { labels: { outcome: 'ok' }, value: 2 },
    ]);
    // An older block after a newer one is ignored.
    await block(h, 7);
    expect(h.lc.height).toBe(8);
  });

  it('survives a failing pass and counts it', async () => {
    const h = harness({ suppliers: ['bad supplier'] });
    await block(h, 6);
    expect(await series(h.registry, 'ha_miner_lifecycle_passes_total')).toEqual([
      { labels: { outcome: 'error' }, value: 1 },
    ]);
  });

  it('refuses a non-positive concurrency', () => {
    expect(() => harness({ maxConcurrent: 0 })).toThrow(RelayMinerError);
    expect(() => harness({ maxConcurrent: 1.5 })).toThrow(RelayMinerError);
  });

  it('runs at most max_concurrent_transitions jobs at once', async () => {
    const h = harness({ maxConcurrent: 1 });
    // Three end heights whose claim windows are all open at block 14: three groups.
    for (const [id, end] of [
      ['a', 10],
      ['b', 12],
      ['c', 9],
    ] as const) {
      await addSession(h.store, id, end);
    }
    let release!: () => void;
    h.jobGate.wait = new Promise((res) => (release = res));
    await h.lc.onBlock(14, HASH);
    expect(h.claims.length).toBe(1);
    release();
    await h.lc.idle();
    expect({
      groups: h.claims.map((g) => g.sessionEndHeight).sort((a, b) => a - b),
      peak: h.jobGate.peak,
    }).toEqual({
      groups: [9, 10, 12],
      peak: 1,
    });
  });
});
