import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type BreakerState } from './circuit-breaker.js';

function setup(recoveryTimeoutMs = 1000) {
  let now = 0;
  const transitions: [BreakerState, BreakerState][] = [];
  const b = new CircuitBreaker(
    { failureThreshold: 3, recoveryTimeoutMs },
    () => now,
    (to, from) => transitions.push([from, to]),
  );
  return { b, transitions, advance: (ms: number) => (now += ms) };
}

describe('CircuitBreaker', () => {
  it('opens after threshold consecutive failures; a success in between resets the count', () => {
    const { b, transitions } = setup();
    b.recordFailure();
    b.recordFailure();
    b.recordSuccess();
    b.recordFailure();
    b.recordFailure();
    expect(b.isAvailable()).toBe(true);
    b.recordFailure();
    expect({ state: b.state, available: b.isAvailable(), transitions }).toEqual({
      state: 'open',
      available: false,
      transitions: [['closed', 'open']],
    });
  });

  it('half-opens after the recovery timeout; failure reopens, success closes', () => {
    const { b, transitions, advance } = setup();
    for (let i = 0; i < 3; i++) b.recordFailure();
    advance(999);
    expect(b.isAvailable()).toBe(false);
    advance(1);
    expect(b.isAvailable()).toBe(true);
    b.recordFailure();
    expect(b.isAvailable()).toBe(false);
    advance(1000);
    expect(b.isAvailable()).toBe(true);
    b.recordSuccess();
    expect(transitions).toEqual([
      ['closed', 'open'],
      ['open', 'half_open'],
      ['half_open', 'open'],
      ['open', 'half_open'],
      ['half_open', 'closed'],
    ]);
  });

  it('recovery timeout 0 never half-opens', () => {
    const { b, advance } = setup(0);
    b.trip();
    advance(1e9);
    expect(b.isAvailable()).toBe(false);
    b.recordSuccess();
    expect(b.state).toBe('closed');
  });
});
