/** Services: `ha:cache:service:{service_id}`, gogoproto Service, L1 60 s, L2 5 min. */
import type { ChainQueryClient } from '../../chain/index.js';
import { pb } from '../../protocol/index.js';
import { jsonInvalidation } from '../invalidation.js';
import type { CacheEntity } from '../tiered-cache.js';
import { MINUTE_MS, protoEncoder, type EntityTtlConfig } from './common.js';

export type Service = pb.sharedService.Service;

export function serviceEntity(
  chain: Pick<ChainQueryClient, 'getService'>,
  ttl: EntityTtlConfig = {},
): CacheEntity<string, Service> {
  const l2TtlMs = ttl.l2_ttl_ms ?? 5 * MINUTE_MS;
  return {
    type: 'service',
    id: (serviceId) => serviceId,
    parseId: (id) => id,
    l2Key: (keys, serviceId) => keys.serviceKey(serviceId),
    lockKey: (keys, serviceId) => keys.serviceLockKey(serviceId),
    l2Pattern: (keys) => keys.cachePattern('service'),
    encode: protoEncoder(pb.sharedService.Service),
    decode: (bytes) => pb.sharedService.Service.decode(bytes),
    load: (serviceId) => chain.getService(serviceId),
    l1TtlMs: ttl.l1_ttl_ms ?? MINUTE_MS,
    l2TtlMs: () => l2TtlMs,
    invalidation: jsonInvalidation('service', 'service_id'),
  };
}
