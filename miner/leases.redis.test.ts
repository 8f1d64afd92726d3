import type { Redis } from 'ioredis';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import { redisUrl, useRedis } from '../test/helpers/redis.js';
import { freePort, startRedisServer, stopRedisServer, waitFor } from '../test/helpers/redis-server.js';
import { KeyBuilder, createRedisClient } from '../transport/index.js';
import {
  SupplierLeaseManager,
  acquireLease,
  releaseLease,
  renewLease,
  type LeaseLossReason,
  type SupplierLeaseTimings,
} from './leases.js';

const log = pino({ level: 'silent' });
const r = useRedis();

const FAST: SupplierLeaseTimings = { claim_ttl_ms: 600, renew_interval_ms: 100, rebalance_interval_ms: 200 };
const DEFAULTS: SupplierLeaseTimings = {
  claim_ttl_ms: 4_000,
  renew_interval_ms: 1_000,
  rebalance_interval_ms: 2_000,
};

const suppliers = (n: number): string[] => Array.from({ length: n }, (_, i) => `pokt1supplier${i}`);

type LeaseEvent =
  { event: 'acquired'; supplier: string } | { event: 'lost'; supplier: string; reason: LeaseLossReason };

/** A manager plus what its handlers saw and what it is working right now. */
interface Replica {
  mgr: SupplierLeaseManager;
  events: LeaseEvent[];
  working: Set<string>;
  redis: Redis;
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function ownClient(url = redisUrl()): Promise<Redis> {
  const c = await createRedisClient({ url, connection_name: 'lease-test' });
  c.on('error', () => undefined);
  cleanup.push(() => Promise.resolve(c.disconnect()));
  return c;
}

function replica(
  redis: Redis,
  keys: KeyBuilder,
  id: string,
  list: string[],
  timings: SupplierLeaseTimings,
  onLost?: (s: string, reason: LeaseLossReason) => Promise<void> | void,
  logger = log,
): Replica {
  const events: LeaseEvent[] = [];
  const working = new Set<string>();
  const mgr = new SupplierLeaseManager(
    {
      redis,
      keys,
      log: logger,
      handlers: {
        onAcquired: (supplier) => {
          if (working.has(supplier)) throw new Error(`${id}: ${supplier} acquired twice`);
          working.add(supplier);
          events.push({ event: 'acquired', supplier });
        },
        onLost: (supplier, reason) => {
          working.delete(supplier);
          events.push({ event: 'lost', supplier, reason });
          return onLost?.(supplier, reason);
        },
      },
    },
    { ...timings, suppliers: list, instance_id: id },
  );
  cleanup.push(() => mgr.stop());
  return { mgr, events, working, redis };
}

async function owners(
  redis: Redis,
  keys: KeyBuilder,
  list: string[],
): Promise<Record<string, string | null>> {
  const values = await redis.mget(...list.map((s) => keys.minerClaim(s)));
  return Object.fromEntries(list.map((s, i) => [s, values[i] ?? null]));
}

/** Redis owner of every supplier, as each replica believes it. */
function expectedOwners(list: string[], replicas: Replica[]): Record<string, string | null> {
  return Object.fromEntries(
    list.map((s) => [s, replicas.find((x) => x.mgr.holds(s))?.mgr.instanceId ?? null]),
  );
}

function noDoubleOwnership(replicas: Replica[]): boolean {
  const seen = new Set<string>();
  for (const x of replicas) {
    for (const s of x.working) {
      if (seen.has(s)) return false;
      seen.add(s);
    }
  }
  return true;
}

const counts = (replicas: Replica[]): number[] => replicas.map((x) => x.mgr.owned().length);

/** Waits until every supplier is owned, each replica by at most its fair share. */
async function converged(list: string[], replicas: Replica[], timeoutMs = 5_000): Promise<void> {
  const share = Math.ceil(list.length / replicas.length);
  await waitFor(
    () =>
      counts(replicas).reduce((a, b) => a + b, 0) === list.length &&
      counts(replicas).every((n) => n <= share) &&
      noDoubleOwnership(replicas),
    timeoutMs,
  );
}

describe('SupplierLeaseManager', () => {
  it('two replicas sharing four suppliers converge to 2 + 2, as Redis and their handlers agree', async () => {
    const keys = r.keys();
    const list = suppliers(4);
    const a = replica(r.client, keys, 'inst-a', list, FAST);
    const b = replica(r.client, keys, 'inst-b', list, FAST);
    await Promise.all([a.mgr.start(), b.mgr.start()]);
    await converged(list, [a, b]);
    const before = [a.mgr.owned(), b.mgr.owned()];
    await new Promise((res) => setTimeout(res, 3 * FAST.rebalance_interval_ms));
    expect([a.mgr.owned(), b.mgr.owned()]).toEqual(before);
    expect(counts([a, b])).toEqual([2, 2]);
    expect([[...a.working].sort(), [...b.working].sort()]).toEqual(before);
    expect(await owners(r.client, keys, list)).toEqual(expectedOwners(list, [a, b]));
    expect((await r.client.smembers(keys.minerActiveSet())).sort()).toEqual(['inst-a', 'inst-b']);
    expect([a.mgr.liveInstances, b.mgr.liveInstances]).toEqual([2, 2]);
  });

  it('three replicas sharing six suppliers converge to 2 + 2 + 2, whatever the start order', async () => {
    const keys = r.keys();
    const list = suppliers(6);
    const a = replica(r.client, keys, 'inst-a', list, FAST);
    await a.mgr.start();
    expect(a.mgr.owned()).toEqual(list);
    const b = replica(r.client, keys, 'inst-b', list, FAST);
    const c = replica(r.client, keys, 'inst-c', list, FAST);
    await Promise.all([b.mgr.start(), c.mgr.start()]);
    await converged(list, [a, b, c]);
    expect(counts([a, b, c])).toEqual([2, 2, 2]);
    expect(await owners(r.client, keys, list)).toEqual(expectedOwners(list, [a, b, c]));
    // A gave its excess away through onLost('rebalanced') before the release.
    expect(
      a.events.filter((e) => e.event === 'lost').sort((x, y) => (x.supplier < y.supplier ? -1 : 1)),
    ).toEqual(
      list.filter((s) => !a.mgr.holds(s)).map((s) => ({ event: 'lost', supplier: s, reason: 'rebalanced' })),
    );
  });

  it('with the default timings, the survivor owns every supplier within 5 s of a replica dying', async () => {
    const keys = r.keys();
    const list = suppliers(6);
    const victimClient = await ownClient();
    const a = replica(victimClient, keys, 'inst-victim', list, DEFAULTS);
    const b = replica(r.client, keys, 'inst-survivor', list, DEFAULTS);
    await a.mgr.start();
    await b.mgr.start();
    await converged(list, [a, b], 10_000);
    expect(counts([a, b])).toEqual([3, 3]);
    const victimOwned = a.mgr.owned();
    const eventsBefore = a.events.length;

    // SIGKILL as Redis sees it: the connection drops and nothing is released.
    victimClient.disconnect();
    const killedAt = Date.now();
    await waitFor(() => b.mgr.owned().length === 6, 10_000);
    const takeoverMs = Date.now() - killedAt;

    expect(takeoverMs).toBeLessThanOrEqual(5_000);
    expect(takeoverMs).toBeGreaterThan(DEFAULTS.claim_ttl_ms - DEFAULTS.renew_interval_ms - 100);
    expect(await owners(r.client, keys, list)).toEqual(
      Object.fromEntries(list.map((s) => [s, 'inst-survivor'])),
    );
    expect(await r.client.smembers(keys.minerActiveSet())).toEqual(['inst-survivor']);
    // The victim stopped working its suppliers on its own once it could not renew.
    expect(a.working.size).toBe(0);
    expect(
      a.events
        .slice(eventsBefore)
        .filter((e) => e.event === 'lost')
        .map((e) => e.supplier)
        .sort(),
    ).toEqual(victimOwned);
  }, 30_000);

  it('with short timings, takeover after a crash stays within claim TTL + rebalance interval', async () => {
    const keys = r.keys();
    const list = suppliers(5);
    const victimClient = await ownClient();
    const a = replica(victimClient, keys, 'inst-victim', list, FAST);
    const b = replica(r.client, keys, 'inst-survivor', list, FAST);
    await Promise.all([a.mgr.start(), b.mgr.start()]);
    await converged(list, [a, b]);
    victimClient.disconnect();
    const killedAt = Date.now();
    await waitFor(() => b.mgr.owned().length === 5, 5_000);
    expect(Date.now() - killedAt).toBeLessThanOrEqual(FAST.claim_ttl_ms + FAST.rebalance_interval_ms);
    expect(noDoubleOwnership([a, b])).toBe(true);
  });

  it('a graceful stop drains while still holding the leases, then hands over within one rebalance tick', async () => {
    const keys = r.keys();
    const list = suppliers(4);
    const timings = { claim_ttl_ms: 3_000, renew_interval_ms: 100, rebalance_interval_ms: 300 };
    const ownerDuringDrain: Record<string, string | null> = {};
    const a = replica(r.client, keys, 'inst-a', list, timings, async (s, reason) => {
      if (reason !== 'stopped') return;
      await new Promise((res) => setTimeout(res, 150));
      ownerDuringDrain[s] = await r.client.get(keys.minerClaim(s));
    });
    const b = replica(r.client, keys, 'inst-b', list, timings);
    await Promise.all([a.mgr.start(), b.mgr.start()]);
    await converged(list, [a, b]);
    const aOwned = a.mgr.owned();
    expect(aOwned.length).toBe(2);

    await a.mgr.stop();
    const stoppedAt = Date.now();
    await waitFor(() => b.mgr.owned().length === 4, 2_000);
    expect(Date.now() - stoppedAt).toBeLessThanOrEqual(timings.rebalance_interval_ms);

    expect(ownerDuringDrain).toEqual(Object.fromEntries(aOwned.map((s) => [s, 'inst-a'])));
    expect(a.events.slice(-2).map((e) => (e.event === 'lost' ? e.reason : e.event))).toEqual([
      'stopped',
      'stopped',
    ]);
    expect(a.mgr.owned()).toEqual([]);
    expect(await r.client.exists(keys.minerInstance('inst-a'))).toBe(0);
    expect(await r.client.smembers(keys.minerActiveSet())).toEqual(['inst-b']);
    expect(await owners(r.client, keys, list)).toEqual(Object.fromEntries(list.map((s) => [s, 'inst-b'])));
  });

  it('reports a stolen lease and a vanished lease as lost at once, and claims the free one back', async () => {
    const keys = r.keys();
    const list = suppliers(2);
    const a = replica(r.client, keys, 'inst-a', list, FAST);
    await a.mgr.start();
    expect(a.mgr.owned()).toEqual(list);
    const [s0, s1] = list as [string, string];

    await r.client.set(keys.minerClaim(s0), 'intruder', 'PX', 10_000);
    await r.client.del(keys.minerClaim(s1));
    await waitFor(() => a.events.length >= 5);
    // Within one round the order across suppliers is not fixed: compare each round as a set.
    const bySupplier = (x: LeaseEvent, y: LeaseEvent): number => (x.supplier < y.supplier ? -1 : 1);
    expect([
      a.events.slice(0, 2).sort(bySupplier),
      a.events.slice(2, 4).sort(bySupplier),
      a.events.slice(4),
    ]).toEqual([
      [
        { event: 'acquired', supplier: s0 },
        { event: 'acquired', supplier: s1 },
      ],
      [
        { event: 'lost', supplier: s0, reason: 'taken' },
        { event: 'lost', supplier: s1, reason: 'taken' },
      ],
      [{ event: 'acquired', supplier: s1 }],
    ]);
    expect(a.mgr.owned()).toEqual([s1]);
    expect(await owners(r.client, keys, list)).toEqual({ [s0]: 'intruder', [s1]: 'inst-a' });
  });

  it('releases the lease of a supplier dropped from the list', async () => {
    const keys = r.keys();
    const list = suppliers(3);
    const a = replica(r.client, keys, 'inst-a', list, FAST);
    await a.mgr.start();
    a.mgr.setSuppliers(list.slice(0, 2));
    await waitFor(async () => (await r.client.exists(keys.minerClaim(list[2]!))) === 0);
    expect(a.mgr.owned()).toEqual(list.slice(0, 2));
    expect(a.events.at(-1)).toEqual({ event: 'lost', supplier: list[2], reason: 'removed' });
  });

  it('when Redis dies every lease is reported lost; after it returns no supplier has two owners', async () => {
    const port = await freePort();
    let server = await startRedisServer(port);
    cleanup.push(() => stopRedisServer(server));
    const url = `redis://127.0.0.1:${port}`;
    const keys = new KeyBuilder();
    const list = suppliers(4);
    const timings = { claim_ttl_ms: 1_000, renew_interval_ms: 200, rebalance_interval_ms: 400 };
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
    const a = replica(await ownClient(url), keys, 'inst-a', list, timings, undefined, logger);
    const b = replica(await ownClient(url), keys, 'inst-b', list, timings, undefined, logger);
    await Promise.all([a.mgr.start(), b.mgr.start()]);
    await converged(list, [a, b]);
    let doubled = false;
    const sampler = setInterval(() => {
      if (!noDoubleOwnership([a, b])) doubled = true;
    }, 5);
    cleanup.push(() => Promise.resolve(clearInterval(sampler)));

    await stopRedisServer(server);
    await waitFor(() => a.working.size === 0 && b.working.size === 0, 3_000);
    const lostReasons = [...a.events, ...b.events].flatMap((e) => (e.event === 'lost' ? [e.reason] : []));
    expect(lostReasons.length).toBe(4);
    expect(lostReasons.every((x) => x === 'redis_error' || x === 'expired')).toBe(true);
    expect([a.mgr.owned(), b.mgr.owned()]).toEqual([[], []]);

    server = await startRedisServer(port);
    await converged(list, [a, b], 10_000);
    const check = await ownClient(url);
    expect(await owners(check, keys, list)).toEqual(expectedOwners(list, [a, b]));
    expect(doubled).toBe(false);
    // The outage was logged, without a single Redis key name in any line.
    expect(lines.some((l) => l.includes('lease renew failed'))).toBe(true);
    expect(lines.filter((l) => l.includes('ha:miner'))).toEqual([]);
  }, 30_000);

  it('refuses bad configuration and bad key parts', () => {
    const deps = {
      redis: r.client,
      keys: r.keys(),
      log,
      handlers: { onAcquired: () => {}, onLost: () => {} },
    };
    const attempts = [
      { ...FAST, renew_interval_ms: 600, suppliers: [] },
      { ...FAST, claim_ttl_ms: 0, suppliers: [] },
      { ...FAST, rebalance_interval_ms: 1.5, suppliers: [] },
      { ...FAST, suppliers: [], instance_id: 'host:1' },
      { ...FAST, suppliers: ['pokt1 bad'] },
    ].map((cfg) => {
      try {
        new SupplierLeaseManager(deps, cfg);
        return 'accepted';
      } catch (err) {
        return err instanceof InvalidInputError ? err.message : String(err);
      }
    });
    expect(attempts).toEqual([
      'supplier lease renew_interval_ms: must be below claim_ttl_ms',
      'supplier lease claim_ttl_ms: must be a whole number >= 1, got 0',
      'supplier lease rebalance_interval_ms: must be a whole number >= 1, got 1.5',
      'instance id in a Redis key: must be non-empty, without braces, colons, spaces or glob characters',
      'supplier address in a Redis key: must be non-empty, without braces or spaces',
    ]);
  });
});

describe('lease primitives', () => {
  it('acquire, renew and release follow the holder', async () => {
    const key = r.keys().minerClaim('pokt1x');
    expect([
      await acquireLease(r.client, key, 'a', 1_000),
      await acquireLease(r.client, key, 'b', 1_000),
      await renewLease(r.client, key, 'b', 1_000),
      await releaseLease(r.client, key, 'b'),
      await renewLease(r.client, key, 'a', 1_000),
      await releaseLease(r.client, key, 'a'),
      await renewLease(r.client, key, 'a', 1_000),
    ]).toEqual([true, false, false, false, true, true, false]);
  });

  it('refuses an empty holder and a bad TTL before calling Redis', async () => {
    const key = r.keys().minerClaim('pokt1x');
    const errors = await Promise.all(
      [
        () => acquireLease(r.client, key, '', 1_000),
        () => acquireLease(r.client, key, 'a', 0),
        () => renewLease(r.client, key, 'a', 2.5),
        () => releaseLease(r.client, key, ''),
      ].map((fn) =>
        fn().then(
          () => 'accepted',
          (err: unknown) => (err instanceof InvalidInputError ? err.message : String(err)),
        ),
      ),
    );
    expect(errors).toEqual([
      'lease holder id: must not be empty',
      'lease ttl: must be a whole number of milliseconds >= 1, got 0',
      'lease ttl: must be a whole number of milliseconds >= 1, got 2.5',
      'lease holder id: must not be empty',
    ]);
    expect(await r.client.exists(key)).toBe(0);
  });
});
