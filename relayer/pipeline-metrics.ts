/**
 * Series of the relay pipeline's building blocks (supplier gate, mined-relay publisher, meter
 * inputs) that RelayerMetrics does not hold. Registered on the registry the caller gives; labels
 * are bounded (service IDs, transport names, fixed reason sets), never addresses or session IDs.
 */
import { Counter, type Registry } from 'prom-client';

export class RelayPipelineMetrics {
  /** Upstream name: served for a (service, transport) the supplier's stake does not declare. */
  readonly undeclaredTransportServed: Counter<'service_id' | 'rpc_type'>;
  /** Upstream name: served for an owned supplier whose registry entry is absent or unreadable. */
  readonly relaysServedOptimistically: Counter<'service_id' | 'rpc_type'>;
  /** Mined relays checked against the base target instead of the chain's (reason: why). */
  readonly difficultyBaseFallbacks: Counter<'service_id' | 'reason'>;
  /** CUPR lookups retried before a mined relay could be weighted. */
  readonly cuprLookupRetries: Counter<'service_id'>;
  /** Service factor entries ignored because their JSON is malformed (scope: service | default). */
  readonly serviceFactorInvalid: Counter<'scope'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.undeclaredTransportServed = new Counter({
      name: 'ha_relayer_undeclared_transport_served_total',
      help: "Relays served for a (service, transport) the supplier's on-chain stake does not declare",
      labelNames: ['service_id', 'rpc_type'],
      registers,
    });
    this.relaysServedOptimistically = new Counter({
      name: 'ha_relayer_relays_served_optimistically_total',
      help: 'Relays served for an owned supplier whose registry entry is missing or could not be read',
      labelNames: ['service_id', 'rpc_type'],
      registers,
    });
    this.difficultyBaseFallbacks = new Counter({
      name: 'ha_relayer_difficulty_base_fallbacks_total',
      help: 'Mined relays checked against the base difficulty (no_start_height, not_found, empty_target, lookup_error)',
      labelNames: ['service_id', 'reason'],
      registers,
    });
    this.cuprLookupRetries = new Counter({
      name: 'ha_relayer_cupr_lookup_retries_total',
      help: 'Retries of the compute-units-per-relay lookup for a mined relay',
      labelNames: ['service_id'],
      registers,
    });
    this.serviceFactorInvalid = new Counter({
      name: 'ha_relayer_service_factor_invalid_total',
      help: 'Service factor Redis entries ignored because they are not {"factor": <non-negative number>}',
      labelNames: ['scope'],
      registers,
    });
  }
}
