/**
 * Miner replicas for e2e tests, run in-process next to a relayer stack (relayer-fixtures.ts): each
 * replica is the real `startMiner` graph on the stack's Redis namespace and localnet, with its own
 * instance id and supplier key file. Helpers send gateway-signed relays through the relayer over
 * HTTP and drive the localnet one block at a time, waiting until every live replica has done the
 * block's work.
 *
 *   const stack = await startRelayerStack();
 *   const a = await startMinerReplica(stack, 'miner-a');
 *   const ok = await sendRelays(stack, await stack.session('anvil'), 5);
 *   await driveTo(stack, [a], 12);
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { Registry } from 'prom-client';
import { startMiner, type MinerOverrides, type RunningMiner } from '../../cmd/miner.js';
import { bytesToHex } from '../../core/index.js';
import { validateMinerConfig, type MinerConfigInput } from '../../miner/index.js';
import type { SessionHeader } from '../../protocol/index.js';
import { redisUrl } from '../helpers/redis.js';
import { SUPPLIER, type TestKey } from './localnet-fixtures.js';
import type { RelayerStack } from './relayer-fixtures.js';

export interface MinerReplicaOptions {
  /** Changes to the miner config input before validation. */
  configure?: (cfg: MinerConfigInput) => void;
  /** Receives the replica's log lines (JSON); unset = silent. */
  logLines?: string[];
  overrides?: MinerOverrides;
}

/** Polls `cond` every 10 ms; resolves with the milliseconds it took, rejects after `timeoutMs`. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await cond()) return Date.now() - start;
    if (Date.now() - start > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The miner config of a replica on the stack's Redis namespace and localnet. */
export function minerConfigInput(stack: RelayerStack, keysFile: string): MinerConfigInput {
  const url = stack.chain.net.url;
  return {
    redis: { url: redisUrl(), namespace: { ...stack.config.redis.namespace }, consumer_name: 'e2e' },
    pocket_node: { query_node_rpc_url: url, query_node_grpc_url: url, query_timeout_seconds: 3 },
    keys: { keys_file: keysFile },
    block_time_seconds: 1,
    supplier_reconcile_interval_seconds: -1,
    metrics: { enabled: true, addr: '127.0.0.1:0' },
    logging: { level: 'error' },
  };
}

/**
 * Starts one replica holding the key of every supplier of the stack (SUPPLIER, plus the stack's
 * extra suppliers); stopped (gracefully, unless aborted) by `stop()`.
 */
export async function startMinerReplica(
  stack: RelayerStack,
  instanceId: string,
  o: MinerReplicaOptions = {},
): Promise<RunningMiner> {
  const dir = mkdtempSync(join(tmpdir(), 'miner-e2e-'));
  try {
    const keysFile = join(dir, 'keys.yaml');
    const keyLines = stack.suppliers.map((k) => `  - ${bytesToHex(k.privateKey)}\n`).join('');
    writeFileSync(keysFile, `keys:\n${keyLines}`, { mode: 0o600 });
    const input = minerConfigInput(stack, keysFile);
    o.configure?.(input);
    const cfg = validateMinerConfig(JSON.stringify(input), `miner-e2e-${instanceId}`);
    const lines = o.logLines;
    // MINER_E2E_LOG=<level> prints the replicas' logs to stderr while debugging.
    const debugLevel = process.env['MINER_E2E_LOG'];
    const log: Logger =
      lines !== undefined
        ? pino({ level: 'info' }, { write: (line: string) => void lines.push(line) })
        : debugLevel !== undefined
          ? pino({ level: debugLevel }, pino.destination(2))
          : pino({ level: 'silent' });
    return await startMiner(cfg, {
      log,
      registry: new Registry(),
      instanceId,
      metricsPort: 0,
      consumer: { block_ms: 100 },
      drainTimeoutMs: 5_000,
      txRetryDelayMs: 50,
      ...o.overrides,
    });
  } finally {
    // The keys are read at start; the file is not needed afterwards.
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Sends `n` eth_blockNumber relays for `header` through the relayer over HTTP, ring-signed as the
 * gateway and addressed to SUPPLIER (or `o.supplier`); returns how many came back with a valid
 * signature of that supplier and HTTP 200 inside.
 */
export async function sendRelays(
  stack: RelayerStack,
  header: SessionHeader,
  n: number,
  o: { supplier?: TestKey } = {},
): Promise<number> {
  const supplier = o.supplier ?? SUPPLIER;
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const body = JSON.stringify({ jsonrpc: '2.0', id: i + 1, method: 'eth_blockNumber' });
    const { bytes } = stack.signRequest(header, stack.httpPayload({ body }), { supplier: supplier.address });
    const res = await fetch(`${stack.url}/`, { method: 'POST', body: bytes, headers: { 'Rpc-Type': '3' } });
    const answer = new Uint8Array(await res.arrayBuffer());
    if (res.status !== 200) continue;
    const checked = stack.verifyHttp(answer, header, supplier);
    if (checked.ok && checked.status === 200) ok++;
  }
  return ok;
}

/** Waits until every replica has finished the work of block `h` and the jobs it queued. */
export async function settled(miners: readonly RunningMiner[], h: number, timeoutMs = 10_000): Promise<void> {
  for (const m of miners) {
    await waitFor(() => m.height >= h, timeoutMs, `${m.instanceId} to process block ${h}`);
    await m.idle();
  }
}

/** Produces blocks one at a time up to `to`, each done by every replica before the next. */
export async function driveTo(
  stack: RelayerStack,
  miners: readonly RunningMiner[],
  to: number,
): Promise<void> {
  while (stack.chain.net.chain.height < to) {
    const h = await stack.advance(1);
    await settled(miners, h);
  }
}
