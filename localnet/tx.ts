/**
 * Transaction decoding and the ante handler as Cosmos SDK 0.53 runs it for a pocket chain:
 * decode TxRaw → body/auth info, message ValidateBasic, signer checks, unordered-tx rules
 * (sequence 0, timeout_timestamp required, after the latest block time, at most 10 minutes ahead,
 * unique per signer), ordered sequences, fees against the minimum gas price and the payer's
 * balance, and SIGN_MODE_DIRECT secp256k1 signatures over SHA-256(SignDoc).
 */
import { createHash } from 'node:crypto';
import { AuthInfo, SignDoc, TxBody, TxRaw } from 'cosmjs-types/cosmos/tx/v1beta1/tx';
import { SignMode } from 'cosmjs-types/cosmos/tx/signing/v1beta1/signing';
import { PubKey } from 'cosmjs-types/cosmos/crypto/secp256k1/keys';
import { bytesToHex } from '../core/index.js';
import {
  addressFromPublicKey,
  isCompressedPublicKey,
  isValidAddress,
  pb,
  sha256,
} from '../protocol/index.js';
import type { EcBackend } from '../rings/index.js';
import { PROOF, SDK, proofError, sdkError, type ChainError } from './chain-errors.js';

export const MSG_CREATE_CLAIM = '/pocket.proof.MsgCreateClaim';
export const MSG_SUBMIT_PROOF = '/pocket.proof.MsgSubmitProof';
export const SECP256K1_PUBKEY_TYPE = '/cosmos.crypto.secp256k1.PubKey';
/** Cosmos SDK 0.53 default maximum unordered-tx TTL. */
export const MAX_UNORDERED_TTL_MS = 10 * 60 * 1000;
/** Gas the SDK charges for recording an unordered nonce. */
export const UNORDERED_TX_GAS = 2240n;

export type PocketMsg =
  | { typeUrl: typeof MSG_CREATE_CLAIM; value: pb.proofTx.MsgCreateClaim }
  | { typeUrl: typeof MSG_SUBMIT_PROOF; value: pb.proofTx.MsgSubmitProof };

export interface DecodedTx {
  raw: TxRaw;
  body: TxBody;
  authInfo: AuthInfo;
  msgs: PocketMsg[];
  /** Signers in order of first appearance (the msgs' supplier_operator_address). */
  signers: string[];
  /** Uppercase hex SHA-256 of the tx bytes. */
  hash: string;
  bytes: Uint8Array;
  feeUpokt: bigint;
  gasLimit: bigint;
  /** timeout_timestamp in nanoseconds since the epoch, when set. */
  timeoutNs?: bigint;
}

export type Decoded = { ok: true; tx: DecodedTx } | { ok: false; error: ChainError };

export function txHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').toUpperCase();
}

/** SessionHeader.ValidateBasic (x/session/types/session_header.go). */
export function sessionHeaderProblem(h: pb.sessionTypes.SessionHeader | undefined): string | undefined {
  if (h === undefined) return 'session header is nil';
  if (!isValidAddress(h.applicationAddress)) return `invalid application address: ${h.applicationAddress}`;
  if (h.sessionId.length === 0) return 'invalid session ID: empty';
  if (!/^[a-zA-Z0-9_-]{1,42}$/.test(h.serviceId)) return `invalid service ID: ${h.serviceId}`;
  if (h.sessionStartBlockHeight < 1n)
    return `invalid session start block height: ${h.sessionStartBlockHeight}`;
  if (h.sessionEndBlockHeight <= h.sessionStartBlockHeight) {
    return `invalid session end block height: ${h.sessionEndBlockHeight} (start ${h.sessionStartBlockHeight})`;
  }
  return undefined;
}

/** MsgCreateClaim / MsgSubmitProof ValidateBasic, the part CheckTx runs. */
export function validateBasic(msg: PocketMsg): ChainError | undefined {
  const v = msg.value;
  if (!isValidAddress(v.supplierOperatorAddress)) {
    return proofError(
      PROOF.INVALID_ADDRESS,
      `invalid supplier operator address ${v.supplierOperatorAddress}`,
    );
  }
  const headerProblem = sessionHeaderProblem(v.sessionHeader);
  if (headerProblem !== undefined) return proofError(PROOF.INVALID_SESSION_HEADER, headerProblem);
  if (msg.typeUrl === MSG_CREATE_CLAIM) {
    const root = msg.value.rootHash;
    if (root.length !== 48) {
      return proofError(PROOF.INVALID_CLAIM_ROOT_HASH, `root hash must be 48 bytes, got ${root.length}`);
    }
    const view = new DataView(root.buffer, root.byteOffset, root.byteLength);
    if (view.getBigUint64(40, false) === 0n)
      return proofError(PROOF.INVALID_CLAIM_ROOT_HASH, 'root hash has count 0');
    if (view.getBigUint64(32, false) === 0n)
      return proofError(PROOF.INVALID_CLAIM_ROOT_HASH, 'root hash has sum 0');
  } else if (msg.value.proof.length === 0) {
    return proofError(PROOF.INVALID_PROOF, 'closest merkle proof cannot be empty');
  }
  return undefined;
}

/** Decodes tx bytes and runs the stateless checks (decoding, ValidateBasic, signer shape). */
export function decodeTx(bytes: Uint8Array): Decoded {
  const fail = (detail: string): Decoded => ({ ok: false, error: sdkError(SDK.TX_DECODE, detail) });
  let raw: TxRaw;
  let body: TxBody;
  let authInfo: AuthInfo;
  try {
    raw = TxRaw.decode(bytes);
    body = TxBody.decode(raw.bodyBytes);
    authInfo = AuthInfo.decode(raw.authInfoBytes);
  } catch (err) {
    return fail((err as Error).message);
  }
  if (body.messages.length === 0) {
    return { ok: false, error: sdkError(SDK.INVALID_REQUEST, 'must contain at least one message') };
  }
  const msgs: PocketMsg[] = [];
  for (const any of body.messages) {
    try {
      if (any.typeUrl === MSG_CREATE_CLAIM) {
        msgs.push({ typeUrl: MSG_CREATE_CLAIM, value: pb.proofTx.MsgCreateClaim.decode(any.value) });
      } else if (any.typeUrl === MSG_SUBMIT_PROOF) {
        msgs.push({ typeUrl: MSG_SUBMIT_PROOF, value: pb.proofTx.MsgSubmitProof.decode(any.value) });
      } else {
        return fail(`unable to resolve type URL ${any.typeUrl}`);
      }
    } catch (err) {
      return { ok: false, error: sdkError(SDK.UNPACK_ANY, (err as Error).message) };
    }
  }
  for (const m of msgs) {
    const problem = validateBasic(m);
    if (problem !== undefined) return { ok: false, error: problem };
  }
  const signers: string[] = [];
  for (const m of msgs)
    if (!signers.includes(m.value.supplierOperatorAddress)) signers.push(m.value.supplierOperatorAddress);
  if (raw.signatures.length === 0) return { ok: false, error: sdkError(SDK.NO_SIGNATURES) };
  if (raw.signatures.length !== signers.length) {
    return {
      ok: false,
      error: sdkError(
        SDK.UNAUTHORIZED,
        `wrong number of signers; expected ${signers.length}, got ${raw.signatures.length}`,
      ),
    };
  }
  if (authInfo.signerInfos.length !== signers.length) {
    return {
      ok: false,
      error: sdkError(
        SDK.UNAUTHORIZED,
        `invalid number of signer;  expected: ${signers.length}, got ${authInfo.signerInfos.length}`,
      ),
    };
  }
  const fee = authInfo.fee;
  let feeUpokt = 0n;
  for (const coin of fee?.amount ?? []) {
    if (coin.denom !== 'upokt' || !/^\d+$/.test(coin.amount)) {
      return {
        ok: false,
        error: sdkError(
          SDK.INSUFFICIENT_FEE,
          `invalid fee coin ${coin.amount}${coin.denom}; only upokt is accepted`,
        ),
      };
    }
    feeUpokt += BigInt(coin.amount);
  }
  const ts = body.timeoutTimestamp;
  const timeoutNs =
    ts === undefined || (ts.seconds === 0n && ts.nanos === 0)
      ? undefined
      : ts.seconds * 1_000_000_000n + BigInt(ts.nanos);
  return {
    ok: true,
    tx: {
      raw,
      body,
      authInfo,
      msgs,
      signers,
      hash: txHash(bytes),
      bytes,
      feeUpokt,
      gasLimit: fee?.gasLimit ?? 0n,
      ...(timeoutNs !== undefined ? { timeoutNs } : {}),
    },
  };
}

/** The account state the ante handler reads and writes. */
export interface AnteAccount {
  address: string;
  accountNumber: bigint;
  sequence: bigint;
  pubKey?: Uint8Array;
  balanceUpokt: bigint;
}

export interface AnteContext {
  chainId: string;
  /** Latest committed block time in ms (unordered-tx bounds are checked against it). */
  blockTimeMs: number;
  blockHeight: number;
  minGasPriceUpokt: number;
  /** Skip signature verification (Simulate) but still require the key. */
  simulate: boolean;
  account(address: string): AnteAccount | undefined;
  /** True when (signer, timeout ns) has been used by an unordered tx that has not expired. */
  isUnorderedNonceUsed(signer: string, timeoutNs: bigint): boolean;
  backend: EcBackend<unknown>;
}

/** What the ante handler would change if the tx is accepted. */
export interface AnteEffects {
  feePayer: string;
  feeUpokt: bigint;
  /** Ordered txs bump each signer's sequence; unordered ones record a nonce instead. */
  sequenceBumps: string[];
  unorderedNonces: { signer: string; timeoutNs: bigint }[];
  /** Keys learned from signer infos for accounts that had none. */
  newPubKeys: { address: string; pubKey: Uint8Array }[];
  gasUsed: bigint;
}

export type AnteResult =
  { ok: true; effects: AnteEffects } | { ok: false; error: ChainError; gasUsed: bigint };

/** Deterministic gas: a base cost, per byte, per message kind, plus the unordered nonce charge. */
export function gasFor(tx: DecodedTx): bigint {
  let gas = 40_000n + 10n * BigInt(tx.bytes.length);
  for (const m of tx.msgs) gas += m.typeUrl === MSG_CREATE_CLAIM ? 25_000n : 60_000n;
  if (tx.body.unordered) gas += UNORDERED_TX_GAS;
  return gas;
}

function ceilFee(gas: bigint, price: number): bigint {
  if (price === 0) return 0n;
  // price as a rational with 18 decimals.
  const scaled = BigInt(Math.round(price * 1e18));
  return (gas * scaled + 10n ** 18n - 1n) / 10n ** 18n;
}

export function runAnte(tx: DecodedTx, ctx: AnteContext): AnteResult {
  const gasUsed = gasFor(tx);
  const fail = (error: ChainError): AnteResult => ({ ok: false, error, gasUsed });

  // Timeouts and unordered rules (x/auth/ante TxTimeoutHeightDecorator, unordered checks).
  if (tx.body.timeoutHeight !== 0n && BigInt(ctx.blockHeight) > tx.body.timeoutHeight) {
    return fail(
      sdkError(
        SDK.TX_TIMEOUT_HEIGHT,
        `block height: ${ctx.blockHeight}, timeout height: ${tx.body.timeoutHeight}`,
      ),
    );
  }
  const blockNs = BigInt(ctx.blockTimeMs) * 1_000_000n;
  if (tx.body.unordered) {
    if (tx.timeoutNs === undefined) {
      return fail(sdkError(SDK.INVALID_REQUEST, 'unordered transaction must have timeout_timestamp set'));
    }
    if (tx.timeoutNs <= blockNs) {
      return fail(
        sdkError(
          SDK.INVALID_REQUEST,
          'unordered transaction has a timeout_timestamp that has already passed',
        ),
      );
    }
    if (tx.timeoutNs > blockNs + BigInt(MAX_UNORDERED_TTL_MS) * 1_000_000n) {
      return fail(sdkError(SDK.INVALID_REQUEST, 'unordered tx ttl exceeds 10m0s'));
    }
  } else if (tx.timeoutNs !== undefined && tx.timeoutNs <= blockNs) {
    return fail(
      sdkError(SDK.TX_TIMEOUT, `block time: ${ctx.blockTimeMs}ms, timeout timestamp: ${tx.timeoutNs}ns`),
    );
  }

  // Gas and fee.
  if (!ctx.simulate && tx.gasLimit < gasUsed) {
    return fail(
      sdkError(
        SDK.OUT_OF_GAS,
        `out of gas in location: txSize; gasWanted: ${tx.gasLimit}, gasUsed: ${gasUsed}`,
      ),
    );
  }
  const requiredFee = ceilFee(tx.gasLimit, ctx.minGasPriceUpokt);
  if (!ctx.simulate && tx.feeUpokt < requiredFee) {
    return fail(
      sdkError(
        SDK.INSUFFICIENT_FEE,
        `insufficient fees; got: ${tx.feeUpokt}upokt required: ${requiredFee}upokt`,
      ),
    );
  }
  const payer = tx.authInfo.fee?.payer || tx.signers[0]!;
  const payerAcc = ctx.account(payer);
  if (payerAcc === undefined)
    return fail(sdkError(SDK.UNKNOWN_ADDRESS, `fee payer address: ${payer} does not exist`));
  if (payerAcc.balanceUpokt < tx.feeUpokt) {
    return fail(
      sdkError(
        SDK.INSUFFICIENT_FUNDS,
        `spendable balance ${payerAcc.balanceUpokt}upokt is smaller than ${tx.feeUpokt}upokt`,
      ),
    );
  }

  // Signatures.
  const effects: AnteEffects = {
    feePayer: payer,
    feeUpokt: tx.feeUpokt,
    sequenceBumps: [],
    unorderedNonces: [],
    newPubKeys: [],
    gasUsed,
  };
  for (let i = 0; i < tx.signers.length; i++) {
    const signer = tx.signers[i]!;
    const info = tx.authInfo.signerInfos[i]!;
    const acc = ctx.account(signer);
    if (acc === undefined) return fail(sdkError(SDK.UNKNOWN_ADDRESS, `account ${signer} does not exist`));
    let pubKey = acc.pubKey;
    if (info.publicKey !== undefined) {
      if (info.publicKey.typeUrl !== SECP256K1_PUBKEY_TYPE) {
        return fail(sdkError(SDK.INVALID_PUBKEY, `unsupported public key type ${info.publicKey.typeUrl}`));
      }
      const key = PubKey.decode(info.publicKey.value).key;
      if (!isCompressedPublicKey(key))
        return fail(sdkError(SDK.INVALID_PUBKEY, 'invalid secp256k1 public key'));
      if (addressFromPublicKey(key) !== signer) {
        return fail(
          sdkError(
            SDK.INVALID_PUBKEY,
            `pubKey does not match signer address ${signer} with signer index: ${i}`,
          ),
        );
      }
      if (pubKey === undefined) effects.newPubKeys.push({ address: signer, pubKey: key });
      pubKey = key;
    }
    if (pubKey === undefined)
      return fail(sdkError(SDK.INVALID_PUBKEY, `pubKey does not exist for signer ${signer}`));
    if (tx.body.unordered) {
      if (info.sequence !== 0n) {
        return fail(sdkError(SDK.INVALID_REQUEST, 'sequence is not allowed for unordered transactions'));
      }
      if (ctx.isUnorderedNonceUsed(signer, tx.timeoutNs!)) {
        return fail(sdkError(SDK.INVALID_REQUEST, `tx is duplicated for signer ${signer}`));
      }
      effects.unorderedNonces.push({ signer, timeoutNs: tx.timeoutNs! });
    } else {
      if (info.sequence !== acc.sequence) {
        return fail(
          sdkError(
            SDK.WRONG_SEQUENCE,
            `account sequence mismatch, expected ${acc.sequence}, got ${info.sequence}`,
          ),
        );
      }
      effects.sequenceBumps.push(signer);
    }
    const mode = info.modeInfo?.single?.mode;
    if (mode !== SignMode.SIGN_MODE_DIRECT) {
      return fail(
        sdkError(
          SDK.UNAUTHORIZED,
          `unsupported sign mode ${String(mode)}; only SIGN_MODE_DIRECT is accepted`,
        ),
      );
    }
    if (ctx.simulate) continue;
    const signDoc = SignDoc.encode({
      bodyBytes: tx.raw.bodyBytes,
      authInfoBytes: tx.raw.authInfoBytes,
      chainId: ctx.chainId,
      accountNumber: acc.accountNumber,
    }).finish();
    if (!ctx.backend.ecdsaVerify(tx.raw.signatures[i]!, sha256(signDoc), pubKey)) {
      return fail(
        sdkError(
          SDK.UNAUTHORIZED,
          `signature verification failed; please verify account number (${acc.accountNumber}), sequence (${info.sequence}) and chain-id (${ctx.chainId})`,
        ),
      );
    }
  }
  return { ok: true, effects };
}

/** Lowercase hex, for keys of maps. */
export function hexKey(bytes: Uint8Array): string {
  return bytesToHex(bytes);
}
