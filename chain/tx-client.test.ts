import { describe, expect, it } from 'vitest';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { DirectSecp256k1Wallet } from '@cosmjs/proto-signing';
import { AuthInfo, SignDoc, TxBody, TxRaw } from 'cosmjs-types/cosmos/tx/v1beta1/tx';
import { SignMode } from 'cosmjs-types/cosmos/tx/signing/v1beta1/signing';
import { PubKey } from 'cosmjs-types/cosmos/crypto/secp256k1/keys';
import { addressFromPublicKey, pb, publicKeyFromPrivate, sha256 } from '../protocol/index.js';
import {
  MSG_CREATE_CLAIM_TYPE_URL,
  MSG_SUBMIT_PROOF_TYPE_URL,
  adjustGas,
  computeFee,
  computeUnorderedTimeoutMs,
  createPocketRegistry,
  encodeAuthInfo,
  encodeTxBody,
  parseGasPrice,
  signDirectTx,
  txHashHex,
  uniqueTimeoutNs,
} from './tx-client.js';

const PRIV = Uint8Array.from(Buffer.from('0f'.repeat(32), 'hex'));
const PUB = publicKeyFromPrivate(PRIV);
const ADDR = addressFromPublicKey(PUB);

const HEADER: pb.sessionTypes.SessionHeader = {
  applicationAddress: 'pokt1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq',
  serviceId: 'anvil',
  sessionId: 'ab'.repeat(32),
  sessionStartBlockHeight: 11n,
  sessionEndBlockHeight: 20n,
};
const CLAIM = pb.proofTx.MsgCreateClaim.fromPartial({
  supplierOperatorAddress: ADDR,
  sessionHeader: HEADER,
  rootHash: Buffer.alloc(48, 7),
});
const PROOF = pb.proofTx.MsgSubmitProof.fromPartial({
  supplierOperatorAddress: ADDR,
  sessionHeader: HEADER,
  proof: Buffer.from('gob-bytes'),
});

describe('gas and fees', () => {
  it('parses decimal gas prices exactly', () => {
    expect(parseGasPrice('0.000001upokt')).toEqual({
      numerator: 1n,
      denominator: 1_000_000n,
      denom: 'upokt',
    });
    expect(parseGasPrice('12.50upokt')).toEqual({ numerator: 1250n, denominator: 100n, denom: 'upokt' });
    expect(parseGasPrice('3upokt')).toEqual({ numerator: 3n, denominator: 1n, denom: 'upokt' });
    expect(() => parseGasPrice('upokt')).toThrowError(
      expect.objectContaining({ code: 'CHAIN_CONFIG_INVALID' }),
    );
    expect(() => parseGasPrice('-1upokt')).toThrowError(
      expect.objectContaining({ code: 'CHAIN_CONFIG_INVALID' }),
    );
  });

  it('rounds fees up and gas down', () => {
    const price = parseGasPrice('0.00001upokt');
    expect([0n, 1n, 100_000n, 100_001n].map((g) => computeFee(g, price))).toEqual([0n, 1n, 1n, 2n]);
    expect(adjustGas(100_000n, 1.7)).toBe(170_000n);
    expect(adjustGas(3n, 1.7)).toBe(5n);
    expect(adjustGas(10n, 1)).toBe(10n);
  });
});

describe('unordered timeout', () => {
  it('clamps blocks_left × block_time − 60 s into [120 s, 590 s]; 120 s without a window', () => {
    expect(computeUnorderedTimeoutMs(undefined)).toBe(120_000);
    expect(computeUnorderedTimeoutMs(1)).toBe(120_000);
    expect(computeUnorderedTimeoutMs(4)).toBe(180_000);
    expect(computeUnorderedTimeoutMs(10)).toBe(540_000);
    expect(computeUnorderedTimeoutMs(11)).toBe(590_000);
    expect(computeUnorderedTimeoutMs(100, 1_000)).toBe(120_000);
  });

  it('keeps timeouts strictly increasing per signer', () => {
    expect(uniqueTimeoutNs(1000n, undefined)).toBe(1000n);
    expect(uniqueTimeoutNs(1000n, 999n)).toBe(1000n);
    expect(uniqueTimeoutNs(1000n, 1000n)).toBe(1001n);
    expect(uniqueTimeoutNs(1000n, 5000n)).toBe(5001n);
  });
});

describe('tx bytes', () => {
  const registry = createPocketRegistry();

  it('packs the pocket messages as Any with the generated encoders', () => {
    const any = registry.encodeAsAny({ typeUrl: MSG_CREATE_CLAIM_TYPE_URL, value: CLAIM });
    expect(any.typeUrl).toBe('/pocket.proof.MsgCreateClaim');
    expect(Buffer.from(any.value)).toEqual(Buffer.from(pb.proofTx.MsgCreateClaim.encode(CLAIM).finish()));
    const proofAny = registry.encodeAsAny({ typeUrl: MSG_SUBMIT_PROOF_TYPE_URL, value: PROOF });
    expect(Buffer.from(proofAny.value)).toEqual(
      Buffer.from(pb.proofTx.MsgSubmitProof.encode(PROOF).finish()),
    );
  });

  it('encodes an unordered TxBody exactly like cosmjs-types', () => {
    const messages = [
      registry.encodeAsAny({ typeUrl: MSG_CREATE_CLAIM_TYPE_URL, value: CLAIM }),
      registry.encodeAsAny({
        typeUrl: MSG_CREATE_CLAIM_TYPE_URL,
        value: { ...CLAIM, rootHash: Buffer.alloc(48, 9) },
      }),
    ];
    const ns = 1_763_900_000_123_456_789n;
    const ours = encodeTxBody({
      messages,
      memo: 'HA RelayMiner',
      unordered: true,
      timeoutTimestampNs: ns,
      timeoutHeight: 0n,
    });
    const expected = TxBody.encode({
      messages,
      memo: 'HA RelayMiner',
      timeoutHeight: 0n,
      unordered: true,
      timeoutTimestamp: { seconds: 1_763_900_000n, nanos: 123_456_789 },
      extensionOptions: [],
      nonCriticalExtensionOptions: [],
    }).finish();
    expect(Buffer.from(ours)).toEqual(Buffer.from(expected));
    const decoded = TxBody.decode(ours);
    expect({
      unordered: decoded.unordered,
      ts: decoded.timeoutTimestamp,
      n: decoded.messages.length,
    }).toEqual({
      unordered: true,
      ts: { seconds: 1_763_900_000n, nanos: 123_456_789 },
      n: 2,
    });
  });

  it('encodes an ordered TxBody without the unordered fields', () => {
    const messages = [registry.encodeAsAny({ typeUrl: MSG_SUBMIT_PROOF_TYPE_URL, value: PROOF })];
    const ours = encodeTxBody({
      messages,
      memo: '',
      unordered: false,
      timeoutTimestampNs: undefined,
      timeoutHeight: 77n,
    });
    const expected = TxBody.encode(
      TxBody.fromPartial({ messages, memo: '', timeoutHeight: 77n, unordered: false }),
    ).finish();
    expect(Buffer.from(ours)).toEqual(Buffer.from(expected));
  });

  it('encodes AuthInfo with one secp256k1 signer in SIGN_MODE_DIRECT', () => {
    const ours = encodeAuthInfo(PUB, 5n, 170_000n, { amount: 2n, denom: 'upokt' });
    const expected = AuthInfo.encode(
      AuthInfo.fromPartial({
        signerInfos: [
          {
            publicKey: {
              typeUrl: '/cosmos.crypto.secp256k1.PubKey',
              value: PubKey.encode({ key: PUB }).finish(),
            },
            modeInfo: { single: { mode: SignMode.SIGN_MODE_DIRECT } },
            sequence: 5n,
          },
        ],
        fee: { amount: [{ denom: 'upokt', amount: '2' }], gasLimit: 170_000n, payer: '', granter: '' },
      }),
    ).finish();
    expect(Buffer.from(ours)).toEqual(Buffer.from(expected));
  });

  it('signs SHA-256(SignDoc) with a deterministic low-S signature that verifies', async () => {
    const wallet = await DirectSecp256k1Wallet.fromKey(PRIV, 'pokt');
    const messages = [registry.encodeAsAny({ typeUrl: MSG_CREATE_CLAIM_TYPE_URL, value: CLAIM })];
    const bodyBytes = encodeTxBody({
      messages,
      memo: 'HA RelayMiner',
      unordered: true,
      timeoutTimestampNs: 1_000_000_000_000n,
      timeoutHeight: 0n,
    });
    const authInfoBytes = encodeAuthInfo(PUB, 0n, 200_000n, { amount: 1n, denom: 'upokt' });
    const txRaw = await signDirectTx(wallet, ADDR, {
      bodyBytes,
      authInfoBytes,
      chainId: 'pocket',
      accountNumber: 42n,
    });

    const signDocBytes = SignDoc.encode({
      bodyBytes,
      authInfoBytes,
      chainId: 'pocket',
      accountNumber: 42n,
    }).finish();
    const digest = sha256(signDocBytes);
    const expectedSig = secp256k1.sign(digest, PRIV, { prehash: false, lowS: true });
    const expectedRaw = TxRaw.encode({ bodyBytes, authInfoBytes, signatures: [expectedSig] }).finish();
    expect(Buffer.from(txRaw)).toEqual(Buffer.from(expectedRaw));

    const sig = TxRaw.decode(txRaw).signatures[0]!;
    expect(sig.length).toBe(64);
    expect(secp256k1.verify(sig, digest, PUB, { prehash: false, lowS: true })).toBe(true);
    // A different chain id must not verify (wrong chain id fails on chain).
    const otherDigest = sha256(
      SignDoc.encode({ bodyBytes, authInfoBytes, chainId: 'pocket-beta', accountNumber: 42n }).finish(),
    );
    expect(secp256k1.verify(sig, otherDigest, PUB, { prehash: false })).toBe(false);
    expect(txHashHex(txRaw)).toBe(Buffer.from(sha256(txRaw)).toString('hex').toUpperCase());
    expect(txHashHex(txRaw)).toMatch(/^[0-9A-F]{64}$/);
  });
});
