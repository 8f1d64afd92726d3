/**
 * BlockFeed over a scripted in-memory block source: order, gap filling across source lives,
 * gap reports, consumer isolation, settings.
 */
import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { BlockEvent, BlockListener } from '../chain/index.js';
import {
  BlockFeed,
  BlockFeedConfigError,
  createBlockFeedMetrics,
  type BlockFeedConfig,
  type BlockFeedMetrics,
  type FeedBlockSource,
} from './block-feed.js';

const log = pino({ level: 'silent' });

function block(height: number): BlockEvent {
  const hash = new Uint8Array(32).fill(height % 256);
  return {
    height,
    hash,
    hashHex: Buffer.from(hash).toString('hex').toUpperCase(),
    time: `2026-11-23T10:00:${String(height % 60).padStart(2, '0')}.000000000Z`,
    timeUnixNs: BigInt(height) * 1_000_000_000n,
  };
}

/** A source that starts at `startHeight` and then emits whatever the test pushes. */
class ScriptedSource implements FeedBlockSource {
  private readonly listeners = new Set<BlockListener>();
  closed = false;
  constructor(
    private readonly startHeight: number,
    private readonly failStart = false,
  ) {}
  start(): Promise<BlockEvent> {
    if (this.failStart) return Promise.reject(new Error('node unreachable'));
    const b = block(this.startHeight);
    this.emit(b.height);
    return Promise.resolve(b);
  }
  onBlock(listener: BlockListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  emit(height: number): void {
    for (const l of this.listeners) l(block(height));
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

interface Harness {
  feed: BlockFeed;
  sources: ScriptedSource[];
  seen: number[];
  fetched: number[];
  metrics: BlockFeedMetrics;
}

function harness(
  starts: { height: number; fail?: boolean }[],
  opts: { cfg?: BlockFeedConfig; failFetch?: (h: number, attempt: number) => boolean } = {},
): Harness {
  const sources: ScriptedSource[] = [];
  const fetched: number[] = [];
  const attempts = new Map<number, number>();
  const metrics = createBlockFeedMetrics(new Registry());
  let i = 0;
  const feed = new BlockFeed(
    {
      openSource: () => {
        const s = starts[i++]!;
        const src = new ScriptedSource(s.height, s.fail);
        sources.push(src);
        return src;
      },
      fetchBlock: (h) => {
        const attempt = (attempts.get(h) ?? 0) + 1;
        attempts.set(h, attempt);
        fetched.push(h);
        if (opts.failFetch?.(h, attempt) === true) return Promise.reject(new Error('node busy'));
        return Promise.resolve(block(h));
      },
      log,
      metrics,
    },
    opts.cfg,
  );
  const seen: number[] = [];
  feed.onBlock((height, hash, b) => {
    expect(hash).toBe(b.hash);
    seen.push(height);
  });
  return { feed, sources, seen, fetched, metrics };
}

async function counters(m: BlockFeedMetrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await m.blocks.get()).values) out[`blocks:${v.labels['source']}`] = v.value;
  for (const v of (await m.gaps.get()).values) out[`gaps:${v.labels['reason']}`] = v.value;
  const gapBlocks = (await m.gapBlocks.get()).values[0]?.value ?? 0;
  if (gapBlocks > 0) out['gap_blocks'] = gapBlocks;
  return out;
}

describe('BlockFeed', () => {
  it('delivers the first block at start, then each height in order, ignoring repeats', async () => {
    const h = harness([{ height: 10 }]);
    await h.feed.start();
    expect(h.seen).toEqual([10]);
    h.sources[0]!.emit(11);
    h.sources[0]!.emit(11);
    h.sources[0]!.emit(9);
    h.sources[0]!.emit(12);
    await h.feed.idle();
    expect(h.seen).toEqual([10, 11, 12]);
    expect(h.feed.latest).toEqual(block(12));
    expect(h.fetched).toEqual([]);
    expect(await counters(h.metrics)).toEqual({ 'blocks:live': 3 });
  });

  it('fills the heights between two source lives before the new one', async () => {
    const h = harness([{ height: 10 }, { height: 14 }]);
    await h.feed.start();
    await h.feed.stop();
    expect(h.sources[0]!.closed).toBe(true);
    await h.feed.start();
    expect(h.seen).toEqual([10, 11, 12, 13, 14]);
    expect(h.fetched).toEqual([11, 12, 13]);
    expect(await counters(h.metrics)).toEqual({ 'blocks:live': 2, 'blocks:backfill': 3 });
  });

  it('fills a jump inside one life too (a source that skipped heights)', async () => {
    const h = harness([{ height: 5 }]);
    await h.feed.start();
    h.sources[0]!.emit(8);
    await h.feed.idle();
    expect(h.seen).toEqual([5, 6, 7, 8]);
  });

  it('reports a gap wider than max_backfill_blocks instead of filling it', async () => {
    const h = harness([{ height: 10 }, { height: 20 }], { cfg: { max_backfill_blocks: 5 } });
    await h.feed.start();
    await h.feed.stop();
    await h.feed.start();
    expect(h.seen).toEqual([10, 20]);
    expect(h.fetched).toEqual([]);
    expect(await counters(h.metrics)).toEqual({ 'blocks:live': 2, 'gaps:too_wide': 1, gap_blocks: 9 });
  });

  it('retries a missing height and reports it when every attempt fails', async () => {
    const h = harness([{ height: 1 }], {
      cfg: { backfill_attempts: 2 },
      failFetch: (height, attempt) => height === 3 || (height === 2 && attempt === 1),
    });
    await h.feed.start();
    h.sources[0]!.emit(4);
    await h.feed.idle();
    expect(h.seen).toEqual([1, 2, 4]);
    expect(h.fetched).toEqual([2, 2, 3, 3]);
    expect(await counters(h.metrics)).toEqual({
      'blocks:live': 2,
      'blocks:backfill': 1,
      'gaps:fetch_failed': 1,
      gap_blocks: 1,
    });
  });

  it('keeps delivering to the other consumers when one throws', async () => {
    const h = harness([{ height: 3 }]);
    const other: number[] = [];
    h.feed.onBlock(() => {
      throw new Error('consumer bug');
    });
    const off = h.feed.onBlock((height) => other.push(height));
    await h.feed.start();
    h.sources[0]!.emit(4);
    await h.feed.idle();
    off();
    h.sources[0]!.emit(5);
    await h.feed.idle();
    expect(h.seen).toEqual([3, 4, 5]);
    expect(other).toEqual([3, 4]);
  });

  it('delivers nothing after stop, and stop/start are idempotent', async () => {
    const h = harness([{ height: 3 }]);
    await h.feed.start();
    await h.feed.start();
    expect(h.sources).toHaveLength(1);
    const first = h.sources[0]!;
    await h.feed.stop();
    await h.feed.stop();
    first.emit(4);
    await h.feed.idle();
    expect(h.seen).toEqual([3]);
    expect(h.feed.isRunning).toBe(false);
  });

  it('throws and stays stopped when the source cannot start', async () => {
    const h = harness([{ height: 1, fail: true }, { height: 2 }]);
    await expect(h.feed.start()).rejects.toThrow('node unreachable');
    expect(h.feed.isRunning).toBe(false);
    expect(h.sources[0]!.closed).toBe(true);
    await h.feed.start();
    expect(h.seen).toEqual([2]);
  });

  it.each([
    [{ max_backfill_blocks: 0 }, 'block feed max_backfill_blocks: must be a positive integer, got 0'],
    [{ max_backfill_blocks: 1.5 }, 'block feed max_backfill_blocks: must be a positive integer, got 1.5'],
    [{ backfill_attempts: -1 }, 'block feed backfill_attempts: must be a positive integer, got -1'],
    [{ backfill_attempts: Number.NaN }, 'block feed backfill_attempts: must be a positive integer, got NaN'],
  ])('refuses the setting %j', (cfg, message) => {
    const make = (): BlockFeed =>
      new BlockFeed(
        {
          openSource: () => new ScriptedSource(1),
          fetchBlock: () => Promise.resolve(block(1)),
          log,
          metrics: createBlockFeedMetrics(new Registry()),
        },
        cfg,
      );
    expect(make).toThrow(BlockFeedConfigError);
    expect(make).toThrow(message);
  });
});
