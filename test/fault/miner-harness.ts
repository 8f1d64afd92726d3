/**
 * What the miner and chain fault tests need on top of the fault stack (harness.ts): which miner
 * process holds which supplier lease, whether a replica consumes a supplier's relay stream, the
 * localnet fault knobs over JSON-RPC, metrics of the miners, the heights at which claims and proofs
 * landed, and the FaultRecord of a run.
 *
 * Lease and consumer state is read from Redis exactly as the miner writes it: the lease
 * `{base}:miner:claim:{supplier}` holds the owner's instance id (miner/leases.ts), and the owner's
 * relay consumer is `{consumer_name}-{instance id}` in the stream's consumer group
 * (cmd/miner.ts). A miner process's instance id comes from its `miner started` log line.
 */
import type { Redis } from 'ioredis';
import type { Localnet } from '../../localnet/index.js';
import { sessionParamsOf } from '../../localnet/index.js';
import { pb, sessionWindows, type SessionWindows } from '../../protocol/index.js';
import { KeyBuilder } from '../../transport/index.js';
import {
  metricValue,
  type FaultStack,
  type FaultStackOptions,
  type LedgerCheck,
  type LoadResult,
  type ManagedProcess,
} from './harness.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every `everyMs`; resolves with the time it took, throws after `timeoutMs`. */
export async function waitUntil(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 25,
): Promise<number> {
  const start = performance.now();
  for (;;) {
    if (await cond()) return performance.now() - start;
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(everyMs);
  }
}

/**
 * Genesis change for fault runs at 400 ms blocks: the claim window opens `openOffsetBlocks` blocks
 * after the session's grace period (1 in the stack) and claim and proof windows last `claimBlocks`
 * / `proofBlocks` blocks (4 in the stack). On a real chain a block lasts about a minute and a window
 * many minutes; at 400 ms the stack's 4-block windows (1.6 s) are shorter than one supplier lease
 * TTL, and one block between the grace period and the claim is less than a relayer or miner
 * process can stall on a machine shared with other test runs. The offset is the time a relay
 * accepted in the session's last block has to reach the trie before the claim seals it.
 */
export function windowsOf(
  openOffsetBlocks: number,
  claimBlocks: number,
  proofBlocks: number,
): NonNullable<FaultStackOptions['genesis']> {
  return (g: { params: { shared: Record<string, number> } }) => {
    g.params.shared['claim_window_open_offset_blocks'] = openOffsetBlocks;
    g.params.shared['claim_window_close_offset_blocks'] = claimBlocks;
    g.params.shared['proof_window_close_offset_blocks'] = proofBlocks;
  };
}

/** Windows of the session containing `height`, from the chain's live params. */
export function windowsFor(net: Localnet, height: number): SessionWindows {
  return sessionWindows(sessionParamsOf(net.chain.sharedParams), height);
}

/** Captures what each miner's config says about its Redis names (consumer name, namespace). */
export class MinerNames {
  private readonly consumerNames = new Map<number, string>();
  private namespace: Record<string, string> = {};

  /** Pass as `minerConfig` (after any change of your own). */
  readonly hook = (index: number, cfg: Record<string, any>): void => {
    this.consumerNames.set(index, String(cfg['redis']['consumer_name'] ?? 'miner'));
    this.namespace = { ...(cfg['redis']['namespace'] ?? {}) };
  };

  keys(): KeyBuilder {
    return new KeyBuilder({ namespace: this.namespace });
  }

  consumerName(index: number): string {
    const n = this.consumerNames.get(index);
    if (n === undefined) throw new Error(`miner ${index} was not configured through the hook`);
    return n;
  }
}

/** Instance id from the newest `miner started` line of a miner process's log. */
export function instanceIdOf(m: ManagedProcess): string {
  let id: string | undefined;
  for (const line of m.logs().split('\n')) {
    if (!line.includes('"miner started"')) continue;
    try {
      const parsed = JSON.parse(line) as { msg?: string; instance_id?: string };
      if (parsed.msg === 'miner started' && parsed.instance_id !== undefined) id = parsed.instance_id;
    } catch {
      // a partial line at the end of the buffer
    }
  }
  if (id === undefined) throw new Error(`${m.name}: no "miner started" line with an instance id`);
  return id;
}

/** Instance id holding the supplier's lease, or null. */
export function leaseHolder(redis: Redis, keys: KeyBuilder, supplier: string): Promise<string | null> {
  return redis.get(keys.minerClaim(supplier));
}

/** Lease holder of every supplier, as the index of the miner process holding it (-1 = none). */
export async function leaseOwners(
  s: FaultStack,
  names: MinerNames,
): Promise<{ supplier: string; owner: number }[]> {
  const ids = s.miners.map((m) => (m.running ? instanceIdOf(m) : ''));
  const out: { supplier: string; owner: number }[] = [];
  for (const k of s.keys.suppliers) {
    const holder = await leaseHolder(s.redis.client(), names.keys(), k.address);
    out.push({ supplier: k.address, owner: holder === null ? -1 : ids.indexOf(holder) });
  }
  return out;
}

/**
 * Milliseconds since the consumer last read or claimed from the supplier's stream (XINFO
 * CONSUMERS `idle`), or undefined when the group has no such consumer.
 */
export async function consumerIdleMs(
  redis: Redis,
  keys: KeyBuilder,
  supplier: string,
  consumer: string,
): Promise<number | undefined> {
  let rows: unknown;
  try {
    rows = await redis.xinfo('CONSUMERS', keys.relayStream(supplier), keys.consumerGroup());
  } catch {
    return undefined; // no stream or no group yet
  }
  for (const row of rows as unknown[][]) {
    const fields = new Map<string, unknown>();
    for (let i = 0; i + 1 < row.length; i += 2) fields.set(String(row[i]), row[i + 1]);
    if (fields.get('name') === consumer) return Number(fields.get('idle'));
  }
  return undefined;
}

/** Calls `localnet_fault` over JSON-RPC; throws on an error answer. */
export async function localnetFault(net: Localnet, params: Record<string, unknown>): Promise<void> {
  const res = await fetch(net.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'localnet_fault', params }),
    signal: AbortSignal.timeout(5_000),
  });
  const body = (await res.json()) as { result?: unknown; error?: unknown };
  if (body.error !== undefined)
    throw new Error(`localnet_fault ${JSON.stringify(params)}: ${JSON.stringify(body.error)}`);
}

/** Resolves right after the chain committed `height` (at once if it already has). */
export function heightReached(net: Localnet, height: number, timeoutMs: number): Promise<void> {
  if (net.chain.height >= height) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`height ${height} not reached within ${timeoutMs} ms (at ${net.chain.height})`));
    }, timeoutMs);
    const off = net.chain.onEvent((e) => {
      if (e.kind === 'block' && e.block.height >= height) {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  });
}

/** One Prometheus series of each miner (its matching label sets summed); 0 for a miner not running. */
export async function minerMetric(
  s: FaultStack,
  name: string,
  labels: Record<string, string> = {},
): Promise<number[]> {
  return Promise.all(
    s.miners.map(async (m) => {
      if (!m.running) return 0;
      const res = await fetch(m.metricsUrl, { signal: AbortSignal.timeout(2_000) });
      return metricValue(await res.text(), name, labels);
    }),
  );
}

/**
 * Height of the block in which each (supplier, session) claim landed and in which its proof did
 * (the block whose EndBlocker validated it: the chain keeps no proof past that block), key
 * `${supplier}/${session}`.
 */
export class SubmissionHeights {
  readonly claims = new Map<string, number>();
  readonly proofs = new Map<string, number>();
  private readonly off: () => void;

  constructor(net: Localnet) {
    this.off = net.chain.onEvent((e) => {
      if (e.kind !== 'block') return;
      const seen = (into: Map<string, number>, supplier: string, sessionId: string | undefined): void => {
        const key = `${supplier}/${sessionId ?? ''}`;
        if (!into.has(key)) into.set(key, e.block.height);
      };
      for (const c of net.chain.claims()) {
        seen(this.claims, c.supplierOperatorAddress, c.sessionHeader?.sessionId);
        if (c.proofValidationStatus === pb.proofTypes.ClaimProofStatus.VALIDATED)
          seen(this.proofs, c.supplierOperatorAddress, c.sessionHeader?.sessionId);
      }
    });
  }

  close(): void {
    this.off();
  }
}

/** The acceptance of every scenario: the chain claimed exactly the client's successes, all proved. */
export function ledgerVerdict(load: LoadResult | LoadResult[], ledger: LedgerCheck): Record<string, number> {
  const loads = Array.isArray(load) ? load : [load];
  return {
    client: ledger.client_successes,
    claimed: ledger.claimed_on_chain,
    lost: ledger.relays_lost,
    expired: ledger.expired_claims,
    missed: ledger.missed_proofs,
    unproved: mismatched(ledger).length,
    load_successes: loads.reduce((n, l) => n + l.successes, 0),
  };
}

/** Sessions whose claim differs from the client's count or that were not proved (with the miners' ledger). */
export function mismatched(ledger: LedgerCheck): LedgerCheck['perSession'] {
  return ledger.perSession.filter((p) => !p.proved || p.claimed !== p.client);
}

/** What ledgerVerdict must equal for a run with `successes` client successes. */
export function wholeLedger(successes: number): Record<string, number> {
  return {
    client: successes,
    claimed: successes,
    lost: 0,
    expired: 0,
    missed: 0,
    unproved: 0,
    load_successes: successes,
  };
}
