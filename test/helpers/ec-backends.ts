/**
 * Both EC backends, for conformance tests that must pass on each. The native one is required:
 * a machine where the libsecp256k1 addon does not load fails here instead of silently testing
 * only the reference implementation.
 */
import { selectBackend, type EcBackend } from '../../rings/index.js';

export const EC_BACKENDS: readonly EcBackend[] = [selectBackend('noble'), selectBackend('native')];
