/**
 * Claim economics and the proof requirement, as the proof module evaluates them
 * (poktroll x/proof/types/claim.go, x/proof/keeper/msg_server_submit_proof.go, proof_path.go).
 */
import { InvalidInputError, concatBytes } from '../core/index.js';
import { sha256 } from './hash.js';
import { GoRandSource, goVarint } from './go-rand.js';
import { relayDifficultyMultiplier } from './difficulty.js';
import { Claim, ClaimProofStatus } from './proto/gen/pocket/proof/types.js';
import type { SessionHeader } from './proto/gen/pocket/session/types.js';
import { parseMerkleSumRoot, type MerkleSumRoot } from './smst/root.js';

export const CLAIM_ROOT_BYTES = 48;

/** A claim root: exactly 48 bytes, hash ‖ sum (uint64 BE) ‖ count (uint64 BE). */
export function parseClaimRoot(root: Uint8Array): MerkleSumRoot {
  if (root.length !== CLAIM_ROOT_BYTES) {
    throw new InvalidInputError('claim root', `must be ${CLAIM_ROOT_BYTES} bytes, got ${root.length}`);
  }
  return parseMerkleSumRoot(root);
}

/** Token pricing from the shared params at the session start height. */
export interface ClaimPricing {
  compute_units_to_tokens_multiplier: bigint;
  compute_unit_cost_granularity: bigint;
}

/**
 * floor(claimed compute units × (2^256 − 1)/target × CUTTM / granularity), one floor at the end.
 * `target` is the relay mining difficulty at the session start height.
 */
export function claimedUpokt(claimedComputeUnits: bigint, target: Uint8Array, pricing: ClaimPricing): bigint {
  if (pricing.compute_unit_cost_granularity <= 0n) {
    throw new InvalidInputError('shared params.compute_unit_cost_granularity', 'must be positive');
  }
  const m = relayDifficultyMultiplier(target);
  return (
    (claimedComputeUnits * m.num * pricing.compute_units_to_tokens_multiplier) /
    (m.den * pricing.compute_unit_cost_granularity)
  );
}

/** Estimated compute units (and relays) behind a claim: floor(value × (2^256 − 1)/target). */
export function estimatedFromDifficulty(value: bigint, target: Uint8Array): bigint {
  const m = relayDifficultyMultiplier(target);
  return (value * m.num) / m.den;
}

/** The claim as the chain stores it, in the bytes its hash is taken over (status 0 omitted). */
export function claimBytes(
  supplierOperatorAddress: string,
  header: SessionHeader,
  rootHash: Uint8Array,
): Uint8Array {
  return Claim.encode({
    supplierOperatorAddress,
    sessionHeader: header,
    rootHash: Buffer.from(rootHash),
    proofValidationStatus: ClaimProofStatus.PENDING_VALIDATION,
  }).finish();
}

export type ProofRequirementReason = 'NOT_REQUIRED' | 'PROBABILISTIC' | 'THRESHOLD';

export interface ProofRequirementInput {
  supplierOperatorAddress: string;
  sessionHeader: SessionHeader;
  rootHash: Uint8Array;
  /** Hash of the block at earliest proof commit height − 1. */
  seedBlockHash: Uint8Array;
  /** Relay mining difficulty at the session start height. */
  target: Uint8Array;
  pricing: ClaimPricing;
  /** Live proof params. */
  proofRequestProbability: number;
  proofRequirementThresholdUpokt: bigint;
}

export interface ProofRequirement {
  reason: ProofRequirementReason;
  required: boolean;
  claimedUpokt: bigint;
  /** The probabilistic draw; computed only below the threshold. */
  sample?: number;
  seedInt64?: bigint;
}

/** SHA-256(claim_hash ‖ seed_block_hash), the seed material of the draw. */
export function proofRequirementSeed(claim: Uint8Array, seedBlockHash: Uint8Array): Uint8Array {
  return sha256(sha256(claim), seedBlockHash);
}

/**
 * Whether this claim must be proven: by threshold when claimed upokt ≥ the threshold, else when the
 * Go math/rand draw seeded from the claim and the seed block is ≤ the request probability.
 */
export function proofRequirement(input: ProofRequirementInput): ProofRequirement {
  const { sum } = parseClaimRoot(input.rootHash);
  const claimed = claimedUpokt(sum, input.target, input.pricing);
  if (claimed >= input.proofRequirementThresholdUpokt) {
    return { reason: 'THRESHOLD', required: true, claimedUpokt: claimed };
  }
  const claim = claimBytes(input.supplierOperatorAddress, input.sessionHeader, input.rootHash);
  const seedInt64 = goVarint(proofRequirementSeed(claim, input.seedBlockHash));
  const sample = new GoRandSource(seedInt64).float64();
  const required = sample <= input.proofRequestProbability;
  return {
    reason: required ? 'PROBABILISTIC' : 'NOT_REQUIRED',
    required,
    claimedUpokt: claimed,
    sample,
    seedInt64,
  };
}

/** The SMST path a proof must be built for: SHA-256(seed_block_hash ‖ session_id). */
export function proofPath(seedBlockHash: Uint8Array, sessionId: string): Uint8Array {
  return sha256(concatBytes(seedBlockHash, new TextEncoder().encode(sessionId)));
}
