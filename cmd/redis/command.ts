/**
 * `pocket-relay-miner redis <subcommand>`: read-mostly inspection of the Redis state relayers and
 * miners share, keyed exactly as the services key it. Each subcommand has a data function (in its
 * own file) and a printer; this file only maps flags onto them.
 */
import type { Command } from 'commander';
import { dedupReport, printDedup } from './dedup.js';
import {
  printCacheEntries,
  printCacheEntry,
  printInvalidation,
  inspectCache,
  invalidateCache,
  listCache,
  parseCacheType,
} from './cache.js';
import { confirmDestructive, processIo, type ConfirmIo } from './confirm.js';
import {
  DEFAULT_REDIS_URL,
  RedisCliUsageError,
  connect,
  intFlag,
  requireFlag,
  resolveTarget,
  toJson,
  type Out,
  type RedisCli,
  type RedisGlobalOptions,
  type RedisTarget,
} from './context.js';
import { executeFlush, planFlush, printPlan } from './flush.js';
import { listKeys, printKeys } from './keys.js';
import { leaderReport, printLeader } from './leader.js';
import { ledgerReport, printLedger } from './ledger.js';
import { meterEntries, printMeter } from './meter.js';
import { collectMessages, printMessage, resolveChannel } from './pubsub.js';
import { listSessions, printSessions } from './sessions.js';
import { printSmst, smstTrees } from './smst.js';
import { allStreams, printStreams, supplierStream } from './streams.js';
import { printSubmissions, submissionsReport } from './submissions.js';
import {
  listSuppliers,
  printSupplierClaims,
  printSupplierEntries,
  readSupplier,
  supplierClaims,
} from './supplier.js';

export const REDIS_SUBCOMMANDS = [
  'leader',
  'sessions',
  'ledger',
  'smst',
  'streams',
  'dedup',
  'cache',
  'supplier',
  'meter',
  'submissions',
  'pubsub',
  'keys',
  'flush',
] as const;

/** Where output goes and how confirmations are asked (the process by default). */
export interface RedisCliIo {
  out: Out;
  err: Out;
  confirm: ConfirmIo;
  /** Aborts a `pubsub --seconds 0` subscription (Ctrl-C in the CLI). */
  signal?: AbortSignal;
}

function defaultIo(): RedisCliIo {
  return {
    out: (s) => void process.stdout.write(s),
    err: (s) => void process.stderr.write(s),
    confirm: processIo(),
  };
}

type Opts = Record<string, string | boolean | undefined>;
type Action = (
  cli: RedisCli,
  o: Opts,
  json: boolean,
  io: RedisCliIo,
  target: RedisTarget,
) => Promise<void | number>;

function str(o: Opts, k: string): string | undefined {
  const v = o[k];
  return typeof v === 'string' ? v : undefined;
}

export function registerRedisCommand(program: Command, ioIn?: RedisCliIo): Command {
  const io = (): RedisCliIo => ioIn ?? defaultIo();
  const redis = program
    .command('redis')
    .description('inspect (and carefully clean) the Redis state shared by relayers and miners')
    .argument('[subcommand]')
    .option('--url <url>', `Redis URL (default ${DEFAULT_REDIS_URL}, or redis.url of --config)`)
    .option('--redis <url>', 'same as --url')
    .option(
      '-c, --config <file>',
      'relayer or miner YAML: take redis.url, redis.namespace and relay_meter.redis_key_prefix from it',
    )
    .option('--base-prefix <p>', 'redis.namespace.base_prefix (default ha)')
    .option('--cache-prefix <p>', 'redis.namespace.cache_prefix')
    .option('--events-prefix <p>', 'redis.namespace.events_prefix')
    .option('--streams-prefix <p>', 'redis.namespace.streams_prefix')
    .option('--miner-prefix <p>', 'redis.namespace.miner_prefix')
    .option('--supplier-prefix <p>', 'redis.namespace.supplier_prefix')
    .option('--meter-prefix <p>', 'redis.namespace.meter_prefix')
    .option('--params-prefix <p>', 'redis.namespace.params_prefix')
    .option('--consumer-group-prefix <p>', 'redis.namespace.consumer_group_prefix')
    .option('--meter-key-prefix <p>', 'relay_meter.redis_key_prefix (default: the base prefix)')
    .option('--cluster-hash-tags', 'keys wrap the supplier in a cluster hash tag')
    .option('--leader-ttl <seconds>', 'leader_election.leader_ttl_seconds, for the leader health (default 4)')
    .option('--json', 'machine-readable output')
    .action((sub: string | undefined) => {
      const { err } = io();
      if (sub === undefined) {
        err(redis.helpInformation());
        process.exitCode = 2;
        return;
      }
      err(`error: unknown redis subcommand '${sub}'; expected one of: ${REDIS_SUBCOMMANDS.join(', ')}\n`);
      process.exitCode = 2;
    });

  const sub = (name: string, description: string, action: Action): Command => {
    const c = redis.command(name).description(description);
    c.action(async (_o: Opts, cmd: Command) => {
      const all = cmd.optsWithGlobals<Opts & RedisGlobalOptions>();
      const sink = io();
      let conn: Awaited<ReturnType<typeof connect>> | undefined;
      try {
        const target = resolveTarget(all);
        conn = await connect(target);
        const code = await action(conn.cli, all, all.json === true, sink, target);
        if (typeof code === 'number') process.exitCode = code;
      } catch (e) {
        sink.err(`error: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exitCode = e instanceof RedisCliUsageError ? 2 : 1;
      } finally {
        await conn?.close();
      }
    });
    return c;
  };

  sub(
    'leader',
    'the global leader lock: instance id, TTL, health; live miner replicas',
    async (cli, _o, json, { out }, target) => {
      const r = await leaderReport(cli, target.leaderTtlSeconds);
      if (json) out(toJson(r) + '\n');
      else printLeader(r, out);
    },
  );

  sub(
    'sessions',
    "a supplier's session snapshots (state, relays, compute units, claim/proof tx)",
    async (cli, o, json, { out }) => {
      const q = {
        supplier: requireFlag('supplier', str(o, 'supplier')),
        ...(str(o, 'session') !== undefined ? { session: str(o, 'session')! } : {}),
        ...(str(o, 'state') !== undefined ? { state: str(o, 'state')! } : {}),
      };
      const rows = await listSessions(cli, q);
      if (json) out(toJson(rows) + '\n');
      else printSessions(q, rows, out);
    },
  )
    .option('--supplier <address>', 'supplier operator address (required)')
    .option('--session <id>', 'one session')
    .option('--state <state>', 'only sessions in this state');

  sub(
    'ledger',
    'per-session relay buckets (mined, claimed, proven, lost:…) and uPOKT of a supplier',
    async (cli, o, json, { out }) => {
      const r = await ledgerReport(cli, requireFlag('supplier', str(o, 'supplier')), str(o, 'session'));
      if (json) out(toJson(r) + '\n');
      else printLedger(r, out);
    },
  )
    .option('--supplier <address>', 'supplier operator address (required)')
    .option('--session <id>', 'one session');

  sub(
    'smst',
    "every supplier's session trie of a session: nodes, claimed root (count, sum), live root",
    async (cli, o, json, { out }) => {
      const session = requireFlag('session', str(o, 'session'));
      const trees = await smstTrees(cli, session, intFlag('limit', str(o, 'limit'), 10), str(o, 'supplier'));
      if (json) out(toJson(trees) + '\n');
      else printSmst(session, trees, out);
    },
  )
    .option('--session <id>', 'session id (required)')
    .option('--supplier <address>', 'only this supplier')
    .option('--limit <n>', 'sample nodes to show', '10');

  sub(
    'streams',
    'relay streams: length, consumer groups (pending, last delivered), recent entries',
    async (cli, o, json, { out }) => {
      const supplier = str(o, 'supplier');
      let rows;
      if (supplier !== undefined && o['all'] !== true) {
        const s = await supplierStream(cli, supplier, intFlag('limit', str(o, 'limit'), 10));
        rows = s === undefined ? [] : [s];
      } else rows = await allStreams(cli);
      if (json) out(toJson(rows) + '\n');
      else printStreams(rows, out);
    },
  )
    .option('--supplier <address>', "one supplier's stream, with recent entries")
    .option('--all', 'every relay stream (default without --supplier)')
    .option('--limit <n>', 'recent entries to decode', '10');

  sub(
    'dedup',
    "a session's set of requests already mined (ring-signature c0 each)",
    async (cli, o, json, { out }) => {
      const r = await dedupReport(
        cli,
        requireFlag('session', str(o, 'session')),
        intFlag('limit', str(o, 'limit'), 10),
      );
      if (json) out(toJson(r) + '\n');
      else printDedup(r, out);
    },
  )
    .option('--session <id>', 'session id (required)')
    .option('--limit <n>', 'sample hashes to show', '10');

  sub('cache', 'inspect, list or invalidate cache entries', async (cli, o, json, sink) => {
    const { out } = sink;
    const type = parseCacheType(str(o, 'type'));
    if (o['invalidate'] === true) {
      const r = await invalidateCache(
        cli,
        {
          type,
          ...(str(o, 'key') !== undefined ? { key: str(o, 'key')! } : {}),
          ...(o['all'] === true ? { all: true } : {}),
          ...(str(o, 'keyFile') !== undefined ? { keyFile: str(o, 'keyFile')! } : {}),
          dryRun: o['dryRun'] === true,
          yes: o['yes'] === true,
        },
        sink.confirm,
        json ? () => undefined : out,
      );
      if (json) out(toJson(r) + '\n');
      else printInvalidation(r, out);
      return r.dry_run || r.confirmed ? 0 : 1;
    }
    const key = str(o, 'key');
    if (key !== undefined && o['list'] !== true) {
      if (type === 'all') throw new RedisCliUsageError('--key needs --type');
      const e = await inspectCache(cli, type, key);
      if (json) out(toJson(e) + '\n');
      else printCacheEntry(e, out);
      return e.exists ? 0 : 1;
    }
    const rows = await listCache(cli, type);
    if (json) out(toJson(rows) + '\n');
    else printCacheEntries(rows, out);
  })
    .option(
      '--type <type>',
      'application|service|account|supplier|shared_params|session_params|proof_params|all',
      'all',
    )
    .option('--key <id>', 'entry id (address, service id); inspect, or invalidate with --invalidate')
    .option('--list', 'list the entries of the type')
    .option('--invalidate', 'delete entries and publish their invalidation')
    .option('--all', 'with --invalidate: every entry of the type')
    .option('--key-file <file>', 'with --invalidate: ids one per line (# comments)')
    .option('--dry-run', 'with --invalidate: show what would be deleted')
    .option('--yes', 'skip the confirmation of bulk invalidations');

  sub(
    'supplier',
    'supplier registry entries and which miner replica owns each supplier',
    async (cli, o, json, { out }) => {
      const supplier = str(o, 'supplier');
      if (o['claims'] === true) {
        const rows = await supplierClaims(cli, supplier !== undefined ? [supplier] : []);
        if (json) out(toJson(rows) + '\n');
        else printSupplierClaims(rows, out);
        return;
      }
      if (supplier !== undefined && o['list'] !== true) {
        const e = await readSupplier(cli, supplier);
        if (json) out(toJson(e ?? null) + '\n');
        else if (e === undefined) out(`No registry entry for ${supplier}\n`);
        else printSupplierEntries([e], out);
        return e === undefined ? 1 : 0;
      }
      const rows = await listSuppliers(cli);
      if (json) out(toJson(rows) + '\n');
      else printSupplierEntries(rows, out);
    },
  )
    .option('--supplier <address>', 'one supplier')
    .option('--list', 'every registry entry, staked or not (default)')
    .option('--claims', 'lease holder of each supplier and the distribution across replicas');

  sub(
    'meter',
    'relay meter budgets: consumed and remaining uPOKT per (session, supplier)',
    async (cli, o, json, { out }) => {
      const session = str(o, 'session');
      const supplier = str(o, 'supplier');
      if (session === undefined && supplier === undefined && o['all'] !== true) {
        throw new RedisCliUsageError('give --session, --supplier or --all');
      }
      const rows = await meterEntries(cli, {
        ...(session !== undefined ? { session } : {}),
        ...(supplier !== undefined ? { supplier } : {}),
      });
      if (json) out(toJson(rows) + '\n');
      else printMeter(rows, out);
    },
  )
    .option('--session <id>', 'one session')
    .option('--supplier <address>', 'one supplier')
    .option('--all', 'every metered session');

  sub(
    'submissions',
    'claim/proof submission records and messages awaiting inclusion',
    async (cli, o, json, { out }) => {
      const end = str(o, 'sessionEnd');
      const r = await submissionsReport(cli, {
        ...(str(o, 'supplier') !== undefined ? { supplier: str(o, 'supplier')! } : {}),
        ...(str(o, 'service') !== undefined ? { service: str(o, 'service')! } : {}),
        ...(str(o, 'app') !== undefined ? { app: str(o, 'app')! } : {}),
        ...(str(o, 'session') !== undefined ? { session: str(o, 'session')! } : {}),
        ...(end !== undefined ? { sessionEnd: intFlag('session-end', end, 0) } : {}),
        failedOnly: o['failedOnly'] === true,
        successOnly: o['successOnly'] === true,
        limit: intFlag('limit', str(o, 'limit'), 50),
      });
      if (json) out(toJson(r) + '\n');
      else printSubmissions(r, out);
    },
  )
    .option('--supplier <address>', 'one supplier')
    .option('--service <id>', 'one service')
    .option('--app <address>', 'one application')
    .option('--session <id>', 'one session (with --session-end and --supplier)')
    .option('--session-end <height>', 'session end height')
    .option('--failed-only', 'only submissions the reconciler found missing or invalid')
    .option('--success-only', 'only submissions found on chain')
    .option('--limit <n>', 'at most n records, 0 = all', '50');

  sub('pubsub', 'subscribe to a channel and print its messages for --seconds', async (cli, o, json, sink) => {
    const { out } = sink;
    const channel = resolveChannel(cli, requireFlag('channel', str(o, 'channel')));
    const seconds = intFlag('seconds', str(o, 'seconds') ?? str(o, 'duration'), 10);
    const ac = new AbortController();
    const stop = (): void => ac.abort();
    if (sink.signal === undefined) process.once('SIGINT', stop);
    else sink.signal.addEventListener('abort', stop);
    try {
      if (!json)
        out(`Subscribed to ${channel} for ${seconds === 0 ? 'ever (Ctrl-C to stop)' : `${seconds} s`}\n`);
      const got = await collectMessages(
        cli,
        channel,
        seconds,
        json ? undefined : (m) => printMessage(m, out),
        {
          signal: ac.signal,
        },
      );
      if (json) out(toJson({ channel, messages: got }) + '\n');
      else out(`${got.length} message(s)\n`);
    } finally {
      process.removeListener('SIGINT', stop);
    }
  })
    .option(
      '--channel <name>',
      'channel, or blocks|supplier_update|meter_cleanup|rewardable|params|supplier_params|invalidate:<type>',
    )
    .option('--seconds <n>', 'how long to listen, 0 = until Ctrl-C', '10')
    .option('--duration <n>', 'same as --seconds');

  sub('keys', 'SCAN the namespace (optionally with type and TTL)', async (cli, o, json, { out }) => {
    const stats = o['stats'] === true;
    const r = await listKeys(
      cli,
      str(o, 'pattern') ?? cli.keys.allKeysPattern(),
      intFlag('limit', str(o, 'limit'), 100),
      stats,
    );
    if (json) out(toJson(r) + '\n');
    else printKeys(r, stats, out);
  })
    .option('--pattern <glob>', 'SCAN MATCH pattern (default {base}:*)')
    .option('--limit <n>', 'at most n keys, 0 = all', '100')
    .option('--stats', 'add type and TTL of each key');

  sub(
    'flush',
    'delete the keys of a pattern inside the namespace (asks unless --yes)',
    async (cli, o, json, sink) => {
      const { out } = sink;
      const plan = await planFlush(cli, str(o, 'pattern'), o['all'] === true);
      if (!json) printPlan(plan, out);
      if (plan.keys.length === 0) {
        if (json) out(toJson({ ...plan, deleted: 0 }) + '\n');
        return 0;
      }
      const ok = await confirmDestructive(
        o['yes'] === true || o['force'] === true,
        sink.confirm,
        `Delete ${plan.keys.length} key(s) matching ${plan.pattern}?`,
      );
      if (!ok) {
        if (json) out(toJson({ ...plan, deleted: 0, aborted: true }) + '\n');
        else out('Aborted; nothing deleted\n');
        return 1;
      }
      const deleted = await executeFlush(cli, plan);
      if (json) out(toJson({ ...plan, deleted }) + '\n');
      else out(`Deleted ${deleted} key(s)\n`);
    },
  )
    .option('--pattern <glob>', 'keys to delete; must start with the base prefix')
    .option('--all', 'every key of the namespace ({base}:*)')
    .option('--yes', 'do not ask')
    .option('--force', 'same as --yes');

  return redis;
}
