/**
 * The fault-test stack: an in-process localnet, the demo backends behind a small proxy (latency
 * and kill knobs), a redis-server of its own (append-only, so a restart keeps what it
 * acknowledged), and relayers and miners as real child processes started from the CLI with YAML
 * configs. `load()` sends open-loop, ring-signed JSON-RPC relays and verifies every answer's
 * supplier signature; `ledger()` waits for settlement and compares what the chain claimed with
 * what the client saw succeed.
 *
 *   const stack = await startFaultStack({ relayers: 2, miners: 2 });
 *   try {
 *     const load = await stack.load({ rps: 150, durationMs: 6_000 });
 *     const ledger = await stack.ledger(load);
 *     expect(ledger.claimed_on_chain).toBe(ledger.client_successes);
 *   } finally {
 *     await stack.stop();
 *   }
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect } from 'vitest';
import pino from 'pino';
import { Registry } from 'prom-client';
import { stringify } from 'yaml';
import { ChainQueryClient } from '../../chain/index.js';
import { bytesToHex } from '../../core/index.js';
import { buildPayload, createTransport, signRelay, type RelayPayloadSpec } from '../../cmd/relay/client.js';
import { SessionResolver, type SigningContext } from '../../cmd/relay/session.js';
import type { RelayTransport } from '../../cmd/relay/transports/types.js';
import {
  SERVICE,
  minerConfigInput,
  relayerConfigInput,
  stackGenesis,
  stackKeys,
  type StackKeys,
} from '../../cmd/stack/setup.js';
import { startDemoBackends, type DemoBackends } from '../../localnet/backends/index.js';
import {
  attributeValue,
  sessionParamsOf,
  startLocalnet,
  type AbciEvent,
  type Genesis,
  type Localnet,
} from '../../localnet/index.js';
import {
  decodeRelayRequest,
  encodeRelayRequest,
  parseClaimRoot,
  sessionWindows,
} from '../../protocol/index.js';
import { MinerLedger, createMinerLifecycleMetrics } from '../../miner/index.js';
import { selectBackend } from '../../rings/index.js';
import { KeyBuilder } from '../../transport/index.js';
import type { FaultRecord } from '../helpers/reliability.js';
import { freePort, startRedisServer, stopRedisServer } from '../helpers/redis-server.js';

export interface FaultStackOptions {
  /** Relayer child processes (default 2); each holds every supplier key. */
  relayers?: number;
  /** Miner child processes (default 2); each holds every supplier key, leases split them. */
  miners?: number;
  /** Localnet block interval in ms (default 400). */
  blockTimeMs?: number;
  /**
   * Extra redis-server settings as `--name value` pairs (e.g. `['--maxmemory', '20mb']`), applied
   * with CONFIG SET after every (re)start, so only settings Redis can change at run time.
   */
  redisArgs?: string[];
  /** Mutates relayer `index`'s config object before it is written as YAML. */
  relayerConfig?: (index: number, cfg: Record<string, any>) => void;
  /** Mutates miner `index`'s config object before it is written as YAML. */
  minerConfig?: (index: number, cfg: Record<string, any>) => void;
  /** Tweaks the parsed genesis before the chain starts. */
  genesis?: (g: any) => void;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number | undefined;
  readonly running: boolean;
  /** The Prometheus endpoint of the process (`http://127.0.0.1:<port>/metrics`). */
  readonly metricsUrl: string;
  /** (Re)starts with the same config; resolves when the process is serving. */
  start(): Promise<void>;
  /** Sends `signal` (default SIGKILL); resolves once the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Captured stdout + stderr so far (the newest 4 MB). */
  logs(): string;
}

/** One relay of a load run, times relative to the start of the run. */
export interface LoadSample {
  relayer: number;
  supplier: string;
  sessionId: string;
  /** End height of the session the relay was signed for (0 when signing failed). */
  sessionEndHeight: number;
  startMs: number;
  latencyMs: number;
  ok: boolean;
  reason?: string;
  /** The failure's detail (relayer answer body, transport error), at most 300 characters. */
  message?: string;
}

export interface LoadResult {
  successes: number;
  failures: number;
  failuresByReason: Record<string, number>;
  /** Per (supplier, sessionId): count of client-verified successes; key `${supplier}/${sessionId}`. */
  successesBySession: Map<string, number>;
  durationMs: number;
  /** Every (supplier, session) a relay was sent for, key `${supplier}/${sessionId}`. */
  sessions: Set<string>;
  /** Every relay sent, in start order. */
  samples: LoadSample[];
}

export interface LedgerCheck {
  client_successes: number;
  claimed_on_chain: number;
  /** client_successes − claimed_on_chain (negative: more claimed than the client saw succeed). */
  relays_lost: number;
  /** Claims the chain expired at settlement (proof missing or invalid). */
  expired_claims: number;
  /** Claims that needed a proof and got none accepted. */
  missed_proofs: number;
  perSession: {
    supplier: string;
    sessionId: string;
    client: number;
    claimed: number;
    proved: boolean;
    /** The miners' own ledger of the session (mined, dropped = arrived after the claim was built, …). */
    miner: Record<string, number>;
  }[];
}

export interface FaultRedis {
  port: number;
  url: string;
  /** SIGKILL; resolves once the server is gone. */
  kill(): Promise<void>;
  /** Starts the server again on the same port and directory (killing it first if it runs). */
  restart(): Promise<void>;
  /** `DEBUG SLEEP`: the server answers nothing for `ms`; resolves when it is back. */
  pause(ms: number): Promise<void>;
  /** The harness's own connection (reconnects on its own after a restart). */
  client(): Redis;
}

export interface FaultBackends {
  /** The proxied JSON-RPC backend the relayers forward `anvil` relays to. */
  url: string;
  setLatencyMs(ms: number): void;
  /** Closes the proxy and every open connection: the relayers see connection refused. */
  kill(): Promise<void>;
  restart(): Promise<void>;
}

export interface FaultStack {
  net: Localnet;
  keys: StackKeys;
  redis: FaultRedis;
  backends: FaultBackends;
  relayers: ManagedProcess[];
  miners: ManagedProcess[];
  relayerUrl(i: number): string;
  /**
   * Open-loop load of signed JSON-RPC relays over HTTP, round robin over the chosen relayers (all
   * by default) and the suppliers; a dead relayer's requests fail and count as failures, no
   * retries; every answer's supplier signature is verified. `timeoutMs` per relay, default 5 s.
   */
  load(o: { rps: number; durationMs: number; relayers?: number[]; timeoutMs?: number }): Promise<LoadResult>;
  /**
   * Waits (bounded) until every session the loads sent relays for is past its proof window and
   * its claim settled or expired, then compares on-chain claims with the client's successes.
   */
  ledger(load: LoadResult | LoadResult[], timeoutMs?: number): Promise<LedgerCheck>;
  /**
   * Resolves once the chain is in a session that no earlier load sent relays for, so a scenario
   * that follows another on the same stack (even one that failed before its ledger) shares no
   * session, and no claim, with it.
   */
  awaitFreshSession(timeoutMs?: number): Promise<void>;
  /** Kills everything, deletes temp dirs; idempotent. */
  stop(): Promise<void>;
}

const ROOT = join(import.meta.dirname, '..', '..');
const MAX_LOG_CHARS = 4 * 1024 * 1024;
const LOAD_SPEC: RelayPayloadSpec = {
  method: 'POST',
  path: '/',
  body: Buffer.from('{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'),
  headers: {},
};
const WARM_SPEC: RelayPayloadSpec = {
  ...LOAD_SPEC,
  body: Buffer.from('{"jsonrpc":"2.0","id":2,"method":"eth_chainId"}'),
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every child of every stack, SIGKILLed if the test process exits without stopping them. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackChild(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of liveChildren) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    });
  }
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
}

/** The current height a process reports on its metrics endpoint (`ha_cache_current_height`). */
async function reportedHeight(metricsUrl: string): Promise<number> {
  try {
    const res = await fetch(metricsUrl, { signal: AbortSignal.timeout(1_000) });
    const text = await res.text();
    const m = /^ha_cache_current_height(?:\{[^}]*\})? (\d+)/m.exec(text);
    return m === null ? 0 : Number(m[1]);
  } catch {
    return 0;
  }
}

/** Reads one counter series from a Prometheus text page; 0 when absent. */
export function metricValue(page: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of page.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const kv of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      have[kv[1]!] = kv[2]!;
    }
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[4]);
  }
  return total;
}

class ChildService implements ManagedProcess {
  private child: ChildProcess | undefined;
  private output = '';
  /** The ready line has been printed since the last start. */
  private readySeen = false;

  constructor(
    readonly name: string,
    private readonly args: string[],
    private readonly readyLine: string,
    readonly metricsUrl: string,
    private readonly ready: () => Promise<boolean>,
    private readonly warm: () => Promise<void> = () => Promise.resolve(),
  ) {}

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  logs(): string {
    return this.output;
  }

  private append(chunk: Buffer): void {
    const text = chunk.toString('utf8');
    if (!this.readySeen) {
      this.readySeen = (this.output.slice(-this.readyLine.length) + text).includes(this.readyLine);
    }
    this.output += text;
    if (this.output.length > MAX_LOG_CHARS) this.output = this.output.slice(-MAX_LOG_CHARS / 2);
  }

  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running (pid ${this.child?.pid})`);
    this.readySeen = false;
    const from = this.output.length;
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cmd', 'main.ts'), ...this.args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    trackChild(child);
    child.stdout.on('data', (d: Buffer) => this.append(d));
    child.stderr.on('data', (d: Buffer) => this.append(d));
    child.on('error', (err) => this.append(Buffer.from(`spawn failed: ${err.message}\n`)));
    const deadline = Date.now() + 45_000;
    for (;;) {
      if (!this.running) {
        throw new Error(`${this.name} exited during start-up:\n${this.output.slice(from).slice(-4_000)}`);
      }
      if (this.readySeen && (await this.ready())) {
        await this.warm();
        return;
      }
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`${this.name} not ready within 45 s:\n${this.output.slice(from).slice(-4_000)}`);
      }
      await sleep(50);
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((res) => child.once('exit', () => res()));
    child.kill(signal);
    await exited;
  }
}

/** A pass-through HTTP proxy in front of one backend, with injected latency and a kill switch. */
class BackendProxy implements FaultBackends {
  private server: http.Server | undefined;
  private readonly sockets = new Set<Socket>();
  private latencyMs = 0;

  private constructor(
    private readonly target: URL,
    private readonly port: number,
  ) {}

  static async start(target: string): Promise<BackendProxy> {
    const p = new BackendProxy(new URL(target), await freePort());
    await p.restart();
    return p;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  setLatencyMs(ms: number): void {
    this.latencyMs = ms;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const forward = (): void => {
      if (res.destroyed) return;
      const up = http.request(
        {
          host: this.target.hostname,
          port: this.target.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.pipe(res);
        },
      );
      up.on('error', () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      req.pipe(up);
    };
    if (this.latencyMs > 0) setTimeout(forward, this.latencyMs);
    else forward();
  }

  async restart(): Promise<void> {
    if (this.server !== undefined) return;
    const server = http.createServer((req, res) => this.handle(req, res));
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  async kill(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    const closed = new Promise<void>((res) => server.close(() => res()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

/** The signing context of a supplier's current session, looked up again once the chain passed its end. */
class SessionContexts {
  private readonly current = new Map<string, { ctx: Promise<SigningContext>; endHeight: number }>();

  constructor(
    private readonly net: Localnet,
    private readonly keys: StackKeys,
    private readonly chain: ChainQueryClient,
  ) {}

  get(supplierIndex: number): Promise<SigningContext> {
    const supplier = this.keys.suppliers[supplierIndex]!;
    const have = this.current.get(supplier.address);
    if (have !== undefined && (have.endHeight < 0 || this.net.chain.height <= have.endHeight))
      return have.ctx;
    const resolver = new SessionResolver({
      chain: this.chain,
      backend: selectBackend('native'),
      appAddress: this.keys.app.address,
      serviceId: SERVICE,
      supplierAddress: supplier.address,
      supplierPublicKey: supplier.publicKey,
      signerPrivateKey: this.keys.gateway.privateKey,
      signerRole: 'gateway',
      refreshMs: 3_600_000,
    });
    const entry = { ctx: resolver.current(), endHeight: -1 };
    this.current.set(supplier.address, entry);
    entry.ctx.then(
      (ctx) => (entry.endHeight = Number(ctx.header.sessionEndBlockHeight)),
      () => {
        if (this.current.get(supplier.address) === entry) this.current.delete(supplier.address);
      },
    );
    return entry.ctx;
  }
}

interface ClaimSeen {
  supplier: string;
  sessionId: string;
  serviceId: string;
  endHeight: number;
  count: number;
  outcome: 'pending' | 'settled' | 'expired';
  expirationReason?: string;
}

/** Follows the chain: the last root of every claim, and how each claim ended at settlement. */
class ClaimWatcher {
  readonly claims = new Map<string, ClaimSeen>();
  readonly off: () => void;

  constructor(private readonly net: Localnet) {
    this.off = net.chain.onEvent((e) => {
      if (e.kind === 'block') this.onBlock(e.block.finalizeEvents);
    });
  }

  /** Records every claim on chain now (settlement deletes a claim, so this runs before each block's). */
  snapshot(): void {
    for (const c of this.net.chain.claims()) {
      const h = c.sessionHeader!;
      const key = `${c.supplierOperatorAddress}/${h.sessionId}`;
      const prev = this.claims.get(key);
      this.claims.set(key, {
        supplier: c.supplierOperatorAddress,
        sessionId: h.sessionId,
        serviceId: h.serviceId,
        endHeight: Number(h.sessionEndBlockHeight),
        count: Number(parseClaimRoot(c.rootHash).count),
        outcome: prev?.outcome ?? 'pending',
      });
    }
  }

  private onBlock(events: AbciEvent[]): void {
    for (const ev of events) {
      if (ev.type === 'pocket.tokenomics.EventClaimSettled') {
        const key = `${String(attributeValue(ev, 'supplier_operator_address'))}/${String(attributeValue(ev, 'session_id'))}`;
        const c = this.claims.get(key);
        if (c !== undefined) c.outcome = 'settled';
      } else if (ev.type === 'pocket.tokenomics.EventClaimExpired') {
        const supplier = String(attributeValue(ev, 'supplier_operator_address'));
        const serviceId = String(attributeValue(ev, 'service_id'));
        const end = Number(attributeValue(ev, 'session_end_block_height'));
        for (const c of this.claims.values()) {
          if (c.supplier === supplier && c.serviceId === serviceId && c.endHeight === end) {
            c.outcome = 'expired';
            c.expirationReason = String(attributeValue(ev, 'expiration_reason'));
          }
        }
      }
    }
    // Claims created in this block (settlement already removed the ones due).
    this.snapshot();
  }
}

/**
 * A genesis tweak: the claim window opens `blocks` blocks after the grace period instead of one,
 * so with second-long test blocks a relay served at the end of its grace period still reaches the
 * miners before they build the claim on a busy machine (on mainnet one block is a minute).
 */
export function claimWindowOpenOffset(blocks: number): (g: Genesis) => void {
  return (g) => {
    g.params.shared.claim_window_open_offset_blocks = blocks;
  };
}

/** `--name value` pairs → CONFIG SET arguments. */
function configPairs(args: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < args.length; i += 2) {
    const name = args[i]!;
    const value = args[i + 1];
    if (!name.startsWith('--') || value === undefined) {
      throw new Error(`redisArgs: expected --name value pairs, got ${JSON.stringify(args)}`);
    }
    out.push([name.slice(2), value]);
  }
  return out;
}

export async function startFaultStack(o: FaultStackOptions = {}): Promise<FaultStack> {
  const blockTimeMs = o.blockTimeMs ?? 400;
  const cleanups: (() => Promise<unknown>)[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
  };
  try {
    const dir = mkdtempSync(join(tmpdir(), 'fault-stack-'));
    cleanups.push(() => Promise.resolve(rmSync(dir, { recursive: true, force: true })));
    const keys = stackKeys();
    const genesis: Genesis = stackGenesis(keys);
    o.genesis?.(genesis);
    const net = await startLocalnet(genesis, { blockTimeMs });
    cleanups.push(() => net.stop());
    const watcher = new ClaimWatcher(net);
    cleanups.push(() => Promise.resolve(watcher.off()));
    const demo: DemoBackends = await startDemoBackends();
    cleanups.push(() => demo.close());
    const proxy = await BackendProxy.start(demo.jsonrpc.url);
    cleanups.push(() => proxy.kill());

    // Redis of this stack.
    const redisPort = await freePort();
    const redisDir = join(dir, 'redis');
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    const extra = configPairs(o.redisArgs ?? []);
    let redisChild: ChildProcess | undefined;
    const startRedis = async (): Promise<void> => {
      redisChild = await startRedisServer(redisPort, {
        appendonly: true,
        dir: redisDir,
        args: ['--enable-debug-command', 'local'],
      });
      trackChild(redisChild);
      if (extra.length > 0) {
        const c = new Redis(redisPort, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 });
        c.on('error', () => undefined);
        try {
          await c.connect();
          for (const [k, v] of extra) await c.config('SET', k, v);
        } finally {
          c.disconnect();
        }
      }
    };
    mkdirSync(redisDir);
    await startRedis();
    // stopRedisServer signals a pid: call it once per server process.
    const killRedis = async (): Promise<void> => {
      const c = redisChild;
      redisChild = undefined;
      if (c !== undefined && c.exitCode === null && c.signalCode === null) await stopRedisServer(c);
    };
    cleanups.push(killRedis);
    const harnessRedis = new Redis(redisPort, '127.0.0.1', {
      maxRetriesPerRequest: 1,
      retryStrategy: () => 100,
    });
    harnessRedis.on('error', () => undefined);
    cleanups.push(() => Promise.resolve(harnessRedis.disconnect()));
    const redis: FaultRedis = {
      port: redisPort,
      url: redisUrl,
      kill: killRedis,
      restart: async () => {
        await killRedis();
        await startRedis();
      },
      pause: async (ms: number) => {
        const c = new Redis(redisPort, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 });
        c.on('error', () => undefined);
        try {
          await c.connect();
          await c.call('DEBUG', 'SLEEP', (ms / 1000).toFixed(3));
        } finally {
          c.disconnect();
        }
      },
      client: () => harnessRedis,
    };

    const keysFile = join(dir, 'keys.yaml');
    writeFileSync(
      keysFile,
      `keys:\n${keys.suppliers.map((k) => `  - ${bytesToHex(k.privateKey)}\n`).join('')}`,
      { mode: 0o600 },
    );
    const basePrefix = 'ha';

    // Miners first: the elected leader publishes the block events the relayers follow.
    const miners: ChildService[] = [];
    for (let i = 0; i < (o.miners ?? 2); i++) {
      const metricsPort = await freePort();
      const cfg = minerConfigInput(net.url, redisUrl, basePrefix, keysFile) as Record<string, any>;
      cfg['redis'] = { ...cfg['redis'], consumer_name: `miner-${i}`, claim_idle_timeout_ms: 2_000 };
      cfg['metrics'] = { enabled: true, addr: `127.0.0.1:${metricsPort}` };
      cfg['logging'] = { level: 'info', async: false };
      o.minerConfig?.(i, cfg);
      const path = join(dir, `miner-${i}.yaml`);
      writeFileSync(path, stringify(cfg));
      const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
      miners.push(
        new ChildService(`miner-${i}`, ['miner', '--config', path], '"miner started"', metricsUrl, () =>
          Promise.resolve(true),
        ),
      );
    }
    cleanups.push(() => Promise.all(miners.map((m) => m.kill())));
    await Promise.all(miners.map((m) => m.start()));

    const silent = pino({ level: 'silent' });
    const chainClient = new ChainQueryClient(
      { log: silent },
      { query_node_rpc_url: net.url, query_timeout_ms: 3_000, max_retries: 1 },
    );
    cleanups.push(() => Promise.resolve(chainClient.close()));
    const contexts = new SessionContexts(net, keys, chainClient);
    const ec = selectBackend('native');
    const transports: RelayTransport[] = [];
    cleanups.push(() => Promise.all(transports.map((t) => t.close())));
    const payload = buildPayload('jsonrpc', LOAD_SPEC);

    /**
     * Warms a fresh relayer without a billable relay: relays whose payload was changed after
     * signing fail ring verification (nothing metered or published) but start the verify worker
     * and fill the session, application and ring caches, so the first real relays are not
     * queued behind a cold start.
     */
    const warm = async (i: number): Promise<void> => {
      const tampered = await Promise.all(
        keys.suppliers.map(async (_, k) => {
          const ctx = await contexts.get(k);
          const d = decodeRelayRequest(signRelay(ec, ctx, payload));
          if (!d.ok) throw new Error('warm-up: cannot decode a relay the harness signed');
          const forged = encodeRelayRequest({
            ...d.value,
            payload: Buffer.from(buildPayload('jsonrpc', WARM_SPEC)),
          });
          return { ctx, bytes: forged };
        }),
      );
      const deadline = Date.now() + 20_000;
      for (;;) {
        const answers = await Promise.all(
          Array.from({ length: 8 }, (_, n) => {
            const t = tampered[n % tampered.length]!;
            return transports[i]!.send(t, AbortSignal.timeout(5_000));
          }),
        );
        if (answers.every((a) => !a.ok && a.reason === 'relayer_http_403')) return;
        if (Date.now() > deadline) {
          throw new Error(
            `relayer-${i} warm-up: forged relays not refused with 403: ${JSON.stringify(answers.map((a) => (a.ok ? 'ok' : a.message)))}`,
          );
        }
        await sleep(100);
      }
    };

    const relayers: ChildService[] = [];
    const relayPorts: number[] = [];
    for (let i = 0; i < (o.relayers ?? 2); i++) {
      const port = await freePort();
      const metricsPort = await freePort();
      relayPorts.push(port);
      transports.push(createTransport({ backend: ec, rpcType: 'jsonrpc', url: `http://127.0.0.1:${port}` }));
      const cfg = relayerConfigInput(demo, net.url, redisUrl, basePrefix, keysFile) as Record<string, any>;
      cfg['listen_addr'] = `127.0.0.1:${port}`;
      cfg['services'][SERVICE]['backends']['jsonrpc'] = { url: proxy.url };
      cfg['grpc'] = { enabled: false };
      cfg['websocket'] = { enabled: false };
      cfg['metrics'] = { enabled: true, addr: `127.0.0.1:${metricsPort}` };
      cfg['logging'] = { level: 'info', async: false };
      o.relayerConfig?.(i, cfg);
      const path = join(dir, `relayer-${i}.yaml`);
      writeFileSync(path, stringify(cfg));
      const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
      // Serving means following the chain: its block height is within two blocks of the head.
      relayers.push(
        new ChildService(
          `relayer-${i}`,
          ['relayer', '--config', path],
          '"relayer started"',
          metricsUrl,
          async () => (await reportedHeight(metricsUrl)) >= net.chain.height - 2,
          () => warm(i),
        ),
      );
    }
    cleanups.push(() => Promise.all(relayers.map((r) => r.kill())));
    await Promise.all(relayers.map((r) => r.start()));

    /** The samples of every load run on this stack, for awaitFreshSession(). */
    const loadSamples: LoadSample[][] = [];
    const awaitFreshSession: FaultStack['awaitFreshSession'] = async (timeoutMs = 30_000) => {
      let lastEnd = 0;
      for (const samples of loadSamples) {
        for (const x of samples) lastEnd = Math.max(lastEnd, x.sessionEndHeight);
      }
      const deadline = Date.now() + timeoutMs;
      while (net.chain.height <= lastEnd) {
        if (Date.now() > deadline) throw new Error(`awaitFreshSession: height ${lastEnd + 1} not reached`);
        await sleep(50);
      }
    };
    const load: FaultStack['load'] = async (l) => {
      const targets = l.relayers ?? relayers.map((_, i) => i);
      if (targets.length === 0) throw new Error('load: no relayer to send to');
      const timeoutMs = l.timeoutMs ?? 5_000;
      const intervalMs = 1000 / l.rps;
      const samples: LoadSample[] = [];
      loadSamples.push(samples);
      const inflight: Promise<void>[] = [];
      const start = performance.now();
      const one = async (relayer: number, supplierIndex: number, sample: LoadSample): Promise<void> => {
        const t0 = performance.now();
        sample.startMs = t0 - start;
        try {
          const ctx = await contexts.get(supplierIndex);
          sample.sessionId = ctx.header.sessionId;
          sample.sessionEndHeight = Number(ctx.header.sessionEndBlockHeight);
          const bytes = signRelay(ec, ctx, payload);
          const r = await transports[relayer]!.send({ bytes, ctx }, AbortSignal.timeout(timeoutMs));
          sample.ok = r.ok;
          if (!r.ok) {
            sample.reason = r.reason;
            sample.message = r.message.slice(0, 300);
          }
        } catch (err) {
          sample.ok = false;
          sample.reason = `client_error: ${err instanceof Error ? err.message : String(err)}`;
        }
        sample.latencyMs = performance.now() - t0;
      };
      for (let i = 0; ; i++) {
        const due = start + i * intervalMs;
        if (due - start >= l.durationMs) break;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        const relayer = targets[i % targets.length]!;
        const supplierIndex = Math.floor(i / targets.length) % keys.suppliers.length;
        const sample: LoadSample = {
          relayer,
          supplier: keys.suppliers[supplierIndex]!.address,
          sessionId: '',
          sessionEndHeight: 0,
          startMs: 0,
          latencyMs: 0,
          ok: false,
        };
        samples.push(sample);
        inflight.push(one(relayer, supplierIndex, sample));
      }
      await Promise.all(inflight);
      const durationMs = performance.now() - start;
      const failuresByReason: Record<string, number> = {};
      const successesBySession = new Map<string, number>();
      const sessions = new Set<string>();
      let successes = 0;
      for (const s of samples) {
        if (s.sessionId !== '') sessions.add(`${s.supplier}/${s.sessionId}`);
        if (s.ok) {
          successes++;
          const k = `${s.supplier}/${s.sessionId}`;
          successesBySession.set(k, (successesBySession.get(k) ?? 0) + 1);
        } else {
          const reason = s.reason ?? 'unknown';
          failuresByReason[reason] = (failuresByReason[reason] ?? 0) + 1;
        }
      }
      return {
        successes,
        failures: samples.length - successes,
        failuresByReason,
        successesBySession,
        durationMs,
        sessions,
        samples,
      };
    };

    const minerLedger = new MinerLedger({
      redis: harnessRedis,
      keys: new KeyBuilder({ namespace: { base_prefix: basePrefix } }),
      metrics: createMinerLifecycleMetrics(new Registry()),
    });
    const ledger: FaultStack['ledger'] = async (loads, timeoutMs) => {
      const all = Array.isArray(loads) ? loads : [loads];
      const client = new Map<string, number>();
      const sessions = new Set<string>();
      for (const l of all) {
        for (const s of l.sessions) sessions.add(s);
        for (const [k, n] of l.successesBySession) client.set(k, (client.get(k) ?? 0) + n);
      }
      // Every session of the run must be past its proof window (settlement happens there).
      const params = sessionParamsOf(net.chain.sharedParams);
      let lastClose = 0;
      for (const l of all) {
        for (const s of l.samples) {
          if (s.sessionEndHeight > 0) {
            lastClose = Math.max(
              lastClose,
              sessionWindows(params, s.sessionEndHeight).proof_window_close_height,
            );
          }
        }
      }
      const budgetMs = timeoutMs ?? Math.max(0, lastClose - net.chain.height + 3) * blockTimeMs + 20_000;
      const deadline = Date.now() + budgetMs;
      const settled = (): boolean => {
        if (net.chain.height <= lastClose) return false;
        for (const k of sessions) {
          const c = watcher.claims.get(k);
          if (c !== undefined && c.outcome === 'pending') return false;
        }
        return true;
      };
      while (!settled() && Date.now() < deadline) await sleep(50);
      watcher.snapshot();
      const perSession: LedgerCheck['perSession'] = [];
      let clientTotal = 0;
      let claimedTotal = 0;
      let expired = 0;
      let missed = 0;
      for (const k of [...sessions].sort()) {
        const [supplier, sessionId] = [k.slice(0, k.indexOf('/')), k.slice(k.indexOf('/') + 1)];
        const c = watcher.claims.get(k);
        const n = client.get(k) ?? 0;
        clientTotal += n;
        claimedTotal += c?.count ?? 0;
        if (c?.outcome === 'expired') {
          expired++;
          missed++;
        } else if (c?.outcome === 'pending') {
          missed++;
        }
        if (c === undefined && n === 0) continue;
        const miner: Record<string, number> = {};
        try {
          const l = await minerLedger.get(supplier, sessionId);
          for (const [b, v] of Object.entries(l.relays)) miner[b] = Number(v);
        } catch {
          miner['unreadable'] = 1;
        }
        perSession.push({
          supplier,
          sessionId,
          client: n,
          claimed: c?.count ?? 0,
          proved: c?.outcome === 'settled',
          miner,
        });
      }
      return {
        client_successes: clientTotal,
        claimed_on_chain: claimedTotal,
        relays_lost: clientTotal - claimedTotal,
        expired_claims: expired,
        missed_proofs: missed,
        perSession,
      };
    };

    return {
      net,
      keys,
      redis,
      backends: proxy,
      relayers,
      miners,
      relayerUrl: (i) => `http://127.0.0.1:${relayPorts[i]!}`,
      load,
      ledger,
      awaitFreshSession,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The FaultRecord of one run (several loads: their failures and durations summed). */
export function faultRecord(
  scenario: string,
  rps: number,
  load: LoadResult | LoadResult[],
  ledger: LedgerCheck,
  more: Pick<FaultRecord, 'recovery_ms' | 'extra'> = {},
): FaultRecord {
  const loads = Array.isArray(load) ? load : [load];
  const failures: Record<string, number> = {};
  for (const l of loads) {
    for (const [reason, n] of Object.entries(l.failuresByReason))
      failures[reason] = (failures[reason] ?? 0) + n;
  }
  return {
    scenario,
    load_rps: rps,
    duration_s: Math.round(loads.reduce((ms, l) => ms + l.durationMs, 0) / 100) / 10,
    client_successes: ledger.client_successes,
    client_failures: loads.reduce((n, l) => n + l.failures, 0),
    claimed_on_chain: ledger.claimed_on_chain,
    relays_lost: ledger.relays_lost,
    expired_claims: ledger.expired_claims,
    missed_proofs: ledger.missed_proofs,
    ...(more.recovery_ms === undefined ? {} : { recovery_ms: more.recovery_ms }),
    extra: { ...more.extra, client_failures_by_reason: JSON.stringify(failures) },
  };
}

/**
 * A stack for the tests of one file: started before them (then `started`, if given), stopped
 * after them (`stopping` first), also when they fail. The getter throws if it did not start.
 */
export function useFaultStack(
  o: FaultStackOptions,
  hooks: { started?: (s: FaultStack) => void; stopping?: () => void } = {},
): () => FaultStack {
  let stack: FaultStack | undefined;
  beforeAll(async () => {
    stack = await startFaultStack(o);
    hooks.started?.(stack);
  }, 120_000);
  afterAll(async () => {
    hooks.stopping?.();
    await stack?.stop();
  }, 30_000);
  return () => {
    if (stack === undefined) throw new Error('the fault stack did not start');
    return stack;
  };
}

/** The acceptance of a scenario: claimed on chain = the client's successes, every session proved. */
export function expectExactLedger(ledger: LedgerCheck, load: LoadResult | LoadResult[]): void {
  const successes = (Array.isArray(load) ? load : [load]).reduce((n, l) => n + l.successes, 0);
  const off = ledger.perSession.filter((p) => p.claimed !== p.client || !p.proved);
  expect(
    {
      claimed: ledger.claimed_on_chain,
      lost: ledger.relays_lost,
      expired: ledger.expired_claims,
      missed: ledger.missed_proofs,
    },
    JSON.stringify(off),
  ).toEqual({ claimed: successes, lost: 0, expired: 0, missed: 0 });
}
