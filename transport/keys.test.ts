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
