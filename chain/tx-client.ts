/**
 * Builds, signs (SIGN_MODE_DIRECT) and broadcasts transactions carrying MsgCreateClaim and
 * MsgSubmitProof (chain.md §11). Unordered by default, like upstream: sequence 0, `unordered =
 * true`, a `timeout_timestamp` anchored on the latest block time and unique per signer. Ordered
 * transactions take the sequence from the auth account, increment it locally and resync on
 * "account sequence mismatch". Gas comes from simulation × adjustment, or a fixed limit.
 *
 * Rejections the node reports (simulation failure, CheckTx code ≠ 0) are values; transport faults
 * are thrown. Private keys stay inside the cosmjs wallet and are never logged.
 */
import {
  DirectSecp256k1Wallet,
  Registry,
  makeAuthInfoBytes,
  makeSignDoc,
  type EncodeObject,
} from '@cosmjs/proto-signing';
import { encodePubkey } from '@cosmjs/proto-signing';
import { encodeSecp256k1Pubkey } from '@cosmjs/amino';
import { Comet38Client } from '@cosmjs/tendermint-rpc';
import { SignMode } from 'cosmjs-types/cosmos/tx/signing/v1beta1/signing';
import { TxBody, TxRaw } from 'cosmjs-types/cosmos/tx/v1beta1/tx';
import { SimulateRequest, SimulateResponse } from 'cosmjs-types/cosmos/tx/v1beta1/service';
import type { Any } from 'cosmjs-types/google/protobuf/any';
import type { Logger } from 'pino';
import { InvalidInputError } from '../core/index.js';
import {
  addressFromPublicKey,
  assertPrivateKey,
  pb,
  publicKeyFromPrivate,
  sha256,
} from '../protocol/index.js';
import { ChainConfigError, ChainResponseMalformedError, ChainRpcError } from './errors.js';
import type { ChainMetrics } from './metrics.js';
import { QUERY_PATHS, type ChainQueryClient } from './query-client.js';

export const MSG_CREATE_CLAIM_TYPE_URL = '/pocket.proof.MsgCreateClaim';
export const MSG_SUBMIT_PROOF_TYPE_URL = '/pocket.proof.MsgSubmitProof';

/** Registry that knows the two pocket messages (generated ts-proto encoders). */
export function createPocketRegistry(): Registry {
  return new Registry([
    [MSG_CREATE_CLAIM_TYPE_URL, pb.proofTx.MsgCreateClaim],
    [MSG_SUBMIT_PROOF_TYPE_URL, pb.proofTx.MsgSubmitProof],
  ]);
}

/** Tx client configuration; keys are the YAML keys. */
export interface TxClientConfig {
  /** `pocket` on mainnet and localnet, `pocket-beta` on testnet. */
  chain_id?: string;
  /** 0 = simulate and multiply by gas_adjustment; > 0 = fixed gas limit, no simulation. */
  gas_limit?: number;
  gas_adjustment?: number;
  /** `<decimal><denom>`, e.g. `0.000001upokt`. */
  gas_price?: string;
  memo?: string;
  /** true (default): unordered txs; false: ordered with account sequence. */
  unordered?: boolean;
  /** Deadline of one broadcast/simulate/lookup RPC. */
  rpc_timeout_ms?: number;
}

export const DEFAULT_TX_CLIENT_CONFIG = {
  chain_id: 'pocket',
  gas_limit: 0,
  gas_adjustment: 1.7,
  gas_price: '0.000001upokt',
  memo: 'HA RelayMiner',
  unordered: true,
  rpc_timeout_ms: 10_000,
} as const;

export interface TxClientDeps {
  log: Logger;
  query: ChainQueryClient;
  /** Latest observed block time in ns since epoch (e.g. from BlockSource); else read from the node. */
  latestBlockTimeNs?: () => bigint | undefined;
  metrics?: ChainMetrics;
  /** Source of the sub-millisecond timeout spread; tests pass a fixed function. */
  random?: () => number;
}

/** Per-submission options. */
export interface SubmitOptions {
  /** Blocks left until the target window closes (drives the unordered timeout). */
  blocksLeftInWindow?: number;
  /** Expected block interval, used with blocksLeftInWindow (default 60 s). */
  blockTimeMs?: number;
  /** Explicit unordered TTL; overrides the window-based computation. */
  timeoutMs?: number;
  /** Optional CometBFT timeout height (block after which the tx is invalid). */
  timeoutHeight?: number;
  memo?: string;
}

export type BroadcastResult =
  | { ok: true; txHash: string; gasLimit: bigint; feeAmount: bigint; sequence: bigint }
  | {
      ok: false;
      stage: 'simulate' | 'check_tx';
      code: number;
      codespace: string;
      log: string;
      /** Set when the tx reached CheckTx. */
      txHash: string | undefined;
    };

export interface TxLookup {
  txHash: string;
  height: number;
  index: number;
  code: number;
  codespace: string;
  log: string;
  gasWanted: bigint;
  gasUsed: bigint;
  events: readonly { type: string; attributes: readonly { key: string; value: string }[] }[];
}

/** A decimal gas price as an exact fraction. */
export interface GasPrice {
  numerator: bigint;
  denominator: bigint;
  denom: string;
}

const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;
/** Cosmos SDK limit for unordered txs is 10 min after the block time; upstream stays at 590 s. */
export const UNORDERED_TIMEOUT_MIN_MS = 120_000;
export const UNORDERED_TIMEOUT_MAX_MS = 590_000;
export const UNORDERED_TIMEOUT_SLACK_MS = 60_000;
export const DEFAULT_BLOCK_TIME_MS = 60_000;
/** Random spread added to each unordered timeout (below 1 ms, far inside the 10 s margin). */
export const UNORDERED_TIMEOUT_SPREAD_NS = 1_000_000n;
/** sdk codespace ErrWrongSequence. */
const SDK_ERR_WRONG_SEQUENCE = 32;

/** `0.000001upokt` → 1/1000000 upokt. */
export function parseGasPrice(text: string): GasPrice {
  const m = /^(\d+)(?:\.(\d+))?([a-zA-Z][a-zA-Z0-9/:._-]{1,127})$/.exec(text.trim());
  if (!m) throw new ChainConfigError('gas_price', `must look like 0.000001upokt, got "${text}"`);
  const frac = m[2] ?? '';
  return {
    numerator: BigInt(m[1]! + frac),
    denominator: 10n ** BigInt(frac.length),
    denom: m[3]!,
  };
}

/** Fee = ceil(gas × price): never underpay the node's minimum-gas-prices. */
export function computeFee(gasLimit: bigint, price: GasPrice): bigint {
  const n = gasLimit * price.numerator;
  return (n + price.denominator - 1n) / price.denominator;
}

/** floor(gas_used × adjustment), as upstream; never below gas_used. */
export function adjustGas(gasUsed: bigint, adjustment: number): bigint {
  const scaled = BigInt(Math.floor(Number(gasUsed) * adjustment));
  return scaled < gasUsed ? gasUsed : scaled;
}

/**
 * Unordered-tx TTL: clamp(blocks_left × block_time − 60 s, 120 s, 590 s); 120 s when no window is
 * known (chain.md §11).
 */
export function computeUnorderedTimeoutMs(
  blocksLeftInWindow: number | undefined,
  blockTimeMs: number = DEFAULT_BLOCK_TIME_MS,
): number {
  if (blocksLeftInWindow === undefined) return UNORDERED_TIMEOUT_MIN_MS;
  const raw = blocksLeftInWindow * blockTimeMs - UNORDERED_TIMEOUT_SLACK_MS;
  return Math.min(UNORDERED_TIMEOUT_MAX_MS, Math.max(UNORDERED_TIMEOUT_MIN_MS, raw));
}

/** A timeout strictly after the signer's previous one: the (signer, timeout) pair is the nonce. */
export function uniqueTimeoutNs(candidateNs: bigint, previousNs: bigint | undefined): bigint {
  return previousNs !== undefined && candidateNs <= previousNs ? previousNs + 1n : candidateNs;
}

/** Upper-case hex SHA-256 of the TxRaw bytes, the hash CometBFT reports. */
export function txHashHex(txRaw: Uint8Array): string {
  return Buffer.from(sha256(txRaw)).toString('hex').toUpperCase();
}

export interface TxBodyParts {
  messages: Any[];
  memo: string;
  unordered: boolean;
  timeoutTimestampNs: bigint | undefined;
  timeoutHeight: bigint;
}

/** TxBody bytes: 1 messages, 2 memo, 3 timeout_height, 4 unordered, 5 timeout_timestamp. */
export function encodeTxBody(parts: TxBodyParts): Uint8Array {
  const ts = parts.timeoutTimestampNs;
  return TxBody.encode(
    TxBody.fromPartial({
      messages: parts.messages,
      memo: parts.memo,
      timeoutHeight: parts.timeoutHeight,
      unordered: parts.unordered,
      timeoutTimestamp:
        ts === undefined ? undefined : { seconds: ts / NS_PER_S, nanos: Number(ts % NS_PER_S) },
    }),
  ).finish();
}

/** AuthInfo bytes for one secp256k1 signer in SIGN_MODE_DIRECT. */
export function encodeAuthInfo(
  pubKey: Uint8Array,
  sequence: bigint,
  gasLimit: bigint,
  fee: { amount: bigint; denom: string },
): Uint8Array {
  const pubkeyAny = encodePubkey(encodeSecp256k1Pubkey(pubKey));
  const amount = fee.amount === 0n ? [] : [{ denom: fee.denom, amount: fee.amount.toString() }];
  return makeAuthInfoBytes(
    [{ pubkey: pubkeyAny, sequence }],
    amount,
    Number(gasLimit),
    undefined,
    undefined,
    SignMode.SIGN_MODE_DIRECT,
  );
}

/** SIGN_MODE_DIRECT: signs SHA-256(SignDoc) with the wallet's key; returns the TxRaw bytes. */
export async function signDirectTx(
  wallet: DirectSecp256k1Wallet,
  address: string,
  doc: { bodyBytes: Uint8Array; authInfoBytes: Uint8Array; chainId: string; accountNumber: bigint },
): Promise<Uint8Array> {
  const signDoc = makeSignDoc(doc.bodyBytes, doc.authInfoBytes, doc.chainId, doc.accountNumber);
  const { signature } = await wallet.signDirect(address, signDoc);
  return TxRaw.encode(
    TxRaw.fromPartial({
      bodyBytes: doc.bodyBytes,
      authInfoBytes: doc.authInfoBytes,
      signatures: [Buffer.from(signature.signature, 'base64')],
    }),
  ).finish();
}

interface SignerState {
  wallet: DirectSecp256k1Wallet;
  address: string;
  pubKey: Uint8Array;
  accountNumber: bigint | undefined;
  /** Next sequence for ordered txs; undefined = read from the chain first. */
  nextSequence: bigint | undefined;
  lastTimeoutNs: bigint | undefined;
  /** Serialises submissions per signer (ordered sequence, unique timeouts). */
  queue: Promise<unknown>;
}

export class TxClient {
  readonly registry: Registry;
  private readonly cfg: Required<TxClientConfig>;
  private readonly gasPrice: GasPrice;
  private readonly log: Logger;
  private readonly signers = new Map<string, SignerState>();

  constructor(
    private readonly deps: TxClientDeps,
    cfg: TxClientConfig = {},
  ) {
    this.cfg = { ...DEFAULT_TX_CLIENT_CONFIG, ...cfg };
    if (!Number.isSafeInteger(this.cfg.gas_limit) || this.cfg.gas_limit < 0) {
      throw new ChainConfigError('gas_limit', `must be an integer ≥ 0, got ${this.cfg.gas_limit}`);
    }
    if (!(this.cfg.gas_adjustment >= 1)) {
      throw new ChainConfigError('gas_adjustment', `must be ≥ 1, got ${this.cfg.gas_adjustment}`);
    }
    if (this.cfg.chain_id === '') throw new ChainConfigError('chain_id', 'must not be empty');
    this.gasPrice = parseGasPrice(this.cfg.gas_price);
    this.registry = createPocketRegistry();
    this.log = deps.log.child({ component: 'tx_client' });
  }

  /** Adds a signing key (raw 32-byte secp256k1 scalar); returns its bech32 address. */
  async addSigner(privateKey: Uint8Array): Promise<string> {
    assertPrivateKey(privateKey);
    const pubKey = publicKeyFromPrivate(privateKey);
    const address = addressFromPublicKey(pubKey);
    if (!this.signers.has(address)) {
      const wallet = await DirectSecp256k1Wallet.fromKey(Uint8Array.from(privateKey), 'pokt');
      this.signers.set(address, {
        wallet,
        address,
        pubKey,
        accountNumber: undefined,
        nextSequence: undefined,
        lastTimeoutNs: undefined,
        queue: Promise.resolve(),
      });
    }
    return address;
  }

  hasSigner(address: string): boolean {
    return this.signers.has(address);
  }

  /** One tx with every claim (all for the same supplier, which signs). */
  createClaims(
    supplier: string,
    claims: readonly pb.proofTx.MsgCreateClaim[],
    opts: SubmitOptions = {},
  ): Promise<BroadcastResult> {
    return this.signAndBroadcast(
      supplier,
      claims.map((value) => ({ typeUrl: MSG_CREATE_CLAIM_TYPE_URL, value })),
      opts,
    );
  }

  /** One tx with every proof (all for the same supplier, which signs). */
  submitProofs(
    supplier: string,
    proofs: readonly pb.proofTx.MsgSubmitProof[],
    opts: SubmitOptions = {},
  ): Promise<BroadcastResult> {
    return this.signAndBroadcast(
      supplier,
      proofs.map((value) => ({ typeUrl: MSG_SUBMIT_PROOF_TYPE_URL, value })),
      opts,
    );
  }

  /** Builds, (simulates,) signs and broadcasts one tx; per-signer submissions run one at a time. */
  signAndBroadcast(
    signerAddress: string,
    messages: readonly EncodeObject[],
    opts: SubmitOptions = {},
  ): Promise<BroadcastResult> {
    const signer = this.signers.get(signerAddress);
    if (signer === undefined) {
      return Promise.reject(new InvalidInputError('signer', `no key loaded for ${signerAddress}`));
    }
    if (messages.length === 0)
      return Promise.reject(new InvalidInputError('messages', 'a tx needs at least one'));
    for (const m of messages) {
      const owner = (m.value as { supplierOperatorAddress?: unknown } | undefined)?.supplierOperatorAddress;
      if (owner !== undefined && owner !== signerAddress) {
        return Promise.reject(
          new InvalidInputError(
            'messages',
            `${m.typeUrl} for ${JSON.stringify(owner)} cannot be signed by ${signerAddress}`,
          ),
        );
      }
    }
    const run = signer.queue.then(() =>
      this.cfg.unordered
        ? this.submitUnordered(signer, messages, opts)
        : this.submitOrdered(signer, messages, opts, true),
    );
    signer.queue = run.catch(() => undefined);
    return run.then((result) => {
      this.deps.metrics?.txSubmissions.inc({
        kind: messageKind(messages),
        result: result.ok ? 'accepted' : `${result.stage}_rejected`,
      });
      return result;
    });
  }

  /** broadcast_tx_sync of already signed bytes (e.g. a re-injection); CheckTx result as a value. */
  async broadcastTxBytes(
    txRaw: Uint8Array,
  ): Promise<
    { ok: true; txHash: string } | { ok: false; txHash: string; code: number; codespace: string; log: string }
  > {
    const txHash = txHashHex(txRaw);
    let res: Awaited<ReturnType<Comet38Client['broadcastTxSync']>>;
    try {
      res = await this.deps.query.withRetry(
        `broadcast ${txHash}`,
        { timeoutMs: this.cfg.rpc_timeout_ms },
        (t) => Comet38Client.create(this.deps.query.transport.bind(t)).broadcastTxSync({ tx: txRaw }),
        'broadcast_tx_sync',
      );
    } catch (err) {
      // A retried broadcast whose first attempt did arrive: these bytes are already queued.
      if (err instanceof ChainRpcError && /already exists in cache/i.test(err.data))
        return { ok: true, txHash };
      throw err;
    }
    const reported = Buffer.from(res.hash).toString('hex').toUpperCase();
    if (reported !== txHash) {
      throw new ChainResponseMalformedError(
        'broadcast_tx_sync',
        `node reports hash ${reported}, bytes hash to ${txHash}`,
      );
    }
    if (res.code === 0) return { ok: true, txHash };
    return { ok: false, txHash, code: res.code, codespace: res.codespace ?? '', log: res.log ?? '' };
  }

  /** The executed tx by hash (needs the node's tx indexer); undefined when the node does not know it. */
  async getTx(txHash: string): Promise<TxLookup | undefined> {
    if (!/^[0-9A-Fa-f]{64}$/.test(txHash))
      throw new InvalidInputError('tx hash', 'must be 64 hex characters');
    try {
      const res = await this.deps.query.withRetry(
        `tx ${txHash}`,
        { timeoutMs: this.cfg.rpc_timeout_ms },
        (t) =>
          Comet38Client.create(this.deps.query.transport.bind(t)).tx({ hash: Buffer.from(txHash, 'hex') }),
        'tx',
      );
      return {
        txHash: Buffer.from(res.hash).toString('hex').toUpperCase(),
        height: res.height,
        index: res.index,
        code: res.result.code,
        codespace: res.result.codespace ?? '',
        log: res.result.log ?? '',
        gasWanted: res.result.gasWanted,
        gasUsed: res.result.gasUsed,
        events: res.result.events.map((e) => ({
          type: e.type,
          attributes: e.attributes.map((a) => ({ key: a.key, value: a.value })),
        })),
      };
    } catch (err) {
      if (err instanceof ChainRpcError && /not found/i.test(err.data)) return undefined;
      throw err;
    }
  }

  // ---- internals ----------------------------------------------------------------------------

  private async submitUnordered(
    signer: SignerState,
    messages: readonly EncodeObject[],
    opts: SubmitOptions,
  ): Promise<BroadcastResult> {
    const accountNumber = await this.accountNumber(signer);
    const anchorNs = await this.latestBlockTimeNs();
    const ttlMs = opts.timeoutMs ?? computeUnorderedTimeoutMs(opts.blocksLeftInWindow, opts.blockTimeMs);
    // A random sub-millisecond spread keeps two processes signing for one key from picking the
    // same (signer, timeout) nonce in the same block; the per-signer check covers this process.
    const spreadNs = BigInt(
      Math.floor((this.deps.random ?? Math.random)() * Number(UNORDERED_TIMEOUT_SPREAD_NS)),
    );
    const timeoutNs = uniqueTimeoutNs(anchorNs + BigInt(ttlMs) * NS_PER_MS + spreadNs, signer.lastTimeoutNs);
    signer.lastTimeoutNs = timeoutNs;
    return this.buildAndSend(signer, messages, opts, {
      accountNumber,
      sequence: 0n,
      unordered: true,
      timeoutNs,
    });
  }

  private async submitOrdered(
    signer: SignerState,
    messages: readonly EncodeObject[],
    opts: SubmitOptions,
    mayResync: boolean,
  ): Promise<BroadcastResult> {
    if (signer.nextSequence === undefined || signer.accountNumber === undefined)
      await this.loadAccount(signer);
    const sequence = signer.nextSequence!;
    const result = await this.buildAndSend(signer, messages, opts, {
      accountNumber: signer.accountNumber!,
      sequence,
      unordered: false,
      timeoutNs: undefined,
    });
    if (result.ok) {
      signer.nextSequence = sequence + 1n;
      return result;
    }
    if (isSequenceMismatch(result) && mayResync) {
      this.log.warn({ supplier: signer.address, code: result.code }, 'account sequence mismatch; resyncing');
      signer.nextSequence = undefined;
      return this.submitOrdered(signer, messages, opts, false);
    }
    return result;
  }

  private async buildAndSend(
    signer: SignerState,
    messages: readonly EncodeObject[],
    opts: SubmitOptions,
    seq: { accountNumber: bigint; sequence: bigint; unordered: boolean; timeoutNs: bigint | undefined },
  ): Promise<BroadcastResult> {
    const bodyBytes = encodeTxBody({
      messages: messages.map((m) => this.registry.encodeAsAny(m)),
      memo: opts.memo ?? this.cfg.memo,
      unordered: seq.unordered,
      timeoutTimestampNs: seq.timeoutNs,
      timeoutHeight: BigInt(opts.timeoutHeight ?? 0),
    });

    let gasLimit = BigInt(this.cfg.gas_limit);
    if (gasLimit === 0n) {
      const simTx = await this.sign(signer, bodyBytes, seq.accountNumber, seq.sequence, 0n, 0n);
      const sim = await this.simulate(simTx);
      if (!sim.ok) return { ...sim, stage: 'simulate', txHash: undefined };
      gasLimit = adjustGas(sim.gasUsed, this.cfg.gas_adjustment);
    }
    const feeAmount = computeFee(gasLimit, this.gasPrice);
    const txRaw = await this.sign(signer, bodyBytes, seq.accountNumber, seq.sequence, gasLimit, feeAmount);
    const res = await this.broadcastTxBytes(txRaw);
    if (!res.ok) {
      // The caller decides what a rejection means (retry, drop, alert); this is only a trace.
      this.log.debug(
        {
          supplier: signer.address,
          tx_hash: res.txHash,
          code: res.code,
          codespace: res.codespace,
          raw_log: res.log,
        },
        'CheckTx rejected the transaction',
      );
      return { ...res, stage: 'check_tx' };
    }
    this.log.debug(
      {
        supplier: signer.address,
        tx_hash: res.txHash,
        gas_limit: gasLimit.toString(),
        msgs: messages.length,
      },
      'transaction accepted into the mempool',
    );
    return { ok: true, txHash: res.txHash, gasLimit, feeAmount, sequence: seq.sequence };
  }

  private sign(
    signer: SignerState,
    bodyBytes: Uint8Array,
    accountNumber: bigint,
    sequence: bigint,
    gasLimit: bigint,
    feeAmount: bigint,
  ): Promise<Uint8Array> {
    return signDirectTx(signer.wallet, signer.address, {
      bodyBytes,
      authInfoBytes: encodeAuthInfo(signer.pubKey, sequence, gasLimit, {
        amount: feeAmount,
        denom: this.gasPrice.denom,
      }),
      chainId: this.cfg.chain_id,
      accountNumber,
    });
  }

  private async simulate(
    txRaw: Uint8Array,
  ): Promise<{ ok: true; gasUsed: bigint } | { ok: false; code: number; codespace: string; log: string }> {
    const data = SimulateRequest.encode(SimulateRequest.fromPartial({ txBytes: txRaw })).finish();
    const res = await this.deps.query.abciQueryRaw('simulate', QUERY_PATHS.txSimulate, data, {
      timeoutMs: this.cfg.rpc_timeout_ms,
    });
    if (res.code !== 0) return { ok: false, code: res.code, codespace: res.codespace, log: res.log };
    let decoded: SimulateResponse;
    try {
      decoded = SimulateResponse.decode(res.value);
    } catch (err) {
      throw new ChainResponseMalformedError('simulate', 'SimulateResponse does not decode', { cause: err });
    }
    const gasUsed = decoded.gasInfo?.gasUsed;
    if (gasUsed === undefined || gasUsed <= 0n)
      throw new ChainResponseMalformedError('simulate', 'no gas_used in reply');
    return { ok: true, gasUsed };
  }

  private async accountNumber(signer: SignerState): Promise<bigint> {
    if (signer.accountNumber === undefined) await this.loadAccount(signer);
    return signer.accountNumber!;
  }

  private async loadAccount(signer: SignerState): Promise<void> {
    const acc = await this.deps.query.getAccount(signer.address);
    signer.accountNumber = acc.accountNumber;
    signer.nextSequence = acc.sequence;
  }

  private async latestBlockTimeNs(): Promise<bigint> {
    const known = this.deps.latestBlockTimeNs?.();
    if (known !== undefined) return known;
    const res = await this.deps.query.withRetry(
      'latest block',
      { timeoutMs: this.cfg.rpc_timeout_ms },
      (t) => Comet38Client.create(this.deps.query.transport.bind(t)).block(),
      'block',
    );
    const time = res.block.header.time;
    return BigInt(time.getTime()) * NS_PER_MS + BigInt(time.nanoseconds ?? 0);
  }
}

function messageKind(messages: readonly EncodeObject[]): string {
  const first = messages[0]?.typeUrl;
  if (messages.every((m) => m.typeUrl === first)) {
    if (first === MSG_CREATE_CLAIM_TYPE_URL) return 'claim';
    if (first === MSG_SUBMIT_PROOF_TYPE_URL) return 'proof';
  }
  return 'other';
}

function isSequenceMismatch(r: BroadcastResult): boolean {
  if (r.ok) return false;
  return (
    (r.codespace === 'sdk' && r.code === SDK_ERR_WRONG_SEQUENCE) ||
    r.log.includes('account sequence mismatch')
  );
}
