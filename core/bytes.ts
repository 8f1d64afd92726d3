import { InvalidInputError } from './errors.js';

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

/** Decodes an even-length hex string (no 0x prefix); throws InvalidInputError otherwise. */
export function hexToBytes(hex: string): Uint8Array {
  if (!HEX_RE.test(hex))
    throw new InvalidInputError('hex', `not an even-length hex string (length ${hex.length})`);
  const buf = Buffer.from(hex, 'hex');
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

export function bytesToHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Lexicographic byte comparison, like Go's bytes.Compare: -1, 0 or 1. */
export function compareBytes(a: Uint8Array, b: Uint8Array): -1 | 0 | 1 {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  if (a.length === b.length) return 0;
  return a.length < b.length ? -1 : 1;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return compareBytes(a, b) === 0;
}

/** Unsigned big-endian integer value of the bytes. */
export function bytesToBigInt(bytes: Uint8Array): bigint {
  if (bytes.length === 0) return 0n;
  return BigInt('0x' + bytesToHex(bytes));
}

/** Writes a non-negative integer as exactly `length` big-endian bytes; throws if it does not fit. */
export function bigIntToBytes(value: bigint, length: number): Uint8Array {
  if (value < 0n) throw new InvalidInputError('integer', 'negative value cannot be encoded unsigned');
  const hex = value.toString(16);
  if (hex.length > length * 2) throw new InvalidInputError('integer', `does not fit in ${length} bytes`);
  return hexToBytes(hex.padStart(length * 2, '0'));
}

/** Minimal big-endian encoding: no leading zero bytes, empty for zero (Go big.Int.Bytes). */
export function bigIntToMinimalBytes(value: bigint): Uint8Array {
  if (value < 0n) throw new InvalidInputError('integer', 'negative value cannot be encoded unsigned');
  if (value === 0n) return new Uint8Array(0);
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = '0' + hex;
  return hexToBytes(hex);
}

/** Timing-safe equality for secrets and MACs: runtime independent of where the inputs differ. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
