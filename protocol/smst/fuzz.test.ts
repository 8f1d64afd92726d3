/**
 * Fuzz (fixed seed): 12,000 mutated and random proof byte strings go through the decoder and the
 * chain-rule verifier, and random byte strings through root parsing. Nothing may throw except
 * the typed errors each function documents.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RelayMinerError, concatBytes } from '../../core/index.js';
import {
  GOB_TYPE_PREFIX,
  InMemoryMapStore,
  SparseMerkleSumTrie,
  checkClaimRoot,
  checkClosestProofBytes,
  decodeCompactClosestProof,
  decompactClosestProof,
  parseMerkleSumRoot,
  verifyClosestProof,
} from './index.js';
import { seededRandom } from '../../test/helpers/prng.js';

const SEED = 0x5eed_1234;
const INPUTS = 12_000;

interface Base {
  bytes: Uint8Array;
  root: Uint8Array;
  path: Uint8Array;
}

async function baseProofs(): Promise<Base[]> {
  const trie = SparseMerkleSumTrie.create(new InMemoryMapStore());
  for (let i = 0; i < 300; i++) {
    const key = new Uint8Array(createHash('sha256').update(`fuzz key ${i}`).digest());
    await trie.update(key, new Uint8Array(i % 97).fill(i & 0xff), BigInt(1 + (i % 5)));
  }
  const root = trie.root();
  const out: Base[] = [];
  for (let i = 0; i < 24; i++) {
    const path = new Uint8Array(createHash('sha256').update(`fuzz path ${i}`).digest());
    out.push({ bytes: await trie.proveClosestBytes(path), root, path });
  }
  return out;
}

function mutate(rand: () => number, input: Uint8Array, other: Uint8Array): Uint8Array {
  const int = (n: number): number => Math.floor(rand() * n);
  const randomBytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(256));
  const b = new Uint8Array(input);
  switch (int(10)) {
    case 0: {
      for (let k = 1 + int(3); k > 0; k--) {
        const i = int(b.length);
        b[i] = b[i]! ^ (1 << int(8));
      }
      return b;
    }
    case 1: {
      for (let k = 1 + int(4); k > 0; k--) b[int(b.length)] = int(256);
      return b;
    }
    case 2:
      return b.subarray(0, int(b.length));
    case 3: {
      const at = int(b.length + 1);
      return concatBytes(b.subarray(0, at), randomBytes(1 + int(16)), b.subarray(at));
    }
    case 4: {
      const at = int(b.length);
      return concatBytes(b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(40))));
    }
    case 5: {
      const at = int(b.length);
      const len = 1 + int(64);
      return concatBytes(b.subarray(0, at), b.subarray(at, at + len), b.subarray(at));
    }
    case 6:
      return concatBytes(GOB_TYPE_PREFIX, randomBytes(int(400)));
    case 7:
      return randomBytes(int(400));
    case 8: {
      const at = int(Math.min(b.length, other.length));
      return concatBytes(b.subarray(0, at), other.subarray(at));
    }
    default: {
      // Uint-prefix bytes (0x80–0xff) near a message boundary stress the length handling.
      const i = GOB_TYPE_PREFIX.length + int(8);
      if (i < b.length) b[i] = 0x80 + int(128);
      return b;
    }
  }
}

/** The error's code when it is the typed error expected, otherwise a description of the surprise. */
function unexpected(err: unknown, code: string): string | null {
  if (err instanceof RelayMinerError && err.code === code) return null;
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

describe('fuzz', () => {
  it(`feeds ${INPUTS} mutated and random proofs to the decoder and verifier without a crash`, async () => {
    const rand = seededRandom(SEED);
    const bases = await baseProofs();
    const outcomes = new Map<string, number>();
    const surprises: string[] = [];
    for (const base of bases) {
      expect(checkClosestProofBytes(base.bytes, base.root, base.path).accepted).toBe(true);
    }
    for (let n = 0; n < INPUTS; n++) {
      const base = bases[Math.floor(rand() * bases.length)]!;
      const other = bases[Math.floor(rand() * bases.length)]!;
      const input = mutate(rand, base.bytes, other.bytes);

      const verdict = checkClosestProofBytes(input, base.root, base.path);
      const key = verdict.accepted ? 'accepted' : verdict.rejection!.code;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);

      let compact;
      try {
        compact = decodeCompactClosestProof(input);
      } catch (err) {
        const s = unexpected(err, 'SMST_PROOF_MALFORMED');
        if (s !== null) surprises.push(s);
        continue;
      }
      let proof;
      try {
        proof = decompactClosestProof(compact);
      } catch (err) {
        const s = unexpected(err, 'SMST_PROOF_INVALID');
        if (s !== null) surprises.push(s);
        continue;
      }
      if (verifyClosestProof(proof, base.root).ok !== verdict.verified)
        surprises.push(`input ${n}: verdicts differ`);
    }
    expect(surprises).toEqual([]);
    const total = [...outcomes.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(INPUTS);
    expect(outcomes.get('PROOF_UNDECODABLE')).toBeGreaterThan(INPUTS / 4);
    expect(outcomes.get('ROOT_MISMATCH')).toBeGreaterThan(0);
    expect(outcomes.get('accepted') ?? 0).toBeLessThan(INPUTS / 4);
  });

  it('parses 5,000 random roots to values or SMST_ROOT_INVALID', () => {
    const rand = seededRandom(SEED + 1);
    const surprises: string[] = [];
    let parsed = 0;
    for (let n = 0; n < 5_000; n++) {
      const root = Uint8Array.from({ length: Math.floor(rand() * 80) }, () => Math.floor(rand() * 256));
      try {
        if (parseMerkleSumRoot(root).hash.length + 16 !== root.length)
          surprises.push(`length ${root.length}`);
        parsed++;
      } catch (err) {
        const s = unexpected(err, 'SMST_ROOT_INVALID');
        if (s !== null) surprises.push(s);
      }
      // A claim root is valid only at 48 bytes with a non-zero sum and count.
      const view = new DataView(root.buffer);
      const valid = root.length === 48 && view.getBigUint64(32) > 0n && view.getBigUint64(40) > 0n;
      if (checkClaimRoot(root).ok !== valid) surprises.push(`claim check of ${root.length} bytes`);
    }
    expect(surprises).toEqual([]);
    expect(parsed).toBeGreaterThan(0);
  });
});
