/**
 * `pocket-relay-miner stack`: localnet, demo backends, Redis, two relayers, two miners and a load
 * client on loopback. Traffic runs over every transport to both relayers for a few sessions, one
 * progress line per block, then the stack waits until every session that served relays is claimed,
 * proved and settled, and prints a summary. Exit 0 only when every claim and proof landed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { ChainQueryClient } from '../../chain/index.js';
import { bytesToHex } from '../../core/index.js';
import { GRPC_METHODS, demoMessages, startDemoBackends } from '../../localnet/backends/index.js';
import { startLocalnet } from '../../localnet/index.js';
import {
  MinerLedger,
  SessionStore,
  createMinerLifecycleMetrics,
  validateMinerConfig,
} from '../../miner/index.js';
import { validateRelayerConfig } from '../../relayer/index.js';
import { selectBackend } from '../../rings/index.js';
import { KeyBuilder, createRedisClient, deleteKeysWithPrefix } from '../../transport/index.js';
import { startMiner, type RunningMiner } from '../miner.js';
import { startRelayer, type RunningRelayer } from '../relayer.js';
import { RelayClient, createTransport, type RelayOutcome, type RelayPayloadSpec } from '../relay/client.js';
import { runLoad, summarize } from '../relay/load.js';
import { SessionResolver, type SigningContext } from '../relay/session.js';
import type { RelayTransport, RpcType } from '../relay/transports/types.js';
import {
  SERVICE,
  STREAM_SERVICE,
  findOrSpawnRedis,
  minerConfigInput,
  relayerConfigInput,
  stackGenesis,
  stackKeys,
} from './setup.js';

export interface StackOptions {
  /** Leave everything running after the summary until Ctrl-C. */
  keep?: boolean;
  /** Smaller load and fewer sessions (CI). */
  short?: boolean;
  /** Block interval of the localnet, ms (default 400). */
  blockTimeMs?: number;
  /** Redis to try before spawning one (default redis://127.0.0.1:6379). */
  redisUrl?: string;
  /** Where progress and the summary go (default stdout). */
  out?: (line: string) => void;
}

export const TRANSPORTS = ['jsonrpc', 'rest', 'websocket', 'grpc', 'sse'] as const;
export type StackTransport = (typeof TRANSPORTS)[number];

export interface TransportSummary {
  sent: number;
  succeeded: number;
  p50_ms: number;
  p99_ms: number;
  failures: Record<string, number>;
}

export interface StackSummary {
  ok: boolean;
  relays: Record<StackTransport, TransportSummary>;
  sessions: number;
  /** Per (supplier, session): claim submitted / landed on chain with code 0. */
  claims: { submitted: number; accepted: number };
  proofs: { required: number; submitted: number; accepted: number };
  /** Claim and proof transactions (one tx may carry several sessions' messages). */
  txs: { claim: { sent: number; accepted: number }; proof: { sent: number; accepted: number } };
  settled_upokt: Record<string, string>;
  ledger: Record<string, number>;
  problems: string[];
  duration_ms: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function payloadOf(t: StackTransport): { rpcType: RpcType; service: string; payload: RelayPayloadSpec } {
  const rpc = (id: number): Uint8Array =>
    Buffer.from(JSON.stringify({ jsonrpc: '2.0', id, method: 'eth_blockNumber', params: [] }));
  switch (t) {
    case 'jsonrpc':
      return {
        rpcType: 'jsonrpc',
        service: SERVICE,
        payload: { method: 'POST', path: '/', body: rpc(1), headers: {} },
      };
    case 'rest':
      return {
        rpcType: 'rest',
        service: SERVICE,
        payload: { method: 'GET', path: '/v1/status', body: new Uint8Array(), headers: {} },
      };
    case 'websocket':
      return {
        rpcType: 'websocket',
        service: SERVICE,
        payload: { method: 'POST', path: '/', body: rpc(2), headers: {} },
      };
    case 'grpc':
      return {
        rpcType: 'grpc',
        service: SERVICE,
        payload: {
          method: 'POST',
          path: GRPC_METHODS.echo,
          body: demoMessages.encodeEcho(Buffer.from('stack')),
          headers: {},
        },
      };
    case 'sse':
      return {
        rpcType: 'sse',
        service: STREAM_SERVICE,
        payload: { method: 'GET', path: '/sse?count=3&interval_ms=5', body: new Uint8Array(), headers: {} },
      };
  }
}

/** Sum of a counter over every replica, keyed by the joined values of `labels`. */
async function counterSum(
  miners: readonly RunningMiner[],
  name: string,
  labels: readonly string[],
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of miners) {
    const metric = m.registry.getSingleMetric(name);
    if (metric === undefined) continue;
    for (const v of (await metric.get()).values) {
      const k = labels.map((l) => String(v.labels[l])).join(':');
      out[k] = (out[k] ?? 0) + v.value;
    }
  }
  return out;
}

/**
 * The session signing context, looked up again only once the chain has passed the end of the
 * cached session (the stack knows its own chain's height), instead of on a timer.
 */
class BlockAwareResolver {
  private resolver: SessionResolver;
  private pending: Promise<SigningContext> | undefined;
  private endHeight = -1;

  constructor(
    private readonly create: () => SessionResolver,
    private readonly height: () => number,
  ) {
    this.resolver = create();
  }

  current(): Promise<SigningContext> {
    if (this.pending !== undefined && this.endHeight >= 0 && this.height() > this.endHeight) {
      this.resolver = this.create();
      this.pending = undefined;
    }
    if (this.pending === undefined) {
      const p = this.resolver.current();
      this.pending = p;
      p.then(
        (ctx) => {
          if (this.pending === p) this.endHeight = Number(ctx.header.sessionEndBlockHeight);
        },
        () => {
          if (this.pending === p) this.pending = undefined;
        },
      );
    }
    return this.pending;
  }
}

function pad(s: string | number, n: number): string {
  return String(s).padStart(n);
}

/** Runs the stack; resolves with the exit code (0 = every claim and required proof landed). */
export async function runStack(o: StackOptions = {}): Promise<number> {
  const r = await runStackDetailed(o);
  return r.summary?.ok === true ? 0 : 1;
}

export async function runStackDetailed(o: StackOptions = {}): Promise<{ summary?: StackSummary }> {
  const out = o.out ?? ((line: string) => void process.stdout.write(line + '\n'));
  const started = performance.now();
  const blockTimeMs = o.blockTimeMs ?? 400;
  const loadSessions = o.short === true ? 2 : 5;
  const cleanups: (() => Promise<unknown>)[] = [];
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
  };
  let interrupted = false;
  let wake: (() => void) | undefined;
  const onSignal = (): void => {
    if (interrupted) {
      out('stack: second interrupt, exiting without a clean shutdown');
      process.exit(130);
    }
    out('stack: interrupted, shutting down (Ctrl-C again to force)');
    interrupted = true;
    wake?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const silent = pino({ level: 'silent' });
  try {
    let redisServer;
    try {
      redisServer = await findOrSpawnRedis(o.redisUrl);
    } catch (err) {
      out(
        `stack: no Redis: nothing answers PING on 127.0.0.1:6379 and ${err instanceof Error ? err.message : String(err)}. ` +
          'Start Redis (e.g. `redis-server`) or install it, then rerun.',
      );
      return {};
    }
    cleanups.push(() => redisServer.stop());
    const prefix = `stack:${randomBytes(4).toString('hex')}:`;
    const basePrefix = `${prefix}ha`;

    const keys = stackKeys();
    const net = await startLocalnet(stackGenesis(keys), { blockTimeMs });
    cleanups.push(() => net.stop());
    const backends = await startDemoBackends();
    cleanups.push(() => backends.close());

    const redis = await createRedisClient({ url: redisServer.url, connection_name: 'stack' });
    redis.on('error', () => undefined);
    cleanups.push(async () => {
      await deleteKeysWithPrefix(redis, prefix);
      await redis.quit();
    });

    const dir = mkdtempSync(join(tmpdir(), 'pocket-stack-'));
    cleanups.push(() => Promise.resolve(rmSync(dir, { recursive: true, force: true })));
    const keysFile = join(dir, 'keys.yaml');
    writeFileSync(
      keysFile,
      `keys:\n${keys.suppliers.map((k) => `  - ${bytesToHex(k.privateKey)}\n`).join('')}`,
      { mode: 0o600 },
    );

    out(
      `stack: localnet ${net.url} (block ${blockTimeMs} ms), redis ${redisServer.url} (${redisServer.origin}), ` +
        `prefix ${prefix}`,
    );

    const minerCfg = validateMinerConfig(
      JSON.stringify(minerConfigInput(net.url, redisServer.url, basePrefix, keysFile)),
      'stack-miner',
    );
    const miners: RunningMiner[] = [];
    for (const id of ['miner-a', 'miner-b']) {
      const m = await startMiner(minerCfg, {
        log: silent,
        registry: new Registry(),
        instanceId: id,
        websocketUrl: net.wsUrl,
        consumer: { block_ms: 100 },
        drainTimeoutMs: 5_000,
        txRetryDelayMs: 100,
      });
      miners.push(m);
      cleanups.push(() => m.stop());
    }
    // The first replica takes every lease, then hands its fair share over to the second.
    const leaseStart = Date.now();
    for (;;) {
      const held = miners.reduce((n, m) => n + m.owned().length, 0);
      const split = miners.every((m) => m.owned().length > 0);
      if (held === keys.suppliers.length && (split || Date.now() - leaseStart > 10_000)) break;
      if (Date.now() - leaseStart > 15_000)
        throw new Error('the miners did not take the supplier leases within 15 s');
      await sleep(20);
    }

    const relayerCfg = validateRelayerConfig(
      JSON.stringify(relayerConfigInput(backends, net.url, redisServer.url, basePrefix, keysFile)),
      'stack-relayer',
    );
    const relayers: RunningRelayer[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await startRelayer(relayerCfg, { log: silent, registry: new Registry() });
      relayers.push(r);
      cleanups.push(() => r.stop());
    }
    const relayDeadline = Date.now() + 10_000;
    while (relayers.some((r) => r.core.heights.currentHeight < net.chain.height - 1)) {
      if (Date.now() > relayDeadline) throw new Error('the relayers did not see the chain head within 10 s');
      await sleep(20);
    }
    out(
      `stack: miners ${miners.map((m) => `${m.instanceId}[${m.owned().length}]`).join(' ')}, relayers ` +
        relayers.map((r) => `127.0.0.1:${r.relayPort} (grpc ${r.grpcPort ?? '-'})`).join(', '),
    );

    // The load client: one client per (transport, relayer, supplier).
    const ec = selectBackend('native');
    const chainClient = new ChainQueryClient(
      { log: silent },
      { query_node_rpc_url: net.url, query_timeout_ms: 3_000, max_retries: 1 },
    );
    const outcomes = Object.fromEntries(TRANSPORTS.map((t) => [t, [] as RelayOutcome[]])) as Record<
      StackTransport,
      RelayOutcome[]
    >;
    const transports: RelayTransport[] = [];
    cleanups.push(async () => {
      for (const t of transports) await t.close().catch(() => undefined);
    });
    const runs: Promise<unknown>[] = [];
    // One session lookup per (service, supplier), shared by every transport and relayer.
    const resolvers = new Map<string, BlockAwareResolver>();
    const startHeight = net.chain.height;
    const loadMs = loadSessions * 4 * blockTimeMs;
    const rps = o.short === true ? 4 : 10;
    for (const t of TRANSPORTS) {
      const p = payloadOf(t);
      for (const relayer of relayers) {
        const url =
          t === 'grpc'
            ? `http://127.0.0.1:${relayer.grpcPort ?? 0}`
            : `http://127.0.0.1:${relayer.relayPort}`;
        for (const supplier of keys.suppliers) {
          const transport = createTransport({ backend: ec, rpcType: p.rpcType, url });
          transports.push(transport);
          const resolverKey = `${p.service}/${supplier.address}`;
          const resolver =
            resolvers.get(resolverKey) ??
            new BlockAwareResolver(
              () =>
                new SessionResolver({
                  chain: chainClient,
                  backend: ec,
                  appAddress: keys.app.address,
                  serviceId: p.service,
                  supplierAddress: supplier.address,
                  supplierPublicKey: supplier.publicKey,
                  signerPrivateKey: keys.gateway.privateKey,
                  signerRole: 'gateway',
                  refreshMs: 3_600_000,
                }),
              () => net.chain.height,
            );
          resolvers.set(resolverKey, resolver);
          const client = new RelayClient({
            backend: ec,
            resolver,
            transport,
            rpcType: p.rpcType,
            payload: p.payload,
            timeoutMs: 5_000,
            retries: 1,
            retryWithinMs: 500,
            hedgeMs: 0,
          });
          runs.push(
            runLoad(
              async () => {
                const r = await client.relay();
                outcomes[t].push(r);
                return r;
              },
              { concurrency: 1, rps, durationMs: loadMs },
            ),
          );
        }
      }
    }

    const progress = async (): Promise<string> => {
      const tx = await counterSum(miners, 'ha_miner_tx_attempts_total', ['phase', 'result']);
      const per = TRANSPORTS.map((t) => {
        const ok = outcomes[t].filter((x) => x.ok).length;
        return `${t} ${ok}/${outcomes[t].length - ok}`;
      }).join('  ');
      return (
        `height ${pad(net.chain.height, 4)}  ok/failed: ${per}  ` +
        `claim txs ${tx['claim:accepted'] ?? 0}  proof txs ${tx['proof:accepted'] ?? 0}`
      );
    };
    let lastHeight = net.chain.height;
    const ticker = async (until: () => boolean): Promise<void> => {
      while (!until() && !interrupted) {
        if (net.chain.height !== lastHeight) {
          lastHeight = net.chain.height;
          out(await progress());
        }
        await sleep(25);
      }
    };
    let loadDone = false;
    const all = Promise.all(runs).finally(() => (loadDone = true));
    await ticker(() => loadDone);
    await all;
    out(`stack: load finished after ${net.chain.height - startHeight} blocks`);

    // Settlement: every (supplier, session) that served relays is proved and its settlement recorded.
    const nsKeys = new KeyBuilder({ namespace: minerCfg.redis.namespace });
    const store = new SessionStore({ redis, keys: nsKeys, log: silent }, { ttl_seconds: 3600 });
    const ledger = new MinerLedger({
      redis,
      keys: nsKeys,
      metrics: createMinerLifecycleMetrics(new Registry()),
    });
    const settleTimeoutMs = 40 * blockTimeMs + 10_000;
    const settleDeadline = Date.now() + settleTimeoutMs;
    const problems: string[] = [];
    let sessions: { supplier: string; sessionId: string; state: string; relays: number }[] = [];
    let settledUpokt: Record<string, bigint> = {};
    for (;;) {
      sessions = [];
      settledUpokt = {};
      let done = true;
      for (const s of keys.suppliers) {
        settledUpokt[s.address] = 0n;
        for (const snap of await store.list(s.address)) {
          if (snap.relay_count === 0) continue;
          sessions.push({
            supplier: s.address,
            sessionId: snap.session_id,
            state: snap.state,
            relays: snap.relay_count,
          });
          const l = await ledger.get(s.address, snap.session_id);
          const settled = l.upokt.settled_upokt ?? 0n;
          settledUpokt[s.address] = settledUpokt[s.address]! + settled;
          if (snap.state !== 'proved' || settled === 0n) done = false;
        }
      }
      const served = TRANSPORTS.reduce((n, t) => n + outcomes[t].filter((x) => x.ok).length, 0);
      const buckets = await counterSum(miners, 'ha_miner_ledger_relays_total', ['bucket']);
      const outside = ['dropped', 'below_difficulty', 'over_serviced'].reduce(
        (n, b) => n + (buckets[b] ?? 0),
        0,
      );
      const stored = sessions.reduce((n, x) => n + x.relays, 0) + outside;
      if (done && sessions.length > 0 && stored >= served) break;
      if (interrupted) {
        problems.push('interrupted before every session settled');
        break;
      }
      if (Date.now() > settleDeadline) {
        for (const s of sessions) {
          if (s.state !== 'proved') problems.push(`session ${s.sessionId} of ${s.supplier} ended ${s.state}`);
        }
        if (stored < served) problems.push(`${served} relays served, ${stored} accounted for by the miners`);
        problems.push(`not every session settled within ${settleTimeoutMs} ms`);
        break;
      }
      if (net.chain.height !== lastHeight) {
        lastHeight = net.chain.height;
        out(await progress());
      }
      await sleep(50);
    }

    const tx = await counterSum(miners, 'ha_miner_tx_attempts_total', ['phase', 'result']);
    const sumPhase = (phase: string): number =>
      Object.entries(tx)
        .filter(([k]) => k.startsWith(`${phase}:`))
        .reduce((a, [, v]) => a + v, 0);
    const landed = (hash: string | undefined): boolean =>
      hash !== undefined && net.chain.tx(hash)?.result.code === 0;
    const claims = { submitted: 0, accepted: 0 };
    const proofs = { required: sessions.length, submitted: 0, accepted: 0 };
    for (const s of sessions) {
      const snap = await store.get(s.supplier, s.sessionId);
      if (snap?.claim_tx_hash !== undefined) claims.submitted++;
      if (landed(snap?.claim_tx_hash)) claims.accepted++;
      if (snap?.proof_tx_hash !== undefined) proofs.submitted++;
      if (landed(snap?.proof_tx_hash)) proofs.accepted++;
    }
    const txs = {
      claim: { sent: sumPhase('claim'), accepted: tx['claim:accepted'] ?? 0 },
      proof: { sent: sumPhase('proof'), accepted: tx['proof:accepted'] ?? 0 },
    };
    if (claims.accepted < sessions.length)
      problems.push(`${claims.accepted} claims landed for ${sessions.length} sessions`);
    if (proofs.accepted < proofs.required)
      problems.push(`${proofs.accepted} proofs landed, ${proofs.required} required`);
    const relays = {} as Record<StackTransport, TransportSummary>;
    for (const t of TRANSPORTS) {
      const s = summarize(outcomes[t], loadMs);
      relays[t] = {
        sent: s.total,
        succeeded: s.success,
        p50_ms: s.latency_ms.p50,
        p99_ms: s.latency_ms.p99,
        failures: s.failures,
      };
      if (s.success === 0) problems.push(`no ${t} relay succeeded`);
    }
    const ledgerBuckets = await counterSum(miners, 'ha_miner_ledger_relays_total', ['bucket']);
    const summary: StackSummary = {
      ok: problems.length === 0,
      relays,
      sessions: sessions.length,
      claims,
      proofs,
      txs,
      settled_upokt: Object.fromEntries(Object.entries(settledUpokt).map(([k, v]) => [k, v.toString()])),
      ledger: ledgerBuckets,
      problems,
      duration_ms: Math.round(performance.now() - started),
    };
    printSummary(summary, out);

    if (o.keep === true && !interrupted) {
      out('stack: --keep: everything stays up; Ctrl-C to stop');
      await new Promise<void>((resolve) => {
        wake = resolve;
        if (interrupted) resolve();
      });
    }
    return { summary };
  } catch (err) {
    out(`stack: failed: ${err instanceof Error ? err.message : String(err)}`);
    return {};
  } finally {
    out('stack: shutting down');
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function printSummary(s: StackSummary, out: (line: string) => void): void {
  out('');
  out('transport    sent  succeeded   p50 ms   p99 ms  failures');
  for (const t of TRANSPORTS) {
    const r = s.relays[t];
    const f = Object.entries(r.failures)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    out(
      `${t.padEnd(10)} ${pad(r.sent, 6)} ${pad(r.succeeded, 10)} ${pad(r.p50_ms.toFixed(1), 8)} ${pad(r.p99_ms.toFixed(1), 8)}  ${f || '-'}`,
    );
  }
  out('');
  out(`sessions with relays (supplier × service × session): ${s.sessions}`);
  out(`claims: ${s.claims.submitted} submitted, ${s.claims.accepted} accepted`);
  out(
    `proofs: ${s.proofs.required} required, ${s.proofs.submitted} submitted, ${s.proofs.accepted} accepted`,
  );
  for (const [supplier, upokt] of Object.entries(s.settled_upokt)) out(`settled ${supplier}: ${upokt} upokt`);
  out(
    `ledger buckets: ${
      Object.entries(s.ledger)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ') || '-'
    }`,
  );
  const late = s.ledger['dropped'] ?? 0;
  if (late > 0)
    out(`note: ${late} relay(s) reached the miners after their session's claim was built (not paid)`);
  out(`duration: ${(s.duration_ms / 1000).toFixed(1)} s`);
  if (s.ok) out('RESULT: OK — every claim and required proof landed');
  else for (const p of s.problems) out(`RESULT: FAILED — ${p}`);
}
