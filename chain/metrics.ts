/** Prometheus series of the chain client, registered on the registry the caller gives. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface ChainMetrics {
  /** One observation per RPC attempt; `method` is the gRPC path or RPC name, `outcome` ok or an error code. */
  rpcDuration: Histogram<'method' | 'outcome'>;
  rpcRetries: Counter<'method'>;
  blockHeight: Gauge;
  blockSourceReconnects: Counter;
  /** Blocks delivered from an HTTP gap fill rather than from their own header event. */
  blocksBackfilled: Counter;
  txSubmissions: Counter<'kind' | 'result'>;
}

/** Latency buckets for node round trips (seconds). */
const RPC_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createChainMetrics(registry: Registry): ChainMetrics {
  const registers = [registry];
  return {
    rpcDuration: new Histogram({
      name: 'ha_chain_rpc_duration_seconds',
      help: 'Duration of one RPC attempt to the full node',
      labelNames: ['method', 'outcome'] as const,
      buckets: RPC_BUCKETS_SECONDS,
      registers,
    }),
    rpcRetries: new Counter({
      name: 'ha_chain_rpc_retries_total',
      help: 'RPC attempts retried after a retryable failure',
      labelNames: ['method'] as const,
      registers,
    }),
    blockHeight: new Gauge({
      name: 'ha_chain_block_height',
      help: 'Height of the newest block delivered by the block source',
      registers,
    }),
    blockSourceReconnects: new Counter({
      name: 'ha_chain_block_source_reconnects_total',
      help: 'Websocket subscriptions lost and scheduled for reconnection',
      registers,
    }),
    blocksBackfilled: new Counter({
      name: 'ha_chain_blocks_backfilled_total',
      help: 'Blocks delivered from an HTTP gap fill instead of their own header event',
      registers,
    }),
    txSubmissions: new Counter({
      name: 'ha_chain_tx_submissions_total',
      help: 'Transactions submitted, by message kind and result',
      labelNames: ['kind', 'result'] as const,
      registers,
    }),
  };
}
