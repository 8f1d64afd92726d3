import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import pino, { type Logger } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { hexToBytes } from '../core/index.js';
import { SupplierStateCache, createCacheMetrics, type SupplierState } from '../cache/index.js';
import { addressFromPrivateKey } from '../protocol/index.js';
import { selectBackend } from '../rings/index.js';
import { useRedis } from '../test/helpers/redis.js';
import { RelayPipelineMetrics } from './pipeline-metrics.js';
import { RelaySigner } from './signer.js';
import { SupplierGate, transportLabel, type GateDecision } from './supplier-gate.js';

const r = useRedis();
const silent = pino({ level: 'silent' });
const OWNED_KEY = hexToBytes('31'.repeat(32));
const OWNED = addressFromPrivateKey(OWNED_KEY);
const OTHER = addressFromPrivateKey(hexToBytes('32'.repeat(32)));
const signer = new RelaySigner({ backend: selectBackend('native'), log: silent }, [OWNED_KEY]);

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

function state(operator: string, over: Partial<SupplierState> = {}): SupplierState {
  return {
    status: 'active',
    staked: true,
    services: ['anvil'],
    staked_endpoints: [{ service_id: 'anvil', rpc_type: 'jsonrpc' }],
    unstake_session_end_height: 0,
    operator_address: operator,
    owner_address: 'pokt1owner',
    last_updated: 1_763_900_000,
    ...over,
  };
}

async function write(
  entry: SupplierState | Record<string, unknown> | string,
  operator: string,
): Promise<void> {
  const raw = typeof entry === 'string' ? entry : JSON.stringify(entry);
  await r.client.set(r.keys().supplierState(operator), raw);
}

interface Built {
  gate: SupplierGate;
  metrics: RelayPipelineMetrics;
  lines: Record<string, unknown>[];
}

function build(opts: { failBehavior?: 'open' | 'closed'; redis?: Redis } = {}): Built {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  const log: Logger = pino({ level: 'warn' }, sink);
  const states = new SupplierStateCache({
    redis: opts.redis ?? r.client,
    keys: r.keys(),
    log: silent,
    metrics: createCacheMetrics(new Registry()),
  });
  cleanups.push(() => states.close());
  const metrics = new RelayPipelineMetrics(new Registry());
  const gate = new SupplierGate(
    { states, suppliers: signer, log, metrics },
    { fail_behavior: opts.failBehavior ?? 'open' },
  );
  return { gate, metrics, lines };
}

async function optimisticCounts(m: RelayPipelineMetrics): Promise<unknown[]> {
  return (await m.relaysServedOptimistically.get()).values.map((v) => ({ labels: v.labels, value: v.value }));
}

async function undeclaredCounts(m: RelayPipelineMetrics): Promise<unknown[]> {
  return (await m.undeclaredTransportServed.get()).values.map((v) => ({ labels: v.labels, value: v.value }));
}

/** A client whose every command fails at once, as when Redis is down. */
function deadRedis(): Redis {
  const dead = new Redis({
    host: '127.0.0.1',
    port: 1,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  cleanups.push(() => dead.disconnect());
  return dead;
}

describe('SupplierGate: registry entries (relayer.md §3.1)', () => {
  it('serves a staked, active supplier listed for the service', async () => {
    await write(state(OTHER), OTHER);
    const { gate, metrics } = build();
    expect(await gate.check(OTHER, 'anvil', 'jsonrpc')).toEqual({ ok: true, optimistic: false });
    expect(await optimisticCounts(metrics)).toEqual([]);
    expect(await undeclaredCounts(metrics)).toEqual([]);
  });

  it('serves an unstaking supplier that still lists the service', async () => {
    await write(state(OTHER, { status: 'unstaking', unstake_session_end_height: 40 }), OTHER);
    expect(await build().gate.check(OTHER, 'anvil', 'jsonrpc')).toEqual({ ok: true, optimistic: false });
  });

  it('refuses an entry with status not_staked', async () => {
    await write(state(OTHER, { status: 'not_staked', staked: false, services: [] }), OTHER);
    expect(await build().gate.check(OTHER, 'anvil', 'jsonrpc')).toEqual<GateDecision>({
      ok: false,
      reason: 'supplier_inactive',
      message: `supplier ${OTHER} is not_staked`,
    });
  });

  it('refuses an entry with staked=false even when its status says active', async () => {
    await write(state(OTHER, { staked: false }), OTHER);
    expect(await build().gate.check(OTHER, 'anvil', 'jsonrpc')).toEqual<GateDecision>({
      ok: false,
      reason: 'supplier_inactive',
      message: `supplier ${OTHER} is not_staked`,
    });
  });

  it('refuses an entry with staked=true but status not_staked', async () => {
    await write(state(OTHER, { status: 'not_staked' }), OTHER);
    expect(await build().gate.check(OTHER, 'anvil', 'jsonrpc')).toEqual<GateDecision>({
      ok: false,
      reason: 'supplier_inactive',
      message: `supplier ${OTHER} is not_staked`,
    });
  });

  it('refuses a staked entry without services', async () => {
    await write(state(OTHER, { status: 'unstaking', services: [] }), OTHER);
    expect(await build().gate.check(OTHER, 'anvil', 'jsonrpc')).toEqual<GateDecision>({
      ok: false,
      reason: 'no_services',
      message: `supplier ${OTHER} has no services registered`,
    });
  });

  it('refuses a service the entry does not list', async () => {
    await write(state(OTHER, { services: ['eth', 'base'] }), OTHER);
    expect(await build().gate.check(OTHER, 'anvil', 'jsonrpc')).toEqual<GateDecision>({
      ok: false,
      reason: 'wrong_service',
      message: `supplier ${OTHER} not staked for service anvil`,
    });
  });

  it('serves a supplier with no entry optimistically when its key is held', async () => {
    const { gate, metrics } = build();
    expect(await gate.check(OWNED, 'anvil', 'rest')).toEqual({ ok: true, optimistic: true });
    expect(await gate.check(OWNED, 'anvil', 'rest')).toEqual({ ok: true, optimistic: true });
    expect(await optimisticCounts(metrics)).toEqual([
      { labels: { service_id: 'anvil', rpc_type: 'rest' }, value: 2 },
    ]);
  });

  it('refuses a supplier with no entry whose key is not held', async () => {
    const { gate, metrics } = build();
    expect(await gate.check(OTHER, 'anvil', 'jsonrpc')).toEqual<GateDecision>({
      ok: false,
      reason: 'supplier_not_found',
      message: `supplier ${OTHER} not registered with any miner`,
    });
    expect(await optimisticCounts(metrics)).toEqual([]);
  });

  it('reads a staked+active entry without services as a miss (corrupt), then applies the key rule', async () => {
    await write(state(OWNED, { services: [] }), OWNED);
    await write(state(OTHER, { services: [] }), OTHER);
    const { gate } = build();
    expect(await gate.check(OWNED, 'anvil', 'jsonrpc')).toEqual({ ok: true, optimistic: true });
    expect(await gate.check(OTHER, 'anvil', 'jsonrpc')).toEqual<GateDecision>({
      ok: false,
      reason: 'supplier_not_found',
      message: `supplier ${OTHER} not registered with any miner`,
    });
  });

  it('reads an entry that is not SupplierState JSON as a miss', async () => {
    await write('{"status":"active"', OTHER);
    await write({ status: 'sleeping', staked: true }, OWNED);
    const { gate } = build();
    expect(await gate.check(OTHER, 'anvil', 'jsonrpc')).toEqual<GateDecision>({
      ok: false,
      reason: 'supplier_not_found',
      message: `supplier ${OTHER} not registered with any miner`,
    });
    expect(await gate.check(OWNED, 'anvil', 'jsonrpc')).toEqual({ ok: true, optimistic: true });
  });
});

describe('SupplierGate: Redis unreadable', () => {
  it('fail-open serves an owned supplier optimistically (upstream refuses here)', async () => {
    const { gate, metrics } = build({ failBehavior: 'open', redis: deadRedis() });
    expect(await gate.check(OWNED, 'anvil', 'jsonrpc')).toEqual({ ok: true, optimistic: true });
    expect(await optimisticCounts(metrics)).toEqual([
      { labels: { service_id: 'anvil', rpc_type: 'jsonrpc' }, value: 1 },
    ]);
  });

  it('fail-open refuses a supplier whose key is not held', async () => {
    const { gate, metrics } = build({ failBehavior: 'open', redis: deadRedis() });
    expect(await gate.check(OTHER, 'anvil', 'jsonrpc')).toEqual<GateDecision>({
      ok: false,
      reason: 'supplier_cache_error',
      message: 'failed to verify supplier state',
    });
    expect(await optimisticCounts(metrics)).toEqual([]);
  });

  it('fail-closed refuses even an owned supplier', async () => {
    const { gate, metrics } = build({ failBehavior: 'closed', redis: deadRedis() });
    expect(await gate.check(OWNED, 'anvil', 'jsonrpc')).toEqual<GateDecision>({
      ok: false,
      reason: 'supplier_cache_error',
      message: 'failed to verify supplier state',
    });
    expect(await optimisticCounts(metrics)).toEqual([]);
  });

  it('fail-closed refuses after a client was closed', async () => {
    const closed = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, enableOfflineQueue: false });
    await closed.connect();
    await closed.quit();
    const { gate } = build({ failBehavior: 'closed', redis: closed });
    expect(await gate.check(OWNED, 'anvil', 'jsonrpc')).toEqual<GateDecision>({
      ok: false,
      reason: 'supplier_cache_error',
      message: 'failed to verify supplier state',
    });
  });
});

describe('SupplierGate: undeclared transport (relayer.md §3 step 11)', () => {
  it('serves, counts every occurrence and warns once per (supplier, service, transport)', async () => {
    await write(state(OTHER), OTHER);
    await write(state(OWNED), OWNED);
    const { gate, metrics, lines } = build();
    for (let i = 0; i < 3; i++) {
      expect(await gate.check(OTHER, 'anvil', 'rest')).toEqual({ ok: true, optimistic: false });
    }
    expect(await gate.check(OWNED, 'anvil', 'rest')).toEqual({ ok: true, optimistic: false });
    expect(await gate.check(OTHER, 'anvil', 'websocket')).toEqual({ ok: true, optimistic: false });
    expect(await undeclaredCounts(metrics)).toEqual([
      { labels: { service_id: 'anvil', rpc_type: 'rest' }, value: 4 },
      { labels: { service_id: 'anvil', rpc_type: 'websocket' }, value: 1 },
    ]);
    expect(
      lines.map((l) => ({
        level: l['level'],
        supplier: l['supplier'],
        svc: l['service_id'],
        t: l['rpc_type'],
      })),
    ).toEqual([
      { level: 40, supplier: OTHER, svc: 'anvil', t: 'rest' },
      { level: 40, supplier: OWNED, svc: 'anvil', t: 'rest' },
      { level: 40, supplier: OTHER, svc: 'anvil', t: 'websocket' },
    ]);
  });

  it('is silent for a declared transport, whatever its case', async () => {
    await write(state(OTHER), OTHER);
    const { gate, metrics, lines } = build();
    expect(await gate.check(OTHER, 'anvil', 'jsonrpc')).toEqual({ ok: true, optimistic: false });
    expect(await gate.check(OTHER, 'anvil', 'JSONRPC')).toEqual({ ok: true, optimistic: false });
    expect(await undeclaredCounts(metrics)).toEqual([]);
    expect(lines).toEqual([]);
  });

  it('does not match an endpoint declared for another service', async () => {
    await write(
      state(OTHER, {
        services: ['anvil', 'eth'],
        staked_endpoints: [{ service_id: 'eth', rpc_type: 'rest' }],
      }),
      OTHER,
    );
    const { gate, metrics } = build();
    expect(await gate.check(OTHER, 'anvil', 'rest')).toEqual({ ok: true, optimistic: false });
    expect(await undeclaredCounts(metrics)).toEqual([
      { labels: { service_id: 'anvil', rpc_type: 'rest' }, value: 1 },
    ]);
  });

  it('is silent when the entry lists no endpoints (older miner) or an empty list', async () => {
    const { staked_endpoints: _omit, ...withoutEndpoints } = state(OTHER);
    await write(withoutEndpoints, OTHER);
    await write(state(OWNED, { staked_endpoints: [] }), OWNED);
    const { gate, metrics, lines } = build();
    expect(await gate.check(OTHER, 'anvil', 'grpc')).toEqual({ ok: true, optimistic: false });
    expect(await gate.check(OWNED, 'anvil', 'grpc')).toEqual({ ok: true, optimistic: false });
    expect(await undeclaredCounts(metrics)).toEqual([]);
    expect(lines).toEqual([]);
  });

  it('is not checked for an optimistic serve (no entry to compare with)', async () => {
    const { gate, metrics } = build();
    expect(await gate.check(OWNED, 'anvil', 'grpc')).toEqual({ ok: true, optimistic: true });
    expect(await undeclaredCounts(metrics)).toEqual([]);
  });

  it('labels a transport name outside the known set as other', async () => {
    await write(state(OTHER), OTHER);
    const { gate, metrics } = build();
    expect(await gate.check(OTHER, 'anvil', 'made-up-type')).toEqual({ ok: true, optimistic: false });
    expect(await undeclaredCounts(metrics)).toEqual([
      { labels: { service_id: 'anvil', rpc_type: 'other' }, value: 1 },
    ]);
    expect(['jsonrpc', 'REST', 'websocket', 'grpc', 'cometbft', '', 'x'].map(transportLabel)).toEqual([
      'jsonrpc',
      'rest',
      'websocket',
      'grpc',
      'cometbft',
      'other',
      'other',
    ]);
  });
});
