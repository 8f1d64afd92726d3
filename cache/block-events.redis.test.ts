import { once } from 'node:events';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { PubSub, createRedisClient } from '../transport/index.js';
import { redisUrl, useRedis } from '../test/helpers/redis.js';
import { BlockEventPublisher, BlockEventSubscriber, type BlockEventMessage } from './block-events.js';
import { createCacheMetrics } from './metrics.js';

const log = pino({ level: 'silent' });
const r = useRedis();
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function bus(): Promise<{
  pubsub: PubSub;
  clientId: number;
  subscriber: Awaited<ReturnType<typeof createRedisClient>>;
}> {
  const subscriber = await createRedisClient({ url: redisUrl(), connection_name: 'vitest-blocks' });
  const clientId = await subscriber.client('ID');
  const pubsub = new PubSub({ publisher: r.client, subscriber, log });
  cleanups.push(() => pubsub.close());
  return { pubsub, clientId, subscriber };
}

const HASH = new Uint8Array(32).map((_, i) => i);

describe('block events', () => {
  it('delivers the leader’s blocks to a subscriber, which keeps the highest height', async () => {
    const leader = new BlockEventPublisher({ pubsub: (await bus()).pubsub, keys: r.keys() });
    const metrics = createCacheMetrics(new Registry());
    const sub = new BlockEventSubscriber({ pubsub: (await bus()).pubsub, keys: r.keys(), log, metrics });
    cleanups.push(() => sub.close());
    await sub.start();
    const seen: BlockEventMessage[] = [];
    sub.onBlock('test', (ev) => {
      seen.push(ev);
    });
    expect(sub.currentHeight).toBe(0);

    expect(await leader.publish({ height: 5, hash: HASH, time: '2026-11-23T10:00:00.123456789Z' })).toBe(1);
    await sub.waitForHeight(5);
    const block5 = { height: 5, hash: HASH, timestamp: '2026-11-23T10:00:00.123456789Z' };
    expect(sub.latest()).toEqual(block5);

    await leader.publish({ height: 4, hash: HASH, time: '2026-11-23T09:59:30Z' });
    await leader.publish({ height: 6, hash: HASH, time: '2026-11-23T10:00:30Z' });
    await sub.waitForHeight(6);
    expect(sub.currentHeight).toBe(6);
    await expect.poll(() => seen.length).toBe(2);
    expect(seen).toEqual([block5, { height: 6, hash: HASH, timestamp: '2026-11-23T10:00:30Z' }]);
    const results = (await metrics.blockEvents.get()).values.map((v) => [v.labels['result'], v.value]);
    expect(Object.fromEntries(results)).toEqual({ advanced: 2, stale: 1 });
    expect((await metrics.currentHeight.get()).values[0]?.value).toBe(6);
  });

  it('uses the upstream wire format', async () => {
    const raw = await bus();
    const payloads: string[] = [];
    await raw.pubsub.subscribe(
      { name: r.keys().blockEventsChannel(), encode: (s: string) => s, decode: (b) => b.toString() },
      (s) => payloads.push(s),
    );
    const leader = new BlockEventPublisher({
      pubsub: (await bus()).pubsub,
      keys: r.keys(),
      now: () => new Date('2026-11-23T10:00:00.000Z'),
    });
    await leader.publish({ height: 7, hash: new Uint8Array([1, 2, 3]) });
    await expect
      .poll(() => payloads)
      .toEqual(['{"height":7,"hash":"AQID","timestamp":"2026-11-23T10:00:00.000Z"}']);
  });

  it('keeps receiving after its Redis connection is killed', async () => {
    const leader = new BlockEventPublisher({ pubsub: (await bus()).pubsub, keys: r.keys() });
    const metrics = createCacheMetrics(new Registry());
    const subBus = await bus();
    const sub = new BlockEventSubscriber({ pubsub: subBus.pubsub, keys: r.keys(), log, metrics });
    cleanups.push(() => sub.close());
    await sub.start();
    await leader.publish({ height: 1, hash: HASH });
    await sub.waitForHeight(1);

    const reconnected = once(subBus.subscriber, 'ready');
    await r.client.client('KILL', 'ID', String(subBus.clientId));
    await reconnected;
    // Publish until the resubscribed connection hears it (messages in the gap are lost).
    await expect.poll(() => leader.publish({ height: 2, hash: HASH })).toBe(1);
    await sub.waitForHeight(2);
    expect(sub.currentHeight).toBe(2);
  });

  it('drops events for a consumer whose queue is full and counts them', async () => {
    const leader = new BlockEventPublisher({ pubsub: (await bus()).pubsub, keys: r.keys() });
    const metrics = createCacheMetrics(new Registry());
    const sub = new BlockEventSubscriber(
      { pubsub: (await bus()).pubsub, keys: r.keys(), log, metrics },
      { consumer_queue_size: 1 },
    );
    cleanups.push(() => sub.close());
    await sub.start();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const handled: number[] = [];
    sub.onBlock('slow', async (ev) => {
      await gate;
      handled.push(ev.height);
    });
    for (const height of [1, 2, 3]) await leader.publish({ height, hash: HASH });
    await sub.waitForHeight(3);
    release();
    await expect.poll(() => handled).toEqual([1]);
    expect((await metrics.blockEventsDropped.get()).values).toEqual([
      { labels: { channel: 'slow' }, value: 2 },
    ]);
  });
});
