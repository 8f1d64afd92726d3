/**
 * Every chain-backed cache of a process, built from one deps object (cmd/ wires it). Also the
 * invalidator that routes by type and the RingSource the ring verifier uses.
 */
import type { ChainQueryClient } from '../chain/index.js';
import { accountPublicKeyEntity } from './entities/account.js';
import { applicationEntity, type Application } from './entities/application.js';
import type { EntityTtlConfig, ServiceAtHeight } from './entities/common.js';
import {
  proofParamsEntity,
  sessionParamsEntity,
  sharedParamsAtHeightEntity,
  sharedParamsEntity,
} from './entities/params.js';
import type { ProofParams, SessionParamsValue, SharedParams } from './entities/params.js';
import {
  computeUnitsPerRelayEntity,
  relayMiningDifficultyEntity,
  type RelayMiningDifficulty,
} from './entities/relay-mining.js';
import { serviceEntity, type Service } from './entities/service.js';
import {
  sessionEntity,
  type Session,
  type SessionArgs,
  type SessionEntityConfig,
} from './entities/session.js';
import { supplierEntity, type Supplier } from './entities/supplier.js';
import { CacheInvalidator } from './invalidation.js';
import { CacheRingSource } from './ring-source.js';
import { TieredCache, type TieredCacheConfig, type TieredCacheDeps } from './tiered-cache.js';

export type ChainCachesClient = Pick<
  ChainQueryClient,
  | 'getApplication'
  | 'getService'
  | 'getSupplier'
  | 'getAccount'
  | 'getSession'
  | 'getSharedParams'
  | 'getSharedParamsAtHeight'
  | 'getProofParams'
  | 'getSessionParams'
  | 'getRelayMiningDifficultyAtHeight'
  | 'getComputeUnitsPerRelayAtHeight'
>;

export interface ChainCachesDeps extends TieredCacheDeps {
  chain: ChainCachesClient;
}

/** Mirrors a `cache:` YAML section (snake_case); every field optional. */
export interface ChainCachesConfig {
  tiers?: TieredCacheConfig;
  application?: EntityTtlConfig;
  service?: EntityTtlConfig;
  supplier?: EntityTtlConfig;
  account?: EntityTtlConfig;
  session?: SessionEntityConfig;
  shared_params_at_height?: EntityTtlConfig;
  shared_params?: EntityTtlConfig;
  proof_params?: EntityTtlConfig;
  session_params?: EntityTtlConfig;
  relay_mining_difficulty?: EntityTtlConfig;
  compute_units_per_relay?: EntityTtlConfig;
}

export class ChainCaches {
  readonly applications: TieredCache<string, Application>;
  readonly services: TieredCache<string, Service>;
  readonly suppliers: TieredCache<string, Supplier>;
  readonly accounts: TieredCache<string, Uint8Array>;
  readonly sessions: TieredCache<SessionArgs, Session>;
  readonly sharedParamsAtHeight: TieredCache<number, SharedParams>;
  readonly sharedParams: TieredCache<null, SharedParams>;
  readonly proofParams: TieredCache<null, ProofParams>;
  readonly sessionParams: TieredCache<null, SessionParamsValue>;
  readonly relayMiningDifficulty: TieredCache<ServiceAtHeight, RelayMiningDifficulty>;
  readonly computeUnitsPerRelay: TieredCache<ServiceAtHeight, bigint>;
  readonly invalidator = new CacheInvalidator();
  readonly ringSource: CacheRingSource;

  constructor(deps: ChainCachesDeps, cfg: ChainCachesConfig = {}) {
    const { chain, ...tierDeps } = deps;
    const t = cfg.tiers;
    this.applications = new TieredCache(tierDeps, applicationEntity(chain, cfg.application), t);
    this.services = new TieredCache(tierDeps, serviceEntity(chain, cfg.service), t);
    this.suppliers = new TieredCache(tierDeps, supplierEntity(chain, cfg.supplier), t);
    this.accounts = new TieredCache(tierDeps, accountPublicKeyEntity(chain, cfg.account), t);
    this.sessions = new TieredCache(tierDeps, sessionEntity(chain, cfg.session), t);
    this.sharedParamsAtHeight = new TieredCache(
      tierDeps,
      sharedParamsAtHeightEntity(chain, cfg.shared_params_at_height),
      t,
    );
    this.sharedParams = new TieredCache(tierDeps, sharedParamsEntity(chain, cfg.shared_params), t);
    this.proofParams = new TieredCache(tierDeps, proofParamsEntity(chain, cfg.proof_params), t);
    this.sessionParams = new TieredCache(tierDeps, sessionParamsEntity(chain, cfg.session_params), t);
    this.relayMiningDifficulty = new TieredCache(
      tierDeps,
      relayMiningDifficultyEntity(chain, cfg.relay_mining_difficulty),
      t,
    );
    this.computeUnitsPerRelay = new TieredCache(
      tierDeps,
      computeUnitsPerRelayEntity(chain, cfg.compute_units_per_relay),
      t,
    );
    for (const c of this.all()) this.invalidator.register(c);
    this.ringSource = new CacheRingSource({ applications: this.applications, accounts: this.accounts });
  }

  all(): TieredCache<never, unknown>[] {
    return [
      this.applications,
      this.services,
      this.suppliers,
      this.accounts,
      this.sessions,
      this.sharedParamsAtHeight,
      this.sharedParams,
      this.proofParams,
      this.sessionParams,
      this.relayMiningDifficulty,
      this.computeUnitsPerRelay,
    ] as unknown as TieredCache<never, unknown>[];
  }

  /** Subscribes every cache to its invalidation channel. */
  async start(): Promise<void> {
    await Promise.all(this.all().map((c) => c.start()));
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((c) => c.close()));
  }
}
