/**
 * Reading SMST roots (spec smst.md §2 and §9): `hash ‖ sum(8 BE) ‖ count(8 BE)`, sum first. The
 * library accepts any root whose hash part is a power of two long; a claim needs exactly 48
 * bytes, a non-zero count and sum, and sum = count × compute units per relay.
 */
import { DIGEST_BYTES, copyBytes, readUint64BE } from './encoding.js';
import { SmstRootInvalidError } from './errors.js';

export const ROOT_BYTES = DIGEST_BYTES;

export interface MerkleSumRoot {
  hash: Uint8Array;
  sum: bigint;
  count: bigint;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/**
 * Upstream MerkleSumRoot Sum()/Count(): the last 16 bytes are sum then count, and the bytes
 * before them must have a power-of-two length. Throws SmstRootInvalidError otherwise.
 */
export function parseMerkleSumRoot(root: Uint8Array): MerkleSumRoot {
  const hashBytes = root.length - 16;
  if (!isPowerOfTwo(hashBytes)) {
    throw new SmstRootInvalidError(
      `invalid root length ${root.length}: the hash part must be a power of two`,
    );
  }
  return {
    hash: copyBytes(root, 0, hashBytes),
    sum: readUint64BE(root, hashBytes),
    count: readUint64BE(root, hashBytes + 8),
  };
}

export type ClaimRootCheck =
  | { ok: true; sum: bigint; count: bigint }
  | { ok: false; code: 'ROOT_LENGTH' | 'ROOT_EMPTY' | 'ROOT_SUM_MISMATCH'; reason: string };

/**
 * MsgCreateClaim's root checks: exactly 48 bytes, count > 0, sum > 0 and, when the compute units
 * per relay at the session start are given, sum == count × computeUnitsPerRelay.
 */
export function checkClaimRoot(root: Uint8Array, computeUnitsPerRelay?: bigint): ClaimRootCheck {
  if (root.length !== ROOT_BYTES) {
    return { ok: false, code: 'ROOT_LENGTH', reason: `root must be ${ROOT_BYTES} bytes, got ${root.length}` };
  }
  const { sum, count } = parseMerkleSumRoot(root);
  if (count === 0n) return { ok: false, code: 'ROOT_EMPTY', reason: 'root count is zero' };
  if (sum === 0n) return { ok: false, code: 'ROOT_EMPTY', reason: 'root sum is zero' };
  if (computeUnitsPerRelay !== undefined && sum !== count * computeUnitsPerRelay) {
    return {
      ok: false,
      code: 'ROOT_SUM_MISMATCH',
      reason: `root sum ${sum} != count ${count} × compute units per relay ${computeUnitsPerRelay}`,
    };
  }
  return { ok: true, sum, count };
}
