/** Stream publisher series (upstream `ha_transport_redis_*` names). No addresses as labels. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export class StreamPublisherMetrics {
  readonly published: Counter<'service_id'>;
  readonly publishErrors: Counter<'reason'>;
  readonly dropped: Counter<'reason'>;
  readonly buffered: Gauge;
  readonly batchSize: Histogram;

  constructor(registry: Registry) {
    const registers = [registry];
    this.published = new Counter({
      name: 'ha_transport_redis_published_total',
      help: 'Mined relays written to a supplier stream (XADD acknowledged by Redis)',
      labelNames: ['service_id'],
      registers,
    });
    this.publishErrors = new Counter({
      name: 'ha_transport_redis_publish_errors_total',
      help: 'Failed publish attempts by reason (connection: kept buffered and retried; command: dropped)',
      labelNames: ['reason'],
      registers,
    });
    this.dropped = new Counter({
      name: 'ha_transport_redis_publish_dropped_total',
      help: 'Mined relays never written, by reason (buffer_full, invalid, closed, command_error)',
      labelNames: ['reason'],
      registers,
    });
    this.buffered = new Gauge({
      name: 'ha_transport_redis_publish_buffered',
      help: 'Mined relays waiting in the in-memory publish buffer',
      registers,
    });
    this.batchSize = new Histogram({
      name: 'ha_transport_redis_publish_batch_size',
      help: 'Relays per pipelined XADD batch',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
      registers,
    });
  }
}
