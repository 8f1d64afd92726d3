/**
 * One keyed cache over three tiers (cache-and-redis.md §1, §3):
 *
 *   L1  in-process map, per-entry TTL, bounded size (least recently used evicted first)
 *   L2  Redis GET/SET of the entity's protobuf bytes with the entity's TTL
 *   L3  the entity's loader (a chain query)
 *
 * An L3 fill runs under a short `SET NX PX` lock with an owner token, so one replica fills L2
 * while the others poll L2 briefly and then read it; a replica that waited in vain queries the
 * chain itself. Not-found answers are values (`undefined`) and are cached in L1 for a short TTL.
 * Redis failures are counted and absorbed (L2 miss, no lock), so the chain still answers when
 * Redis is down; when the chain fails too the lookup throws CacheUnavailableError.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  loadScriptFile,
  type InvalidationType,
  type KeyBuilder,
  type PubSub,
  type Unsubscribe,
} from '../transport/index.js';
import { CacheStateError, CacheUnavailableError } from './errors.js';
import type { InvalidationFormat, InvalidationMessage, Invalidatable } from './invalidation.js';
import type { CacheMetrics } from './metrics.js';

/** What a TieredCache needs to know about one cached thing. */
export interface CacheEntity<A, V> {
  /** Metrics label and invalidation channel type. */
  readonly type: InvalidationType;
  /** L1 key and the ID carried by invalidations. */
  id(args: A): string;
  /** Inverse of `id` (to re-read L2 when a remote invalidation names an entry). */
  parseId(id: string): A;
  l2Key(keys: KeyBuilder, args: A): string;
  lockKey(keys: KeyBuilder, args: A): string;
  /** SCAN pattern of every L2 entry of the type; absent → invalidateAll leaves L2 alone. */
  l2Pattern?(keys: KeyBuilder): string;
  encode(value: V): Uint8Array;
  decode(bytes: Uint8Array): V;
  /** L3. `undefined`, or a ChainNotFoundError (code CHAIN_NOT_FOUND), means "does not exist". */
  load(args: A): Promise<V | undefined>;
  l1TtlMs: number;
  /** L2 TTL for this value; undefined = no expiry. */
  l2TtlMs(value: V, args: A): number | undefined;
  readonly invalidation: InvalidationFormat;
}

export interface TieredCacheDeps {
  redis: Redis;
  keys: KeyBuilder;
  /** Absent → no cross-replica invalidation (single process, tests). */
  pubsub?: PubSub;
  log: Logger;
  metrics: CacheMetrics;
  /** Milliseconds clock for L1 expiry; tests pass a controllable one. */
  now?: () => number;
}

export interface TieredCacheConfig {
  l1_max_entries?: number;
  /** L1 lifetime of a not-found answer. */
  negative_ttl_ms?: number;
  /** Fill-lock expiry (upstream: 5 s). */
  lock_ttl_ms?: number;
  /** How long a replica that lost the lock polls L2 before querying the chain itself. */
  lock_wait_ms?: number;
  lock_poll_ms?: number;
}

export const DEFAULT_TIERED_CACHE_CONFIG: Readonly<Required<TieredCacheConfig>> = Object.freeze({
  l1_max_entries: 10_000,
  negative_ttl_ms: 5_000,
  lock_ttl_ms: 5_000,
  lock_wait_ms: 250,
  lock_poll_ms: 5,
});

interface L1Entry<V> {
  readonly value: V | undefined;
  readonly expiresAt: number;
  /** Read since it was stored or last spared from eviction (second-chance bound). */
  used: boolean;
}

type LockResult = { kind: 'acquired'; token: string } | { kind: 'contended' } | { kind: 'error' };

type L2Read<V> = { kind: 'hit'; value: V } | { kind: 'miss' } | { kind: 'error' };

const releaseLock = loadScriptFile<number>(new URL('./lua/release-lock.lua', import.meta.url), 1);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function isChainNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'CHAIN_NOT_FOUND';
}

export class TieredCache<A, V> implements Invalidatable {
  readonly type: InvalidationType;
  private readonly cfg: Required<TieredCacheConfig>;
  private readonly l1 = new Map<string, L1Entry<V>>();
  private readonly inflight = new Map<string, Promise<V | undefined>>();
  private readonly now: () => number;
  private readonly log: Logger;
  private unsubscribe: Unsubscribe | undefined;
  private closed = false;

  constructor(
    private readonly deps: TieredCacheDeps,
    private readonly entity: CacheEntity<A, V>,
    cfg: TieredCacheConfig = {},
  ) {
    this.type = entity.type;
    this.cfg = { ...DEFAULT_TIERED_CACHE_CONFIG, ...cfg };
    this.now = deps.now ?? Date.now;
    this.log = deps.log.child({ component: 'cache', cache: entity.type });
  }

  /** Subscribes to the type's invalidation channel (no-op without a pubsub). */
  async start(): Promise<void> {
    if (this.closed) throw new CacheStateError(`cache ${this.type}: start() after close()`);
    if (this.deps.pubsub === undefined || this.unsubscribe !== undefined) return;
    this.unsubscribe = await this.deps.pubsub.subscribe(this.channel(), (msg) => {
      void this.applyRemote(msg);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const off = this.unsubscribe;
    this.unsubscribe = undefined;
    if (off !== undefined) await off();
    this.l1.clear();
    this.deps.metrics.l1Entries.set({ cache: this.type }, 0);
  }

  /** The entity, or undefined when it does not exist. Throws CacheUnavailableError when all tiers fail. */
  async get(args: A): Promise<V | undefined> {
    const id = this.entity.id(args);
    const hit = this.l1Hit(id);
    if (hit !== undefined) return hit.value;
    return this.getMissed(args, id);
  }

  /**
   * What get() answers when L1 holds a fresh entry (counted as a hit, like get()), without a
   * promise: `{ value }`, where value undefined means cached as not existing. Undefined when L1
   * has no fresh entry; then call get(), which counts the miss.
   */
  cached(args: A): { value: V | undefined } | undefined {
    const hit = this.l1Hit(this.entity.id(args));
    return hit === undefined ? undefined : { value: hit.value };
  }

  private l1Hit(id: string): L1Entry<V> | undefined {
    const entry = this.l1Get(id);
    if (entry === undefined) return undefined;
    if (entry.value === undefined) this.deps.metrics.negativeHits.inc({ cache: this.type });
    else this.deps.metrics.hits.inc({ cache: this.type, level: 'l1' });
    return entry;
  }

  private getMissed(args: A, id: string): Promise<V | undefined> {
    this.deps.metrics.misses.inc({ cache: this.type, level: 'l1' });
    const pending = this.inflight.get(id);
    if (pending !== undefined) return pending;
    const p = this.fetch(args, id).finally(() => this.inflight.delete(id));
    this.inflight.set(id, p);
    return p;
  }

  /** L1 only, without touching Redis or the chain (undefined also when absent or expired). */
  peek(args: A): V | undefined {
    return this.l1Get(this.entity.id(args))?.value;
  }

  /**
   * Force refresh (leader orchestrator, upstream `force=true`): query the chain, write L2 and L1,
   * and tell every other replica to drop its L1 copy (they re-read the new L2 value).
   */
  async refresh(args: A): Promise<V | undefined> {
    const id = this.entity.id(args);
    const value = await this.loadL3(args, id);
    const l2Key = this.entity.l2Key(this.deps.keys, args);
    if (value === undefined) {
      this.l1Set(id, undefined, this.cfg.negative_ttl_ms);
      await this.l2Delete(l2Key);
    } else {
      await this.l2Write(l2Key, value, args);
      this.l1Set(id, value, this.entity.l1TtlMs);
    }
    await this.publish({ id });
    return value;
  }

  /** Drops one entry everywhere: L1 here, L2, then L1 on every replica. */
  async invalidate(args: A): Promise<void> {
    const id = this.entity.id(args);
    this.dropL1(id);
    this.deps.metrics.invalidations.inc({ cache: this.type, source: 'local' });
    await this.l2Delete(this.entity.l2Key(this.deps.keys, args));
    await this.publish({ id });
  }

  async invalidateId(id: string): Promise<void> {
    await this.invalidate(this.entity.parseId(id));
  }

  /** Drops every entry of the type: L1 here, L2 (when the entity has a pattern), L1 everywhere. */
  async invalidateAll(): Promise<void> {
    this.clearL1();
    this.deps.metrics.invalidations.inc({ cache: this.type, source: 'local' });
    const pattern = this.entity.l2Pattern?.(this.deps.keys);
    if (pattern !== undefined) {
      try {
        let cursor = '0';
        do {
          const [next, found] = await this.deps.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
          cursor = next;
          if (found.length > 0) await this.deps.redis.unlink(...found);
        } while (cursor !== '0');
      } catch (err) {
        this.countError('l2_delete', err);
      }
    }
    await this.publish({ id: undefined });
  }

  /** Entries currently in L1 (expired ones included until touched). */
  l1Size(): number {
    return this.l1.size;
  }

  // ------------------------------------------------------------------------------------------

  private channel(): ReturnType<InvalidationFormat['channel']> {
    return this.entity.invalidation.channel(this.deps.keys);
  }

  private async fetch(args: A, id: string): Promise<V | undefined> {
    const l2Key = this.entity.l2Key(this.deps.keys, args);
    const first = await this.l2Read(l2Key);
    if (first.kind === 'hit') {
      this.deps.metrics.hits.inc({ cache: this.type, level: 'l2' });
      this.l1Set(id, first.value, this.entity.l1TtlMs);
      return first.value;
    }
    this.deps.metrics.misses.inc({ cache: this.type, level: 'l2' });

    // Redis failed on the read: do not wait on a lock there, go to the chain.
    let token: string | undefined;
    if (first.kind === 'miss') {
      const lockKey = this.entity.lockKey(this.deps.keys, args);
      const lock = await this.tryLock(lockKey);
      if (lock.kind === 'contended') {
        const waited = await this.waitForFill(l2Key, lockKey);
        if (waited !== undefined) {
          this.l1Set(id, waited, this.entity.l1TtlMs);
          return waited;
        }
      } else if (lock.kind === 'acquired') {
        token = lock.token;
      }
    }

    try {
      const value = await this.loadL3(args, id);
      if (value === undefined) {
        this.l1Set(id, undefined, this.cfg.negative_ttl_ms);
        return undefined;
      }
      await this.l2Write(l2Key, value, args);
      this.l1Set(id, value, this.entity.l1TtlMs);
      return value;
    } finally {
      if (token !== undefined) {
        const lockKey = this.entity.lockKey(this.deps.keys, args);
        await releaseLock.run(this.deps.redis, [lockKey], [token]).catch((err: unknown) => {
          // The lock expires by itself within lock_ttl_ms.
          this.countError('lock', err);
        });
      }
    }
  }

  private async loadL3(args: A, id: string): Promise<V | undefined> {
    let value: V | undefined;
    try {
      value = await this.entity.load(args);
    } catch (err) {
      if (isChainNotFound(err)) {
        value = undefined;
      } else {
        this.deps.metrics.fills.inc({ cache: this.type, result: 'error' });
        throw new CacheUnavailableError(this.type, id, { cause: err });
      }
    }
    this.deps.metrics.fills.inc({ cache: this.type, result: value === undefined ? 'not_found' : 'found' });
    return value;
  }

  private async tryLock(lockKey: string): Promise<LockResult> {
    const token = randomBytes(8).toString('hex');
    try {
      const ok = await this.deps.redis.set(lockKey, token, 'PX', this.cfg.lock_ttl_ms, 'NX');
      if (ok === 'OK') {
        this.deps.metrics.lockAcquisitions.inc({ cache: this.type, result: 'acquired' });
        return { kind: 'acquired', token };
      }
      this.deps.metrics.lockAcquisitions.inc({ cache: this.type, result: 'contended' });
      return { kind: 'contended' };
    } catch (err) {
      this.deps.metrics.lockAcquisitions.inc({ cache: this.type, result: 'error' });
      this.countError('lock', err);
      return { kind: 'error' };
    }
  }

  /** Polls L2 while the winner fills it; undefined when it gave up (the caller queries L3). */
  private async waitForFill(l2Key: string, lockKey: string): Promise<V | undefined> {
    const deadline = performance.now() + this.cfg.lock_wait_ms;
    for (;;) {
      await sleep(this.cfg.lock_poll_ms);
      const read = await this.l2Read(l2Key);
      if (read.kind === 'hit') {
        this.deps.metrics.hits.inc({ cache: this.type, level: 'l2_retry' });
        this.deps.metrics.lockWaits.inc({ cache: this.type, outcome: 'l2_hit' });
        return read.value;
      }
      let held = false;
      if (read.kind === 'miss') {
        try {
          held = (await this.deps.redis.exists(lockKey)) === 1;
        } catch (err) {
          this.countError('lock', err);
        }
      }
      // Lock gone without a value (winner found nothing or failed), Redis failing, or time up.
      if (!held || performance.now() >= deadline) {
        this.deps.metrics.lockWaits.inc({ cache: this.type, outcome: 'gave_up' });
        return undefined;
      }
    }
  }

  private async l2Read(key: string): Promise<L2Read<V>> {
    let bytes: Buffer | null;
    try {
      bytes = await this.deps.redis.getBuffer(key);
    } catch (err) {
      this.countError('l2_read', err);
      return { kind: 'error' };
    }
    if (bytes === null) return { kind: 'miss' };
    try {
      return { kind: 'hit', value: this.entity.decode(new Uint8Array(bytes)) };
    } catch (err) {
      // Foreign or corrupt entry (e.g. an upstream JSON value): a miss, overwritten by the fill.
      this.countError('decode', err);
      return { kind: 'miss' };
    }
  }

  private async l2Write(key: string, value: V, args: A): Promise<void> {
    const bytes = Buffer.from(this.entity.encode(value));
    const ttlMs = this.entity.l2TtlMs(value, args);
    try {
      if (ttlMs === undefined) await this.deps.redis.set(key, bytes);
      else await this.deps.redis.set(key, bytes, 'PX', Math.max(1, Math.round(ttlMs)));
    } catch (err) {
      this.countError('l2_write', err);
    }
  }

  private async l2Delete(key: string): Promise<void> {
    try {
      await this.deps.redis.del(key);
    } catch (err) {
      this.countError('l2_delete', err);
    }
  }

  private async publish(msg: InvalidationMessage): Promise<void> {
    if (this.deps.pubsub === undefined) return;
    try {
      await this.deps.pubsub.publish(this.channel(), msg);
    } catch (err) {
      // Other replicas keep their L1 copy until its TTL; bounded staleness, not a failure here.
      this.countError('publish', err);
    }
  }

  private async applyRemote(msg: InvalidationMessage): Promise<void> {
    this.deps.metrics.invalidations.inc({ cache: this.type, source: 'remote' });
    if (msg.id === undefined) {
      this.clearL1();
      return;
    }
    this.dropL1(msg.id);
    let args: A;
    try {
      args = this.entity.parseId(msg.id);
    } catch (err) {
      this.countError('decode', err);
      return;
    }
    const read = await this.l2Read(this.entity.l2Key(this.deps.keys, args));
    if (read.kind === 'hit' && !this.closed) this.l1Set(msg.id, read.value, this.entity.l1TtlMs);
  }

  private l1Get(id: string): L1Entry<V> | undefined {
    const entry = this.l1.get(id);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.dropL1(id);
      return undefined;
    }
    // Recency for the size bound is a flag (second chance), not a move to the end of the Map: a
    // delete + set on every hit reallocates the Map's table again and again on the relay path.
    entry.used = true;
    return entry;
  }

  private l1Set(id: string, value: V | undefined, ttlMs: number): void {
    if (this.closed) return;
    this.l1.delete(id);
    this.l1.set(id, { value, expiresAt: this.now() + ttlMs, used: false });
    // Evict from the oldest end. An entry read since it was stored or last spared, and the entry
    // just stored, are spared once by moving them to the newest end (their flag cleared), so the
    // least recently used entries go first, approximately. At most one pass of spares per call.
    let spares = this.l1.size;
    while (this.l1.size > this.cfg.l1_max_entries) {
      const oldest = this.l1.entries().next();
      if (oldest.done === true) break;
      const [oldestId, entry] = oldest.value;
      this.l1.delete(oldestId);
      if ((entry.used || oldestId === id) && spares-- > 0) {
        entry.used = false;
        this.l1.set(oldestId, entry);
      }
    }
    this.deps.metrics.l1Entries.set({ cache: this.type }, this.l1.size);
  }

  private dropL1(id: string): void {
    if (this.l1.delete(id)) this.deps.metrics.l1Entries.set({ cache: this.type }, this.l1.size);
  }

  private clearL1(): void {
    this.l1.clear();
    this.deps.metrics.l1Entries.set({ cache: this.type }, 0);
  }

  private countError(tier: string, err: unknown): void {
    this.deps.metrics.errors.inc({ cache: this.type, tier });
    this.log.debug({ err, tier }, 'cache tier error absorbed');
  }
}
