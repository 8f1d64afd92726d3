/**
 * The sparse Merkle sum trie as the chain uses it (pokt-network/smt v0.14.1 SMST with SHA-256 and
 * no value hasher; spec smst.md §3–§8). Nodes live in memory as a pointer tree; nodes of an
 * imported trie are loaded from the MapStore when first touched. Update, Delete and Commit
 * reproduce upstream's shapes, orphans and store writes exactly, so roots, stored bytes and
 * proofs are byte-identical.
 *
 * Operations are applied in call order: one that needs nodes from the store waits for them and
 * every later call queues behind it. Calls that touch only loaded nodes run synchronously.
 */
import { InvalidInputError, RelayMinerError, bytesToHex, equalBytes } from '../../core/index.js';
import {
  DIGEST_BYTES,
  EXTENSION_NODE_BYTES,
  EXTENSION_PREFIX,
  INNER_NODE_BYTES,
  INNER_PREFIX,
  LEAF_PREFIX,
  MAX_DEPTH,
  MIN_LEAF_NODE_BYTES,
  PATH_BYTES,
  copyBytes,
  digestOfPreimage,
  encodeExtensionNode,
  encodeInnerNode,
  encodeLeafNode,
  extensionDigest,
  firstDifferingBit,
  innerDigest,
  leafDigest,
  flipPathBit,
  isPlaceholder,
  leafValueHash,
  pathBit,
  readUint64BE,
  sha256,
} from './encoding.js';
import {
  SmstKeyNotFoundError,
  SmstNodeCorruptError,
  SmstNodeMissingError,
  SmstProofUnprovableError,
  SmstRootInvalidError,
} from './errors.js';
import { encodeCompactClosestProof } from './gob.js';
import type { MapStore, StoreBatch } from './map-store.js';
import { compactClosestProof } from './proof.js';
import type { ClosestProof } from './proof.js';

const UINT64_LIMIT = 1n << 64n;
const ZERO_DIGEST = new Uint8Array(DIGEST_BYTES);

class LeafNode {
  persisted = false;
  digest: Uint8Array | null = null;
  constructor(
    readonly path: Uint8Array,
    /** value ‖ weight ‖ count */
    readonly valueHash: Uint8Array,
  ) {}
}

class InnerNode {
  persisted = false;
  digest: Uint8Array | null = null;
  constructor(
    public left: TrieNode | null,
    public right: TrieNode | null,
  ) {}
}

/** A run of inner nodes with one empty side each, covering path bits [start, end). */
class ExtensionNode {
  persisted = false;
  digest: Uint8Array | null = null;
  constructor(
    readonly path: Uint8Array,
    public start: number,
    public end: number,
    public child: TrieNode | null,
  ) {}
}

/** A stored node known only by digest; `resolved` caches it once loaded. */
class LazyNode {
  resolved: LoadedNode | undefined = undefined;
  constructor(readonly digest: Uint8Array) {}
}

type LoadedNode = LeafNode | InnerNode | ExtensionNode;
type TrieNode = LoadedNode | LazyNode;

/** Unwinds a delete of an absent key; made once, so a miss does not capture a stack. */
class KeyNotFound extends Error {}
const KEY_NOT_FOUND = new KeyNotFound('key not found');

function setDirty(node: LoadedNode): void {
  node.persisted = false;
  node.digest = null;
}

function addOrphan(orphans: Uint8Array[], node: LoadedNode): void {
  if (node.persisted && node.digest !== null) orphans.push(node.digest);
}

function extensionMatches(ext: ExtensionNode, path: Uint8Array): boolean {
  for (let i = ext.start; i < ext.end; i++) {
    if (pathBit(ext.path, i) !== pathBit(path, i)) return false;
  }
  return true;
}

/** The chain of inner nodes an extension stands for, top node first. */
function expandExtension(ext: ExtensionNode): TrieNode | null {
  let last: TrieNode | null = ext.child;
  for (let i = ext.end - 1; i >= ext.start; i--) {
    last = pathBit(ext.path, i) === 0 ? new InnerNode(last, null) : new InnerNode(null, last);
  }
  return last;
}

function digestOf(node: TrieNode | null): Uint8Array {
  if (node === null) return ZERO_DIGEST;
  if (node instanceof LazyNode) return node.digest;
  if (node.digest !== null) return node.digest;
  if (node instanceof LeafNode) node.digest = leafDigest(node.path, node.valueHash);
  else if (node instanceof InnerNode) node.digest = innerDigest(digestOf(node.left), digestOf(node.right));
  else node.digest = extensionDigest(node.start, node.end, node.path, digestOf(node.child));
  return node.digest;
}

/** The node's stored form (spec §2 table). */
function encodeNode(node: LoadedNode): Uint8Array {
  if (node instanceof LeafNode) return encodeLeafNode(node.path, node.valueHash);
  if (node instanceof InnerNode) return encodeInnerNode(digestOf(node.left), digestOf(node.right));
  return encodeExtensionNode(node.start, node.end, node.path, digestOf(node.child));
}

function childFromDigest(digest: Uint8Array): TrieNode | null {
  return isPlaceholder(digest) ? null : new LazyNode(digest);
}

/** Parses a stored node and checks that its bytes hash to the digest it was stored under. */
function parseStoredNode(digest: Uint8Array, data: Uint8Array): LoadedNode {
  const hex = (): string => bytesToHex(digest);
  let node: LoadedNode;
  let computed: Uint8Array;
  switch (data[0]) {
    case LEAF_PREFIX: {
      if (data.length < MIN_LEAF_NODE_BYTES)
        throw new SmstNodeCorruptError(hex(), `leaf of ${data.length} bytes`);
      node = new LeafNode(copyBytes(data, 1, 1 + PATH_BYTES), copyBytes(data, 1 + PATH_BYTES));
      computed = digestOfPreimage(data);
      break;
    }
    case INNER_PREFIX: {
      if (data.length !== INNER_NODE_BYTES)
        throw new SmstNodeCorruptError(hex(), `inner node of ${data.length} bytes`);
      node = new InnerNode(
        childFromDigest(copyBytes(data, 1, 1 + DIGEST_BYTES)),
        childFromDigest(copyBytes(data, 1 + DIGEST_BYTES, 1 + 2 * DIGEST_BYTES)),
      );
      computed = digestOfPreimage(data);
      break;
    }
    case EXTENSION_PREFIX: {
      if (data.length !== EXTENSION_NODE_BYTES) {
        throw new SmstNodeCorruptError(hex(), `extension node of ${data.length} bytes`);
      }
      const start = data[1]!;
      const end = data[2]!;
      if (start >= end) throw new SmstNodeCorruptError(hex(), `extension bounds [${start}, ${end})`);
      const path = copyBytes(data, 3, 3 + PATH_BYTES);
      const child = copyBytes(data, 3 + PATH_BYTES, 3 + PATH_BYTES + DIGEST_BYTES);
      if (!equalBytes(child.subarray(DIGEST_BYTES - 16), data.subarray(data.length - 16))) {
        throw new SmstNodeCorruptError(hex(), 'extension sum/count differ from its child');
      }
      node = new ExtensionNode(path, start, end, childFromDigest(child));
      computed = extensionDigest(start, end, path, child);
      break;
    }
    default:
      throw new SmstNodeCorruptError(hex(), `unknown node prefix ${String(data[0])}`);
  }
  if (!equalBytes(computed, digest)) throw new SmstNodeCorruptError(hex(), 'bytes do not hash to the digest');
  node.persisted = true;
  node.digest = digest;
  return node;
}

export interface SmstOptions {
  /**
   * `none` (default) stores the raw value in the leaf, as the chain does. `sha256` is the
   * library's default and exists only for parity checks: its closest proofs never verify.
   */
  valueHasher?: 'none' | 'sha256';
}

export interface SmstLeaf {
  value: Uint8Array;
  weight: bigint;
}

export class SparseMerkleSumTrie {
  private rootNode: TrieNode | null;
  private orphans: Uint8Array[] = [];
  private pendingOperations = 0;
  private queue: Promise<void> | null = null;
  private readonly hashValues: boolean;
  /** False for a trie built from empty: it never holds nodes that still need loading. */
  private readonly mayNeedLoads: boolean;

  private constructor(
    private readonly store: MapStore,
    root: TrieNode | null,
    opts: SmstOptions,
  ) {
    this.rootNode = root;
    this.hashValues = opts.valueHasher === 'sha256';
    this.mayNeedLoads = root !== null;
  }

  /** An empty trie over `store`. */
  static create(store: MapStore, opts: SmstOptions = {}): SparseMerkleSumTrie {
    return new SparseMerkleSumTrie(store, null, opts);
  }

  /** A trie at `root` whose nodes are read from `store` as they are needed. */
  static import(store: MapStore, root: Uint8Array, opts: SmstOptions = {}): SparseMerkleSumTrie {
    if (root.length !== DIGEST_BYTES) {
      throw new SmstRootInvalidError(`cannot import a root of ${root.length} bytes; want ${DIGEST_BYTES}`);
    }
    return new SparseMerkleSumTrie(store, childFromDigest(copyBytes(root)), opts);
  }

  /** hash(32) ‖ sum(8 BE) ‖ count(8 BE); 48 zero bytes when empty. */
  root(): Uint8Array {
    return copyBytes(digestOf(this.rootNode));
  }

  sum(): bigint {
    return readUint64BE(digestOf(this.rootNode), 32);
  }

  count(): bigint {
    return readUint64BE(digestOf(this.rootNode), 40);
  }

  /** Inserts or replaces the leaf for `key` (path SHA-256(key)) with `value` and `weight`. */
  update(key: Uint8Array, value: Uint8Array, weight: bigint): Promise<void> {
    if (typeof weight !== 'bigint' || weight < 0n || weight >= UINT64_LIMIT) {
      return Promise.reject(new InvalidInputError('SMST weight', 'must be a uint64 bigint'));
    }
    const path = sha256(key);
    const valueHash = leafValueHash(this.hashValues ? sha256(value) : value, weight);
    return this.run(path, false, () => {
      const orphans: Uint8Array[] = [];
      this.rootNode = this.updateNode(this.rootNode, 0, path, valueHash, orphans);
      for (const o of orphans) this.orphans.push(o);
      this.pendingOperations++;
    });
  }

  /** Removes the leaf for `key`; SmstKeyNotFoundError (trie unchanged) if there is none. */
  delete(key: Uint8Array): Promise<void> {
    const path = sha256(key);
    return this.run(path, true, () => {
      const orphans: Uint8Array[] = [];
      let root: TrieNode | null;
      try {
        root = this.deleteNode(this.rootNode, 0, path, orphans);
      } catch (err) {
        if (err === KEY_NOT_FOUND) throw new SmstKeyNotFoundError(bytesToHex(path));
        throw err;
      }
      this.rootNode = root;
      for (const o of orphans) this.orphans.push(o);
      this.pendingOperations++;
    });
  }

  /** The leaf value and weight for `key`, or null when no leaf has its path. */
  get(key: Uint8Array): Promise<SmstLeaf | null> {
    const path = sha256(key);
    return this.run(path, false, () => this.getLeaf(path));
  }

  /**
   * Deletes orphaned nodes and writes every new or changed node, as one batch handed to the
   * store. Unchanged subtrees are skipped.
   */
  commit(): Promise<void> {
    return this.run(null, false, () => {
      const nodes: LoadedNode[] = [];
      const writes: [Uint8Array, Uint8Array][] = [];
      this.collectWrites(this.rootNode, nodes, writes);
      const batch: StoreBatch = {
        root: this.root(),
        deletes: this.orphans,
        writes,
        operations: this.pendingOperations,
      };
      // A store that refuses the batch outright leaves the trie as it was, so the same nodes
      // and orphans go into the next commit. Once it has taken the batch, delivering it (and
      // retrying) is the store's job.
      const accepted = this.store.commit(batch);
      for (const n of nodes) n.persisted = true;
      this.orphans = [];
      this.pendingOperations = 0;
      return accepted;
    });
  }

  /** Upstream ProveClosest: the decompacted proof for the leaf closest to `path`. */
  proveClosest(path: Uint8Array): Promise<ClosestProof> {
    if (path.length !== PATH_BYTES) {
      return Promise.reject(new InvalidInputError('closest proof path', `must be ${PATH_BYTES} bytes`));
    }
    return this.run(null, false, () => this.buildClosestProof(copyBytes(path)));
  }

  /** The bytes of MsgSubmitProof.proof: ProveClosest → CompactClosestProof → gob. */
  async proveClosestBytes(path: Uint8Array): Promise<Uint8Array> {
    return encodeCompactClosestProof(compactClosestProof(await this.proveClosest(path)));
  }

  // -------------------------------------------------------------------------------------------
  // Sequencing and loading

  private run<T>(path: Uint8Array | null, withSiblings: boolean, op: () => T | Promise<T>): Promise<T> {
    if (this.queue === null && (path === null || this.firstUnloaded(path, withSiblings) === null)) {
      let result: T | Promise<T>;
      try {
        result = op();
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      return result instanceof Promise ? this.track(result) : Promise.resolve(result);
    }
    const previous = this.queue ?? Promise.resolve();
    return this.track(
      previous.then(async () => {
        if (path !== null) {
          for (let lazy = this.firstUnloaded(path, withSiblings); lazy !== null;) {
            await this.load(lazy);
            lazy = this.firstUnloaded(path, withSiblings);
          }
        }
        return op();
      }),
    );
  }

  private track<T>(p: Promise<T>): Promise<T> {
    const tail = p.then(
      () => undefined,
      () => undefined,
    );
    this.queue = tail;
    void tail.then(() => {
      if (this.queue === tail) this.queue = null;
    });
    return p;
  }

  /** First node on the way to `path` (and, for deletes, beside it) that is not loaded yet. */
  private firstUnloaded(path: Uint8Array, withSiblings: boolean): LazyNode | null {
    if (!this.mayNeedLoads) return null;
    let node = this.rootNode;
    let depth = 0;
    for (;;) {
      if (node === null) return null;
      if (node instanceof LazyNode) {
        if (node.resolved === undefined) return node;
        node = node.resolved;
        continue;
      }
      if (node instanceof LeafNode) return null;
      if (node instanceof ExtensionNode) {
        if (!extensionMatches(node, path)) return null;
        depth = node.end;
        node = node.child;
        continue;
      }
      const left = pathBit(path, depth) === 0;
      if (withSiblings) {
        const sib = left ? node.right : node.left;
        if (sib instanceof LazyNode && sib.resolved === undefined) return sib;
      }
      node = left ? node.left : node.right;
      depth++;
    }
  }

  private async load(lazy: LazyNode): Promise<void> {
    const got = this.store.get(lazy.digest);
    const data = got instanceof Promise ? await got : got;
    if (data === undefined) throw new SmstNodeMissingError(bytesToHex(lazy.digest));
    lazy.resolved ??= parseStoredNode(lazy.digest, data);
  }

  private async resolve(node: TrieNode | null): Promise<LoadedNode | null> {
    if (!(node instanceof LazyNode)) return node;
    if (node.resolved === undefined) await this.load(node);
    return node.resolved!;
  }

  /** A node the sequencing step has already loaded. */
  private loaded(node: TrieNode | null): LoadedNode | null {
    if (!(node instanceof LazyNode)) return node;
    if (node.resolved === undefined) {
      throw new RelayMinerError(
        'SMST_INTERNAL',
        `trie node ${bytesToHex(node.digest)} used before it was loaded`,
      );
    }
    return node.resolved;
  }

  // -------------------------------------------------------------------------------------------
  // Update, delete, get, commit

  private updateNode(
    node: TrieNode | null,
    depth: number,
    path: Uint8Array,
    valueHash: Uint8Array,
    orphans: Uint8Array[],
  ): LoadedNode {
    const n = this.loaded(node);
    if (n === null) return new LeafNode(path, valueHash);

    if (n instanceof LeafNode) {
      const p = firstDifferingBit(path, n.path, depth);
      if (p === MAX_DEPTH) {
        addOrphan(orphans, n);
        return new LeafNode(path, valueHash);
      }
      const leaf = new LeafNode(path, valueHash);
      const inner = pathBit(path, p) === 0 ? new InnerNode(leaf, n) : new InnerNode(n, leaf);
      return depth < p ? new ExtensionNode(path, depth, p, inner) : inner;
    }

    addOrphan(orphans, n);

    if (n instanceof ExtensionNode) {
      let i = n.start;
      while (i < n.end && pathBit(n.path, i) === pathBit(path, i)) i++;
      if (i === n.end) {
        n.child = this.updateNode(n.child, n.end, path, valueHash, orphans);
        setDirty(n);
        return n;
      }
      // Split at bit i: a new inner node B there, the old continuation on the extension's side.
      const child = n.child;
      const branch = new InnerNode(null, null);
      const extensionSide = pathBit(n.path, i);
      let head: LoadedNode;
      let tail: TrieNode | null;
      if (i === n.start) {
        head = branch;
        n.start++;
        tail = n.end === n.start ? child : n;
      } else {
        head = n;
        n.child = branch;
        tail = i === n.end - 1 ? child : new ExtensionNode(n.path, i + 1, n.end, child);
        n.end = i;
      }
      const leaf = new LeafNode(path, valueHash);
      if (extensionSide === 0) {
        branch.left = tail;
        branch.right = leaf;
      } else {
        branch.left = leaf;
        branch.right = tail;
      }
      setDirty(n);
      return head;
    }

    if (pathBit(path, depth) === 0) n.left = this.updateNode(n.left, depth + 1, path, valueHash, orphans);
    else n.right = this.updateNode(n.right, depth + 1, path, valueHash, orphans);
    setDirty(n);
    return n;
  }

  private deleteNode(
    node: TrieNode | null,
    depth: number,
    path: Uint8Array,
    orphans: Uint8Array[],
  ): LoadedNode | null {
    const n = this.loaded(node);
    if (n === null) throw KEY_NOT_FOUND;
    if (n instanceof LeafNode) {
      if (!equalBytes(path, n.path)) throw KEY_NOT_FOUND;
      addOrphan(orphans, n);
      return null;
    }

    addOrphan(orphans, n);

    if (n instanceof ExtensionNode) {
      if (!extensionMatches(n, path)) throw KEY_NOT_FOUND;
      const child = this.deleteNode(n.child, n.end, path, orphans);
      n.child = child;
      if (child instanceof LeafNode) return child;
      if (child instanceof ExtensionNode) {
        // Join this extension with its child extension.
        addOrphan(orphans, child);
        child.start = n.start;
        setDirty(child);
        setDirty(n);
        return child;
      }
      setDirty(n);
      return n;
    }

    const goLeft = pathBit(path, depth) === 0;
    const child = this.deleteNode(goLeft ? n.left : n.right, depth + 1, path, orphans);
    const sib = this.loaded(goLeft ? n.right : n.left);
    if (goLeft) {
      n.left = child;
      n.right = sib;
    } else {
      n.right = child;
      n.left = sib;
    }
    // An inner node left with one empty side collapses into a leaf or extension beside it; next
    // to another inner node it stays, with a placeholder child.
    const pair: [LoadedNode | null, LoadedNode | null] = [child, sib];
    for (let i = 0; i < 2; i++) {
      if (pair[i] !== null) continue;
      const other = pair[1 - i]!;
      if (other instanceof LeafNode) return other;
      if (other instanceof ExtensionNode) {
        addOrphan(orphans, other);
        other.start--;
        setDirty(other);
        return other;
      }
    }
    setDirty(n);
    return n;
  }

  private getLeaf(path: Uint8Array): SmstLeaf | null {
    let node = this.loaded(this.rootNode);
    let depth = 0;
    for (;;) {
      if (node === null) return null;
      if (node instanceof LeafNode) {
        if (!equalBytes(path, node.path)) return null;
        const vh = node.valueHash;
        return { value: copyBytes(vh, 0, vh.length - 16), weight: readUint64BE(vh, vh.length - 16) };
      }
      if (node instanceof ExtensionNode) {
        if (!extensionMatches(node, path)) return null;
        depth = node.end;
        node = this.loaded(node.child);
        continue;
      }
      node = this.loaded(pathBit(path, depth) === 0 ? node.left : node.right);
      depth++;
    }
  }

  /** Post-order: children before parents, persisted subtrees skipped (upstream commit). */
  private collectWrites(
    node: TrieNode | null,
    nodes: LoadedNode[],
    writes: [Uint8Array, Uint8Array][],
  ): void {
    if (node === null || node instanceof LazyNode || node.persisted) return;
    if (node instanceof InnerNode) {
      this.collectWrites(node.left, nodes, writes);
      this.collectWrites(node.right, nodes, writes);
    } else if (node instanceof ExtensionNode) {
      this.collectWrites(node.child, nodes, writes);
    }
    nodes.push(node);
    writes.push([digestOf(node), encodeNode(node)]);
  }

  // -------------------------------------------------------------------------------------------
  // Closest proof

  private async buildClosestProof(path: Uint8Array): Promise<ClosestProof> {
    const working = copyBytes(path);
    const siblings: (TrieNode | null)[] = [];
    const flippedBits: number[] = [];
    let sib: TrieNode | null = null;
    let parent: TrieNode | null = null;
    let depthDelta = 0;
    let depth = 0;
    let proofDepth = 0;
    let node: TrieNode | LoadedNode | null = this.rootNode;

    while (depth < MAX_DEPTH) {
      if (node !== null) parent = node;
      node = await this.resolve(node);
      if (node !== null) {
        depthDelta = 0;
      } else {
        // Dead end: step back to the last non-empty node and take the other side there.
        node = await this.resolve(parent);
        siblings.pop();
        depth -= depthDelta;
        if (depth < 0) throw new SmstProofUnprovableError('walk stepped back above the root');
        flipPathBit(working, depth);
        flippedBits.push(depth);
      }
      if (node instanceof LeafNode) {
        proofDepth = depth;
        break;
      }
      if (node instanceof ExtensionNode) {
        if (depth !== node.start) {
          throw new SmstProofUnprovableError(
            `walk reached extension [${node.start}, ${node.end}) at depth ${depth}`,
          );
        }
        if (!extensionMatches(node, working)) {
          node = expandExtension(node);
        } else {
          const length = node.end - node.start;
          for (let i = 0; i < length; i++) siblings.push(null);
          depth += length;
          depthDelta += length;
          node = await this.resolve(node.child);
        }
      }
      if (!(node instanceof InnerNode)) {
        proofDepth = depth;
        break;
      }
      if (pathBit(working, depth) === 0) {
        sib = node.right;
        node = node.left;
      } else {
        sib = node.left;
        node = node.right;
      }
      siblings.push(sib);
      depth++;
      depthDelta++;
    }

    if (node === null) {
      return {
        path,
        flippedBits,
        depth: proofDepth,
        closestPath: new Uint8Array(DIGEST_BYTES),
        closestValueHash: null,
        closestProof: { sideNodes: [], nonMembershipLeafData: null, siblingData: null },
      };
    }
    const leaf = await this.resolve(node);
    if (!(leaf instanceof LeafNode)) throw new SmstProofUnprovableError('walk did not end on a leaf');
    const sideNodes: Uint8Array[] = [];
    for (let i = siblings.length - 1; i >= 0; i--) sideNodes.push(copyBytes(digestOf(siblings[i]!)));
    const sibling = sib === null ? null : await this.resolve(sib);
    return {
      path,
      flippedBits,
      depth: proofDepth,
      closestPath: copyBytes(leaf.path),
      closestValueHash: copyBytes(leaf.valueHash),
      closestProof: {
        sideNodes,
        nonMembershipLeafData: null,
        siblingData: sibling === null ? null : copyBytes(encodeNode(sibling)),
      },
    };
  }
}
