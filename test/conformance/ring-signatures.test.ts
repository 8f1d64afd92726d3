/**
 * ring-signatures.json: every primitive, deterministic signature and verification case, run on
 * both curve backends (noble reference and native libsecp256k1). Signatures we produce verify on
 * both backends and survive a decode/encode round trip.
 */
import { describe, expect, it } from 'vitest';
import { bigIntToBytes, bytesToBigInt, bytesToHex, hexToBytes } from '../../core/index.js';
import { sha3_512 } from '../../protocol/hash.js';
import { SECP256K1_N } from '../../protocol/keys.js';
import {
  challenge,
  decodeRingSignature,
  encodeRingSignature,
  hashToCurve,
  hashToScalar,
  keyImage,
  nobleBackend,
  prepareRing,
  signRingSignature,
  verifyRingSignature,
  type EcBackend,
  type RingSigRejectCode,
} from '../../rings/index.js';
import { EC_BACKENDS } from '../helpers/ec-backends.js';
import { caseTitle, hasVectorFile, loadVectors } from '../helpers/vectors.js';

const FILE = 'ring-signatures.json';
const v: any = hasVectorFile(FILE) ? loadVectors(FILE) : undefined;
/** keys.json supplies the private keys behind the ring members (for re-signing checks). */
const keys: any = hasVectorFile('keys.json') ? loadVectors('keys.json') : { cases: [] };
const BACKENDS = EC_BACKENDS;

const hexes = (list: string[]): Uint8Array[] => list.map(hexToBytes);
const scalar = (hex: string): bigint => BigInt('0x' + hex);
const hex32 = (k: bigint): string => bytesToHex(bigIntToBytes(k, 32));

/** Private keys of the vector key set, by public key hex. */
const privateKeyByPublic = new Map<string, Uint8Array>(
  [...(keys.cases as any[]), ...(keys.placeholder_ring_key ? [keys.placeholder_ring_key] : [])].map(
    (k: any) => [k.public_key_hex as string, hexToBytes(k.private_key_hex)],
  ),
);

/** The result upstream produced, as our result value (the reason text is ours). */
function expectedResult(c: any): unknown {
  if (c.expected.valid === true) return { ok: true };
  const upstream = c.upstream_go_result as string;
  let code: RingSigRejectCode;
  if (upstream.startsWith('rejected at decode')) code = 'RING_SIG_MALFORMED';
  else if (upstream.startsWith('rejected: membership')) code = 'RING_SIG_NOT_MEMBER';
  else if (upstream.startsWith('rejected: bLSAG verify')) code = 'RING_SIG_INVALID';
  else if (upstream.startsWith('panicked')) {
    // Upstream panics reading a header shorter than 4 bytes, or indexing the empty ring of n = 0.
    code = hexToBytes(c.signature_hex).length < 4 ? 'RING_SIG_MALFORMED' : 'RING_SIG_EMPTY_RING';
  } else throw new Error(`unmapped upstream result: ${upstream}`);
  return { ok: false, code, reason: expect.any(String) };
}

/** Recomputes the challenge chain step by step: the challenges and the short reductions seen. */
function traceChain(backend: EcBackend, sigBytes: Uint8Array, message: Uint8Array) {
  const d = decodeRingSignature(backend, sigBytes);
  if (!d.ok) throw new Error(d.reason);
  const { sig } = d;
  const challenges: bigint[] = [sig.c0];
  let shortReductions = 0;
  let c = sig.c0;
  for (let i = 0; i < sig.ringSize; i++) {
    const hp = hashToCurve(backend, sig.publicKeys[i]!)!.point;
    const l = backend.mulBaseAdd(sig.responses[i]!, c, sig.points[i]);
    const r = backend.mulAdd(sig.responses[i]!, hp, c, sig.keyImagePoint);
    const input = new Uint8Array([...message, ...backend.encodePoint(l), ...backend.encodePoint(r)]);
    if (bytesToBigInt(sha3_512(input)) % SECP256K1_N < 1n << 248n) shortReductions++;
    c = challenge(backend, message, l, r)!;
    challenges.push(c);
  }
  return { challenges, shortReductions, closes: c === sig.c0 };
}

describe.runIf(v !== undefined)(FILE, () => {
  describe('primitives.hash_to_scalar', () => {
    for (const backend of BACKENDS) {
      describe(backend.name, () => {
        ((v?.primitives?.hash_to_scalar ?? []) as any[]).forEach((c, i) => {
          it(caseTitle(FILE, i, c.note), () => {
            const input = hexToBytes(c.input_hex);
            expect(hex32(bytesToBigInt(sha3_512(input)) % SECP256K1_N)).toBe(c.sha3_512_mod_n_hex);
            expect(hex32(hashToScalar(input)!)).toBe(c.output_scalar_hex);
            if (input.length === 98) {
              // Challenge-shaped input m ‖ L ‖ R: the same scalar through the backend's points.
              const l = backend.decodePoint(input.subarray(32, 65));
              const r = backend.decodePoint(input.subarray(65, 98));
              expect(l).not.toBeNull();
              expect(r).not.toBeNull();
              expect(hex32(challenge(backend, input.subarray(0, 32), l, r)!)).toBe(c.output_scalar_hex);
            }
          });
        });
      });
    }
  });

  describe('primitives.hash_to_curve', () => {
    for (const backend of BACKENDS) {
      describe(backend.name, () => {
        ((v?.primitives?.hash_to_curve ?? []) as any[]).forEach((c, i) => {
          it(caseTitle(FILE, i, `${c.input_pubkey_hex} (${c.attempts} attempt(s))`), () => {
            const r = hashToCurve(backend, hexToBytes(c.input_pubkey_hex));
            expect(r).not.toBeNull();
            expect({ point: bytesToHex(backend.encodePoint(r!.point)), attempts: r!.attempts }).toEqual({
              point: c.output_point_hex,
              attempts: c.attempts,
            });
          });
        });
      });
    }
  });

  describe('deterministic_signatures', () => {
    for (const backend of BACKENDS) {
      describe(backend.name, () => {
        ((v?.deterministic_signatures ?? []) as any[]).forEach((c, i) => {
          it(caseTitle(FILE, i, c.name), () => {
            const ring = hexes(c.ring_pubkeys_hex);
            const message = hexToBytes(c.message_hash_hex);
            const priv = hexToBytes(c.signer_private_key_hex);
            const decoys = new Map<number, bigint>(
              Object.entries(c.decoy_s_hex as Record<string, string>).map(([k, s]) => [Number(k), scalar(s)]),
            );
            const sig = signRingSignature(backend, ring, c.signer_index, priv, message, {
              nonce: scalar(c.nonce_u_hex),
              decoys,
            });
            expect(bytesToHex(sig)).toBe(c.signature_hex);
            expect(bytesToHex(keyImage(backend, priv))).toBe(c.key_image_hex);

            const d = decodeRingSignature(backend, sig);
            expect(d.ok).toBe(true);
            if (!d.ok) return;
            expect(d.sig.responses.map(hex32)).toEqual(c.responses_hex);
            expect(bytesToHex(d.sig.keyImage)).toBe(c.key_image_hex);
            const trace = traceChain(backend, sig, message);
            expect(trace.challenges.slice(0, ring.length).map(hex32)).toEqual(c.challenges_hex);
            expect(trace.closes).toBe(true);
            expect(verifyRingSignature(backend, sig, message, ring)).toEqual({ ok: true });
          });
        });
      });
    }
  });

  describe('cases', () => {
    for (const backend of BACKENDS) {
      describe(backend.name, () => {
        ((v?.cases ?? []) as any[]).forEach((c, i) => {
          it(caseTitle(FILE, i, c.name), () => {
            const sig = hexToBytes(c.signature_hex);
            const message = hexToBytes(c.message_hash_hex);
            const ring = hexes(c.expected_ring_pubkeys_hex);
            const expected = expectedResult(c);
            expect(verifyRingSignature(backend, sig, message, ring)).toEqual(expected);
            // The hot path (members decoded and hashed once) gives the same value.
            expect(verifyRingSignature(backend, sig, message, prepareRing(backend, ring))).toEqual(expected);
            if (c.short_reductions_during_verify !== null) {
              expect(traceChain(backend, sig, message).shortReductions).toBe(
                c.short_reductions_during_verify,
              );
            }
          });
        });
      });
    }
  });

  describe('our signatures verify on both backends and round-trip', () => {
    const positive = ((v?.cases ?? []) as any[])
      .map((c, i) => ({ c, i }))
      .filter(({ c }) => c.expected.valid === true);
    for (const signer of BACKENDS) {
      describe(`signed by ${signer.name}`, () => {
        positive.forEach(({ c, i }) => {
          // Re-signing needs the signer's private key, which keys.json provides for the shared set.
          const decoded = decodeRingSignature(nobleBackend, hexToBytes(c.signature_hex));
          const signerKey = decoded.ok ? decoded.sig.publicKeys[c.signer_index] : undefined;
          const known = signerKey !== undefined && privateKeyByPublic.has(bytesToHex(signerKey));
          it.runIf(known)(caseTitle(FILE, i, c.name), () => {
            const d = decodeRingSignature(nobleBackend, hexToBytes(c.signature_hex));
            if (!d.ok) throw new Error(d.reason);
            // Sign over the same ring in the same order, with the key at the signer's index.
            const ring = d.sig.publicKeys;
            const priv = privateKeyByPublic.get(bytesToHex(ring[c.signer_index]!));
            expect(priv).toBeDefined();
            const message = hexToBytes(c.message_hash_hex);
            const ours = signRingSignature(signer, ring, c.signer_index, priv!, message);
            expect(ours.length).toBe(69 + 65 * ring.length);
            // Same signer, same key image as the vector's signature.
            expect(bytesToHex(ours.subarray(36, 69))).toBe(bytesToHex(d.sig.keyImage));
            const expectedRing = hexes(c.expected_ring_pubkeys_hex);
            for (const verifier of BACKENDS) {
              expect(verifyRingSignature(verifier, ours, message, expectedRing)).toEqual({ ok: true });
              const back = decodeRingSignature(verifier, ours);
              expect(back.ok).toBe(true);
              if (!back.ok) continue;
              const re = encodeRingSignature(
                back.sig.c0,
                back.sig.keyImage,
                back.sig.responses,
                back.sig.publicKeys,
              );
              expect(bytesToHex(re)).toBe(bytesToHex(ours));
            }
          });
        });
      });
    }

    // The largest valid ring whose signer key is known.
    const largest = positive
      .map(({ c }) => ({ c, d: decodeRingSignature(nobleBackend, hexToBytes(c.signature_hex)) }))
      .filter(
        ({ c, d }) =>
          d.ok && privateKeyByPublic.has(bytesToHex(d.sig.publicKeys[c.signer_index] ?? new Uint8Array(0))),
      )
      .sort((a, b) => (b.d.ok ? b.d.sig.publicKeys.length : 0) - (a.d.ok ? a.d.sig.publicKeys.length : 0))[0];
    it.runIf(largest !== undefined)(
      'both backends produce identical bytes from the same nonce and decoys',
      () => {
        const c = largest!.c;
        const d = decodeRingSignature(nobleBackend, hexToBytes(c.signature_hex));
        if (!d.ok) throw new Error(d.reason);
        const ring = d.sig.publicKeys;
        const priv = privateKeyByPublic.get(bytesToHex(ring[c.signer_index]!))!;
        const message = hexToBytes(c.message_hash_hex);
        const opts = {
          nonce: 0x1234567890abcdefn,
          decoys: new Map<number, bigint>(
            ring.map((_, k) => [k, BigInt(k + 1) * 0x1111111111111111111n] as const),
          ),
        };
        opts.decoys.delete(c.signer_index);
        const [a, b] = BACKENDS.map((bk) =>
          bytesToHex(signRingSignature(bk, ring, c.signer_index, priv, message, opts)),
        );
        expect(a).toBe(b);
      },
    );
  });
});
