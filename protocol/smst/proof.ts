/**
 * Closest proofs in their two forms (spec smst.md §8–§9): the decompacted form the trie builds and
 * the verifier folds, and the compact form that is gob-encoded on chain. Compaction, decompaction
 * and the structural ("basic") checks follow upstream exactly, including where upstream would
 * panic: those places are reported as failures, never thrown as runtime errors.
 */
import { bytesToHex, equalBytes } from '../../core/index.js';
import {
  DIGEST_BYTES,
  EXTENSION_PREFIX,
  MAX_DEPTH,
  PATH_BYTES,
  digestOfPreimage,
  encodeInnerNode,
  flipPathBit,
  isPlaceholder,
  pathBit,
  placeholderDigest,
} from './encoding.js';
import { SmstProofInvalidError, SmstProofUnprovableError } from './errors.js';

/** Side nodes of the path to one leaf (upstream SparseMerkleProof). */
export interface MerkleProof {
  /** Sibling digests, leaf side first; a placeholder is 48 zero bytes. */
  sideNodes: Uint8Array[];
  nonMembershipLeafData: Uint8Array | null;
  /** Preimage of the leaf's immediate sibling, if it has one. */
  siblingData: Uint8Array | null;
}

/** Upstream SparseMerkleClosestProof. */
export interface ClosestProof {
  path: Uint8Array;
  flippedBits: number[];
  depth: number;
  closestPath: Uint8Array;
  /** The leaf value field `value ‖ weight ‖ count`; null for the empty trie. */
  closestValueHash: Uint8Array | null;
  closestProof: MerkleProof;
}

/** Upstream SparseCompactMerkleProof. `numSideNodes` is a Go int (int64) on the wire. */
export interface CompactMerkleProof {
  sideNodes: Uint8Array[];
  nonMembershipLeafData: Uint8Array | null;
  bitMask: Uint8Array;
  numSideNodes: bigint;
  siblingData: Uint8Array | null;
}

/** Upstream SparseCompactMerkleClosestProof, the value gob-encoded into MsgSubmitProof.proof. */
export interface CompactClosestProof {
  path: Uint8Array;
  flippedBits: Uint8Array[];
  depth: Uint8Array;
  closestPath: Uint8Array;
  closestValueHash: Uint8Array | null;
  /** Null when the encoding lacked the nested struct (the chain rejects such a proof). */
  closestProof: CompactMerkleProof | null;
}

/** Outcome of a structural check: a plain error, or a place where upstream Go would panic. */
export type BasicCheck = { ok: true } | { ok: false; panic: boolean; reason: string };

const OK: BasicCheck = { ok: true };

function fail(reason: string): BasicCheck {
  return { ok: false, panic: false, reason };
}

function panicked(reason: string): BasicCheck {
  return { ok: false, panic: true, reason };
}

/** Minimal big-endian bytes of a non-negative int: 0 → `00`, 300 → `012c` (upstream intToBytes). */
export function intToMinimalBytes(v: number): Uint8Array {
  if (v === 0) return new Uint8Array([0]);
  const out: number[] = [];
  for (let x = v; x > 0; x = Math.floor(x / 256)) out.unshift(x % 256);
  return new Uint8Array(out);
}

/** Big-endian value of at most 8 bytes, as Go's bytesToInt (callers bound the length first). */
export function minimalBytesToInt(bytes: Uint8Array): number {
  let v = 0;
  for (const b of bytes) v = v * 256 + b;
  return v;
}

function popcount(bytes: Uint8Array): number {
  let n = 0;
  for (let b of bytes) {
    while (b !== 0) {
      b &= b - 1;
      n++;
    }
  }
  return n;
}

/**
 * The digest the verifier assigns to sibling data: an extension preimage goes through the
 * extension rule, anything else is `H(data) ‖ last 16 bytes`. Upstream panics on short inputs.
 */
export function hashSiblingData(data: Uint8Array): { ok: true; digest: Uint8Array } | { ok: false } {
  if (data[0] === EXTENSION_PREFIX) {
    const sumStart = data.length - 16;
    if (data.length < 3 + PATH_BYTES || sumStart < 3 + PATH_BYTES) return { ok: false };
    const start = data[1]!;
    const end = data[2]!;
    const path = data.subarray(3, 3 + PATH_BYTES);
    let d = data.subarray(3 + PATH_BYTES, sumStart);
    for (let i = end - 1; i >= start; i--) {
      if (d.length < 16) return { ok: false };
      const zero = placeholderDigest();
      d = digestOfPreimage(pathBit(path, i) === 0 ? encodeInnerNode(d, zero) : encodeInnerNode(zero, d));
    }
    return { ok: true, digest: d };
  }
  if (data.length < 16) return { ok: false };
  return { ok: true, digest: digestOfPreimage(data) };
}

/** Upstream SparseMerkleProof.validateBasic. */
export function checkMerkleProofBasic(proof: MerkleProof): BasicCheck {
  if (proof.sideNodes.length > MAX_DEPTH) {
    return fail(`too many side nodes: got ${proof.sideNodes.length} but max is ${MAX_DEPTH}`);
  }
  const leafPathBytes = 1 + PATH_BYTES;
  if (proof.nonMembershipLeafData !== null && proof.nonMembershipLeafData.length < leafPathBytes) {
    return fail(`invalid non-membership leaf data size: got ${proof.nonMembershipLeafData.length}`);
  }
  if (proof.siblingData === null || proof.sideNodes.length === 0) return OK;
  for (const side of proof.sideNodes) {
    if (side.length !== DIGEST_BYTES) {
      return fail(`invalid side node size: got ${side.length} but want ${DIGEST_BYTES}`);
    }
  }
  const h = hashSiblingData(proof.siblingData);
  if (!h.ok) return panicked('sibling data too short to hash');
  if (!equalBytes(proof.sideNodes[0]!, h.digest)) {
    return fail(
      `invalid sibling data hash: got ${bytesToHex(h.digest)} but want ${bytesToHex(proof.sideNodes[0]!)}`,
    );
  }
  return OK;
}

/** Upstream SparseMerkleClosestProof.validateBasic, including the closest-path prefix check. */
export function checkClosestProofBasic(proof: ClosestProof): BasicCheck {
  if (proof.path.length !== PATH_BYTES) {
    return fail(`invalid path length: got ${proof.path.length}, want ${PATH_BYTES}`);
  }
  if (proof.depth < 0 || proof.depth > MAX_DEPTH) {
    return fail(`invalid depth: got ${proof.depth}, outside of [0, ${MAX_DEPTH}]`);
  }
  for (let i = 0; i < proof.flippedBits.length; i++) {
    const b = proof.flippedBits[i]!;
    if (b < 0 || b > proof.depth) {
      return fail(`invalid flipped bit index ${i}: got ${b}, outside of [0, ${proof.depth}]`);
    }
  }
  const working = new Uint8Array(proof.path);
  for (const b of proof.flippedBits) {
    if (b >> 3 >= working.length) return panicked(`flipped bit ${b} is past the end of the path`);
    flipPathBit(working, b);
  }
  for (let i = 0; i < proof.depth; i++) {
    if (i >> 3 >= proof.closestPath.length) return panicked('closest path shorter than depth');
    if (pathBit(working, i) !== pathBit(proof.closestPath, i)) {
      return fail(`invalid closest path: ${bytesToHex(proof.closestPath)} (not equal at bit: ${i})`);
    }
  }
  const inner = checkMerkleProofBasic(proof.closestProof);
  if (!inner.ok) return { ...inner, reason: `invalid closest proof: ${inner.reason}` };
  return OK;
}

/** Upstream SparseCompactMerkleProof.validateBasic. */
export function checkCompactMerkleProofBasic(proof: CompactMerkleProof): BasicCheck {
  const n = proof.numSideNodes;
  if (n < 0n || n > BigInt(MAX_DEPTH)) {
    return fail(`invalid number of side nodes: got ${n}, min is 0 and max is ${MAX_DEPTH}`);
  }
  const count = Number(n);
  const maskBytes = Math.ceil(count / 8);
  if (proof.bitMask.length !== maskBytes) {
    return fail(`invalid bit mask length: got ${proof.bitMask.length} want ${maskBytes}`);
  }
  const expected = count - popcount(proof.bitMask);
  if (count > 0 && proof.sideNodes.length !== expected) {
    return fail(`invalid number of side nodes: got ${proof.sideNodes.length} want ${expected}`);
  }
  return OK;
}

/** Upstream SparseCompactMerkleClosestProof.validateBasic (a missing nested proof panics). */
export function checkCompactClosestProofBasic(proof: CompactClosestProof): BasicCheck {
  if (proof.path.length !== PATH_BYTES) {
    return fail(`invalid path length: got ${proof.path.length}, want ${PATH_BYTES}`);
  }
  const maxLen = 2; // bytes needed for 256, the largest depth
  if (proof.depth.length > maxLen) {
    return fail(`invalid depth: got ${proof.depth.length} bytes but max is ${maxLen}`);
  }
  for (let i = 0; i < proof.flippedBits.length; i++) {
    if (proof.flippedBits[i]!.length > maxLen) {
      return fail(`invalid compressed flipped bit index ${i}: length ${proof.flippedBits[i]!.length}`);
    }
  }
  if (proof.closestProof === null) return panicked('closest proof struct is missing');
  const inner = checkCompactMerkleProofBasic(proof.closestProof);
  if (!inner.ok) return { ...inner, reason: `invalid closest proof: ${inner.reason}` };
  return OK;
}

function compactMerkleProof(proof: MerkleProof): CompactMerkleProof {
  const check = checkMerkleProofBasic(proof);
  if (!check.ok) throw new SmstProofUnprovableError(check.reason);
  const n = proof.sideNodes.length;
  const bitMask = new Uint8Array(Math.ceil(n / 8));
  const sideNodes: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const node = new Uint8Array(DIGEST_BYTES);
    node.set(proof.sideNodes[i]!.subarray(0, DIGEST_BYTES));
    if (isPlaceholder(node)) bitMask[i >> 3] = bitMask[i >> 3]! | (1 << (7 - (i & 7)));
    else sideNodes.push(node);
  }
  return {
    sideNodes,
    nonMembershipLeafData: proof.nonMembershipLeafData,
    bitMask,
    numSideNodes: BigInt(n),
    siblingData: proof.siblingData,
  };
}

/**
 * Upstream CompactClosestProof: checks the proof as the verifier will, then drops placeholder side
 * nodes into a bit mask and writes depth and flipped bits as minimal big-endian bytes.
 */
export function compactClosestProof(proof: ClosestProof): CompactClosestProof {
  const check = checkClosestProofBasic(proof);
  if (!check.ok) throw new SmstProofUnprovableError(`bad proof: ${check.reason}`);
  return {
    path: proof.path,
    flippedBits: proof.flippedBits.map(intToMinimalBytes),
    depth: intToMinimalBytes(proof.depth),
    closestPath: proof.closestPath,
    closestValueHash: proof.closestValueHash,
    closestProof: compactMerkleProof(proof.closestProof),
  };
}

/**
 * Upstream DecompactClosestProof: structural checks, then placeholders re-inserted where the mask
 * says. Throws SmstProofInvalidError where upstream returns an error or panics.
 */
export function decompactClosestProof(proof: CompactClosestProof): ClosestProof {
  const check = checkCompactClosestProofBasic(proof);
  if (!check.ok) throw new SmstProofInvalidError(`bad proof: ${check.reason}`);
  const inner = proof.closestProof!;
  const n = Number(inner.numSideNodes);
  const sideNodes: Uint8Array[] = [];
  let position = 0;
  for (let i = 0; i < n; i++) {
    if (pathBit(inner.bitMask, i) === 1) {
      sideNodes.push(placeholderDigest());
    } else {
      const node = inner.sideNodes[position];
      if (node === undefined) {
        throw new SmstProofInvalidError('bit mask marks fewer placeholders than the side node count implies');
      }
      sideNodes.push(node);
      position++;
    }
  }
  return {
    path: proof.path,
    flippedBits: proof.flippedBits.map(minimalBytesToInt),
    depth: minimalBytesToInt(proof.depth),
    closestPath: proof.closestPath,
    closestValueHash: proof.closestValueHash,
    closestProof: {
      sideNodes,
      nonMembershipLeafData: inner.nonMembershipLeafData,
      siblingData: inner.siblingData,
    },
  };
}
