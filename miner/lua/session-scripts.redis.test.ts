import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../core/index.js';
import { useRedis } from '../../test/helpers/redis.js';
import {
  SESSION_ADD_RELAYS,
  SESSION_DEDUP_ADD,
  SESSION_ENSURE,
  SESSION_UPDATE,
  sessionTransitionScript,
} from './session-scripts.js';

describe('session Lua scripts', () => {
  const r = useRedis();
  const k = (name: string): string => `${r.prefix}${name}`;

  it('session-ensure creates once, indexes the id and sets the TTL on all three keys', async () => {
    const keys = [k('h'), k('index'), k('active')];
    expect(await SESSION_ENSURE.run(r.client, keys, [60, 'S', 'state', 'active', 'relay_count', '0'])).toBe(
      1,
    );
    expect(await SESSION_ENSURE.run(r.client, keys, [60, 'S', 'state', 'claimed'])).toBe(0);
    expect(await r.client.hgetall(k('h'))).toEqual({ state: 'active', relay_count: '0' });
    expect(await r.client.smembers(k('index'))).toEqual(['S']);
    expect(await r.client.smembers(k('active'))).toEqual(['S']);
    for (const key of keys) expect(await r.client.ttl(key)).toBeGreaterThan(55);
  });

  it('session-ensure with TTL 0 leaves the keys persistent', async () => {
    await SESSION_ENSURE.run(r.client, [k('h'), k('index'), k('active')], [0, 'S', 'state', 'active']);
    expect(await r.client.ttl(k('h'))).toBe(-1);
  });

  it('session-add-relays counts on an existing hash and refuses a missing one', async () => {
    expect(await SESSION_ADD_RELAYS.run(r.client, [k('h')], [1, 5, 'T', 60])).toBe(0);
    expect(await r.client.exists(k('h'))).toBe(0);
    await r.client.hset(k('h'), 'relay_count', '2', 'total_compute_units', '10');
    expect(await SESSION_ADD_RELAYS.run(r.client, [k('h')], [3, 30, 'T1', 60])).toBe(1);
    expect(await r.client.hgetall(k('h'))).toEqual({
      relay_count: '5',
      total_compute_units: '40',
      last_updated_at: 'T1',
    });
    expect(await r.client.ttl(k('h'))).toBeGreaterThan(55);
  });

  it('session-transition moves between state sets only from an accepted state', async () => {
    const script = sessionTransitionScript(2);
    const keys = [k('h'), k('index'), k('s:claimed'), k('s:active'), k('s:claiming')];
    expect(await script.run(r.client, keys, ['claimed', 'S', 60, 2, 'active', 'claiming', 'x', '1'])).toBe(0);
    expect(await r.client.exists(k('h'))).toBe(0);
    await r.client.hset(k('h'), 'state', 'proving');
    await r.client.sadd(k('s:proving'), 'S');
    expect(await script.run(r.client, keys, ['claimed', 'S', 60, 2, 'active', 'claiming'])).toBe(0);
    expect(await r.client.hgetall(k('h'))).toEqual({ state: 'proving' });
    await r.client.hset(k('h'), 'state', 'claiming');
    await r.client.sadd(k('s:claiming'), 'S');
    expect(await script.run(r.client, keys, ['claimed', 'S', 60, 2, 'active', 'claiming', 'tx', 'AB'])).toBe(
      1,
    );
    expect(await r.client.hgetall(k('h'))).toEqual({ state: 'claimed', tx: 'AB' });
    expect(await r.client.smembers(k('s:claiming'))).toEqual([]);
    expect(await r.client.smembers(k('s:claimed'))).toEqual(['S']);
    expect(await r.client.smembers(k('index'))).toEqual(['S']);
  });

  it('the transition wrapper is one script per key count and refuses a wrong key count', async () => {
    expect(sessionTransitionScript(3)).toBe(sessionTransitionScript(3));
    expect(sessionTransitionScript(3).sha).toBe(sessionTransitionScript(1).sha);
    await expect(sessionTransitionScript(1).run(r.client, [k('h')], [])).rejects.toBeInstanceOf(
      InvalidInputError,
    );
  });

  it('session-update writes fields of an existing hash only', async () => {
    expect(await SESSION_UPDATE.run(r.client, [k('h')], [60, 'claim_tx_hash', 'X'])).toBe(0);
    expect(await r.client.exists(k('h'))).toBe(0);
    await r.client.hset(k('h'), 'state', 'claimed');
    expect(await SESSION_UPDATE.run(r.client, [k('h')], [0, 'claim_tx_hash', 'X'])).toBe(1);
    expect(await r.client.hgetall(k('h'))).toEqual({ state: 'claimed', claim_tx_hash: 'X' });
    expect(await r.client.ttl(k('h'))).toBe(-1);
  });

  it('session-dedup-add flags each hash as new or present and refreshes the TTL', async () => {
    const a = Buffer.alloc(32, 1);
    const b = Buffer.alloc(32, 2);
    expect(await SESSION_DEDUP_ADD.run(r.client, [k('d')], [30, a, b, a])).toEqual([1, 1, 0]);
    expect(await SESSION_DEDUP_ADD.run(r.client, [k('d')], [90, b, Buffer.alloc(32, 3)])).toEqual([0, 1]);
    expect(await r.client.scard(k('d'))).toBe(3);
    expect(await r.client.ttl(k('d'))).toBeGreaterThan(85);
    expect(await SESSION_DEDUP_ADD.run(r.client, [k('empty')], [30])).toEqual([]);
    expect(await r.client.exists(k('empty'))).toBe(0);
  });
});
