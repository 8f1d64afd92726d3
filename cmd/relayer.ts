/**
 * `pocket-relay-miner relayer --config <file>`: builds the relayer graph (config → logger → Redis
 * → caches → validator/meter/signer/publisher → relay core → uWS + gRPC listeners → ops
 * listeners) and runs it until SIGTERM/SIGINT, then drains in-flight relays and publishes.
 */
import { availableParallelism } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Command } from 'commander';
import { ConfigError, parseGoDurationMs } from '../core/config/index.js';
import {
  createLogger,
  splitListenAddr,
  startOpsServer,
  type OpsReply,
  type OpsServer,
} from '../core/index.js';
import { BlockEventSubscriber, ChainCaches, SupplierStateCache, createCacheMetrics } from '../cache/index.js';
import { ChainQueryClient } from '../chain/index.js';
import { DEFAULT_RING_VERIFY_POOL_CONFIG, RingCache, RingVerifyPool, selectBackend } from '../rings/index.js';
import {
  KeyBuilder,
  PubSub,
  StreamPublisher,
  StreamPublisherMetrics,
  createRedisClient,
} from '../transport/index.js';
import {
  BackendRegistry,
  CacheMeterInputs,
  MinedRelayPublisher,
  RelayCore,
  RelayMeter,
  RelayServer,
  RelaySigner,
  RelayValidator,
  RelayerLedgerCounts,
  RelayerMetrics,
  RelayPipelineMetrics,
  SimulationAdmission,
  SupplierGate,
  attachWebSocketBridge,
  cacheTtlSeconds,
  serviceReadiness,
  startGrpcServer,
  startWebSocketListener,
  validateRelayerConfig,
  type RelayerConfig,
  type WebSocketListener,
} from '../relayer/index.js';
import { readConfigFile, runService } from './service-runner.js';

export interface RelayerOverrides {
  log?: Logger;
  registry?: Registry;
  /** Replace listen ports (tests use 0 for free ports). */
  relayPort?: number;
  grpcPort?: number;
  websocketPort?: number;
  opsPorts?: { health?: number; metrics?: number };
}

export interface RunningRelayer {
  readonly config: RelayerConfig;
  readonly core: RelayCore;
  readonly relayPort: number;
  readonly grpcPort: number | undefined;
  /** The WebSocket compatibility listener (websocket.listen_addr), when enabled. */
  readonly websocketPort: number | undefined;
  readonly healthPort: number | undefined;
  readonly metricsPort: number | undefined;
  readonly registry: Registry;
  readonly publisher: StreamPublisher;
  /** Graceful stop: refuse new relays, finish in-flight ones, flush publishes, close everything. */
  stop(): Promise<{ unsent: number }>;
}

/** Starts every part of the relayer; rejects with a clear error when a dependency is unreachable. */
export async function startRelayer(cfg: RelayerConfig, o: RelayerOverrides = {}): Promise<RunningRelayer> {
  const log = o.log ?? createLogger(cfg.logging, 'relayer');
  const registry = o.registry ?? new Registry();
  if (o.registry === undefined) collectDefaultMetrics({ register: registry });
  const closers: (() => unknown)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const c of closers.reverse()) {
      try {
        await c();
      } catch (err) {
        log.warn({ err }, 'shutdown step failed');
      }
    }
  };
  try {
    const redisUrl = cfg.redis.url;
    const redis: Redis = await createRedisClient({
      url: redisUrl,
      connection_name: 'relayer',
    });
    closers.push(() => redis.quit().catch(() => redis.disconnect()));
    redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
    const subscriber = redis.duplicate({ connectionName: 'relayer-sub' });
    subscriber.on('error', (err) => log.debug({ err: err.message }, 'redis subscriber error'));
    const keys = new KeyBuilder({ namespace: cfg.redis.namespace });
    const meterKeys = new KeyBuilder({
      namespace: { ...cfg.redis.namespace, base_prefix: cfg.relay_meter.redis_key_prefix },
    });
    const pubsub = new PubSub({ publisher: redis, subscriber, log });
    closers.push(() => pubsub.close());
    const cacheMetrics = createCacheMetrics(registry);
    const metrics = new RelayerMetrics(registry);
    const pipelineMetrics = new RelayPipelineMetrics(registry);

    const chain = new ChainQueryClient({ log }, { query_node_rpc_url: cfg.pocket_node.query_node_rpc_url });
    closers.push(() => chain.close());
    const caches = new ChainCaches({ redis, keys, pubsub, log, metrics: cacheMetrics, chain });
    await caches.start();
    closers.push(() => caches.close());
    const blocks = new BlockEventSubscriber({ pubsub, keys, log, metrics: cacheMetrics });
    await blocks.start();
    closers.push(() => blocks.close());
    const heights = {
      get currentHeight(): number {
        return blocks.currentHeight;
      },
      onHeight(fn: (h: number) => void): () => void {
        return blocks.onBlock(`height-listener-${Math.random().toString(36).slice(2)}`, (ev) =>
          fn(ev.height),
        );
      },
    };
    const states = new SupplierStateCache({ redis, keys, pubsub, log, metrics: cacheMetrics });
    await states.start();
    closers.push(() => states.close());

    const ecBackend = selectBackend(cfg.ring_verify.backend);
    const signer = RelaySigner.fromConfig({ backend: ecBackend, log }, cfg.keys);
    if (signer.addresses.length === 0) {
      throw new ConfigError('relayer config', [
        { path: 'keys', message: 'no supplier key loaded; set keys.keys_file or keys.keys_dir' },
      ]);
    }
    const threads = cfg.ring_verify.threads > 0 ? cfg.ring_verify.threads : availableParallelism();
    const verifier = new RingVerifyPool({
      ...DEFAULT_RING_VERIFY_POOL_CONFIG,
      threads,
      backend: cfg.ring_verify.backend,
      max_queue: cfg.ring_verify.max_queue,
      task_timeout_ms: cfg.ring_verify.task_timeout_ms,
    });
    closers.push(() => verifier.close());
    const rings = new RingCache({ source: caches.ringSource, backend: ecBackend });
    const services = Object.keys(cfg.services);
    const validator = new RelayValidator(
      {
        heights,
        sharedParamsAtHeight: caches.sharedParamsAtHeight,
        sessions: caches.sessions,
        rings,
        verifier,
        suppliers: signer,
      },
      { services },
    );
    const meter = new RelayMeter(
      {
        redis,
        keys: meterKeys,
        inputs: new CacheMeterInputs({
          caches,
          heights,
          redis,
          keys: meterKeys,
          log,
          metrics: pipelineMetrics,
        }),
        log,
        metrics,
      },
      {
        enabled: cfg.relay_meter.enabled,
        fail_behavior: cfg.relay_meter.fail_behavior,
        ttl_seconds: cacheTtlSeconds(cfg),
      },
    );
    const stopCleanup = await meter.subscribeCleanup(pubsub);
    closers.push(() => stopCleanup());
    const stopGauge = meter.startActiveSessionsGauge();
    closers.push(() => stopGauge());

    const publisher = new StreamPublisher(
      { redis, keys, log, metrics: new StreamPublisherMetrics(registry) },
      {
        max_len: cfg.relay_streams.max_len,
        ttl_seconds: Math.round((parseGoDurationMs(cfg.relay_meter.cache_ttl) ?? 7_200_000) / 1000),
        batch_size: cfg.relay_streams.batch_size,
        flush_interval_ms: cfg.relay_streams.flush_interval_ms,
        max_buffered: cfg.relay_streams.max_buffered,
        ack_timeout_ms: cfg.relay_streams.ack_timeout_ms,
      },
    );
    const mined = new MinedRelayPublisher({
      signer,
      caches,
      publisher,
      log,
      counters: metrics,
      metrics: pipelineMetrics,
    });
    const gate = new SupplierGate(
      { states, suppliers: signer, log, metrics: pipelineMetrics },
      { fail_behavior: cfg.relay_meter.fail_behavior },
    );
    const simulation = cfg.simulation.enabled
      ? new SimulationAdmission({
          config: cfg.simulation,
          services,
          suppliers: signer,
          redis,
          keys,
          verifier,
          registry,
          log,
        })
      : undefined;
    const backends = new BackendRegistry(cfg, { log, metrics });
    backends.startHealthChecks();
    closers.push(() => backends.close());

    const core = new RelayCore({
      config: cfg,
      backends,
      heights,
      gate,
      validator,
      meter,
      signer,
      mined,
      sharedParamsAtHeight: caches.sharedParamsAtHeight,
      ...(simulation !== undefined ? { simulation } : {}),
      ledger: new RelayerLedgerCounts({ redis, keys, log, registry }),
      log,
      metrics,
    });

    const relayAddr = splitListenAddr(cfg.listen_addr);
    const bridgeOpts = { registry, suppliers: signer };
    let bridge: ReturnType<typeof attachWebSocketBridge> | undefined;
    const server = await RelayServer.start(
      core,
      { host: relayAddr.host, port: o.relayPort ?? relayAddr.port },
      (app) => {
        bridge = attachWebSocketBridge(app, core, bridgeOpts);
      },
    );
    closers.push(() => server.stopListening());

    let grpcPort: number | undefined;
    if (cfg.grpc.enabled) {
      const g = splitListenAddr(cfg.grpc.listen_addr);
      const grpc = await startGrpcServer(core, {
        host: g.host,
        port: o.grpcPort ?? g.port,
        maxMessageBytes: cfg.grpc.max_message_bytes,
        headerTimeoutMs: cfg.grpc.header_timeout_seconds * 1000,
        readTimeoutMs: cfg.grpc.read_timeout_seconds * 1000,
        registry,
      });
      grpcPort = grpc.port;
      closers.push(() => grpc.close(1_000));
    }

    let websocket: WebSocketListener | undefined;
    if (cfg.websocket.enabled) {
      const w = splitListenAddr(cfg.websocket.listen_addr);
      const listener = await startWebSocketListener(core, bridgeOpts, {
        host: w.host,
        port: o.websocketPort ?? w.port,
        handshakeTimeoutMs: cfg.websocket.handshake_timeout_seconds * 1000,
      });
      websocket = listener;
      closers.push(() => listener.close());
    }

    const ops: OpsServer[] = [];
    let healthPort: number | undefined;
    let metricsPort: number | undefined;
    const readyRoute = (path: string): OpsReply | undefined =>
      path.startsWith('/ready/') ? serviceReadinessReply(core, path.slice('/ready/'.length)) : undefined;
    if (cfg.health_check.enabled) {
      const a = splitListenAddr(cfg.health_check.addr);
      const s = await startOpsServer({ host: a.host, port: o.opsPorts?.health ?? a.port }, [
        (p) => (p === '/health' ? { status: 200, contentType: 'text/plain', body: 'OK' } : undefined),
        (p) =>
          p === '/ready'
            ? core.draining
              ? { status: 503, contentType: 'text/plain', body: 'DRAINING' }
              : { status: 200, contentType: 'text/plain', body: 'READY' }
            : undefined,
        readyRoute,
      ]);
      healthPort = s.port;
      ops.push(s);
    }
    if (cfg.metrics.enabled) {
      const a = splitListenAddr(cfg.metrics.addr);
      const s = await startOpsServer({ host: a.host, port: o.opsPorts?.metrics ?? a.port }, [
        (p) =>
          p === '/metrics'
            ? registry.metrics().then((body) => ({ status: 200, contentType: registry.contentType, body }))
            : undefined,
        (p) =>
          p === '/health' || p === '/ready'
            ? { status: 200, contentType: 'text/plain', body: 'OK' }
            : undefined,
      ]);
      metricsPort = s.port;
      ops.push(s);
    }
    closers.push(() => Promise.all(ops.map((s) => s.close())));

    log.info(
      {
        listen_addr: `${relayAddr.host}:${server.port}`,
        grpc_port: grpcPort,
        websocket_port: websocket?.port,
        services,
        suppliers: signer.addresses,
        ec_backend: ecBackend.name,
        verify_threads: threads,
      },
      'relayer started',
    );

    let stopped: Promise<{ unsent: number }> | undefined;
    const stop = (): Promise<{ unsent: number }> => {
      stopped ??= (async () => {
        const drainMs = cfg.shutdown.drain_timeout_seconds * 1000;
        server.stopListening();
        const left = await core.drain(drainMs);
        if (left.inFlight > 0 || left.background > 0) {
          log.warn(left, 'drain deadline reached with relays still pending');
        }
        await Promise.all([
          bridge?.closeAll(1001, 'server shutting down'),
          websocket?.closeAll(1001, 'server shutting down'),
        ]);
        const { unsent } = await publisher.close(5_000);
        await closeAll();
        log.info({ unsent }, 'relayer stopped');
        return { unsent };
      })();
      return stopped;
    };
    return {
      config: cfg,
      core,
      relayPort: server.port,
      grpcPort,
      websocketPort: websocket?.port,
      healthPort,
      metricsPort,
      registry,
      publisher,
      stop,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

function serviceReadinessReply(core: RelayCore, id: string): OpsReply {
  const r = serviceReadiness(core, decodeURIComponent(id));
  return { status: r.status, contentType: 'application/json', body: JSON.stringify(r.body) };
}

/** Loads the config file; ConfigError lists every problem with its dotted path. */
export function loadRelayerConfig(path: string): RelayerConfig {
  return readConfigFile(path, validateRelayerConfig);
}

/** Runs until a signal; returns the exit code. */
export function runRelayer(path: string): Promise<number> {
  return runService(path, {
    name: 'relayer',
    load: loadRelayerConfig,
    start: (cfg, log) => startRelayer(cfg, { log }),
    stop: async (r) => ((await r.stop()).unsent > 0 ? 1 : 0),
    stopping: 'draining in-flight relays before exit',
  });
}

/** Registers `relayer --config <file>` (the service) on the `relayer` command. */
export function registerRelayerServiceCommand(relayer: Command): void {
  relayer
    .passThroughOptions()
    .option('-c, --config <file>', 'relayer YAML config (see config.relayer.example.yaml)')
    .action(async (opts: { config?: string }) => {
      if (opts.config === undefined) {
        relayer.help({ error: true });
        return;
      }
      const code = await runRelayer(opts.config);
      process.exit(code);
    });
}
