/**
 * A running relayer for e2e tests: the localnet chain simulator, the demo backends, real Redis
 * under a key prefix of its own, block events published the way the leader miner does, the
 * supplier registry entry the miner would write, and gateway-side helpers to ring-sign requests,
 * verify answers and read the supplier stream.
 *
 *   const s = await startRelayerStack();
 *   const header = await s.session('anvil');
 *   const { bytes } = s.signRequest(header, s.httpPayload({ body: '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}' }));
 *   const res = await fetch(`${s.url}/`, { method: 'POST', body: bytes, headers: { 'Rpc-Type': '3' } });
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import pino, { type Logger } from 'pino';
import { Registry } from 'prom-client';
import {
  BlockEventPublisher,
  SupplierStateCache,
  createCacheMetrics,
  type SupplierState,
} from '../../cache/index.js';
import { startRelayer, type RunningRelayer } from '../../cmd/relayer.js';
import { bytesToHex } from '../../core/index.js';
import { startDemoBackends, type DemoBackends } from '../../localnet/backends/index.js';
import {
  encodePoktHttpRequest,
  encodeRelayRequest,
  type RelayRequest,
  type SessionHeader,
} from '../../protocol/index.js';
import { validateRelayerConfig, type RelayerConfig, type RelayerConfigInput } from '../../relayer/index.js';
import {
  expectedRingAddresses,
  selectBackend,
  signGatewayRelayRequest,
  verifyHttpRelayResponse,
  verifyRelayResponse,
} from '../../rings/index.js';
import {
  KeyBuilder,
  PubSub,
  createRedisClient,
  decodeMinedRelayMessage,
  deleteKeysWithPrefix,
  type MinedRelayMessage,
} from '../../transport/index.js';
import { redisUrl } from '../helpers/redis.js';
import {
  APP,
  BALANCE,
  GATEWAY,
  SUPPLIER,
  startChainWithClient,
  testGenesis,
  type ChainWithClient,
  type TestKey,
} from './localnet-fixtures.js';

export const ec = selectBackend('native');

/** A second service whose only backend streams (SSE / NDJSON). */
export const STREAM_SERVICE = 'stream';

export interface RelayerStackOptions {
  /** Validation mode of every service (default eager, so rejections are visible to the client). */
  validationMode?: 'eager' | 'optimistic';
  failBehavior?: 'open' | 'closed';
  /** Changes to the relayer config input before validation. */
  configure?: (cfg: RelayerConfigInput) => void;
  /** Height the chain starts at (default 5: inside the second 4-block session). */
  height?: number;
  /** Write the supplier registry entry the miner would write (default true). */
  registerSupplier?: boolean;
  log?: Logger;
  /** Redis to use instead of REDIS_URL / 127.0.0.1:6379 (fault tests run their own server). */
  redisUrl?: string;
  /** Runs against the stack's Redis prefix before the relayer starts (e.g. service factors). */
  beforeStart?: (redis: Redis, keys: KeyBuilder) => Promise<void>;
  /**
   * Suppliers staked next to SUPPLIER for the same services, each with its own owner account: their
   * keys go into the relayer's keys file and (with `registerSupplier`) their registry entries are
   * written. Default none.
   */
  extraSuppliers?: readonly ExtraSupplier[];
}

/** An additional staked supplier: operator key (funded at genesis) and owner (balance 0). */
export interface ExtraSupplier {
  operator: TestKey;
  owner: TestKey;
}

export interface RelayerStack {
  readonly relayer: RunningRelayer;
  readonly config: RelayerConfig;
  /** http://127.0.0.1:port */
  readonly url: string;
  readonly wsUrl: string;
  readonly grpcPort: number;
  readonly redis: Redis;
  readonly keys: KeyBuilder;
  readonly prefix: string;
  readonly chain: ChainWithClient;
  readonly backends: DemoBackends;
  /** Operator keys of every staked supplier the relayer holds: SUPPLIER first, then the extra ones. */
  readonly suppliers: readonly TestKey[];
  /** Advances the chain by `n` blocks and publishes the block event; resolves once the relayer has it. */
  advance(n?: number): Promise<number>;
  /** The on-chain session of APP for a service at the current height. */
  session(serviceId: string, height?: number): Promise<SessionHeader>;
  /** POKTHTTPRequest bytes. */
  httpPayload(p: {
    method?: string;
    url?: string;
    headers?: Record<string, string>;
    body?: string | Uint8Array;
  }): Uint8Array;
  /** A RelayRequest ring-signed as GATEWAY (or `ringMember`) for SUPPLIER (or `supplier`). */
  signRequest(
    header: SessionHeader,
    payload: Uint8Array,
    o?: { supplier?: string; ringMember?: TestKey },
  ): { request: RelayRequest; bytes: Uint8Array };
  /** Verifies an HTTP-family answer as a gateway does (signed by SUPPLIER, or `supplier`). */
  verifyHttp(
    bytes: Uint8Array,
    header: SessionHeader,
    supplier?: TestKey,
  ): ReturnType<typeof verifyHttpRelayResponse>;
  /** Verifies a raw RelayResponse (WebSocket frames, stream batches), signed by SUPPLIER or `supplier`. */
  verify(
    bytes: Uint8Array,
    header: SessionHeader,
    supplier?: TestKey,
  ): ReturnType<typeof verifyRelayResponse>;
  /** Every entry of the supplier's relay stream, decoded. */
  streamEntries(supplier?: string): Promise<MinedRelayMessage[]>;
  /** Waits until the stream has at least `n` entries (or the timeout), then returns them all. */
  waitForEntries(n: number, timeoutMs?: number, supplier?: string): Promise<MinedRelayMessage[]>;
  /** Counter value from the relayer's registry. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

/** Every service, every demo backend; eager by default. */
function relayerConfigInput(
  b: DemoBackends,
  chainUrl: string,
  prefix: string,
  o: RelayerStackOptions,
): RelayerConfigInput {
  const mode = o.validationMode ?? 'eager';
  return {
    listen_addr: '127.0.0.1:0',
    redis: { url: o.redisUrl ?? redisUrl(), namespace: { base_prefix: `${prefix}ha` } },
    pocket_node: { query_node_rpc_url: chainUrl, query_node_grpc_url: chainUrl },
    keys: {},
    services: {
      anvil: {
        validation_mode: mode,
        default_backend: 'jsonrpc',
        backends: {
          jsonrpc: { url: b.jsonrpc.url },
          rest: { url: b.rest.url },
          cometbft: { url: b.jsonrpc.url },
          websocket: { url: b.websocket.url },
          grpc: { url: b.grpc.url },
        },
      },
      [STREAM_SERVICE]: {
        validation_mode: mode,
        timeout_profile: 'streaming',
        backends: { jsonrpc: { url: b.streaming.url }, rest: { url: b.streaming.url } },
      },
    },
    metrics: { enabled: false },
    pprof: { enabled: false },
    health_check: { enabled: false },
    relay_meter: { redis_key_prefix: `${prefix}ha`, fail_behavior: o.failBehavior ?? 'open' },
    grpc: { listen_addr: '127.0.0.1:0' },
    websocket: { listen_addr: '127.0.0.1:0' },
    ring_verify: { threads: 1, backend: 'native' },
    shutdown: { drain_timeout_seconds: 5 },
    logging: { level: 'error' },
  };
}

export async function startRelayerStack(o: RelayerStackOptions = {}): Promise<RelayerStack> {
  const prefix = `t:${randomBytes(6).toString('hex')}:`;
  const genesis = testGenesis();
  genesis.services.push({
    id: STREAM_SERVICE,
    name: 'Streaming demo',
    compute_units_per_relay: 1n,
    owner_address: genesis.services[0]!.owner_address,
  });
  genesis.applications[0]!.service_ids.push(STREAM_SERVICE);
  genesis.suppliers[0]!.services.push({
    service_id: STREAM_SERVICE,
    endpoints: [{ url: 'http://127.0.0.1:9/', rpc_type: 'JSON_RPC' }],
    rev_share: [{ address: genesis.suppliers[0]!.owner_address, rev_share_percentage: 100n }],
  });
  const extra = o.extraSuppliers ?? [];
  for (const { operator, owner } of extra) {
    genesis.accounts.push(
      { address: operator.address, pub_key: operator.publicKey, balance_upokt: BALANCE },
      { address: owner.address, balance_upokt: 0n },
    );
    genesis.suppliers.push({
      operator_address: operator.address,
      owner_address: owner.address,
      stake_upokt: genesis.suppliers[0]!.stake_upokt,
      services: genesis.suppliers[0]!.services.map((svc) => ({
        service_id: svc.service_id,
        endpoints: svc.endpoints.map((e) => ({ ...e })),
        rev_share: svc.rev_share.length > 0 ? [{ address: owner.address, rev_share_percentage: 100n }] : [],
      })),
    });
  }
  const supplierKeys: TestKey[] = [SUPPLIER, ...extra.map((e) => e.operator)];
  const cleanups: (() => Promise<unknown>)[] = [];
  const run = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    const chain = await startChainWithClient(genesis, o.height ?? 5);
    cleanups.push(() => chain.stop());
    const backends = await startDemoBackends();
    cleanups.push(() => backends.close());
    const redis = await createRedisClient({ url: o.redisUrl ?? redisUrl(), connection_name: 'relayer-e2e' });
    redis.on('error', () => undefined);
    cleanups.push(async () => {
      await deleteKeysWithPrefix(redis, prefix);
      await redis.quit();
    });
    const dir = mkdtempSync(join(tmpdir(), 'relayer-e2e-'));
    cleanups.push(() => Promise.resolve(rmSync(dir, { recursive: true, force: true })));
    const keysFile = join(dir, 'keys.yaml');
    const keyLines = supplierKeys.map((k) => `  - ${bytesToHex(k.privateKey)}\n`).join('');
    writeFileSync(keysFile, `keys:\n${keyLines}`, { mode: 0o600 });
    const input = relayerConfigInput(backends, chain.net.url, prefix, o);
    input.keys = { keys_file: keysFile };
    o.configure?.(input);
    const text = JSON.stringify(input);
    const config = validateRelayerConfig(text, 'relayer-e2e');
    const keys = new KeyBuilder({ namespace: config.redis.namespace });
    const log = o.log ?? pino({ level: 'silent' });
    const registry = new Registry();
    // Supplier registry entry as the miner writes it.
    if (o.registerSupplier !== false) {
      const states = new SupplierStateCache({
        redis,
        keys,
        log,
        metrics: createCacheMetrics(new Registry()),
      });
      const state: SupplierState = {
        status: 'active',
        staked: true,
        services: ['anvil', STREAM_SERVICE],
        unstake_session_end_height: 0,
        operator_address: SUPPLIER.address,
        owner_address: genesis.suppliers[0]!.owner_address,
        last_updated: Math.floor(Date.now() / 1000),
      };
      await states.put(state);
      for (const { operator, owner } of extra) {
        await states.put({ ...state, operator_address: operator.address, owner_address: owner.address });
      }
    }
    await o.beforeStart?.(redis, keys);
    const relayer = await startRelayer(config, { log, registry });
    cleanups.push(() => relayer.stop());
    const subscriber = redis.duplicate();
    subscriber.on('error', () => undefined);
    const pubsub = new PubSub({ publisher: redis, subscriber, log });
    cleanups.push(() => pubsub.close());
    const blocks = new BlockEventPublisher({ pubsub, keys });
    const publishHeight = async (): Promise<number> => {
      const h = chain.net.chain.height;
      await blocks.publish({ height: h, hash: new Uint8Array(32).fill(h % 256) });
      const deadline = Date.now() + 5_000;
      while (relayer.core.heights.currentHeight < h) {
        if (Date.now() > deadline) throw new Error(`relayer did not see block ${h}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      return h;
    };
    await publishHeight();
    const ringKeys = (header: SessionHeader, member: TestKey): Uint8Array[] =>
      expectedRingAddresses(
        APP.address,
        { delegateeGatewayAddresses: [GATEWAY.address], pendingUndelegations: new Map() },
        header.sessionEndBlockHeight,
      ).map((a) => (a === APP.address ? APP.publicKey : member.publicKey));
    const stack: RelayerStack = {
      relayer,
      config,
      url: `http://127.0.0.1:${relayer.relayPort}`,
      wsUrl: `ws://127.0.0.1:${relayer.relayPort}`,
      grpcPort: relayer.grpcPort ?? 0,
      redis,
      keys,
      prefix,
      chain,
      backends,
      suppliers: supplierKeys,
      advance: async (n = 1) => {
        chain.net.chain.advanceTo(chain.net.chain.height + n);
        return publishHeight();
      },
      session: async (serviceId, height) => {
        const s = await chain.query.getSession(APP.address, serviceId, height ?? chain.net.chain.height);
        return s.header!;
      },
      httpPayload: (p) =>
        encodePoktHttpRequest({
          method: p.method ?? 'POST',
          url: p.url ?? '/',
          headers: Object.entries(p.headers ?? { 'Content-Type': 'application/json' }).map(
            ([k, v]) => [k, [v]] as const,
          ),
          body: typeof p.body === 'string' ? Buffer.from(p.body) : (p.body ?? new Uint8Array(0)),
        }),
      signRequest: (header, payload, so = {}) => {
        const member = so.ringMember ?? GATEWAY;
        const keysInRing = ringKeys(header, member);
        const request = signGatewayRelayRequest(ec, {
          header,
          supplierOperatorAddress: so.supplier ?? SUPPLIER.address,
          payload,
          ringPublicKeys: keysInRing,
          signerIndex: keysInRing.findIndex((k) => k === member.publicKey),
          signerPrivateKey: member.privateKey,
        });
        return { request, bytes: encodeRelayRequest(request) };
      },
      verifyHttp: (bytes, header, supplier = SUPPLIER) =>
        verifyHttpRelayResponse(ec, bytes, supplier.publicKey, header),
      verify: (bytes, header, supplier = SUPPLIER) =>
        verifyRelayResponse(ec, bytes, supplier.publicKey, header),
      streamEntries: async (supplier = SUPPLIER.address) => {
        const rows = (await redis.xrangeBuffer(keys.relayStream(supplier), '-', '+')) as [Buffer, Buffer[]][];
        return rows.map(([, fields]) => decodeMinedRelayMessage(fields[1]!));
      },
      waitForEntries: async (n, timeoutMs = 5_000, supplier = SUPPLIER.address) => {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          await relayer.publisher.flush();
          const rows = await stack.streamEntries(supplier);
          if (rows.length >= n || Date.now() > deadline) return rows;
          await new Promise((r) => setTimeout(r, 10));
        }
      },
      metric: async (name, labels = {}) => {
        const m = await registry.getSingleMetric(name)?.get();
        if (m === undefined) return 0;
        return m.values
          .filter((v) => Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val))
          .reduce((a, v) => a + v.value, 0);
      },
      close: run,
    };
    return stack;
  } catch (err) {
    await run();
    throw err;
  }
}

/** Hex of bytes, for readable assertion messages. */
export const hex = bytesToHex;
