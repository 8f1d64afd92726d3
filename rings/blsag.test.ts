/**
 * bLSAG verification on hostile bytes: every malformed input upstream rejects or panics on gives
 * a result value (never an exception), on both backends, with the same code on both. Then a
 * seed-fixed fuzz run over thousands of mutated signatures, and the signer's input checks.
 */
import { describe, expect, it } from 'vitest';
import { bigIntToBytes, bytesToBigInt, bytesToHex, concatBytes } from '../core/bytes.js';
import { InvalidInputError } from '../core/errors.js';
import { sha256 } from '../protocol/hash.js';
import { SECP256K1_N as N, SECP256K1_P as P } from '../protocol/keys.js';
import {
  challenge,
  decodeRingSignature,
  encodeRingSignature,
  hashToCurve,
  keyImage,
  ringSignatureLength,
  signRingSignature,
  verifyRingSignature,
  type RingSigRejectCode,
  type RingVerifyResult,
} from './blsag.js';
import type { EcBackend } from './ec-backend.js';
import { nobleBackend } from './noble-backend.js';
import { prepareRing } from './ring-points.js';
import { selectBackend } from './select-backend.js';
import { seededUint32 } from '../test/helpers/prng.js';

const native = selectBackend('native');
const BACKENDS: EcBackend[] = [nobleBackend, native];

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const privs = [0, 1, 2, 3, 4].map((i) => sha256(text(`rings blsag test key ${i}`)));
const pubs = privs.map((k) => native.encodePoint(native.mulBase(bytesToBigInt(k))));
const message = sha256(text('signable relay request'));
const otherMessage = sha256(text('another request'));

/** A deterministic signature by member `signer` over `pubs.slice(0, n)`. */
function fixedSignature(n: number, signer: number, msg = message): Uint8Array {
  const decoys = new Map<number, bigint>();
  for (let i = 0; i < n; i++) if (i !== signer) decoys.set(i, 0x5eed0000n + BigInt(i));
  return signRingSignature(native, pubs.slice(0, n), signer, privs[signer]!, msg, {
    nonce: 0xabcdefn,
    decoys,
  });
}

const sig2 = fixedSignature(2, 1);
const sig4 = fixedSignature(4, 2);
const ring2 = pubs.slice(0, 2);
const ring4 = pubs.slice(0, 4);

function rejected(code: RingSigRejectCode): unknown {
  return { ok: false, code, reason: expect.stringMatching(/\S/) as unknown };
}

/** Verifies on both backends, raw and prepared ring, and checks all four answers are equal. */
function verifyAll(sig: Uint8Array, ring: readonly Uint8Array[], msg = message): RingVerifyResult {
  const results = BACKENDS.flatMap((b) => [
    verifyRingSignature(b, sig, msg, ring),
    verifyRingSignature(b, sig, msg, prepareRing(b, ring)),
  ]);
  for (const r of results.slice(1)) expect(r).toEqual(results[0]);
  return results[0]!;
}

function patched(sig: Uint8Array, offset: number, bytes: Uint8Array): Uint8Array {
  const out = Uint8Array.from(sig);
  out.set(bytes, offset);
  return out;
}

const withCount = (sig: Uint8Array, n: number): Uint8Array => {
  const out = Uint8Array.from(sig);
  new DataView(out.buffer).setUint32(0, n >>> 0, false);
  return out;
};
const keyImageAt = 36;
const responseAt = (i: number): number => 69 + 65 * i;
const memberAt = (i: number): number => 101 + 65 * i;
const point33 = (prefix: number, x: bigint): Uint8Array =>
  concatBytes(Uint8Array.of(prefix), bigIntToBytes(x, 32));

describe('well-formed signatures', () => {
  it('verify on both backends (2 and 4 members)', () => {
    expect(verifyAll(sig2, ring2)).toEqual({ ok: true });
    expect(verifyAll(sig4, ring4)).toEqual({ ok: true });
    expect(verifyAll(sig2, ring2, otherMessage)).toEqual(rejected('RING_SIG_INVALID'));
  });

  it('accept a signature over a subset of the expected ring, in any order of the expected ring', () => {
    expect(verifyAll(sig2, [...ring4].reverse())).toEqual({ ok: true });
  });

  it('ignore trailing bytes after the last ring member (upstream does)', () => {
    for (const extra of [1, 65, 10_000]) {
      expect(verifyAll(concatBytes(sig2, new Uint8Array(extra).fill(0xa5)), ring2)).toEqual({ ok: true });
    }
    const d = decodeRingSignature(native, concatBytes(sig2, new Uint8Array(7)));
    expect(d.ok && d.sig.trailingBytes).toBe(7);
  });

  it('accept scalars in [N, 2^256) as value − N (c0 and s_i)', () => {
    const d = decodeRingSignature(native, sig2);
    if (!d.ok) throw new Error(d.reason);
    // Only values below 2^256 − N have a non-canonical twin; make the signature use one.
    const small = (1n << 100n) + 12345n;
    const s0 = small;
    const resigned = signRingSignature(native, ring2, 1, privs[1]!, message, {
      nonce: 0xabcdefn,
      decoys: new Map([[0, s0]]),
    });
    const nonCanonical = patched(resigned, responseAt(0), bigIntToBytes(s0 + N, 32));
    expect(verifyAll(nonCanonical, ring2)).toEqual({ ok: true });
    const c0 = bytesToBigInt(resigned.subarray(4, 36));
    if (c0 < (1n << 256n) - N) {
      expect(verifyAll(patched(resigned, 4, bigIntToBytes(c0 + N, 32)), ring2)).toEqual({ ok: true });
    }
    // A response of exactly N is 0, which breaks the chain but is not malformed.
    expect(verifyAll(patched(sig2, responseAt(0), bigIntToBytes(N, 32)), ring2)).toEqual(
      rejected('RING_SIG_INVALID'),
    );
    expect(verifyAll(patched(sig2, 4, new Uint8Array(32).fill(0xff)), ring2)).toEqual(
      rejected('RING_SIG_INVALID'),
    );
  });

  it('a 1-member ring is accepted when its chain closes (upstream Verify accepts n = 1)', () => {
    for (const b of BACKENDS) {
      const x = bytesToBigInt(privs[0]!);
      const hp = hashToCurve(b, pubs[0]!)!.point;
      const u = 0x1234n;
      const c0 = challenge(b, message, b.mulBase(u), b.mul(hp, u))!;
      const s0 = (((u - c0 * x) % N) + N) % N;
      const single = encodeRingSignature(c0, b.encodePoint(b.mul(hp, x)), [s0], [pubs[0]!]);
      expect(single.length).toBe(ringSignatureLength(1));
      expect(verifyAll(single, ring2)).toEqual({ ok: true });
      expect(verifyAll(single, [pubs[1]!])).toEqual(rejected('RING_SIG_NOT_MEMBER'));
    }
  });

  it('degenerate nonce 0 and zero decoys (points at infinity inside the chain) verify on both', () => {
    for (const b of BACKENDS) {
      const zeroNonce = signRingSignature(b, ring2, 0, privs[0]!, message, { nonce: 0n, decoys: { 1: 0n } });
      expect(verifyAll(zeroNonce, ring2)).toEqual({ ok: true });
    }
    const [a, c] = BACKENDS.map((b) =>
      bytesToHex(
        signRingSignature(b, ring4, 3, privs[3]!, message, { nonce: 0n, decoys: { 0: 0n, 1: 0n, 2: 7n } }),
      ),
    );
    expect(a).toBe(c);
  });

  it('the key image depends only on the signer key', () => {
    const d = decodeRingSignature(native, sig4);
    if (!d.ok) throw new Error(d.reason);
    for (const b of BACKENDS) expect(bytesToHex(keyImage(b, privs[2]!))).toBe(bytesToHex(d.sig.keyImage));
  });
});

describe('malformed signatures are rejected as values', () => {
  it('inputs shorter than the 4-byte header', () => {
    for (const len of [0, 1, 2, 3])
      expect(verifyAll(sig2.subarray(0, len), ring2)).toEqual(rejected('RING_SIG_MALFORMED'));
  });

  it('every truncation of a valid signature', () => {
    for (let len = 4; len < sig2.length; len++) {
      expect(verifyAll(sig2.subarray(0, len), ring2)).toEqual(rejected('RING_SIG_MALFORMED'));
    }
  });

  it('header n larger than the entries present (oversized n)', () => {
    for (const n of [3, 4, 100, 0x7fffffff, 0xffffffff]) {
      expect(verifyAll(withCount(sig2, n), ring2)).toEqual(rejected('RING_SIG_MALFORMED'));
    }
  });

  it('huge n whose 69 + 65n would wrap a 32-bit length to a few bytes', () => {
    // 69 + 65·66076419 = 2^32 + 8: a uint32 computation would accept any input of ≥ 8 bytes.
    expect((69 + 65 * 66076419) % 2 ** 32).toBe(8);
    for (const n of [66076419, 66076420, 0xffffffff]) {
      expect(verifyAll(withCount(sig2, n), ring2)).toEqual(rejected('RING_SIG_MALFORMED'));
      expect(verifyAll(withCount(new Uint8Array(8), n), ring2)).toEqual(rejected('RING_SIG_MALFORMED'));
    }
  });

  it('ring of size 0: header only, full 69 bytes, and with trailing entries', () => {
    expect(verifyAll(withCount(sig2.subarray(0, 4), 0), ring2)).toEqual(rejected('RING_SIG_MALFORMED'));
    expect(verifyAll(withCount(sig2.subarray(0, 68), 0), ring2)).toEqual(rejected('RING_SIG_MALFORMED'));
    expect(verifyAll(withCount(sig2.subarray(0, 69), 0), ring2)).toEqual(rejected('RING_SIG_EMPTY_RING'));
    expect(verifyAll(withCount(sig2, 0), ring2)).toEqual(rejected('RING_SIG_EMPTY_RING'));
    expect(verifyAll(withCount(sig2, 0), [])).toEqual(rejected('RING_SIG_EMPTY_RING'));
    // A bad key image is a decode error, which comes before the empty-ring check.
    const badImage = patched(withCount(sig2, 0), keyImageAt, point33(0x02, 0n));
    expect(verifyAll(badImage, ring2)).toEqual(rejected('RING_SIG_MALFORMED'));
  });

  it('ring of size 1 cut from a 2-member signature (the second entry becomes trailing bytes)', () => {
    expect(verifyAll(withCount(sig2, 1), ring2)).toEqual(rejected('RING_SIG_INVALID'));
  });

  const badPoints: [string, Uint8Array][] = [
    ['x not on the curve', point33(0x02, 0n)],
    ['x = p', point33(0x02, P)],
    ['x ≥ p (2^256 − 1)', point33(0x03, (1n << 256n) - 1n)],
    ['prefix 04', concatBytes(Uint8Array.of(0x04), pubs[0]!.subarray(1))],
    ['prefix 06', concatBytes(Uint8Array.of(0x06), pubs[0]!.subarray(1))],
    ['prefix 07', concatBytes(Uint8Array.of(0x07), pubs[0]!.subarray(1))],
    ['prefix 00 (infinity-like)', new Uint8Array(33)],
    ['02 followed by zeros (how upstream writes infinity)', point33(0x02, 0n)],
  ];
  for (const [name, bad] of badPoints) {
    it(`key image: ${name}`, () => {
      expect(verifyAll(patched(sig2, keyImageAt, bad), ring2)).toEqual(rejected('RING_SIG_MALFORMED'));
    });
    it(`ring member: ${name}`, () => {
      expect(verifyAll(patched(sig4, memberAt(3), bad), ring4)).toEqual(rejected('RING_SIG_MALFORMED'));
      // Even with the bad bytes listed in the expected ring (only a raw ring can hold them).
      for (const b of BACKENDS) {
        expect(verifyRingSignature(b, patched(sig2, memberAt(0), bad), message, [bad, ring2[1]!])).toEqual(
          rejected('RING_SIG_MALFORMED'),
        );
      }
    });
  }

  it('a malformed entry wins over a non-member entry before it (decode runs first)', () => {
    let s = patched(sig4, memberAt(0), pubs[4]!); // valid point, not a member
    s = patched(s, memberAt(2), point33(0x02, 0n));
    expect(verifyAll(s, ring4)).toEqual(rejected('RING_SIG_MALFORMED'));
    expect(verifyAll(patched(sig4, memberAt(0), pubs[4]!), ring4)).toEqual(rejected('RING_SIG_NOT_MEMBER'));
  });

  it('decodeRingSignature reports the same decode failures', () => {
    for (const b of BACKENDS) {
      expect(decodeRingSignature(b, new Uint8Array(3))).toEqual(rejected('RING_SIG_MALFORMED'));
      expect(decodeRingSignature(b, withCount(sig2, 0xffffffff))).toEqual(rejected('RING_SIG_MALFORMED'));
      expect(decodeRingSignature(b, patched(sig2, memberAt(1), point33(0x02, P)))).toEqual(
        rejected('RING_SIG_MALFORMED'),
      );
      const ok = decodeRingSignature(b, withCount(sig2.subarray(0, 69), 0));
      expect(ok.ok && ok.sig.ringSize).toBe(0);
    }
  });

  it('a message that is not 32 bytes is a caller bug and throws', () => {
    for (const b of BACKENDS) {
      expect(() => verifyRingSignature(b, sig2, message.subarray(0, 31), ring2)).toThrow(InvalidInputError);
    }
  });

  it('a prepared ring used with the other backend throws', () => {
    expect(() => verifyRingSignature(native, sig2, message, prepareRing(nobleBackend, ring2))).toThrow(
      InvalidInputError,
    );
  });
});

describe('fuzz: mutated and random signatures never throw (seed-fixed)', () => {
  it('3000 mutations on native, every 10th cross-checked on noble, both ring paths', () => {
    const next = seededUint32(0x5eed2024);
    const int = (n: number): number => next() % n;
    const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => next() & 0xff);
    const bases: [Uint8Array, Uint8Array[]][] = [
      [sig2, ring2],
      [fixedSignature(3, 0), pubs.slice(0, 3)],
      [sig4, ring4],
    ];
    const preparedNative = bases.map(([, r]) => prepareRing(native, r));
    const preparedNoble = bases.map(([, r]) => prepareRing(nobleBackend, r));
    const mutate = (src: Uint8Array): Uint8Array => {
      const s = Uint8Array.from(src);
      switch (int(9)) {
        case 0: // flip one bit anywhere
          s[int(s.length)]! ^= 1 << int(8);
          return s;
        case 1: // overwrite one byte
          s[int(s.length)] = int(256);
          return s;
        case 2: // truncate
          return s.subarray(0, int(s.length));
        case 3: // extend with random bytes
          return concatBytes(s, bytes(1 + int(80)));
        case 4: // random ring count
          new DataView(s.buffer).setUint32(0, int(4) === 0 ? next() : int(8), false);
          return s;
        case 5: {
          // random key image or member x with a compressed prefix
          const at = int(2) === 0 ? keyImageAt : memberAt(int((s.length - 69) / 65));
          s.set(concatBytes(Uint8Array.of(2 + int(2)), bytes(32)), at);
          return s;
        }
        case 6: // random scalar
          s.set(bytes(32), int(2) === 0 ? 4 : responseAt(int((s.length - 69) / 65)));
          return s;
        case 7: {
          // swap two ring entries
          const n = (s.length - 69) / 65;
          const i = int(n);
          const j = int(n);
          const a = s.slice(responseAt(i), responseAt(i) + 65);
          s.set(s.slice(responseAt(j), responseAt(j) + 65), responseAt(i));
          s.set(a, responseAt(j));
          return s;
        }
        default: // entirely random bytes with a plausible header
          return concatBytes(bigIntToBytes(BigInt(int(6)), 4), bytes(int(400)));
      }
    };

    const seen = new Map<string, number>();
    for (let iter = 0; iter < 3000; iter++) {
      const which = int(bases.length);
      const [base, ring] = bases[which]!;
      const sig = mutate(base);
      const msg = int(20) === 0 ? otherMessage : message;
      let results: RingVerifyResult[];
      try {
        results = [
          verifyRingSignature(native, sig, msg, ring),
          verifyRingSignature(native, sig, msg, preparedNative[which]!),
        ];
        if (iter % 10 === 0) {
          results.push(
            verifyRingSignature(nobleBackend, sig, msg, ring),
            verifyRingSignature(nobleBackend, sig, msg, preparedNoble[which]!),
          );
        }
      } catch (err) {
        throw new Error(`iteration ${iter} threw on ${bytesToHex(sig)}: ${String(err)}`, { cause: err });
      }
      for (const r of results.slice(1)) expect(r).toEqual(results[0]);
      const r = results[0]!;
      const key = r.ok ? 'ok' : r.code;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    // The mutations reached every outcome.
    expect([...seen.keys()].sort()).toEqual([
      'RING_SIG_EMPTY_RING',
      'RING_SIG_INVALID',
      'RING_SIG_MALFORMED',
      'RING_SIG_NOT_MEMBER',
      'ok',
    ]);
  });
});

describe('signRingSignature input checks', () => {
  const cases: [string, () => unknown][] = [
    ['ring of 0', () => signRingSignature(native, [], 0, privs[0]!, message)],
    ['ring of 1', () => signRingSignature(native, [pubs[0]!], 0, privs[0]!, message)],
    ['signer index out of range', () => signRingSignature(native, ring2, 2, privs[0]!, message)],
    ['negative signer index', () => signRingSignature(native, ring2, -1, privs[0]!, message)],
    ['signer key not at the index', () => signRingSignature(native, ring2, 1, privs[0]!, message)],
    ['invalid ring key', () => signRingSignature(native, [pubs[0]!, point33(2, 0n)], 0, privs[0]!, message)],
    [
      '65-byte ring key',
      () => signRingSignature(native, [pubs[0]!, new Uint8Array(65)], 0, privs[0]!, message),
    ],
    ['zero private key', () => signRingSignature(native, ring2, 0, new Uint8Array(32), message)],
    ['private key N', () => signRingSignature(native, ring2, 0, bigIntToBytes(N, 32), message)],
    ['31-byte message', () => signRingSignature(native, ring2, 0, privs[0]!, message.subarray(1))],
    ['nonce ≥ N', () => signRingSignature(native, ring2, 0, privs[0]!, message, { nonce: N })],
    ['negative decoy', () => signRingSignature(native, ring2, 0, privs[0]!, message, { decoys: { 1: -1n } })],
    [
      'decoy at the signer index',
      () => signRingSignature(native, ring2, 0, privs[0]!, message, { decoys: { 0: 1n } }),
    ],
    [
      'decoy outside the ring',
      () => signRingSignature(native, ring2, 0, privs[0]!, message, { decoys: { 5: 1n } }),
    ],
  ];
  for (const [name, call] of cases) {
    it(`throws InvalidInputError: ${name}`, () => {
      expect(call).toThrow(InvalidInputError);
    });
  }

  it('signs with random nonces: two signatures differ but share the key image and both verify', () => {
    const a = signRingSignature(native, ring4, 1, privs[1]!, message);
    const b = signRingSignature(native, prepareRing(native, ring4), 1, privs[1]!, message);
    expect(bytesToHex(a)).not.toBe(bytesToHex(b));
    expect(bytesToHex(a.subarray(36, 69))).toBe(bytesToHex(b.subarray(36, 69)));
    expect(verifyAll(a, ring4)).toEqual({ ok: true });
    expect(verifyAll(b, ring4)).toEqual({ ok: true });
  });

  it('allows duplicate keys in the ring, as ring-go effectively does', () => {
    const dup = [pubs[0]!, pubs[1]!, pubs[0]!];
    expect(verifyAll(signRingSignature(native, dup, 1, privs[1]!, message), ring2)).toEqual({ ok: true });
  });
});
