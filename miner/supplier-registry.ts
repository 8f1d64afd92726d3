/**
 * The supplier registry the relayers gate on (cache-and-redis.md §2, relayer.md §3.1): for every
 * supplier this miner holds keys for, the on-chain Supplier is turned into a SupplierState and
 * written through SupplierStateCache.put (which also tells every relayer to reload it).
 *
 * When: at start, every `supplier_reconcile_interval_seconds` (≤ 0 disables the timer), whenever
 * `reconcile(operator)` is called, and for supplier-change events on chain: `checkBlock(height)`
 * (called per block by the leader duties) reads the block's results and reconciles each of our
 * suppliers named in a `pocket.supplier.*` event (stake, unbonding, service activation) or in
 * `pocket.tokenomics.EventSupplierSlashed`. That scan runs only when the chain client given can
 * read block results; a failed read is counted and left to the periodic reconcile.
 *
 * | chain answer                                  | entry                                               |
 * |-----------------------------------------------|-----------------------------------------------------|
 * | supplier, unstake_session_end_height = 0      | `active`, staked, its services                      |
 * | supplier, unstake_session_end_height > 0      | `unstaking`, staked, its services (served until end) |
 * | supplier with no service configured           | `not_staked`, staked (nothing it could serve)       |
 * | NotFound                                      | `not_staked`, not staked, no services               |
 * | any other error                               | nothing written: the last entry stays               |
 *
 * A staked supplier with no services is written as `not_staked` rather than `active`: relayers
 * read "active with no services" as a corrupt entry (a miss) and would fall back to serving
 * optimistically, while `not_staked` makes them refuse, which is what the chain says.
 * An unchanged entry is not rewritten (no invalidation is published), except that
 * `last_updated` is refreshed at most every reconcile interval so operators can see it is alive.
 */
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { RelayMinerError } from '../core/index.js';
import type { SupplierState, SupplierStateCache } from '../cache/index.js';
import type { BlockResults, ChainQueryClient } from '../chain/index.js';
import { pb } from '../protocol/index.js';

export interface SupplierRegistryMetrics {
  /** One per supplier per reconcile; result: written | unchanged | not_found | error. */
  reconciles: Counter<'result'>;
  /** Block-result scans for supplier events; result: ok | error. */
  eventScans: Counter<'result'>;
  /** Suppliers per registry status after the last reconcile pass. */
  suppliers: Gauge<'status'>;
}

export function createSupplierRegistryMetrics(registry: Registry): SupplierRegistryMetrics {
  const registers = [registry];
  return {
    reconciles: new Counter({
      name: 'ha_miner_supplier_registry_reconciles_total',
      help: 'Supplier registry reconciliations, by result',
      labelNames: ['result'],
      registers,
    }),
    eventScans: new Counter({
      name: 'ha_miner_supplier_registry_event_scans_total',
      help: 'Block results scanned for supplier-change events, by result',
      labelNames: ['result'],
      registers,
    }),
    suppliers: new Gauge({
      name: 'ha_miner_supplier_registry_suppliers',
      help: 'Suppliers of this miner by registry status',
      labelNames: ['status'],
      registers,
    }),
  };
}

export interface SupplierRegistryWriterDeps {
  /** With `getBlockResults`, supplier-change events are watched (see checkBlock). */
  chain: Pick<ChainQueryClient, 'getSupplier'> & Partial<Pick<ChainQueryClient, 'getBlockResults'>>;
  states: Pick<SupplierStateCache, 'put'>;
  log: Logger;
  metrics: SupplierRegistryMetrics;
  /** Written as `updated_by` (the miner instance id). */
  instanceId: string;
  /** Unix seconds for `last_updated`; tests pass a fixed one. */
  nowSeconds?: () => number;
}

export interface SupplierRegistryWriterConfig {
  /** Operator addresses whose keys this miner holds. */
  suppliers: readonly string[];
  /** Period of the full reconcile; ≤ 0 disables it (start and explicit calls still run). */
  supplier_reconcile_interval_seconds?: number;
}

export const DEFAULT_SUPPLIER_RECONCILE_INTERVAL_SECONDS = 60;

/** What one reconcile did for one supplier. */
export type ReconcileResult =
  | { operator: string; result: 'written' | 'unchanged' | 'not_found'; state: SupplierState }
  | { operator: string; result: 'error'; code: string };

export class SupplierRegistryConfigError extends RelayMinerError {
  constructor(field: string, why: string) {
    super('SUPPLIER_REGISTRY_CONFIG', `supplier registry ${field}: ${why}`);
  }
}

/** Backend-type names relayers use for `staked_endpoints[].rpc_type`. */
const RPC_TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [pb.sharedService.RPCType.GRPC, 'grpc'],
  [pb.sharedService.RPCType.WEBSOCKET, 'websocket'],
  [pb.sharedService.RPCType.JSON_RPC, 'jsonrpc'],
  [pb.sharedService.RPCType.REST, 'rest'],
  [pb.sharedService.RPCType.COMET_BFT, 'cometbft'],
]);

function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'CHAIN_NOT_FOUND';
}

function errorCode(err: unknown): string {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : 'UNKNOWN';
}

/**
 * The registry entry for an on-chain Supplier (undefined = NotFound). `last_updated` and
 * `updated_by` are filled by the caller.
 */
export function supplierStateFromChain(
  operator: string,
  supplier: pb.sharedSupplier.Supplier | undefined,
): Omit<SupplierState, 'last_updated' | 'updated_by'> {
  if (supplier === undefined) {
    return {
      status: 'not_staked',
      staked: false,
      services: [],
      unstake_session_end_height: 0,
      operator_address: operator,
      owner_address: '',
    };
  }
  const services: string[] = [];
  const endpoints: { service_id: string; rpc_type: string }[] = [];
  const seenEndpoints = new Set<string>();
  for (const cfg of supplier.services) {
    if (cfg.serviceId === '') continue;
    if (!services.includes(cfg.serviceId)) services.push(cfg.serviceId);
    for (const ep of cfg.endpoints) {
      const rpcType = RPC_TYPE_NAMES.get(ep.rpcType);
      if (rpcType === undefined) continue;
      const id = `${cfg.serviceId}\u0000${rpcType}`;
      if (seenEndpoints.has(id)) continue;
      seenEndpoints.add(id);
      endpoints.push({ service_id: cfg.serviceId, rpc_type: rpcType });
    }
  }
  const unstakeEnd = Number(supplier.unstakeSessionEndHeight);
  const status = services.length === 0 ? 'not_staked' : unstakeEnd > 0 ? 'unstaking' : 'active';
  return {
    status,
    staked: true,
    services,
    staked_endpoints: endpoints,
    unstake_session_end_height: unstakeEnd,
    operator_address: supplier.operatorAddress === '' ? operator : supplier.operatorAddress,
    owner_address: supplier.ownerAddress,
  };
}

/** Event types that can change a supplier's registry entry. */
export function isSupplierChangeEvent(type: string): boolean {
  return type.startsWith('pocket.supplier.') || type === 'pocket.tokenomics.EventSupplierSlashed';
}

/** Which of `suppliers` a block's supplier-change events name (in `suppliers` order). */
export function suppliersNamedInBlock(results: BlockResults, suppliers: readonly string[]): string[] {
  const values: string[] = [];
  const collect = (events: BlockResults['finalizeBlockEvents']): void => {
    for (const ev of events) {
      if (!isSupplierChangeEvent(ev.type)) continue;
      for (const a of ev.attributes) values.push(a.value);
    }
  };
  collect(results.finalizeBlockEvents);
  for (const tx of results.txResults) if (tx.code === 0) collect(tx.events);
  if (values.length === 0) return [];
  return suppliers.filter((s) => values.some((v) => v.includes(s)));
}

/** Equal apart from the bookkeeping fields. */
function sameEntry(a: SupplierState, b: SupplierState): boolean {
  const strip = (s: SupplierState): string =>
    JSON.stringify({ ...s, last_updated: 0, updated_by: undefined });
  return strip(a) === strip(b);
}

export class SupplierRegistryWriter {
  private readonly log: Logger;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private suppliers: string[];
  /** The last entry written per operator (what relayers currently read). */
  private readonly written = new Map<string, SupplierState>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** One reconcile chain per operator, so two never interleave their writes. */
  private readonly inflight = new Map<string, Promise<ReconcileResult>>();

  constructor(
    private readonly deps: SupplierRegistryWriterDeps,
    cfg: SupplierRegistryWriterConfig,
  ) {
    const interval = cfg.supplier_reconcile_interval_seconds ?? DEFAULT_SUPPLIER_RECONCILE_INTERVAL_SECONDS;
    if (!Number.isFinite(interval)) {
      throw new SupplierRegistryConfigError(
        'supplier_reconcile_interval_seconds',
        `must be a number of seconds, got ${interval}`,
      );
    }
    this.intervalMs = interval > 0 ? interval * 1000 : 0;
    this.suppliers = checkSuppliers(cfg.suppliers);
    this.log = deps.log.child({ component: 'supplier_registry' });
    this.now = deps.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Reconciles every supplier now, then on the interval. Per-supplier failures do not throw. */
  async start(): Promise<ReconcileResult[]> {
    if (this.running) return [];
    this.running = true;
    const results = await this.reconcileAll();
    this.schedule();
    return results;
  }

  /** Stops the timer and waits for reconciles in flight. Written entries stay in Redis. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.all([...this.inflight.values()]);
  }

  /** Replaces the supplier list (keys reloaded); new suppliers are reconciled at once. */
  async setSuppliers(suppliers: readonly string[]): Promise<ReconcileResult[]> {
    const next = checkSuppliers(suppliers);
    const added = next.filter((s) => !this.suppliers.includes(s));
    this.suppliers = next;
    for (const gone of [...this.written.keys()]) if (!next.includes(gone)) this.written.delete(gone);
    if (!this.running) return [];
    return Promise.all(added.map((s) => this.reconcile(s)));
  }

  /** Every supplier now (the timer's job; also callable after a bulk change). */
  async reconcileAll(): Promise<ReconcileResult[]> {
    const results = await Promise.all(this.suppliers.map((s) => this.reconcile(s)));
    this.updateGauge();
    return results;
  }

  /** One supplier now (a supplier-change event). Never throws; the result says what happened. */
  reconcile(operator: string): Promise<ReconcileResult> {
    const prev = this.inflight.get(operator) ?? Promise.resolve(undefined);
    const next = prev.then(() => this.reconcileOne(operator));
    this.inflight.set(operator, next);
    void next.finally(() => {
      if (this.inflight.get(operator) === next) this.inflight.delete(operator);
    });
    return next;
  }

  /**
   * Reconciles the suppliers named in this block's supplier-change events; resolves to their
   * results (empty without a block-results reader, or when the read failed).
   */
  async checkBlock(height: number): Promise<ReconcileResult[]> {
    const read = this.deps.chain.getBlockResults;
    if (read === undefined || !this.running) return [];
    let results: BlockResults;
    try {
      results = await read.call(this.deps.chain, height);
    } catch (err) {
      this.deps.metrics.eventScans.inc({ result: 'error' });
      this.log.warn(
        { err, block_height: height },
        'reading block results for supplier events failed; the periodic reconcile catches up',
      );
      return [];
    }
    this.deps.metrics.eventScans.inc({ result: 'ok' });
    const named = suppliersNamedInBlock(results, this.suppliers);
    return Promise.all(named.map((s) => this.reconcile(s)));
  }

  /** The entry last written for `operator` by this writer. */
  lastWritten(operator: string): SupplierState | undefined {
    return this.written.get(operator);
  }

  private async reconcileOne(operator: string): Promise<ReconcileResult> {
    let onChain: pb.sharedSupplier.Supplier | undefined;
    try {
      onChain = await this.deps.chain.getSupplier(operator);
    } catch (err) {
      if (!isNotFound(err)) {
        this.deps.metrics.reconciles.inc({ result: 'error' });
        this.log.warn(
          { err, supplier: operator },
          'supplier query failed; the registry entry is left as it was until the next reconcile',
        );
        return { operator, result: 'error', code: errorCode(err) };
      }
    }
    const state: SupplierState = {
      ...supplierStateFromChain(operator, onChain),
      last_updated: this.now(),
      updated_by: this.deps.instanceId,
    };
    const prev = this.written.get(operator);
    const fresh =
      prev !== undefined &&
      this.intervalMs > 0 &&
      (state.last_updated - prev.last_updated) * 1000 < this.intervalMs;
    if (prev !== undefined && sameEntry(prev, state) && fresh) {
      this.deps.metrics.reconciles.inc({ result: 'unchanged' });
      return { operator, result: 'unchanged', state: prev };
    }
    try {
      await this.deps.states.put(state);
    } catch (err) {
      this.deps.metrics.reconciles.inc({ result: 'error' });
      this.log.warn(
        { err, supplier: operator },
        'writing the supplier registry entry failed; retried next reconcile',
      );
      return { operator, result: 'error', code: errorCode(err) };
    }
    this.written.set(operator, state);
    const result = onChain === undefined ? 'not_found' : 'written';
    this.deps.metrics.reconciles.inc({ result });
    if (prev === undefined || prev.status !== state.status) {
      this.log.info({ supplier: operator, status: state.status }, 'supplier registry entry written');
    }
    return { operator, result, state };
  }

  private schedule(): void {
    if (!this.running || this.intervalMs <= 0) return;
    this.timer = setTimeout(() => {
      void this.reconcileAll().finally(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }

  private updateGauge(): void {
    const counts = { active: 0, unstaking: 0, not_staked: 0 };
    for (const s of this.suppliers) {
      const state = this.written.get(s);
      if (state !== undefined) counts[state.status]++;
    }
    for (const [status, n] of Object.entries(counts)) this.deps.metrics.suppliers.set({ status }, n);
  }
}

function checkSuppliers(suppliers: readonly string[]): string[] {
  const out: string[] = [];
  suppliers.forEach((s, i) => {
    if (typeof s !== 'string' || s === '' || /[\s{}:*?[\]]/.test(s)) {
      throw new SupplierRegistryConfigError(
        `suppliers[${i}]`,
        'must be a non-empty operator address without spaces, braces, colons or glob characters',
      );
    }
    if (!out.includes(s)) out.push(s);
  });
  return out;
}
