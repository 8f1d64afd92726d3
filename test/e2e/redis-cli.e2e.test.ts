/**
 * `pocket-relay-miner redis` against a Redis filled by a real run: a relayer (relayer-fixtures.ts)
 * serves gateway-signed relays of two sessions, a miner replica built by `startMiner` on the same
 * namespace consumes them, builds the tries and claims the first session on the localnet. Every
 * subcommand is then checked against what was sent and what the chain holds.
 *
 * testGenesis: 4-block sessions. Session [5, 8] (5 relays) is claimed at 10 and lands at 11;
 * session [9, 12] (3 relays) is still active at height 12.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningMiner } from '../../cmd/miner.js';
import { registerRedisCommand, type RedisCliIo } from '../../cmd/redis/command.js';
import { cliOver, type RedisCli } from '../../cmd/redis/context.js';
import { inspectCache, invalidateCache, listCache } from '../../cmd/redis/cache.js';
import { dedupReport } from '../../cmd/redis/dedup.js';
import { leaderHealth, leaderReport } from '../../cmd/redis/leader.js';
import { ledgerReport } from '../../cmd/redis/ledger.js';
import { meterEntries } from '../../cmd/redis/meter.js';
import { collectMessages, resolveChannel } from '../../cmd/redis/pubsub.js';
import { listKeys } from '../../cmd/redis/keys.js';
import { listSessions } from '../../cmd/redis/sessions.js';
import { smstTrees } from '../../cmd/redis/smst.js';
import { allStreams, supplierStream } from '../../cmd/redis/streams.js';
import { submissionsReport } from '../../cmd/redis/submissions.js';
import { readSupplier, supplierClaims } from '../../cmd/redis/supplier.js';
import { SessionStore } from '../../miner/index.js';
import type { SessionHeader } from '../../protocol/index.js';
import type { InvalidationType } from '../../transport/index.js';
import { redisUrl } from '../helpers/redis.js';
import { APP, SUPPLIER, testGenesis } from './localnet-fixtures.js';
import { driveTo, sendRelays, startMinerReplica, waitFor } from './miner-fixtures.js';
import { startRelayerStack, type RelayerStack } from './relayer-fixtures.js';

const FIRST_RELAYS = 5;
const SECOND_RELAYS = 3;
const genesis = testGenesis();
const CUPR = genesis.services[0]!.compute_units_per_relay;
const RELAY_COST =
  (CUPR * genesis.params.shared.compute_units_to_tokens_multiplier) /
  genesis.params.shared.compute_unit_cost_granularity;

let stack: RelayerStack;
let miner: RunningMiner;
let cli: RedisCli;
let store: SessionStore;
let first: SessionHeader;
let second: SessionHeader;
let base: string;

beforeAll(async () => {
  stack = await startRelayerStack();
  miner = await startMinerReplica(stack, 'miner-cli');
  await waitFor(
    () => miner.owned().includes(SUPPLIER.address) && miner.isLeader,
    5_000,
    'lease and leadership',
  );
  store = new SessionStore(
    { redis: stack.redis, keys: stack.keys, log: pino({ level: 'silent' }) },
    { ttl_seconds: 0 },
  );
  const consumed = (h: SessionHeader, n: number): Promise<number> =>
    waitFor(
      async () => (await store.get(SUPPLIER.address, h.sessionId))?.relay_count === n,
      5_000,
      `${n} relays`,
    );
  first = await stack.session('anvil');
  expect(await sendRelays(stack, first, FIRST_RELAYS)).toBe(FIRST_RELAYS);
  await consumed(first, FIRST_RELAYS);
  await driveTo(stack, [miner], 9);
  second = await stack.session('anvil');
  expect(await sendRelays(stack, second, SECOND_RELAYS)).toBe(SECOND_RELAYS);
  await consumed(second, SECOND_RELAYS);
  await driveTo(stack, [miner], 12);
  await waitFor(
    async () => (await store.get(SUPPLIER.address, first.sessionId))?.state === 'claimed',
    5_000,
    'the first session claimed',
  );
  base = stack.config.redis.namespace.base_prefix;
  cli = cliOver(stack.redis, {
    namespace: stack.config.redis.namespace,
    meterKeyPrefix: stack.config.relay_meter.redis_key_prefix,
    clusterHashTags: false,
  });
}, 60_000);

afterAll(async () => {
  await miner?.stop();
  await stack?.close();
});

interface Run {
  code: number;
  out: string;
  err: string;
}

/** Runs `redis --url … --base-prefix … <args>` through commander, as `pocket-relay-miner` does. */
async function run(
  args: string[],
  confirm: RedisCliIo['confirm'] = { isTty: false, ask: () => Promise.resolve('') },
): Promise<Run> {
  let out = '';
  let err = '';
  const program = new Command().exitOverride();
  registerRedisCommand(program, { out: (s) => (out += s), err: (s) => (err += s), confirm });
  const before = process.exitCode;
  process.exitCode = 0;
  try {
    await program.parseAsync([
      'node',
      'pocket-relay-miner',
      'redis',
      '--url',
      redisUrl(),
      '--base-prefix',
      base,
      ...args,
    ]);
    return { code: Number(process.exitCode ?? 0), out, err };
  } finally {
    process.exitCode = before;
  }
}

describe('redis debug CLI on the state of a real relayer + miner run', () => {
  it('leader: the miner replica holds the global lock; health is judged against the configured TTL', async () => {
    const leaderTtl = miner.config.leader_election.leader_ttl_seconds;
    const r = await leaderReport(cli, leaderTtl);
    expect({ id: r.instance_id, key: r.key, replicas: r.replicas.map((x) => x.instance_id) }).toEqual({
      id: 'miner-cli',
      key: stack.keys.globalLeader(),
      replicas: ['miner-cli'],
    });
    expect(r.ttl_seconds).toBeGreaterThan(0);
    expect(r.ttl_seconds).toBeLessThanOrEqual(leaderTtl);
    expect(r.status).toBe(leaderHealth(r.ttl_seconds, leaderTtl));
    expect([leaderHealth(25, 30), leaderHealth(15, 30), leaderHealth(5, 30), leaderHealth(0, 30)]).toEqual([
      'Healthy (recently renewed)',
      'OK',
      'WARNING - TTL low',
      'CRITICAL',
    ]);
    const c = await run(['--leader-ttl', String(leaderTtl), 'leader']);
    expect(c.code).toBe(0);
    expect(c.out).toContain('Leader:   miner-cli');
    expect(c.out).toContain(`Key:      ${stack.keys.globalLeader()}`);
    expect(c.out).toMatch(/Status: {3}(Healthy \(recently renewed\)|OK|WARNING - TTL low)\n/);
  });

  it('sessions: both sessions with their state and exactly the relays sent', async () => {
    const rows = await listSessions(cli, { supplier: SUPPLIER.address });
    expect(
      rows.map((s) => [
        s.session_id,
        s.state,
        s.relay_count,
        s.total_compute_units,
        s.session_start_height,
        s.session_end_height,
      ]),
    ).toEqual([
      [first.sessionId, 'claimed', FIRST_RELAYS, BigInt(FIRST_RELAYS) * CUPR, 5, 8],
      [second.sessionId, 'active', SECOND_RELAYS, BigInt(SECOND_RELAYS) * CUPR, 9, 12],
    ]);
    const claimed = await listSessions(cli, { supplier: SUPPLIER.address, state: 'claimed' });
    expect(claimed.map((s) => s.session_id)).toEqual([first.sessionId]);
    expect(stack.chain.net.chain.tx(claimed[0]!.claim_tx_hash!)?.result.code).toBe(0);

    const table = await run(['sessions', '--supplier', SUPPLIER.address]);
    expect(table.code).toBe(0);
    const line = table.out.split('\n').find((l) => l.startsWith(first.sessionId))!;
    expect(line.split(/\s+/).slice(0, 7)).toEqual([first.sessionId, 'anvil', '5', '8', 'claimed', '5', '10']);
    const json = await run(['--json', 'sessions', '--supplier', SUPPLIER.address, '--state', 'active']);
    expect(
      (
        JSON.parse(json.out) as { session_id: string; relay_count: number; total_compute_units: string }[]
      ).map((s) => [s.session_id, s.relay_count, s.total_compute_units]),
    ).toEqual([[second.sessionId, SECOND_RELAYS, String(BigInt(SECOND_RELAYS) * CUPR)]]);
    const bad = await run(['sessions']);
    expect({ code: bad.code, err: bad.err }).toEqual({ code: 2, err: 'error: --supplier is required\n' });
  });

  it('smst: the claimed root, count and sum equal the claim on chain; the active trie has a live root', async () => {
    const [t] = await smstTrees(cli, first.sessionId, 3);
    const claim = await stack.chain.query.getClaim(first.sessionId, SUPPLIER.address);
    expect({
      supplier: t!.supplier,
      root: t!.root,
      stats: t!.stats,
      samples: t!.sample_nodes.length,
      nodes:
        t!.node_count === (await stack.redis.hlen(stack.keys.smstNodes(SUPPLIER.address, first.sessionId))),
    }).toEqual({
      supplier: SUPPLIER.address,
      root: {
        hex: Buffer.from(claim.rootHash).toString('hex'),
        count: BigInt(FIRST_RELAYS),
        sum: BigInt(FIRST_RELAYS) * CUPR,
      },
      stats: { count: BigInt(FIRST_RELAYS), sum: BigInt(FIRST_RELAYS) * CUPR },
      samples: 3,
      nodes: true,
    });
    const [live] = await smstTrees(cli, second.sessionId, 0);
    expect({ root: live!.root, count: live!.live_root?.count, sum: live!.live_root?.sum }).toEqual({
      root: undefined,
      count: BigInt(SECOND_RELAYS),
      sum: BigInt(SECOND_RELAYS) * CUPR,
    });
    const c = await run(['smst', '--session', first.sessionId]);
    expect(c.out).toContain(`(count ${FIRST_RELAYS}, sum ${FIRST_RELAYS * 2})`);
    expect(c.out).toContain(
      `redis flush --pattern '${stack.keys.smstSessionAllPattern(SUPPLIER.address, first.sessionId)}'`,
    );
  });

  it('streams: the supplier stream with the miner group, every relay read and acknowledged', async () => {
    const streams = await allStreams(cli);
    expect(
      streams.map((s) => ({
        key: s.key,
        length: s.length,
        groups: s.groups.map(({ last_delivered_id: _, ...g }) => g),
      })),
    ).toEqual([
      {
        key: stack.keys.relayStream(SUPPLIER.address),
        length: 0,
        groups: [
          {
            name: stack.keys.consumerGroup(),
            consumers: 1,
            pending: 0,
            entries_read: FIRST_RELAYS + SECOND_RELAYS,
            lag: 0,
          },
        ],
      },
    ]);
    const one = await supplierStream(cli, SUPPLIER.address, 5);
    expect(one?.recent).toEqual([]);
    const c = await run(['streams', '--supplier', SUPPLIER.address]);
    expect(c.out).toMatch(new RegExp(`${stack.keys.consumerGroup()}\\s+1\\s+0\\s+8`));
  });

  it('dedup: one request identity per relay mined in each session', async () => {
    const a = await dedupReport(cli, first.sessionId, 10);
    const b = await dedupReport(cli, second.sessionId, 2);
    expect([a.members, a.sample.length, b.members, b.sample.length]).toEqual([
      FIRST_RELAYS,
      FIRST_RELAYS,
      SECOND_RELAYS,
      2,
    ]);
    expect(a.sample.every((h) => /^[0-9a-f]{64}$/.test(h))).toBe(true);
    expect(a.ttl_seconds).toBeGreaterThan(0);
    const c = await run(['dedup', '--session', second.sessionId]);
    expect(c.out).toContain(`Members:  ${SECOND_RELAYS}`);
  });

  it('ledger: per-session buckets and totals add up to the relays sent', async () => {
    const r = await ledgerReport(cli, SUPPLIER.address);
    expect(r.sessions.map((s) => [s.session_id, s.state, s.relay_count, s.ledger.relays])).toEqual([
      ...[
        [first.sessionId, 'claimed', FIRST_RELAYS, { mined: 5n, claimed: 5n }],
        [second.sessionId, 'active', SECOND_RELAYS, { mined: 3n }],
      ].sort((x, y) => ((x[0] as string) < (y[0] as string) ? -1 : 1)),
    ]);
    expect(r.totals.relays).toEqual({
      mined: BigInt(FIRST_RELAYS + SECOND_RELAYS),
      claimed: BigInt(FIRST_RELAYS),
    });
    expect(r.totals.upokt.fee_estimated_upokt).toBeGreaterThan(0n);
    const c = await run(['ledger', '--supplier', SUPPLIER.address]);
    expect(
      c.out
        .split('\n')
        .find((l) => l.startsWith('TOTAL'))!
        .split(/\s+/)
        .slice(0, 3),
    ).toEqual(['TOTAL', '8', '5']);
  });

  it('meter: consumed = relays × relay cost for the active session; the claimed one was cleaned up', async () => {
    const rows = await meterEntries(cli, { supplier: SUPPLIER.address });
    expect(
      rows.map((r) => [
        r.session_id,
        r.consumed_upokt,
        r.meta?.app_address,
        r.meta?.service_id,
        r.meta?.session_end_height,
      ]),
    ).toEqual([[second.sessionId, BigInt(SECOND_RELAYS) * RELAY_COST, APP.address, 'anvil', 12]]);
    expect(rows[0]!.remaining_upokt).toBe(
      BigInt(rows[0]!.meta!.max_stake_upokt) - BigInt(SECOND_RELAYS) * RELAY_COST,
    );
    expect(await meterEntries(cli, { session: first.sessionId })).toEqual([]);
    const c = await run(['meter', '--all']);
    expect(c.out.split('\n')[2]!.split(/\s+/).slice(5, 6)).toEqual([
      String(BigInt(SECOND_RELAYS) * RELAY_COST),
    ]);
    expect((await run(['meter'])).code).toBe(2);
  });

  it('supplier: the registry entry and the lease owner', async () => {
    const e = await readSupplier(cli, SUPPLIER.address);
    expect({ active: e?.active, corrupted: e?.corrupted, services: e?.state?.services }).toEqual({
      active: true,
      corrupted: false,
      services: ['anvil', 'stream'],
    });
    expect(await supplierClaims(cli)).toEqual([
      { supplier: SUPPLIER.address, instance_id: 'miner-cli', ttl_seconds: expect.any(Number) as number },
    ]);
    const c = await run(['supplier', '--claims']);
    expect(c.out).toMatch(/miner-cli\s+1/);
  });

  it('submissions: the claim record carries the claim tx of the snapshot', async () => {
    const snap = (await store.get(SUPPLIER.address, first.sessionId))!;
    const r = await submissionsReport(cli, { supplier: SUPPLIER.address, limit: 0 });
    expect(
      r.records.map((x) => [x.phase, x.session_id, x.session_end_height, x.tx_hash, x.relay_count, x.status]),
    ).toEqual([['claim', first.sessionId, 8, snap.claim_tx_hash, FIRST_RELAYS, 'included']]);
    expect(r.pending).toEqual([]);
    const one = await run([
      '--json',
      'submissions',
      '--supplier',
      SUPPLIER.address,
      '--session',
      first.sessionId,
      '--session-end',
      '8',
    ]);
    expect((JSON.parse(one.out) as { records: { tx_hash: string }[] }).records.map((x) => x.tx_hash)).toEqual(
      [snap.claim_tx_hash],
    );
    expect((await run(['submissions', '--failed-only'])).out).toBe('No submission records\n');
  });

  it('keys: SCAN listing with types and TTLs, limited', async () => {
    const r = await listKeys(cli, stack.keys.allKeysPattern(), 0, true);
    const byKey = new Map(r.keys.map((k) => [k.key, k.type]));
    expect([
      byKey.get(stack.keys.globalLeader()),
      byKey.get(stack.keys.relayStream(SUPPLIER.address)),
      byKey.get(stack.keys.minerSession(SUPPLIER.address, first.sessionId)),
      byKey.get(stack.keys.smstNodes(SUPPLIER.address, first.sessionId)),
    ]).toEqual(['string', 'stream', 'hash', 'hash']);
    const few = await listKeys(cli, stack.keys.allKeysPattern(), 3, false);
    expect([few.keys.length, few.truncated]).toEqual([3, true]);
    const c = await run(['keys', '--pattern', stack.keys.globalLeader(), '--stats']);
    expect(c.out).toMatch(new RegExp(`1\\s+${stack.keys.globalLeader()}\\s+string\\s+\\d+s`));
  });

  it('cache: lists and inspects entries the relayer filled; invalidating a key deletes it and publishes', async () => {
    const apps = await listCache(cli, 'application');
    expect(apps.map((a) => a.key)).toEqual([stack.keys.applicationKey(APP.address)]);
    const svc = await inspectCache(cli, 'service', 'anvil');
    expect([
      svc.exists,
      svc.size_bytes > 0,
      svc.preview?.includes(Buffer.from('anvil').toString('hex')),
    ]).toEqual([true, true, true]);

    let subscribed!: () => void;
    const ready = new Promise<void>((r) => (subscribed = r));
    const ac = new AbortController();
    const messages = collectMessages(cli, resolveChannel(cli, 'invalidate:service'), 0, undefined, {
      signal: ac.signal,
      onSubscribed: subscribed,
    });
    await ready;
    const res = await invalidateCache(
      cli,
      { type: 'service', key: 'anvil' },
      { isTty: false, ask: () => Promise.resolve('') },
      () => undefined,
    );
    expect([res.deleted, await stack.redis.exists(stack.keys.serviceKey('anvil'))]).toEqual([1, 0]);
    await waitFor(() => false, 200, 'delivery').catch(() => undefined);
    ac.abort();
    expect((await messages).map((m) => [m.channel, m.payload])).toEqual([
      [stack.keys.invalidationChannel('service'), '{"service_id":"anvil"}'],
    ]);
    const bulk = await run(['cache', '--type', 'supplier', '--invalidate', '--all']);
    expect(bulk.code).toBe(2);
    expect(await stack.redis.exists(stack.keys.supplierState(SUPPLIER.address))).toBe(1);
  });

  it('cache --type all --invalidate --all: every cache entry but the locks, healthy registry entries kept', async () => {
    const lock = stack.keys.cacheLockKey('application', APP.address);
    await stack.redis.set(lock, '1', 'EX', 60);
    const dry = await run(['--json', 'cache', '--type', 'all', '--invalidate', '--all', '--dry-run']);
    const plan = JSON.parse(dry.out) as {
      keys: string[];
      kept_suppliers: number;
      publish: { channel: string }[];
    };
    expect({
      hasApp: plan.keys.includes(stack.keys.applicationKey(APP.address)),
      hasLock: plan.keys.includes(lock),
      hasRegistry: plan.keys.includes(stack.keys.supplierState(SUPPLIER.address)),
      kept: plan.kept_suppliers,
      channels: plan.publish.map((p) => p.channel),
    }).toEqual({
      hasApp: true,
      hasLock: false,
      hasRegistry: false,
      kept: 1,
      channels: [
        'application',
        'service',
        'account',
        'supplier',
        'shared_params',
        'session_params',
        'proof_params',
      ].map((t) => stack.keys.invalidationChannel(t as InvalidationType)),
    });
    expect((await run(['cache', '--type', 'all', '--invalidate', '--all'])).code).toBe(2);
    const done = await run(['cache', '--type', 'all', '--invalidate', '--all', '--yes']);
    expect(done.out).toMatch(
      /^About to delete \d+ cache key\(s\) and publish 7 invalidation\(s\)\.\nDeleted \d+ key\(s\); published 7 invalidation\(s\); kept 1 healthy supplier registry entry\n$/,
    );
    expect(
      await Promise.all([
        stack.redis.exists(stack.keys.applicationKey(APP.address)),
        stack.redis.exists(lock),
        stack.redis.exists(stack.keys.supplierState(SUPPLIER.address)),
      ]),
    ).toEqual([0, 1, 1]);
  });

  it('pubsub: prints the block events the chain driver publishes for --seconds, then exits', async () => {
    const listening = run(['pubsub', '--channel', 'blocks', '--seconds', '2']);
    await new Promise((r) => setTimeout(r, 300));
    const h = await stack.advance(1);
    const c = await listening;
    expect(c.code).toBe(0);
    // Both the chain driver and the leader miner publish each block.
    const lines = c.out
      .split('\n')
      .filter((l) => l.includes(`${stack.keys.blockEventsChannel()}: {"height":${h},`));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(c.out.endsWith(`${lines.length} message(s)\n`)).toBe(true);
  });

  it('flush: refuses without --yes and no terminal, honours a typed answer, deletes only inside the namespace', async () => {
    const pattern = stack.keys.smstSessionAllPattern(SUPPLIER.address, second.sessionId);
    const before = await stack.redis.keys(pattern);
    expect(before.length).toBeGreaterThan(0);
    const refused = await run(['flush', '--pattern', pattern]);
    expect({ code: refused.code, err: refused.err }).toEqual({
      code: 2,
      err: 'error: refusing to delete without confirmation: stdin is not a terminal; pass --yes\n',
    });
    const declined = await run(['flush', '--pattern', pattern], {
      isTty: true,
      ask: () => Promise.resolve('no'),
    });
    expect([declined.code, declined.out.endsWith('Aborted; nothing deleted\n')]).toEqual([1, true]);
    expect((await stack.redis.keys(pattern)).sort()).toEqual(before.sort());
    const outside = await run(['flush', '--pattern', 'other:*', '--yes']);
    expect(outside.code).toBe(2);
    expect(outside.err).toContain('outside the namespace');
    const done = await run(['flush', '--pattern', pattern], {
      isTty: true,
      ask: () => Promise.resolve('DELETE'),
    });
    expect([done.code, done.out.endsWith(`Deleted ${before.length} key(s)\n`)]).toEqual([0, true]);
    expect(await stack.redis.keys(pattern)).toEqual([]);
  });

  it('--config: redis.url, namespace and meter prefix come from a relayer YAML', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'redis-cli-e2e-'));
    try {
      const file = join(dir, 'relayer.yaml');
      writeFileSync(
        file,
        `redis:\n  url: ${redisUrl()}\n  namespace:\n    base_prefix: '${base}'\n` +
          `relay_meter:\n  redis_key_prefix: '${stack.config.relay_meter.redis_key_prefix}'\n`,
      );
      let out = '';
      const program = new Command().exitOverride();
      registerRedisCommand(program, {
        out: (t) => (out += t),
        err: (t) => (out += t),
        confirm: { isTty: false, ask: () => Promise.resolve('') },
      });
      await program.parseAsync([
        'node',
        'pocket-relay-miner',
        'redis',
        '--config',
        file,
        '--json',
        'meter',
        '--all',
      ]);
      expect(
        (JSON.parse(out) as { session_id: string; consumed_upokt: string }[]).map((m) => [
          m.session_id,
          m.consumed_upokt,
        ]),
      ).toEqual([[second.sessionId, String(BigInt(SECOND_RELAYS) * RELAY_COST)]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('unknown subcommand: clear error, exit 2', async () => {
    const c = await run(['bogus']);
    expect(c.code).toBe(2);
    expect(c.err).toMatch(/^error: unknown redis subcommand 'bogus'; expected one of: leader, sessions,/);
  });

  it('the real binary: flush without --yes from a pipe refuses with exit 2 and deletes nothing', async () => {
    const key = stack.keys.supplierState(SUPPLIER.address);
    const p = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'cmd/main.ts',
        'redis',
        '--url',
        redisUrl(),
        '--base-prefix',
        base,
        'flush',
        '--pattern',
        key,
      ],
      { encoding: 'utf8', input: '', timeout: 30_000 },
    );
    expect({ status: p.status, refused: p.stderr.includes('stdin is not a terminal') }).toEqual({
      status: 2,
      refused: true,
    });
    expect(p.stdout).toContain('Matches:  1 key(s)');
    expect(await stack.redis.exists(key)).toBe(1);
  });
});
