import { describe, expect, it } from 'vitest';
import { useRedis } from '../../test/helpers/redis.js';
import { LuaScript } from '../../transport/index.js';
import { METER_REVERT } from './scripts.js';

const r = useRedis();

function key(): string {
  return r.keys().meterConsumed('sess1', 'pokt1supplier');
}

describe('meter-revert.lua', () => {
  it('gives the cost back and keeps the TTL', async () => {
    await r.client.set(key(), '10', 'EX', 300);
    expect(await METER_REVERT.run(r.client, [key()], ['4'])).toEqual([1, 6]);
    expect(await r.client.ttl(key())).toBeGreaterThan(290);
  });

  it('never goes below zero', async () => {
    await r.client.set(key(), '3', 'EX', 300);
    expect(await METER_REVERT.run(r.client, [key()], ['5'])).toEqual([1, 0]);
  });

  it('reports a missing (expired or cleaned) counter with -3 and does not create it', async () => {
    expect(await METER_REVERT.run(r.client, [key()], ['5'])).toEqual([-3, 0]);
    expect(await r.client.exists(key())).toBe(0);
  });

  it('refuses bad arguments with -2', async () => {
    await r.client.set(key(), '3');
    expect(await METER_REVERT.run(r.client, [key()], ['-1'])).toEqual([-2, 0]);
    expect(await METER_REVERT.run(r.client, [key()], ['a'])).toEqual([-2, 0]);
    expect(await r.client.get(key())).toBe('3');
  });

  it('sends the source when the server does not know the SHA (NOSCRIPT → EVAL)', async () => {
    await r.client.set(key(), '3');
    // A never-loaded variant of the same script (unique comment → unique SHA); no global SCRIPT FLUSH.
    const fresh = new LuaScript('fresh', `${METER_REVERT.source}\n-- ${r.prefix}`, 1);
    expect(await r.client.script('EXISTS', fresh.sha)).toEqual([0]);
    expect(await fresh.run(r.client, [key()], ['1'])).toEqual([1, 2]);
  });
});
