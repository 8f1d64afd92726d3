/**
 * What the global leader does while it holds the lease (miner.md §1, cache-and-redis.md §1,
 * §4.2, §5.2); the leader elector calls `start()` when elected and `stop()` when demoted.
 *
 * Per block from the BlockFeed:
 *   1. the block is published on `{base}:events:blocks`, so relayers (and miners) know the height;
 *   2. the chain-backed caches every process shares are re-read from the chain: shared, session
 *      and proof params, every application in `{base}:cache:known:applications` and every service
 *      in `{base}:cache:known:services`. A value that changed since the last round is refreshed
 *      through its cache (L2 rewritten, invalidation published, so each relayer drops its L1
 *      copy); an unchanged value publishes nothing. A change costs a second chain read (the
 *      cache's own refresh). The first round of a term compares with what the caches already
 *      hold, so a new leader does not invalidate everything. One round at a time: a block
 *      arriving while a round runs does not start another (counted as skipped).
 *   3. the service-factor keys are rewritten when half their TTL has passed;
 *   4. the supplier registry writer (if given) checks the block for supplier-change events.
 *
 * At start: `known_applications` are added to the known set, the latest block (if the feed has
 * one) is published at once, service factors are written, the supplier registry writer (if
 * given) starts, and a first refresh round runs.
 *
 * Service factors: `{base}:service_factor:default` and `{base}:service_factor:service:{id}` hold
 * `{"factor": f, "updated_at": <unix seconds>}` with a TTL (`service_factor_ttl_seconds`), so the
 * factors lapse if no leader is left to rewrite them. Keys of services no longer configured, and
 * the default key when no default is configured, are deleted. When any factor changed, `{}` is
 * published on the service_factor invalidation channel.
 *
 * Failures are counted and logged, never thrown out of a block: a failed publish or refresh is
 * retried by the next block.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { RelayMinerError } from '../core/index.js';
import { jsonInvalidation, type BlockEventPublisher, type ChainCaches } from '../cache/index.js';
import type { BlockEvent, ChainQueryClient } from '../chain/index.js';
import { pb } from '../protocol/index.js';
import type { KeyBuilder, PubSub } from '../transport/index.js';
import type { BlockFeed } from './block-feed.js';
import type { SupplierRegistryWriter } from './supplier-registry.js';

export interface LeaderDutiesMetrics {
  /** Block events published; result: ok | error. */
  blocksPublished: Counter<'result'>;
  /** Per entity per round; entity: shared_params | session_params | proof_params | application | service; result: unchanged | changed | error. */
  refreshes: Counter<'entity' | 'result'>;
  /** Blocks that found the previous refresh round still running. */
  refreshRoundsSkipped: Counter;
  /** Service-factor writes; result: ok | error. */
  serviceFactorWrites: Counter<'result'>;
}

export function createLeaderDutiesMetrics(registry: Registry): LeaderDutiesMetrics {
  const registers = [registry];
  return {
    blocksPublished: new Counter({
      name: 'ha_miner_leader_blocks_published_total',
      help: 'Block events published by the leader, by result',
      labelNames: ['result'],
      registers,
    }),
    refreshes: new Counter({
      name: 'ha_miner_leader_cache_refreshes_total',
      help: 'Per-block cache refreshes by the leader, by entity and result',
      labelNames: ['entity', 'result'],
      registers,
    }),
    refreshRoundsSkipped: new Counter({
      name: 'ha_miner_leader_refresh_rounds_skipped_total',
      help: 'Blocks whose refresh round was skipped because the previous one was still running',
      registers,
    }),
    serviceFactorWrites: new Counter({
      name: 'ha_miner_leader_service_factor_writes_total',
      help: 'Service factor publications by the leader, by result',
      labelNames: ['result'],
      registers,
    }),
  };
}

export type LeaderChainClient = Pick<
  ChainQueryClient,
  'getSharedParams' | 'getSessionParams' | 'getProofParams' | 'getApplication' | 'getService'
>;

export interface LeaderDutiesDeps {
  feed: Pick<BlockFeed, 'onBlock' | 'latest'>;
  publisher: Pick<BlockEventPublisher, 'publish'>;
  caches: Pick<ChainCaches, 'sharedParams' | 'sessionParams' | 'proofParams' | 'applications' | 'services'>;
  /** Direct chain reads used to detect changes (the caches are refreshed only on a change). */
  chain: LeaderChainClient;
  redis: Redis;
  keys: KeyBuilder;
  /** Absent → no service-factor invalidation is published. */
  pubsub?: PubSub;
  /** Started and stopped with the duties; told of every block (supplier-change events). */
  registry?: Pick<SupplierRegistryWriter, 'start' | 'stop' | 'checkBlock'>;
  log: Logger;
  metrics: LeaderDutiesMetrics;
  /** Unix seconds for `updated_at`; tests pass a controllable one. */
  nowSeconds?: () => number;
}

/** Mirrors the miner YAML keys (snake_case). */
export interface LeaderDutiesConfig {
  default_service_factor?: number;
  service_factors?: Readonly<Record<string, number>>;
  /** TTL of the service-factor keys (upstream: the miner's cache TTL). */
  service_factor_ttl_seconds?: number;
  /** Added to the known application set at start (cache warm-up). */
  known_applications?: readonly string[];
  /** Chain reads in flight during one refresh round. */
  refresh_concurrency?: number;
}

export const DEFAULT_SERVICE_FACTOR_TTL_SECONDS = 2 * 60 * 60;
export const DEFAULT_REFRESH_CONCURRENCY = 8;

export class LeaderDutiesConfigError extends RelayMinerError {
  constructor(field: string, why: string) {
    super('LEADER_DUTIES_CONFIG', `${field}: ${why}`);
  }
}

/** What one service-factor publication did. */
export interface ServiceFactorWrite {
  /** Service ids written (`default` not included). */
  services: string[];
  /** Whether the default key was written. */
  default_written: boolean;
  /** Service ids whose stale keys were deleted. */
  removed: string[];
  /** Whether the default key was deleted (no default configured). */
  default_removed: boolean;
  /** Whether any factor differs from what Redis held before. */
  changed: boolean;
}

/** What one refresh round did. */
export interface RefreshRound {
  unchanged: number;
  changed: string[];
  errors: string[];
}

type EntityName = 'shared_params' | 'session_params' | 'proof_params' | 'application' | 'service';

interface Tracked {
  entity: EntityName;
  /** Label for results and logs, e.g. `application:pokt1…`. */
  name: string;
  load(): Promise<Uint8Array | undefined>;
  cached(): Promise<Uint8Array | undefined>;
  refresh(): Promise<unknown>;
}

interface Codec<T> {
  encode(v: T): { finish(): Uint8Array };
}

function encodeWith<T>(codec: Codec<T>, value: T | undefined): Uint8Array | undefined {
  return value === undefined ? undefined : codec.encode(value).finish();
}

function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'CHAIN_NOT_FOUND';
}

async function orUndefinedIfNotFound<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

function fingerprint(bytes: Uint8Array | undefined): string {
  return bytes === undefined ? '-' : Buffer.from(bytes).toString('base64');
}

const FACTOR_INVALIDATION = jsonInvalidation('service_factor', 'service_id');

/** Prefix of every per-service factor key, taken from the KeyBuilder's own layout. */
function serviceFactorServicePrefix(keys: KeyBuilder): string {
  const probe = 'x';
  const key = keys.serviceFactorServiceKey(probe);
  return key.slice(0, key.length - probe.length);
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

function checkFactor(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new LeaderDutiesConfigError(field, `must be a non-negative number, got ${String(value)}`);
  }
  return value;
}

function checkPositiveInt(field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new LeaderDutiesConfigError(field, `must be a positive integer, got ${value}`);
  }
  return value;
}

export class LeaderDuties {
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly factors: ReadonlyMap<string, number>;
  private readonly defaultFactor: number | undefined;
  private readonly factorTtlSeconds: number;
  private readonly knownApplications: readonly string[];
  private readonly concurrency: number;
  private readonly factorPrefix: string;
  /** Last value seen per tracked entity this term (base64 of its protobuf, `-` = absent). */
  private readonly seen = new Map<string, string>();
  private offFeed: (() => void) | undefined;
  private round: Promise<RefreshRound> | undefined;
  private readonly pending = new Set<Promise<unknown>>();
  private lastFactorWriteSeconds: number | undefined;
  private running = false;

  constructor(
    private readonly deps: LeaderDutiesDeps,
    cfg: LeaderDutiesConfig = {},
  ) {
    this.log = deps.log.child({ component: 'leader_duties' });
    this.now = deps.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
    this.defaultFactor =
      cfg.default_service_factor === undefined
        ? undefined
        : checkFactor('default_service_factor', cfg.default_service_factor);
    const factors = new Map<string, number>();
    for (const [serviceId, factor] of Object.entries(cfg.service_factors ?? {})) {
      const field = `service_factors.${serviceId}`;
      try {
        deps.keys.serviceFactorServiceKey(serviceId);
      } catch (err) {
        throw new LeaderDutiesConfigError(
          field,
          `service id is not usable in a Redis key (${errMessage(err)})`,
        );
      }
      factors.set(serviceId, checkFactor(field, factor));
    }
    this.factors = factors;
    this.factorTtlSeconds = checkPositiveInt(
      'service_factor_ttl_seconds',
      cfg.service_factor_ttl_seconds ?? DEFAULT_SERVICE_FACTOR_TTL_SECONDS,
    );
    this.concurrency = checkPositiveInt(
      'refresh_concurrency',
      cfg.refresh_concurrency ?? DEFAULT_REFRESH_CONCURRENCY,
    );
    (cfg.known_applications ?? []).forEach((a, i) => {
      if (typeof a !== 'string' || a === '' || /[\s{}:*?[\]]/.test(a)) {
        throw new LeaderDutiesConfigError(
          `known_applications[${i}]`,
          'must be a non-empty address without spaces, braces, colons or glob characters',
        );
      }
    });
    this.knownApplications = [...new Set(cfg.known_applications ?? [])];
    this.factorPrefix = serviceFactorServicePrefix(deps.keys);
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Takes up the duties (onElected). Does not throw for Redis or chain trouble; those are retried per block. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.offFeed = this.deps.feed.onBlock((_height, _hash, block) => this.onBlock(block));
    if (this.knownApplications.length > 0) {
      try {
        await this.deps.redis.sadd(this.deps.keys.knownSet('applications'), ...this.knownApplications);
      } catch (err) {
        this.log.warn({ err }, 'adding known_applications to the known set failed');
      }
    }
    const latest = this.deps.feed.latest;
    if (latest !== undefined) this.track(this.publishBlock(latest));
    const factors = this.writeServiceFactorsSafely();
    this.track(factors);
    await factors;
    // Demoted while starting: stop() has run (or is running); leave the registry alone.
    if (!this.running) return;
    if (this.deps.registry !== undefined) {
      const registry = this.deps.registry.start();
      this.track(registry);
      await registry;
      if (!this.running) {
        await this.deps.registry.stop();
        return;
      }
    }
    this.startRound();
    this.log.info('leader duties started');
  }

  /** Gives the duties up (onDemoted / shutdown) and waits for work in flight. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.offFeed?.();
    this.offFeed = undefined;
    await this.deps.registry?.stop();
    await Promise.allSettled([...this.pending]);
    this.seen.clear();
    this.lastFactorWriteSeconds = undefined;
    this.log.info('leader duties stopped');
  }

  /** Resolves when the publications, factor writes and refresh round in flight have settled. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /**
   * One refresh round now (also run per block). Changed values are refreshed through their
   * cache, which rewrites L2 and publishes the invalidation.
   */
  async refreshOnce(): Promise<RefreshRound> {
    const tracked = await this.trackedEntities();
    const result: RefreshRound = { unchanged: 0, changed: [], errors: [] };
    const live = new Set(tracked.map((t) => t.name));
    for (const name of [...this.seen.keys()]) if (!live.has(name)) this.seen.delete(name);
    await forEachLimited(tracked, this.concurrency, async (t) => {
      try {
        const fresh = fingerprint(await t.load());
        let before = this.seen.get(t.name);
        if (before === undefined) before = fingerprint(await t.cached());
        if (before === fresh) {
          this.seen.set(t.name, fresh);
          result.unchanged++;
          this.deps.metrics.refreshes.inc({ entity: t.entity, result: 'unchanged' });
          return;
        }
        await t.refresh();
        this.seen.set(t.name, fresh);
        result.changed.push(t.name);
        this.deps.metrics.refreshes.inc({ entity: t.entity, result: 'changed' });
        this.log.debug({ entity: t.entity }, 'cached chain value changed; refreshed and invalidated');
      } catch (err) {
        this.seen.delete(t.name);
        result.errors.push(t.name);
        this.deps.metrics.refreshes.inc({ entity: t.entity, result: 'error' });
        this.log.warn({ err, entity: t.entity }, 'leader cache refresh failed; retried next block');
      }
    });
    result.changed.sort();
    result.errors.sort();
    return result;
  }

  /**
   * Writes the configured factors (TTL `service_factor_ttl_seconds`) and deletes the keys of
   * factors no longer configured. Throws when Redis fails.
   */
  async writeServiceFactors(): Promise<ServiceFactorWrite> {
    const { redis, keys } = this.deps;
    const now = this.now();
    const existingServiceKeys = await this.scanServiceFactorKeys();
    const defaultKey = keys.serviceFactorDefaultKey();
    const wantedKeys = new Map<string, number>();
    if (this.defaultFactor !== undefined) wantedKeys.set(defaultKey, this.defaultFactor);
    for (const [serviceId, factor] of this.factors)
      wantedKeys.set(keys.serviceFactorServiceKey(serviceId), factor);

    const staleServiceKeys = existingServiceKeys.filter((k) => !wantedKeys.has(k));
    const removeDefault = this.defaultFactor === undefined;
    const readKeys = [...wantedKeys.keys(), ...staleServiceKeys, ...(removeDefault ? [defaultKey] : [])];
    const before = readKeys.length === 0 ? [] : await redis.mget(...readKeys);
    const previous = new Map(readKeys.map((k, i) => [k, before[i] ?? null]));

    let changed = false;
    const tx = redis.multi();
    for (const [key, factor] of wantedKeys) {
      tx.set(key, JSON.stringify({ factor, updated_at: now }), 'EX', this.factorTtlSeconds);
      if (previousFactor(previous.get(key) ?? null) !== factor) changed = true;
    }
    const deletions = [...staleServiceKeys, ...(removeDefault ? [defaultKey] : [])];
    if (deletions.length > 0) tx.del(...deletions);
    for (const k of deletions) if (previous.get(k) !== null) changed = true;
    const replies = await tx.exec();
    const failed = replies?.find(([err]) => err !== null)?.[0];
    if (replies === null || failed !== undefined) {
      throw new LeaderDutiesRedisError('service factor write', { cause: failed ?? undefined });
    }

    if (changed && this.deps.pubsub !== undefined) {
      try {
        await this.deps.pubsub.publish(FACTOR_INVALIDATION.channel(keys), { id: undefined });
      } catch (err) {
        // Relayers re-read factors within their own short memo; a lost notice only delays that.
        this.log.debug({ err }, 'service factor invalidation not published');
      }
    }
    this.lastFactorWriteSeconds = now;
    const defaultRemoved = removeDefault && previous.get(defaultKey) !== null;
    return {
      services: [...this.factors.keys()].sort(),
      default_written: this.defaultFactor !== undefined,
      removed: staleServiceKeys.map((k) => k.slice(this.factorPrefix.length)).sort(),
      default_removed: defaultRemoved,
      changed,
    };
  }

  // ------------------------------------------------------------------------------------------

  private onBlock(block: BlockEvent): void {
    if (!this.running) return;
    this.track(this.publishBlock(block));
    if (this.deps.registry !== undefined) this.track(this.deps.registry.checkBlock(block.height));
    const last = this.lastFactorWriteSeconds;
    if (last === undefined || (this.now() - last) * 2 >= this.factorTtlSeconds) {
      this.track(this.writeServiceFactorsSafely());
    }
    if (this.round !== undefined) {
      this.deps.metrics.refreshRoundsSkipped.inc();
      return;
    }
    this.startRound();
  }

  private startRound(): void {
    if (!this.running || this.round !== undefined) return;
    const round = this.refreshOnce().finally(() => {
      if (this.round === round) this.round = undefined;
    });
    this.round = round;
    this.track(round);
  }

  private async publishBlock(block: BlockEvent): Promise<void> {
    try {
      await this.deps.publisher.publish({ height: block.height, hash: block.hash, time: block.time });
      this.deps.metrics.blocksPublished.inc({ result: 'ok' });
    } catch (err) {
      this.deps.metrics.blocksPublished.inc({ result: 'error' });
      this.log.warn({ err, block_height: block.height }, 'publishing the block event failed');
    }
  }

  private async writeServiceFactorsSafely(): Promise<void> {
    try {
      await this.writeServiceFactors();
      this.deps.metrics.serviceFactorWrites.inc({ result: 'ok' });
    } catch (err) {
      this.deps.metrics.serviceFactorWrites.inc({ result: 'error' });
      this.log.warn({ err }, 'writing service factors failed; retried next block');
    }
  }

  /** Remembers work in flight so stop() and idle() can wait for it. */
  private track(p: Promise<unknown>): void {
    const settled: Promise<void> = p.then(
      () => {
        this.pending.delete(settled);
      },
      () => {
        this.pending.delete(settled);
      },
    );
    this.pending.add(settled);
  }

  private async scanServiceFactorKeys(): Promise<string[]> {
    const pattern = `${escapeGlob(this.factorPrefix)}*`;
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.deps.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
    return [...new Set(found)];
  }

  private async trackedEntities(): Promise<Tracked[]> {
    const { caches, chain, redis, keys } = this.deps;
    const out: Tracked[] = [
      {
        entity: 'shared_params',
        name: 'shared_params',
        load: async () =>
          encodeWith(pb.sharedParams.Params, await orUndefinedIfNotFound(chain.getSharedParams())),
        cached: async () => encodeWith(pb.sharedParams.Params, await caches.sharedParams.get(null)),
        refresh: () => caches.sharedParams.refresh(null),
      },
      {
        entity: 'session_params',
        name: 'session_params',
        load: async () =>
          encodeWith(pb.sessionParams.Params, await orUndefinedIfNotFound(chain.getSessionParams())),
        cached: async () => encodeWith(pb.sessionParams.Params, await caches.sessionParams.get(null)),
        refresh: () => caches.sessionParams.refresh(null),
      },
      {
        entity: 'proof_params',
        name: 'proof_params',
        load: async () =>
          encodeWith(pb.proofParams.Params, await orUndefinedIfNotFound(chain.getProofParams())),
        cached: async () => encodeWith(pb.proofParams.Params, await caches.proofParams.get(null)),
        refresh: () => caches.proofParams.refresh(null),
      },
    ];
    let apps: string[] = [];
    let services: string[] = [];
    try {
      [apps, services] = await Promise.all([
        redis.smembers(keys.knownSet('applications')),
        redis.smembers(keys.knownSet('services')),
      ]);
    } catch (err) {
      this.log.warn({ err }, 'reading the known entity sets failed; only params are refreshed this block');
    }
    for (const address of apps.sort()) {
      out.push({
        entity: 'application',
        name: `application:${address}`,
        load: async () =>
          encodeWith(
            pb.applicationTypes.Application,
            await orUndefinedIfNotFound(chain.getApplication(address)),
          ),
        cached: async () =>
          encodeWith(pb.applicationTypes.Application, await caches.applications.get(address)),
        refresh: () => caches.applications.refresh(address),
      });
    }
    for (const serviceId of services.sort()) {
      out.push({
        entity: 'service',
        name: `service:${serviceId}`,
        load: async () =>
          encodeWith(pb.sharedService.Service, await orUndefinedIfNotFound(chain.getService(serviceId))),
        cached: async () => encodeWith(pb.sharedService.Service, await caches.services.get(serviceId)),
        refresh: () => caches.services.refresh(serviceId),
      });
    }
    return out;
  }
}

/** A Redis command of the leader duties failed. */
export class LeaderDutiesRedisError extends RelayMinerError {
  constructor(what: string, opts: { cause?: unknown } = {}) {
    super('LEADER_DUTIES_REDIS_FAILED', `${what} failed; retried next block`, { ...opts, retryable: true });
  }
}

function previousFactor(raw: string | null): number | undefined {
  if (raw === null) return undefined;
  try {
    const doc = JSON.parse(raw) as { factor?: unknown };
    return typeof doc.factor === 'number' ? doc.factor : undefined;
  } catch {
    return undefined;
  }
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
