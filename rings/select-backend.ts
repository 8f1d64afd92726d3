/**
 * Chooses the curve backend by name. `auto` takes native libsecp256k1 when its addon loads and
 * the noble reference otherwise; the returned backend's `name` says which one is in use.
 */
import { InvalidInputError } from '../core/errors.js';
import type { BackendName, EcBackend } from './ec-backend.js';
import { NativeBackendUnavailableError } from './errors.js';
import { loadNativeBackend, nativeBindingInfo } from './native-backend.js';
import { nobleBackend } from './noble-backend.js';

export type BackendChoice = BackendName | 'auto';

export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'native', 'noble'];

export function isBackendChoice(v: unknown): v is BackendChoice {
  return typeof v === 'string' && (BACKEND_CHOICES as readonly string[]).includes(v);
}

/** Throws NativeBackendUnavailableError when `native` is asked for and the addon cannot load. */
export function selectBackend(choice: BackendChoice): EcBackend {
  if (choice === 'noble') return nobleBackend;
  if (choice !== 'native' && choice !== 'auto') {
    throw new InvalidInputError(
      'ring backend',
      `must be one of ${BACKEND_CHOICES.join(', ')}, got "${String(choice)}"`,
    );
  }
  const native = loadNativeBackend();
  if (native) return native;
  if (choice === 'auto') return nobleBackend;
  throw new NativeBackendUnavailableError(nativeBindingInfo().reason ?? 'unknown reason');
}
