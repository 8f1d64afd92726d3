import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatTable, keyBuilders, resolveTarget, targetFromConfigText, toJson } from './context.js';
import { leaderHealth } from './leader.js';

describe('redis CLI target resolution', () => {
  it('reads redis.url, the namespace and the meter prefix of the example relayer config', () => {
    const t = targetFromConfigText(readFileSync('config.relayer.example.yaml', 'utf8'), 'relayer');
    expect({ url: t.url, base: t.namespace.base_prefix, meter: t.meterKeyPrefix }).toEqual({
      url: 'redis://localhost:6379',
      base: 'ha',
      meter: 'ha',
    });
  });

  it('reads the leader TTL of the example miner config', () => {
    const t = targetFromConfigText(readFileSync('config.miner.example.yaml', 'utf8'), 'miner');
    expect(t.leaderTtlSeconds).toBe(4);
  });

  it('flags win over the config file, which wins over the defaults', () => {
    const dir = mkdtempSync(join(tmpdir(), 'redis-cli-'));
    try {
      const file = join(dir, 'miner.yaml');
      writeFileSync(
        file,
        'redis:\n  url: redis://10.0.0.1:6380/2\n  namespace:\n    base_prefix: prod\n    miner_prefix: m\n',
      );
      expect(resolveTarget({})).toEqual({
        url: 'redis://127.0.0.1:6379',
        namespace: {},
        clusterHashTags: false,
      });
      expect(resolveTarget({ config: file })).toEqual({
        url: 'redis://10.0.0.1:6380/2',
        namespace: { base_prefix: 'prod', miner_prefix: 'm' },
        clusterHashTags: false,
      });
      const t = resolveTarget({
        config: file,
        url: 'redis://x:1',
        minerPrefix: 'mm',
        meterKeyPrefix: 'meter0',
      });
      expect(t).toEqual({
        url: 'redis://x:1',
        namespace: { base_prefix: 'prod', miner_prefix: 'mm' },
        meterKeyPrefix: 'meter0',
        clusterHashTags: false,
      });
      const { keys, meterKeys } = keyBuilders(t);
      expect([keys.globalLeader(), meterKeys.meterActiveSessions()]).toEqual([
        'prod:mm:global_leader',
        'meter0:meter:active_sessions',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a malformed --leader-ttl', () => {
    expect(() => resolveTarget({ leaderTtl: 'x' })).toThrow(
      '--leader-ttl: expected a positive integer, got x',
    );
  });
});

describe('redis CLI output', () => {
  it('pads fixed-width columns to the widest cell', () => {
    expect(
      formatTable(
        ['A', 'LONGER'],
        [
          ['xyz', 1n],
          [undefined, new Uint8Array([1, 255])],
        ],
      ),
    ).toBe('A    LONGER\n---  ------\nxyz  1\n-    01ff\n');
  });

  it('writes bigints as decimal strings and bytes as hex in JSON', () => {
    expect(JSON.parse(toJson({ a: 2n ** 64n, b: new Uint8Array([0xab]) }))).toEqual({
      a: '18446744073709551616',
      b: 'ab',
    });
  });

  it('judges the leader TTL against the configured one (upstream: 20 s / 10 s of 30 s)', () => {
    expect([30, 21, 20, 11, 10, 1, 0, -2].map((t) => leaderHealth(t, 30))).toEqual([
      'Healthy (recently renewed)',
      'Healthy (recently renewed)',
      'OK',
      'OK',
      'WARNING - TTL low',
      'WARNING - TTL low',
      'CRITICAL',
      'CRITICAL',
    ]);
  });
});
