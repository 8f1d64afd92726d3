/**
 * The cache-backed RingSource (rings/ring.ts): applications and account public keys come from
 * their tiered caches, so ring resolution costs an L1 lookup on the hot path. A failed lookup
 * throws CacheUnavailableError (retryable when the chain failure was).
 */
import type { RingApplication, RingSource } from '../rings/index.js';
import type { Application } from './entities/application.js';
import type { TieredCache } from './tiered-cache.js';

export interface CacheRingSourceDeps {
  applications: Pick<TieredCache<string, Application>, 'get'>;
  accounts: Pick<TieredCache<string, Uint8Array>, 'get'>;
}

export class CacheRingSource implements RingSource {
  constructor(private readonly deps: CacheRingSourceDeps) {}

  async getApplication(appAddress: string): Promise<RingApplication | undefined> {
    return this.deps.applications.get(appAddress);
  }

  async getAccountPublicKey(address: string): Promise<Uint8Array | undefined> {
    return this.deps.accounts.get(address);
  }
}
