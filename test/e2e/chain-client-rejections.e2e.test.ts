/**
 * Our TxClient against the localnet simulator over real sockets, one test per invalid case of
 * issue 4: each is rejected with the chain's own error, at the stage the chain reports it
 * (simulation, CheckTx, or — with a fixed gas limit, so no simulation — the block result or the
 * proof EndBlocker), and chain state is left unchanged.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { DirectSecp256k1Wallet } from '@cosmjs/proto-signing';
import { TxBody, TxRaw } from 'cosmjs-types/cosmos/tx/v1beta1/tx';
import {
  ChainQueryClient,
  TxClient,
  encodeTxBody,
  signDirectTx,
  txHashHex,
  type BroadcastResult,
  type ChainEvent,
  type TxClientConfig,
} from '../../chain/index.js';
import { bytesToHex } from '../../core/index.js';
import { pb, proofPath, type SessionHeader } from '../../protocol/index.js';
import {
  decodeCompactClosestProof,
  encodeCompactClosestProof,
  type SparseMerkleSumTrie,
} from '../../protocol/smst/index.js';
import { startLocalnet, type Localnet } from '../../localnet/index.js';
import {
  APP,
  SUPPLIER,
  createClaimMsg,
  sessionTrie,
  submitProofMsg,
  testGenesis,
} from './localnet-fixtures.js';

const log = pino({ level: 'silent' });
const CUPR = 2n;
const FIXED_GAS = 400_000;
const GAS_PRICE = '0.00001upokt';
/** Fee of a FIXED_GAS tx at GAS_PRICE: ceil(400000 × 0.00001). */
const FIXED_FEE = 4n;

let chainNet: Localnet | undefined;
let query: ChainQueryClient | undefined;

afterEach(async () => {
  query?.close();
  await chainNet?.stop();
  query = undefined;
  chainNet = undefined;
});

interface Setup {
  net: Localnet;
  q: ChainQueryClient;
  /** gas_limit 0: every tx is simulated first. */
  simulating: TxClient;
  /** Fixed gas limit: no simulation, handler errors surface only in the block. */
  fixed: TxClient;
  header: SessionHeader;
  trie: SparseMerkleSumTrie;
}

async function setup(proof: Record<string, unknown> = {}): Promise<Setup> {
  const net = await startLocalnet(testGenesis({ proof }), { blockTimeMs: 0 });
  chainNet = net;
  const q = new ChainQueryClient(
    { log },
    { query_node_rpc_url: net.url, query_timeout_ms: 3000, retry_initial_delay_ms: 20 },
  );
  query = q;
  const client = async (cfg: TxClientConfig, spread: number): Promise<TxClient> => {
    // Distinct fixed spreads: the two clients never pick the same (signer, timeout) nonce.
    const tx = new TxClient({ log, query: q, random: () => spread }, { chain_id: 'pocket', ...cfg });
    expect(await tx.addSigner(SUPPLIER.privateKey)).toBe(SUPPLIER.address);
    return tx;
  };
  // Session 1 = [1, 4]; claim window [6, 10]; proof window [10, 14].
  const session = await q.getSession(APP.address, 'anvil', 1);
  return {
    net,
    q,
    simulating: await client({ gas_price: GAS_PRICE }, 0.25),
    fixed: await client({ gas_price: GAS_PRICE, gas_limit: FIXED_GAS }, 0.75),
    header: session.header!,
    trie: await sessionTrie(session.header!, 3, CUPR),
  };
}

const claimMsg = (header: SessionHeader, root: Uint8Array): pb.proofTx.MsgCreateClaim =>
  createClaimMsg(header, root).value;
const proofMsg = (header: SessionHeader, proof: Uint8Array): pb.proofTx.MsgSubmitProof =>
  submitProofMsg(header, proof).value;

/** The simulation refusal: the handler error wrapped by x/tx Simulate (gRPC Unknown) and baseapp (sdk/6). */
function simulationLog(handlerLog: string): RegExp {
  const escaped = handlerLog.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(
    `^rpc error: code = Unknown desc = ${escaped} With gas wanted: '0' and gas used: '\\d+' : unknown request$`,
  );
}

/**
 * The tx at `hash` executed in block `height` with `code`: TxClient.getTx and block_results (read
 * through ChainQueryClient) must agree with each other and with the simulator's record.
 */
async function expectExecuted(
  s: Setup,
  hash: string,
  height: number,
  outcome: { code: number; codespace: string; log: string },
): Promise<void> {
  const record = s.net.chain.block(height)!;
  const index = record.txs.findIndex((b) => txHashHex(b) === hash);
  expect(index).toBeGreaterThanOrEqual(0);
  const results = await s.q.getBlockResults(height);
  const events = results.txResults[index]!.events;
  expect(results.txResults[index]).toEqual({ ...outcome, events });
  expect(await s.fixed.getTx(hash)).toEqual({
    txHash: hash,
    height,
    index,
    ...outcome,
    gasWanted: BigInt(FIXED_GAS),
    gasUsed: record.txResults[index]!.gasUsed,
    events: events.map((e) => ({ type: e.type, attributes: e.attributes })),
  });
}

/** CheckTx accepted the fixed-gas tx and block `height` holds exactly its bytes; returns its hash. */
function expectAccepted(s: Setup, sent: BroadcastResult, height: number): string {
  const bytes = s.net.chain.block(height)!.txs;
  expect(bytes).toHaveLength(1);
  const txHash = txHashHex(bytes[0]!);
  expect(sent).toEqual({ ok: true, txHash, gasLimit: BigInt(FIXED_GAS), feeAmount: FIXED_FEE, sequence: 0n });
  return txHash;
}

function attrs(e: ChainEvent | undefined): Record<string, string> {
  return Object.fromEntries((e?.attributes ?? []).map((a) => [a.key, a.value]));
}

/** A valid claim for session 1 included in block 6 (claim window open), then the chain at 9. */
async function claimThenSeedBlock(s: Setup): Promise<void> {
  s.net.chain.advanceTo(5);
  const r = await s.simulating.createClaims(SUPPLIER.address, [claimMsg(s.header, s.trie.root())]);
  expect(r.ok).toBe(true);
  s.net.chain.advanceTo(9); // seed block of the proof path; the proof lands in block 10
  expect(s.net.chain.block(6)!.txResults.map((t) => t.code)).toEqual([0]);
}

async function proofFor(s: Setup, seedHeight: number): Promise<Uint8Array> {
  const seed = await s.q.getBlock(seedHeight);
  return s.trie.proveClosestBytes(proofPath(seed.hash, s.header.sessionId));
}

/** EventProofValidityChecked of block 10 and the claim's status afterwards. */
async function proofVerdict(s: Setup): Promise<{ event: Record<string, string>; status: number }> {
  const event = (await s.q.getBlockResults(10)).finalizeBlockEvents.find(
    (e) => e.type === 'pocket.proof.EventProofValidityChecked',
  );
  const claim = await s.q.getClaim(s.header.sessionId, SUPPLIER.address);
  return { event: attrs(event), status: claim.proofValidationStatus };
}

describe('TxClient against localnet: each invalid case rejected with the chain error', () => {
  it('claim outside its window: simulation refuses with 1121; with fixed gas the block fails it', async () => {
    const s = await setup();
    s.net.chain.advanceTo(2); // session 1 still open: earliest claim commit height is 6
    const handler =
      'failed to execute message; message index: 0: rpc error: code = FailedPrecondition desc = current block height (3) ' +
      "is less than the session's earliest claim commit height (6): claim attempted outside of the session's claim window";
    expect(await s.simulating.createClaims(SUPPLIER.address, [claimMsg(s.header, s.trie.root())])).toEqual({
      ok: false,
      stage: 'simulate',
      code: 6,
      codespace: 'sdk',
      log: expect.stringMatching(simulationLog(handler)),
      txHash: undefined,
    });
    expect(s.net.chain.mempoolSize).toBe(0);

    const sent = await s.fixed.createClaims(SUPPLIER.address, [claimMsg(s.header, s.trie.root())]);
    s.net.advance(1); // block 3
    const hash = expectAccepted(s, sent, 3);
    await expectExecuted(s, hash, 3, {
      code: 1121,
      codespace: 'proof',
      log: handler,
    });
    expect(await s.q.getAllClaimsBySupplier(SUPPLIER.address)).toEqual([]);
  });

  it('47-byte root: refused by ValidateBasic in simulation and in CheckTx with proof 1104', async () => {
    const s = await setup();
    s.net.chain.advanceTo(5); // inside the claim window: only the root size is wrong
    const short = s.trie.root().subarray(0, 47);
    const basic = 'root hash must be 48 bytes, got 47: invalid root hash';
    expect(await s.simulating.createClaims(SUPPLIER.address, [claimMsg(s.header, short)])).toEqual({
      ok: false,
      stage: 'simulate',
      code: 6,
      codespace: 'sdk',
      log: expect.stringMatching(simulationLog(basic)),
      txHash: undefined,
    });
    expect(await s.fixed.createClaims(SUPPLIER.address, [claimMsg(s.header, short)])).toEqual({
      ok: false,
      stage: 'check_tx',
      code: 1104,
      codespace: 'proof',
      log: basic,
      txHash: expect.stringMatching(/^[0-9A-F]{64}$/),
    });
    expect(s.net.chain.mempoolSize).toBe(0);
    s.net.advance(1);
    expect(s.net.chain.block(6)!.txs).toEqual([]);
    expect(await s.q.getAllClaimsBySupplier(SUPPLIER.address)).toEqual([]);
  });

  it('claim for the wrong session: simulation refuses; with fixed gas the block fails it with 1116', async () => {
    const s = await setup();
    s.net.chain.advanceTo(5);
    const wrong = { ...s.header, sessionId: 'ab'.repeat(32) };
    const handler =
      'failed to execute message; message index: 0: rpc error: code = InvalidArgument desc = session ID does not match ' +
      `onchain session ID; expected "${s.header.sessionId}", got "${wrong.sessionId}": invalid session ID`;
    expect(await s.simulating.createClaims(SUPPLIER.address, [claimMsg(wrong, s.trie.root())])).toEqual({
      ok: false,
      stage: 'simulate',
      code: 6,
      codespace: 'sdk',
      log: expect.stringMatching(simulationLog(handler)),
      txHash: undefined,
    });
    expect(s.net.chain.mempoolSize).toBe(0);

    const sent = await s.fixed.createClaims(SUPPLIER.address, [claimMsg(wrong, s.trie.root())]);
    s.net.advance(1);
    const hash = expectAccepted(s, sent, 6);
    await expectExecuted(s, hash, 6, { code: 1116, codespace: 'proof', log: handler });
    expect(await s.q.getAllClaimsBySupplier(SUPPLIER.address)).toEqual([]);
  });

  it('proof with a tampered side-node byte: included, then marked INVALID by the proof EndBlocker', async () => {
    const s = await setup();
    await claimThenSeedBlock(s);
    const compact = decodeCompactClosestProof(await proofFor(s, 9));
    const inner = compact.closestProof!;
    const side = new Uint8Array(inner.sideNodes[0]!);
    side[5]! ^= 0x01;
    const tampered = encodeCompactClosestProof({
      ...compact,
      closestProof: { ...inner, sideNodes: [side, ...inner.sideNodes.slice(1)] },
    });
    const sent = await s.fixed.submitProofs(SUPPLIER.address, [proofMsg(s.header, tampered)]);
    s.net.advance(1); // block 10
    const hash = expectAccepted(s, sent, 10);
    expect((await s.fixed.getTx(hash))?.code).toBe(0);
    expect(await proofVerdict(s)).toEqual({
      event: {
        block_height: '"10"',
        failure_reason: '"invalid closest merkle proof: invalid proof"',
        service_id: '"anvil"',
        application_address: `"${APP.address}"`,
        session_end_block_height: '"4"',
        claim_proof_status_int: String(pb.proofTypes.ClaimProofStatus.INVALID),
        supplier_operator_address: `"${SUPPLIER.address}"`,
      },
      status: pb.proofTypes.ClaimProofStatus.INVALID,
    });
  });

  it('proof for the wrong path (seed block 8, not 9): included, then marked INVALID', async () => {
    const s = await setup();
    await claimThenSeedBlock(s);
    const sent = await s.simulating.submitProofs(SUPPLIER.address, [
      proofMsg(s.header, await proofFor(s, 8)),
    ]);
    expect(sent).toEqual({
      ok: true,
      txHash: expect.stringMatching(/^[0-9A-F]{64}$/),
      gasLimit: expect.any(BigInt),
      feeAmount: expect.any(BigInt),
      sequence: 0n,
    });
    s.net.advance(1);
    expect(s.net.chain.block(10)!.txs.map(txHashHex)).toEqual([sent.ok ? sent.txHash : '']);
    const got = proofPath((await s.q.getBlock(8)).hash, s.header.sessionId);
    const expected = proofPath((await s.q.getBlock(9)).hash, s.header.sessionId);
    expect(await proofVerdict(s)).toEqual({
      event: {
        block_height: '"10"',
        failure_reason: JSON.stringify(
          `the path of the proof provided (${bytesToHex(got)}) does not match one expected by the onchain protocol (${bytesToHex(expected)}): invalid proof`,
        ),
        service_id: '"anvil"',
        application_address: `"${APP.address}"`,
        session_end_block_height: '"4"',
        claim_proof_status_int: String(pb.proofTypes.ClaimProofStatus.INVALID),
        supplier_operator_address: `"${SUPPLIER.address}"`,
      },
      status: pb.proofTypes.ClaimProofStatus.INVALID,
    });
  });

  it('proof not required: simulation refuses; with fixed gas the block fails it with 1129', async () => {
    const s = await setup({ proof_request_probability: 0, proof_requirement_threshold: '1000000000upokt' });
    await claimThenSeedBlock(s);
    const proof = await proofFor(s, 9);
    const handler =
      'failed to execute message; message index: 0: rpc error: code = FailedPrecondition desc = proof not required';
    expect(await s.simulating.submitProofs(SUPPLIER.address, [proofMsg(s.header, proof)])).toEqual({
      ok: false,
      stage: 'simulate',
      code: 6,
      codespace: 'sdk',
      log: expect.stringMatching(simulationLog(handler)),
      txHash: undefined,
    });
    expect(s.net.chain.mempoolSize).toBe(0);

    const sent = await s.fixed.submitProofs(SUPPLIER.address, [proofMsg(s.header, proof)]);
    s.net.advance(1);
    const hash = expectAccepted(s, sent, 10);
    await expectExecuted(s, hash, 10, { code: 1129, codespace: 'proof', log: handler });
    const claim = await s.q.getClaim(s.header.sessionId, SUPPLIER.address);
    expect(claim.proofValidationStatus).toBe(pb.proofTypes.ClaimProofStatus.PENDING_VALIDATION);
    await expect(s.q.getProof(s.header.sessionId, SUPPLIER.address)).rejects.toMatchObject({
      code: 'CHAIN_NOT_FOUND',
    });
  });

  it('duplicate unordered tx: same bytes and a new tx on the same (signer, timeout) are refused', async () => {
    const s = await setup();
    s.net.chain.advanceTo(5);
    const first = await s.simulating.createClaims(SUPPLIER.address, [claimMsg(s.header, s.trie.root())]);
    expect(first.ok).toBe(true);
    const hash = first.ok ? first.txHash : '';
    s.net.advance(1); // block 6 includes it
    const bytes = s.net.chain.block(6)!.txs[0]!;
    expect(txHashHex(bytes)).toBe(hash);
    expect(s.net.chain.block(6)!.txResults.map((r) => r.code)).toEqual([0]);
    const duplicated = `tx is duplicated for signer ${SUPPLIER.address}: invalid request`;

    // 1. The exact bytes of the included tx: the ante handler finds the (signer, timeout) nonce.
    expect(await s.simulating.broadcastTxBytes(bytes)).toEqual({
      ok: false,
      txHash: hash,
      code: 18,
      codespace: 'sdk',
      log: duplicated,
    });

    // 2. A different tx (new memo) signed for the same signer and timeout_timestamp.
    const raw = TxRaw.decode(bytes);
    const body = TxBody.decode(raw.bodyBytes);
    const ts = body.timeoutTimestamp!;
    const bodyBytes = encodeTxBody({
      messages: body.messages,
      memo: 'same nonce, other memo',
      unordered: true,
      timeoutTimestampNs: ts.seconds * 1_000_000_000n + BigInt(ts.nanos),
      timeoutHeight: 0n,
    });
    const wallet = await DirectSecp256k1Wallet.fromKey(SUPPLIER.privateKey, 'pokt');
    const account = await s.q.getAccount(SUPPLIER.address);
    const other = await signDirectTx(wallet, SUPPLIER.address, {
      bodyBytes,
      authInfoBytes: raw.authInfoBytes,
      chainId: 'pocket',
      accountNumber: account.accountNumber,
    });
    expect(txHashHex(other)).not.toBe(hash);
    expect(await s.simulating.broadcastTxBytes(other)).toEqual({
      ok: false,
      txHash: txHashHex(other),
      code: 18,
      codespace: 'sdk',
      log: duplicated,
    });

    expect(s.net.chain.mempoolSize).toBe(0);
    s.net.advance(1);
    expect(s.net.chain.block(7)!.txs).toEqual([]);
    expect(await s.q.getAllClaimsBySupplier(SUPPLIER.address)).toEqual([
      pb.proofTypes.Claim.fromPartial({
        supplierOperatorAddress: SUPPLIER.address,
        sessionHeader: s.header,
        rootHash: Buffer.from(s.trie.root()),
        proofValidationStatus: pb.proofTypes.ClaimProofStatus.PENDING_VALIDATION,
      }),
    ]);
  });
});
