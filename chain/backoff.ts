/** Exponential backoff with jitter, and an abortable sleep. Pure apart from `sleep`. */

export interface BackoffPolicy {
  /** Delay before the first retry. */
  initialDelayMs: number;
  /** Upper bound for any delay. */
  maxDelayMs: number;
  /** Growth per attempt (2 = doubling). */
  multiplier: number;
  /**
   * Fraction of the delay that is randomised, in [0, 1]: 0 gives the exact exponential sequence,
   * 0.5 gives a delay uniformly in [d/2, d].
   */
  jitter: number;
}

/**
 * Delay before retry number `attempt` (0-based): min(max, initial × multiplier^attempt), of which
 * the `jitter` fraction is scaled by `random()` ∈ [0, 1).
 */
export function backoffDelayMs(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const exp = policy.initialDelayMs * Math.pow(policy.multiplier, Math.max(0, attempt));
  const capped = Math.min(policy.maxDelayMs, exp);
  const jitter = Math.min(1, Math.max(0, policy.jitter));
  return Math.round(capped * (1 - jitter) + capped * jitter * random());
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
