/**
 * The miner's view of new blocks (miner.md §1): one chain BlockSource, opened by `start()` and
 * closed by `stop()`, whose blocks are handed to in-process consumers (the session lifecycle, the
 * leader duties) strictly in height order, each height once.
 *
 * The BlockSource already survives node outages (websocket reconnect with backoff) and fills any
 * range it missed from `/block?height=` before delivering anything newer. What it cannot see is a
 * range that fell between two of its lives: a feed stopped at height 100 and started again at 110
 * (a demoted leader re-elected, a node that was unreachable at start). The feed fills that range
 * itself, up to `max_backfill_blocks` heights; a wider gap is not filled (every skipped height
 * would cost one `/block` query while consumers wait) and is reported instead: counted in
 * `ha_miner_block_feed_gaps_total`, logged, and visible to consumers as a jump in height.
 * A height that cannot be fetched after `backfill_attempts` tries is reported the same way.
 *
 * Consumers are called synchronously, one block at a time; a consumer that throws is logged and
 * the others still run. A slow consumer should queue its own work.
 */
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { RelayMinerError } from '../core/index.js';
import type { BlockEvent, BlockListener } from '../chain/index.js';

/** The part of chain's BlockSource the feed uses (one instance per `start()`). */
export interface FeedBlockSource {
  start(): Promise<BlockEvent>;
  onBlock(listener: BlockListener): () => void;
  close(): Promise<void>;
}

export interface BlockFeedDeps {
  /** Builds a fresh BlockSource (a closed one cannot be restarted). */
  openSource: () => FeedBlockSource;
  /** `/block?height=H` for gap filling (ChainQueryClient.getBlock satisfies it). */
  fetchBlock: (height: number) => Promise<BlockEvent>;
  log: Logger;
  metrics: BlockFeedMetrics;
}

export interface BlockFeedConfig {
  /** Widest gap between two source lives that is filled block by block. */
  max_backfill_blocks?: number;
  /** Tries per missing height before it is reported as a gap. */
  backfill_attempts?: number;
}

export const DEFAULT_BLOCK_FEED_CONFIG: Readonly<Required<BlockFeedConfig>> = Object.freeze({
  max_backfill_blocks: 1_000,
  backfill_attempts: 3,
});

/** A consumer of the feed: called once per height, in order. */
export type BlockFeedListener = (height: number, hash: Uint8Array, block: BlockEvent) => void;

export interface BlockFeedMetrics {
  /** Blocks handed to consumers; source: live | backfill. */
  blocks: Counter<'source'>;
  /** Heights never delivered; reason: too_wide | fetch_failed. */
  gaps: Counter<'reason'>;
  /** Skipped heights, summed over every gap. */
  gapBlocks: Counter;
  height: Gauge;
}

export function createBlockFeedMetrics(registry: Registry): BlockFeedMetrics {
  const registers = [registry];
  return {
    blocks: new Counter({
      name: 'ha_miner_block_feed_blocks_total',
      help: 'Blocks delivered to in-process consumers, by how they were obtained',
      labelNames: ['source'],
      registers,
    }),
    gaps: new Counter({
      name: 'ha_miner_block_feed_gaps_total',
      help: 'Ranges of heights the block feed skipped, by reason',
      labelNames: ['reason'],
      registers,
    }),
    gapBlocks: new Counter({
      name: 'ha_miner_block_feed_gap_blocks_total',
      help: 'Heights the block feed skipped',
      registers,
    }),
    height: new Gauge({
      name: 'ha_miner_block_feed_height',
      help: 'Height of the last block delivered by the block feed',
      registers,
    }),
  };
}

/** A bad block feed setting. */
export class BlockFeedConfigError extends RelayMinerError {
  constructor(field: string, why: string) {
    super('BLOCK_FEED_CONFIG', `block feed ${field}: ${why}`);
  }
}

function positiveInt(field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new BlockFeedConfigError(field, `must be a positive integer, got ${value}`);
  }
  return value;
}

export class BlockFeed {
  private readonly cfg: Required<BlockFeedConfig>;
  private readonly log: Logger;
  private readonly listeners = new Set<BlockFeedListener>();
  private source: FeedBlockSource | undefined;
  private offSource: (() => void) | undefined;
  private last: BlockEvent | undefined;
  /** Serializes deliveries so a backfill finishes before anything newer is handed out. */
  private queue: Promise<void> = Promise.resolve();
  /** Bumped by stop(); work queued by an older life is dropped. */
  private generation = 0;
  private running = false;

  constructor(
    private readonly deps: BlockFeedDeps,
    cfg: BlockFeedConfig = {},
  ) {
    const merged = { ...DEFAULT_BLOCK_FEED_CONFIG, ...stripUndefined(cfg) };
    this.cfg = {
      max_backfill_blocks: positiveInt('max_backfill_blocks', merged.max_backfill_blocks),
      backfill_attempts: positiveInt('backfill_attempts', merged.backfill_attempts),
    };
    this.log = deps.log.child({ component: 'block_feed' });
  }

  /** The newest block delivered (kept across stop/start, so a restart fills the gap). */
  get latest(): BlockEvent | undefined {
    return this.last;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Registers a consumer of every block delivered from now on; returns its removal. */
  onBlock(listener: BlockFeedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Opens a BlockSource and delivers its first (latest) block, after any gap since the last life.
   * Throws (and stays stopped) when the node cannot be reached at all.
   */
  async start(): Promise<void> {
    if (this.running) return;
    const source = this.deps.openSource();
    const generation = this.generation;
    this.offSource = source.onBlock((block) => this.enqueue(block, generation));
    this.source = source;
    this.running = true;
    try {
      await source.start();
    } catch (err) {
      await this.stop();
      throw err;
    }
    await this.idle();
  }

  /** Closes the source; blocks still queued are not delivered. Consumers stay registered. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.generation++;
    this.offSource?.();
    this.offSource = undefined;
    const source = this.source;
    this.source = undefined;
    await source?.close();
    await this.queue;
  }

  /** Resolves once every block received so far has been delivered. */
  idle(): Promise<void> {
    return this.queue;
  }

  private enqueue(block: BlockEvent, generation: number): void {
    this.queue = this.queue.then(() => this.handle(block, generation));
  }

  private async handle(block: BlockEvent, generation: number): Promise<void> {
    if (generation !== this.generation) return;
    const prev = this.last?.height;
    if (prev !== undefined && block.height <= prev) return;
    if (prev !== undefined && block.height > prev + 1) {
      await this.backfill(prev + 1, block.height - 1, generation);
      if (generation !== this.generation) return;
    }
    this.deliver(block, 'live');
  }

  private async backfill(from: number, to: number, generation: number): Promise<void> {
    const missing = to - from + 1;
    if (missing > this.cfg.max_backfill_blocks) {
      this.reportGap(from, to, 'too_wide');
      return;
    }
    for (let height = from; height <= to; height++) {
      const block = await this.fetchWithRetry(height, generation);
      if (generation !== this.generation) return;
      if (block === undefined) {
        this.reportGap(height, height, 'fetch_failed');
        continue;
      }
      this.deliver(block, 'backfill');
    }
  }

  private async fetchWithRetry(height: number, generation: number): Promise<BlockEvent | undefined> {
    for (let attempt = 1; attempt <= this.cfg.backfill_attempts; attempt++) {
      if (generation !== this.generation) return undefined;
      try {
        const block = await this.deps.fetchBlock(height);
        if (block.height !== height) {
          this.log.warn({ block_height: height, got: block.height }, 'node answered another height');
          continue;
        }
        return block;
      } catch (err) {
        this.log.warn({ err, block_height: height, attempt }, 'fetching a missed block failed');
      }
    }
    return undefined;
  }

  private reportGap(from: number, to: number, reason: 'too_wide' | 'fetch_failed'): void {
    const blocks = to - from + 1;
    this.deps.metrics.gaps.inc({ reason });
    this.deps.metrics.gapBlocks.inc(blocks);
    this.log.warn(
      { from_height: from, to_height: to, blocks, reason },
      'block feed skipped heights; consumers see a jump',
    );
  }

  private deliver(block: BlockEvent, source: 'live' | 'backfill'): void {
    this.last = block;
    this.deps.metrics.blocks.inc({ source });
    this.deps.metrics.height.set(block.height);
    for (const listener of this.listeners) {
      try {
        listener(block.height, block.hash, block);
      } catch (err) {
        this.log.error({ err, block_height: block.height }, 'block feed consumer threw');
      }
    }
  }
}

function stripUndefined<T extends object>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
}
