/**
 * Global leader election (miner.md §1.1): one replica holds `{base}:{miner}:global_leader`
 * (value = instance id) through the same acquire / renew / release Lua trio as the supplier leases.
 * Every heartbeat the leader renews and a follower tries to acquire; a follower that sees the lock
 * about to expire before its next heartbeat tries again just after the expiry, so a dead leader is
 * replaced after about one TTL. Renew returning 0, failing or timing out, or the local deadline
 * (renew send time + TTL) passing, demotes at once.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { InvalidInputError } from '../core/index.js';
import type { KeyBuilder } from '../transport/index.js';
import {
  acquireLease,
  defaultInstanceId,
  loggableError,
  releaseLease,
  renewLease,
  withTimeout,
} from './leases.js';

/** `leader_election` in milliseconds. */
export interface LeaderElectionTimings {
  /** Lifetime of the leader lock. */
  leader_ttl_ms: number;
  /** Acquire/renew period; must be below leader_ttl_ms. */
  heartbeat_interval_ms: number;
}

export interface LeaderElectorConfig extends LeaderElectionTimings {
  /** Unset = hostname + random suffix. */
  instance_id?: string;
  /** Bound on one Redis call; unset = heartbeat_interval_ms. */
  redis_timeout_ms?: number;
}

/**
 * Why leadership ended: `taken` renew found the lock expired or held by another instance;
 * `redis_error` renew failed or timed out; `expired` the local deadline passed without a renew;
 * `stopped` graceful stop.
 */
export type LeadershipLossReason = 'taken' | 'redis_error' | 'expired' | 'stopped';

export interface LeaderHandlers {
  /** This instance is the leader now: start leader-only work. Not awaited by the election loop. */
  onElected(): void | Promise<void>;
  /** Leadership ended: stop leader-only work at once. On `stopped` the lock is released after it settles. */
  onDemoted(reason: LeadershipLossReason): void | Promise<void>;
}

export interface GlobalLeaderElectorDeps {
  redis: Redis;
  keys: KeyBuilder;
  log: Logger;
  handlers: LeaderHandlers;
}

const EXPIRY_MARGIN_MS = 10;

export class GlobalLeaderElector {
  readonly instanceId: string;
  private readonly log: Logger;
  private readonly key: string;
  private readonly redisTimeoutMs: number;
  private leader = false;
  private validUntil = 0;
  private queue: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private started = false;
  private stopping = false;
  /** onDemoted('stopped') already ran: a later loss must not report again. */
  private stopNotified = false;
  private stopPromise: Promise<void> | undefined;

  constructor(
    private readonly deps: GlobalLeaderElectorDeps,
    private readonly cfg: LeaderElectorConfig,
  ) {
    for (const [name, v] of [
      ['leader_ttl_ms', cfg.leader_ttl_ms],
      ['heartbeat_interval_ms', cfg.heartbeat_interval_ms],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 1) {
        throw new InvalidInputError(`leader election ${name}`, `must be a whole number >= 1, got ${v}`);
      }
    }
    if (cfg.heartbeat_interval_ms >= cfg.leader_ttl_ms) {
      throw new InvalidInputError('leader election heartbeat_interval_ms', 'must be below leader_ttl_ms');
    }
    this.instanceId = cfg.instance_id ?? defaultInstanceId();
    if (this.instanceId === '') throw new InvalidInputError('leader instance id', 'must not be empty');
    this.key = deps.keys.globalLeader();
    this.redisTimeoutMs = cfg.redis_timeout_ms ?? cfg.heartbeat_interval_ms;
    this.log = deps.log.child({ component: 'leader_election', instance_id: this.instanceId });
  }

  get isLeader(): boolean {
    return this.leader;
  }

  /** Tries once at once, then every heartbeat; resolves after the first attempt. */
  async start(): Promise<void> {
    if (this.started || this.stopping) return;
    this.started = true;
    let delay = this.cfg.heartbeat_interval_ms;
    await this.enqueue(async () => {
      delay = await this.beat();
    });
    this.schedule(delay);
  }

  /** Stops the loop; a leader runs onDemoted('stopped') and then releases the lock. */
  stop(): Promise<void> {
    this.stopPromise ??= this.doStop();
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    this.stopping = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.queue;
    if (!this.leader) return;
    // Keep the lock alive while leader-only work drains.
    const keepAlive = setInterval(
      () => void this.enqueue(async () => void (await this.beat())),
      this.cfg.heartbeat_interval_ms,
    );
    try {
      this.stopNotified = true;
      this.log.info({ reason: 'stopped' }, 'no longer global leader');
      await this.call(() => this.deps.handlers.onDemoted('stopped'), 'onDemoted');
    } finally {
      clearInterval(keepAlive);
    }
    await this.queue;
    const wasLeader = this.leader;
    this.setFollower();
    if (!wasLeader) return;
    try {
      await withTimeout(
        releaseLease(this.deps.redis, this.key, this.instanceId),
        this.redisTimeoutMs,
        'leader release',
      );
      this.log.info('leadership released');
    } catch (err) {
      this.log.warn({ err: loggableError(err) }, 'leader release failed; the lock expires with its TTL');
    }
  }

  private enqueue(fn: () => Promise<void>): Promise<void> {
    const next = this.queue
      .then(fn)
      .catch((err: unknown) => this.log.error({ err: loggableError(err) }, 'election round failed'));
    this.queue = next;
    return next;
  }

  private schedule(delayMs: number): void {
    if (this.stopping) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      let delay = this.cfg.heartbeat_interval_ms;
      void this.enqueue(async () => {
        delay = await this.beat();
      }).then(() => this.schedule(delay));
    }, delayMs);
  }

  /** One heartbeat; returns the delay to the next one. */
  private async beat(): Promise<number> {
    const { redis } = this.deps;
    const heartbeat = this.cfg.heartbeat_interval_ms;
    const ttl = this.cfg.leader_ttl_ms;
    const sentAt = Date.now();
    if (this.leader) {
      let ok: boolean;
      try {
        ok = await withTimeout(
          renewLease(redis, this.key, this.instanceId, ttl),
          this.redisTimeoutMs,
          'leader renew',
        );
      } catch (err) {
        this.log.warn({ err: loggableError(err) }, 'leader renew failed; stepping down');
        this.demote('redis_error');
        return heartbeat;
      }
      if (!ok) {
        this.log.warn('leader lock expired or taken by another instance; stepping down');
        this.demote('taken');
        return heartbeat;
      }
      if (this.leader) {
        this.validUntil = sentAt + ttl;
        this.armWatchdog();
      }
      return heartbeat;
    }
    if (this.stopping) return heartbeat;
    try {
      const won = await withTimeout(
        acquireLease(redis, this.key, this.instanceId, ttl),
        this.redisTimeoutMs,
        'leader acquire',
      );
      if (won) {
        this.leader = true;
        this.validUntil = sentAt + ttl;
        this.armWatchdog();
        this.log.info('elected global leader');
        void this.call(() => this.deps.handlers.onElected(), 'onElected');
        return heartbeat;
      }
      const pttl = await withTimeout(redis.pttl(this.key), this.redisTimeoutMs, 'leader lock ttl read');
      if (pttl >= 0 && pttl + EXPIRY_MARGIN_MS < heartbeat) return pttl + EXPIRY_MARGIN_MS;
      if (pttl === -2) return EXPIRY_MARGIN_MS;
    } catch (err) {
      this.log.warn({ err: loggableError(err) }, 'leader acquire failed');
    }
    return heartbeat;
  }

  private demote(reason: LeadershipLossReason): void {
    if (!this.leader) return;
    this.setFollower();
    if (this.stopNotified) return;
    this.log.info({ reason }, 'no longer global leader');
    void this.call(() => this.deps.handlers.onDemoted(reason), 'onDemoted');
  }

  private setFollower(): void {
    this.leader = false;
    if (this.watchdog !== undefined) clearTimeout(this.watchdog);
    this.watchdog = undefined;
  }

  private call(fn: () => void | Promise<void>, what: string): Promise<void> {
    try {
      const r = fn();
      if (r instanceof Promise)
        return r.catch((err: unknown) =>
          this.log.error({ err: loggableError(err) }, `${what} handler failed`),
        );
    } catch (err) {
      this.log.error({ err: loggableError(err) }, `${what} handler failed`);
    }
    return Promise.resolve();
  }

  private armWatchdog(): void {
    if (this.watchdog !== undefined) clearTimeout(this.watchdog);
    this.watchdog = setTimeout(
      () => {
        this.watchdog = undefined;
        if (this.leader && Date.now() >= this.validUntil) {
          this.log.warn('leader lock deadline passed without a renew; stepping down');
          this.demote('expired');
        }
      },
      Math.max(0, this.validUntil - Date.now()),
    );
  }
}
