/**
 * On-chain suppliers: `ha:cache:supplier:{operator}`, protobuf Supplier, L1 60 s, L2 5 min.
 * (Upstream's relayer reads only the miner-written registry view `ha:supplier:{operator}`; this
 * cache is the chain record. Invalidations share upstream's supplier channel and field.)
 */
import type { ChainQueryClient } from '../../chain/index.js';
import { pb } from '../../protocol/index.js';
import { jsonInvalidation } from '../invalidation.js';
import type { CacheEntity } from '../tiered-cache.js';
import { MINUTE_MS, protoEncoder, type EntityTtlConfig } from './common.js';

export type Supplier = pb.sharedSupplier.Supplier;

export function supplierEntity(
  chain: Pick<ChainQueryClient, 'getSupplier'>,
  ttl: EntityTtlConfig = {},
): CacheEntity<string, Supplier> {
  const l2TtlMs = ttl.l2_ttl_ms ?? 5 * MINUTE_MS;
  return {
    type: 'supplier',
    id: (operator) => operator,
    parseId: (id) => id,
    l2Key: (keys, operator) => keys.supplierCacheKey(operator),
    lockKey: (keys, operator) => keys.supplierCacheLockKey(operator),
    l2Pattern: (keys) => keys.cachePattern('supplier'),
    encode: protoEncoder(pb.sharedSupplier.Supplier),
    decode: (bytes) => pb.sharedSupplier.Supplier.decode(bytes),
    load: (operator) => chain.getSupplier(operator),
    l1TtlMs: ttl.l1_ttl_ms ?? MINUTE_MS,
    l2TtlMs: () => l2TtlMs,
    invalidation: jsonInvalidation('supplier', 'operator_address'),
  };
}
