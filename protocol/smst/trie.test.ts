import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bytesToHex, concatBytes, hexToBytes } from '../../core/index.js';
import {
  InMemoryMapStore,
  SparseMerkleSumTrie,
  checkClosestProofBytes,
  type MapStore,
  type StoreBatch,
} from './index.js';

/** Deterministic bytes: SHA-256 of a tag and a counter. */
function det(tag: string, i: number): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`${tag}:${i}`).digest());
}

function sha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(b).digest());
}

function u64(v: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, v);
  return out;
}

/** A store that answers reads asynchronously, like a remote one, and counts them. */
class AsyncStore implements MapStore {
  reads = 0;
  constructor(readonly inner: InMemoryMapStore) {}
  get(d: Uint8Array): Promise<Uint8Array | undefined> {
    this.reads++;
    return new Promise((resolve) => setImmediate(() => resolve(this.inner.get(d))));
  }
  commit(b: StoreBatch): void {
    this.inner.commit(b);
  }
}

async function build(n: number, store: MapStore = new InMemoryMapStore()): Promise<SparseMerkleSumTrie> {
  const trie = SparseMerkleSumTrie.create(store);
  for (let i = 0; i < n; i++)
    await trie.update(det('k', i), det('v', i).subarray(0, i % 40), BigInt(1 + (i % 7)));
  await trie.commit();
  return trie;
}

describe('SparseMerkleSumTrie', () => {
  it('has the 48-zero-byte root, sum 0 and count 0 when empty', () => {
    const trie = SparseMerkleSumTrie.create(new InMemoryMapStore());
    expect({ root: bytesToHex(trie.root()), sum: trie.sum(), count: trie.count() }).toEqual({
      root: '00'.repeat(48),
      sum: 0n,
      count: 0n,
    });
  });

  it('uses the leaf digest as the root of a single-leaf trie', async () => {
    const trie = SparseMerkleSumTrie.create(new InMemoryMapStore());
    const key = det('k', 1);
    const value = det('v', 1);
    await trie.update(key, value, 7n);
    const preimage = concatBytes(new Uint8Array([0]), sha256(key), value, u64(7n), u64(1n));
    expect(bytesToHex(trie.root())).toBe(bytesToHex(concatBytes(sha256(preimage), u64(7n), u64(1n))));
  });

  it('wraps sums modulo 2^64', async () => {
    const trie = SparseMerkleSumTrie.create(new InMemoryMapStore());
    await trie.update(det('k', 1), det('v', 1), (1n << 64n) - 1n);
    await trie.update(det('k', 2), det('v', 2), 2n);
    expect({ sum: trie.sum(), count: trie.count() }).toEqual({ sum: 1n, count: 2n });
  });

  it('rejects weights outside uint64 with INVALID_INPUT', async () => {
    const trie = SparseMerkleSumTrie.create(new InMemoryMapStore());
    await expect(trie.update(det('k', 1), det('v', 1), -1n)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(trie.update(det('k', 1), det('v', 1), 1n << 64n)).rejects.toMatchObject({
      code: 'INVALID_INPUT',
    });
    expect(bytesToHex(trie.root())).toBe('00'.repeat(48));
  });

  it('gives the same root whatever the insertion order', async () => {
    const a = SparseMerkleSumTrie.create(new InMemoryMapStore());
    const b = SparseMerkleSumTrie.create(new InMemoryMapStore());
    for (let i = 0; i < 300; i++) await a.update(det('k', i), det('v', i), 3n);
    for (let i = 299; i >= 0; i--) await b.update(det('k', i), det('v', i), 3n);
    expect(bytesToHex(a.root())).toBe(bytesToHex(b.root()));
    expect({ sum: a.sum(), count: a.count() }).toEqual({ sum: 900n, count: 300n });
  });

  it('replaces a leaf on re-insert without counting it twice', async () => {
    const trie = await build(50);
    const before = trie.root();
    await trie.update(det('k', 3), det('v', 3).subarray(0, 3), 4n);
    expect(bytesToHex(trie.root())).toBe(bytesToHex(before));
    await trie.update(det('k', 3), new Uint8Array([1, 2]), 9n);
    expect(trie.count()).toBe(50n);
    expect(await trie.get(det('k', 3))).toEqual({ value: new Uint8Array([1, 2]), weight: 9n });
  });

  it('returns null from get for absent keys and the value and weight otherwise', async () => {
    const trie = await build(20);
    expect(await trie.get(det('absent', 1))).toBeNull();
    expect(await trie.get(det('k', 5))).toEqual({ value: det('v', 5).subarray(0, 5), weight: 6n });
  });

  it('refuses to delete an absent key with SMST_KEY_NOT_FOUND and leaves the trie unchanged', async () => {
    const trie = await build(30);
    const before = bytesToHex(trie.root());
    await expect(trie.delete(det('absent', 1))).rejects.toMatchObject({ code: 'SMST_KEY_NOT_FOUND' });
    expect(bytesToHex(trie.root())).toBe(before);
  });

  it('returns to an earlier root after a delete and re-insert', async () => {
    const trie = await build(64);
    const before = bytesToHex(trie.root());
    await trie.delete(det('k', 10));
    await trie.commit();
    expect(trie.count()).toBe(63n);
    await trie.update(det('k', 10), det('v', 10).subarray(0, 10), 4n);
    expect(bytesToHex(trie.root())).toBe(before);
  });

  it('hands each commit to the store as one batch with its operation count', async () => {
    const batches: StoreBatch[] = [];
    const mem = new InMemoryMapStore();
    const trie = SparseMerkleSumTrie.create({ get: (d) => mem.get(d), commit: (b) => void batches.push(b) });
    await trie.update(det('k', 1), det('v', 1), 1n);
    await trie.update(det('k', 2), det('v', 2), 1n);
    await trie.commit();
    await trie.commit();
    expect(
      batches.map((b) => ({ ops: b.operations, writes: b.writes.length, deletes: b.deletes.length })),
    ).toEqual([
      { ops: 2, writes: 3, deletes: 0 },
      { ops: 0, writes: 0, deletes: 0 },
    ]);
    expect(bytesToHex(batches[1]!.root)).toBe(bytesToHex(trie.root()));
  });

  it('hands a refused batch again with the next commit', async () => {
    const batches: StoreBatch[] = [];
    let refuse = true;
    const trie = SparseMerkleSumTrie.create({
      get: () => undefined,
      commit: (b) => {
        if (refuse) throw new Error('store is closed');
        batches.push(b);
      },
    });
    const reference: StoreBatch[] = [];
    const plain = SparseMerkleSumTrie.create({ get: () => undefined, commit: (b) => void reference.push(b) });
    for (let i = 0; i < 5; i++) {
      await trie.update(det('k', i), det('v', i), 1n);
      await plain.update(det('k', i), det('v', i), 1n);
    }
    await expect(trie.commit()).rejects.toThrow('store is closed');
    refuse = false;
    await trie.commit();
    await plain.commit();
    const summary = (b: StoreBatch): unknown => ({
      ops: b.operations,
      writes: b.writes.map(([d, v]) => [bytesToHex(d), bytesToHex(v)]),
    });
    expect(batches.map(summary)).toEqual(reference.map(summary));
  });

  it('continues an imported trie exactly like the original, loading nodes from an async store', async () => {
    const mem = new InMemoryMapStore();
    const original = await build(400, mem);
    const store = new AsyncStore(mem);
    const imported = SparseMerkleSumTrie.import(store, original.root());
    // Not awaited one by one: the calls must still apply in order.
    const pending: Promise<void>[] = [];
    for (let i = 400; i < 450; i++) {
      pending.push(imported.update(det('k', i), det('v', i), 2n));
      await original.update(det('k', i), det('v', i), 2n);
    }
    pending.push(imported.delete(det('k', 7)));
    await original.delete(det('k', 7));
    await Promise.all(pending);
    expect(bytesToHex(imported.root())).toBe(bytesToHex(original.root()));
    expect(store.reads).toBeGreaterThan(0);
    const path = det('path', 1);
    expect(bytesToHex(await imported.proveClosestBytes(path))).toBe(
      bytesToHex(await original.proveClosestBytes(path)),
    );
  });

  it('fails with SMST_NODE_MISSING when the store lacks a referenced node', async () => {
    const mem = new InMemoryMapStore();
    const original = await build(10, mem);
    const imported = SparseMerkleSumTrie.import(new InMemoryMapStore(), original.root());
    await expect(imported.update(det('k', 99), det('v', 99), 1n)).rejects.toMatchObject({
      code: 'SMST_NODE_MISSING',
    });
  });

  it('fails with SMST_NODE_CORRUPT when stored bytes do not hash to their digest', async () => {
    const mem = new InMemoryMapStore();
    const original = await build(10, mem);
    const root = original.root();
    const bytes = new Uint8Array(mem.get(root)!);
    bytes[5] = bytes[5]! ^ 1;
    mem.set(root, bytes);
    const imported = SparseMerkleSumTrie.import(mem, root);
    await expect(imported.get(det('k', 1))).rejects.toMatchObject({ code: 'SMST_NODE_CORRUPT' });
  });

  it('refuses to import a root that is not 48 bytes', () => {
    expect(() => SparseMerkleSumTrie.import(new InMemoryMapStore(), new Uint8Array(32))).toThrow(
      expect.objectContaining({ code: 'SMST_ROOT_INVALID' }),
    );
  });

  it('keeps exactly the reachable nodes in the store after each commit', async () => {
    const mem = new InMemoryMapStore();
    const trie = SparseMerkleSumTrie.create(mem);
    for (let i = 0; i < 200; i++) {
      await trie.update(det('k', i % 150), det('v', i), 1n);
      if (i % 3 === 0) await trie.delete(det('k', i % 150));
      await trie.commit();
    }
    const copy = new InMemoryMapStore();
    for (const [hex, v] of mem.entries()) copy.set(hexToBytes(hex), v);
    // A fresh import over a copy touches every leaf; nothing may be missing.
    const imported = SparseMerkleSumTrie.import(copy, trie.root());
    for (let i = 0; i < 150; i++) {
      expect(await imported.get(det('k', i))).toEqual(await trie.get(det('k', i)));
    }
  });
});

describe('closest proofs', () => {
  it('proves every path of a 600-leaf trie with bytes the chain accepts', async () => {
    const trie = await build(600);
    const root = trie.root();
    for (let i = 0; i < 150; i++) {
      const path = det('path', i);
      const verdict = checkClosestProofBytes(await trie.proveClosestBytes(path), root, path);
      expect({ i, accepted: verdict.accepted, rejection: verdict.rejection }).toEqual({
        i,
        accepted: true,
        rejection: undefined,
      });
    }
  });

  it('proves a leaf for its own path with no flipped bits', async () => {
    const trie = await build(100);
    const path = sha256(det('k', 42));
    const proof = await trie.proveClosest(path);
    expect({ flipped: proof.flippedBits, closest: bytesToHex(proof.closestPath) }).toEqual({
      flipped: [],
      closest: bytesToHex(path),
    });
  });

  it('leaves the caller path untouched, also when it is a Node Buffer', async () => {
    const trie = await build(100);
    const path = createHash('sha256').update('buffer path').digest();
    const copy = Buffer.from(path);
    const proof = await trie.proveClosest(path);
    expect(path.equals(copy)).toBe(true);
    expect(bytesToHex(proof.path)).toBe(copy.toString('hex'));
    expect(checkClosestProofBytes(await trie.proveClosestBytes(path), trie.root(), path).accepted).toBe(true);
  });

  it('rejects paths that are not 32 bytes with INVALID_INPUT', async () => {
    const trie = await build(3);
    await expect(trie.proveClosest(new Uint8Array(31))).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });
});
