/**
 * The sparse Merkle sum trie the chain uses for claims and proofs: the trie, its node-store
 * interface and in-memory store, closest proofs (compact form and Go gob bytes), root parsing and
 * verification with the chain's rules.
 */
export { SparseMerkleSumTrie, type SmstOptions, type SmstLeaf } from './trie.js';
export { InMemoryMapStore, type MapStore, type StoreBatch } from './map-store.js';
export {
  compactClosestProof,
  decompactClosestProof,
  checkClosestProofBasic,
  checkCompactClosestProofBasic,
  hashSiblingData,
  intToMinimalBytes,
  minimalBytesToInt,
  type BasicCheck,
  type ClosestProof,
  type CompactClosestProof,
  type CompactMerkleProof,
  type MerkleProof,
} from './proof.js';
export { GOB_TYPE_PREFIX, encodeCompactClosestProof, decodeCompactClosestProof } from './gob.js';
export {
  verifyClosestProof,
  checkClosestProofBytes,
  provenValue,
  type ClosestProofVerdict,
  type ProofCheck,
  type ProofRejectionCode,
} from './verify.js';
export {
  ROOT_BYTES,
  parseMerkleSumRoot,
  checkClaimRoot,
  type ClaimRootCheck,
  type MerkleSumRoot,
} from './root.js';
export {
  DIGEST_BYTES,
  PATH_BYTES,
  MAX_DEPTH,
  placeholderDigest,
  isPlaceholder,
  pathBit,
  leafValueHash,
  digestOfPreimage,
  encodeLeafNode,
  encodeInnerNode,
  encodeExtensionNode,
  extensionDigest,
} from './encoding.js';
export {
  SmstProofMalformedError,
  SmstProofInvalidError,
  SmstProofUnprovableError,
  SmstRootInvalidError,
  SmstKeyNotFoundError,
  SmstNodeMissingError,
  SmstNodeCorruptError,
} from './errors.js';
