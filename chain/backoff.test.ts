import { describe, expect, it } from 'vitest';
import { backoffDelayMs, sleep } from './backoff.js';

describe('backoffDelayMs', () => {
  it('doubles from 1 s and caps at 15 s without jitter (block source reconnect)', () => {
    const policy = { initialDelayMs: 1000, maxDelayMs: 15_000, multiplier: 2, jitter: 0 };
    expect([0, 1, 2, 3, 4, 5, 10].map((a) => backoffDelayMs(a, policy, () => 0.99))).toEqual([
      1000, 2000, 4000, 8000, 15_000, 15_000, 15_000,
    ]);
  });

  it('randomises only the jitter fraction of the delay', () => {
    const policy = { initialDelayMs: 200, maxDelayMs: 5000, multiplier: 2, jitter: 0.5 };
    expect([0, 0.5, 0.999].map((r) => backoffDelayMs(2, policy, () => r))).toEqual([400, 600, 800]);
    expect(backoffDelayMs(20, policy, () => 0)).toBe(2500);
  });

  it('treats a negative attempt as the first one', () => {
    expect(backoffDelayMs(-3, { initialDelayMs: 10, maxDelayMs: 100, multiplier: 3, jitter: 0 })).toBe(10);
  });
});

describe('sleep', () => {
  it('rejects with the abort reason', async () => {
    const ac = new AbortController();
    const p = sleep(10_000, ac.signal);
    const reason = new Error('stop');
    ac.abort(reason);
    await expect(p).rejects.toBe(reason);
  });

  it('resolves after the delay', async () => {
    await expect(sleep(5)).resolves.toBeUndefined();
  });
});
