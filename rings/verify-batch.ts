/**
 * The wire format between the verify pool and its workers: many verifications packed in one
 * transferable buffer, so a batch crosses the thread boundary without copying or per-item
 * structured cloning.
 *
 * ```
 * u32 count
 * per item: u32 sigLen | sig | 32-byte message | u16 ringLen | ringLen × 33-byte keys
 * ```
 * All integers big-endian.
 */
import { InvalidInputError } from '../core/errors.js';
import { POINT_BYTES } from './blsag.js';

export interface VerifyItem {
  signature: Uint8Array;
  message32: Uint8Array;
  /** Expected ring keys. Keys that are not 33 bytes can never match a decoded signature key. */
  ringPublicKeys: readonly Uint8Array[];
}

export const MAX_RING_KEYS = 0xffff;

/** The ring keys an item actually carries: only 33-byte keys can be members. */
function packableKeys(keys: readonly Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const k of keys) if (k.length === POINT_BYTES) out.push(k);
  return out;
}

/** Throws InvalidInputError for an item that is a caller bug (message not 32 bytes, ring too large). */
export function checkVerifyItem(item: VerifyItem): void {
  if (item.message32.length !== 32) {
    throw new InvalidInputError(
      'ring signature message',
      `must be a 32-byte hash, got ${item.message32.length} bytes`,
    );
  }
  if (item.ringPublicKeys.length > MAX_RING_KEYS) {
    throw new InvalidInputError('expected ring', `more than ${MAX_RING_KEYS} keys`);
  }
  if (item.signature.length > 0xffffffff) throw new InvalidInputError('ring signature', 'longer than 4 GiB');
}

export function encodeVerifyBatch(items: readonly VerifyItem[]): Uint8Array {
  const rings = items.map((it) => packableKeys(it.ringPublicKeys));
  let total = 4;
  for (let i = 0; i < items.length; i++) {
    total += 4 + items[i]!.signature.length + 32 + 2 + POINT_BYTES * rings[i]!.length;
  }
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, items.length, false);
  let off = 4;
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    view.setUint32(off, it.signature.length, false);
    off += 4;
    out.set(it.signature, off);
    off += it.signature.length;
    out.set(it.message32, off);
    off += 32;
    const ring = rings[i]!;
    view.setUint16(off, ring.length, false);
    off += 2;
    for (const k of ring) {
      out.set(k, off);
      off += POINT_BYTES;
    }
  }
  return out;
}

/** Decoded item; the byte arrays are views into the batch buffer. */
export interface PackedVerifyItem {
  signature: Uint8Array;
  message32: Uint8Array;
  /** The ring keys back to back (ringSize × 33 bytes), usable as a cache key. */
  ringBytes: Uint8Array;
  ringSize: number;
}

/** Inverse of encodeVerifyBatch; throws InvalidInputError on a buffer it did not produce. */
export function decodeVerifyBatch(buf: Uint8Array): PackedVerifyItem[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const fail = (): never => {
    throw new InvalidInputError('verify batch', 'truncated or corrupt');
  };
  if (buf.length < 4) fail();
  const count = view.getUint32(0, false);
  const items: PackedVerifyItem[] = [];
  let off = 4;
  for (let i = 0; i < count; i++) {
    if (off + 4 > buf.length) fail();
    const sigLen = view.getUint32(off, false);
    off += 4;
    if (off + sigLen + 32 + 2 > buf.length) fail();
    const signature = buf.subarray(off, off + sigLen);
    off += sigLen;
    const message32 = buf.subarray(off, off + 32);
    off += 32;
    const ringSize = view.getUint16(off, false);
    off += 2;
    if (off + ringSize * POINT_BYTES > buf.length) fail();
    const ringBytes = buf.subarray(off, off + ringSize * POINT_BYTES);
    off += ringSize * POINT_BYTES;
    items.push({ signature, message32, ringBytes, ringSize });
  }
  if (off !== buf.length) fail();
  return items;
}

/** The keys of a packed ring. */
export function splitRingBytes(ringBytes: Uint8Array, ringSize: number): Uint8Array[] {
  const keys: Uint8Array[] = [];
  for (let i = 0; i < ringSize; i++) keys.push(ringBytes.subarray(i * POINT_BYTES, (i + 1) * POINT_BYTES));
  return keys;
}
