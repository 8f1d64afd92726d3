/**
 * Params: shared params at a height (`ha:cache:params:shared:{height}`, L1 30 min, L2 one block),
 * the shared params singleton (`ha:cache:shared_params`), the proof params singleton
 * (`ha:cache:proof_params`) and the session params singleton (`ha:cache:session_params`).
 * Values are protobuf Params.
 */
import type { ChainQueryClient } from '../../chain/index.js';
import { pb } from '../../protocol/index.js';
import { heightInvalidation, jsonInvalidation } from '../invalidation.js';
import type { CacheEntity } from '../tiered-cache.js';
import {
  BLOCK_TIME_MS,
  MINUTE_MS,
  SECOND_MS,
  SINGLETON_ID,
  parseHeightId,
  protoEncoder,
  type EntityTtlConfig,
} from './common.js';

export type SharedParams = pb.sharedParams.Params;
export type ProofParams = pb.proofParams.Params;
export type SessionParamsValue = pb.sessionParams.Params;

export function sharedParamsAtHeightEntity(
  chain: Pick<ChainQueryClient, 'getSharedParamsAtHeight'>,
  ttl: EntityTtlConfig = {},
): CacheEntity<number, SharedParams> {
  const l2TtlMs = ttl.l2_ttl_ms ?? BLOCK_TIME_MS;
  return {
    type: 'shared_params_at_height',
    id: (height) => String(height),
    parseId: parseHeightId,
    l2Key: (keys, height) => keys.sharedParamsAtHeightKey(height),
    lockKey: (keys, height) => keys.sharedParamsAtHeightLockKey(height),
    encode: protoEncoder(pb.sharedParams.Params),
    decode: (bytes) => pb.sharedParams.Params.decode(bytes),
    load: (height) => chain.getSharedParamsAtHeight(height),
    l1TtlMs: ttl.l1_ttl_ms ?? 30 * MINUTE_MS,
    l2TtlMs: () => l2TtlMs,
    invalidation: heightInvalidation(),
  };
}

/** L2 TTL 2 × num_blocks_per_session blocks, as upstream. */
export function sharedParamsEntity(
  chain: Pick<ChainQueryClient, 'getSharedParams'>,
  ttl: EntityTtlConfig = {},
): CacheEntity<null, SharedParams> {
  return {
    type: 'shared_params',
    id: () => SINGLETON_ID,
    parseId: () => null,
    l2Key: (keys) => keys.sharedParamsKey(),
    lockKey: (keys) => keys.sharedParamsLockKey(),
    encode: protoEncoder(pb.sharedParams.Params),
    decode: (bytes) => pb.sharedParams.Params.decode(bytes),
    load: () => chain.getSharedParams(),
    l1TtlMs: ttl.l1_ttl_ms ?? MINUTE_MS,
    l2TtlMs: (p) => ttl.l2_ttl_ms ?? 2 * Math.max(1, Number(p.numBlocksPerSession)) * BLOCK_TIME_MS,
    invalidation: jsonInvalidation('shared_params', 'id'),
  };
}

/** L2 TTL 10 min unless configured (upstream: num_blocks_per_session blocks). */
export function proofParamsEntity(
  chain: Pick<ChainQueryClient, 'getProofParams'>,
  ttl: EntityTtlConfig = {},
): CacheEntity<null, ProofParams> {
  const l2TtlMs = ttl.l2_ttl_ms ?? 10 * MINUTE_MS;
  return {
    type: 'proof_params',
    id: () => SINGLETON_ID,
    parseId: () => null,
    l2Key: (keys) => keys.proofParamsKey(),
    lockKey: (keys) => keys.proofParamsLockKey(),
    encode: protoEncoder(pb.proofParams.Params),
    decode: (bytes) => pb.proofParams.Params.decode(bytes),
    load: () => chain.getProofParams(),
    l1TtlMs: ttl.l1_ttl_ms ?? MINUTE_MS,
    l2TtlMs: () => l2TtlMs,
    invalidation: jsonInvalidation('proof_params', 'id'),
  };
}

/**
 * Session params (num_suppliers_per_session). Upstream reads them through the query client with a
 * 90 s client-side cache and never writes Redis; here they share L2 like the other singletons,
 * kept 90 s there by default so a parameter change is seen about as soon as upstream sees it.
 */
export function sessionParamsEntity(
  chain: Pick<ChainQueryClient, 'getSessionParams'>,
  ttl: EntityTtlConfig = {},
): CacheEntity<null, SessionParamsValue> {
  const l2TtlMs = ttl.l2_ttl_ms ?? 90 * SECOND_MS;
  return {
    type: 'session_params',
    id: () => SINGLETON_ID,
    parseId: () => null,
    l2Key: (keys) => keys.sessionParamsKey(),
    lockKey: (keys) => keys.sessionParamsLockKey(),
    encode: protoEncoder(pb.sessionParams.Params),
    decode: (bytes) => pb.sessionParams.Params.decode(bytes),
    load: () => chain.getSessionParams(),
    l1TtlMs: ttl.l1_ttl_ms ?? MINUTE_MS,
    l2TtlMs: () => l2TtlMs,
    invalidation: jsonInvalidation('session_params', 'id'),
  };
}
