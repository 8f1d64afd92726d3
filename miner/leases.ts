/**
 * Supplier ownership across miner replicas (miner.md §1.2): one Redis lease per supplier
 * (`{base}:{miner}:claim:{supplier}` = instance id, `SET NX PX`), renewed by compare + PEXPIRE and
 * released by compare-and-delete. Every replica registers itself (`{base}:{miner}:instance:{id}`
 * with the lease TTL, plus the `{base}:{miner}:active` set) and takes a fair share,
 * ceil(#suppliers / #live instances).
 *
 * One loop per manager, never two Redis rounds at once:
 *   - every renew interval: heartbeat, renew every lease, then claim free suppliers up to the share;
 *   - every rebalance interval: the same, then release the excess over the share (those suppliers
 *     are not taken back by this instance for 2 × the rebalance interval), or, when nothing was
 *     released, claim suppliers that stayed without an owner for a whole rebalance interval;
 *   - when a foreign lease is seen about to expire before the next tick, one extra tick runs just
 *     after its expiry, so a dead replica's suppliers move after about one lease TTL.
 *
 * A lease counts as lost (and `onLost` runs at once, before anything else) when its renew returns
 * 0, fails or times out, or when its local deadline (time the renew was sent + TTL) passes without
 * a successful renew. Local work must stop in `onLost`; the lease is never assumed to survive.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { InvalidInputError, RelayMinerError } from '../core/index.js';
import { RedisScriptError, type KeyBuilder, type LuaScript } from '../transport/index.js';
import { LEASE_ACQUIRE, LEASE_RELEASE, LEASE_RENEW } from './lua/scripts.js';

// ------------------------------------------------------------------------------------------------
// Lease primitives, shared with the global leader elector.

/** A lease Redis call failed or did not answer in time; the caller treats the lease as lost. */
export class LeaseRedisError extends RelayMinerError {
  constructor(what: string, opts: { cause?: unknown } = {}) {
    const detail = opts.cause instanceof Error ? `: ${opts.cause.message}` : '';
    super('LEASE_REDIS_FAILED', `${what} failed${detail}`, { ...opts, retryable: true });
  }
}

function checkLeaseArgs(holderId: string, ttlMs?: number): void {
  if (holderId === '') throw new InvalidInputError('lease holder id', 'must not be empty');
  if (ttlMs !== undefined && (!Number.isSafeInteger(ttlMs) || ttlMs < 1)) {
    throw new InvalidInputError('lease ttl', `must be a whole number of milliseconds >= 1, got ${ttlMs}`);
  }
}

/** 1 → true, 0 → false; anything else is a fault. */
function leaseReply(script: LuaScript<number>, reply: unknown): boolean {
  if (reply === 1) return true;
  if (reply === 0) return false;
  if (reply === -2) throw new InvalidInputError(`Lua script ${script.name}`, 'refused its arguments');
  throw new RedisScriptError(script.name, { cause: new Error(`unexpected reply ${JSON.stringify(reply)}`) });
}

/** Takes the lease when free (or refreshes it when this holder already has it). True = held now. */
export async function acquireLease(
  redis: Redis,
  key: string,
  holderId: string,
  ttlMs: number,
): Promise<boolean> {
  checkLeaseArgs(holderId, ttlMs);
  return leaseReply(LEASE_ACQUIRE, await LEASE_ACQUIRE.run(redis, [key], [holderId, ttlMs]));
}

/** Extends the lease while this holder has it. False = lost (expired or another holder). */
export async function renewLease(
  redis: Redis,
  key: string,
  holderId: string,
  ttlMs: number,
): Promise<boolean> {
  checkLeaseArgs(holderId, ttlMs);
  return leaseReply(LEASE_RENEW, await LEASE_RENEW.run(redis, [key], [holderId, ttlMs]));
}

/** Deletes the lease if this holder has it. False = it was not held by this holder. */
export async function releaseLease(redis: Redis, key: string, holderId: string): Promise<boolean> {
  checkLeaseArgs(holderId);
  return leaseReply(LEASE_RELEASE, await LEASE_RELEASE.run(redis, [key], [holderId]));
}

/** `{hostname}-{8 hex}`, reduced to characters a Redis key part may hold. */
export function defaultInstanceId(): string {
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '-') || 'miner';
  return `${host}-${randomBytes(4).toString('hex')}`;
}

/**
 * What of an error goes into a log line: type, code, message and stack. Client errors carry the command
 * and its arguments (key names, holder ids) as properties; those stay out of the logs.
 */
export function loggableError(err: unknown): {
  type: string;
  code?: string;
  message: string;
  stack?: string;
} {
  if (!(err instanceof Error)) return { type: typeof err, message: String(err) };
  const code = (err as { code?: unknown }).code;
  return {
    type: err.name,
    ...(typeof code === 'string' ? { code } : {}),
    message: err.message,
    ...(err.stack === undefined ? {} : { stack: err.stack }),
  };
}

/** Rejects with LeaseRedisError when `p` has not settled within `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new LeaseRedisError(what, { cause: new Error(`no reply within ${ms} ms`) })),
      ms,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Runs a callback that may be sync or async; failures are logged, never thrown. */
function notify(log: Logger, what: string, fn: () => void | Promise<void>): Promise<void> {
  try {
    const r = fn();
    if (r instanceof Promise) {
      return r.catch((err: unknown) => log.error({ err: loggableError(err) }, `${what} handler failed`));
    }
  } catch (err) {
    log.error({ err: loggableError(err) }, `${what} handler failed`);
  }
  return Promise.resolve();
}

/** Extra wait after a foreign lease's expiry before the early tick tries to take it. */
const EXPIRY_MARGIN_MS = 10;

// ------------------------------------------------------------------------------------------------
// Supplier lease manager.

/** `supplier_claiming` in milliseconds. */
export interface SupplierLeaseTimings {
  /** Lease and instance-key lifetime. */
  claim_ttl_ms: number;
  /** Heartbeat, renew and claim-up-to-share period; must be below claim_ttl_ms. */
  renew_interval_ms: number;
  /** Release-excess / orphan period. */
  rebalance_interval_ms: number;
}

export interface SupplierLeaseConfig extends SupplierLeaseTimings {
  /** Operator addresses this replica may work (from its keys). */
  suppliers: readonly string[];
  /** Unset = hostname + random suffix. */
  instance_id?: string;
  /** Bound on one Redis round; unset = renew_interval_ms. */
  redis_timeout_ms?: number;
}

/**
 * Why a lease stopped being ours:
 * `taken` renew found the key expired or held by another instance; `redis_error` renew failed or
 * timed out; `expired` the local deadline passed without a renew; `rebalanced` released as excess
 * over the fair share; `removed` the supplier left the configured list; `stopped` graceful stop.
 */
export type LeaseLossReason = 'taken' | 'redis_error' | 'expired' | 'rebalanced' | 'removed' | 'stopped';

export interface SupplierLeaseHandlers {
  /** The lease is ours: start working the supplier. Not awaited by the lease loop. */
  onAcquired(supplier: string): void | Promise<void>;
  /**
   * The supplier must no longer be worked here: stop at once. Called once per acquisition. For
   * `rebalanced`, `removed` and `stopped` the lease is kept (and renewed) until the returned promise
   * settles, then released, so a drain finishes before another replica starts.
   */
  onLost(supplier: string, reason: LeaseLossReason): void | Promise<void>;
}

export interface SupplierLeaseManagerDeps {
  redis: Redis;
  keys: KeyBuilder;
  log: Logger;
  handlers: SupplierLeaseHandlers;
}

interface LeaseEntry {
  readonly supplier: string;
  state: 'held' | 'releasing';
  /** Local deadline: send time of the last successful acquire/renew + TTL. */
  validUntil: number;
  readonly acquiredAt: number;
}

interface LeaseView {
  live: number;
  /** Suppliers whose lease key is absent. */
  free: Set<string>;
  /** Earliest expiry (local ms) of a foreign lease this instance could take, if any. */
  nextForeignExpiry: number | undefined;
}

type TickKind = 'renew' | 'rebalance';

export class SupplierLeaseManager {
  readonly instanceId: string;
  private readonly log: Logger;
  private readonly redisTimeoutMs: number;
  private suppliers: string[];
  private readonly leases = new Map<string, LeaseEntry>();
  private readonly cooldownUntil = new Map<string, number>();
  private readonly freeSince = new Map<string, number>();
  private readonly releases = new Set<Promise<void>>();
  private queue: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private nextRenewAt = 0;
  private nextRebalanceAt = 0;
  private earlyAt: number | undefined;
  private started = false;
  private stopping = false;
  private stopPromise: Promise<void> | undefined;
  private lastLive = 0;

  constructor(
    private readonly deps: SupplierLeaseManagerDeps,
    private readonly cfg: SupplierLeaseConfig,
  ) {
    for (const [name, v] of [
      ['claim_ttl_ms', cfg.claim_ttl_ms],
      ['renew_interval_ms', cfg.renew_interval_ms],
      ['rebalance_interval_ms', cfg.rebalance_interval_ms],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 1) {
        throw new InvalidInputError(`supplier lease ${name}`, `must be a whole number >= 1, got ${v}`);
      }
    }
    if (cfg.renew_interval_ms >= cfg.claim_ttl_ms) {
      throw new InvalidInputError('supplier lease renew_interval_ms', 'must be below claim_ttl_ms');
    }
    this.instanceId = cfg.instance_id ?? defaultInstanceId();
    deps.keys.minerInstance(this.instanceId); // refuses ids a key cannot hold
    this.suppliers = normalise(cfg.suppliers, deps.keys);
    this.redisTimeoutMs = cfg.redis_timeout_ms ?? cfg.renew_interval_ms;
    this.log = deps.log.child({ component: 'supplier_leases', instance_id: this.instanceId });
  }

  /** Suppliers whose lease this instance holds (not those being released), sorted. */
  owned(): string[] {
    return [...this.leases.values()]
      .filter((e) => e.state === 'held')
      .map((e) => e.supplier)
      .sort();
  }

  holds(supplier: string): boolean {
    return this.leases.get(supplier)?.state === 'held';
  }

  /** Live instances seen by the last successful view (0 before the first). */
  get liveInstances(): number {
    return this.lastLive;
  }

  /** Registers this instance and claims its first share; resolves after that first round. */
  async start(): Promise<void> {
    if (this.started || this.stopping) return;
    this.started = true;
    this.nextRebalanceAt = Date.now() + this.cfg.rebalance_interval_ms;
    await this.enqueue(() => this.tick('renew'));
    this.schedule();
  }

  /**
   * Graceful stop: no more claims; every lease goes through onLost('stopped') (renewed meanwhile),
   * is released, and the instance leaves the active set, so peers take over on their next tick.
   */
  stop(): Promise<void> {
    this.stopPromise ??= this.doStop();
    return this.stopPromise;
  }

  /** Replaces the supplier list; leases of suppliers no longer listed are released. */
  setSuppliers(suppliers: readonly string[]): void {
    this.suppliers = normalise(suppliers, this.deps.keys);
    const wanted = new Set(this.suppliers);
    for (const e of this.leases.values()) {
      if (e.state === 'held' && !wanted.has(e.supplier)) this.beginRelease(e, 'removed');
    }
  }

  private async doStop(): Promise<void> {
    this.stopping = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.queue;
    if (!this.started) return;
    const keepAlive = setInterval(
      () => void this.enqueue(() => this.tick('renew')),
      this.cfg.renew_interval_ms,
    );
    try {
      for (const e of [...this.leases.values()]) if (e.state === 'held') this.beginRelease(e, 'stopped');
      while (this.releases.size > 0) await Promise.allSettled([...this.releases]);
    } finally {
      clearInterval(keepAlive);
    }
    await this.queue;
    if (this.watchdog !== undefined) clearTimeout(this.watchdog);
    this.watchdog = undefined;
    const { redis, keys } = this.deps;
    try {
      await withTimeout(
        redis
          .pipeline()
          .del(keys.minerInstance(this.instanceId))
          .srem(keys.minerActiveSet(), this.instanceId)
          .exec(),
        this.redisTimeoutMs,
        'instance deregistration',
      );
    } catch (err) {
      this.log.warn(
        { err: loggableError(err) },
        'could not deregister the instance; its key expires with the lease TTL',
      );
    }
    this.log.info('supplier leases stopped');
  }

  private enqueue(fn: () => Promise<void>): Promise<void> {
    const next = this.queue
      .then(fn)
      .catch((err: unknown) => this.log.error({ err: loggableError(err) }, 'lease round failed'));
    this.queue = next;
    return next;
  }

  private schedule(): void {
    if (this.stopping) return;
    const due = Math.min(this.nextRenewAt, this.nextRebalanceAt, this.earlyAt ?? Infinity);
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        const kind: TickKind = Date.now() >= this.nextRebalanceAt - 1 ? 'rebalance' : 'renew';
        void this.enqueue(() => this.tick(kind)).then(() => this.schedule());
      },
      Math.max(0, due - Date.now()),
    );
  }

  private async tick(kind: TickKind): Promise<void> {
    const start = Date.now();
    this.nextRenewAt = start + this.cfg.renew_interval_ms;
    if (kind === 'rebalance') this.nextRebalanceAt = start + this.cfg.rebalance_interval_ms;
    this.earlyAt = undefined;
    this.expireOverdue(start);
    await this.heartbeat();
    await this.renewAll();
    if (this.stopping) return;
    const view = await this.readView();
    if (view === undefined) return;
    const share = this.suppliers.length === 0 ? 0 : Math.ceil(this.suppliers.length / view.live);
    const released = kind === 'rebalance' && this.releaseExcess(share);
    if (!released) {
      await this.claim(view, share);
      if (kind === 'rebalance') await this.claimOrphans(view);
    }
    if (
      view.nextForeignExpiry !== undefined &&
      view.nextForeignExpiry + EXPIRY_MARGIN_MS < this.nextRenewAt
    ) {
      this.earlyAt = view.nextForeignExpiry + EXPIRY_MARGIN_MS;
    }
  }

  /** Instance key first, so it never outlives this instance's leases. */
  private async heartbeat(): Promise<void> {
    const { redis, keys } = this.deps;
    try {
      const res = await withTimeout(
        redis
          .pipeline()
          .set(keys.minerInstance(this.instanceId), this.instanceId, 'PX', this.cfg.claim_ttl_ms)
          .sadd(keys.minerActiveSet(), this.instanceId)
          .exec(),
        this.redisTimeoutMs,
        'instance heartbeat',
      );
      const failed = res?.find(([err]) => err !== null)?.[0];
      if (failed) throw failed;
    } catch (err) {
      this.log.warn({ err: loggableError(err) }, 'instance heartbeat failed');
    }
  }

  private async renewAll(): Promise<void> {
    const entries = [...this.leases.values()];
    if (entries.length === 0) return;
    const { redis, keys } = this.deps;
    const sentAt = Date.now();
    await Promise.all(
      entries.map(async (e) => {
        let ok: boolean;
        try {
          ok = await withTimeout(
            renewLease(redis, keys.minerClaim(e.supplier), this.instanceId, this.cfg.claim_ttl_ms),
            this.redisTimeoutMs,
            'lease renew',
          );
        } catch (err) {
          this.log.warn(
            { err: loggableError(err), supplier: e.supplier },
            'lease renew failed; supplier dropped',
          );
          this.lose(e, 'redis_error');
          return;
        }
        if (!ok) {
          this.log.warn({ supplier: e.supplier }, 'lease lost: expired or taken by another instance');
          this.lose(e, 'taken');
          return;
        }
        if (this.leases.get(e.supplier) === e) e.validUntil = sentAt + this.cfg.claim_ttl_ms;
      }),
    );
    this.armWatchdog();
  }

  private async readView(): Promise<LeaseView | undefined> {
    const { redis, keys } = this.deps;
    try {
      const members = await withTimeout(
        redis.smembers(keys.minerActiveSet()),
        this.redisTimeoutMs,
        'active set read',
      );
      const pipe = redis.pipeline();
      const checked: string[] = [];
      const malformed: string[] = [];
      for (const m of members) {
        let key: string;
        try {
          key = keys.minerInstance(m);
        } catch {
          malformed.push(m);
          continue;
        }
        checked.push(m);
        pipe.exists(key);
      }
      for (const s of this.suppliers) pipe.pttl(keys.minerClaim(s));
      const readAt = Date.now();
      const res = (await withTimeout(pipe.exec(), this.redisTimeoutMs, 'lease view read')) ?? [];
      const values = res.map(([err, v]) => {
        if (err) throw err;
        return v as number;
      });
      const stale = [...malformed, ...checked.filter((_, i) => values[i] === 0)];
      const alive = checked.filter((_, i) => values[i] === 1);
      if (stale.length > 0) {
        await withTimeout(
          redis.srem(keys.minerActiveSet(), ...stale),
          this.redisTimeoutMs,
          'stale instance cleanup',
        );
      }
      const live = alive.length + (alive.includes(this.instanceId) ? 0 : 1);
      const free = new Set<string>();
      let nextForeignExpiry: number | undefined;
      const now = Date.now();
      this.suppliers.forEach((s, i) => {
        const pttl = values[checked.length + i]!;
        if (pttl === -2) {
          free.add(s);
          if (!this.freeSince.has(s)) this.freeSince.set(s, now);
          return;
        }
        this.freeSince.delete(s);
        if (pttl >= 0 && !this.leases.has(s) && !this.coolingDown(s, now)) {
          const at = readAt + pttl;
          if (nextForeignExpiry === undefined || at < nextForeignExpiry) nextForeignExpiry = at;
        }
      });
      this.lastLive = live;
      return { live, free, nextForeignExpiry };
    } catch (err) {
      this.log.warn({ err: loggableError(err) }, 'lease view read failed; no claims this round');
      return undefined;
    }
  }

  private coolingDown(supplier: string, now: number): boolean {
    const until = this.cooldownUntil.get(supplier);
    if (until === undefined) return false;
    if (until > now) return true;
    this.cooldownUntil.delete(supplier);
    return false;
  }

  private heldCount(): number {
    let n = 0;
    for (const e of this.leases.values()) if (e.state === 'held') n++;
    return n;
  }

  /** Claims free suppliers until this instance holds `share`. */
  private async claim(view: LeaseView, share: number): Promise<void> {
    const now = Date.now();
    const candidates = shuffle(
      [...view.free].filter((s) => !this.leases.has(s) && !this.coolingDown(s, now)),
    );
    while (candidates.length > 0 && !this.stopping) {
      const want = share - this.heldCount();
      if (want <= 0) return;
      await this.tryAcquire(candidates.splice(0, want));
    }
  }

  /** Claims beyond the share: suppliers nobody took for a whole rebalance interval. */
  private async claimOrphans(view: LeaseView): Promise<void> {
    const now = Date.now();
    const orphans = [...view.free].filter(
      (s) =>
        !this.leases.has(s) &&
        !this.coolingDown(s, now) &&
        now - (this.freeSince.get(s) ?? now) >= this.cfg.rebalance_interval_ms,
    );
    if (orphans.length > 0) await this.tryAcquire(orphans);
  }

  private async tryAcquire(suppliers: string[]): Promise<void> {
    const { redis, keys } = this.deps;
    const sentAt = Date.now();
    await Promise.all(
      suppliers.map(async (s) => {
        let ok: boolean;
        try {
          ok = await withTimeout(
            acquireLease(redis, keys.minerClaim(s), this.instanceId, this.cfg.claim_ttl_ms),
            this.redisTimeoutMs,
            'lease acquire',
          );
        } catch (err) {
          this.log.warn({ err: loggableError(err), supplier: s }, 'lease acquire failed');
          return;
        }
        if (!ok || this.stopping || this.leases.has(s) || !this.suppliers.includes(s)) {
          // A stop or list change raced the acquire: give the lease straight back.
          if (ok && !this.leases.has(s)) void this.releaseKey(s);
          return;
        }
        this.freeSince.delete(s);
        const entry: LeaseEntry = {
          supplier: s,
          state: 'held',
          validUntil: sentAt + this.cfg.claim_ttl_ms,
          acquiredAt: Date.now(),
        };
        this.leases.set(s, entry);
        this.log.info({ supplier: s }, 'supplier lease acquired');
        void notify(this.log, 'onAcquired', () => this.deps.handlers.onAcquired(s));
      }),
    );
    this.armWatchdog();
  }

  /** Releases the newest leases above `share`; true when any was released. */
  private releaseExcess(share: number): boolean {
    const held = [...this.leases.values()].filter((e) => e.state === 'held');
    const excess = held.length - share;
    if (excess <= 0) return false;
    held.sort((a, b) => b.acquiredAt - a.acquiredAt || (a.supplier < b.supplier ? -1 : 1));
    const until = Date.now() + 2 * this.cfg.rebalance_interval_ms;
    for (const e of held.slice(0, excess)) {
      this.cooldownUntil.set(e.supplier, until);
      this.beginRelease(e, 'rebalanced');
    }
    return true;
  }

  /** onLost first (the lease is still renewed while it runs), then compare-and-delete. */
  private beginRelease(entry: LeaseEntry, reason: LeaseLossReason): void {
    entry.state = 'releasing';
    this.log.info({ supplier: entry.supplier, reason }, 'releasing supplier lease');
    const p = (async () => {
      await notify(this.log, 'onLost', () => this.deps.handlers.onLost(entry.supplier, reason));
      if (this.leases.get(entry.supplier) !== entry) return;
      this.leases.delete(entry.supplier);
      this.armWatchdog();
      await this.releaseKey(entry.supplier);
    })();
    this.releases.add(p);
    void p.finally(() => this.releases.delete(p));
  }

  private async releaseKey(supplier: string): Promise<void> {
    const { redis, keys } = this.deps;
    try {
      await withTimeout(
        releaseLease(redis, keys.minerClaim(supplier), this.instanceId),
        this.redisTimeoutMs,
        'lease release',
      );
    } catch (err) {
      this.log.warn({ err: loggableError(err), supplier }, 'lease release failed; it expires with its TTL');
    }
  }

  /** Drops a lease that is no longer ours; onLost runs now unless a release already called it. */
  private lose(entry: LeaseEntry, reason: LeaseLossReason): void {
    if (this.leases.get(entry.supplier) !== entry) return;
    this.leases.delete(entry.supplier);
    if (entry.state === 'held') {
      void notify(this.log, 'onLost', () => this.deps.handlers.onLost(entry.supplier, reason));
    }
  }

  private expireOverdue(now: number): void {
    for (const e of [...this.leases.values()]) {
      if (e.validUntil <= now) {
        this.log.warn({ supplier: e.supplier }, 'lease deadline passed without a renew; supplier dropped');
        this.lose(e, 'expired');
      }
    }
  }

  /** A timer at the earliest local deadline, so a stalled loop cannot outlive a lease. */
  private armWatchdog(): void {
    if (this.watchdog !== undefined) clearTimeout(this.watchdog);
    this.watchdog = undefined;
    let earliest = Infinity;
    for (const e of this.leases.values()) earliest = Math.min(earliest, e.validUntil);
    if (earliest === Infinity) return;
    this.watchdog = setTimeout(
      () => {
        this.watchdog = undefined;
        this.expireOverdue(Date.now());
        this.armWatchdog();
      },
      Math.max(0, earliest - Date.now()),
    );
  }
}

function normalise(suppliers: readonly string[], keys: KeyBuilder): string[] {
  const unique = [...new Set(suppliers)].sort();
  for (const s of unique) keys.minerClaim(s); // refuses addresses a key cannot hold
  return unique;
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
