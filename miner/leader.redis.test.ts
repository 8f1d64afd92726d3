import type { Redis } from 'ioredis';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import { redisUrl, useRedis } from '../test/helpers/redis.js';
import { waitFor } from '../test/helpers/redis-server.js';
import { createRedisClient, type KeyBuilder } from '../transport/index.js';
import { GlobalLeaderElector, type LeaderElectionTimings, type LeadershipLossReason } from './leader.js';

const log = pino({ level: 'silent' });
const r = useRedis();

const FAST: LeaderElectionTimings = { leader_ttl_ms: 600, heartbeat_interval_ms: 100 };

type LeaderEvent = 'elected' | `demoted:${LeadershipLossReason}`;

interface Candidate {
  el: GlobalLeaderElector;
  events: LeaderEvent[];
  client: Redis;
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function ownClient(): Promise<Redis> {
  const c = await createRedisClient({ url: redisUrl(), connection_name: 'leader-test' });
  c.on('error', () => undefined);
  cleanup.push(() => Promise.resolve(c.disconnect()));
  return c;
}

function candidate(
  client: Redis,
  keys: KeyBuilder,
  id: string,
  timings = FAST,
  onDemoted?: (reason: LeadershipLossReason) => Promise<void>,
): Candidate {
  const events: LeaderEvent[] = [];
  const el = new GlobalLeaderElector(
    {
      redis: client,
      keys,
      log,
      handlers: {
        onElected: () => void events.push('elected'),
        onDemoted: (reason) => {
          events.push(`demoted:${reason}`);
          return onDemoted?.(reason);
        },
      },
    },
    { ...timings, instance_id: id },
  );
  cleanup.push(() => el.stop());
  return { el, events, client };
}

const leaders = (cs: Candidate[]): string[] => cs.filter((c) => c.el.isLeader).map((c) => c.el.instanceId);

describe('GlobalLeaderElector', () => {
  it('elects exactly one of several contenders and keeps it', async () => {
    const keys = r.keys();
    const cs = await Promise.all(
      ['a', 'b', 'c', 'd'].map(async (id) => candidate(await ownClient(), keys, `inst-${id}`)),
    );
    await Promise.all(cs.map((c) => c.el.start()));
    expect(leaders(cs).length).toBe(1);
    const first = leaders(cs)[0]!;
    let maxLeaders = 1;
    const sampler = setInterval(() => (maxLeaders = Math.max(maxLeaders, leaders(cs).length)), 5);
    await new Promise((res) => setTimeout(res, 2 * FAST.leader_ttl_ms));
    clearInterval(sampler);
    expect(maxLeaders).toBe(1);
    expect(leaders(cs)).toEqual([first]);
    expect(await r.client.get(keys.globalLeader())).toBe(first);
    expect(cs.map((c) => c.events)).toEqual(cs.map((c) => (c.el.instanceId === first ? ['elected'] : [])));
  });

  it('replaces a dead leader after about one TTL, and the dead one steps down on its own', async () => {
    const keys = r.keys();
    const a = candidate(await ownClient(), keys, 'inst-a');
    await a.el.start();
    const b = candidate(await ownClient(), keys, 'inst-b');
    await b.el.start();
    expect(leaders([a, b])).toEqual(['inst-a']);

    a.client.disconnect();
    const killedAt = Date.now();
    await waitFor(() => b.el.isLeader, 3_000);
    expect(Date.now() - killedAt).toBeLessThanOrEqual(FAST.leader_ttl_ms + FAST.heartbeat_interval_ms);
    await waitFor(() => !a.el.isLeader, 1_000);
    expect(a.events.length).toBe(2);
    expect(a.events[0]).toBe('elected');
    expect(['demoted:redis_error', 'demoted:expired']).toContain(a.events[1]);
    expect(b.events).toEqual(['elected']);
    expect(await r.client.get(keys.globalLeader())).toBe('inst-b');
  });

  it('a graceful stop demotes first (lock still held), then releases, and a follower takes over at once', async () => {
    const keys = r.keys();
    const timings = { leader_ttl_ms: 5_000, heartbeat_interval_ms: 100 };
    let holderDuringDemote: string | null = 'unset';
    const a = candidate(r.client, keys, 'inst-a', timings, async () => {
      await new Promise((res) => setTimeout(res, 150));
      holderDuringDemote = await r.client.get(keys.globalLeader());
    });
    await a.el.start();
    const b = candidate(r.client, keys, 'inst-b', timings);
    await b.el.start();
    await a.el.stop();
    const stoppedAt = Date.now();
    await waitFor(() => b.el.isLeader, 2_000);
    expect(Date.now() - stoppedAt).toBeLessThanOrEqual(2 * timings.heartbeat_interval_ms);
    expect(holderDuringDemote).toBe('inst-a');
    expect(a.events).toEqual(['elected', 'demoted:stopped']);
    expect(a.el.isLeader).toBe(false);
    expect(await r.client.get(keys.globalLeader())).toBe('inst-b');
  });

  it('steps down when another instance holds the lock, and never takes a held lock', async () => {
    const keys = r.keys();
    const a = candidate(r.client, keys, 'inst-a');
    await a.el.start();
    await r.client.set(keys.globalLeader(), 'intruder', 'PX', 10_000);
    await waitFor(() => !a.el.isLeader);
    await new Promise((res) => setTimeout(res, 3 * FAST.heartbeat_interval_ms));
    expect(a.events).toEqual(['elected', 'demoted:taken']);
    expect(await r.client.get(keys.globalLeader())).toBe('intruder');
  });

  it('stopping a follower leaves the leader alone', async () => {
    const keys = r.keys();
    const a = candidate(r.client, keys, 'inst-a');
    const b = candidate(r.client, keys, 'inst-b');
    await a.el.start();
    await b.el.start();
    await b.el.stop();
    expect([a.events, b.events]).toEqual([['elected'], []]);
    expect(await r.client.get(keys.globalLeader())).toBe('inst-a');
  });

  it('refuses bad timings and an empty instance id', () => {
    const deps = {
      redis: r.client,
      keys: r.keys(),
      log,
      handlers: { onElected: () => {}, onDemoted: () => {} },
    };
    const attempts = [
      { leader_ttl_ms: 100, heartbeat_interval_ms: 100 },
      { leader_ttl_ms: 0, heartbeat_interval_ms: 100 },
      { leader_ttl_ms: 1_000, heartbeat_interval_ms: 0.5 },
      { ...FAST, instance_id: '' },
    ].map((cfg) => {
      try {
        new GlobalLeaderElector(deps, cfg);
        return 'accepted';
      } catch (err) {
        return err instanceof InvalidInputError ? err.message : String(err);
      }
    });
    expect(attempts).toEqual([
      'leader election heartbeat_interval_ms: must be below leader_ttl_ms',
      'leader election leader_ttl_ms: must be a whole number >= 1, got 0',
      'leader election heartbeat_interval_ms: must be a whole number >= 1, got 0.5',
      'leader instance id: must not be empty',
    ]);
  });
});
