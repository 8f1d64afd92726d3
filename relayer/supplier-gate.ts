/**
 * Supplier registry gate of the HTTP relay pipeline (relayer.md §3 steps 10–11, §3.1): may this
 * relayer serve a relay addressed to `supplier` for `serviceId`, judged by the SupplierState the
 * miner writes to `{base}:supplier:{operator}`.
 *
 * | registry                               | decision                                             |
 * |----------------------------------------|------------------------------------------------------|
 * | read error, fail_behavior open          | serve optimistically if this relayer holds the key   |
 * | read error, fail_behavior closed        | refuse `supplier_cache_error`                        |
 * | no entry                                | serve optimistically if the key is held, else refuse |
 * | not staked / status not_staked          | refuse `supplier_inactive`                           |
 * | no services                             | refuse `no_services`                                 |
 * | service not listed                      | refuse `wrong_service`                               |
 * | staked, active or unstaking, listed     | serve                                                |
 *
 * Upstream's fail-open path builds a synthetic "active but not staked" state that then fails its
 * own active test, so fail-open refuses every relay while Redis is down. Here fail-open does what
 * it says for suppliers this relayer signs for: the miner remains the judge of what is claimed.
 *
 * A served relay whose transport the supplier's stake does not declare (the entry lists endpoints
 * and none is this (service, transport)) is counted in
 * `ha_relayer_undeclared_transport_served_total` and warned about once per (supplier, service,
 * transport); it is never refused. Every refusal is answered with HTTP 503 by the caller.
 */
import type { Logger } from 'pino';
import type { SupplierState, SupplierStateCache } from '../cache/index.js';
import { BACKEND_TYPES } from './config.js';
import type { RelayPipelineMetrics } from './pipeline-metrics.js';

export type GateRefusal =
  'supplier_cache_error' | 'supplier_not_found' | 'supplier_inactive' | 'no_services' | 'wrong_service';

export type GateDecision =
  { ok: true; optimistic: boolean } | { ok: false; reason: GateRefusal; message: string };

/** HTTP status of every refusal. */
export const GATE_REFUSAL_STATUS = 503;

export interface SupplierGateDeps {
  states: Pick<SupplierStateCache, 'get'>;
  /** Which supplier keys this relayer holds (RelaySigner satisfies it). */
  suppliers: { owns(address: string): boolean };
  log: Logger;
  metrics: Pick<RelayPipelineMetrics, 'undeclaredTransportServed' | 'relaysServedOptimistically'>;
}

export interface SupplierGateConfig {
  /** relay_meter.fail_behavior: what a registry read error means. */
  fail_behavior: 'open' | 'closed';
}

const KNOWN_TRANSPORTS: ReadonlySet<string> = new Set(BACKEND_TYPES);

/** The `rpc_type` label: a known backend type, else `other` (the header value is client-chosen). */
export function transportLabel(backendType: string): string {
  const t = backendType.toLowerCase();
  return KNOWN_TRANSPORTS.has(t) ? t : 'other';
}

/** Bound on remembered (supplier, service, transport) warnings; the set is forgotten when full. */
const MAX_WARNED = 10_000;

export class SupplierGate {
  private readonly log: Logger;
  private readonly warned = new Set<string>();

  constructor(
    private readonly deps: SupplierGateDeps,
    private readonly cfg: SupplierGateConfig,
  ) {
    this.log = deps.log.child({ component: 'supplier_gate' });
  }

  async check(supplier: string, serviceId: string, backendType: string): Promise<GateDecision> {
    let state: SupplierState | undefined;
    try {
      state = await this.deps.states.get(supplier);
    } catch (err) {
      if (this.cfg.fail_behavior === 'open' && this.deps.suppliers.owns(supplier)) {
        this.log.debug({ err, supplier, service_id: serviceId }, 'supplier registry unreadable; serving');
        return this.optimistic(serviceId, backendType);
      }
      this.log.debug({ err, supplier, service_id: serviceId }, 'supplier registry unreadable; refusing');
      return {
        ok: false,
        reason: 'supplier_cache_error',
        message: 'failed to verify supplier state',
      };
    }
    if (state === undefined) {
      if (this.deps.suppliers.owns(supplier)) return this.optimistic(serviceId, backendType);
      return {
        ok: false,
        reason: 'supplier_not_found',
        message: `supplier ${supplier} not registered with any miner`,
      };
    }
    if (!state.staked || state.status === 'not_staked') {
      return {
        ok: false,
        reason: 'supplier_inactive',
        message: `supplier ${supplier} is ${state.staked ? state.status : 'not_staked'}`,
      };
    }
    if (state.services.length === 0) {
      return {
        ok: false,
        reason: 'no_services',
        message: `supplier ${supplier} has no services registered`,
      };
    }
    if (!state.services.includes(serviceId)) {
      return {
        ok: false,
        reason: 'wrong_service',
        message: `supplier ${supplier} not staked for service ${serviceId}`,
      };
    }
    this.checkTransportDeclared(state, supplier, serviceId, backendType);
    return { ok: true, optimistic: false };
  }

  private optimistic(serviceId: string, backendType: string): GateDecision {
    this.deps.metrics.relaysServedOptimistically.inc({
      service_id: serviceId,
      rpc_type: transportLabel(backendType),
    });
    return { ok: true, optimistic: true };
  }

  private checkTransportDeclared(
    state: SupplierState,
    supplier: string,
    serviceId: string,
    backendType: string,
  ): void {
    const endpoints = state.staked_endpoints;
    if (endpoints === undefined || endpoints.length === 0) return;
    const transport = backendType.toLowerCase();
    if (endpoints.some((e) => e.service_id === serviceId && e.rpc_type.toLowerCase() === transport)) return;
    this.deps.metrics.undeclaredTransportServed.inc({
      service_id: serviceId,
      rpc_type: transportLabel(backendType),
    });
    const tuple = `${supplier}\u0000${serviceId}\u0000${transport}`;
    if (this.warned.has(tuple)) return;
    if (this.warned.size >= MAX_WARNED) this.warned.clear();
    this.warned.add(tuple);
    this.log.warn(
      { supplier, service_id: serviceId, rpc_type: backendType },
      "serving a transport this supplier's on-chain stake does not declare for the service; the relay is still served and claimable — declare the endpoint on-chain so gateways route it deliberately",
    );
  }
}
