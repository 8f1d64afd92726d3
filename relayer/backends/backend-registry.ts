/** Every backend pool of the relayer, built from the config, looked up by exact (service, type). */
import type { Logger } from 'pino';
import {
  BACKEND_TYPES,
  resolvePoolProfile,
  resolveTimeoutProfile,
  type BackendType,
  type RelayerConfig,
} from '../config.js';
import type { RelayerMetrics } from '../metrics.js';
import { BackendPool } from './backend-pool.js';

const RPC_TYPE_NUMBERS: Readonly<Record<string, BackendType>> = {
  '1': 'grpc',
  '2': 'websocket',
  '3': 'jsonrpc',
  '4': 'rest',
  '5': 'cometbft',
};

/** `Rpc-Type` header value → backend type: numbers map to names, anything else is used as-is. */
export function rpcTypeToBackendType(rpcType: string): string {
  return RPC_TYPE_NUMBERS[rpcType] ?? rpcType;
}

export class BackendRegistry {
  private readonly pools = new Map<string, BackendPool>();

  constructor(
    private readonly cfg: RelayerConfig,
    private readonly deps: { log: Logger; metrics: RelayerMetrics; nowMs?: () => number },
  ) {
    for (const [serviceId, svc] of Object.entries(cfg.services)) {
      for (const [type, backend] of Object.entries(svc.backends)) {
        if (!(BACKEND_TYPES as readonly string[]).includes(type)) continue;
        const pool = new BackendPool(
          {
            serviceId,
            type: type as BackendType,
            backend,
            timeouts: resolveTimeoutProfile(cfg, serviceId),
            pool: resolvePoolProfile(cfg, serviceId),
          },
          deps,
        );
        this.pools.set(pool.key, pool);
      }
    }
  }

  /** The pool by exact type (no fallback); a miss on a configured service is counted. */
  get(serviceId: string, type: string): BackendPool | undefined {
    const p = this.pools.get(`${serviceId}:${type}`);
    if (p === undefined && this.cfg.services[serviceId] !== undefined) {
      this.deps.metrics.backendMissing.inc({ service_id: serviceId, rpc_type: type });
    }
    return p;
  }

  /** The type of a relay without an `Rpc-Type` header. */
  defaultType(serviceId: string): string {
    return this.cfg.services[serviceId]?.default_backend ?? 'jsonrpc';
  }

  all(): BackendPool[] {
    return [...this.pools.values()];
  }

  startHealthChecks(): void {
    for (const p of this.pools.values()) p.startHealthChecks();
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()));
  }
}
