import { describe, expect, it } from 'vitest';
import { encodeRelay, proofPath, sha256, type SessionHeader } from '../protocol/index.js';
import { InMemoryMapStore, SparseMerkleSumTrie } from '../protocol/smst/index.js';
import { checkProofLocally } from './prover.js';

const SUPPLIER = 'pokt1supplier';
const HEADER: SessionHeader = {
  applicationAddress: 'pokt1app',
  serviceId: 'anvil',
  sessionId: 'a1b2',
  sessionStartBlockHeight: 1n,
  sessionEndBlockHeight: 4n,
};
const SEED = sha256(new TextEncoder().encode('seed block'));
const PATH = proofPath(SEED, HEADER.sessionId);

function relayBytes(n: number, header = HEADER, supplier = SUPPLIER): Uint8Array {
  return encodeRelay({
    req: {
      meta: { sessionHeader: header, signature: Buffer.from([1]), supplierOperatorAddress: supplier },
      payload: Buffer.from(`req ${n}`),
    },
    res: {
      meta: { sessionHeader: header, supplierOperatorSignature: Buffer.from([2]) },
      payload: Buffer.from(`res ${n}`),
      relayMinerError: undefined,
      payloadHash: Buffer.alloc(0),
    },
  });
}

async function trieOf(values: Uint8Array[]): Promise<SparseMerkleSumTrie> {
  const trie = SparseMerkleSumTrie.create(new InMemoryMapStore());
  for (const v of values) await trie.update(sha256(v), v, 2n);
  await trie.commit();
  return trie;
}

describe('checkProofLocally', () => {
  it('accepts the closest proof of a trie of this session’s relays', async () => {
    const trie = await trieOf([relayBytes(0), relayBytes(1), relayBytes(2)]);
    const proof = await trie.proveClosestBytes(PATH);
    expect(checkProofLocally(proof, trie.root(), PATH, HEADER, SUPPLIER)).toEqual({ ok: true });
  });

  it('refuses a proof against another root', async () => {
    const trie = await trieOf([relayBytes(0), relayBytes(1)]);
    const other = await trieOf([relayBytes(0), relayBytes(1), relayBytes(2)]);
    const res = checkProofLocally(await trie.proveClosestBytes(PATH), other.root(), PATH, HEADER, SUPPLIER);
    expect(res).toMatchObject({ ok: false, reason: 'proof_rejected' });
    expect(res.ok ? '' : res.detail).toMatch(/^ROOT_MISMATCH: /);
  });

  it('refuses a proof for another path', async () => {
    const trie = await trieOf([relayBytes(0), relayBytes(1)]);
    const wrongPath = proofPath(SEED, 'another-session');
    const res = checkProofLocally(
      await trie.proveClosestBytes(wrongPath),
      trie.root(),
      PATH,
      HEADER,
      SUPPLIER,
    );
    expect(res.ok ? '' : `${res.reason} ${res.detail.split(':')[0]}`).toBe('proof_rejected PATH_MISMATCH');
  });

  it('refuses empty, truncated and bit-flipped proof bytes', async () => {
    const trie = await trieOf([relayBytes(0), relayBytes(1)]);
    const proof = await trie.proveClosestBytes(PATH);
    const flipped = Uint8Array.from(proof);
    flipped[flipped.length - 1]! ^= 0xff;
    for (const bad of [new Uint8Array(0), proof.subarray(0, proof.length - 5), flipped]) {
      const res = checkProofLocally(bad, trie.root(), PATH, HEADER, SUPPLIER);
      expect(res.ok ? 'accepted' : res.reason).toBe('proof_rejected');
    }
  });

  it('refuses a proven leaf that is not a relay', async () => {
    const trie = await trieOf([new TextEncoder().encode('not a relay at all')]);
    const res = checkProofLocally(await trie.proveClosestBytes(PATH), trie.root(), PATH, HEADER, SUPPLIER);
    expect(res.ok ? 'accepted' : res.reason).toBe('relay_undecodable');
  });

  it('refuses a relay of another session', async () => {
    const other = { ...HEADER, sessionEndBlockHeight: 8n };
    const trie = await trieOf([relayBytes(0, other)]);
    const res = checkProofLocally(await trie.proveClosestBytes(PATH), trie.root(), PATH, HEADER, SUPPLIER);
    expect(res).toEqual({
      ok: false,
      reason: 'relay_header_mismatch',
      detail: 'the proven relay belongs to another session',
    });
  });

  it('refuses a relay served by another supplier', async () => {
    const trie = await trieOf([relayBytes(0, HEADER, 'pokt1other')]);
    const res = checkProofLocally(await trie.proveClosestBytes(PATH), trie.root(), PATH, HEADER, SUPPLIER);
    expect(res).toEqual({
      ok: false,
      reason: 'relay_supplier_mismatch',
      detail: 'the proven relay names another supplier',
    });
  });
});
