/**
 * The Redis-backed node store of one (supplier, session) trie, in the Go relay miner's layout
 * (smst.md §10): hash `ha:smst:{supplier}:{session}:nodes` (field = hex digest, value = node
 * preimage), string `…:live_root` checkpointed mid-session, `…:root` and `…:stats` written when
 * the trie is sealed for its claim.
 *
 * Commits only buffer. `flush()` sends everything buffered in one request (a pipeline of HSETs,
 * or a MULTI/EXEC when it carries a checkpoint), so any number of relays cost one round trip.
 * Orphaned nodes are not deleted at once: their HDEL waits for the next checkpoint and travels in
 * the same transaction as the new `live_root`, so the last checkpointed root always stays fully
 * loadable. A checkpoint is due on the first flush and whenever `live_root_checkpoint_interval`
 * operations were committed since the previous one. A failed flush keeps its batch and the next
 * flush sends it again first. With a TTL configured, the first flush of a new trie and every
 * checkpoint (re)set it on the nodes hash and live_root, so they expire together once the session
 * goes quiet.
 *
 * Nodes written or read stay in a bounded in-memory cache, so a trie re-imported in the same
 * process (the prover at the claimed root) does not go back to Redis; `open()` resumes a new
 * owner from the claimed root or the live root and loads nodes lazily, one HGET per node the
 * trie first touches.
 */
import { Command, Pipeline, type Redis } from 'ioredis';
import { InvalidInputError, bytesToHex } from '../core/index.js';
import {
  ROOT_BYTES,
  SmstNodeMissingError,
  SparseMerkleSumTrie,
  isPlaceholder,
  parseMerkleSumRoot,
  placeholderDigest,
  type MapStore,
  type SmstOptions,
  type StoreBatch,
} from '../protocol/smst/index.js';
import type { KeyBuilder, SessionTreeKeys } from '../transport/index.js';
import { SmstRedisError, SmstTreeSealedError } from './errors.js';

export interface SmstRedisStoreConfig {
  /** Supplier operator address; part of every key because suppliers share sessions. */
  supplier: string;
  session_id: string;
  /** Operations between live_root checkpoints (upstream smst_live_root_checkpoint_interval). */
  live_root_checkpoint_interval?: number;
  /** TTL of the nodes hash, live_root, root and stats, refreshed at each checkpoint; 0 = none. */
  cache_ttl_seconds?: number;
  /** Nodes kept in memory after they were written or read. */
  node_cache_size?: number;
  /** Buffered node writes at which a commit flushes by itself. */
  max_pending_writes?: number;
}

export interface SmstRedisStoreDeps {
  redis: Redis;
  keys: KeyBuilder;
}

export interface SmstRedisStoreStats {
  /** Requests sent to Redis and awaited (one per MULTI/EXEC, HGET or MGET). */
  roundTrips: number;
  flushes: number;
  checkpoints: number;
  commits: number;
  /** Update and delete operations committed. */
  operations: number;
  nodesWritten: number;
  nodesDeleted: number;
  /** Nodes fetched from Redis with HGET. */
  nodeReads: number;
  /** Node reads served from memory. */
  cacheHits: number;
}

/** Where `open()` found the trie. */
export type ResumeSource = 'claimed_root' | 'live_root' | 'new';

export interface SessionTrie {
  trie: SparseMerkleSumTrie;
  store: SmstRedisStore;
  resumedFrom: ResumeSource;
}

/** One flush's worth of commands, kept until Redis has applied it. */
interface PendingFlush {
  writes: Map<string, Uint8Array>;
  checkpoint: { root: Uint8Array; deletes: string[] } | null;
  seal: { root: Uint8Array } | null;
  expireNodes: boolean;
}

const DEFAULTS = {
  live_root_checkpoint_interval: 10,
  cache_ttl_seconds: 0,
  node_cache_size: 200_000,
  max_pending_writes: 50_000,
};

/** Fields per HSET/HDEL command, to keep single commands moderate. */
const FIELDS_PER_COMMAND = 2_048;

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** In-memory key of a digest: its 48 bytes as a latin1 string (cheaper to build and hash than hex). */
function keyOf(digest: Uint8Array): string {
  return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('latin1');
}

const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');
const CR = 13;
const LF = 10;
const DOLLAR = 36;
/** `$96\r\n`, the bulk-string header of a hex digest field. */
const FIELD_HEADER = Buffer.from(`$${2 * 48}\r\n`, 'latin1');

/** Writes the lowercase hex of a latin1 digest key (the Redis field name), then CRLF. */
function writeHexField(out: Buffer, off: number, key: string): number {
  out.set(FIELD_HEADER, off);
  off += FIELD_HEADER.length;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    out[off++] = HEX_DIGITS[c >> 4]!;
    out[off++] = HEX_DIGITS[c & 15]!;
  }
  out[off++] = CR;
  out[off++] = LF;
  return off;
}

function decimalDigits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/** Writes `$<n>\r\n`. */
function writeBulkHeader(out: Buffer, off: number, n: number): number {
  out[off++] = DOLLAR;
  const digits = decimalDigits(n);
  for (let i = digits - 1; i >= 0; i--) {
    out[off + i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  off += digits;
  out[off++] = CR;
  out[off++] = LF;
  return off;
}

/**
 * A command whose RESP bytes are prepared here. HSET and HDEL of thousands of node fields are
 * the bulk of the store's traffic; writing the hex field names straight from the digests into one
 * buffer avoids a string and a copy per argument.
 */
class EncodedCommand extends Command {
  constructor(
    name: string,
    key: string,
    private readonly encoded: Buffer,
  ) {
    super(name, [key]);
  }

  override toWritable(): Buffer {
    return this.encoded;
  }
}

function header(name: string, key: string, args: number): { text: string; bytes: number } {
  const keyBytes = Buffer.byteLength(key);
  const text = `*${args + 2}\r\n$${name.length}\r\n${name}\r\n$${keyBytes}\r\n${key}\r\n`;
  return { text, bytes: Buffer.byteLength(text) };
}

/** `HSET key field value …` for digest keys (latin1) and node preimages. */
function encodeHset(nodesKey: string, entries: readonly (readonly [string, Uint8Array])[]): EncodedCommand {
  const h = header('HSET', nodesKey, 2 * entries.length);
  const fieldBytes = FIELD_HEADER.length + 96 + 2;
  let size = h.bytes;
  for (const [, value] of entries) size += fieldBytes + 3 + decimalDigits(value.length) + value.length + 2;
  const out = Buffer.allocUnsafe(size);
  let off = out.write(h.text, 0, 'utf8');
  for (const [key, value] of entries) {
    off = writeHexField(out, off, key);
    off = writeBulkHeader(out, off, value.length);
    out.set(value, off);
    off += value.length;
    out[off++] = CR;
    out[off++] = LF;
  }
  return new EncodedCommand('hset', nodesKey, out);
}

/** `HDEL key field …` for digest keys (latin1). */
function encodeHdel(nodesKey: string, keys: readonly string[]): EncodedCommand {
  const h = header('HDEL', nodesKey, keys.length);
  const out = Buffer.allocUnsafe(h.bytes + keys.length * (FIELD_HEADER.length + 96 + 2));
  let off = out.write(h.text, 0, 'utf8');
  for (const key of keys) off = writeHexField(out, off, key);
  return new EncodedCommand('hdel', nodesKey, out);
}

export class SmstRedisStore implements MapStore {
  readonly keys: SessionTreeKeys;
  readonly stats: SmstRedisStoreStats = {
    roundTrips: 0,
    flushes: 0,
    checkpoints: 0,
    commits: 0,
    operations: 0,
    nodesWritten: 0,
    nodesDeleted: 0,
    nodeReads: 0,
    cacheHits: 0,
  };

  private readonly supplier: string;
  private readonly sessionId: string;
  private readonly checkpointInterval: number;
  private readonly ttlSeconds: number;
  private readonly cacheSize: number;
  private readonly maxPendingWrites: number;

  private pendingWrites = new Map<string, Uint8Array>();
  /** Pending writes of digests that are in Redis and were awaiting HDEL when rewritten. */
  private readonly rewrittenOrphans = new Set<string>();
  private pendingDeletes = new Set<string>();
  private unsent: PendingFlush[] = [];
  /** Flushed writes, oldest first: the write side of the node cache. */
  private readonly flushedWrites: Map<string, Uint8Array>[] = [];
  private flushedEntries = 0;
  private readonly readCache = new Map<string, Uint8Array>();

  private lastRoot: Uint8Array | null = null;
  private operationsSinceCheckpoint = 0;
  private hasCheckpointed = false;
  private needsCreationExpire = false;
  private sealed = false;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: SmstRedisStoreDeps,
    cfg: SmstRedisStoreConfig,
  ) {
    if (deps.redis.options.keyPrefix) {
      throw new InvalidInputError(
        'SMST Redis client',
        'must not set keyPrefix; the KeyBuilder owns every prefix',
      );
    }
    this.supplier = cfg.supplier;
    this.sessionId = cfg.session_id;
    this.keys = deps.keys.sessionTree(cfg.supplier, cfg.session_id);
    this.checkpointInterval = Math.max(
      1,
      cfg.live_root_checkpoint_interval ?? DEFAULTS.live_root_checkpoint_interval,
    );
    this.ttlSeconds = Math.max(0, Math.floor(cfg.cache_ttl_seconds ?? DEFAULTS.cache_ttl_seconds));
    this.cacheSize = Math.max(0, cfg.node_cache_size ?? DEFAULTS.node_cache_size);
    this.maxPendingWrites = Math.max(1, cfg.max_pending_writes ?? DEFAULTS.max_pending_writes);
  }

  /**
   * Opens the session trie for a (new) owner: the claimed root if the trie was sealed, else the
   * live root checkpoint, else a new empty trie. Roots that are not 48 bytes are deleted and
   * ignored. The root node is read at once, so a checkpoint whose nodes are gone fails here
   * with SmstNodeMissingError instead of on the first relay.
   */
  static async open(
    deps: SmstRedisStoreDeps,
    cfg: SmstRedisStoreConfig,
    opts: SmstOptions = {},
  ): Promise<SessionTrie> {
    const store = new SmstRedisStore(deps, cfg);
    const k = store.keys;
    let found: (Buffer | null)[];
    store.stats.roundTrips++;
    try {
      found = await deps.redis.mgetBuffer(k.root, k.liveRoot);
    } catch (err) {
      throw new SmstRedisError('MGET of the trie roots', k.nodes, { cause: err });
    }
    const [claimed, live] = found;
    const corrupt: string[] = [];
    let root: Uint8Array | null = null;
    let resumedFrom: ResumeSource = 'new';
    if (claimed) {
      if (claimed.length === ROOT_BYTES) {
        root = new Uint8Array(claimed);
        resumedFrom = 'claimed_root';
      } else corrupt.push(k.root);
    }
    if (root === null && live) {
      if (live.length === ROOT_BYTES) {
        root = new Uint8Array(live);
        resumedFrom = 'live_root';
      } else corrupt.push(k.liveRoot);
    }
    if (corrupt.length > 0) {
      store.stats.roundTrips++;
      try {
        await deps.redis.del(...corrupt);
      } catch (err) {
        throw new SmstRedisError('DEL of corrupt roots', k.nodes, { cause: err });
      }
    }
    if (root === null) {
      store.needsCreationExpire = true;
      return { trie: SparseMerkleSumTrie.create(store, opts), store, resumedFrom };
    }
    store.lastRoot = root;
    store.sealed = resumedFrom === 'claimed_root';
    if (!isPlaceholder(root)) await store.get(root);
    return { trie: SparseMerkleSumTrie.import(store, root, opts), store, resumedFrom };
  }

  get isSealed(): boolean {
    return this.sealed;
  }

  /** Node writes buffered and not yet sent. */
  get pendingWriteCount(): number {
    return this.pendingWrites.size;
  }

  get(digest: Uint8Array): Uint8Array | Promise<Uint8Array> {
    const key = keyOf(digest);
    const local = this.lookupLocal(key);
    if (local !== undefined) {
      this.stats.cacheHits++;
      return local;
    }
    return this.fetch(key, bytesToHex(digest));
  }

  commit(batch: StoreBatch): void | Promise<void> {
    if (this.sealed) throw new SmstTreeSealedError(this.supplier, this.sessionId);
    this.stats.commits++;
    this.stats.operations += batch.operations;
    for (const d of batch.deletes) {
      const key = keyOf(d);
      // A node written since the last flush never reached Redis unless it replaced a node there.
      if (this.pendingWrites.delete(key)) {
        if (this.rewrittenOrphans.delete(key)) this.pendingDeletes.add(key);
      } else {
        this.pendingDeletes.add(key);
      }
    }
    for (const [d, v] of batch.writes) {
      const key = keyOf(d);
      if (this.pendingDeletes.delete(key)) this.rewrittenOrphans.add(key);
      this.pendingWrites.set(key, v);
    }
    this.lastRoot = batch.root;
    this.operationsSinceCheckpoint += batch.operations;
    if (this.pendingWrites.size >= this.maxPendingWrites) return this.flush();
  }

  /** Sends buffered writes (and a checkpoint when due) in one request. */
  flush(): Promise<void> {
    return this.enqueue(() => this.flushNow(false, false));
  }

  /** Flushes and checkpoints live_root now, deleting the orphans collected so far. */
  checkpoint(): Promise<void> {
    return this.enqueue(() => this.flushNow(true, false));
  }

  /**
   * Seals the trie for its claim: flushes, checkpoints, and stores `root` and `stats`
   * (`{count}:{sum}`) in the same transaction. Later commits throw SmstTreeSealedError.
   */
  async seal(): Promise<Uint8Array> {
    await this.enqueue(() => this.flushNow(true, true));
    return (this.lastRoot ?? placeholderDigest()).slice();
  }

  /** Deletes every key of this session trie. */
  async destroy(): Promise<void> {
    await this.enqueue(async () => {
      this.stats.roundTrips++;
      try {
        await this.deps.redis.del(this.keys.nodes, this.keys.root, this.keys.liveRoot, this.keys.stats);
      } catch (err) {
        throw new SmstRedisError('DEL of the trie keys', this.keys.nodes, { cause: err });
      }
      this.pendingWrites = new Map();
      this.pendingDeletes = new Set();
      this.rewrittenOrphans.clear();
      this.unsent = [];
    });
  }

  private enqueue(fn: () => Promise<void>): Promise<void> {
    const p = this.chain.then(fn);
    this.chain = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  private lookupLocal(key: string): Uint8Array | undefined {
    const pending = this.pendingWrites.get(key);
    if (pending !== undefined) return pending;
    for (let i = this.unsent.length - 1; i >= 0; i--) {
      const v = this.unsent[i]!.writes.get(key);
      if (v !== undefined) return v;
    }
    for (let i = this.flushedWrites.length - 1; i >= 0; i--) {
      const v = this.flushedWrites[i]!.get(key);
      if (v !== undefined) return v;
    }
    return this.readCache.get(key);
  }

  private async fetch(key: string, field: string): Promise<Uint8Array> {
    this.stats.roundTrips++;
    this.stats.nodeReads++;
    let value: Buffer | null;
    try {
      value = await this.deps.redis.hgetBuffer(this.keys.nodes, field);
    } catch (err) {
      throw new SmstRedisError('HGET', this.keys.nodes, { cause: err });
    }
    if (value === null || value.length === 0) throw new SmstNodeMissingError(field, this.keys.nodes);
    const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    if (this.cacheSize > 0) {
      if (this.readCache.size >= this.cacheSize) {
        const oldest = this.readCache.keys().next();
        if (!oldest.done) this.readCache.delete(oldest.value);
      }
      this.readCache.set(key, bytes);
    }
    return bytes;
  }

  private async flushNow(forceCheckpoint: boolean, seal: boolean): Promise<void> {
    const checkpointDue =
      forceCheckpoint ||
      (this.lastRoot !== null &&
        (!this.hasCheckpointed || this.operationsSinceCheckpoint >= this.checkpointInterval));
    if (this.pendingWrites.size > 0 || checkpointDue || this.needsCreationExpire || seal) {
      this.unsent.push({
        writes: this.pendingWrites,
        checkpoint: checkpointDue
          ? { root: this.lastRoot ?? placeholderDigest(), deletes: [...this.pendingDeletes] }
          : null,
        seal: seal ? { root: this.lastRoot ?? placeholderDigest() } : null,
        expireNodes: this.needsCreationExpire,
      });
      this.pendingWrites = new Map();
      this.rewrittenOrphans.clear();
      if (checkpointDue) {
        this.pendingDeletes = new Set();
        this.operationsSinceCheckpoint = 0;
        this.hasCheckpointed = true;
      }
      this.needsCreationExpire = false;
      if (seal) this.sealed = true;
    }
    if (this.unsent.length > 0) await this.send();
  }

  private async send(): Promise<void> {
    const k = this.keys;
    const ttl = this.ttlSeconds;
    // Node writes alone need no transaction: nothing references them until a checkpoint, and
    // resending them is harmless. Checkpoints go in MULTI/EXEC with the writes before them.
    const transactional = this.unsent.some((f) => f.checkpoint !== null || f.seal !== null || f.expireNodes);
    const batch = transactional ? this.deps.redis.multi() : this.deps.redis.pipeline();
    // ioredis builds both as a Pipeline; going through it (not bare sendCommand) keeps its
    // handling of a connection lost mid-transaction, which aborts the fragments.
    if (!(batch instanceof Pipeline)) throw new SmstRedisError('flush (ioredis gave no pipeline)', k.nodes);
    for (const f of this.unsent) {
      let chunk: [string, Uint8Array][] = [];
      for (const entry of f.writes) {
        chunk.push(entry);
        if (chunk.length === FIELDS_PER_COMMAND) {
          batch.sendCommand(encodeHset(k.nodes, chunk));
          chunk = [];
        }
      }
      if (chunk.length > 0) batch.sendCommand(encodeHset(k.nodes, chunk));
      if (f.expireNodes && ttl > 0) batch.expire(k.nodes, ttl);
      if (f.checkpoint !== null) {
        const deletes = f.checkpoint.deletes;
        for (let i = 0; i < deletes.length; i += FIELDS_PER_COMMAND) {
          batch.sendCommand(encodeHdel(k.nodes, deletes.slice(i, i + FIELDS_PER_COMMAND)));
        }
        batch.set(k.liveRoot, toBuffer(f.checkpoint.root));
        if (ttl > 0) {
          batch.expire(k.nodes, ttl);
          batch.expire(k.liveRoot, ttl);
        }
      }
      if (f.seal !== null) {
        const { sum, count } = parseMerkleSumRoot(f.seal.root);
        if (ttl > 0) {
          batch.set(k.root, toBuffer(f.seal.root), 'EX', ttl);
          batch.set(k.stats, `${count}:${sum}`, 'EX', ttl);
        } else {
          batch.set(k.root, toBuffer(f.seal.root));
          batch.set(k.stats, `${count}:${sum}`);
        }
      }
    }
    this.stats.roundTrips++;
    let results: [Error | null, unknown][] | null;
    try {
      results = await batch.exec();
    } catch (err) {
      throw new SmstRedisError('flush', k.nodes, { cause: err });
    }
    if (results === null) throw new SmstRedisError('flush (transaction aborted)', k.nodes);
    for (const [err] of results) {
      if (err !== null) throw new SmstRedisError('flush', k.nodes, { cause: err });
    }
    this.stats.flushes++;
    for (const f of this.unsent) {
      this.stats.nodesWritten += f.writes.size;
      if (f.checkpoint !== null) {
        this.stats.checkpoints++;
        this.stats.nodesDeleted += f.checkpoint.deletes.length;
      }
      this.remember(f.writes);
    }
    this.unsent = [];
  }

  /** Keeps a flushed write set as the newest cache generation, dropping the oldest beyond the limit. */
  private remember(writes: Map<string, Uint8Array>): void {
    if (this.cacheSize === 0 || writes.size === 0) return;
    this.flushedWrites.push(writes);
    this.flushedEntries += writes.size;
    while (this.flushedEntries > this.cacheSize && this.flushedWrites.length > 0) {
      this.flushedEntries -= this.flushedWrites.shift()!.size;
    }
  }
}
