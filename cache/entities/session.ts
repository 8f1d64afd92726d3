/**
 * Sessions: `ha:cache:session:{app}:{service}:{height}`, protobuf Session (upstream stores JSON),
 * L1 30 min; L2 until session end + grace + 2 blocks at 30 s/block + 10 s, at least one block.
 */
import { InvalidInputError } from '../../core/index.js';
import type { ChainQueryClient } from '../../chain/index.js';
import { pb } from '../../protocol/index.js';
import { jsonInvalidation } from '../invalidation.js';
import type { CacheEntity } from '../tiered-cache.js';
import { BLOCK_TIME_MS, MINUTE_MS, SECOND_MS, protoEncoder } from './common.js';

export type Session = pb.sessionTypes.Session;

export interface SessionArgs {
  appAddress: string;
  serviceId: string;
  height: number;
}

export interface SessionEntityConfig {
  l1_ttl_ms?: number;
  /** On-chain grace_period_end_offset_blocks to keep sessions past their end (default 1). */
  grace_period_blocks?: number;
}

export function sessionId(a: SessionArgs): string {
  return `${a.appAddress}:${a.serviceId}:${a.height}`;
}

export function parseSessionId(id: string): SessionArgs {
  const m = /^([^:]+):([^:]+):(\d+)$/.exec(id);
  if (m === null)
    throw new InvalidInputError('session cache id', `expected {app}:{service}:{height}, got ${id}`);
  return { appAddress: m[1]!, serviceId: m[2]!, height: Number(m[3]) };
}

/** L2 lifetime of a session fetched at `height`. */
export function sessionL2TtlMs(session: Session, height: number, graceBlocks: number): number {
  const end = Number(session.header?.sessionEndBlockHeight ?? 0n);
  const blocks = Math.max(1, end - height + graceBlocks + 2);
  return blocks * BLOCK_TIME_MS + 10 * SECOND_MS;
}

export function sessionEntity(
  chain: Pick<ChainQueryClient, 'getSession'>,
  cfg: SessionEntityConfig = {},
): CacheEntity<SessionArgs, Session> {
  const grace = cfg.grace_period_blocks ?? 1;
  return {
    type: 'session',
    id: sessionId,
    parseId: parseSessionId,
    l2Key: (keys, a) => keys.sessionKey(a.appAddress, a.serviceId, a.height),
    lockKey: (keys, a) => keys.sessionLockKey(a.appAddress, a.serviceId, a.height),
    encode: protoEncoder(pb.sessionTypes.Session),
    decode: (bytes) => pb.sessionTypes.Session.decode(bytes),
    load: (a) => chain.getSession(a.appAddress, a.serviceId, a.height),
    l1TtlMs: cfg.l1_ttl_ms ?? 30 * MINUTE_MS,
    l2TtlMs: (session, a) => sessionL2TtlMs(session, a.height, grace),
    invalidation: jsonInvalidation('session', 'id'),
  };
}
