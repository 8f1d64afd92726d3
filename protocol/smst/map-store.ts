/**
 * The node store behind a trie: digest (48 bytes) → node preimage. The trie reads nodes lazily with
 * `get` and hands each Commit to the store as one batch, so a store can buffer, pipeline or
 * transact however it likes. A batch applies its deletes first, then its writes (a node orphaned
 * and re-created by the same commit survives), as upstream Commit does.
 */
export interface StoreBatch {
  /** The trie root after this commit (48 bytes). */
  readonly root: Uint8Array;
  /** Digests of stored nodes the trie no longer references, in the order they were orphaned. */
  readonly deletes: readonly Uint8Array[];
  /** New or changed nodes: [digest, preimage], children before parents. */
  readonly writes: readonly (readonly [Uint8Array, Uint8Array])[];
  /** Update and delete operations folded into this commit (0 for a commit with no change). */
  readonly operations: number;
}

export interface MapStore {
  /** The preimage stored under `digest`, or undefined when the store has no such entry. */
  get(digest: Uint8Array): Uint8Array | undefined | Promise<Uint8Array | undefined>;
  /** Applies one commit. The trie awaits a returned promise before the commit resolves. */
  commit(batch: StoreBatch): void | Promise<void>;
}

/** Map key for a digest: its bytes as a latin1 string (half the length of hex, cheaper to hash). */
function keyOf(digest: Uint8Array): string {
  return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('latin1');
}

/** A MapStore in process memory. */
export class InMemoryMapStore implements MapStore {
  private readonly nodes = new Map<string, Uint8Array>();

  get(digest: Uint8Array): Uint8Array | undefined {
    return this.nodes.get(keyOf(digest));
  }

  commit(batch: StoreBatch): void {
    for (const d of batch.deletes) this.nodes.delete(keyOf(d));
    for (const [d, v] of batch.writes) this.nodes.set(keyOf(d), v);
  }

  set(digest: Uint8Array, preimage: Uint8Array): void {
    this.nodes.set(keyOf(digest), preimage);
  }

  delete(digest: Uint8Array): boolean {
    return this.nodes.delete(keyOf(digest));
  }

  get size(): number {
    return this.nodes.size;
  }

  /** Every entry as [lowercase hex digest (the Redis field name), preimage], in insertion order. */
  *entries(): IterableIterator<[string, Uint8Array]> {
    for (const [k, v] of this.nodes) yield [Buffer.from(k, 'latin1').toString('hex'), v];
  }
}
