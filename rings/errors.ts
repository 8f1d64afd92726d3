/**
 * Faults raised by rings/. Rejected signatures are not faults: they are result values
 * (`{ ok: false, code, reason }`, see blsag.ts).
 */
import { RelayMinerError, isRetryable } from '../core/errors.js';

/** `native` was asked for explicitly and the libsecp256k1 addon cannot be loaded on this host. */
export class NativeBackendUnavailableError extends RelayMinerError {
  constructor(reason: string) {
    super(
      'RING_NATIVE_UNAVAILABLE',
      `native libsecp256k1 backend unavailable (${reason}); install the secp256k1 prebuild for this platform or choose the noble backend`,
    );
  }
}

/**
 * Signing could not complete. Upstream panics in the same situations (a challenge hash that
 * overflows N after the left-align step, no hash-to-curve point within 128 tries, a ring that
 * does not close), each with probability about 2^-128 for honest input.
 */
export class RingSignError extends RelayMinerError {
  constructor(why: string) {
    super('RING_SIGN_FAILED', `ring signature not produced: ${why}`);
  }
}

/** The RingSource (application or account lookup) failed; retryable when its cause is. */
export class RingSourceError extends RelayMinerError {
  constructor(what: string, cause: unknown) {
    super('RING_SOURCE_FAILED', `ring lookup failed: ${what}`, { cause, retryable: isRetryable(cause) });
  }
}
