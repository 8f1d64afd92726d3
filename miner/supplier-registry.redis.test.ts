/**
 * SupplierRegistryWriter against real Redis: the entries relayers read for each chain answer,
 * what a chain or Redis failure leaves behind, the invalidation a relayer's cache acts on, and
 * bad settings.
 */
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { SupplierStateCache, createCacheMetrics, type SupplierState } from '../cache/index.js';
import { ChainNotFoundError, ChainUnavailableError, type BlockResults } from '../chain/index.js';
import { pb } from '../protocol/index.js';
import { PubSub, createRedisClient } from '../transport/index.js';
import { redisUrl, useRedis } from '../test/helpers/redis.js';
import {
  SupplierRegistryConfigError,
  SupplierRegistryWriter,
  createSupplierRegistryMetrics,
  supplierStateFromChain,
  type SupplierRegistryMetrics,
} from './supplier-registry.js';

const log = pino({ level: 'silent' });
const r = useRedis();
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const OP_A = 'pokt1operatoraaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const OP_B = 'pokt1operatorbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
const OWNER = 'pokt1ownerxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx';
const NOW = 1_795_000_000;

function supplier(
  operator: string,
  services: { id: string; rpc: pb.sharedService.RPCType[] }[],
  unstakeEnd = 0n,
): pb.sharedSupplier.Supplier {
  return pb.sharedSupplier.Supplier.fromPartial({
    ownerAddress: OWNER,
    operatorAddress: operator,
    stake: { denom: 'upokt', amount: '100000000' },
    services: services.map((s) => ({
      serviceId: s.id,
      endpoints: s.rpc.map((rpcType, i) => ({ url: `http://127.0.0.1:${9000 + i}/`, rpcType, configs: [] })),
      revShare: [{ address: OWNER, revSharePercentage: 100n }],
    })),
    unstakeSessionEndHeight: unstakeEnd,
  });
}

/** The chain as the writer sees it: a map of answers, or an error per operator. */
class FakeSupplierChain {
  readonly answers = new Map<string, pb.sharedSupplier.Supplier | Error>();
  calls = 0;
  getBlockResults?: (height: number) => Promise<BlockResults>;
  getSupplier(operator: string): Promise<pb.sharedSupplier.Supplier> {
    this.calls++;
    const a = this.answers.get(operator);
    if (a === undefined) return Promise.reject(new ChainNotFoundError(`supplier ${operator}`, 'not found'));
    if (a instanceof Error) return Promise.reject(a);
    return Promise.resolve(a);
  }
}

function states(pubsub?: PubSub): SupplierStateCache {
  return new SupplierStateCache({
    redis: r.client,
    keys: r.keys(),
    log,
    metrics: createCacheMetrics(new Registry()),
    ...(pubsub !== undefined ? { pubsub } : {}),
  });
}

function writer(
  chain: FakeSupplierChain,
  suppliers: string[],
  opts: { interval?: number; now?: () => number; cache?: SupplierStateCache } = {},
): { w: SupplierRegistryWriter; metrics: SupplierRegistryMetrics } {
  const metrics = createSupplierRegistryMetrics(new Registry());
  const w = new SupplierRegistryWriter(
    {
      chain,
      states: opts.cache ?? states(),
      log,
      metrics,
      instanceId: 'miner-a',
      nowSeconds: opts.now ?? (() => NOW),
    },
    { suppliers, supplier_reconcile_interval_seconds: opts.interval ?? 0 },
  );
  cleanups.push(() => w.stop());
  return { w, metrics };
}

async function stored(operator: string): Promise<unknown> {
  const raw = await r.client.get(r.keys().supplierState(operator));
  return raw === null ? null : JSON.parse(raw);
}

async function resultCounts(m: SupplierRegistryMetrics): Promise<Record<string, number>> {
  return Object.fromEntries((await m.reconciles.get()).values.map((v) => [v.labels['result'], v.value]));
}

const ACTIVE_A: SupplierState = {
  status: 'active',
  staked: true,
  services: ['anvil', 'eth'],
  staked_endpoints: [
    { service_id: 'anvil', rpc_type: 'jsonrpc' },
    { service_id: 'anvil', rpc_type: 'websocket' },
    { service_id: 'eth', rpc_type: 'rest' },
  ],
  unstake_session_end_height: 0,
  operator_address: OP_A,
  owner_address: OWNER,
  last_updated: NOW,
  updated_by: 'miner-a',
};

const NOT_STAKED_B: SupplierState = {
  status: 'not_staked',
  staked: false,
  services: [],
  unstake_session_end_height: 0,
  operator_address: OP_B,
  owner_address: '',
  last_updated: NOW,
  updated_by: 'miner-a',
};

describe('SupplierRegistryWriter', () => {
  it('writes an active entry for a staked supplier and not_staked for an unknown one', async () => {
    const chain = new FakeSupplierChain();
    const { JSON_RPC, WEBSOCKET, REST, UNKNOWN_RPC } = pb.sharedService.RPCType;
    chain.answers.set(
      OP_A,
      supplier(OP_A, [
        { id: 'anvil', rpc: [JSON_RPC, WEBSOCKET, JSON_RPC, UNKNOWN_RPC] },
        { id: 'eth', rpc: [REST] },
      ]),
    );
    const { w, metrics } = writer(chain, [OP_A, OP_B]);
    expect(await w.start()).toEqual([
      { operator: OP_A, result: 'written', state: ACTIVE_A },
      { operator: OP_B, result: 'not_found', state: NOT_STAKED_B },
    ]);
    expect(await stored(OP_A)).toEqual(ACTIVE_A);
    expect(await stored(OP_B)).toEqual(NOT_STAKED_B);
    expect(await resultCounts(metrics)).toEqual({ written: 1, not_found: 1 });
    const gauge = Object.fromEntries(
      (await metrics.suppliers.get()).values.map((v) => [v.labels['status'], v.value]),
    );
    expect(gauge).toEqual({ active: 1, unstaking: 0, not_staked: 1 });
  });

  it('writes unstaking with the end height, and not_staked for a supplier with no services', async () => {
    const chain = new FakeSupplierChain();
    chain.answers.set(OP_A, supplier(OP_A, [{ id: 'anvil', rpc: [pb.sharedService.RPCType.JSON_RPC] }], 40n));
    chain.answers.set(OP_B, supplier(OP_B, []));
    const { w } = writer(chain, [OP_A, OP_B]);
    await w.start();
    expect(await stored(OP_A)).toEqual({
      status: 'unstaking',
      staked: true,
      services: ['anvil'],
      staked_endpoints: [{ service_id: 'anvil', rpc_type: 'jsonrpc' }],
      unstake_session_end_height: 40,
      operator_address: OP_A,
      owner_address: OWNER,
      last_updated: NOW,
      updated_by: 'miner-a',
    });
    expect(await stored(OP_B)).toEqual({
      status: 'not_staked',
      staked: true,
      services: [],
      staked_endpoints: [],
      unstake_session_end_height: 0,
      operator_address: OP_B,
      owner_address: OWNER,
      last_updated: NOW,
      updated_by: 'miner-a',
    });
  });

  it('keeps the last entry when the chain fails, and writes again once it answers', async () => {
    const chain = new FakeSupplierChain();
    chain.answers.set(OP_A, supplier(OP_A, [{ id: 'anvil', rpc: [pb.sharedService.RPCType.JSON_RPC] }]));
    let now = NOW;
    const { w, metrics } = writer(chain, [OP_A], { now: () => now });
    await w.start();
    const before = await stored(OP_A);

    chain.answers.set(OP_A, new ChainUnavailableError('supplier query'));
    now += 120;
    expect(await w.reconcile(OP_A)).toEqual({ operator: OP_A, result: 'error', code: 'CHAIN_UNAVAILABLE' });
    expect(await stored(OP_A)).toEqual(before);

    chain.answers.set(OP_A, supplier(OP_A, [{ id: 'anvil', rpc: [pb.sharedService.RPCType.JSON_RPC] }], 12n));
    const after = await w.reconcile(OP_A);
    expect(after.result).toBe('written');
    expect(await stored(OP_A)).toEqual({
      ...(before as object),
      status: 'unstaking',
      unstake_session_end_height: 12,
      last_updated: NOW + 120,
    });
    expect(await resultCounts(metrics)).toEqual({ written: 2, error: 1 });
  });

  it('does not rewrite an unchanged entry within the interval, and refreshes it after', async () => {
    const chain = new FakeSupplierChain();
    chain.answers.set(OP_A, supplier(OP_A, [{ id: 'anvil', rpc: [pb.sharedService.RPCType.JSON_RPC] }]));
    let now = NOW;
    const { w, metrics } = writer(chain, [OP_A], { interval: 60, now: () => now });
    await w.start();
    now += 30;
    const same = await w.reconcile(OP_A);
    expect(same.result).toBe('unchanged');
    expect((await stored(OP_A)) as SupplierState).toMatchObject({ last_updated: NOW });
    now += 30;
    expect((await w.reconcile(OP_A)).result).toBe('written');
    expect((await stored(OP_A)) as SupplierState).toMatchObject({ last_updated: NOW + 60 });
    expect(await resultCounts(metrics)).toEqual({ written: 2, unchanged: 1 });
  });

  it('publishes the change so a relayer cache reads the new entry', async () => {
    const bus = async (): Promise<PubSub> => {
      const subscriber = await createRedisClient({ url: redisUrl(), connection_name: 'vitest-registry' });
      const pubsub = new PubSub({ publisher: r.client, subscriber, log });
      cleanups.push(() => pubsub.close());
      return pubsub;
    };
    const relayer = states(await bus());
    await relayer.start();
    cleanups.push(() => relayer.close());

    const chain = new FakeSupplierChain();
    chain.answers.set(OP_A, supplier(OP_A, [{ id: 'anvil', rpc: [pb.sharedService.RPCType.JSON_RPC] }]));
    const { w } = writer(chain, [OP_A], { cache: states(await bus()) });
    await w.start();
    await expect.poll(() => relayer.get(OP_A)).toMatchObject({ status: 'active' });

    chain.answers.delete(OP_A);
    await w.reconcile(OP_A);
    await expect.poll(() => relayer.get(OP_A)).toEqual({ ...NOT_STAKED_B, operator_address: OP_A });
  });

  it('reconciles on the interval', async () => {
    const chain = new FakeSupplierChain();
    const { w } = writer(chain, [OP_A], { interval: 0.05 });
    await w.start();
    expect(await stored(OP_A)).toEqual({ ...NOT_STAKED_B, operator_address: OP_A });
    chain.answers.set(OP_A, supplier(OP_A, [{ id: 'anvil', rpc: [pb.sharedService.RPCType.JSON_RPC] }]));
    await expect.poll(() => stored(OP_A), { timeout: 2_000 }).toMatchObject({ status: 'active' });
    await w.stop();
    const calls = chain.calls;
    await new Promise((res) => setTimeout(res, 150));
    expect(chain.calls).toBe(calls);
  });

  it('reconciles suppliers added by setSuppliers at once, and forgets removed ones', async () => {
    const chain = new FakeSupplierChain();
    const { w } = writer(chain, [OP_A]);
    await w.start();
    expect(await w.setSuppliers([OP_B])).toEqual([
      { operator: OP_B, result: 'not_found', state: NOT_STAKED_B },
    ]);
    expect(w.lastWritten(OP_A)).toBeUndefined();
    expect(w.lastWritten(OP_B)).toEqual(NOT_STAKED_B);
  });

  it('leaves the entry alone and reports the error when Redis refuses the write', async () => {
    const chain = new FakeSupplierChain();
    const failing = { put: () => Promise.reject(Object.assign(new Error('OOM'), { code: 'REDIS_OOM' })) };
    const metrics = createSupplierRegistryMetrics(new Registry());
    const w = new SupplierRegistryWriter(
      { chain, states: failing, log, metrics, instanceId: 'miner-a', nowSeconds: () => NOW },
      { suppliers: [OP_A], supplier_reconcile_interval_seconds: 0 },
    );
    expect(await w.start()).toEqual([{ operator: OP_A, result: 'error', code: 'REDIS_OOM' }]);
    await w.stop();
    expect(w.lastWritten(OP_A)).toBeUndefined();
  });

  it.each([
    [{ suppliers: [''] }, 'supplier registry suppliers[0]: must be a non-empty operator address'],
    [
      { suppliers: [OP_A, 'pokt1 space'] },
      'supplier registry suppliers[1]: must be a non-empty operator address',
    ],
    [{ suppliers: ['a:b'] }, 'supplier registry suppliers[0]: must be a non-empty operator address'],
    [
      { suppliers: [OP_A], supplier_reconcile_interval_seconds: Number.NaN },
      'supplier registry supplier_reconcile_interval_seconds: must be a number of seconds, got NaN',
    ],
  ])('refuses the setting %j', (cfg, message) => {
    const make = (): SupplierRegistryWriter =>
      new SupplierRegistryWriter(
        {
          chain: new FakeSupplierChain(),
          states: states(),
          log,
          metrics: createSupplierRegistryMetrics(new Registry()),
          instanceId: 'x',
        },
        cfg,
      );
    expect(make).toThrow(SupplierRegistryConfigError);
    expect(make).toThrow(message);
  });

  it('reconciles the suppliers named in a block’s supplier-change events, and only them', async () => {
    const chain = new FakeSupplierChain();
    const OP_C = 'pokt1operatorccccccccccccccccccccccccccccc';
    const blocks = new Map<number, BlockResults>([
      [
        7,
        {
          height: 7,
          finalizeBlockEvents: [
            {
              type: 'pocket.supplier.EventSupplierUnbondingEnd',
              attributes: [{ key: 'supplier', value: JSON.stringify({ operator_address: OP_B }) }],
            },
            { type: 'pocket.proof.EventClaimCreated', attributes: [{ key: 'supplier', value: OP_C }] },
          ],
          txResults: [
            {
              code: 0,
              codespace: '',
              log: '',
              events: [
                {
                  type: 'pocket.tokenomics.EventSupplierSlashed',
                  attributes: [{ key: 'x', value: `"${OP_A}"` }],
                },
              ],
            },
            {
              code: 5,
              codespace: 'supplier',
              log: 'failed',
              events: [
                { type: 'pocket.supplier.EventSupplierStaked', attributes: [{ key: 'x', value: OP_C }] },
              ],
            },
          ],
        },
      ],
      [8, { height: 8, finalizeBlockEvents: [], txResults: [] }],
    ]);
    chain.getBlockResults = (h) => {
      const b = blocks.get(h);
      return b === undefined
        ? Promise.reject(new ChainUnavailableError(`block results ${h}`))
        : Promise.resolve(b);
    };
    const { w, metrics } = writer(chain, [OP_A, OP_B, OP_C], { interval: 60 });
    expect(await w.checkBlock(7)).toEqual([]);
    await w.start();
    chain.answers.set(OP_A, supplier(OP_A, [{ id: 'anvil', rpc: [pb.sharedService.RPCType.JSON_RPC] }], 20n));
    const callsBefore = chain.calls;
    expect((await w.checkBlock(7)).map((x) => [x.operator, x.result])).toEqual([
      [OP_A, 'written'],
      [OP_B, 'unchanged'],
    ]);
    expect(chain.calls - callsBefore).toBe(2);
    expect(await stored(OP_A)).toMatchObject({ status: 'unstaking', unstake_session_end_height: 20 });
    expect(await w.checkBlock(8)).toEqual([]);
    expect(await w.checkBlock(9)).toEqual([]);
    expect(
      Object.fromEntries((await metrics.eventScans.get()).values.map((v) => [v.labels['result'], v.value])),
    ).toEqual({ ok: 2, error: 1 });
  });

  it('does not scan blocks without a block-results reader', async () => {
    const chain = new FakeSupplierChain();
    const { w } = writer(chain, [OP_A]);
    await w.start();
    const calls = chain.calls;
    expect(await w.checkBlock(3)).toEqual([]);
    expect(chain.calls).toBe(calls);
  });

  it('takes the operator from the query when the chain record carries none', () => {
    const s = supplier('', [
      { id: 'anvil', rpc: [pb.sharedService.RPCType.GRPC, pb.sharedService.RPCType.COMET_BFT] },
    ]);
    expect(supplierStateFromChain(OP_A, s)).toEqual({
      status: 'active',
      staked: true,
      services: ['anvil'],
      staked_endpoints: [
        { service_id: 'anvil', rpc_type: 'grpc' },
        { service_id: 'anvil', rpc_type: 'cometbft' },
      ],
      unstake_session_end_height: 0,
      operator_address: OP_A,
      owner_address: OWNER,
    });
  });
});
