/**
 * keys.json: public key and address from each private key (protocol/keys and both curve
 * backends), and the placeholder ring key.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bigIntToBytes, bytesToBigInt, bytesToHex, hexToBytes } from '../../core/index.js';
import {
  PLACEHOLDER_RING_ADDRESS,
  PLACEHOLDER_RING_PRIVATE_KEY,
  PLACEHOLDER_RING_PUBLIC_KEY,
  PLACEHOLDER_RING_SECRET,
  addressFromPrivateKey,
  addressFromPublicKey,
  isCompressedPublicKey,
  isPlaceholderPublicKey,
  privateKeyFromSecret,
  publicKeyFromPrivate,
} from '../../protocol/keys.js';
import type { EcBackend } from '../../rings/index.js';
import { EC_BACKENDS } from '../helpers/ec-backends.js';
import { caseTitle, hasVectorFile, loadVectors } from '../helpers/vectors.js';

const FILE = 'keys.json';
const v: any = hasVectorFile(FILE) ? loadVectors(FILE) : undefined;
const BACKENDS = EC_BACKENDS;

function backendPublicKey(backend: EcBackend, priv: Uint8Array): string {
  return bytesToHex(backend.encodePoint(backend.mulBase(bytesToBigInt(priv))));
}

describe.runIf(v !== undefined)(FILE, () => {
  ((v?.cases ?? []) as any[]).forEach((c, i) => {
    describe(caseTitle(FILE, i, c.name), () => {
      it('public key and address from the private key', () => {
        const priv = hexToBytes(c.private_key_hex);
        const pub = publicKeyFromPrivate(priv);
        expect({
          public_key_hex: bytesToHex(pub),
          address: addressFromPublicKey(pub),
          address_from_private: addressFromPrivateKey(priv),
          compressed: isCompressedPublicKey(pub),
          placeholder: isPlaceholderPublicKey(pub),
        }).toEqual({
          public_key_hex: c.public_key_hex,
          address: c.address,
          address_from_private: c.address,
          compressed: true,
          placeholder: false,
        });
      });

      for (const backend of BACKENDS) {
        it(`public key on the ${backend.name} backend`, () => {
          const priv = hexToBytes(c.private_key_hex);
          expect(backendPublicKey(backend, priv)).toBe(c.public_key_hex);
          // The key decodes and re-encodes to the same 33 bytes.
          const point = backend.decodePoint(hexToBytes(c.public_key_hex));
          expect(point).not.toBeNull();
          expect(bytesToHex(backend.encodePoint(point))).toBe(c.public_key_hex);
        });
      }
    });
  });

  describe('placeholder_ring_key', () => {
    const p = v?.placeholder_ring_key;

    it('derives from the public secret and matches the protocol constants', () => {
      const secret = new TextEncoder().encode(p.secret_utf8);
      expect({
        secret: PLACEHOLDER_RING_SECRET,
        derived: bytesToHex(privateKeyFromSecret(secret)),
        private_key_hex: bytesToHex(PLACEHOLDER_RING_PRIVATE_KEY),
        public_key_hex: bytesToHex(PLACEHOLDER_RING_PUBLIC_KEY),
        address: PLACEHOLDER_RING_ADDRESS,
        from_private: bytesToHex(publicKeyFromPrivate(hexToBytes(p.private_key_hex))),
        address_from_public: addressFromPublicKey(hexToBytes(p.public_key_hex)),
        is_placeholder: isPlaceholderPublicKey(hexToBytes(p.public_key_hex)),
      }).toEqual({
        secret: p.secret_utf8,
        derived: p.private_key_hex,
        private_key_hex: p.private_key_hex,
        public_key_hex: p.public_key_hex,
        address: p.address,
        from_private: p.public_key_hex,
        address_from_public: p.address,
        is_placeholder: true,
      });
    });

    it('follows k = (int(SHA256(secret)) mod (N-1)) + 1', () => {
      // Independent of privateKeyFromSecret: recompute the cosmos-sdk derivation by hand.
      const digest = new Uint8Array(createHash('sha256').update(p.secret_utf8, 'utf8').digest());
      const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
      expect(bytesToHex(bigIntToBytes((bytesToBigInt(digest) % (n - 1n)) + 1n, 32))).toBe(p.private_key_hex);
    });

    for (const backend of BACKENDS) {
      it(`public key on the ${backend.name} backend`, () => {
        expect(backendPublicKey(backend, hexToBytes(p.private_key_hex))).toBe(p.public_key_hex);
      });
    }
  });
});
