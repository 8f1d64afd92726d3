/**
 * Byte-level building blocks of the SMST (spec smst.md §1–§2): path bits, SHA-256, the 48-byte
 * digest `hash ‖ sum ‖ count`, node preimages and uint64 arithmetic modulo 2^64.
 */
import { hash } from 'node:crypto';

export const HASH_BYTES = 32;
export const PATH_BYTES = 32;
export const SUM_BYTES = 8;
export const COUNT_BYTES = 8;
/** hash ‖ sum ‖ count */
export const DIGEST_BYTES = HASH_BYTES + SUM_BYTES + COUNT_BYTES;
export const MAX_DEPTH = PATH_BYTES * 8;

export const LEAF_PREFIX = 0x00;
export const INNER_PREFIX = 0x01;
export const EXTENSION_PREFIX = 0x02;

/** 0x01 ‖ left(48) ‖ right(48) ‖ sum(8) ‖ count(8) */
export const INNER_NODE_BYTES = 1 + 2 * DIGEST_BYTES + SUM_BYTES + COUNT_BYTES;
/** 0x02 ‖ start ‖ end ‖ path(32) ‖ child(48) ‖ sum(8) ‖ count(8) */
export const EXTENSION_NODE_BYTES = 3 + PATH_BYTES + DIGEST_BYTES + SUM_BYTES + COUNT_BYTES;
/** 0x00 ‖ path(32) ‖ weight(8) ‖ count(8), for an empty value. */
export const MIN_LEAF_NODE_BYTES = 1 + PATH_BYTES + SUM_BYTES + COUNT_BYTES;

const ZERO_DIGEST = new Uint8Array(DIGEST_BYTES);

/** The digest of an empty subtree: 48 zero bytes. A fresh copy each call. */
export function placeholderDigest(): Uint8Array {
  return new Uint8Array(DIGEST_BYTES);
}

/** True for the 48-zero-byte placeholder. */
export function isPlaceholder(digest: Uint8Array): boolean {
  if (digest.length !== DIGEST_BYTES) return false;
  for (let i = 0; i < DIGEST_BYTES; i++) if (digest[i] !== 0) return false;
  return true;
}

/**
 * Small arrays carved out of a shared block: one typed-array allocation per block instead of one
 * per node, which dominates the cost of hashing a 113-byte node otherwise. Large requests get
 * their own array.
 */
class Slab {
  private block = new Uint8Array(0);
  private used = 0;

  constructor(private readonly blockBytes: number) {}

  take(n: number): Uint8Array {
    if (n > this.blockBytes >> 3) return new Uint8Array(n);
    if (this.used + n > this.block.length) {
      this.block = new Uint8Array(this.blockBytes);
      this.used = 0;
    }
    const out = this.block.subarray(this.used, this.used + n);
    this.used += n;
    return out;
  }
}

/** Digests and leaf values live as long as their nodes; encodings are handed to the store and dropped. */
const digestSlab = new Slab(48 * 1024);
const leafSlab = new Slab(256 * 1024);
const encodingSlab = new Slab(256 * 1024);

/** A zeroed array for a node encoding or digest. */
export function allocBytes(n: number): Uint8Array {
  return encodingSlab.take(n);
}

/** SHA-256 of `data` into `out[0, 32)`. The 'binary' (latin1) string output is the cheapest form node:crypto offers. */
function hashInto(data: Uint8Array, out: Uint8Array, off = 0): void {
  const s = hash('sha256', data, 'binary');
  for (let i = 0; i < HASH_BYTES; i++) out[off + i] = s.charCodeAt(i);
}

export function sha256(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(HASH_BYTES);
  hashInto(data, out);
  return out;
}

/**
 * A copy of `bytes[start, end)`. Inputs may be Node Buffers, whose `slice` is a view, so copies
 * are always made through this function.
 */
export function copyBytes(bytes: Uint8Array, start = 0, end = bytes.length): Uint8Array {
  return new Uint8Array(bytes.subarray(start, end));
}

/** Bit `i` of `path`, most significant bit of byte 0 first. Reads past the end give 0. */
export function pathBit(path: Uint8Array, i: number): number {
  return ((path[i >> 3] ?? 0) >> (7 - (i & 7))) & 1;
}

/** Flips bit `i` of `path` in place; `i` must address a byte inside `path`. */
export function flipPathBit(path: Uint8Array, i: number): void {
  const byte = i >> 3;
  path[byte] = path[byte]! ^ (1 << (7 - (i & 7)));
}

/** Index of the first bit at or after `from` where the two 32-byte paths differ; 256 if none. */
export function firstDifferingBit(a: Uint8Array, b: Uint8Array, from: number): number {
  for (let i = from; i < MAX_DEPTH; i++) {
    if (pathBit(a, i) !== pathBit(b, i)) return i;
  }
  return MAX_DEPTH;
}

/** Writes (a + b) mod 2^64, both big-endian at the given offsets, to `out` at `outOff`. */
export function addUint64BE(
  a: Uint8Array,
  aOff: number,
  b: Uint8Array,
  bOff: number,
  out: Uint8Array,
  outOff: number,
): void {
  let carry = 0;
  for (let i = 7; i >= 0; i--) {
    const s = a[aOff + i]! + b[bOff + i]! + carry;
    out[outOff + i] = s & 0xff;
    carry = s >> 8;
  }
}

export function readUint64BE(bytes: Uint8Array, off: number): bigint {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return view.getBigUint64(off, false);
}

export function uint64BE(value: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, value), false);
  return out;
}

/** `H(preimage) ‖ last 16 bytes of preimage`; the preimage must be at least 16 bytes long. */
export function digestOfPreimage(preimage: Uint8Array): Uint8Array {
  const out = digestSlab.take(DIGEST_BYTES);
  hashInto(preimage, out);
  out.set(preimage.subarray(preimage.length - SUM_BYTES - COUNT_BYTES), HASH_BYTES);
  return out;
}

/**
 * The inner-node preimage `0x01 ‖ left ‖ right ‖ sumL+sumR ‖ countL+countR`. Each child digest
 * must be at least 16 bytes; its sum and count are its last 16 bytes (as the library reads them).
 */
export function encodeInnerNode(left: Uint8Array, right: Uint8Array): Uint8Array {
  const out = allocBytes(1 + left.length + right.length + SUM_BYTES + COUNT_BYTES);
  writeInnerNode(out, left, right);
  return out;
}

function writeInnerNode(out: Uint8Array, left: Uint8Array, right: Uint8Array): void {
  out[0] = INNER_PREFIX;
  out.set(left, 1);
  out.set(right, 1 + left.length);
  const meta = 1 + left.length + right.length;
  const lm = left.length - 16;
  const rm = right.length - 16;
  addUint64BE(left, lm, right, rm, out, meta);
  addUint64BE(left, lm + 8, right, rm + 8, out, meta + 8);
}

const innerScratch = new Uint8Array(INNER_NODE_BYTES);

/** Digest of the inner node over two 48-byte child digests, without keeping its encoding. */
export function innerDigest(left: Uint8Array, right: Uint8Array): Uint8Array {
  writeInnerNode(innerScratch, left, right);
  const out = digestSlab.take(DIGEST_BYTES);
  hashInto(innerScratch, out);
  out.set(innerScratch.subarray(INNER_NODE_BYTES - 16), HASH_BYTES);
  return out;
}

let leafScratch = new Uint8Array(1024);

/** Digest of the leaf `0x00 ‖ path ‖ valueHash`, without keeping its encoding. */
export function leafDigest(path: Uint8Array, valueHash: Uint8Array): Uint8Array {
  const n = 1 + path.length + valueHash.length;
  if (leafScratch.length < n) leafScratch = new Uint8Array(Math.max(n, leafScratch.length * 2));
  leafScratch[0] = LEAF_PREFIX;
  leafScratch.set(path, 1);
  leafScratch.set(valueHash, 1 + path.length);
  const out = digestSlab.take(DIGEST_BYTES);
  hashInto(leafScratch.subarray(0, n), out);
  out.set(valueHash.subarray(valueHash.length - 16), HASH_BYTES);
  return out;
}

/** The leaf preimage `0x00 ‖ path ‖ valueHash` (valueHash = value ‖ weight ‖ count). */
export function encodeLeafNode(path: Uint8Array, valueHash: Uint8Array): Uint8Array {
  const out = allocBytes(1 + path.length + valueHash.length);
  out[0] = LEAF_PREFIX;
  out.set(path, 1);
  out.set(valueHash, 1 + path.length);
  return out;
}

/** The extension preimage `0x02 ‖ start ‖ end ‖ path ‖ child ‖ sum ‖ count` (sum, count of child). */
export function encodeExtensionNode(
  start: number,
  end: number,
  path: Uint8Array,
  child: Uint8Array,
): Uint8Array {
  const out = allocBytes(3 + path.length + child.length + SUM_BYTES + COUNT_BYTES);
  out[0] = EXTENSION_PREFIX;
  out[1] = start;
  out[2] = end;
  out.set(path, 3);
  out.set(child, 3 + path.length);
  out.set(child.subarray(child.length - 16), 3 + path.length + child.length);
  return out;
}

/**
 * The digest of the run of inner nodes an extension stands for: starting from the child digest,
 * for i = end−1 down to start, wrap it in an inner node with a placeholder on the other side.
 */
export function extensionDigest(start: number, end: number, path: Uint8Array, child: Uint8Array): Uint8Array {
  let d = child;
  for (let i = end - 1; i >= start; i--) {
    d = pathBit(path, i) === 0 ? innerDigest(d, ZERO_DIGEST) : innerDigest(ZERO_DIGEST, d);
  }
  return d;
}

/** `value ‖ weight(8 BE) ‖ count=1(8 BE)`, the leaf's value field with the chain configuration. */
const weightScratch = new Uint8Array(SUM_BYTES);
const weightView = new DataView(weightScratch.buffer);

export function leafValueHash(value: Uint8Array, weight: bigint): Uint8Array {
  const out = leafSlab.take(value.length + SUM_BYTES + COUNT_BYTES);
  out.set(value, 0);
  weightView.setBigUint64(0, weight, false);
  out.set(weightScratch, value.length);
  out[out.length - 1] = 1; // count = 1; the other count bytes are already zero
  return out;
}
