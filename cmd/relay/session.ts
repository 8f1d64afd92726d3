/**
 * Where a relay's signing context comes from, as PATH gets it: the current session of
 * (application, service) from the full node, the application's expected ring (application +
 * delegated gateways) through a RingSource over the chain client, the signer's place in that
 * ring and the supplier's public key (given, or from its on-chain account).
 */
import { readFileSync } from 'node:fs';
import { ChainNotFoundError, type ChainQueryClient } from '../../chain/index.js';
import { bytesToHex } from '../../core/index.js';
import {
  addressFromPublicKey,
  assertPrivateKey,
  isCompressedPublicKey,
  publicKeyFromPrivate,
  type SessionHeader,
} from '../../protocol/index.js';
import { RingCache, type EcBackend, type RingApplication, type RingSource } from '../../rings/index.js';

/** Exit codes of `relay`: 1 some relay failed, 2 bad input, 3 the chain could not answer. */
export const EXIT = { OK: 0, RELAY_FAILED: 1, BAD_INPUT: 2, CHAIN: 3 } as const;

/** A failure before any relay is sent; `exitCode` tells input problems from chain problems. */
export class RelayClientError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    opts: { cause?: unknown } = {},
  ) {
    super(message, opts);
    this.name = 'RelayClientError';
  }
}

export function inputError(message: string): RelayClientError {
  return new RelayClientError(message, EXIT.BAD_INPUT);
}

/** RingSource straight over the chain client (no cache layer in a client). */
export class ChainRingSource implements RingSource {
  constructor(private readonly chain: Pick<ChainQueryClient, 'getApplication' | 'getAccount'>) {}

  async getApplication(appAddress: string): Promise<RingApplication | undefined> {
    try {
      return await this.chain.getApplication(appAddress);
    } catch (err) {
      if (err instanceof ChainNotFoundError) return undefined;
      throw err;
    }
  }

  async getAccountPublicKey(address: string): Promise<Uint8Array | undefined> {
    try {
      return (await this.chain.getAccount(address)).pubKey;
    } catch (err) {
      if (err instanceof ChainNotFoundError) return undefined;
      throw err;
    }
  }
}

/** Reads a hex private key (optional 0x, surrounding whitespace ignored) from a file. */
export function readPrivateKeyFile(path: string, flag: string): Uint8Array {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw inputError(`${flag} ${path}: cannot read the file (${code})`);
  }
  const hex = text.trim().replace(/^0x/i, '');
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw inputError(`${flag} ${path}: expected a 32-byte private key as 64 hex characters`);
  }
  const key = Uint8Array.from(Buffer.from(hex, 'hex'));
  try {
    assertPrivateKey(key);
  } catch {
    throw inputError(`${flag} ${path}: not a valid secp256k1 private key`);
  }
  return key;
}

/** Parses `--supplier-pubkey`: 33-byte compressed secp256k1 key as hex. */
export function parsePublicKeyHex(hex: string): Uint8Array {
  const clean = hex.trim().replace(/^0x/i, '');
  const key = /^[0-9a-fA-F]*$/.test(clean) ? Uint8Array.from(Buffer.from(clean, 'hex')) : new Uint8Array();
  if (!isCompressedPublicKey(key)) {
    throw inputError(`--supplier-pubkey: expected a 33-byte compressed secp256k1 key as 66 hex characters`);
  }
  return key;
}

/** Everything needed to sign a relay for one session. */
export interface SigningContext {
  readonly header: SessionHeader;
  readonly supplierAddress: string;
  readonly supplierPublicKey: Uint8Array;
  readonly ringAddresses: readonly string[];
  readonly ringPublicKeys: readonly Uint8Array[];
  readonly signerIndex: number;
  readonly signerAddress: string;
  readonly signerPrivateKey: Uint8Array;
}

export interface SessionResolverOptions {
  chain: Pick<ChainQueryClient, 'getSession' | 'getApplication' | 'getAccount'>;
  backend: EcBackend;
  appAddress: string;
  serviceId: string;
  supplierAddress: string;
  /** Known supplier key; looked up from the supplier's account when absent. */
  supplierPublicKey?: Uint8Array;
  signerPrivateKey: Uint8Array;
  /** 'app': the key must be the application's own; 'gateway': a gateway the app delegates to. */
  signerRole: 'app' | 'gateway';
  /** How long a looked-up session is reused before asking the node again (PATH polls every 15 s). */
  refreshMs?: number;
  now?: () => number;
}

function describeChainError(nodeWhat: string, err: unknown): RelayClientError {
  const msg = err instanceof Error ? err.message : String(err);
  return new RelayClientError(`${nodeWhat}: ${msg}`, EXIT.CHAIN, { cause: err });
}

/**
 * Resolves and caches the signing context of the current session. Concurrent callers share one
 * lookup; a new lookup happens once `refreshMs` has passed.
 */
export class SessionResolver {
  private readonly rings: RingCache<unknown>;
  private readonly signerAddress: string;
  private cached: { ctx: SigningContext; atMs: number } | undefined;
  private inflight: Promise<SigningContext> | undefined;
  private supplierKey: Uint8Array | undefined;
  private readonly now: () => number;

  constructor(private readonly o: SessionResolverOptions) {
    this.rings = new RingCache({ source: new ChainRingSource(o.chain), backend: o.backend });
    this.signerAddress = addressFromPublicKey(publicKeyFromPrivate(o.signerPrivateKey));
    this.supplierKey = o.supplierPublicKey;
    this.now = o.now ?? Date.now;
    if (o.signerRole === 'app' && this.signerAddress !== o.appAddress) {
      throw inputError(
        `--app-key-file holds the key of ${this.signerAddress}, not of the application ${o.appAddress}`,
      );
    }
  }

  /** The signing context of the current session. */
  current(): Promise<SigningContext> {
    const c = this.cached;
    if (c !== undefined && this.now() - c.atMs < (this.o.refreshMs ?? 15_000)) return Promise.resolve(c.ctx);
    this.inflight ??= this.resolve().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async resolve(): Promise<SigningContext> {
    const o = this.o;
    let session;
    try {
      session = await o.chain.getSession(o.appAddress, o.serviceId, 0);
    } catch (err) {
      throw describeChainError(`session of application ${o.appAddress} for service ${o.serviceId}`, err);
    }
    const header = session.header;
    if (header === undefined) {
      throw new RelayClientError(`the node returned a session without a header`, EXIT.CHAIN);
    }
    const suppliers = session.suppliers.map((s) => s.operatorAddress);
    if (!suppliers.includes(o.supplierAddress)) {
      throw inputError(
        `supplier ${o.supplierAddress} is not in session ${header.sessionId} of application ` +
          `${o.appAddress} for service ${o.serviceId} (session suppliers: ${suppliers.join(', ') || 'none'})`,
      );
    }
    let ring;
    try {
      ring = await this.rings.get(o.appAddress, header.sessionEndBlockHeight);
    } catch (err) {
      throw describeChainError(`ring of application ${o.appAddress}`, err);
    }
    if (!ring.ok) throw new RelayClientError(`expected ring: ${ring.reason}`, EXIT.CHAIN);
    const signerIndex = ring.ring.addresses.indexOf(this.signerAddress);
    if (signerIndex === -1) {
      throw inputError(
        `${this.signerAddress} (the --${o.signerRole}-key-file key) is not in the ring of application ` +
          `${o.appAddress}: ring members are ${ring.ring.addresses.join(', ')}; ` +
          `is the gateway delegated to by the application?`,
      );
    }
    const pub = ring.ring.publicKeys[signerIndex]!;
    if (bytesToHex(pub) !== bytesToHex(publicKeyFromPrivate(o.signerPrivateKey))) {
      throw inputError(`the on-chain public key of ${this.signerAddress} differs from the key file's`);
    }
    const supplierPublicKey = await this.supplierPublicKey();
    const ctx: SigningContext = {
      header,
      supplierAddress: o.supplierAddress,
      supplierPublicKey,
      ringAddresses: ring.ring.addresses,
      ringPublicKeys: ring.ring.publicKeys,
      signerIndex,
      signerAddress: this.signerAddress,
      signerPrivateKey: o.signerPrivateKey,
    };
    this.cached = { ctx, atMs: this.now() };
    return ctx;
  }

  private async supplierPublicKey(): Promise<Uint8Array> {
    if (this.supplierKey !== undefined) return this.supplierKey;
    let key: Uint8Array | undefined;
    try {
      key = (await this.o.chain.getAccount(this.o.supplierAddress)).pubKey;
    } catch (err) {
      if (!(err instanceof ChainNotFoundError)) {
        throw describeChainError(`account of supplier ${this.o.supplierAddress}`, err);
      }
    }
    if (key === undefined) {
      throw new RelayClientError(
        `supplier ${this.o.supplierAddress} has no public key on chain; pass --supplier-pubkey`,
        EXIT.CHAIN,
      );
    }
    this.supplierKey = key;
    return key;
  }
}
