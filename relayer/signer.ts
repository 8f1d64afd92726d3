/**
 * Signs relay responses with the supplier operator keys this relayer holds (relay-protocol.md §5).
 * Keys are indexed by the operator address derived from them; an address written in config is
 * never trusted. Key bytes are never passed to a logger and never appear in error messages.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import {
  addressFromPrivateKey,
  addressFromPublicKey,
  publicKeyFromPrivate,
  relayResponseSignableHash,
  supplierSignatureDigest,
  withPayloadHash,
  withSupplierSignature,
  type RelayResponse,
} from '../protocol/index.js';
import type { EcBackend } from '../rings/index.js';
import type { RelayerConfig } from './config.js';
import { SupplierKeyError } from './errors.js';

export type SignCode = 'SIGN_EMPTY_PAYLOAD' | 'SIGN_SUPPLIER_NOT_OWNED';
export type SignResult =
  { ok: true; response: RelayResponse } | { ok: false; code: SignCode; reason: string };

export interface RelaySignerDeps {
  /** The EC backend that signs (the native one in production). */
  backend: Pick<EcBackend, 'ecdsaSign'>;
  log: Logger;
}

const HEX_KEY = /^(0x)?[0-9a-fA-F]{64}$/;

/** One hex private key (64 hex digits, optional 0x) → 32 bytes, checked against the curve order. */
export function parsePrivateKeyHex(source: string, text: string): Uint8Array {
  const t = text.trim();
  if (!HEX_KEY.test(t)) {
    throw new SupplierKeyError(source, 'expected a 32-byte secp256k1 private key as 64 hex digits');
  }
  const bytes = Uint8Array.from(Buffer.from(t.replace(/^0x/, ''), 'hex'));
  try {
    publicKeyFromPrivate(bytes);
  } catch (err) {
    throw new SupplierKeyError(source, 'not a valid secp256k1 private key (zero or ≥ curve order)', err);
  }
  return bytes;
}

const KEY_FILE_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/**
 * One file of `keys_dir`: YAML/JSON `{operator_address, private_key_hex}`. The address is derived
 * from the key; a stated `operator_address` that differs is refused rather than trusted.
 */
function readKeyDirFile(path: string): Uint8Array {
  const source = `keys.keys_dir ${path}`;
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new SupplierKeyError(source, 'cannot read or parse the file as YAML/JSON', err);
  }
  const fields = (doc ?? {}) as { operator_address?: unknown; private_key_hex?: unknown };
  if (typeof fields.private_key_hex !== 'string') {
    throw new SupplierKeyError(source, 'expected a private_key_hex string field');
  }
  const key = parsePrivateKeyHex(`${source} private_key_hex`, fields.private_key_hex);
  const stated = fields.operator_address;
  if (stated !== undefined && stated !== addressFromPrivateKey(key)) {
    throw new SupplierKeyError(
      source,
      `operator_address ${JSON.stringify(stated)} is not the address of private_key_hex; fix or remove operator_address`,
    );
  }
  return key;
}

/**
 * Reads the configured key sources: `keys_file` (YAML with a non-empty `keys:` list of hex keys) and
 * `keys_dir` (one `.yaml`/`.yml`/`.json` file per key). `keyring` is not supported by this relayer.
 * Any unreadable or invalid entry fails the whole load (start-up refuses rather than serving with
 * a silently missing supplier).
 */
export function loadSupplierKeys(cfg: RelayerConfig['keys']): Uint8Array[] {
  const out: Uint8Array[] = [];
  if (cfg.keyring !== undefined) {
    throw new SupplierKeyError(
      'keys.keyring',
      'keyring sources are not supported; use keys_file or keys_dir',
    );
  }
  if (cfg.keys_file !== undefined) {
    const path = cfg.keys_file;
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new SupplierKeyError(`keys.keys_file ${path}`, 'cannot read or parse the file', err);
    }
    const list = (doc as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(list) || list.length === 0 || !list.every((k) => typeof k === 'string')) {
      throw new SupplierKeyError(
        `keys.keys_file ${path}`,
        'expected a YAML mapping with a `keys:` list of hex strings',
      );
    }
    list.forEach((k, i) => out.push(parsePrivateKeyHex(`keys.keys_file ${path} keys[${i}]`, k)));
  }
  if (cfg.keys_dir !== undefined) {
    const dir = cfg.keys_dir;
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (err) {
      throw new SupplierKeyError(`keys.keys_dir ${dir}`, 'cannot list the directory', err);
    }
    for (const name of names) {
      const path = join(dir, name);
      if (!KEY_FILE_EXTENSIONS.has(extname(name).toLowerCase()) || !statSync(path).isFile()) continue;
      out.push(readKeyDirFile(path));
    }
  }
  return out;
}

export class RelaySigner {
  private readonly keys = new Map<string, Uint8Array>();
  private readonly log: Logger;

  constructor(
    private readonly deps: RelaySignerDeps,
    privateKeys: readonly Uint8Array[],
  ) {
    this.log = deps.log.child({ component: 'relay_signer' });
    privateKeys.forEach((k, i) => {
      if (k.length !== 32)
        throw new SupplierKeyError(`supplier key #${i}`, `expected 32 bytes, got ${k.length}`);
      let pub: Uint8Array;
      try {
        pub = publicKeyFromPrivate(k);
      } catch (err) {
        throw new SupplierKeyError(`supplier key #${i}`, 'not a valid secp256k1 private key', err);
      }
      this.keys.set(addressFromPublicKey(pub), Uint8Array.from(k));
    });
    this.log.info({ suppliers: [...this.keys.keys()] }, 'supplier keys loaded');
  }

  /** Builds a signer from the `keys:` config section. */
  static fromConfig(deps: RelaySignerDeps, cfg: RelayerConfig['keys']): RelaySigner {
    return new RelaySigner(deps, loadSupplierKeys(cfg));
  }

  /** Operator addresses whose keys are held, sorted. */
  get addresses(): string[] {
    return [...this.keys.keys()].sort();
  }

  owns(address: string): boolean {
    return this.keys.has(address);
  }

  /** Sets payload_hash and the supplier signature (double SHA-256, low-S, 64 bytes). */
  sign(response: RelayResponse, supplierAddress: string): SignResult {
    const key = this.keys.get(supplierAddress);
    if (key === undefined) {
      return {
        ok: false,
        code: 'SIGN_SUPPLIER_NOT_OWNED',
        reason: `no key held for supplier ${supplierAddress}`,
      };
    }
    if (response.payload.length === 0) {
      return {
        ok: false,
        code: 'SIGN_EMPTY_PAYLOAD',
        reason: 'refusing to sign a response with an empty payload',
      };
    }
    const hashed = withPayloadHash(response);
    const signature = this.deps.backend.ecdsaSign(
      supplierSignatureDigest(relayResponseSignableHash(hashed)),
      key,
    );
    return { ok: true, response: withSupplierSignature(hashed, signature) };
  }
}
