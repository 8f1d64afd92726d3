/**
 * Block events (cache-and-redis.md §4.2). Only the leader miner watches the chain; it publishes
 * every new block on `{base}:events:blocks` as JSON
 * `{"height": <int>, "hash": "<base64>", "timestamp": "<RFC 3339>"}`. Relayers subscribe and keep
 * the highest height seen as their current height (0 until the first event), so they never poll
 * the chain for it. Events are fanned out to local consumers through bounded queues; a full queue
 * drops the event for that consumer and counts it. Resubscription after a Redis reconnect is the
 * bus's job; events published during the gap are lost and the next one catches the height up.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Channel, KeyBuilder, PubSub, Unsubscribe } from '../transport/index.js';
import { CacheStateError } from './errors.js';
import type { CacheMetrics } from './metrics.js';

export interface BlockEventMessage {
  height: number;
  /** Block header hash. */
  hash: Uint8Array;
  /** RFC 3339 (nanoseconds when known). */
  timestamp: string;
}

const wireSchema = z.object({
  height: z.number().int().nonnegative(),
  hash: z.string(),
  timestamp: z.string(),
});

export function blockEventsChannel(keys: KeyBuilder): Channel<BlockEventMessage> {
  return {
    name: keys.blockEventsChannel(),
    encode: (ev) =>
      JSON.stringify({
        height: ev.height,
        hash: Buffer.from(ev.hash.buffer, ev.hash.byteOffset, ev.hash.byteLength).toString('base64'),
        timestamp: ev.timestamp,
      }),
    decode: (payload) => {
      const wire = wireSchema.parse(JSON.parse(payload.toString('utf8')));
      return {
        height: wire.height,
        hash: new Uint8Array(Buffer.from(wire.hash, 'base64')),
        timestamp: wire.timestamp,
      };
    },
  };
}

export interface BlockEventPublisherDeps {
  pubsub: PubSub;
  keys: KeyBuilder;
  /** Publish time when an event carries none; tests pass a fixed one. */
  now?: () => Date;
}

/** Run by the leader miner: forwards each new block (e.g. from chain's BlockSource). */
export class BlockEventPublisher {
  private readonly channel: Channel<BlockEventMessage>;

  constructor(private readonly deps: BlockEventPublisherDeps) {
    this.channel = blockEventsChannel(deps.keys);
  }

  /** Resolves to the number of subscribers reached. `time` defaults to now. */
  publish(block: { height: number; hash: Uint8Array; time?: string }): Promise<number> {
    const timestamp = block.time ?? (this.deps.now ?? (() => new Date()))().toISOString();
    return this.deps.pubsub.publish(this.channel, { height: block.height, hash: block.hash, timestamp });
  }
}

export interface BlockEventSubscriberDeps {
  pubsub: PubSub;
  keys: KeyBuilder;
  log: Logger;
  metrics: CacheMetrics;
}

export interface BlockEventSubscriberConfig {
  /** Events a slow consumer may have queued before new ones are dropped for it. */
  consumer_queue_size?: number;
}

export type BlockHandler = (event: BlockEventMessage) => void | Promise<void>;

interface Consumer {
  readonly name: string;
  readonly handler: BlockHandler;
  pending: number;
  tail: Promise<void>;
}

export class BlockEventSubscriber {
  private readonly queueSize: number;
  private readonly consumers = new Set<Consumer>();
  private readonly heightWaiters = new Set<{ height: number; resolve: () => void }>();
  private readonly log: Logger;
  private latestEvent: BlockEventMessage | undefined;
  private unsubscribe: Unsubscribe | undefined;
  private offResubscribe: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly deps: BlockEventSubscriberDeps,
    cfg: BlockEventSubscriberConfig = {},
  ) {
    this.queueSize = cfg.consumer_queue_size ?? 16;
    this.log = deps.log.child({ component: 'block_events' });
  }

  async start(): Promise<void> {
    if (this.closed) throw new CacheStateError('block event subscriber: start() after close()');
    if (this.unsubscribe !== undefined) return;
    this.unsubscribe = await this.deps.pubsub.subscribe(blockEventsChannel(this.deps.keys), (ev) =>
      this.receive(ev),
    );
    this.offResubscribe = this.deps.pubsub.onResubscribe(() => {
      this.log.info({ block_height: this.currentHeight }, 'block events resubscribed');
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.offResubscribe?.();
    const off = this.unsubscribe;
    this.unsubscribe = undefined;
    if (off !== undefined) await off();
    this.consumers.clear();
  }

  /** Height of the highest block seen; 0 before the first event. */
  get currentHeight(): number {
    return this.latestEvent?.height ?? 0;
  }

  /** The highest block seen, if any. */
  latest(): BlockEventMessage | undefined {
    return this.latestEvent;
  }

  /** Registers a consumer of new (height-advancing) blocks; `name` labels its drop metric. */
  onBlock(name: string, handler: BlockHandler): () => void {
    const consumer: Consumer = { name, handler, pending: 0, tail: Promise.resolve() };
    this.consumers.add(consumer);
    return () => this.consumers.delete(consumer);
  }

  /** Resolves once `currentHeight >= height` (immediately when already there). */
  waitForHeight(height: number): Promise<void> {
    if (this.currentHeight >= height) return Promise.resolve();
    return new Promise((resolve) => this.heightWaiters.add({ height, resolve }));
  }

  private receive(ev: BlockEventMessage): void {
    if (ev.height <= this.currentHeight) {
      this.deps.metrics.blockEvents.inc({ result: 'stale' });
      return;
    }
    this.latestEvent = ev;
    this.deps.metrics.blockEvents.inc({ result: 'advanced' });
    this.deps.metrics.currentHeight.set(ev.height);
    for (const w of [...this.heightWaiters]) {
      if (ev.height >= w.height) {
        this.heightWaiters.delete(w);
        w.resolve();
      }
    }
    for (const c of this.consumers) this.deliver(c, ev);
  }

  private deliver(c: Consumer, ev: BlockEventMessage): void {
    if (c.pending >= this.queueSize) {
      this.deps.metrics.blockEventsDropped.inc({ channel: c.name });
      return;
    }
    c.pending++;
    c.tail = c.tail
      .then(() => c.handler(ev))
      .catch((err: unknown) => {
        this.log.error({ err, consumer: c.name, block_height: ev.height }, 'block event consumer threw');
      })
      .finally(() => {
        c.pending--;
      });
  }
}
