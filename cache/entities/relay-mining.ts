/**
 * Values fixed per (service, height): the relay mining difficulty and the compute units per
 * relay in effect at a height. Immutable once the height is committed, so both tiers keep them
 * 30 min. Keys `ha:cache:relay_mining_difficulty:{service}:{height}` and
 * `ha:cache:compute_units_per_relay:{service}:{height}` (this implementation's additions).
 */
import type { ChainQueryClient } from '../../chain/index.js';
import { pb } from '../../protocol/index.js';
import { jsonInvalidation } from '../invalidation.js';
import type { CacheEntity } from '../tiered-cache.js';
import {
  MINUTE_MS,
  parseServiceAtHeightId,
  protoEncoder,
  serviceAtHeightId,
  type EntityTtlConfig,
  type ServiceAtHeight,
} from './common.js';

export type RelayMiningDifficulty = pb.serviceDifficulty.RelayMiningDifficulty;

export function relayMiningDifficultyEntity(
  chain: Pick<ChainQueryClient, 'getRelayMiningDifficultyAtHeight'>,
  ttl: EntityTtlConfig = {},
): CacheEntity<ServiceAtHeight, RelayMiningDifficulty> {
  const l2TtlMs = ttl.l2_ttl_ms ?? 30 * MINUTE_MS;
  return {
    type: 'relay_mining_difficulty',
    id: serviceAtHeightId,
    parseId: parseServiceAtHeightId,
    l2Key: (keys, a) => keys.relayMiningDifficultyKey(a.serviceId, a.height),
    lockKey: (keys, a) => keys.relayMiningDifficultyLockKey(a.serviceId, a.height),
    encode: protoEncoder(pb.serviceDifficulty.RelayMiningDifficulty),
    decode: (bytes) => pb.serviceDifficulty.RelayMiningDifficulty.decode(bytes),
    load: (a) => chain.getRelayMiningDifficultyAtHeight(a.serviceId, a.height),
    l1TtlMs: ttl.l1_ttl_ms ?? 30 * MINUTE_MS,
    l2TtlMs: () => l2TtlMs,
    invalidation: jsonInvalidation('relay_mining_difficulty', 'id'),
  };
}

const CuprMessage = pb.serviceQuery.QueryComputeUnitsPerRelayAtHeightResponse;

export function computeUnitsPerRelayEntity(
  chain: Pick<ChainQueryClient, 'getComputeUnitsPerRelayAtHeight'>,
  ttl: EntityTtlConfig = {},
): CacheEntity<ServiceAtHeight, bigint> {
  const l2TtlMs = ttl.l2_ttl_ms ?? 30 * MINUTE_MS;
  return {
    type: 'compute_units_per_relay',
    id: serviceAtHeightId,
    parseId: parseServiceAtHeightId,
    l2Key: (keys, a) => keys.computeUnitsPerRelayKey(a.serviceId, a.height),
    lockKey: (keys, a) => keys.computeUnitsPerRelayLockKey(a.serviceId, a.height),
    encode: (computeUnitsPerRelay) => CuprMessage.encode({ computeUnitsPerRelay }).finish(),
    decode: (bytes) => CuprMessage.decode(bytes).computeUnitsPerRelay,
    load: (a) => chain.getComputeUnitsPerRelayAtHeight(a.serviceId, a.height),
    l1TtlMs: ttl.l1_ttl_ms ?? 30 * MINUTE_MS,
    l2TtlMs: () => l2TtlMs,
    invalidation: jsonInvalidation('compute_units_per_relay', 'id'),
  };
}
