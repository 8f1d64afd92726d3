/**
 * The pieces of the local stack that are pure data: its keys, its genesis, Redis discovery and the
 * relayer / miner config inputs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { bytesToHex } from '../../core/index.js';
import type { DemoBackends } from '../../localnet/backends/index.js';
import { parseGenesis, type Genesis } from '../../localnet/index.js';
import type { MinerConfigInput } from '../../miner/index.js';
import { addressFromPublicKey, privateKeyFromSecret, publicKeyFromPrivate } from '../../protocol/index.js';
import type { RelayerConfigInput } from '../../relayer/index.js';

export interface StackKey {
  name: string;
  privateKey: Uint8Array;
  publicKey: Uint8Array;
  address: string;
}

export function stackKey(name: string): StackKey {
  const privateKey = privateKeyFromSecret(new TextEncoder().encode(`pocket-relay-miner/stack/${name}`));
  const publicKey = publicKeyFromPrivate(privateKey);
  return { name, privateKey, publicKey, address: addressFromPublicKey(publicKey) };
}

export const SERVICE = 'anvil';
export const STREAM_SERVICE = 'stream';
export const BLOCKS_PER_SESSION = 4;

export interface StackKeys {
  app: StackKey;
  gateway: StackKey;
  suppliers: StackKey[];
  owners: StackKey[];
  serviceOwner: StackKey;
  dao: StackKey;
}

export function stackKeys(): StackKeys {
  return {
    app: stackKey('application'),
    gateway: stackKey('gateway'),
    suppliers: [stackKey('supplier-1'), stackKey('supplier-2')],
    owners: [stackKey('supplier-1-owner'), stackKey('supplier-2-owner')],
    serviceOwner: stackKey('service-owner'),
    dao: stackKey('dao'),
  };
}

/** App + gateway + two suppliers on both services; 4-block sessions, every claim needs a proof. */
export function stackGenesis(k: StackKeys): Genesis {
  const balance = 1_000_000_000;
  const services = [SERVICE, STREAM_SERVICE].map((id) => ({
    service_id: id,
    endpoints: [{ url: 'http://127.0.0.1:9/', rpc_type: 'JSON_RPC' }],
  }));
  return parseGenesis(
    {
      chain_id: 'pocket',
      initial_height: 1,
      params: {
        shared: {
          num_blocks_per_session: BLOCKS_PER_SESSION,
          grace_period_end_offset_blocks: 1,
          claim_window_open_offset_blocks: 1,
          claim_window_close_offset_blocks: 4,
          proof_window_open_offset_blocks: 0,
          proof_window_close_offset_blocks: 4,
        },
        proof: {
          proof_request_probability: 1,
          proof_requirement_threshold: '20000000upokt',
          proof_missing_penalty: '1000upokt',
          proof_submission_fee: '1upokt',
        },
        tokenomics: { dao_reward_address: k.dao.address },
      },
      accounts: [
        { address: k.app.address, pub_key: bytesToHex(k.app.publicKey), balance },
        { address: k.gateway.address, pub_key: bytesToHex(k.gateway.publicKey), balance },
        ...k.suppliers.map((s) => ({ address: s.address, pub_key: bytesToHex(s.publicKey), balance })),
        ...k.owners.map((o) => ({ address: o.address, balance: 0 })),
        { address: k.serviceOwner.address, balance: 0 },
      ],
      services: [
        { id: SERVICE, name: 'Anvil', compute_units_per_relay: 2, owner_address: k.serviceOwner.address },
        {
          id: STREAM_SERVICE,
          name: 'Streaming demo',
          compute_units_per_relay: 1,
          owner_address: k.serviceOwner.address,
        },
      ],
      applications: [
        {
          address: k.app.address,
          stake: 1_000_000_000,
          service_ids: [SERVICE, STREAM_SERVICE],
          delegatee_gateway_addresses: [k.gateway.address],
        },
      ],
      gateways: [{ address: k.gateway.address, stake: 100_000_000 }],
      suppliers: k.suppliers.map((s, i) => ({
        operator_address: s.address,
        owner_address: k.owners[i]!.address,
        stake: 100_000_000,
        services,
      })),
    },
    'stack',
  );
}

export function relayerConfigInput(
  b: DemoBackends,
  chainUrl: string,
  redisUrl: string,
  basePrefix: string,
  keysFile: string,
): RelayerConfigInput {
  return {
    listen_addr: '127.0.0.1:0',
    redis: { url: redisUrl, namespace: { base_prefix: basePrefix } },
    pocket_node: { query_node_rpc_url: chainUrl, query_node_grpc_url: chainUrl },
    keys: { keys_file: keysFile },
    services: {
      [SERVICE]: {
        validation_mode: 'eager',
        default_backend: 'jsonrpc',
        backends: {
          jsonrpc: { url: b.jsonrpc.url },
          rest: { url: b.rest.url },
          websocket: { url: b.websocket.url },
          grpc: { url: b.grpc.url },
        },
      },
      [STREAM_SERVICE]: {
        validation_mode: 'eager',
        timeout_profile: 'streaming',
        backends: { jsonrpc: { url: b.streaming.url }, rest: { url: b.streaming.url } },
      },
    },
    metrics: { enabled: false },
    pprof: { enabled: false },
    health_check: { enabled: false },
    relay_meter: { redis_key_prefix: basePrefix, fail_behavior: 'open' },
    grpc: { listen_addr: '127.0.0.1:0' },
    websocket: { listen_addr: '127.0.0.1:0' },
    ring_verify: { threads: 1, backend: 'native' },
    shutdown: { drain_timeout_seconds: 5 },
    logging: { level: 'error' },
  };
}

export function minerConfigInput(
  chainUrl: string,
  redisUrl: string,
  basePrefix: string,
  keysFile: string,
): MinerConfigInput {
  return {
    redis: { url: redisUrl, namespace: { base_prefix: basePrefix }, consumer_name: 'stack' },
    pocket_node: { query_node_rpc_url: chainUrl, query_node_grpc_url: chainUrl, query_timeout_seconds: 3 },
    keys: { keys_file: keysFile },
    block_time_seconds: 1,
    supplier_reconcile_interval_seconds: -1,
    metrics: { enabled: false },
    logging: { level: 'error' },
  };
}

async function ping(url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface StackRedis {
  url: string;
  /** 'existing' = a server already answering on 127.0.0.1:6379; 'spawned' = ours. */
  origin: 'existing' | 'spawned';
  stop(): Promise<void>;
}

/** `local` (default 127.0.0.1:6379) when it answers PING, else a throwaway `redis-server` on a free port. */
export async function findOrSpawnRedis(local = 'redis://127.0.0.1:6379'): Promise<StackRedis> {
  if (await ping(local)) return { url: local, origin: 'existing', stop: () => Promise.resolve() };
  const port = await freePort();
  let child: ChildProcess;
  try {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
  } catch (err) {
    throw new Error(`cannot start redis-server: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
  let spawnError: Error | undefined;
  child.on('error', (err) => (spawnError = err));
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 5_000;
  for (;;) {
    if (spawnError !== undefined) throw new Error(`cannot start redis-server: ${spawnError.message}`);
    if (await ping(url)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server on port ${port} did not answer PING within 5 s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    origin: 'spawned',
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
