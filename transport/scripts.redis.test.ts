import { describe, expect, it } from 'vitest';
import { useRedis } from '../test/helpers/redis.js';
import { defineScript } from './scripts.js';

const r = useRedis();

// KEYS[1] counter; ARGV[1] increment. Returns the new value, or -1 when ARGV[1] is not positive.
const INCR_POSITIVE = `
local n = tonumber(ARGV[1])
if n == nil or n <= 0 then return -1 end
return redis.call('INCRBY', KEYS[1], n)
`;

describe('defineScript', () => {
  it('runs by SHA, loading the script on NOSCRIPT', async () => {
    const script = defineScript<number>('incr_positive', `-- ${r.prefix}\n${INCR_POSITIVE}`, 1);
    const key = `${r.prefix}counter`;
    expect(await r.client.script('EXISTS', script.sha)).toEqual([0]);
    expect(await script.run(r.client, [key], [5])).toBe(5);
    expect(await r.client.script('EXISTS', script.sha)).toEqual([1]);
    expect(await script.run(r.client, [key], [3n])).toBe(8);
    expect(await script.run(r.client, [key], ['0'])).toBe(-1);
  });

  it('refuses a wrong key count and wraps script errors', async () => {
    const script = defineScript('boom', `-- ${r.prefix}\nreturn redis.call('NOPE')`, 0);
    await expect(script.run(r.client, ['x'])).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(script.run(r.client, [])).rejects.toMatchObject({
      code: 'REDIS_SCRIPT_FAILED',
      retryable: true,
    });
  });
});
