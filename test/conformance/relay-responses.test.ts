/**
 * relay-responses.json: RelayResponse bytes from their fields, supplier signatures reproduced byte
 * for byte (RFC 6979, low-S, double SHA-256) with each EC backend, every malformed signature
 * rejected, and mined relays (bytes, hash, difficulty checks).
 */
import { describe, expect, it } from 'vitest';
import { bytesToHex, hexToBytes } from '../../core/index.js';
import {
  addressFromPublicKey,
  decodeRelayRequest,
  decodeRelayResponse,
  encodeRelayResponse,
  isMinedRelayApplicable,
  mineRelay,
  publicKeyFromPrivate,
  relayResponseSignableBytes,
  relayResponseSignableHash,
  supplierSignatureDigest,
  withPayloadHash,
  withSupplierSignature,
  type RelayResponse,
} from '../../protocol/index.js';
import { EC_BACKENDS } from '../helpers/ec-backends.js';
import { unsignedResponseFromVector } from '../helpers/relay-vectors.js';
import { caseTitle, hasVectorFile, loadVectors } from '../helpers/vectors.js';

const FILE = 'relay-responses.json';
const REQUESTS = 'relay-requests.json';
const v: any = hasVectorFile(FILE) ? loadVectors(FILE) : undefined;

function responseFromFields(c: any): RelayResponse {
  const base = unsignedResponseFromVector(c);
  return c.payload_hash_hex === null ? base : withPayloadHash(base);
}

describe.runIf(v !== undefined)(FILE, () => {
  ((v?.responses ?? []) as any[]).forEach((c, i) => {
    describe(caseTitle(`${FILE}:responses`, i, c.name), () => {
      const positive = c.payload_hex !== undefined;
      if (positive) {
        it('bytes: payload hash, signable bytes, digest, signed response', () => {
          const res = responseFromFields(c);
          if (c.payload_hash_hex !== null) expect(bytesToHex(res.payloadHash)).toBe(c.payload_hash_hex);
          expect(bytesToHex(relayResponseSignableBytes(res))).toBe(c.signable_bytes_hex);
          expect(bytesToHex(relayResponseSignableHash(res))).toBe(c.signable_hash_hex);
          expect(bytesToHex(supplierSignatureDigest(hexToBytes(c.signable_hash_hex)))).toBe(
            c.ecdsa_digest_hex,
          );
          const signed = withSupplierSignature(res, hexToBytes(c.supplier_signature_hex));
          expect(bytesToHex(encodeRelayResponse(signed))).toBe(c.signed_response_hex);
          const decoded = decodeRelayResponse(hexToBytes(c.signed_response_hex));
          expect(decoded.ok && bytesToHex(relayResponseSignableHash(decoded.value))).toBe(
            c.signable_hash_hex,
          );
          const pub = publicKeyFromPrivate(hexToBytes(c.supplier_private_key_hex));
          expect(bytesToHex(pub)).toBe(c.supplier_public_key_hex);
          expect(addressFromPublicKey(pub)).toBe(c.supplier_operator_address);
        });
      }
      for (const backend of EC_BACKENDS) {
        it(`supplier signature (${backend.name})`, () => {
          const digest = supplierSignatureDigest(hexToBytes(c.signable_hash_hex));
          const pub = hexToBytes(c.supplier_public_key_hex);
          const sig = hexToBytes(c.supplier_signature_hex);
          expect(backend.ecdsaVerify(sig, digest, pub)).toBe(c.expected.signature_valid);
          if (positive) {
            const ours = backend.ecdsaSign(digest, hexToBytes(c.supplier_private_key_hex));
            expect(bytesToHex(ours)).toBe(c.supplier_signature_hex);
          }
        });
      }
    });
  });

  describe('mined relays', () => {
    const requests: any[] = hasVectorFile(REQUESTS) ? loadVectors<any>(REQUESTS).cases : [];
    ((v?.relays ?? []) as any[]).forEach((c, i) => {
      it(caseTitle(`${FILE}:relays`, i, c.name), () => {
        const reqCase = requests[c.request_index];
        expect(reqCase, `${REQUESTS} case ${c.request_index} is needed by this relay`).toBeDefined();
        const req = decodeRelayRequest(hexToBytes(reqCase.signed_request_hex));
        const resCase = v.responses[c.response_index];
        const res = decodeRelayResponse(hexToBytes(resCase.signed_response_hex));
        if (!req.ok || !res.ok) throw new Error('vector request/response must decode');
        const mined = mineRelay(req.value, res.value);
        expect(bytesToHex(mined.bytes)).toBe(c.relay_hex);
        expect(bytesToHex(mined.hash)).toBe(c.relay_hash_hex);
        for (const check of c.difficulty_checks as any[]) {
          expect(isMinedRelayApplicable(mined, hexToBytes(check.target_hex)), check.name).toBe(
            check.applicable,
          );
        }
      });
    });
  });
});
