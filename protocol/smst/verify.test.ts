import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bytesToHex, concatBytes, hexToBytes } from '../../core/index.js';
import {
  InMemoryMapStore,
  SparseMerkleSumTrie,
  checkClaimRoot,
  checkClosestProofBytes,
  compactClosestProof,
  decompactClosestProof,
  encodeCompactClosestProof,
  encodeExtensionNode,
  extensionDigest,
  hashSiblingData,
  parseMerkleSumRoot,
  verifyClosestProof,
  type ClosestProof,
} from './index.js';

function h(s: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(s).digest());
}

async function fixture(): Promise<{
  trie: SparseMerkleSumTrie;
  root: Uint8Array;
  path: Uint8Array;
  proof: ClosestProof;
}> {
  const trie = SparseMerkleSumTrie.create(new InMemoryMapStore());
  for (let i = 0; i < 64; i++) await trie.update(h(`k${i}`), h(`v${i}`), 100n);
  const path = h('proof path');
  return { trie, root: trie.root(), path, proof: await trie.proveClosest(path) };
}

function bytesOf(proof: ClosestProof): Uint8Array {
  return encodeCompactClosestProof(compactClosestProof(proof));
}

describe('checkClosestProofBytes', () => {
  it('accepts an honest proof and returns the relay bytes it carries', async () => {
    const { root, path, proof } = await fixture();
    const verdict = checkClosestProofBytes(bytesOf(proof), root, path);
    expect({ accepted: verdict.accepted, relay: bytesToHex(verdict.relayBytes!) }).toEqual({
      accepted: true,
      relay: bytesToHex(proof.closestValueHash!.subarray(0, 32)),
    });
  });

  it('names the first failing step', async () => {
    const { root, path, proof } = await fixture();
    const bytes = bytesOf(proof);
    const code = (b: Uint8Array, r = root, p = path): string | undefined =>
      checkClosestProofBytes(b, r, p).rejection?.code;
    const withValue = (v: Uint8Array): Uint8Array => {
      const c = compactClosestProof(proof);
      return encodeCompactClosestProof({ ...c, closestValueHash: v });
    };
    const otherRoot = new Uint8Array(root);
    otherRoot[0] = otherRoot[0]! ^ 1;
    const noInner = encodeCompactClosestProof({ ...compactClosestProof(proof), closestProof: null });
    expect({
      empty: code(new Uint8Array(0)),
      garbage: code(new Uint8Array([1, 2, 3])),
      noInnerProof: code(noInner),
      shortValue: code(withValue(new Uint8Array(8))),
      otherPath: code(bytes, root, h('other')),
      otherRoot: code(bytes, otherRoot),
      otherValue: code(withValue(concatBytes(h('forged'), proof.closestValueHash!.subarray(32)))),
    }).toEqual({
      empty: 'PROOF_EMPTY',
      garbage: 'PROOF_UNDECODABLE',
      noInnerProof: 'PROOF_MALFORMED',
      shortValue: 'VALUE_HASH_TOO_SHORT',
      otherPath: 'PATH_MISMATCH',
      otherRoot: 'ROOT_MISMATCH',
      otherValue: 'ROOT_MISMATCH',
    });
  });
});

describe('verifyClosestProof', () => {
  it('rejects a closest path that does not match the flipped path up to depth', async () => {
    const { root, proof } = await fixture();
    const closestPath = new Uint8Array(proof.closestPath);
    closestPath[0] = closestPath[0]! ^ 0x80;
    expect(verifyClosestProof({ ...proof, closestPath }, root)).toMatchObject({
      ok: false,
      code: 'PROOF_INVALID',
    });
  });

  it('rejects a flipped bit beyond the depth and a depth beyond 256', async () => {
    const { root, proof } = await fixture();
    expect(verifyClosestProof({ ...proof, flippedBits: [proof.depth + 1] }, root)).toMatchObject({
      code: 'PROOF_INVALID',
    });
    expect(verifyClosestProof({ ...proof, depth: 257 }, root)).toMatchObject({ code: 'PROOF_INVALID' });
  });

  it('treats an empty value with weight 0 as non-membership, so such a leaf never verifies', async () => {
    const trie = SparseMerkleSumTrie.create(new InMemoryMapStore());
    await trie.update(h('a'), new Uint8Array(0), 0n);
    await trie.update(h('b'), h('vb'), 3n);
    const leafPath = new Uint8Array(createHash('sha256').update(h('a')).digest());
    const proof = await trie.proveClosest(leafPath);
    expect(bytesToHex(proof.closestPath)).toBe(bytesToHex(leafPath));
    expect(proof.closestValueHash!.length).toBe(16);
    expect(verifyClosestProof(proof, trie.root())).toMatchObject({ ok: false, code: 'ROOT_MISMATCH' });
  });

  it('verifies the empty-trie proof against the 48-zero root only', async () => {
    const trie = SparseMerkleSumTrie.create(new InMemoryMapStore());
    const proof = await trie.proveClosest(h('x'));
    expect(verifyClosestProof(proof, new Uint8Array(48))).toEqual({ ok: true });
    expect(verifyClosestProof(proof, h('not zero'))).toMatchObject({ ok: false, code: 'ROOT_MISMATCH' });
  });

  it('rejects non-membership leaf data for the proven path itself', async () => {
    const trie = SparseMerkleSumTrie.create(new InMemoryMapStore());
    const proof = await trie.proveClosest(h('x'));
    const leaf = concatBytes(new Uint8Array([0]), proof.closestPath.subarray(0, 32), new Uint8Array(16));
    const forged: ClosestProof = {
      ...proof,
      closestProof: { ...proof.closestProof, nonMembershipLeafData: leaf },
    };
    expect(verifyClosestProof(forged, new Uint8Array(48))).toMatchObject({
      ok: false,
      code: 'PROOF_INVALID',
    });
  });
});

describe('hashSiblingData', () => {
  it('hashes an extension preimage through the extension rule', () => {
    const child = concatBytes(h('child'), hexToBytes('00000000000000070000000000000002'));
    const path = h('ext path');
    expect(hashSiblingData(encodeExtensionNode(3, 9, path, child))).toEqual({
      ok: true,
      digest: extensionDigest(3, 9, path, child),
    });
  });

  it('fails on inputs upstream cannot slice', () => {
    expect(hashSiblingData(new Uint8Array(15)).ok).toBe(false);
    expect(hashSiblingData(concatBytes(new Uint8Array([2]), new Uint8Array(40))).ok).toBe(false);
  });
});

describe('decompactClosestProof', () => {
  it('raises SMST_PROOF_INVALID for a bit mask that hides a missing side node', async () => {
    const { proof } = await fixture();
    const c = compactClosestProof(proof);
    const inner = c.closestProof!;
    // Bits past NumSideNodes count as placeholders in upstream's arithmetic, so the loop runs out.
    const n = Number(inner.numSideNodes);
    expect(n % 8).not.toBe(0);
    const bitMask = new Uint8Array(inner.bitMask);
    bitMask[n >> 3] = bitMask[n >> 3]! | (1 << (7 - (n & 7)));
    const tampered = { ...c, closestProof: { ...inner, bitMask, sideNodes: inner.sideNodes.slice(1) } };
    expect(() => decompactClosestProof(tampered)).toThrow(
      expect.objectContaining({ code: 'SMST_PROOF_INVALID' }),
    );
  });
});

describe('roots', () => {
  it('reads sum before count and checks the claim rules', () => {
    const root = concatBytes(h('r'), hexToBytes('0000000000000190'), hexToBytes('0000000000000004'));
    expect(parseMerkleSumRoot(root)).toEqual({ hash: h('r'), sum: 400n, count: 4n });
    expect(checkClaimRoot(root, 100n)).toEqual({ ok: true, sum: 400n, count: 4n });
    expect(checkClaimRoot(root, 99n)).toMatchObject({ ok: false, code: 'ROOT_SUM_MISMATCH' });
    expect(checkClaimRoot(root.subarray(0, 40))).toMatchObject({ ok: false, code: 'ROOT_LENGTH' });
    expect(checkClaimRoot(new Uint8Array(48))).toMatchObject({ ok: false, code: 'ROOT_EMPTY' });
  });

  it('accepts any power-of-two hash length when parsing, as the library does', () => {
    expect(parseMerkleSumRoot(new Uint8Array(20))).toEqual({ hash: new Uint8Array(4), sum: 0n, count: 0n });
    expect(() => parseMerkleSumRoot(new Uint8Array(40))).toThrow(
      expect.objectContaining({ code: 'SMST_ROOT_INVALID' }),
    );
  });
});
