/**
 * Publishes mined relays to the supplier's Redis Stream `{base}:{streams}:{supplier}` (relayer.md
 * §10, cache-and-redis.md §6): one entry per relay with the single field `data` = protobuf
 * MinedRelayMessage, exactly what the Go miner's consumer reads.
 *
 * Delivery:
 * - `publish()` is synchronous and never blocks the relay path: it validates, stamps
 *   `published_at_unix_nano` and appends to an in-memory buffer. A flush sends up to `batch_size`
 *   entries back to back on the connection (`XADD … MAXLEN ~ max_len * data <bytes>` per relay,
 *   then one `EXPIRE` per stream touched).
 * - A caller that must not acknowledge a relay before it is stored passes `onWrite`: the entry is
 *   flushed at once (no `flush_interval_ms` wait) and `onWrite` is called exactly once with
 *   `written` when Redis stored it, `buffered` when Redis is unreachable or slower than
 *   `ack_timeout_ms` (the entry stays queued and is written later), or a refusal when Redis
 *   rejected the XADD (e.g. OOM under maxmemory) or the publisher closed with it unsent.
 * - While Redis is not connected nothing is sent; relays stay buffered and are flushed when the
 *   client emits `ready` again. Entries whose XADD failed on the connection are put back at the
 *   front of the buffer (order kept) and retried: delivery is at-least-once (an XADD that reached
 *   Redis just before the connection broke is written again), and the miner dedups by relay hash
 *   per session.
 * - The buffer is bounded by `max_buffered`. When it is full, `publish()` refuses the relay with
 *   `PUBLISH_BUFFER_FULL` and `ha_transport_redis_publish_dropped_total{reason="buffer_full"}` is
 *   incremented — relays are never dropped silently. A command error for one entry (e.g.
 *   WRONGTYPE) drops that entry with reason `command_error` and logs it.
 *
 * Differences from upstream, deliberate: upstream XADDs without MAXLEN and sets EXPIRE once per
 * stream per process (the TTL then runs from the first publish, and a busy stream vanishes with its
 * consumer group after 2 h). Here EXPIRE is refreshed with the batches (at most once a minute per
 * stream, and again after every reconnect), so a stream lives until about `ttl_seconds` after its
 * last publish, and `MAXLEN ~` bounds memory if no miner consumes
 * (`max_len: 0` disables trimming, as upstream). Upstream also drops a relay on the first XADD
 * error; here it is buffered and retried.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { KeyBuilder } from '../keys.js';
import { encodeMinedRelayMessage, type MinedRelayMessage } from './mined-relay-message.js';
import type { StreamPublisherMetrics } from './metrics.js';

export interface StreamPublisherConfig {
  /** Approximate stream length cap (XADD MAXLEN ~); 0 = never trim. */
  max_len: number;
  /** Stream TTL, refreshed on every batch (relay_meter.cache_ttl upstream). */
  ttl_seconds: number;
  /** Relays per flush (commands sent back to back). */
  batch_size: number;
  /** How long a relay may wait for companions before a flush. */
  flush_interval_ms: number;
  /** Relays held in memory while Redis is unreachable; beyond it publish() refuses. */
  max_buffered: number;
  /** Longest wait for an `onWrite` acknowledgement before answering `buffered`. */
  ack_timeout_ms: number;
}

export const DEFAULT_STREAM_PUBLISHER_CONFIG: Readonly<StreamPublisherConfig> = Object.freeze({
  max_len: 1_000_000,
  ttl_seconds: 7_200,
  batch_size: 256,
  flush_interval_ms: 2,
  max_buffered: 100_000,
  ack_timeout_ms: 1_000,
});

export interface StreamPublisherDeps {
  redis: Redis;
  keys: KeyBuilder;
  log: Logger;
  metrics: StreamPublisherMetrics;
  /** Unix nanoseconds; tests pass a fixed clock. */
  nowNs?: () => bigint;
}

export type PublishResult =
  | { ok: true }
  | { ok: false; code: 'PUBLISH_INVALID' | 'PUBLISH_BUFFER_FULL' | 'PUBLISH_CLOSED'; reason: string };

/** What became of an entry published with `onWrite`. */
export type WriteOutcome =
  | { ok: true; state: 'written' | 'buffered' }
  | { ok: false; code: 'WRITE_REFUSED' | 'WRITE_CLOSED'; reason: string };

interface Pending {
  stream: string;
  data: Buffer;
  service_id: string;
  /** Set while the publisher still owes the caller an answer. */
  ack?: Ack;
}

/** One-shot delivery of a WriteOutcome, bounded by a timer. */
class Ack {
  private timer: NodeJS.Timeout | undefined;
  private cb: ((o: WriteOutcome) => void) | undefined;

  constructor(cb: (o: WriteOutcome) => void, timeoutMs: number) {
    this.cb = cb;
    this.timer = setTimeout(() => this.settle({ ok: true, state: 'buffered' }), timeoutMs);
  }

  settle(o: WriteOutcome): void {
    const cb = this.cb;
    if (cb === undefined) return;
    this.cb = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    cb(o);
  }
}

export class StreamPublisher {
  private readonly log: Logger;
  private readonly nowNs: () => bigint;
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;
  /** When each stream's TTL was last refreshed (ms); cleared on reconnect. */
  private readonly ttlRefreshedAt = new Map<string, number>();
  private readonly onReady = (): void => {
    this.ttlRefreshedAt.clear();
    this.log.info({ buffered: this.queue.length }, 'redis connected; flushing buffered relays');
    this.schedule(0);
  };

  constructor(
    private readonly deps: StreamPublisherDeps,
    private readonly cfg: StreamPublisherConfig = DEFAULT_STREAM_PUBLISHER_CONFIG,
  ) {
    this.log = deps.log.child({ component: 'stream_publisher' });
    const epochBaseNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
    this.nowNs = deps.nowNs ?? (() => epochBaseNs + process.hrtime.bigint());
    deps.redis.on('ready', this.onReady);
  }

  /** Relays waiting to be written. */
  get buffered(): number {
    return this.queue.length;
  }

  /**
   * Queues one mined relay; the answer says whether it was accepted (never throws for bad input).
   * With `onWrite`, the entry is flushed right away and `onWrite` says what became of it (once,
   * never synchronously, only when the answer is `{ ok: true }`).
   */
  publish(msg: MinedRelayMessage, onWrite?: (o: WriteOutcome) => void): PublishResult {
    const m = this.deps.metrics;
    if (this.closed) {
      m.dropped.inc({ reason: 'closed' });
      return { ok: false, code: 'PUBLISH_CLOSED', reason: 'publisher is closed' };
    }
    let stream: string;
    try {
      if (msg.session_id === '') throw new Error('session_id is required');
      if (msg.session_end_height <= 0) throw new Error('session_end_height must be > 0');
      stream = this.deps.keys.relayStream(msg.supplier_operator_address);
    } catch (err) {
      m.dropped.inc({ reason: 'invalid' });
      return { ok: false, code: 'PUBLISH_INVALID', reason: (err as Error).message };
    }
    if (this.queue.length >= this.cfg.max_buffered) {
      m.dropped.inc({ reason: 'buffer_full' });
      return {
        ok: false,
        code: 'PUBLISH_BUFFER_FULL',
        reason: `${this.queue.length} relays already buffered (max_buffered); redis unreachable or too slow`,
      };
    }
    const stamped =
      msg.published_at_unix_nano === 0n ? { ...msg, published_at_unix_nano: this.nowNs() } : msg;
    const entry: Pending = {
      stream,
      data: Buffer.from(encodeMinedRelayMessage(stamped)),
      service_id: msg.service_id,
    };
    this.queue.push(entry);
    m.buffered.set(this.queue.length);
    if (onWrite !== undefined) {
      const ack = new Ack(onWrite, this.cfg.ack_timeout_ms);
      if (this.deps.redis.status === 'ready') entry.ack = ack;
      else queueMicrotask(() => ack.settle({ ok: true, state: 'buffered' }));
    }
    const now = onWrite !== undefined || this.queue.length >= this.cfg.batch_size;
    this.schedule(now ? 0 : this.cfg.flush_interval_ms);
    return { ok: true };
  }

  /** Writes what is buffered now (as far as Redis allows); resolves when done or Redis is down. */
  async flush(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing;
    if (this.queue.length === 0 || this.deps.redis.status !== 'ready') return;
    this.flushing = this.drain().finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  /** Stops accepting relays, tries one last flush within `timeoutMs`, detaches from the client. */
  async close(timeoutMs = 5_000): Promise<{ unsent: number }> {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.immediate = undefined;
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise((res) => (t = setTimeout(res, timeoutMs)))]);
    clearTimeout(t);
    this.deps.redis.off('ready', this.onReady);
    const unsent = this.queue.length;
    for (const p of this.queue)
      p.ack?.settle({ ok: false, code: 'WRITE_CLOSED', reason: 'publisher closed' });
    if (unsent > 0) {
      this.deps.metrics.dropped.inc({ reason: 'closed' }, unsent);
      this.log.error({ unsent }, 'publisher closed with relays still buffered; they are lost');
    }
    return { unsent };
  }

  /**
   * Flushes after `delayMs`, or, for 0, once the current event-loop turn's I/O is done
   * (setImmediate: relays finished in the same turn share one batch, and no 1 ms timer floor is
   * added to a relay whose answer waits for its write).
   */
  private schedule(delayMs: number): void {
    if (this.immediate !== undefined) return;
    if (this.timer !== undefined) {
      if (delayMs > 0) return;
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const run = (): void => {
      this.flush().catch((err: unknown) => this.log.error({ err }, 'publish flush failed'));
    };
    if (delayMs <= 0) {
      this.immediate = setImmediate(() => {
        this.immediate = undefined;
        run();
      });
    } else {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        run();
      }, delayMs);
    }
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && this.deps.redis.status === 'ready') {
      const batch = this.queue.splice(0, this.cfg.batch_size);
      const unsent = await this.sendBatch(batch);
      if (unsent.length > 0) {
        // Still queued: whoever waits is told it is buffered rather than kept waiting.
        for (const p of unsent) {
          p.ack?.settle({ ok: true, state: 'buffered' });
          p.ack = undefined;
        }
        this.queue.unshift(...unsent);
        this.deps.metrics.buffered.set(this.queue.length);
        return;
      }
      this.deps.metrics.buffered.set(this.queue.length);
    }
  }

  /**
   * Sends the batch's commands back to back on the connection (not as an ioredis pipeline: each
   * Pipeline object gets an accessor property of its own, which makes V8 keep it, and everything
   * it references, until the next full collection; at relay rates that filled the old generation
   * by several KB per relay). Each entry is written, dropped for its own command error, or, when
   * its command failed on the connection, returned to be kept buffered (in order) and retried.
   */
  private async sendBatch(batch: Pending[]): Promise<Pending[]> {
    const m = this.deps.metrics;
    const redis = this.deps.redis;
    const sent: Promise<unknown>[] = [];
    const streams = new Set<string>();
    for (const p of batch) {
      if (this.cfg.max_len > 0)
        sent.push(redis.xadd(p.stream, 'MAXLEN', '~', this.cfg.max_len, '*', 'data', p.data));
      else sent.push(redis.xadd(p.stream, '*', 'data', p.data));
      streams.add(p.stream);
    }
    // The TTL is refreshed at most every TTL_REFRESH_MS per stream (one EXPIRE per relay would
    // double the commands when every relay is flushed on its own).
    const now = Date.now();
    const refresh = Math.min(TTL_REFRESH_MS, (this.cfg.ttl_seconds * 1000) / 2);
    const expiring: string[] = [];
    for (const s of streams) {
      if (now - (this.ttlRefreshedAt.get(s) ?? -Infinity) < refresh) continue;
      sent.push(redis.expire(s, this.cfg.ttl_seconds));
      this.ttlRefreshedAt.set(s, now);
      expiring.push(s);
    }
    // What each command failed with, in the order sent (XADDs, then EXPIREs); null when it succeeded.
    const errors = (await Promise.allSettled(sent)).map((r) =>
      r.status === 'fulfilled' ? null : r.reason instanceof Error ? r.reason : new Error(String(r.reason)),
    );
    const unsent: Pending[] = [];
    let connectionErr: Error | undefined;
    m.batchSize.observe(batch.length);
    batch.forEach((p, i) => {
      const err = errors[i] ?? null;
      if (err === null) {
        m.published.inc({ service_id: p.service_id });
        p.ack?.settle({ ok: true, state: 'written' });
      } else if (isConnectionError(err)) {
        connectionErr ??= err;
        unsent.push(p);
      } else {
        m.publishErrors.inc({ reason: isOomError(err) ? 'oom' : 'command' });
        m.dropped.inc({ reason: 'command_error' });
        this.log.error({ err, stream: p.stream }, 'redis refused a relay XADD; relay dropped');
        p.ack?.settle({ ok: false, code: 'WRITE_REFUSED', reason: err.message });
      }
    });
    expiring.forEach((stream, i) => {
      const err = errors[batch.length + i] ?? null;
      if (err === null) return;
      this.ttlRefreshedAt.delete(stream);
      this.log.warn({ err, stream }, 'stream EXPIRE failed; retried with the next batch');
    });
    if (connectionErr !== undefined) {
      m.publishErrors.inc({ reason: 'connection' });
      this.log.warn(
        { err: connectionErr, batch: batch.length, unsent: unsent.length },
        'relays not written; kept buffered for retry',
      );
    }
    return unsent;
  }
}

/** Longest interval between two TTL refreshes of one stream. */
const TTL_REFRESH_MS = 60_000;

function isOomError(err: Error): boolean {
  return err.message.startsWith('OOM');
}

function isConnectionError(err: Error): boolean {
  return /Connection is closed|ECONNRESET|ECONNREFUSED|EPIPE|max retries per request|Stream isn't writeable/i.test(
    err.message,
  );
}
