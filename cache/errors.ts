import { RelayMinerError, isRetryable } from '../core/index.js';

/** Every tier failed: nothing in L1 or L2 and the chain query (L3) threw. */
export class CacheUnavailableError extends RelayMinerError {
  constructor(type: string, id: string, opts: { cause?: unknown } = {}) {
    super('CACHE_UNAVAILABLE', `cache ${type} ${id}: not in L1/L2 and the chain query failed`, {
      cause: opts.cause,
      retryable: opts.cause === undefined ? true : isRetryable(opts.cause),
    });
  }
}

/** A cache operation was used before `start()` or after `close()`. */
export class CacheStateError extends RelayMinerError {
  constructor(what: string) {
    super('CACHE_STATE', what);
  }
}
