/** Applications: `ha:cache:application:{address}`, gogoproto Application, L1 60 s, L2 5 min. */
import type { ChainQueryClient } from '../../chain/index.js';
import { pb } from '../../protocol/index.js';
import { jsonInvalidation } from '../invalidation.js';
import type { CacheEntity } from '../tiered-cache.js';
import { MINUTE_MS, protoEncoder, type EntityTtlConfig } from './common.js';

export type Application = pb.applicationTypes.Application;

export function applicationEntity(
  chain: Pick<ChainQueryClient, 'getApplication'>,
  ttl: EntityTtlConfig = {},
): CacheEntity<string, Application> {
  const l2TtlMs = ttl.l2_ttl_ms ?? 5 * MINUTE_MS;
  return {
    type: 'application',
    id: (address) => address,
    parseId: (id) => id,
    l2Key: (keys, address) => keys.applicationKey(address),
    lockKey: (keys, address) => keys.applicationLockKey(address),
    l2Pattern: (keys) => keys.cachePattern('application'),
    encode: protoEncoder(pb.applicationTypes.Application),
    decode: (bytes) => pb.applicationTypes.Application.decode(bytes),
    load: (address) => chain.getApplication(address),
    l1TtlMs: ttl.l1_ttl_ms ?? MINUTE_MS,
    l2TtlMs: () => l2TtlMs,
    invalidation: jsonInvalidation('application', 'address'),
  };
}
