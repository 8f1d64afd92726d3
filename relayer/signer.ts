/**
 * Signs relay responses with the supplier operator keys this relayer holds (relay-protocol.md §5).
 * Keys are indexed by the operator address derived from them; an address written in config is
 * never trusted. Key bytes are never passed to a logger and never appear in error messages.
 */
import type { Logger } from 'pino';
import {
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
import { SupplierKeyError, loadSupplierKeys } from '../chain/index.js';

export type SignCode = 'SIGN_EMPTY_PAYLOAD' | 'SIGN_SUPPLIER_NOT_OWNED';
export type SignResult =
  { ok: true; response: RelayResponse } | { ok: false; code: SignCode; reason: string };

export interface RelaySignerDeps {
  /** The EC backend that signs (the native one in production). */
  backend: Pick<EcBackend, 'ecdsaSign'>;
  log: Logger;
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
