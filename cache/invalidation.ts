/**
 * Cross-replica invalidation (cache-and-redis.md §4.1). Every cache instance subscribes to its
 * type's channel. Invalidating one key: the publisher deletes the L2 entry, then publishes; every
 * instance (the publisher too) drops its L1 copy and eagerly re-reads L2 into L1 when present.
 * Invalidating a whole type: L1 maps are cleared everywhere, L2 entries of the type are deleted by
 * the publisher.
 *
 * Wire formats are upstream's: JSON `{"<field>": "<id>"}` or `{}` = all, on
 * `{base}:events:cache:{type}:invalidate`; the height-keyed shared params use
 * `{base}:events:invalidate:params` with a decimal height (this implementation adds `*` = all).
 */
import { z } from 'zod';
import type { Channel, InvalidationType, KeyBuilder } from '../transport/index.js';

/** One invalidation: a single entry (`id`) or every entry of the type (`id` undefined). */
export interface InvalidationMessage {
  readonly id: string | undefined;
}

/** How one entity type's invalidations look on the wire. */
export interface InvalidationFormat {
  channel(keys: KeyBuilder): Channel<InvalidationMessage>;
}

/** `{"<field>": "<id>"}` / `{}` on `{base}:events:cache:{type}:invalidate`. */
export function jsonInvalidation(type: InvalidationType, field: string): InvalidationFormat {
  const schema = z.record(z.string(), z.unknown());
  return {
    channel(keys) {
      return {
        name: keys.invalidationChannel(type),
        encode: (msg) => JSON.stringify(msg.id === undefined ? {} : { [field]: msg.id }),
        decode: (payload) => {
          const obj = schema.parse(JSON.parse(payload.toString('utf8')));
          const id = obj[field];
          if (id === undefined || id === '') return { id: undefined };
          if (typeof id !== 'string') throw new TypeError(`invalidation field ${field} is not a string`);
          return { id };
        },
      };
    },
  };
}

/** Decimal height on `{base}:events:invalidate:params`; `*` = all heights. */
export function heightInvalidation(): InvalidationFormat {
  return {
    channel(keys) {
      return {
        name: keys.sharedParamsHeightInvalidateChannel(),
        encode: (msg) => msg.id ?? '*',
        decode: (payload) => {
          const text = payload.toString('utf8').trim();
          if (text === '*' || text === '') return { id: undefined };
          if (!/^\d+$/.test(text))
            throw new TypeError(`height invalidation payload is not a height: ${text}`);
          return { id: text };
        },
      };
    },
  };
}

/** Anything that can be invalidated by ID or as a whole (a TieredCache). */
export interface Invalidatable {
  readonly type: InvalidationType;
  invalidateId(id: string): Promise<void>;
  invalidateAll(): Promise<void>;
}

/**
 * Invalidation by type name (operator CLI, leader miner): routes to the registered cache of that
 * type, which deletes L2 and publishes.
 */
export class CacheInvalidator {
  private readonly caches = new Map<InvalidationType, Invalidatable>();

  register(cache: Invalidatable): void {
    this.caches.set(cache.type, cache);
  }

  types(): InvalidationType[] {
    return [...this.caches.keys()];
  }

  /** Returns false when no cache of that type is registered (an expected miss, not a fault). */
  async invalidate(type: InvalidationType, id?: string): Promise<boolean> {
    const cache = this.caches.get(type);
    if (cache === undefined) return false;
    if (id === undefined) await cache.invalidateAll();
    else await cache.invalidateId(id);
    return true;
  }
}
