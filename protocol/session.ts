/**
 * Session grid and window math, session ids and supplier selection, as the chain computes them
 * (poktroll x/shared session.go, x/session session_hydrator.go). Heights are block heights as
 * safe integers; every division truncates toward zero like Go's.
 */
import { InvalidInputError, bytesToHex, compareBytes, concatBytes } from '../core/index.js';
import { sha3_256 } from './hash.js';

/** The shared params the session math reads (pocket.shared.Params, uint64 fields as numbers). */
export interface SessionParams {
  num_blocks_per_session: number;
  grace_period_end_offset_blocks: number;
  claim_window_open_offset_blocks: number;
  claim_window_close_offset_blocks: number;
  proof_window_open_offset_blocks: number;
  proof_window_close_offset_blocks: number;
  session_grid_anchor_height: number;
  session_number_at_anchor: number;
}

export interface SessionWindows {
  session_start_height: number;
  session_end_height: number;
  session_number: number;
  grace_period_end_height: number;
  claim_window_open_height: number;
  claim_window_close_height: number;
  proof_window_open_height: number;
  proof_window_close_height: number;
  next_session_start_height: number;
  /** Height of the block whose EndBlocker settles this session's claims (= proof_window_close). */
  settlement_height: number;
  session_end_to_proof_window_close_blocks: number;
  num_pending_sessions: number;
  is_session_start: boolean;
  is_session_end: boolean;
}

function assertHeight(name: string, h: number): void {
  if (!Number.isSafeInteger(h)) throw new InvalidInputError(name, `must be a safe integer, got ${h}`);
}

function assertParams(p: SessionParams): void {
  for (const [k, v] of Object.entries(p)) {
    if (!Number.isSafeInteger(v) || (v as number) < 0) {
      throw new InvalidInputError(
        `shared params.${k}`,
        `must be a non-negative safe integer, got ${String(v)}`,
      );
    }
  }
  if (p.num_blocks_per_session < 1) {
    throw new InvalidInputError('shared params.num_blocks_per_session', 'must be at least 1');
  }
}

/** The (anchor, number at anchor) pair of the grid that covers height h. */
function gridFor(p: SessionParams, h: number): { anchor: number; numberAtAnchor: number } {
  const a = p.session_grid_anchor_height;
  if (a <= 0 || a > h) return { anchor: 1, numberAtAnchor: 1 };
  return { anchor: a, numberAtAnchor: p.session_number_at_anchor <= 0 ? 1 : p.session_number_at_anchor };
}

export function sessionStartHeight(p: SessionParams, h: number): number {
  assertParams(p);
  assertHeight('height', h);
  if (h <= 0) return 0;
  const { anchor } = gridFor(p, h);
  const n = p.num_blocks_per_session;
  return anchor + Math.trunc((h - anchor) / n) * n;
}

export function sessionEndHeight(p: SessionParams, h: number): number {
  if (h <= 0) return 0;
  return sessionStartHeight(p, h) + p.num_blocks_per_session - 1;
}

export function sessionNumber(p: SessionParams, h: number): number {
  assertParams(p);
  assertHeight('height', h);
  if (h <= 0) return 0;
  const { anchor, numberAtAnchor } = gridFor(p, h);
  return numberAtAnchor + Math.trunc((h - anchor) / p.num_blocks_per_session);
}

/** Blocks from a session's end to its proof window close (the four window offsets). */
export function sessionEndToProofWindowCloseBlocks(p: SessionParams): number {
  return (
    p.claim_window_open_offset_blocks +
    p.claim_window_close_offset_blocks +
    p.proof_window_open_offset_blocks +
    p.proof_window_close_offset_blocks
  );
}

/**
 * Every height derived from query height h. For h ≤ 0 start, end and number are 0 and the window
 * heights are evaluated from end = 0, as upstream does; such values must never drive scheduling.
 */
export function sessionWindows(p: SessionParams, h: number): SessionWindows {
  const start = sessionStartHeight(p, h);
  const end = sessionEndHeight(p, h);
  const claimOpen = end + p.claim_window_open_offset_blocks + 1;
  const claimClose = claimOpen + p.claim_window_close_offset_blocks;
  const proofOpen = claimClose + p.proof_window_open_offset_blocks;
  const proofClose = proofOpen + p.proof_window_close_offset_blocks;
  const endToClose = sessionEndToProofWindowCloseBlocks(p);
  return {
    session_start_height: start,
    session_end_height: end,
    session_number: sessionNumber(p, h),
    grace_period_end_height: end + p.grace_period_end_offset_blocks,
    claim_window_open_height: claimOpen,
    claim_window_close_height: claimClose,
    proof_window_open_height: proofOpen,
    proof_window_close_height: proofClose,
    next_session_start_height: end + 1,
    settlement_height: end + endToClose + 1,
    session_end_to_proof_window_close_blocks: endToClose,
    num_pending_sessions: Math.ceil(endToClose / p.num_blocks_per_session),
    is_session_start: h === start,
    is_session_end: h === end,
  };
}

/**
 * Earliest height a supplier's claim may be committed: the claim window open height (the
 * block-hash/supplier arguments of the chain's helper are ignored there since v0.1.35).
 */
export function earliestClaimCommitHeight(p: SessionParams, sessionEnd: number): number {
  return sessionWindows(p, sessionEnd).claim_window_open_height;
}

export function earliestProofCommitHeight(p: SessionParams, sessionEnd: number): number {
  return sessionWindows(p, sessionEnd).proof_window_open_height;
}

/** The block whose hash seeds the proof-requirement draw and the proof path. */
export function proofSeedBlockHeight(p: SessionParams, sessionEnd: number): number {
  return earliestProofCommitHeight(p, sessionEnd) - 1;
}

/** A relay for a session ending at sessionEnd is served while currentHeight ≤ end + grace. */
export function isWithinGracePeriod(p: SessionParams, sessionEnd: number, currentHeight: number): boolean {
  return currentHeight <= sessionWindows(p, sessionEnd).grace_period_end_height;
}

const DOT = new Uint8Array([0x2e]);
const utf8 = new TextEncoder();

function uint64LE(v: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(v), true);
  return out;
}

/**
 * Session id preimage: blockhash(start) ‖ "." ‖ service_id ‖ "." ‖ app_address ‖ "." ‖ uint64_le(start).
 * `startBlockHash` is the CometBFT hash of the session start block (empty for heights ≤ 0).
 */
export function sessionIdPreimage(
  startBlockHash: Uint8Array,
  serviceId: string,
  appAddress: string,
  sessionStart: number,
): Uint8Array {
  assertHeight('session start height', sessionStart);
  if (sessionStart < 0) throw new InvalidInputError('session start height', 'must not be negative');
  return concatBytes(
    startBlockHash,
    DOT,
    utf8.encode(serviceId),
    DOT,
    utf8.encode(appAddress),
    DOT,
    uint64LE(sessionStart),
  );
}

/** Lowercase hex SHA3-256 of the session id preimage. */
export function sessionId(
  startBlockHash: Uint8Array,
  serviceId: string,
  appAddress: string,
  sessionStart: number,
): string {
  return bytesToHex(sha3_256(sessionIdPreimage(startBlockHash, serviceId, appAddress, sessionStart)));
}

/** Signed weight the chain sorts supplier candidates by. */
export function supplierSelectionWeight(preimage: Uint8Array, operatorAddress: string): bigint {
  const h = sha3_256(preimage, DOT, utf8.encode(operatorAddress));
  return new DataView(h.buffer, h.byteOffset, 8).getBigInt64(0, false);
}

/**
 * Picks the session's suppliers from the candidates (already filtered to those with an active
 * service config, in store order). With no more candidates than the limit all are kept in their
 * given order; otherwise they are sorted by weight (ties by address bytes) and truncated.
 */
export function selectSessionSuppliers(
  preimage: Uint8Array,
  candidateAddresses: readonly string[],
  numSuppliersPerSession: number,
): string[] {
  if (candidateAddresses.length <= numSuppliersPerSession) return [...candidateAddresses];
  const weighted = candidateAddresses.map((address) => ({
    address,
    bytes: utf8.encode(address),
    weight: supplierSelectionWeight(preimage, address),
  }));
  weighted.sort((a, b) =>
    a.weight < b.weight ? -1 : a.weight > b.weight ? 1 : compareBytes(a.bytes, b.bytes),
  );
  return weighted.slice(0, numSuppliersPerSession).map((w) => w.address);
}
