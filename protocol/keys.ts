/**
 * secp256k1 keys and Pocket addresses: a raw 32-byte scalar → 33-byte compressed public key →
 * bech32 `pokt` address (RIPEMD160(SHA256(pubkey33))).
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bech32 } from '@scure/base';
import { InvalidInputError, bytesToBigInt, bigIntToBytes, bytesToHex } from '../core/index.js';
import { ripemd160, sha256 } from './hash.js';

export const ADDRESS_PREFIX = 'pokt';
/** Order of the secp256k1 group. */
export const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
/** The field prime of secp256k1. */
export const SECP256K1_P = 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2fn;

/** Throws unless `key` is a 32-byte scalar in [1, N). */
export function assertPrivateKey(key: Uint8Array): void {
  if (key.length !== 32) throw new InvalidInputError('private key', `must be 32 bytes, got ${key.length}`);
  const k = bytesToBigInt(key);
  if (k === 0n || k >= SECP256K1_N) throw new InvalidInputError('private key', 'scalar must be in [1, N)');
}

/** The 33-byte SEC1 compressed public key of a raw private key. */
export function publicKeyFromPrivate(privateKey: Uint8Array): Uint8Array {
  assertPrivateKey(privateKey);
  return secp256k1.getPublicKey(privateKey, true);
}

/** True when `pub` is a valid 33-byte compressed point on the curve. */
export function isCompressedPublicKey(pub: Uint8Array): boolean {
  if (pub.length !== 33 || (pub[0] !== 0x02 && pub[0] !== 0x03)) return false;
  try {
    secp256k1.Point.fromBytes(pub).assertValidity();
    return true;
  } catch {
    return false;
  }
}

/** The bech32 `pokt` address of a 33-byte compressed public key. */
export function addressFromPublicKey(pub: Uint8Array, prefix: string = ADDRESS_PREFIX): string {
  if (!isCompressedPublicKey(pub)) {
    throw new InvalidInputError('public key', 'must be a valid 33-byte compressed secp256k1 point');
  }
  return bech32.encode(prefix, bech32.toWords(ripemd160(sha256(pub))));
}

export function addressFromPrivateKey(privateKey: Uint8Array, prefix: string = ADDRESS_PREFIX): string {
  return addressFromPublicKey(publicKeyFromPrivate(privateKey), prefix);
}

/** Decodes a bech32 address to its 20-byte account id, checking the prefix. */
export function decodeAddress(address: string, prefix: string = ADDRESS_PREFIX): Uint8Array {
  let decoded: { prefix: string; words: number[] };
  try {
    decoded = bech32.decode(address as `${string}1${string}`, 90);
  } catch (err) {
    throw new InvalidInputError('address', `not valid bech32: ${address}`, { cause: err });
  }
  if (decoded.prefix !== prefix) {
    throw new InvalidInputError('address', `prefix must be "${prefix}", got "${decoded.prefix}"`);
  }
  const bytes = bech32.fromWords(decoded.words);
  if (bytes.length !== 20) throw new InvalidInputError('address', `must hold 20 bytes, got ${bytes.length}`);
  return Uint8Array.from(bytes);
}

export function isValidAddress(address: string, prefix: string = ADDRESS_PREFIX): boolean {
  try {
    decodeAddress(address, prefix);
    return true;
  } catch {
    return false;
  }
}

/**
 * cosmos-sdk GenPrivKeyFromSecret: k = (int(SHA256(secret)) mod (N-1)) + 1, as 32 bytes.
 */
export function privateKeyFromSecret(secret: Uint8Array): Uint8Array {
  const k = (bytesToBigInt(sha256(secret)) % (SECP256K1_N - 1n)) + 1n;
  return bigIntToBytes(k, 32);
}

/** The secret that derives the ring key padding apps with no delegated gateway. */
export const PLACEHOLDER_RING_SECRET = 'placeholder_ring_key_for_apps_without_gateways';
/** Private key of the placeholder ring member; public knowledge by construction. */
export const PLACEHOLDER_RING_PRIVATE_KEY: Uint8Array = privateKeyFromSecret(
  new TextEncoder().encode(PLACEHOLDER_RING_SECRET),
);
export const PLACEHOLDER_RING_PUBLIC_KEY: Uint8Array = publicKeyFromPrivate(PLACEHOLDER_RING_PRIVATE_KEY);
export const PLACEHOLDER_RING_ADDRESS: string = addressFromPublicKey(PLACEHOLDER_RING_PUBLIC_KEY);
const PLACEHOLDER_HEX = bytesToHex(PLACEHOLDER_RING_PUBLIC_KEY);

export function isPlaceholderPublicKey(pub: Uint8Array): boolean {
  return pub.length === 33 && bytesToHex(pub) === PLACEHOLDER_HEX;
}
