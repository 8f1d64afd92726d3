/**
 * `pocket-relay-miner miner --config <file>`: builds the miner graph (config → logger → Redis →
 * chain clients → caches → block feed → session lifecycle with claimer, prover, inclusion
 * reconciler and ledger → leader election → supplier leases → ops listener) and runs it until
 * SIGTERM/SIGINT.
 *
 * Every replica follows the chain through its own BlockFeed and runs the per-block work (session
 * lifecycle, inclusion reconciler, settlement read-out) for the suppliers it holds a lease on. The
 * replica elected global leader also runs the leader duties (block events, cache refresh, service
 * factors, supplier registry). A supplier lease acquired opens that supplier's session tries and
 * starts its relay stream consumer; the lifecycle works the supplier once that consumer has read
 * the backlog it found (a dead owner's relays), so no trie is sealed before them. A lease lost stops
 * both at once and the lifecycle forgets the supplier.
 *
 * Graceful stop (first signal): leadership and every lease go through their stop path (consumers
 * finish the batch in hand, jobs in flight get `drain_timeout` to finish), leases are released so
 * peers take over at their next tick. `abort()` (second signal) drops the Redis connections first
 * and stops every timer, releasing nothing: peers take over when the leases expire.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Command } from 'commander';
import { ConfigError } from '../core/config/index.js';
import { createLogger, splitListenAddr, startOpsServer, type OpsServer } from '../core/index.js';
import { BlockEventPublisher, ChainCaches, SupplierStateCache, createCacheMetrics } from '../cache/index.js';
import { BlockSource, ChainQueryClient, TxClient, loadSupplierKeys } from '../chain/index.js';
import { addressFromPrivateKey } from '../protocol/index.js';
import { KeyBuilder, PubSub, createRedisClient, textChannel } from '../transport/index.js';
import {
  BlockFeed,
  Claimer,
  GlobalLeaderElector,
  InclusionReconciler,
  LeaderDuties,
  MinerLedger,
  Prover,
  RebroadcastStore,
  RedisSessionTrees,
  SessionLifecycle,
  SessionStore,
  SessionTreeError,
  SessionWindowResolver,
  StaticFeeEstimator,
  SupplierLeaseManager,
  SupplierRegistryWriter,
  SupplierRelayConsumer,
  TERMINAL_STATES,
  cacheTtlMs,
  createBlockFeedMetrics,
  createLeaderDutiesMetrics,
  createMinerLifecycleMetrics,
  createSupplierRegistryMetrics,
  defaultInstanceId,
  leaderElectionTimings,
  sessionTtlMs,
  submissionTrackingTtlMs,
  supplierLeaseTimings,
  validateMinerConfig,
  type LeaseLossReason,
  type MinerConfig,
  type RelayBatchResult,
  type RelayConsumerConfig,
  type SessionTrees,
  type SessionTrie,
} from '../miner/index.js';
import { readConfigFile, runService } from './service-runner.js';

export interface MinerOverrides {
  log?: Logger;
  registry?: Registry;
  /** Unset = hostname + random suffix. */
  instanceId?: string;
  /** Replaces the metrics listener port (tests use 0 for a free port). */
  metricsPort?: number;
  /** Block websocket URL when it is not `{query_node_rpc_url}/websocket`. */
  websocketUrl?: string;
  /** Relay consumer read timings (tests shorten the blocking read). */
  consumer?: Pick<RelayConsumerConfig, 'block_ms' | 'reclaim_interval_ms'>;
  /** Time a graceful stop gives claim/proof jobs in flight. Default 30 s. */
  drainTimeoutMs?: number;
  /** Pause between claim/proof tx attempts. Default the claimer's and prover's own. */
  txRetryDelayMs?: number;
}

export interface RunningMiner {
  readonly instanceId: string;
  readonly config: MinerConfig;
  readonly registry: Registry;
  readonly metricsPort: number | undefined;
  /** Operator addresses of the loaded keys (the suppliers this replica may work). */
  readonly suppliers: readonly string[];
  /** Suppliers whose lease this replica holds now. */
  owned(): string[];
  readonly isLeader: boolean;
  /** Newest height whose per-block work (lifecycle pass, reconciler, settlements) finished. */
  readonly height: number;
  /** Resolves once the block work received so far and the claim/proof jobs it queued are done. */
  idle(): Promise<void>;
  /** Graceful stop: leadership and leases handed over, consumers and jobs drained, all closed. */
  stop(): Promise<void>;
  /** Stops at once without releasing anything, as a killed process would; leases expire on their own. */
  abort(): Promise<void>;
}

/**
 * Session tries of the suppliers this replica holds, one RedisSessionTrees per supplier (shared by
 * its relay consumer and the lifecycle jobs). A supplier that is not held refuses every operation,
 * so a job still running after its lease was lost cannot touch the trie. Tries the consumer opened
 * are dropped from memory once their session is terminal (`sweep`); Redis is untouched.
 */
class OwnedSessionTrees implements SessionTrees {
  private readonly bySupplier = new Map<string, RedisSessionTrees>();
  /** Session ids whose trie the consumer opened, per supplier. */
  private readonly opened = new Map<string, Set<string>>();

  constructor(
    private readonly deps: { redis: Redis; keys: KeyBuilder },
    private readonly cfg: { live_root_checkpoint_interval: number; cache_ttl_seconds: number },
  ) {}

  open(supplier: string): RedisSessionTrees {
    const t = new RedisSessionTrees(this.deps, this.cfg);
    this.bySupplier.set(supplier, t);
    return t;
  }

  close(supplier: string, trees: RedisSessionTrees): void {
    if (this.bySupplier.get(supplier) !== trees) return;
    this.bySupplier.delete(supplier);
    this.opened.delete(supplier);
  }

  /** The consumer's trie provider for a held supplier. */
  consumerTrie(supplier: string, sessionId: string): Promise<SessionTrie> {
    const t = this.of(supplier);
    let ids = this.opened.get(supplier);
    if (ids === undefined) {
      ids = new Set();
      this.opened.set(supplier, ids);
    }
    ids.add(sessionId);
    return t.trie(supplier, sessionId);
  }

  /** Forgets the in-memory tries of sessions that are terminal (or whose snapshot is gone). */
  async sweep(store: Pick<SessionStore, 'get'>): Promise<void> {
    for (const [supplier, ids] of [...this.opened]) {
      for (const id of [...ids]) {
        const snap = await store.get(supplier, id);
        if (snap !== undefined && !TERMINAL_STATES.has(snap.state)) continue;
        this.bySupplier.get(supplier)?.forget(supplier, id);
        ids.delete(id);
      }
    }
  }

  private of(supplier: string): RedisSessionTrees {
    const t = this.bySupplier.get(supplier);
    if (t === undefined) throw new SessionTreeError('the supplier is not held by this replica');
    return t;
  }

  async seal(supplier: string, sessionId: string): Promise<Uint8Array> {
    return this.of(supplier).seal(supplier, sessionId);
  }

  async claimedRoot(supplier: string, sessionId: string): Promise<Uint8Array | undefined> {
    return this.of(supplier).claimedRoot(supplier, sessionId);
  }

  async proveClosest(supplier: string, sessionId: string, path: Uint8Array): Promise<Uint8Array> {
    return this.of(supplier).proveClosest(supplier, sessionId, path);
  }

  async destroy(supplier: string, sessionId: string): Promise<void> {
    return this.of(supplier).destroy(supplier, sessionId);
  }
}

/** Work of one held supplier. */
interface SupplierWork {
  trees: RedisSessionTrees;
  consumer: SupplierRelayConsumer;
  /** The consumer handled the stream's backlog; only then may the lifecycle seal this supplier's tries. */
  caughtUp: boolean;
}

const GRACEFUL: ReadonlySet<LeaseLossReason> = new Set(['stopped', 'rebalanced', 'removed']);
/** Heights before the current one whose settlements are still read after a gap in the feed. */
const MAX_SETTLEMENT_CATCHUP = 16;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits for `p` at most `ms`; true when it settled in time. Leaves no timer behind. */
async function settleWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Starts every part of the miner; rejects with a clear error when a dependency is unreachable. */
export async function startMiner(cfg: MinerConfig, o: MinerOverrides = {}): Promise<RunningMiner> {
  const instanceId = o.instanceId ?? defaultInstanceId();
  const log = o.log ?? createLogger(cfg.logging, 'miner');
  const registry = o.registry ?? new Registry();
  if (o.registry === undefined) collectDefaultMetrics({ register: registry });
  const drainMs = o.drainTimeoutMs ?? 30_000;
  const closers: (() => unknown)[] = [];
  const redisClients: Redis[] = [];
  const closeAll = async (): Promise<void> => {
    for (const c of closers.splice(0).reverse()) {
      try {
        await c();
      } catch (err) {
        log.warn({ err }, 'shutdown step failed');
      }
    }
  };
  let aborted = false;
  try {
    const privateKeys = loadSupplierKeys(cfg.keys);
    const keyAddresses = privateKeys.map((k) => addressFromPrivateKey(k));
    const listed = cfg.suppliers.map((s) => s.operator_address);
    const suppliers =
      listed.length === 0 ? [...new Set(keyAddresses)] : listed.filter((a) => keyAddresses.includes(a));
    for (const a of listed) {
      if (!keyAddresses.includes(a)) log.warn({ supplier: a }, 'listed supplier has no loaded key; skipped');
    }
    if (suppliers.length === 0) {
      throw new ConfigError('miner config', [
        { path: 'keys', message: 'no supplier key loaded; set keys.keys_file or keys.keys_dir' },
      ]);
    }

    const redis = await createRedisClient({ url: cfg.redis.url, connection_name: `miner-${instanceId}` });
    redisClients.push(redis);
    closers.push(() => redis.quit().catch(() => redis.disconnect()));
    redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
    const subscriber = redis.duplicate({ connectionName: `miner-sub-${instanceId}` });
    redisClients.push(subscriber);
    subscriber.on('error', (err) => log.debug({ err: err.message }, 'redis subscriber error'));
    // Lease renewals get a connection of their own, so a large trie flush cannot delay them.
    const leaseRedis = redis.duplicate({ connectionName: `miner-lease-${instanceId}` });
    redisClients.push(leaseRedis);
    closers.push(() => leaseRedis.quit().catch(() => leaseRedis.disconnect()));
    leaseRedis.on('error', (err) => log.warn({ err: err.message }, 'redis lease connection error'));
    const keys = new KeyBuilder({ namespace: cfg.redis.namespace });
    const pubsub = new PubSub({ publisher: redis, subscriber, log });
    closers.push(() => pubsub.close());

    const chain = new ChainQueryClient(
      { log },
      {
        query_node_rpc_url: cfg.pocket_node.query_node_rpc_url,
        query_timeout_ms: cfg.pocket_node.query_timeout_seconds * 1000,
      },
    );
    closers.push(() => chain.close());

    const feed = new BlockFeed({
      openSource: () =>
        new BlockSource(
          { log },
          {
            query_node_rpc_url: cfg.pocket_node.query_node_rpc_url,
            ...(o.websocketUrl !== undefined ? { websocket_url: o.websocketUrl } : {}),
          },
        ),
      fetchBlock: (h) => chain.getBlock(h),
      log,
      metrics: createBlockFeedMetrics(registry),
    });
    const tx = new TxClient(
      { log, query: chain, latestBlockTimeNs: () => feed.latest?.timeUnixNs },
      {
        chain_id: cfg.pocket_node.chain_id,
        gas_limit: cfg.transaction.gas_limit,
        gas_price: cfg.transaction.gas_price,
        gas_adjustment: cfg.transaction.gas_adjustment,
      },
    );
    for (const k of privateKeys) await tx.addSigner(k);

    const cacheMetrics = createCacheMetrics(registry);
    const caches = new ChainCaches({ redis, keys, pubsub, log, metrics: cacheMetrics, chain });
    await caches.start();
    closers.push(() => caches.close());
    const states = new SupplierStateCache({ redis, keys, pubsub, log, metrics: cacheMetrics });

    const metrics = createMinerLifecycleMetrics(registry);
    const store = new SessionStore(
      { redis, keys, log },
      { ttl_seconds: Math.ceil(sessionTtlMs(cfg) / 1000) },
    );
    const ledger = new MinerLedger({ redis, keys, metrics });
    const trees = new OwnedSessionTrees(
      { redis, keys },
      {
        live_root_checkpoint_interval: cfg.smst_live_root_checkpoint_interval,
        cache_ttl_seconds: Math.ceil(cacheTtlMs(cfg) / 1000),
      },
    );
    const rebroadcast = new RebroadcastStore(
      { redis, keys },
      { submission_tracking_ttl_seconds: Math.ceil(submissionTrackingTtlMs(cfg) / 1000) },
    );
    const windows = new SessionWindowResolver(chain);
    const blockTimeMs = cfg.block_time_seconds * 1000;
    const retry = o.txRetryDelayMs === undefined ? {} : { retry_delay_ms: o.txRetryDelayMs };
    const lifecycleRef: { lc?: SessionLifecycle } = {};
    const currentHeight = (): number => Math.max(lifecycleRef.lc?.height ?? 0, feed.latest?.height ?? 0);
    const jobDeps = { store, chain, tx, trees, rebroadcast, ledger, currentHeight, log, metrics };
    const work = new Map<string, SupplierWork>();
    const claimer = new Claimer(
      {
        ...jobDeps,
        fees: new StaticFeeEstimator({ chain }),
        drained: (supplier, timeoutMs) =>
          work.get(supplier)?.consumer.drained(timeoutMs) ?? Promise.resolve(true),
      },
      { block_time_ms: blockTimeMs, ...retry },
    );
    const prover = new Prover(jobDeps, {
      block_time_ms: blockTimeMs,
      disable_pre_proof_claim_verification: cfg.transaction.disable_pre_proof_claim_verification,
      ...retry,
    });

    // Set once the lease manager exists; the lifecycle only asks after start.
    const leaseRef: { m?: SupplierLeaseManager } = {};
    const cleanup = textChannel(keys.meterCleanupChannel());
    const lifecycle = new SessionLifecycle(
      {
        store,
        windows,
        claimer,
        prover,
        ledger,
        keys,
        publishMeterCleanup: async (member) => {
          await pubsub.publish(cleanup, member);
        },
        // A supplier just acquired waits for its consumer to catch up: a claim sealed before
        // the backlog is read would drop the relays published while nobody consumed them.
        suppliers: () => (leaseRef.m?.owned() ?? []).filter((s) => work.get(s)?.caughtUp === true),
        log,
        metrics,
      },
      { max_concurrent_transitions: cfg.session_lifecycle.max_concurrent_transitions },
    );
    lifecycleRef.lc = lifecycle;
    const reconciler = cfg.transaction.disable_inclusion_reconciler
      ? undefined
      : new InclusionReconciler(
          {
            store: rebroadcast,
            chain,
            tx,
            windows,
            owns: (s) => leaseRef.m?.holds(s) ?? false,
            log,
            metrics,
          },
          {
            max_rebroadcasts: cfg.transaction.max_rebroadcasts,
            rebroadcast_safety_blocks: cfg.transaction.rebroadcast_safety_blocks,
            block_time_ms: blockTimeMs,
            max_concurrent: cfg.transaction.inclusion_reconciler_max_concurrent,
            per_group_timeout_ms: cfg.transaction.inclusion_reconciler_per_group_timeout_ms,
          },
        );

    // Per-block work, one block at a time; blocks arriving meanwhile coalesce to the newest.
    let pendingBlock: { height: number; hash: Uint8Array } | undefined;
    let blockLoop: Promise<void> | undefined;
    let doneHeight = 0;
    let settledThrough = 0;
    const recordSettlements = async (h: number): Promise<void> => {
      if (settledThrough === 0) settledThrough = h - 1;
      const owned = new Set(leaseRef.m?.owned() ?? []);
      const from = Math.max(settledThrough + 1, h - MAX_SETTLEMENT_CATCHUP);
      if (owned.size === 0) {
        settledThrough = Math.max(settledThrough, h);
        return;
      }
      for (let height = from; height <= h; height++) {
        await ledger.recordSettlementsAt(chain, height, owned);
        settledThrough = height;
      }
    };
    const runBlock = async (b: { height: number; hash: Uint8Array }): Promise<void> => {
      await lifecycle.onBlock(b.height, b.hash);
      if (reconciler !== undefined) {
        try {
          await reconciler.onBlock(b.height);
        } catch (err) {
          log.warn({ err, block_height: b.height }, 'inclusion reconciler pass failed');
        }
      }
      try {
        await recordSettlements(b.height);
      } catch (err) {
        log.warn({ err, block_height: b.height }, 'reading settlements failed; the next block retries');
      }
      try {
        await trees.sweep(store);
      } catch (err) {
        log.debug({ err, block_height: b.height }, 'trie sweep failed; the next block retries');
      }
      doneHeight = Math.max(doneHeight, b.height);
    };
    const onBlock = (height: number, hash: Uint8Array): void => {
      if (aborted) return;
      if (pendingBlock === undefined || height >= pendingBlock.height) pendingBlock = { height, hash };
      blockLoop ??= (async () => {
        try {
          while (pendingBlock !== undefined && !aborted) {
            const b = pendingBlock;
            pendingBlock = undefined;
            await runBlock(b);
          }
        } finally {
          blockLoop = undefined;
        }
      })();
    };
    const offFeed = feed.onBlock((h, hash) => onBlock(h, hash));
    closers.push(() => offFeed());
    /** Re-runs the newest block now (a supplier was taken over: restart its interrupted jobs). */
    const kick = (): void => {
      const latest = feed.latest;
      if (latest !== undefined) onBlock(latest.height, latest.hash);
    };

    const consumerName = `${cfg.redis.consumer_name ?? 'miner'}-${instanceId}`;
    const dedupTtlSeconds = Math.max(60, cfg.deduplication_ttl_blocks * cfg.block_time_seconds);
    const onBatch = async (r: RelayBatchResult): Promise<void> => {
      for (const s of r.sessions) {
        if (s.inserted > 0) await ledger.addRelays(r.supplier, s.session_id, 'mined', BigInt(s.inserted));
        if (s.sealed > 0) await ledger.addRelays(r.supplier, s.session_id, 'dropped', BigInt(s.sealed));
      }
    };

    const startConsumer = async (supplier: string, entry: SupplierWork): Promise<void> => {
      let delayMs = 250;
      while (work.get(supplier) === entry && !aborted) {
        try {
          await entry.consumer.start();
          if (work.get(supplier) !== entry) await entry.consumer.stop();
          return;
        } catch (err) {
          log.warn({ err, supplier }, 'relay consumer did not start; retrying');
          await sleep(delayMs);
          delayMs = Math.min(delayMs * 2, 5_000);
        }
      }
    };

    const acquired = (supplier: string): void => {
      const supplierTrees = trees.open(supplier);
      const consumer = new SupplierRelayConsumer(
        {
          redis,
          keys,
          log,
          sessions: store,
          trie: (sessionId: string): Promise<SessionTrie> => trees.consumerTrie(supplier, sessionId),
          registry,
          onBatch,
        },
        {
          supplier,
          consumer_name: consumerName,
          batch_size: cfg.batch_size,
          claim_idle_timeout_ms: cfg.redis.claim_idle_timeout_ms,
          dedup_ttl_seconds: dedupTtlSeconds,
          ...o.consumer,
        },
      );
      const entry: SupplierWork = { trees: supplierTrees, consumer, caughtUp: false };
      work.set(supplier, entry);
      log.info({ supplier }, 'supplier acquired; consuming its relays');
      void startConsumer(supplier, entry);
      void consumer.caughtUp().then(() => {
        if (work.get(supplier) !== entry || aborted) return;
        entry.caughtUp = true;
        kick();
      });
    };

    const lost = (supplier: string, reason: LeaseLossReason): Promise<void> | undefined => {
      const entry = work.get(supplier);
      work.delete(supplier);
      if (entry === undefined) return undefined;
      if (aborted || !GRACEFUL.has(reason)) {
        // Not ours any more: no trie write, no job touching it from here on.
        trees.close(supplier, entry.trees);
        lifecycle.release(supplier);
        void entry.consumer
          .stop()
          .catch((err: unknown) => log.warn({ err, supplier }, 'consumer stop failed'));
        log.warn({ supplier, reason }, 'supplier lease lost; its work stopped');
        return undefined;
      }
      return (async () => {
        try {
          await entry.consumer.stop();
          if (!(await settleWithin(lifecycle.idle(), drainMs))) {
            log.warn({ supplier, reason }, 'claim/proof jobs still running at the drain deadline');
          }
        } finally {
          trees.close(supplier, entry.trees);
          lifecycle.release(supplier);
          log.info({ supplier, reason }, 'supplier handed over');
        }
      })();
    };

    const leases = new SupplierLeaseManager(
      {
        redis: leaseRedis,
        keys,
        log,
        handlers: { onAcquired: (s) => acquired(s), onLost: (s, reason) => lost(s, reason) },
      },
      { ...supplierLeaseTimings(cfg), suppliers, instance_id: instanceId },
    );
    leaseRef.m = leases;

    const registryWriter = new SupplierRegistryWriter(
      {
        chain,
        states,
        log,
        metrics: createSupplierRegistryMetrics(registry),
        instanceId,
      },
      { suppliers, supplier_reconcile_interval_seconds: cfg.supplier_reconcile_interval_seconds },
    );
    const duties = new LeaderDuties(
      {
        feed,
        publisher: new BlockEventPublisher({ pubsub, keys }),
        caches,
        chain,
        redis,
        keys,
        pubsub,
        registry: registryWriter,
        log,
        metrics: createLeaderDutiesMetrics(registry),
      },
      {
        service_factors: cfg.service_factors,
        ...(cfg.default_service_factor !== undefined
          ? { default_service_factor: cfg.default_service_factor }
          : {}),
        service_factor_ttl_seconds: Math.ceil(cacheTtlMs(cfg) / 1000),
        known_applications: cfg.known_applications,
      },
    );
    const elector = new GlobalLeaderElector(
      {
        redis: leaseRedis,
        keys,
        log,
        handlers: { onElected: () => duties.start(), onDemoted: () => duties.stop() },
      },
      { ...leaderElectionTimings(cfg), instance_id: instanceId },
    );

    await feed.start();
    closers.push(() => feed.stop());
    await elector.start();
    closers.push(() => elector.stop());
    await leases.start();
    closers.push(() => leases.stop());

    let stopping = false;
    const ops: OpsServer[] = [];
    let metricsPort: number | undefined;
    if (cfg.metrics.enabled) {
      const a = splitListenAddr(cfg.metrics.addr);
      const s = await startOpsServer({ host: a.host, port: o.metricsPort ?? a.port }, [
        (p) =>
          p === '/metrics'
            ? registry.metrics().then((body) => ({ status: 200, contentType: registry.contentType, body }))
            : undefined,
        (p) => (p === '/health' ? { status: 200, contentType: 'text/plain', body: 'OK' } : undefined),
        (p) =>
          p === '/ready'
            ? !stopping && feed.isRunning
              ? { status: 200, contentType: 'text/plain', body: 'READY' }
              : { status: 503, contentType: 'text/plain', body: stopping ? 'STOPPING' : 'NO_CHAIN' }
            : undefined,
      ]);
      metricsPort = s.port;
      ops.push(s);
    }
    closers.push(() => Promise.all(ops.map((s) => s.close())));

    log.info(
      {
        instance_id: instanceId,
        suppliers,
        consumer_name: consumerName,
        metrics_port: metricsPort,
        leader: elector.isLeader,
      },
      'miner started',
    );

    const idle = async (): Promise<void> => {
      await feed.idle();
      while (blockLoop !== undefined) await blockLoop;
      await lifecycle.idle();
    };

    let stopped: Promise<void> | undefined;
    const stop = (): Promise<void> => {
      stopped ??= (async () => {
        stopping = true;
        await Promise.all([elector.stop(), leases.stop()]);
        await feed.stop();
        await settleWithin(idle(), drainMs);
        await closeAll();
        log.info({ instance_id: instanceId }, 'miner stopped');
      })();
      return stopped;
    };
    const abort = (): Promise<void> => {
      if (stopped !== undefined) return stopped;
      aborted = true;
      stopping = true;
      for (const c of redisClients) c.disconnect();
      stopped = (async () => {
        await Promise.allSettled([
          elector.stop(),
          leases.stop(),
          feed.stop(),
          ...[...work.values()].map((w) => w.consumer.stop()),
        ]);
        work.clear();
        await closeAll();
        log.warn({ instance_id: instanceId }, 'miner aborted; nothing released');
      })();
      return stopped;
    };

    return {
      instanceId,
      config: cfg,
      registry,
      metricsPort,
      suppliers,
      owned: () => leases.owned(),
      get isLeader() {
        return elector.isLeader;
      },
      get height() {
        return doneHeight;
      },
      idle,
      stop,
      abort,
    };
  } catch (err) {
    aborted = true;
    await closeAll();
    throw err;
  }
}

/** Loads the config file; ConfigError lists every problem with its dotted path. */
export function loadMinerConfig(path: string): MinerConfig {
  return readConfigFile(path, validateMinerConfig);
}

/** Runs until a signal; returns the exit code. */
export function runMiner(path: string): Promise<number> {
  return runService(path, {
    name: 'miner',
    load: loadMinerConfig,
    start: (cfg, log) => startMiner(cfg, { log }),
    stop: async (r) => {
      await r.stop();
      return 0;
    },
    abort: (r) => r.abort(),
    stopping: 'handing over leases and draining before exit',
  });
}

/** Registers `miner --config <file>` (the service) on the `miner` command. */
export function registerMinerServiceCommand(miner: Command): void {
  miner
    .passThroughOptions()
    .option('-c, --config <file>', 'miner YAML config (see config.miner.example.yaml)')
    .action(async (opts: { config?: string }) => {
      if (opts.config === undefined) {
        miner.help({ error: true });
        return;
      }
      const code = await runMiner(opts.config);
      process.exit(code);
    });
}
