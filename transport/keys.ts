/**
 * The one builder of Redis key names (cache-and-redis.md §5, upstream transport/redis/namespace.go).
 * By default it emits upstream's exact strings (`ha:smst:{supplier}:{session_id}:nodes` …), so a
 * mixed fleet can share one Redis. With `cluster_hash_tags` the supplier part is wrapped in a hash
 * tag, so every key of one supplier (and so every key a transaction on its session trie touches)
 * lands in one Redis Cluster slot.
 */
import { InvalidInputError } from '../core/index.js';

/** `redis.namespace` in the YAML; each field defaults independently, as upstream. */
export interface RedisNamespaceConfig {
  base_prefix?: string;
  cache_prefix?: string;
  events_prefix?: string;
  streams_prefix?: string;
  miner_prefix?: string;
  supplier_prefix?: string;
  meter_prefix?: string;
  params_prefix?: string;
  consumer_group_prefix?: string;
}

export const DEFAULT_NAMESPACE: Readonly<Required<RedisNamespaceConfig>> = Object.freeze({
  base_prefix: 'ha',
  cache_prefix: 'cache',
  events_prefix: 'events',
  streams_prefix: 'relays',
  miner_prefix: 'miner',
  supplier_prefix: 'supplier',
  meter_prefix: 'meter',
  params_prefix: 'params',
  consumer_group_prefix: 'miners',
});

export interface KeyBuilderOptions {
  namespace?: RedisNamespaceConfig;
  /** Wrap the supplier in `{…}` so a supplier's keys share a Redis Cluster slot. */
  cluster_hash_tags?: boolean;
}

/** The Redis keys of one (supplier, session) trie. */
export interface SessionTreeKeys {
  /** Hash: lowercase hex digest → node preimage. */
  nodes: string;
  /** String: the 48-byte root sealed for the claim. */
  root: string;
  /** String: the 48-byte root checkpointed mid-session. */
  liveRoot: string;
  /** String: ASCII `{count}:{sum}` written with the claimed root. */
  stats: string;
}

export class KeyBuilder {
  readonly namespace: Readonly<Required<RedisNamespaceConfig>>;
  readonly clusterHashTags: boolean;

  constructor(opts: KeyBuilderOptions = {}) {
    const ns = { ...DEFAULT_NAMESPACE };
    for (const [k, v] of Object.entries(opts.namespace ?? {}) as [
      keyof RedisNamespaceConfig,
      string | undefined,
    ][]) {
      if (v !== undefined && v !== '') ns[k] = v;
    }
    this.namespace = Object.freeze(ns);
    this.clusterHashTags = opts.cluster_hash_tags ?? false;
  }

  private supplierPart(supplier: string): string {
    if (supplier === '' || /[{}\s]/.test(supplier)) {
      throw new InvalidInputError(
        'supplier address in a Redis key',
        'must be non-empty, without braces or spaces',
      );
    }
    return this.clusterHashTags ? `{${supplier}}` : supplier;
  }

  private sessionPart(sessionId: string): string {
    if (sessionId === '' || /[{}\s:]/.test(sessionId)) {
      throw new InvalidInputError(
        'session id in a Redis key',
        'must be non-empty, without braces, colons or spaces',
      );
    }
    return sessionId;
  }

  /** `{base}:smst:` — the prefix of every session-trie key. */
  smstPrefix(): string {
    return `${this.namespace.base_prefix}:smst:`;
  }

  /** `{base}:smst:*:*:nodes`, for SCAN over all tries. */
  smstNodesPattern(): string {
    return `${this.smstPrefix()}*:*:nodes`;
  }

  private smstKey(supplier: string, sessionId: string, suffix: string): string {
    return `${this.smstPrefix()}${this.supplierPart(supplier)}:${this.sessionPart(sessionId)}:${suffix}`;
  }

  smstNodes(supplier: string, sessionId: string): string {
    return this.smstKey(supplier, sessionId, 'nodes');
  }

  smstRoot(supplier: string, sessionId: string): string {
    return this.smstKey(supplier, sessionId, 'root');
  }

  smstLiveRoot(supplier: string, sessionId: string): string {
    return this.smstKey(supplier, sessionId, 'live_root');
  }

  smstStats(supplier: string, sessionId: string): string {
    return this.smstKey(supplier, sessionId, 'stats');
  }

  sessionTree(supplier: string, sessionId: string): SessionTreeKeys {
    return {
      nodes: this.smstNodes(supplier, sessionId),
      root: this.smstRoot(supplier, sessionId),
      liveRoot: this.smstLiveRoot(supplier, sessionId),
      stats: this.smstStats(supplier, sessionId),
    };
  }
}
