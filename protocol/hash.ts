/**
 * The hash functions the protocol uses, on node:crypto (OpenSSL). SHA3 here is FIPS-202 SHA3,
 * never pre-standard Keccak.
 */
import { createHash } from 'node:crypto';

function digest(alg: string, parts: readonly Uint8Array[]): Uint8Array {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  const out = h.digest();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

export function sha256(...parts: Uint8Array[]): Uint8Array {
  return digest('sha256', parts);
}

export function sha3_256(...parts: Uint8Array[]): Uint8Array {
  return digest('sha3-256', parts);
}

export function sha3_512(...parts: Uint8Array[]): Uint8Array {
  return digest('sha3-512', parts);
}

export function ripemd160(...parts: Uint8Array[]): Uint8Array {
  return digest('ripemd160', parts);
}
