/**
 * relay-requests.json: RelayRequest bytes built from their fields, signable bytes and hash, the
 * ring signature inside checked with each EC backend, and tampered requests rejected.
 */
import { describe, expect, it } from 'vitest';
import { bytesToHex, hexToBytes } from '../../core/index.js';
import {
  decodeRelayRequest,
  encodeRelayRequest,
  relayRequestSignableBytes,
  relayRequestSignableHash,
  type RelayRequest,
} from '../../protocol/index.js';
import { signRingSignature, verifyRingSignature } from '../../rings/index.js';
import { EC_BACKENDS } from '../helpers/ec-backends.js';
import { sessionHeaderFromVector } from '../helpers/relay-vectors.js';
import { caseTitle, hasVectorFile, loadVectors } from '../helpers/vectors.js';

const FILE = 'relay-requests.json';
const v: any = hasVectorFile(FILE) ? loadVectors(FILE) : undefined;

function requestFromFields(c: any, signature: Uint8Array): RelayRequest {
  return {
    meta: {
      sessionHeader: sessionHeaderFromVector(c.session_header),
      signature: Buffer.from(signature),
      supplierOperatorAddress: c.supplier_operator_address,
    },
    payload: Buffer.from(hexToBytes(c.payload_hex)),
  };
}

describe.runIf(v !== undefined)(FILE, () => {
  ((v?.cases ?? []) as any[]).forEach((c, i) => {
    describe(caseTitle(FILE, i, c.name), () => {
      it('bytes: encoding, signable bytes and hash', () => {
        const signed = decodeRelayRequest(hexToBytes(c.signed_request_hex));
        expect(signed.ok).toBe(true);
        if (!signed.ok) return;
        // A received request is re-marshaled, never hashed as received.
        expect(bytesToHex(encodeRelayRequest(signed.value))).toBe(c.signed_request_hex);
        expect(bytesToHex(relayRequestSignableHash(signed.value))).toBe(c.signable_hash_hex);
        if (c.session_header === undefined) return;
        const unsigned = requestFromFields(c, new Uint8Array(0));
        expect(bytesToHex(encodeRelayRequest(unsigned))).toBe(c.unsigned_request_hex);
        expect(bytesToHex(relayRequestSignableBytes(unsigned))).toBe(c.signable_bytes_hex);
        expect(bytesToHex(relayRequestSignableHash(unsigned))).toBe(c.signable_hash_hex);
        const sig = hexToBytes(c.signature_hex);
        expect(sig.length).toBe(c.signature_len);
        expect(bytesToHex(encodeRelayRequest(requestFromFields(c, sig)))).toBe(c.signed_request_hex);
        expect(bytesToHex(signed.value.payload)).toBe(c.payload_hex);
      });

      for (const backend of EC_BACKENDS) {
        it(`ring signature (${backend.name})`, () => {
          const signed = decodeRelayRequest(hexToBytes(c.signed_request_hex));
          if (!signed.ok) throw new Error(signed.reason);
          const ring = (c.ring_pubkeys_hex as string[]).map(hexToBytes);
          const hash = relayRequestSignableHash(signed.value);
          const result = verifyRingSignature(backend, signed.value.meta!.signature, hash, ring);
          expect(result.ok).toBe(c.expected.signature_valid);
          if (c.signer_private_key_hex !== undefined) {
            // Our own signature over the same request verifies, and lands at the same byte length.
            const ours = signRingSignature(
              backend,
              ring,
              c.signer_index,
              hexToBytes(c.signer_private_key_hex),
              hash,
            );
            expect(ours.length).toBe(c.signature_len);
            expect(verifyRingSignature(backend, ours, hash, ring)).toEqual({ ok: true });
          }
        });
      }
    });
  });
});
