/**
 * Supplier operator keys from the config's key sources, shared by the relayer and the miner:
 * `keys_file` (YAML with a non-empty `keys:` list of hex keys) and `keys_dir` (one
 * `.yaml`/`.yml`/`.json` file per key, `{operator_address, private_key_hex}`; a stated address must
 * be the key's). Key bytes never appear in errors or logs.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { YAMLError, parse as parseYaml } from 'yaml';
import { RelayMinerError } from '../core/index.js';
import { MAX_YAML_NESTING, yamlNestingDepth } from '../core/config/index.js';
import { addressFromPrivateKey, publicKeyFromPrivate } from '../protocol/index.js';

/** A supplier key source could not be read or holds something that is not a secp256k1 key. */
export class SupplierKeyError extends RelayMinerError {
  constructor(source: string, why: string, cause?: unknown) {
    super('SUPPLIER_KEY_INVALID', `${source}: ${why}`, { cause });
  }
}

/** The `keys:` section of both configs. */
export interface SupplierKeySources {
  readonly keys_file?: string | undefined;
  readonly keys_dir?: string | undefined;
  readonly keyring?: unknown;
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

/** Reads and parses a key file; failures name the position only, never the parser's excerpt. */
function readKeyYaml(source: string, path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new SupplierKeyError(source, `cannot read the file`, err);
  }
  const depth = yamlNestingDepth(text);
  if (depth > MAX_YAML_NESTING) {
    throw new SupplierKeyError(
      source,
      `cannot parse the file as ${what} (nested ${depth} levels deep; at most ${MAX_YAML_NESTING})`,
    );
  }
  try {
    return parseYaml(text);
  } catch (err) {
    // The parser's message quotes the offending line, which may hold key material: keep only
    // its code and position, and do not chain the error.
    if (err instanceof YAMLError) {
      const pos = err.linePos?.[0];
      const at = pos === undefined ? '' : ` at line ${pos.line}, column ${pos.col}`;
      throw new SupplierKeyError(source, `cannot parse the file as ${what} (${err.code}${at})`);
    }
    throw new SupplierKeyError(source, `cannot parse the file as ${what}`);
  }
}

/**
 * One file of `keys_dir`: YAML/JSON `{operator_address, private_key_hex}`. The address is derived
 * from the key; a stated `operator_address` that differs is refused rather than trusted.
 */
function readKeyDirFile(path: string): Uint8Array {
  const source = `keys.keys_dir ${path}`;
  const doc = readKeyYaml(source, path, 'YAML/JSON');
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
export function loadSupplierKeys(cfg: SupplierKeySources): Uint8Array[] {
  const out: Uint8Array[] = [];
  if (cfg.keyring !== undefined) {
    throw new SupplierKeyError(
      'keys.keyring',
      'keyring sources are not supported; use keys_file or keys_dir',
    );
  }
  if (cfg.keys_file !== undefined) {
    const path = cfg.keys_file;
    const doc = readKeyYaml(`keys.keys_file ${path}`, path, 'YAML');
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
