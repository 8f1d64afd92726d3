import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { bytesToHex, hexToBytes } from '../core/index.js';
import {
  addressFromPrivateKey,
  encodeRelayResponse,
  publicKeyFromPrivate,
  relayResponseSignableHash,
  sha256,
  supplierSignatureDigest,
  type RelayResponse,
} from '../protocol/index.js';
import { selectBackend } from '../rings/index.js';
import { unsignedResponseFromVector } from '../test/helpers/relay-vectors.js';
import { hasVectorFile, loadVectors } from '../test/helpers/vectors.js';
import { SupplierKeyError, loadSupplierKeys } from '../chain/index.js';
import { RelaySigner } from './signer.js';

const backend = selectBackend('native');
const silent = pino({ level: 'silent' });
const KEY_A = hexToBytes('11'.repeat(32));
const KEY_B = hexToBytes(`0a${'22'.repeat(31)}`);
const ADDR_A = addressFromPrivateKey(KEY_A);
const ADDR_B = addressFromPrivateKey(KEY_B);

function response(payload: string): RelayResponse {
  return {
    meta: {
      sessionHeader: {
        applicationAddress: 'pokt1app',
        serviceId: 'anvil',
        sessionId: 'sid',
        sessionStartBlockHeight: 1n,
        sessionEndBlockHeight: 4n,
      },
      supplierOperatorSignature: Buffer.alloc(0),
    },
    payload: Buffer.from(payload),
    payloadHash: Buffer.alloc(0),
    relayMinerError: undefined,
  };
}

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'relay-signer-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('RelaySigner', () => {
  it('indexes keys by the derived operator address', () => {
    const s = new RelaySigner({ backend, log: silent }, [KEY_A, KEY_B]);
    expect(s.addresses).toEqual([ADDR_A, ADDR_B].sort());
    expect([s.owns(ADDR_A), s.owns(ADDR_B), s.owns('pokt1someoneelse')]).toEqual([true, true, false]);
  });

  it('signs: payload hash set, low-S 64-byte signature over SHA-256(signable hash)', () => {
    const s = new RelaySigner({ backend, log: silent }, [KEY_A]);
    const res = s.sign(response('{"result":"0x10"}'), ADDR_A);
    if (!res.ok) throw new Error(res.reason);
    const digest = supplierSignatureDigest(relayResponseSignableHash(res.response));
    expect(res.response).toEqual({
      ...response('{"result":"0x10"}'),
      payloadHash: Buffer.from(sha256(Buffer.from('{"result":"0x10"}'))),
      meta: {
        ...response('').meta!,
        supplierOperatorSignature: Buffer.from(backend.ecdsaSign(digest, KEY_A)),
      },
    });
    expect(res.response.meta!.supplierOperatorSignature.length).toBe(64);
    expect(
      backend.ecdsaVerify(res.response.meta!.supplierOperatorSignature, digest, publicKeyFromPrivate(KEY_A)),
    ).toBe(true);
  });

  it('refuses an empty payload and an address it holds no key for, as values', () => {
    const s = new RelaySigner({ backend, log: silent }, [KEY_A]);
    expect(s.sign(response(''), ADDR_A)).toEqual({
      ok: false,
      code: 'SIGN_EMPTY_PAYLOAD',
      reason: 'refusing to sign a response with an empty payload',
    });
    expect(s.sign(response('x'), ADDR_B)).toEqual({
      ok: false,
      code: 'SIGN_SUPPLIER_NOT_OWNED',
      reason: `no key held for supplier ${ADDR_B}`,
    });
  });

  it('never logs key material', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const log = pino({ level: 'trace' }, sink);
    const s = new RelaySigner({ backend, log }, [KEY_A, KEY_B]);
    for (let i = 0; i < 5; i++) s.sign(response(`payload ${i}`), i % 2 === 0 ? ADDR_A : ADDR_B);
    const text = lines.join('').toLowerCase();
    expect(lines.map((l) => JSON.parse(l).msg as string)).toEqual(['supplier keys loaded']);
    for (const k of [KEY_A, KEY_B]) {
      expect(text).not.toContain(bytesToHex(k));
      expect(text).not.toContain(Buffer.from(k).toString('base64').toLowerCase());
    }
  });

  it('rejects a key that is not 32 bytes or outside the curve order', () => {
    expect(() => new RelaySigner({ backend, log: silent }, [new Uint8Array(31)])).toThrow(SupplierKeyError);
    expect(() => new RelaySigner({ backend, log: silent }, [new Uint8Array(32)])).toThrow(SupplierKeyError);
  });
});

describe('loadSupplierKeys', () => {
  it('reads keys_file (YAML keys list) and keys_dir (one YAML/JSON key file each)', () => {
    const d = tempDir();
    const file = join(d, 'keys.yaml');
    writeFileSync(file, `keys:\n  - "${bytesToHex(KEY_A)}"\n`);
    const dir = join(d, 'dir');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'b.json'),
      JSON.stringify({ operator_address: ADDR_B, private_key_hex: `0x${bytesToHex(KEY_B)}` }),
    );
    writeFileSync(join(dir, 'a.yml'), `private_key_hex: "${bytesToHex(KEY_A)}"\n`);
    writeFileSync(join(dir, 'notes.txt'), 'ignored');
    expect(loadSupplierKeys({ keys_file: file, keys_dir: dir }).map(bytesToHex)).toEqual([
      bytesToHex(KEY_A),
      bytesToHex(KEY_A),
      bytesToHex(KEY_B),
    ]);
  });

  it("refuses a keys_dir file whose stated operator_address is not the key's", () => {
    const dir = tempDir();
    const path = join(dir, 'a.yaml');
    writeFileSync(path, `operator_address: ${ADDR_B}\nprivate_key_hex: "${bytesToHex(KEY_A)}"\n`);
    expect(() => loadSupplierKeys({ keys_dir: dir })).toThrow(
      new SupplierKeyError(
        `keys.keys_dir ${path}`,
        `operator_address "${ADDR_B}" is not the address of private_key_hex; fix or remove operator_address`,
      ),
    );
  });

  it('refuses a key file nested deeper than the YAML limit without parsing it', () => {
    const file = join(tempDir(), 'deep.yaml');
    writeFileSync(file, `keys: ${'['.repeat(5_000)}${']'.repeat(5_000)}\n`);
    expect(() => loadSupplierKeys({ keys_file: file })).toThrow(
      new SupplierKeyError(
        `keys.keys_file ${file}`,
        'cannot parse the file as YAML (nested 5001 levels deep; at most 64)',
      ),
    );
  });

  it('refuses an empty keys list', () => {
    const file = join(tempDir(), 'keys.yaml');
    writeFileSync(file, 'keys: []\n');
    expect(() => loadSupplierKeys({ keys_file: file })).toThrow(SupplierKeyError);
  });

  it('reports a bad key by its source, without the key text', () => {
    const d = tempDir();
    const file = join(d, 'keys.yaml');
    writeFileSync(file, 'keys:\n  - "zz-not-a-key-zz"\n');
    let err: unknown;
    try {
      loadSupplierKeys({ keys_file: file });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SupplierKeyError);
    expect((err as SupplierKeyError).code).toBe('SUPPLIER_KEY_INVALID');
    expect((err as Error).message).toBe(
      `keys.keys_file ${file} keys[0]: expected a 32-byte secp256k1 private key as 64 hex digits`,
    );
    expect(() =>
      loadSupplierKeys({ keyring: { backend: 'test', app_name: 'pocket', key_names: [] } }),
    ).toThrow(SupplierKeyError);
  });
});

const VECTORS = 'relay-responses.json';
describe.runIf(hasVectorFile(VECTORS))('RelaySigner against relay-responses.json', () => {
  it('reproduces every positive signed response byte for byte', () => {
    const cases = (loadVectors<any>(VECTORS).responses as any[]).filter(
      (c) => c.payload_hex !== undefined && c.payload_hash_hex !== null && c.payload_hex !== '',
    );
    expect(cases.length).toBeGreaterThan(0);
    for (const c of cases) {
      const unsigned = unsignedResponseFromVector(c);
      const s = new RelaySigner({ backend, log: silent }, [hexToBytes(c.supplier_private_key_hex)]);
      const signed = s.sign(unsigned, c.supplier_operator_address);
      if (!signed.ok) throw new Error(signed.reason);
      expect(bytesToHex(encodeRelayResponse(signed.response))).toBe(c.signed_response_hex);
    }
  });
});
