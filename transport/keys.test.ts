import { describe, expect, it } from 'vitest';
import { KeyBuilder } from './index.js';

const SUPPLIER = 'pokt1abc';
const SESSION = 'session123';

describe('KeyBuilder', () => {
  it("emits upstream's session-trie keys by default", () => {
    expect(new KeyBuilder().sessionTree(SUPPLIER, SESSION)).toEqual({
      nodes: 'ha:smst:pokt1abc:session123:nodes',
      root: 'ha:smst:pokt1abc:session123:root',
      liveRoot: 'ha:smst:pokt1abc:session123:live_root',
      stats: 'ha:smst:pokt1abc:session123:stats',
    });
    expect(new KeyBuilder().smstNodesPattern()).toBe('ha:smst:*:*:nodes');
  });

  it('applies the base prefix and keeps every other namespace default', () => {
    const keys = new KeyBuilder({ namespace: { base_prefix: 'prod', cache_prefix: '' } });
    expect(keys.smstLiveRoot(SUPPLIER, SESSION)).toBe('prod:smst:pokt1abc:session123:live_root');
    expect(keys.namespace).toEqual({
      base_prefix: 'prod',
      cache_prefix: 'cache',
      events_prefix: 'events',
      streams_prefix: 'relays',
      miner_prefix: 'miner',
      supplier_prefix: 'supplier',
      meter_prefix: 'meter',
      params_prefix: 'params',
      consumer_group_prefix: 'miners',
    });
  });

  it('wraps the supplier in a cluster hash tag when asked', () => {
    const keys = new KeyBuilder({ cluster_hash_tags: true });
    expect(keys.sessionTree(SUPPLIER, SESSION)).toEqual({
      nodes: 'ha:smst:{pokt1abc}:session123:nodes',
      root: 'ha:smst:{pokt1abc}:session123:root',
      liveRoot: 'ha:smst:{pokt1abc}:session123:live_root',
      stats: 'ha:smst:{pokt1abc}:session123:stats',
    });
  });

  it('refuses key parts that would break the layout', () => {
    const keys = new KeyBuilder();
    for (const [supplier, session] of [
      ['', SESSION],
      ['pokt1{x}', SESSION],
      [SUPPLIER, ''],
      [SUPPLIER, 'a:b'],
      [SUPPLIER, 'a b'],
    ] as const) {
      expect(() => keys.smstNodes(supplier, session)).toThrow(
        expect.objectContaining({ code: 'INVALID_INPUT' }),
      );
    }
  });
});

describe('KeyBuilder: full layout (cache-and-redis.md §4.1, §5)', () => {
  const SERVICE = 'anvil';
  const APP = 'pokt1app';

  function layout(keys: KeyBuilder): Record<string, string> {
    return {
      cachePrefix: keys.cachePrefix(),
      application: keys.applicationKey(APP),
      applicationLock: keys.applicationLockKey(APP),
      service: keys.serviceKey(SERVICE),
      serviceLock: keys.serviceLockKey(SERVICE),
      account: keys.accountKey(APP),
      accountLock: keys.accountLockKey(APP),
      supplierCache: keys.supplierCacheKey(SUPPLIER),
      supplierCacheLock: keys.supplierCacheLockKey(SUPPLIER),
      applicationPattern: keys.cachePattern('application'),
      knownApps: keys.knownSet('applications'),
      knownServices: keys.knownSet('services'),
      knownSuppliers: keys.knownSet('suppliers'),
      session: keys.sessionKey(APP, SERVICE, 42),
      sessionLock: keys.sessionLockKey(APP, SERVICE, 42),
      sessionValidation: keys.sessionValidationKey(APP, SERVICE, 42),
      sessionRewardable: keys.sessionRewardableKey(SESSION),
      sharedAtHeight: keys.sharedParamsAtHeightKey(42),
      sharedAtHeightLock: keys.sharedParamsAtHeightLockKey(42),
      shared: keys.sharedParamsKey(),
      sharedLock: keys.sharedParamsLockKey(),
      proof: keys.proofParamsKey(),
      proofLock: keys.proofParamsLockKey(),
      supplierParams: keys.supplierParamsKey(),
      supplierParamsLock: keys.supplierParamsLockKey(),
      sessionParams: keys.sessionParamsKey(),
      difficulty: keys.relayMiningDifficultyKey(SERVICE, 42),
      difficultyLock: keys.relayMiningDifficultyLockKey(SERVICE, 42),
      cupr: keys.computeUnitsPerRelayKey(SERVICE, 42),
      cuprLock: keys.computeUnitsPerRelayLockKey(SERVICE, 42),
      factorDefault: keys.serviceFactorDefaultKey(),
      factorService: keys.serviceFactorServiceKey(SERVICE),
      eventsCachePrefix: keys.eventsCachePrefix(),
      invalidateApp: keys.invalidationChannel('application'),
      invalidateSupplier: keys.invalidationChannel('supplier'),
      invalidateShared: keys.invalidationChannel('shared_params'),
      invalidateFactor: keys.invalidationChannel('service_factor'),
      invalidateParamsHeight: keys.sharedParamsHeightInvalidateChannel(),
      invalidateSupplierParams: keys.supplierParamsInvalidateChannel(),
      rewardableChannel: keys.sessionRewardableChannel(),
      blocks: keys.blockEventsChannel(),
      supplierUpdate: keys.supplierUpdateChannel(),
      meterCleanup: keys.meterCleanupChannel(),
      streamPrefix: keys.streamPrefix(),
      stream: keys.relayStream(SUPPLIER),
      streamPattern: keys.relayStreamPattern(),
      group: keys.consumerGroup(),
      meterMeta: keys.meterMeta(SESSION, SUPPLIER),
      meterConsumed: keys.meterConsumed(SESSION, SUPPLIER),
      meterActive: keys.meterActiveSessions(),
      meterMember: keys.meterMember(SESSION, SUPPLIER),
      legacyMeter: keys.legacyMeterSessionKey(SESSION),
      appStake: keys.appStakeKey(APP),
      serviceCu: keys.serviceComputeUnitsKey(SERVICE),
      simReplay: keys.simulationReplayKey('deadbeef'),
      supplierPrefix: keys.supplierKeyPrefix(),
      supplierState: keys.supplierState(SUPPLIER),
      supplierStatePattern: keys.supplierStatePattern(),
      registry: keys.suppliersRegistry(SUPPLIER),
      registryIndex: keys.suppliersRegistryIndex(),
      globalLeader: keys.globalLeader(),
      minerLeader: keys.minerLeader(SUPPLIER),
      minerClaim: keys.minerClaim(SUPPLIER),
      minerInstance: keys.minerInstance('miner-host-1'),
      minerActive: keys.minerActiveSet(),
      minerSession: keys.minerSession(SUPPLIER, SESSION),
      minerSessionsIndex: keys.minerSessionsIndex(SUPPLIER),
      minerSessionState: keys.minerSessionStateIndex(SUPPLIER, 'proved'),
      dedup: keys.minerDedupSession(SESSION),
      rebroadcast: keys.rebroadcast('claim', SUPPLIER, 100),
      rebroadcastIndex: keys.rebroadcastIndex('proof'),
      txTrack: keys.txTrack(SUPPLIER, 100, SESSION),
      txTrackPattern: keys.txTrackPattern(SUPPLIER),
      txTrackAll: keys.txTrackAllPattern(),
      legacyShared: keys.legacyParamsKey('shared'),
      legacyPattern: keys.legacyParamsPattern(),
      all: keys.allKeysPattern(),
      smstSessionNodes: keys.smstSessionNodesPattern(SESSION),
      smstSessionAll: keys.smstSessionAllPattern(SUPPLIER, SESSION),
    };
  }

  it("emits upstream's exact strings by default", () => {
    expect(layout(new KeyBuilder())).toEqual({
      cachePrefix: 'ha:cache',
      application: 'ha:cache:application:pokt1app',
      applicationLock: 'ha:cache:lock:application:pokt1app',
      service: 'ha:cache:service:anvil',
      serviceLock: 'ha:cache:lock:service:anvil',
      account: 'ha:cache:account:pokt1app',
      accountLock: 'ha:cache:lock:account:pokt1app',
      supplierCache: 'ha:cache:supplier:pokt1abc',
      supplierCacheLock: 'ha:cache:lock:supplier:pokt1abc',
      applicationPattern: 'ha:cache:application:*',
      knownApps: 'ha:cache:known:applications',
      knownServices: 'ha:cache:known:services',
      knownSuppliers: 'ha:cache:known:suppliers',
      session: 'ha:cache:session:pokt1app:anvil:42',
      sessionLock: 'ha:cache:lock:session:pokt1app:anvil:42',
      sessionValidation: 'ha:cache:session:validation:pokt1app:anvil:42',
      sessionRewardable: 'ha:cache:session:rewardable:session123',
      sharedAtHeight: 'ha:cache:params:shared:42',
      sharedAtHeightLock: 'ha:cache:lock:params:shared:42',
      shared: 'ha:cache:shared_params',
      sharedLock: 'ha:cache:lock:shared_params',
      proof: 'ha:cache:proof_params',
      proofLock: 'ha:cache:lock:proof_params',
      supplierParams: 'ha:cache:params:supplier',
      supplierParamsLock: 'ha:cache:lock:params:supplier',
      sessionParams: 'ha:cache:session_params',
      difficulty: 'ha:cache:relay_mining_difficulty:anvil:42',
      difficultyLock: 'ha:cache:lock:relay_mining_difficulty:anvil:42',
      cupr: 'ha:cache:compute_units_per_relay:anvil:42',
      cuprLock: 'ha:cache:lock:compute_units_per_relay:anvil:42',
      factorDefault: 'ha:service_factor:default',
      factorService: 'ha:service_factor:service:anvil',
      eventsCachePrefix: 'ha:events:cache',
      invalidateApp: 'ha:events:cache:application:invalidate',
      invalidateSupplier: 'ha:events:cache:supplier:invalidate',
      invalidateShared: 'ha:events:cache:shared_params:invalidate',
      invalidateFactor: 'ha:events:cache:service_factor:invalidate',
      invalidateParamsHeight: 'ha:events:invalidate:params',
      invalidateSupplierParams: 'ha:events:cache:invalidate:supplier_params',
      rewardableChannel: 'ha:events:session:rewardable',
      blocks: 'ha:events:blocks',
      supplierUpdate: 'ha:events:supplier_update',
      meterCleanup: 'ha:meter:cleanup',
      streamPrefix: 'ha:relays',
      stream: 'ha:relays:pokt1abc',
      streamPattern: 'ha:relays:*',
      group: 'ha-miners',
      meterMeta: 'ha:meter:session123:pokt1abc:meta',
      meterConsumed: 'ha:meter:session123:pokt1abc:consumed',
      meterActive: 'ha:meter:active_sessions',
      meterMember: 'session123|pokt1abc',
      legacyMeter: 'ha:meter:session123',
      appStake: 'ha:app_stake:pokt1app',
      serviceCu: 'ha:service:anvil:compute_units',
      simReplay: 'ha:sim:replay:deadbeef',
      supplierPrefix: 'ha:supplier',
      supplierState: 'ha:supplier:pokt1abc',
      supplierStatePattern: 'ha:supplier:*',
      registry: 'ha:suppliers:pokt1abc',
      registryIndex: 'ha:suppliers:index',
      globalLeader: 'ha:miner:global_leader',
      minerLeader: 'ha:miner:leader:pokt1abc',
      minerClaim: 'ha:miner:claim:pokt1abc',
      minerInstance: 'ha:miner:instance:miner-host-1',
      minerActive: 'ha:miner:active',
      minerSession: 'ha:miner:sessions:pokt1abc:session123',
      minerSessionsIndex: 'ha:miner:sessions:pokt1abc:index',
      minerSessionState: 'ha:miner:sessions:pokt1abc:state:proved',
      dedup: 'ha:miner:dedup:session:session123',
      rebroadcast: 'ha:miner:rebroadcast:{claim}:pokt1abc:100',
      rebroadcastIndex: 'ha:miner:rebroadcast:{proof}:index',
      txTrack: 'ha:tx:track:pokt1abc:100:session123',
      txTrackPattern: 'ha:tx:track:pokt1abc:*',
      txTrackAll: 'ha:tx:track:*',
      legacyShared: 'ha:params:shared',
      legacyPattern: 'ha:params:*',
      all: 'ha:*',
      smstSessionNodes: 'ha:smst:*:session123:nodes',
      smstSessionAll: 'ha:smst:pokt1abc:session123:*',
    });
  });

  it('wraps every supplier-scoped key in a hash tag with cluster_hash_tags, and nothing else', () => {
    const plain = layout(new KeyBuilder());
    const tagged = layout(new KeyBuilder({ cluster_hash_tags: true }));
    const changed = Object.fromEntries(
      Object.entries(tagged).filter(([name, value]) => plain[name] !== value),
    );
    expect(changed).toEqual({
      stream: 'ha:relays:{pokt1abc}',
      meterMeta: 'ha:meter:session123:{pokt1abc}:meta',
      meterConsumed: 'ha:meter:session123:{pokt1abc}:consumed',
      supplierState: 'ha:supplier:{pokt1abc}',
      registry: 'ha:suppliers:{pokt1abc}',
      minerLeader: 'ha:miner:leader:{pokt1abc}',
      minerClaim: 'ha:miner:claim:{pokt1abc}',
      minerSession: 'ha:miner:sessions:{pokt1abc}:session123',
      minerSessionsIndex: 'ha:miner:sessions:{pokt1abc}:index',
      minerSessionState: 'ha:miner:sessions:{pokt1abc}:state:proved',
      txTrack: 'ha:tx:track:{pokt1abc}:100:session123',
      txTrackPattern: 'ha:tx:track:{pokt1abc}:*',
      smstSessionAll: 'ha:smst:{pokt1abc}:session123:*',
    });
  });

  it('applies every namespace field', () => {
    const keys = new KeyBuilder({
      namespace: {
        base_prefix: 'p',
        cache_prefix: 'c',
        events_prefix: 'e',
        streams_prefix: 's',
        miner_prefix: 'm',
        supplier_prefix: 'sp',
        meter_prefix: 'mt',
        params_prefix: 'pa',
        consumer_group_prefix: 'g',
      },
    });
    expect([
      keys.applicationKey(APP),
      keys.invalidationChannel('account'),
      keys.supplierParamsInvalidateChannel(),
      keys.blockEventsChannel(),
      keys.relayStream(SUPPLIER),
      keys.consumerGroup(),
      keys.meterMeta(SESSION, SUPPLIER),
      keys.meterCleanupChannel(),
      keys.supplierState(SUPPLIER),
      keys.globalLeader(),
      keys.legacyParamsKey('session'),
    ]).toEqual([
      'p:c:application:pokt1app',
      'p:e:cache:account:invalidate',
      'p:e:c:invalidate:supplier_params',
      'p:e:blocks',
      'p:s:pokt1abc',
      'p-g',
      'p:mt:session123:pokt1abc:meta',
      'p:mt:cleanup',
      'p:sp:pokt1abc',
      'p:m:global_leader',
      'p:pa:session',
    ]);
  });

  it('reads the operator back from a registry key', () => {
    expect(new KeyBuilder().supplierFromStateKey('ha:supplier:pokt1abc')).toBe('pokt1abc');
    expect(new KeyBuilder({ cluster_hash_tags: true }).supplierFromStateKey('ha:supplier:{pokt1abc}')).toBe(
      'pokt1abc',
    );
    expect(new KeyBuilder().supplierFromStateKey('ha:suppliers:index')).toBeUndefined();
    expect(new KeyBuilder().supplierFromStateKey('ha:supplier:a:b')).toBeUndefined();
  });

  it('refuses ids and heights that would break the layout', () => {
    const keys = new KeyBuilder();
    const bad: (() => string)[] = [
      () => keys.applicationKey(''),
      () => keys.applicationKey('a:b'),
      () => keys.serviceKey('svc*'),
      () => keys.sessionKey(APP, SERVICE, -1),
      () => keys.sharedParamsAtHeightKey(1.5),
      () => keys.relayStream('a b'),
      () => keys.minerInstance('x{y}'),
    ];
    for (const f of bad) {
      expect(f).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    }
  });
});
