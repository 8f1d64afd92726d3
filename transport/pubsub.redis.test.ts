import { once } from 'node:events';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { z } from 'zod';
import { afterEach, describe, expect, it } from 'vitest';
import { redisUrl, useRedis } from '../test/helpers/redis.js';
import { createRedisClient } from './redis-client.js';
import { PubSub, binaryChannel, jsonChannel, textChannel, type PubSubPayloadError } from './pubsub.js';

const log = pino({ level: 'silent' });
const r = useRedis();
const open: PubSub[] = [];

async function bus(): Promise<{ bus: PubSub; subscriber: Redis; clientId: number }> {
  const subscriber = await createRedisClient({ url: redisUrl(), connection_name: 'vitest-sub' });
  const clientId = await subscriber.client('ID');
  const b = new PubSub({ publisher: r.client, subscriber, log }, { channel_prefix: r.prefix });
  open.push(b);
  return { bus: b, subscriber, clientId };
}

afterEach(async () => {
  while (open.length > 0) await open.pop()!.close();
});

describe('PubSub', () => {
  it('delivers JSON, text and binary payloads under the channel prefix', async () => {
    const { bus: b } = await bus();
    const events = jsonChannel('ha:events:blocks', z.object({ height: z.number(), hash: z.string() }));
    const text = textChannel('ha:events:invalidate:params');
    const bin = binaryChannel('bin');
    const got: unknown[] = [];
    await b.subscribe(events, (v) => got.push(v));
    await b.subscribe(text, (v) => got.push(v));
    await b.subscribe(bin, (v) => got.push(v));
    expect(b.channels()).toEqual([
      `${r.prefix}ha:events:blocks`,
      `${r.prefix}ha:events:invalidate:params`,
      `${r.prefix}bin`,
    ]);
    expect(await b.publish(events, { height: 7, hash: 'AQI=' })).toBe(1);
    expect(await b.publish(text, '42')).toBe(1);
    expect(await b.publish(bin, new Uint8Array([0, 255, 1]))).toBe(1);
    // A subscriber without the prefix does not hear it.
    expect(await r.client.publish('ha:events:blocks', '{}')).toBe(0);
    await expect.poll(() => got.length).toBe(3);
    expect(got).toEqual([{ height: 7, hash: 'AQI=' }, '42', new Uint8Array([0, 255, 1])]);
  });

  it('reports undecodable payloads and keeps delivering', async () => {
    const { bus: b } = await bus();
    const ch = jsonChannel('c', z.object({ n: z.number() }));
    const errors: PubSubPayloadError[] = [];
    b.onDecodeError((e) => errors.push(e));
    const got: unknown[] = [];
    await b.subscribe(ch, (v) => got.push(v));
    await r.client.publish(b.wireName('c'), 'not json');
    await r.client.publish(b.wireName('c'), '{"n":"x"}');
    await b.publish(ch, { n: 1 });
    await expect.poll(() => got).toEqual([{ n: 1 }]);
    expect(errors.map((e) => e.code)).toEqual(['PUBSUB_PAYLOAD_INVALID', 'PUBSUB_PAYLOAD_INVALID']);
  });

  it('stops delivering after unsubscribe', async () => {
    const { bus: b } = await bus();
    const ch = textChannel('u');
    const got: string[] = [];
    const off = await b.subscribe(ch, (v) => got.push(v));
    await b.publish(ch, 'a');
    await expect.poll(() => got).toEqual(['a']);
    await off();
    expect(await b.publish(ch, 'b')).toBe(0);
    expect(b.channels()).toEqual([]);
  });

  it('resubscribes after its connection is killed', async () => {
    const { bus: b, subscriber, clientId } = await bus();
    const ch = textChannel('k');
    const got: string[] = [];
    await b.subscribe(ch, (v) => got.push(v));
    let resubscribed = 0;
    b.onResubscribe(() => resubscribed++);

    const reconnected = once(subscriber, 'ready');
    expect(await r.client.client('KILL', 'ID', String(clientId))).toBe(1);
    await reconnected;
    await expect.poll(() => resubscribed).toBe(1);

    await expect.poll(() => b.publish(ch, 'after')).toBe(1);
    await expect.poll(() => got).toEqual(['after']);
  });
});
