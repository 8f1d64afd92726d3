/**
 * The native backend really is libsecp256k1: the `secp256k1/bindings` module, backed by the
 * compiled prebuild under node_modules/secp256k1/prebuilds, and never the package's pure-JS
 * `elliptic` fallback.
 */
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadNativeBackend, nativeBinding, nativeBindingInfo } from './native-backend.js';
import { selectBackend } from './select-backend.js';

const requireCjs = createRequire(import.meta.url);

describe('native libsecp256k1 binding', () => {
  it('is loaded from the compiled prebuild for this platform', () => {
    const backend = loadNativeBackend();
    expect(backend?.name).toBe('native');
    const info = nativeBindingInfo();
    const packageDir = dirname(requireCjs.resolve('secp256k1/package.json'));
    const prebuildDir = join(packageDir, 'prebuilds', `${process.platform}-${process.arch}`) + sep;
    expect(info).toEqual({
      loaded: true,
      bindingModule: join(packageDir, 'bindings.js'),
      addonFile: expect.stringMatching(/\.node$/) as unknown,
    });
    expect(info.addonFile!.startsWith(prebuildDir)).toBe(true);
    // The addon module is a real N-API module exposing the Secp256k1 class the binding wraps.
    const addon = requireCjs.cache[info.addonFile!]?.exports as { Secp256k1?: unknown } | undefined;
    expect(typeof addon?.Secp256k1).toBe('function');
  });

  it('is the bindings module itself, and elliptic was never loaded', () => {
    loadNativeBackend();
    expect(nativeBinding()).toBe(requireCjs('secp256k1/bindings'));
    expect(requireCjs.cache[requireCjs.resolve('secp256k1/elliptic')]).toBeUndefined();
    expect(requireCjs.cache[requireCjs.resolve('secp256k1/lib/elliptic')]).toBeUndefined();
    expect(requireCjs.cache[requireCjs.resolve('secp256k1')]).toBeUndefined();
  });

  it('is what selectBackend picks for native and auto', () => {
    const native = loadNativeBackend();
    expect(selectBackend('native')).toBe(native);
    expect(selectBackend('auto')).toBe(native);
    expect(selectBackend('noble').name).toBe('noble');
  });
});
