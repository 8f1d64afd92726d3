/**
 * The leader miner's relayer-facing effects against the localnet chain simulator and real Redis:
 * block events for every height in order (across a node outage), the supplier registry entries
 * relayers gate on, cache invalidations after a chain change, and service factors as the relay
 * meter parses them.
 */
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BlockEventPublisher,
  BlockEventSubscriber,
  ChainCaches,
  SupplierStateCache,
  createCacheMetrics,
  type SupplierState,
} from '../../cache/index.js';
import { BlockSource, ChainQueryClient } from '../../chain/index.js';
import { RpcServer, startLocalnet, type Localnet } from '../../localnet/index.js';
import { BlockFeed, createBlockFeedMetrics, type BlockFeedConfig } from '../../miner/block-feed.js';
import { LeaderDuties, createLeaderDutiesMetrics } from '../../miner/leader-duties.js';
import { SupplierRegistryWriter, createSupplierRegistryMetrics } from '../../miner/supplier-registry.js';
import { parseServiceFactor } from '../../relayer/index.js';
import { PubSub, createRedisClient } from '../../transport/index.js';
import { redisUrl, useRedis } from '../helpers/redis.js';
import { OWNER, SUPPLIER, testGenesis, testKey } from './localnet-fixtures.js';

const log = pino({ level: 'silent' });
const r = useRedis();
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const NOBODY = testKey('never-staked');
const NOW = 1_800_000_000;
const INSTANCE = 'miner-e2e-1';

async function bus(): Promise<PubSub> {
  const subscriber = await createRedisClient({ url: redisUrl(), connection_name: 'vitest-miner-leader' });
  const pubsub = new PubSub({ publisher: r.client, subscriber, log });
  cleanups.push(() => pubsub.close());
  return pubsub;
}

/** A localnet whose RPC server can be taken down and brought back on the same port. */
interface Node {
  net: Localnet;
  /** Stops answering RPC and drops every websocket; the chain keeps its state. */
  down(): Promise<void>;
  up(): Promise<void>;
}

async function startNode(height: number): Promise<Node> {
  const net = await startLocalnet(testGenesis(), { blockTimeMs: 0 });
  net.chain.advanceTo(height);
  let server: RpcServer | undefined;
  let running = true;
  const node: Node = {
    net,
    async down() {
      if (!running) return;
      running = false;
      if (server === undefined) await net.stop();
      else await server.close();
    },
    async up() {
      server = new RpcServer(net.chain);
      await server.listen({ host: '127.0.0.1', port: net.port });
      running = true;
    },
  };
  cleanups.push(() => node.down());
  return node;
}

interface Leader {
  feed: BlockFeed;
  duties: LeaderDuties;
  registry: SupplierRegistryWriter;
  query: ChainQueryClient;
}

async function startLeader(
  node: Node,
  opts: { suppliers: string[]; feed?: BlockFeedConfig; factors?: Record<string, number> },
): Promise<Leader> {
  const net = node.net;
  const query = new ChainQueryClient(
    { log },
    { query_node_rpc_url: net.url, query_timeout_ms: 2_000, max_retries: 0 },
  );
  cleanups.push(() => query.close());
  const pubsub = await bus();
  const cacheMetrics = createCacheMetrics(new Registry());
  const caches = new ChainCaches({
    redis: r.client,
    keys: r.keys(),
    pubsub,
    log,
    metrics: cacheMetrics,
    chain: query,
  });
  const feed = new BlockFeed(
    {
      openSource: () =>
        new BlockSource(
          { log },
          {
            query_node_rpc_url: net.url,
            websocket_url: net.wsUrl,
            reconnect_initial_delay_ms: 20,
            reconnect_max_delay_ms: 100,
            fetch_timeout_ms: 1_000,
          },
        ),
      fetchBlock: (h) => query.getBlock(h),
      log,
      metrics: createBlockFeedMetrics(new Registry()),
    },
    opts.feed,
  );
  const registry = new SupplierRegistryWriter(
    {
      chain: query,
      states: new SupplierStateCache({ redis: r.client, keys: r.keys(), pubsub, log, metrics: cacheMetrics }),
      log,
      metrics: createSupplierRegistryMetrics(new Registry()),
      instanceId: INSTANCE,
      nowSeconds: () => NOW,
    },
    { suppliers: opts.suppliers, supplier_reconcile_interval_seconds: 0 },
  );
  const duties = new LeaderDuties(
    {
      feed,
      publisher: new BlockEventPublisher({ pubsub, keys: r.keys() }),
      caches,
      chain: query,
      redis: r.client,
      keys: r.keys(),
      pubsub,
      registry,
      log,
      metrics: createLeaderDutiesMetrics(new Registry()),
      nowSeconds: () => NOW,
    },
    { service_factors: opts.factors ?? {} },
  );
  cleanups.push(() => feed.stop());
  cleanups.push(() => duties.stop());
  return { feed, duties, registry, query };
}

/** What a relayer runs: block events and the supplier registry view. */
async function startRelayerView(): Promise<{
  blocks: BlockEventSubscriber;
  heights: number[];
  suppliers: SupplierStateCache;
  caches: ChainCaches;
}> {
  const pubsub = await bus();
  const metrics = createCacheMetrics(new Registry());
  const blocks = new BlockEventSubscriber({ pubsub, keys: r.keys(), log, metrics });
  await blocks.start();
  cleanups.push(() => blocks.close());
  const heights: number[] = [];
  blocks.onBlock('e2e', (ev) => {
    heights.push(ev.height);
  });
  const suppliers = new SupplierStateCache({ redis: r.client, keys: r.keys(), pubsub, log, metrics });
  await suppliers.start();
  cleanups.push(() => suppliers.close());
  const unusedChain = new ChainQueryClient(
    { log },
    { query_node_rpc_url: 'http://127.0.0.1:9', max_retries: 0 },
  );
  cleanups.push(() => unusedChain.close());
  const caches = new ChainCaches({
    redis: r.client,
    keys: r.keys(),
    pubsub,
    log,
    metrics,
    chain: unusedChain,
  });
  await caches.start();
  cleanups.push(() => caches.close());
  return { blocks, heights, suppliers, caches };
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('leader miner against the localnet', () => {
  it('publishes every height in order, including the ones produced while the node was down', async () => {
    const node = await startNode(5);
    const relayer = await startRelayerView();
    const leader = await startLeader(node, { suppliers: [SUPPLIER.address] });
    await leader.duties.start();
    await leader.feed.start();
    await relayer.blocks.waitForHeight(5);

    node.net.advance(3);
    await relayer.blocks.waitForHeight(8);

    await node.down();
    node.net.advance(4);
    await node.up();
    node.net.advance(1);
    await relayer.blocks.waitForHeight(13);
    node.net.advance(1);
    await relayer.blocks.waitForHeight(14);

    await expect.poll(() => relayer.heights).toEqual(range(5, 14));
    const hashes = relayer.blocks.latest()!.hash;
    expect(Buffer.from(hashes)).toEqual(Buffer.from(node.net.chain.block(14)!.hash));
  });

  it('fills the heights missed while the leader was demoted when it is elected again', async () => {
    const node = await startNode(5);
    const relayer = await startRelayerView();
    const leader = await startLeader(node, { suppliers: [SUPPLIER.address] });
    await leader.duties.start();
    await leader.feed.start();
    node.net.advance(1);
    await relayer.blocks.waitForHeight(6);

    await leader.duties.stop();
    await leader.feed.stop();
    node.net.advance(3);
    await leader.duties.start();
    await leader.feed.start();
    await relayer.blocks.waitForHeight(9);
    node.net.advance(1);
    await relayer.blocks.waitForHeight(10);
    await expect.poll(() => relayer.heights).toEqual(range(5, 10));
  });

  it('writes the registry entry relayers gate on for the staked supplier and not_staked for an unknown one', async () => {
    const node = await startNode(5);
    const relayer = await startRelayerView();
    const leader = await startLeader(node, { suppliers: [SUPPLIER.address, NOBODY.address] });
    await leader.duties.start();

    const expected: SupplierState = {
      status: 'active',
      staked: true,
      services: ['anvil'],
      staked_endpoints: [{ service_id: 'anvil', rpc_type: 'jsonrpc' }],
      unstake_session_end_height: 0,
      operator_address: SUPPLIER.address,
      owner_address: OWNER.address,
      last_updated: NOW,
      updated_by: INSTANCE,
    };
    await expect.poll(() => relayer.suppliers.get(SUPPLIER.address)).toEqual(expected);
    await expect
      .poll(() => relayer.suppliers.get(NOBODY.address))
      .toEqual({
        status: 'not_staked',
        staked: false,
        services: [],
        unstake_session_end_height: 0,
        operator_address: NOBODY.address,
        owner_address: '',
        last_updated: NOW,
        updated_by: INSTANCE,
      });

    // The chain starts unbonding the supplier; a supplier-change event triggers a reconcile.
    node.net.chain.supplier(SUPPLIER.address)!.unstakeSessionEndHeight = 12n;
    expect((await leader.registry.reconcile(SUPPLIER.address)).result).toBe('written');
    await expect
      .poll(() => relayer.suppliers.get(SUPPLIER.address))
      .toEqual({ ...expected, status: 'unstaking', unstake_session_end_height: 12 });

    // A node outage does not overwrite the entry.
    await node.down();
    expect(await leader.registry.reconcile(SUPPLIER.address)).toMatchObject({ result: 'error' });
    expect(JSON.parse((await r.client.get(r.keys().supplierState(SUPPLIER.address)))!)).toEqual({
      ...expected,
      status: 'unstaking',
      unstake_session_end_height: 12,
    });
  });

  it('invalidates the relayers’ cached proof params after a change on chain', async () => {
    const node = await startNode(5);
    const relayer = await startRelayerView();
    const leader = await startLeader(node, { suppliers: [SUPPLIER.address] });
    await leader.duties.start();
    await leader.feed.start();
    await leader.duties.idle();
    const before = await relayer.caches.proofParams.get(null);
    expect(before).toEqual(node.net.chain.proofParams);

    node.net.chain.setProofParams({ proofRequestProbability: 0.25 });
    node.net.advance(1);
    await expect.poll(() => relayer.caches.proofParams.peek(null)?.proofRequestProbability).toBe(0.25);
    expect(relayer.caches.proofParams.peek(null)).toEqual(node.net.chain.proofParams);
  });

  it('publishes service factors the relay meter parses', async () => {
    const node = await startNode(5);
    const leader = await startLeader(node, { suppliers: [SUPPLIER.address], factors: { anvil: 1.5 } });
    await leader.duties.start();
    const raw = await r.client.get(r.keys().serviceFactorServiceKey('anvil'));
    expect(parseServiceFactor(raw!)).toEqual({ ok: true, factor: 1.5 });
    expect(await r.client.exists(r.keys().serviceFactorDefaultKey())).toBe(0);
  });
});
