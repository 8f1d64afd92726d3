/**
 * The relayer's Prometheus series (names as upstream `ha_relayer_*`), registered on the registry
 * the caller gives. No session IDs, URLs or addresses as label values.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export class RelayerMetrics {
  readonly relaysReceived: Counter<'service_id' | 'rpc_type'>;
  readonly relaysServed: Counter<'service_id' | 'rpc_type' | 'status_code'>;
  readonly relaysRejected: Counter<'service_id' | 'reason'>;
  readonly relaysDropped: Counter<'service_id' | 'reason'>;
  readonly relaysPublished: Counter<'service_id'>;
  readonly relaysSkippedDifficulty: Counter<'service_id'>;
  readonly fastFails: Counter<'service_id' | 'rpc_type'>;
  readonly relayDuration: Histogram<'service_id' | 'rpc_type'>;
  readonly inFlight: Gauge;
  readonly lateRelays: Counter<'service_id'>;
  readonly meterDecisions: Counter<'service_id' | 'result'>;
  readonly meterRedisErrors: Counter<'operation'>;
  readonly meterSessionsActive: Gauge;
  readonly backendRequests: Counter<'service_id' | 'rpc_type' | 'outcome'>;
  readonly backendDuration: Histogram<'service_id' | 'rpc_type'>;
  readonly backendRetries: Counter<'service_id' | 'rpc_type'>;
  readonly backendMissing: Counter<'service_id' | 'rpc_type'>;
  readonly backendHealthy: Gauge<'service_id' | 'rpc_type' | 'endpoint'>;
  readonly breakerTransitions: Counter<'service_id' | 'rpc_type' | 'to'>;
  readonly healthChecks: Counter<'service_id' | 'rpc_type' | 'result'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.relaysReceived = new Counter({
      name: 'ha_relayer_relays_received_total',
      help: 'Relay requests received, by service and transport',
      labelNames: ['service_id', 'rpc_type'],
      registers,
    });
    this.relaysServed = new Counter({
      name: 'ha_relayer_relays_served_total',
      help: 'Relays answered with a signed response, by the backend status code',
      labelNames: ['service_id', 'rpc_type', 'status_code'],
      registers,
    });
    this.relaysRejected = new Counter({
      name: 'ha_relayer_relays_rejected_total',
      help: 'Relays refused before or instead of a signed answer, by reason',
      labelNames: ['service_id', 'reason'],
      registers,
    });
    this.relaysDropped = new Counter({
      name: 'ha_relayer_relays_dropped_total',
      help: 'Relays served but not published (optimistic validation or meter failed, publish refused), by reason',
      labelNames: ['service_id', 'reason'],
      registers,
    });
    this.relaysPublished = new Counter({
      name: 'ha_relayer_relays_published_total',
      help: 'Mined relays handed to the stream publisher',
      labelNames: ['service_id'],
      registers,
    });
    this.relaysSkippedDifficulty = new Counter({
      name: 'ha_relayer_relays_skipped_difficulty_total',
      help: 'Served relays whose hash does not meet the relay mining difficulty (not rewardable)',
      labelNames: ['service_id'],
      registers,
    });
    this.fastFails = new Counter({
      name: 'ha_relayer_fast_fails_total',
      help: 'Relays refused with 503 because the (service, transport) pool has no healthy endpoint',
      labelNames: ['service_id', 'rpc_type'],
      registers,
    });
    this.relayDuration = new Histogram({
      name: 'ha_relayer_relay_duration_seconds',
      help: 'Time from a complete request to the last byte of the answer',
      labelNames: ['service_id', 'rpc_type'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.inFlight = new Gauge({
      name: 'ha_relayer_relays_in_flight',
      help: 'Relays being handled now (graceful shutdown waits for these)',
      registers,
    });
    this.lateRelays = new Counter({
      name: 'ha_relayer_late_relays_total',
      help: 'Relays served in the last block of the grace period or later (may not be rewarded)',
      labelNames: ['service_id'],
      registers,
    });
    this.meterDecisions = new Counter({
      name: 'ha_relayer_relay_meter_decisions_total',
      help: 'Relay meter decisions by result (allowed, exhausted, error_open, error_closed, disabled)',
      labelNames: ['service_id', 'result'],
      registers,
    });
    this.meterRedisErrors = new Counter({
      name: 'ha_relayer_relay_meter_redis_errors_total',
      help: 'Relay meter Redis/parameter failures by operation',
      labelNames: ['operation'],
      registers,
    });
    this.meterSessionsActive = new Gauge({
      name: 'ha_relayer_relay_meter_sessions_active',
      help: 'Members of the shared active meter sessions set (SCARD)',
      registers,
    });
    this.backendRequests = new Counter({
      name: 'ha_relayer_backend_requests_total',
      help: 'Backend attempts by outcome (ok, http_4xx, http_5xx, timeout, network_error, cancelled)',
      labelNames: ['service_id', 'rpc_type', 'outcome'],
      registers,
    });
    this.backendDuration = new Histogram({
      name: 'ha_relayer_backend_request_duration_seconds',
      help: 'Backend attempt duration until response headers',
      labelNames: ['service_id', 'rpc_type'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.backendRetries = new Counter({
      name: 'ha_relayer_backend_retries_total',
      help: 'Backend retries on another endpoint',
      labelNames: ['service_id', 'rpc_type'],
      registers,
    });
    this.backendMissing = new Counter({
      name: 'ha_relayer_backend_missing_total',
      help: 'Relays for a (service, transport) without a configured backend',
      labelNames: ['service_id', 'rpc_type'],
      registers,
    });
    this.backendHealthy = new Gauge({
      name: 'ha_relayer_backend_healthy',
      help: '1 when the endpoint is healthy (breaker closed), else 0; endpoint = configured name',
      labelNames: ['service_id', 'rpc_type', 'endpoint'],
      registers,
    });
    this.breakerTransitions = new Counter({
      name: 'ha_relayer_backend_breaker_transitions_total',
      help: 'Circuit breaker transitions by target state (open, half_open, closed)',
      labelNames: ['service_id', 'rpc_type', 'to'],
      registers,
    });
    this.healthChecks = new Counter({
      name: 'ha_relayer_backend_health_checks_total',
      help: 'Active health probes by result (ok, fail)',
      labelNames: ['service_id', 'rpc_type', 'result'],
      registers,
    });
  }
}
