/**
 * Fixtures for the localnet e2e tests: deterministic test keys, a genesis with short sessions,
 * relays signed like a gateway and a relayer would sign them, an SMST of those relays, and cosmjs
 * transaction building (DirectSecp256k1Wallet, SIGN_MODE_DIRECT, unordered).
 */
import {
  DirectSecp256k1Wallet,
  Registry,
  makeAuthInfoBytes,
  makeSignDoc,
  encodePubkey,
  type GeneratedType,
} from '@cosmjs/proto-signing';
import { encodeSecp256k1Pubkey } from '@cosmjs/amino';
import { fromBase64 } from '@cosmjs/encoding';
import { TxBody, TxRaw } from 'cosmjs-types/cosmos/tx/v1beta1/tx';
import { SignMode } from 'cosmjs-types/cosmos/tx/signing/v1beta1/signing';
import { bytesToHex } from '../../core/index.js';
import {
  addressFromPublicKey,
  mineRelay,
  pb,
  privateKeyFromSecret,
  publicKeyFromPrivate,
  relayRequestSignableHash,
  relayResponseSignableHash,
  supplierSignatureDigest,
  withPayloadHash,
  withSupplierSignature,
  type SessionHeader,
} from '../../protocol/index.js';
import { InMemoryMapStore, SparseMerkleSumTrie } from '../../protocol/smst/index.js';
import { expectedRingAddresses, selectBackend, signRingSignature } from '../../rings/index.js';
import pino from 'pino';
import { ChainQueryClient } from '../../chain/index.js';
import {
  MSG_CREATE_CLAIM,
  MSG_SUBMIT_PROOF,
  parseGenesis,
  startLocalnet,
  type Genesis,
  type Localnet,
} from '../../localnet/index.js';

export interface TestKey {
  name: string;
  privateKey: Uint8Array;
  publicKey: Uint8Array;
  address: string;
}

export function testKey(name: string): TestKey {
  const privateKey = privateKeyFromSecret(new TextEncoder().encode(`localnet/${name}`));
  const publicKey = publicKeyFromPrivate(privateKey);
  return { name, privateKey, publicKey, address: addressFromPublicKey(publicKey) };
}

export const APP = testKey('application-1');
export const GATEWAY = testKey('gateway-1');
export const SUPPLIER = testKey('supplier-1');
export const OWNER = testKey('supplier-1-owner');
export const SERVICE_OWNER = testKey('service-owner');
export const DAO = testKey('dao');

export const BALANCE = 1_000_000_000n;
export const APP_STAKE = 100_000_000n;

/** N = 4, claim window [end+2, end+6], proof window [end+6, end+10]. */
export function testGenesis(overrides: { proof?: Record<string, unknown> } = {}): Genesis {
  return parseGenesis({
    chain_id: 'pocket',
    initial_height: 1,
    params: {
      shared: {
        num_blocks_per_session: 4,
        grace_period_end_offset_blocks: 1,
        claim_window_open_offset_blocks: 1,
        claim_window_close_offset_blocks: 4,
        proof_window_open_offset_blocks: 0,
        proof_window_close_offset_blocks: 4,
      },
      proof: {
        proof_request_probability: 1,
        proof_requirement_threshold: '20000000upokt',
        proof_missing_penalty: '1000upokt',
        proof_submission_fee: '1upokt',
        ...overrides.proof,
      },
      tokenomics: { dao_reward_address: DAO.address },
    },
    accounts: [
      { address: APP.address, pub_key: bytesToHex(APP.publicKey), balance: BALANCE },
      { address: GATEWAY.address, pub_key: bytesToHex(GATEWAY.publicKey), balance: BALANCE },
      { address: SUPPLIER.address, pub_key: bytesToHex(SUPPLIER.publicKey), balance: BALANCE },
      { address: OWNER.address, balance: 0 },
      { address: SERVICE_OWNER.address, balance: 0 },
    ],
    services: [
      { id: 'anvil', name: 'Anvil', compute_units_per_relay: 2, owner_address: SERVICE_OWNER.address },
    ],
    applications: [
      {
        address: APP.address,
        stake: APP_STAKE,
        service_ids: ['anvil'],
        delegatee_gateway_addresses: [GATEWAY.address],
      },
    ],
    gateways: [{ address: GATEWAY.address, stake: 100_000_000 }],
    suppliers: [
      {
        operator_address: SUPPLIER.address,
        owner_address: OWNER.address,
        stake: 100_000_000,
        services: [
          { service_id: 'anvil', endpoints: [{ url: 'http://127.0.0.1:9/', rpc_type: 'JSON_RPC' }] },
        ],
      },
    ],
  });
}

const backend = selectBackend('native');

/** A relay signed by the gateway (ring [app, gateway]) and the supplier, as mined bytes. */
export interface RelaySigners {
  /** Key that signs the response (default: the supplier operator). */
  supplierKey?: TestKey;
  /** Extra ring member to sign with instead of the gateway (outside the expected ring). */
  outsiderRingKey?: TestKey;
}

export function signedRelay(
  header: SessionHeader,
  n: number,
  signers: RelaySigners = {},
): { bytes: Uint8Array; hash: Uint8Array } {
  const ringAddresses = expectedRingAddresses(
    APP.address,
    { delegateeGatewayAddresses: [GATEWAY.address], pendingUndelegations: new Map() },
    header.sessionEndBlockHeight,
  );
  const member = signers.outsiderRingKey ?? GATEWAY;
  const keys = ringAddresses.map((a) => (a === APP.address ? APP.publicKey : member.publicKey));
  const signer = ringAddresses.indexOf(GATEWAY.address);
  const payload = Buffer.from(`{"jsonrpc":"2.0","id":${n},"method":"eth_blockNumber"}`);
  const unsigned: pb.serviceRelay.RelayRequest = {
    meta: { sessionHeader: header, signature: Buffer.alloc(0), supplierOperatorAddress: SUPPLIER.address },
    payload,
  };
  const sig = signRingSignature(backend, keys, signer, member.privateKey, relayRequestSignableHash(unsigned));
  const req = { ...unsigned, meta: { ...unsigned.meta!, signature: Buffer.from(sig) } };
  const res = withPayloadHash({
    meta: { sessionHeader: header, supplierOperatorSignature: Buffer.alloc(0) },
    payload: Buffer.from(`{"jsonrpc":"2.0","id":${n},"result":"0x10"}`),
    relayMinerError: undefined,
    payloadHash: Buffer.alloc(0),
  });
  const supplierSig = backend.ecdsaSign(
    supplierSignatureDigest(relayResponseSignableHash(res)),
    (signers.supplierKey ?? SUPPLIER).privateKey,
  );
  return mineRelay(req, withSupplierSignature(res, supplierSig));
}

/** The session trie of `count` relays, each weighted with `cupr`. */
export async function sessionTrie(
  header: SessionHeader,
  count: number,
  cupr: bigint,
  signers: RelaySigners = {},
): Promise<SparseMerkleSumTrie> {
  const trie = SparseMerkleSumTrie.create(new InMemoryMapStore());
  for (let i = 0; i < count; i++) {
    const r = signedRelay(header, i, signers);
    await trie.update(r.hash, r.bytes, cupr);
  }
  await trie.commit();
  return trie;
}

const asGenerated = (t: unknown): GeneratedType => t as GeneratedType;

export const registry = new Registry([
  [MSG_CREATE_CLAIM, asGenerated(pb.proofTx.MsgCreateClaim)],
  [MSG_SUBMIT_PROOF, asGenerated(pb.proofTx.MsgSubmitProof)],
]);

export interface TxOptions {
  key?: TestKey;
  accountNumber: bigint;
  chainId?: string;
  /** Unordered with this timeout (ms since epoch); ordered with `sequence` otherwise. */
  timeoutMs?: number;
  timeoutNanos?: number;
  sequence?: bigint;
  memo?: string;
  feeUpokt?: bigint;
  gasLimit?: bigint;
}

/** Builds and signs a tx the way a cosmjs client does (DirectSecp256k1Wallet, SIGN_MODE_DIRECT). */
export async function buildTx(
  msgs: { typeUrl: string; value: unknown }[],
  opts: TxOptions,
): Promise<Uint8Array> {
  const key = opts.key ?? SUPPLIER;
  const wallet = await DirectSecp256k1Wallet.fromKey(key.privateKey, 'pokt');
  const [account] = await wallet.getAccounts();
  const unordered = opts.timeoutMs !== undefined;
  const body: TxBody = {
    messages: msgs.map((m) => registry.encodeAsAny(m)),
    memo: opts.memo ?? 'HA RelayMiner',
    timeoutHeight: 0n,
    unordered,
    ...(unordered
      ? {
          timeoutTimestamp: {
            seconds: BigInt(Math.floor(opts.timeoutMs! / 1000)),
            nanos: (opts.timeoutMs! % 1000) * 1_000_000 + (opts.timeoutNanos ?? 0),
          },
        }
      : {}),
    extensionOptions: [],
    nonCriticalExtensionOptions: [],
  };
  const bodyBytes = TxBody.encode(body).finish();
  const authInfoBytes = makeAuthInfoBytes(
    [
      {
        pubkey: encodePubkey(encodeSecp256k1Pubkey(account!.pubkey)),
        sequence: unordered ? 0n : (opts.sequence ?? 0n),
      },
    ],
    [{ denom: 'upokt', amount: String(opts.feeUpokt ?? 10n) }],
    Number(opts.gasLimit ?? 1_000_000n),
    undefined,
    undefined,
    SignMode.SIGN_MODE_DIRECT,
  );
  const signDoc = makeSignDoc(bodyBytes, authInfoBytes, opts.chainId ?? 'pocket', Number(opts.accountNumber));
  const { signature } = await wallet.signDirect(account!.address, signDoc);
  return TxRaw.encode({ bodyBytes, authInfoBytes, signatures: [fromBase64(signature.signature)] }).finish();
}

export function createClaimMsg(header: SessionHeader, root: Uint8Array) {
  return {
    typeUrl: MSG_CREATE_CLAIM,
    value: pb.proofTx.MsgCreateClaim.fromPartial({
      supplierOperatorAddress: SUPPLIER.address,
      sessionHeader: header,
      rootHash: Buffer.from(root),
    }),
  };
}

export function submitProofMsg(header: SessionHeader, proof: Uint8Array) {
  return {
    typeUrl: MSG_SUBMIT_PROOF,
    value: pb.proofTx.MsgSubmitProof.fromPartial({
      supplierOperatorAddress: SUPPLIER.address,
      sessionHeader: header,
      proof: Buffer.from(proof),
    }),
  };
}

export interface ChainWithClient {
  net: Localnet;
  /** Our query client on the simulator: 3 s deadline, no retries, so failures surface at once. */
  query: ChainQueryClient;
  /** Closes the client and stops the simulator. */
  stop(): Promise<void>;
}

/** A manual-block simulator advanced to `height`, with a query client on it. */
export async function startChainWithClient(genesis: Genesis, height: number): Promise<ChainWithClient> {
  const net = await startLocalnet(genesis, { blockTimeMs: 0 });
  net.chain.advanceTo(height);
  const query = new ChainQueryClient(
    { log: pino({ level: 'silent' }) },
    { query_node_rpc_url: net.url, query_timeout_ms: 3000, max_retries: 0 },
  );
  return {
    net,
    query,
    stop: async () => {
      query.close();
      await net.stop();
    },
  };
}
