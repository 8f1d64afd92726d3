/**
 * Both curve backends give the same bytes for every operation bLSAG uses, including the inputs
 * libsecp256k1 refuses (zero scalars, scalars ≥ N, sums at infinity), decode exactly the points
 * decred's ParsePubKey accepts at 33 bytes, and follow the cosmos-sdk ECDSA rules.
 */
import { describe, expect, it } from 'vitest';
import { bigIntToBytes, bytesToHex, concatBytes, hexToBytes } from '../core/bytes.js';
import { InvalidInputError } from '../core/errors.js';
import { sha256 } from '../protocol/hash.js';
import { SECP256K1_N as N, SECP256K1_P as P } from '../protocol/keys.js';
import { HALF_N, canonicalEcdsaSignature, type EcBackend } from './ec-backend.js';
import { nobleBackend } from './noble-backend.js';
import { selectBackend } from './select-backend.js';
import { seededUint32 } from '../test/helpers/prng.js';

const native = selectBackend('native');
const BACKENDS: EcBackend[] = [nobleBackend, native];
const G_HEX = '0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798';
const INFINITY_HEX = '02' + '00'.repeat(32);

function compressed(prefix: number, x: bigint): Uint8Array {
  return concatBytes(Uint8Array.of(prefix), bigIntToBytes(x, 32));
}

/** Deterministic pseudo-random scalars (mulberry32 over a fixed seed), plus the edge values. */
function scalars(count: number, seed: number): bigint[] {
  const next32 = seededUint32(seed);
  const out = [0n, 1n, 2n, N - 1n, N, N + 1n, 2n * N - 1n, (1n << 256n) - 1n, HALF_N, HALF_N + 1n];
  while (out.length < count) {
    let k = 0n;
    for (let i = 0; i < 8; i++) k = (k << 32n) | BigInt(next32());
    out.push(k);
  }
  return out;
}

/** Runs `op` on every backend and returns the encodings, which must all be equal. */
function agree(op: <Pt>(b: EcBackend<Pt>) => Pt): string {
  const encodings = BACKENDS.map((b) => bytesToHex(b.encodePoint(op(b))));
  expect(new Set(encodings).size).toBe(1);
  return encodings[0]!;
}

function point<Pt>(b: EcBackend<Pt>, hex: string): Pt {
  const p = b.decodePoint(hexToBytes(hex));
  if (p === null) throw new Error(`test point ${hex} does not decode`);
  return p;
}

describe('decodePoint', () => {
  const onCurveAtN = bytesToHex(compressed(0x02, N)); // x = N is on the curve (r = 0 for recovery)
  const onCurveAtNPlus2 = bytesToHex(compressed(0x03, N + 2n));
  const cases: { name: string; hex: string; valid: boolean }[] = [
    { name: 'generator', hex: G_HEX, valid: true },
    { name: 'generator, odd y', hex: '03' + G_HEX.slice(2), valid: true },
    { name: 'x = N (on the curve)', hex: onCurveAtN, valid: true },
    { name: 'x = N + 2 (on the curve)', hex: onCurveAtNPlus2, valid: true },
    { name: 'x = 0 (7 has no square root)', hex: bytesToHex(compressed(0x02, 0n)), valid: false },
    { name: 'x = N + 1 (off the curve)', hex: bytesToHex(compressed(0x02, N + 1n)), valid: false },
    { name: 'x = p', hex: bytesToHex(compressed(0x02, P)), valid: false },
    { name: 'x = p + 1', hex: bytesToHex(compressed(0x03, P + 1n)), valid: false },
    { name: 'x = 2^256 - 1', hex: '02' + 'ff'.repeat(32), valid: false },
    { name: 'prefix 04 at 33 bytes', hex: '04' + G_HEX.slice(2), valid: false },
    { name: 'prefix 06 at 33 bytes', hex: '06' + G_HEX.slice(2), valid: false },
    { name: 'prefix 07 at 33 bytes', hex: '07' + G_HEX.slice(2), valid: false },
    { name: 'prefix 00 at 33 bytes', hex: '00' + G_HEX.slice(2), valid: false },
    { name: 'prefix 01', hex: '01' + G_HEX.slice(2), valid: false },
    { name: 'prefix ff', hex: 'ff' + G_HEX.slice(2), valid: false },
    { name: 'infinity encoding 02 || 0^32', hex: INFINITY_HEX, valid: false },
    { name: 'empty', hex: '', valid: false },
    { name: 'single 00 byte', hex: '00', valid: false },
    { name: '32 bytes', hex: G_HEX.slice(0, 64), valid: false },
    { name: '34 bytes', hex: G_HEX + '00', valid: false },
    {
      name: '65-byte uncompressed generator',
      hex: '0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8',
      valid: false,
    },
  ];
  for (const backend of BACKENDS) {
    for (const c of cases) {
      it(`${backend.name}: ${c.name}`, () => {
        const p = backend.decodePoint(hexToBytes(c.hex));
        expect(p === null ? null : bytesToHex(backend.encodePoint(p))).toBe(c.valid ? c.hex : null);
      });
    }
  }
});

describe('point arithmetic agrees across backends', () => {
  const ks = scalars(24, 7);
  const xN = bytesToHex(compressed(0x02, N));
  const xN2 = bytesToHex(compressed(0x03, N + 2n));

  it('mulBase, including 0, N and values above N', () => {
    for (const k of ks) {
      const hex = agree((b) => b.mulBase(k));
      if (k % N === 0n) expect(hex).toBe(INFINITY_HEX);
    }
    expect(agree((b) => b.mulBase(1n))).toBe(G_HEX);
  });

  it('mul, including 0, N, values above N and the point at infinity', () => {
    for (const k of ks) {
      agree((b) => b.mul(point(b, G_HEX), k));
      agree((b) => b.mul(point(b, xN2), k));
      expect(agree((b) => b.mul(b.mulBase(0n), k))).toBe(INFINITY_HEX);
    }
  });

  it('add, including P + (−P) and the point at infinity on either side', () => {
    for (const k of ks.slice(10)) {
      expect(agree((b) => b.add(b.mulBase(k), b.mulBase(N - (k % N))))).toBe(INFINITY_HEX);
      agree((b) => b.add(b.mulBase(k), b.mulBase(k))); // doubling
      agree((b) => b.add(b.mulBase(k), b.mulBase(3n)));
      expect(agree((b) => b.add(b.mulBase(0n), b.mulBase(k)))).toBe(agree((b) => b.mulBase(k)));
      expect(agree((b) => b.add(b.mulBase(k), b.mulBase(0n)))).toBe(agree((b) => b.mulBase(k)));
    }
  });

  it('mulBaseAdd s·G + c·P for every pair of edge and random scalars', () => {
    for (const s of ks.slice(0, 14)) {
      for (const c of ks.slice(0, 14)) {
        agree((b) => b.mulBaseAdd(s, c, point(b, G_HEX)));
        agree((b) => b.mulBaseAdd(s, c, point(b, xN))); // x = N: recovery has r = 0
        agree((b) => b.mulBaseAdd(s, c, point(b, xN2))); // x ≥ N: recovery id carries the overflow
      }
    }
  });

  it('mulBaseAdd reaching infinity (s·G = −c·P) gives 02 || 0^32 on both', () => {
    for (const k of ks.slice(10, 16)) {
      for (const c of ks.slice(16)) {
        const s = (N - ((c * (k % N)) % N)) % N;
        expect(agree((b) => b.mulBaseAdd(s, c, b.mulBase(k)))).toBe(INFINITY_HEX);
      }
    }
  });

  it('mulAdd a·A + b·B, including A = B with b = −a and the point at infinity', () => {
    for (const a of ks.slice(0, 12)) {
      for (const bk of ks.slice(8, 20)) {
        agree((b) => b.mulAdd(a, point(b, G_HEX), bk, point(b, xN2)));
      }
      expect(agree((b) => b.mulAdd(a, point(b, xN2), N - (a % N), point(b, xN2)))).toBe(INFINITY_HEX);
      agree((b) => b.mulAdd(a, b.mulBase(0n), 5n, point(b, G_HEX)));
    }
  });

  it('encodes infinity as 02 followed by 32 zero bytes and reports it', () => {
    for (const b of BACKENDS) {
      const inf = b.mulBase(0n);
      expect({ hex: bytesToHex(b.encodePoint(inf)), isInfinity: b.isInfinity(inf) }).toEqual({
        hex: INFINITY_HEX,
        isInfinity: true,
      });
      expect(b.isInfinity(b.mulBase(1n))).toBe(false);
    }
  });
});

describe('ECDSA (cosmos-sdk secp256k1 rules)', () => {
  const priv = sha256(new TextEncoder().encode('rings ecdsa test key'));
  const pub = nobleBackend.encodePoint(nobleBackend.mulBase(BigInt('0x' + bytesToHex(priv))));
  const digest = sha256(new TextEncoder().encode('a signable hash'));

  it('signs deterministically, low-S, identically on both backends, and verifies on both', () => {
    const sigs = BACKENDS.map((b) => bytesToHex(b.ecdsaSign(digest, priv)));
    expect(sigs[0]).toBe(sigs[1]);
    const sig = hexToBytes(sigs[0]!);
    expect(sig.length).toBe(64);
    expect(BigInt('0x' + bytesToHex(sig.subarray(32))) <= HALF_N).toBe(true);
    for (const b of BACKENDS) expect(b.ecdsaVerify(sig, digest, pub)).toBe(true);
  });

  it('applies the acceptance rules identically on both backends', () => {
    const sig = nobleBackend.ecdsaSign(digest, priv);
    const r = BigInt('0x' + bytesToHex(sig.subarray(0, 32)));
    const s = BigInt('0x' + bytesToHex(sig.subarray(32)));
    const rs = (rv: bigint, sv: bigint): Uint8Array =>
      concatBytes(bigIntToBytes(rv, 32), bigIntToBytes(sv, 32));
    const variants: {
      name: string;
      sig: Uint8Array;
      pub?: Uint8Array;
      digest?: Uint8Array;
      valid: boolean;
    }[] = [
      { name: 'as signed', sig, valid: true },
      { name: 'high-S (N − s)', sig: rs(r, N - s), valid: false },
      { name: 'r = 0', sig: rs(0n, s), valid: false },
      { name: 's = 0', sig: rs(r, 0n), valid: false },
      { name: 's = N (zero mod N)', sig: rs(r, N), valid: false },
      { name: 'r = N (zero mod N)', sig: rs(N, s), valid: false },
      { name: '63 bytes', sig: sig.subarray(0, 63), valid: false },
      { name: '65 bytes (recovery byte kept)', sig: concatBytes(sig, Uint8Array.of(0)), valid: false },
      { name: 'empty', sig: new Uint8Array(0), valid: false },
      { name: 'other digest', sig, digest: sha256(digest), valid: false },
      { name: 'digest of 31 bytes', sig, digest: digest.subarray(0, 31), valid: false },
      {
        name: 'public key with prefix 04',
        sig,
        pub: concatBytes(Uint8Array.of(4), pub.subarray(1)),
        valid: false,
      },
      { name: 'public key off the curve', sig, pub: compressed(0x02, 0n), valid: false },
      { name: 'public key of 32 bytes', sig, pub: pub.subarray(0, 32), valid: false },
    ];
    for (const b of BACKENDS) {
      const got = variants.map((v) => ({
        name: v.name,
        valid: b.ecdsaVerify(v.sig, v.digest ?? digest, v.pub ?? pub),
      }));
      expect(got).toEqual(variants.map((v) => ({ name: v.name, valid: v.valid })));
    }
  });

  // Known answers from relay-responses.json (RFC 6979 signatures decred reproduces byte for
  // byte); the full vector file runs in test/conformance/relay-responses.test.ts.
  const SUPPLIER_KEY = 'e564bea45fe83c6c61d291eefc52b111835dfa1d8e872acc1e8432f3a430372e';
  const SUPPLIER_PUB = '02dbe4c37357af6753a25414c8a03c4f2f1658bcd82dc9ed69beac35383959fc8c';
  const KNOWN: [string, string][] = [
    [
      'aa6cb1e4b5f918c6a0485dab9ad01e6412787237411bdadfa5fc9a20aae40649',
      '139e180ee72dce2300176ebc824c46c52ea0800c6dbd9465feb1a5f163d3ada74bc182998aff8a9366485713488a5527620b344698cf166d31cd49dad0366b5a',
    ],
    [
      'd8201343466fd59b49e1cd8626184701cdaaaf26a3d578cc1878c82599f59412',
      '94780a48826add5a95195a905eaef5f94074ac91b21950a8b7aa71aaa4c3cecf1747517e99c60fa14ec28670c52aa743bfdee3213f6b28cff700838d417fd639',
    ],
    [
      '0aafb0a5701f0684ac5651aa6ed42b8aea0ca0a0423b28b15e5a71d460be6ef2',
      '4f96ec7478ee7f59831d4adb06f7c9209c77ceba200cb438e5f957d5ef9ebb4b5d7445b033c8f66f9db0137d2bf76b6cec31a9446c524bcf1f981afce570ff8d',
    ],
  ];
  it('reproduces the supplier signatures of relay-responses.json byte for byte', () => {
    for (const b of BACKENDS) {
      for (const [digestHex, sigHex] of KNOWN) {
        expect(bytesToHex(b.ecdsaSign(hexToBytes(digestHex), hexToBytes(SUPPLIER_KEY)))).toBe(sigHex);
        expect(b.ecdsaVerify(hexToBytes(sigHex), hexToBytes(digestHex), hexToBytes(SUPPLIER_PUB))).toBe(true);
      }
    }
  });

  it('canonicalEcdsaSignature accepts s = ⌊N/2⌋ and refuses ⌊N/2⌋ + 1', () => {
    const mk = (sv: bigint): Uint8Array => concatBytes(bigIntToBytes(5n, 32), bigIntToBytes(sv, 32));
    expect(canonicalEcdsaSignature(mk(HALF_N))).toEqual({ r: 5n, s: HALF_N });
    expect(canonicalEcdsaSignature(mk(HALF_N + 1n))).toBeNull();
  });

  it('refuses to sign with a bad key or digest', () => {
    for (const b of BACKENDS) {
      for (const [key, dg] of [
        [new Uint8Array(32), digest],
        [bigIntToBytes(N, 32), digest],
        [priv.subarray(0, 31), digest],
        [priv, digest.subarray(0, 31)],
      ] as const) {
        expect(() => b.ecdsaSign(dg, key)).toThrow(InvalidInputError);
      }
    }
  });
});
