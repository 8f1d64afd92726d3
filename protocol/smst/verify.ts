/**
 * Closest-proof verification with the chain's rules (spec smst.md §9): upstream VerifyClosestProof
 * with the chain's spec (SHA-256, sum trie, no value hasher), and the whole proof-module pipeline
 * from proof bytes to an accept/reject verdict. Rejections are values; nothing here throws for
 * any input.
 */
import { RelayMinerError, bytesToHex, equalBytes } from '../../core/index.js';
import {
  DIGEST_BYTES,
  LEAF_PREFIX,
  PATH_BYTES,
  digestOfPreimage,
  encodeInnerNode,
  encodeLeafNode,
  pathBit,
  placeholderDigest,
} from './encoding.js';
import { decodeCompactClosestProof } from './gob.js';
import { checkClosestProofBasic, checkMerkleProofBasic, decompactClosestProof } from './proof.js';
import type { ClosestProof, MerkleProof } from './proof.js';

export type ProofRejectionCode =
  | 'PROOF_EMPTY'
  | 'PROOF_UNDECODABLE'
  | 'PROOF_MALFORMED'
  | 'VALUE_HASH_TOO_SHORT'
  | 'PATH_MISMATCH'
  | 'PROOF_INVALID'
  | 'ROOT_MISMATCH';

export type ProofCheck = { ok: true } | { ok: false; code: ProofRejectionCode; reason: string };

const ACCEPT: ProofCheck = { ok: true };

function reject(code: ProofRejectionCode, reason: string): ProofCheck {
  return { ok: false, code, reason };
}

/** Upstream verifyProofWithUpdates (membership or non-membership of `valueHash` at `key`). */
function verifyMerkleProof(
  proof: MerkleProof,
  root: Uint8Array,
  key: Uint8Array,
  valueHash: Uint8Array,
): ProofCheck {
  if (key.length < PATH_BYTES) return reject('PROOF_INVALID', 'closest path shorter than 32 bytes');
  const path = key.subarray(0, PATH_BYTES);
  const basic = checkMerkleProofBasic(proof);
  if (!basic.ok) return reject('PROOF_INVALID', `bad proof: ${basic.reason}`);

  let current: Uint8Array;
  if (valueHash.length === 0) {
    const leafData = proof.nonMembershipLeafData;
    if (leafData === null) {
      current = placeholderDigest();
    } else {
      if (leafData[0] !== LEAF_PREFIX)
        return reject('PROOF_INVALID', 'non-membership leaf data is not a leaf');
      const actualPath = leafData.subarray(1, 1 + PATH_BYTES);
      if (equalBytes(actualPath, path)) {
        return reject('PROOF_INVALID', 'bad proof: non-membership proof on related leaf');
      }
      current = digestOfPreimage(encodeLeafNode(actualPath, leafData.subarray(1 + PATH_BYTES)));
    }
  } else {
    current = digestOfPreimage(encodeLeafNode(path, valueHash));
  }

  const n = proof.sideNodes.length;
  for (let i = 0; i < n; i++) {
    const node = new Uint8Array(DIGEST_BYTES);
    node.set(proof.sideNodes[i]!.subarray(0, DIGEST_BYTES));
    current = digestOfPreimage(
      pathBit(path, n - 1 - i) === 0 ? encodeInnerNode(current, node) : encodeInnerNode(node, current),
    );
  }
  if (!equalBytes(current, root)) {
    return reject('ROOT_MISMATCH', `computed root ${bytesToHex(current)} differs from ${bytesToHex(root)}`);
  }
  return ACCEPT;
}

/**
 * Upstream VerifyClosestProof(proof, root, NewSMTSpec()): the structural checks (closest path bound
 * to `path` up to `depth`, sibling data matching side node 0), then the leaf digest folded with
 * the side nodes must equal the 48-byte root exactly.
 */
export function verifyClosestProof(proof: ClosestProof, root: Uint8Array): ProofCheck {
  const basic = checkClosestProofBasic(proof);
  if (!basic.ok) return reject('PROOF_INVALID', `bad proof: ${basic.reason}`);

  const data = proof.closestValueHash;
  if (data === null) return verifyMerkleProof(proof.closestProof, root, proof.closestPath, new Uint8Array(0));
  if (data.length < 16) return reject('VALUE_HASH_TOO_SHORT', 'closest value hash shorter than 16 bytes');
  const value = data.subarray(0, data.length - 16);
  const sumAndCount = data.subarray(data.length - 16);
  let sumIsZero = true;
  for (let i = 0; i < 8; i++) if (sumAndCount[i] !== 0) sumIsZero = false;
  // An empty value with weight 0 is read as non-membership (upstream VerifySumProof).
  const valueHash = value.length === 0 && sumIsZero ? new Uint8Array(0) : data;
  return verifyMerkleProof(proof.closestProof, root, proof.closestPath, valueHash);
}

/** The relay bytes a proof carries: the closest value hash without its weight and count. */
export function provenValue(proof: ClosestProof): Uint8Array | null {
  const data = proof.closestValueHash;
  if (data === null || data.length < 16) return null;
  return data.subarray(0, data.length - 16);
}

/** Each step of the chain's proof handling and the overall result. */
export interface ClosestProofVerdict {
  accepted: boolean;
  /** gob Unmarshal succeeded. */
  decodeOk: boolean;
  /** DecompactClosestProof succeeded. */
  decompactOk: boolean;
  /** The proof's path equals the expected path. */
  pathMatches: boolean;
  /** VerifyClosestProof returned true against the claim root. */
  verified: boolean;
  /** First failing step, absent when accepted. */
  rejection?: { code: ProofRejectionCode; reason: string };
  /** The decompacted proof, when decompaction succeeded. */
  proof?: ClosestProof;
  /** The proven relay bytes (value without weight and count), when present. */
  relayBytes?: Uint8Array;
}

function failure(
  steps: Omit<ClosestProofVerdict, 'accepted' | 'rejection'>,
  code: ProofRejectionCode,
  reason: string,
): ClosestProofVerdict {
  return { accepted: false, ...steps, rejection: { code, reason } };
}

function messageOf(err: unknown): string {
  if (err instanceof RelayMinerError) return err.message;
  throw err;
}

/**
 * The proof module's handling of MsgSubmitProof.proof against a claim: non-empty bytes, gob decode,
 * decompact, relay bytes (value hash of at least 16 bytes), path equality with the expected path
 * (SHA-256(block hash ‖ session id)), then VerifyClosestProof against the claimed root.
 */
export function checkClosestProofBytes(
  proofBytes: Uint8Array,
  claimRoot: Uint8Array,
  expectedPath: Uint8Array,
): ClosestProofVerdict {
  const none = { decodeOk: false, decompactOk: false, pathMatches: false, verified: false };
  if (proofBytes.length === 0) return failure(none, 'PROOF_EMPTY', 'closest merkle proof cannot be empty');
  let compact;
  try {
    compact = decodeCompactClosestProof(proofBytes);
  } catch (err) {
    return failure(none, 'PROOF_UNDECODABLE', messageOf(err));
  }
  let proof: ClosestProof;
  try {
    proof = decompactClosestProof(compact);
  } catch (err) {
    return failure({ ...none, decodeOk: true }, 'PROOF_MALFORMED', messageOf(err));
  }
  const decoded = { ...none, decodeOk: true, decompactOk: true, proof };
  const cvh = proof.closestValueHash;
  if (cvh !== null && cvh.length < 16) {
    return failure(decoded, 'VALUE_HASH_TOO_SHORT', 'closest value hash shorter than 16 bytes');
  }
  const relayBytes = cvh === null ? undefined : cvh.subarray(0, cvh.length - 16);
  const pathMatches = equalBytes(proof.path, expectedPath);
  const check = verifyClosestProof(proof, claimRoot);
  const steps = { ...decoded, pathMatches, verified: check.ok, ...(relayBytes ? { relayBytes } : {}) };
  if (!pathMatches) {
    return failure(
      steps,
      'PATH_MISMATCH',
      `proof path ${bytesToHex(proof.path)} differs from the expected ${bytesToHex(expectedPath)}`,
    );
  }
  if (!check.ok) return failure(steps, check.code, check.reason);
  return { accepted: true, ...steps };
}
