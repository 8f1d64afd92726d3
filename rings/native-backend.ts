/**
 * The hot-path backend: libsecp256k1 through the `secp256k1` N-API package. Only the native
 * binding (`secp256k1/bindings`) is ever loaded; the package's index silently falls back to the
 * pure-JS `elliptic` library when the addon is missing, which must never happen here: a missing
 * addon is reported, and `selectBackend('auto')` then chooses the noble backend explicitly.
 *
 * Points are 65-byte uncompressed SEC1 arrays (libsecp256k1 parses them without a square root);
 * the point at infinity, which libsecp256k1 cannot represent, is the shared empty array
 * `NATIVE_INFINITY`. libsecp256k1 refuses zero scalars and sums at infinity: those cases are
 * answered here without it (0·P = ∞, P + ∞ = P), and anything it still refuses is recomputed
 * with noble, so the result is upstream's in every case.
 */
import { createRequire } from 'node:module';
import { dirname, sep } from 'node:path';
import type * as Secp256k1Api from 'secp256k1';
import { InvalidInputError } from '../core/errors.js';
import { bigIntToBytes, bytesToBigInt } from '../core/bytes.js';
import { SECP256K1_N } from '../protocol/keys.js';
import { canonicalEcdsaSignature, reduceScalar, type EcBackend } from './ec-backend.js';
import {
  NOBLE_INFINITY,
  nobleBackend,
  noblePointFromUncompressed,
  noblePointToUncompressed,
  type NoblePoint,
} from './noble-backend.js';

declare const nativePointBrand: unique symbol;
/** A 65-byte uncompressed SEC1 point made by this backend, or NATIVE_INFINITY. */
export type NativePoint = Uint8Array & { readonly [nativePointBrand]: true };
type Secp256k1Binding = typeof Secp256k1Api;

const asPoint = (bytes: Uint8Array): NativePoint => bytes as NativePoint;

/** The point at infinity of the native backend (a zero-length array, never a valid encoding). */
export const NATIVE_INFINITY: NativePoint = asPoint(new Uint8Array(0));

const requireCjs = createRequire(import.meta.url);
const BINDING_MODULE = 'secp256k1/bindings';

export interface NativeBindingInfo {
  loaded: boolean;
  /** Resolved path of the `secp256k1/bindings` module. */
  bindingModule?: string;
  /** The compiled addon (`.node` file) the binding loaded, found in the CommonJS module cache. */
  addonFile?: string;
  /** Why the binding could not be loaded. */
  reason?: string;
}

type LoadState =
  { ok: true; binding: Secp256k1Binding; info: NativeBindingInfo } | { ok: false; info: NativeBindingInfo };
let loadState: LoadState | undefined;

function load(): LoadState {
  if (loadState) return loadState;
  try {
    const bindingModule = requireCjs.resolve(BINDING_MODULE);
    const binding = requireCjs(BINDING_MODULE) as Secp256k1Binding;
    const packageDir = dirname(bindingModule) + sep;
    const addonFile = Object.keys(requireCjs.cache).find(
      (f) => f.startsWith(packageDir) && f.endsWith('.node'),
    );
    if (addonFile === undefined) {
      loadState = {
        ok: false,
        info: { loaded: false, bindingModule, reason: 'no compiled secp256k1 addon in the module cache' },
      };
    } else {
      loadState = { ok: true, binding, info: { loaded: true, bindingModule, addonFile } };
    }
  } catch (err) {
    loadState = {
      ok: false,
      info: { loaded: false, reason: err instanceof Error ? err.message : String(err) },
    };
  }
  return loadState;
}

/** Which native binding was loaded (loading it on first call), or why it could not be. */
export function nativeBindingInfo(): NativeBindingInfo {
  return { ...load().info };
}

/** The raw binding object the native backend calls, or undefined when it is not available. */
export function nativeBinding(): Secp256k1Binding | undefined {
  const s = load();
  return s.ok ? s.binding : undefined;
}

function toNoble(point: NativePoint): NoblePoint {
  return point.length === 0 ? NOBLE_INFINITY : noblePointFromUncompressed(point);
}

function fromNoble(point: NoblePoint): NativePoint {
  return point.is0() ? NATIVE_INFINITY : asPoint(noblePointToUncompressed(point));
}

function scalarBytes(k: bigint): Uint8Array {
  return bigIntToBytes(k, 32);
}

function createNativeBackend(lib: Secp256k1Binding): EcBackend<NativePoint> {
  const decodePoint = (bytes: Uint8Array): NativePoint | null => {
    if (bytes.length !== 33 || (bytes[0] !== 0x02 && bytes[0] !== 0x03)) return null;
    try {
      // Rejects x ≥ p and x off the curve, like decred's ParsePubKey.
      return asPoint(lib.publicKeyConvert(bytes, false));
    } catch {
      return null;
    }
  };

  const encodePoint = (point: NativePoint): Uint8Array => {
    const out = new Uint8Array(33);
    if (point.length === 0) {
      out[0] = 0x02;
      return out;
    }
    out[0] = 0x02 | (point[64]! & 1);
    out.set(point.subarray(1, 33), 1);
    return out;
  };

  const mulBase = (k: bigint): NativePoint => {
    const r = reduceScalar(k);
    if (r === 0n) return NATIVE_INFINITY;
    return asPoint(lib.publicKeyCreate(scalarBytes(r), false));
  };

  const mul = (point: NativePoint, k: bigint): NativePoint => {
    const r = reduceScalar(k);
    if (r === 0n || point.length === 0) return NATIVE_INFINITY;
    return asPoint(lib.publicKeyTweakMul(point, scalarBytes(r), false));
  };

  const add = (a: NativePoint, b: NativePoint): NativePoint => {
    if (a.length === 0) return b;
    if (b.length === 0) return a;
    try {
      return asPoint(lib.publicKeyCombine([a, b], false));
    } catch {
      // libsecp256k1 refuses a sum at infinity (b = -a).
      return fromNoble(toNoble(a).add(toNoble(b)));
    }
  };

  const mulBaseAdd = (s: bigint, c: bigint, point: NativePoint): NativePoint => {
    const sr = reduceScalar(s);
    const cr = reduceScalar(c);
    if (cr === 0n || point.length === 0) return mulBase(sr);
    // One variable-time double multiplication through public-key recovery: recovery returns
    // Q = r⁻¹·(σ·X − e·G) for the curve point X with x-coordinate r (+N when the recovery id
    // says so) and the parity the id gives. With X = P, σ = c·r and e = −s·r that is exactly
    // c·P + s·G, faster than a constant-time multiplication followed by an addition.
    const x = bytesToBigInt(point.subarray(1, 33));
    const overflow = x >= SECP256K1_N;
    const r = overflow ? x - SECP256K1_N : x;
    const sigma = (cr * r) % SECP256K1_N;
    const e = (SECP256K1_N - ((sr * r) % SECP256K1_N)) % SECP256K1_N;
    if (r !== 0n && sigma !== 0n) {
      const sig = new Uint8Array(64);
      sig.set(scalarBytes(r), 0);
      sig.set(scalarBytes(sigma), 32);
      const recid = (point[64]! & 1) | (overflow ? 2 : 0);
      try {
        return asPoint(lib.ecdsaRecover(sig, recid, scalarBytes(e), false));
      } catch {
        // The result is the point at infinity (s·G = −c·P); fall through to exact math.
      }
    }
    return fromNoble(nobleBackend.mulBaseAdd(sr, cr, toNoble(point)));
  };

  const mulAdd = (a: bigint, pointA: NativePoint, b: bigint, pointB: NativePoint): NativePoint =>
    add(mul(pointA, a), mul(pointB, b));

  const ecdsaSign = (digest32: Uint8Array, privateKey: Uint8Array): Uint8Array => {
    if (digest32.length !== 32) {
      throw new InvalidInputError('digest', `must be 32 bytes, got ${digest32.length}`);
    }
    if (privateKey.length !== 32 || !lib.privateKeyVerify(privateKey)) {
      throw new InvalidInputError('private key', 'must be a 32-byte scalar in [1, N)');
    }
    // libsecp256k1's default nonce function is RFC 6979 (HMAC-SHA256) without extra data, and
    // its signatures are always low-S.
    return lib.ecdsaSign(digest32, privateKey).signature;
  };

  const ecdsaVerify = (signature: Uint8Array, digest32: Uint8Array, publicKey33: Uint8Array): boolean => {
    if (digest32.length !== 32) return false;
    const rs = canonicalEcdsaSignature(signature);
    if (rs === null) return false;
    const pub = decodePoint(publicKey33);
    if (pub === null) return false;
    const canonical = new Uint8Array(64);
    canonical.set(scalarBytes(rs.r), 0);
    canonical.set(scalarBytes(rs.s), 32);
    try {
      return lib.ecdsaVerify(canonical, digest32, pub);
    } catch {
      return false;
    }
  };

  return {
    name: 'native',
    decodePoint,
    encodePoint,
    isInfinity: (point) => point.length === 0,
    mulBase,
    mul,
    add,
    mulBaseAdd,
    mulAdd,
    ecdsaSign,
    ecdsaVerify,
  };
}

let nativeBackendInstance: EcBackend<NativePoint> | undefined;

/** The native backend, or undefined when the libsecp256k1 addon cannot be loaded on this host. */
export function loadNativeBackend(): EcBackend<NativePoint> | undefined {
  if (nativeBackendInstance) return nativeBackendInstance;
  const s = load();
  if (!s.ok) return undefined;
  nativeBackendInstance = createNativeBackend(s.binding);
  return nativeBackendInstance;
}
