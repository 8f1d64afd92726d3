/**
 * The simulator over real sockets: cosmjs Comet38Client over HTTP JSON-RPC and websocket, txs
 * built and signed with cosmjs, a claim and a proof submitted in their windows and settled, and
 * each invalid case rejected with the chain's error.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Comet38Client, WebsocketClient } from '@cosmjs/tendermint-rpc';
import { toHex } from '@cosmjs/encoding';
import { bytesToHex } from '../../core/index.js';
import { pb, proofPath, type SessionHeader } from '../../protocol/index.js';
import {
  decodeCompactClosestProof,
  encodeCompactClosestProof,
  type SparseMerkleSumTrie,
} from '../../protocol/smst/index.js';
import { startLocalnet, attributeValue, type Localnet } from '../../localnet/index.js';
import {
  APP,
  APP_STAKE,
  BALANCE,
  DAO,
  OWNER,
  SERVICE_OWNER,
  SUPPLIER,
  buildTx,
  createClaimMsg,
  sessionTrie,
  submitProofMsg,
  testGenesis,
} from './localnet-fixtures.js';

const CUPR = 2n;
const SUPPLIER_ACCOUNT_NUMBER = 2n;

let net: Localnet;
let client: Comet38Client;

async function start(proof: Record<string, unknown> = {}): Promise<void> {
  net = await startLocalnet(testGenesis({ proof }), { blockTimeMs: 0 });
  client = await Comet38Client.connect(net.url);
}

afterEach(async () => {
  client?.disconnect();
  await net?.stop();
});

async function query<T>(path: string, data: Uint8Array, decode: (b: Uint8Array) => T): Promise<T> {
  const r = await client.abciQuery({ path, data });
  expect({ code: r.code, log: r.log }).toEqual({ code: 0, log: '' });
  return decode(r.value);
}

async function getSession(height: number): Promise<pb.sessionTypes.Session> {
  const res = await query(
    '/pocket.session.Query/GetSession',
    pb.sessionQuery.QueryGetSessionRequest.encode({
      applicationAddress: APP.address,
      serviceId: 'anvil',
      blockHeight: BigInt(height),
    }).finish(),
    (b) => pb.sessionQuery.QueryGetSessionResponse.decode(b),
  );
  return res.session!;
}

async function balance(address: string): Promise<bigint> {
  const { QueryBalanceRequest, QueryBalanceResponse } =
    await import('cosmjs-types/cosmos/bank/v1beta1/query');
  const res = await query(
    '/cosmos.bank.v1beta1.Query/Balance',
    QueryBalanceRequest.encode({ address, denom: 'upokt' }).finish(),
    (b) => QueryBalanceResponse.decode(b),
  );
  return BigInt(res.balance!.amount);
}

function latestTimeMs(): number {
  return net.chain.latestBlock()!.timeMs;
}

let nonce = 0;
/** Unordered tx options with a unique timeout 60 s after the latest block time. */
function unordered(extra: Partial<Parameters<typeof buildTx>[1]> = {}) {
  nonce++;
  return { accountNumber: SUPPLIER_ACCOUNT_NUMBER, timeoutMs: latestTimeMs() + 60_000 + nonce, ...extra };
}

async function broadcast(tx: Uint8Array) {
  const r = await client.broadcastTxSync({ tx });
  return { code: r.code, codespace: r.codespace ?? '', log: r.log ?? '', hash: toHex(r.hash).toUpperCase() };
}

async function txResult(hash: string) {
  const r = await client.tx({ hash: Buffer.from(hash, 'hex') });
  return {
    height: r.height,
    code: r.result.code,
    codespace: r.result.codespace ?? '',
    log: r.result.log ?? '',
    events: r.result.events,
  };
}

/** Session 1 ([1, 4]) with a trie of 3 relays; claim window [6, 10], proof window [10, 14]. */
async function sessionOneWithTrie(): Promise<{ header: SessionHeader; trie: SparseMerkleSumTrie }> {
  const session = await getSession(1);
  return { header: session.header!, trie: await sessionTrie(session.header!, 3, CUPR) };
}

async function claimInWindow(header: SessionHeader, root: Uint8Array): Promise<void> {
  net.chain.advanceTo(5);
  const sent = await broadcast(await buildTx([createClaimMsg(header, root)], unordered()));
  expect(sent.code).toBe(0);
  net.advance(1);
  expect((await txResult(sent.hash)).code).toBe(0);
}

async function proofBytesFor(
  trie: SparseMerkleSumTrie,
  header: SessionHeader,
  seedHeight: number,
): Promise<Uint8Array> {
  const block = await client.block(seedHeight);
  return trie.proveClosestBytes(proofPath(block.blockId.hash, header.sessionId));
}

describe('localnet over HTTP JSON-RPC and websocket (cosmjs Comet38Client)', () => {
  beforeEach(async () => start());

  it('serves status, block and session queries that cosmjs decodes', async () => {
    net.advance(2);
    const status = await client.status();
    expect({
      network: status.nodeInfo.network,
      height: status.syncInfo.latestBlockHeight,
      listen: status.nodeInfo.listenAddr,
    }).toEqual({
      network: 'pocket',
      height: 3,
      listen: net.url.replace('http://', 'tcp://'),
    });
    const info = await client.abciInfo();
    expect({ data: info.data, height: info.lastBlockHeight }).toEqual({ data: 'pocket', height: 3 });
    const block = await client.block(3);
    expect(bytesToHex(block.blockId.hash)).toBe(bytesToHex(net.chain.block(3)!.hash));
    expect(bytesToHex(block.block.header.lastBlockId!.hash)).toBe(bytesToHex(net.chain.block(2)!.hash));
    const session = await getSession(2);
    expect(session.header).toEqual({
      applicationAddress: APP.address,
      serviceId: 'anvil',
      sessionId: session.sessionId,
      sessionStartBlockHeight: 1n,
      sessionEndBlockHeight: 4n,
    });
    expect({
      number: session.sessionNumber,
      n: session.numBlocksPerSession,
      suppliers: session.suppliers.map((s) => s.operatorAddress),
    }).toEqual({
      number: 1n,
      n: 4n,
      suppliers: [SUPPLIER.address],
    });
    const ahead = await client.abciQuery({
      path: '/pocket.session.Query/GetSession',
      data: pb.sessionQuery.QueryGetSessionRequest.encode({
        applicationAddress: APP.address,
        serviceId: 'anvil',
        blockHeight: 99n,
      }).finish(),
    });
    expect({ code: ahead.code, codespace: ahead.codespace, log: ahead.log }).toEqual({
      code: 6,
      codespace: 'sdk',
      log:
        'rpc error: code = Internal desc = requested height 99 is higher than the current height 3: ' +
        'invalid block height for session: unknown request',
    });
    const missingClaim = await client.abciQuery({
      path: '/pocket.proof.Query/Claim',
      data: pb.proofQuery.QueryGetClaimRequest.encode({
        sessionId: 'abc',
        supplierOperatorAddress: SUPPLIER.address,
      }).finish(),
    });
    expect({ code: missingClaim.code, codespace: missingClaim.codespace, log: missingClaim.log }).toEqual({
      code: 22,
      codespace: 'sdk',
      log: `rpc error: code = NotFound desc = session ID "abc" and supplier "${SUPPLIER.address}": claim not found: key not found`,
    });
  });

  it('streams NewBlockHeader and Tx events over the websocket', async () => {
    const ws = Comet38Client.create(new WebsocketClient(net.url.replace('http', 'ws')));
    try {
      const headers: number[] = [];
      const sub = ws.subscribeNewBlockHeader().subscribe({ next: (h) => headers.push(h.height) });
      const txs: { height: number; code: number }[] = [];
      const txSub = ws.subscribeTx(`tm.event='Tx' AND message.sender='${SUPPLIER.address}'`).subscribe({
        next: (t) => txs.push({ height: t.height, code: t.result.code }),
      });
      await new Promise((r) => setTimeout(r, 100));
      const { header, trie } = await sessionOneWithTrie();
      net.chain.advanceTo(5);
      await broadcast(await buildTx([createClaimMsg(header, trie.root())], unordered()));
      net.advance(2);
      const deadline = Date.now() + 5_000;
      while ((headers.length < 2 || txs.length < 1) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      sub.unsubscribe();
      txSub.unsubscribe();
      expect(headers).toEqual([2, 3, 4, 5, 6, 7]);
      expect(txs).toEqual([{ height: 6, code: 0 }]);
    } finally {
      ws.disconnect();
    }
  });

  it('accepts a claim and a proof in their windows and settles the claim at proof window close', async () => {
    const { header, trie } = await sessionOneWithTrie();
    const root = trie.root();
    const feeUpokt = 10n;

    // Claim lands in block 6 = claim window open.
    net.chain.advanceTo(5);
    const claimTx = await broadcast(await buildTx([createClaimMsg(header, root)], unordered({ feeUpokt })));
    expect(claimTx).toEqual({ code: 0, codespace: '', log: '', hash: claimTx.hash });
    net.advance(1);
    const claimRes = await txResult(claimTx.hash);
    expect({ height: claimRes.height, code: claimRes.code }).toEqual({ height: 6, code: 0 });
    const created = claimRes.events.find((e) => e.type === 'pocket.proof.EventClaimCreated')!;
    expect(Object.fromEntries(created.attributes.map((a) => [a.key, a.value]))).toEqual({
      num_relays: '"3"',
      num_claimed_compute_units: '"6"',
      num_estimated_compute_units: '"6"',
      claimed_upokt: '"252upokt"',
      service_id: '"anvil"',
      application_address: `"${APP.address}"`,
      session_end_block_height: '"4"',
      claim_proof_status_int: '0',
      supplier_operator_address: `"${SUPPLIER.address}"`,
      num_estimated_relays: '"3"',
      msg_index: '0',
    });

    // Proof: seed block = proof window open − 1 = 9; lands in block 10.
    net.chain.advanceTo(9);
    const proof = await proofBytesFor(trie, header, 9);
    const proofTx = await broadcast(await buildTx([submitProofMsg(header, proof)], unordered({ feeUpokt })));
    expect(proofTx.code).toBe(0);
    net.advance(1);
    expect((await txResult(proofTx.hash)).code).toBe(0);
    const validity = (await client.blockResults(10)).finalizeBlockEvents.find(
      (e) => e.type === 'pocket.proof.EventProofValidityChecked',
    )!;
    expect(Object.fromEntries(validity.attributes.map((a) => [a.key, a.value]))).toEqual({
      block_height: '"10"',
      failure_reason: '""',
      service_id: '"anvil"',
      application_address: `"${APP.address}"`,
      session_end_block_height: '"4"',
      claim_proof_status_int: '1',
      supplier_operator_address: `"${SUPPLIER.address}"`,
    });

    // Settlement in block 14 (proof window close).
    net.chain.advanceTo(13);
    expect(await balance(OWNER.address)).toBe(0n);
    net.advance(1);
    const settled = (await client.blockResults(14)).finalizeBlockEvents.find(
      (e) => e.type === 'pocket.tokenomics.EventClaimSettled',
    )!;
    expect(attributeValue({ type: settled.type, attributes: [...settled.attributes] }, 'settled_upokt')).toBe(
      '252upokt',
    );
    expect(
      attributeValue({ type: settled.type, attributes: [...settled.attributes] }, 'proof_requirement_int'),
    ).toBe(1);
    // Mint = burn split of 252: supplier 70 % → 176 (owner's rev share), source owner 15 % → 37,
    // proposer 5 % → 12 (module), DAO takes the remainder 27.
    expect({
      owner: await balance(OWNER.address),
      serviceOwner: await balance(SERVICE_OWNER.address),
      dao: await balance(DAO.address),
      supplier: await balance(SUPPLIER.address),
    }).toEqual({ owner: 176n, serviceOwner: 37n, dao: 27n, supplier: BALANCE - 2n * feeUpokt - 1n });
    expect(net.chain.application(APP.address)!.stake).toEqual({
      denom: 'upokt',
      amount: String(APP_STAKE - 252n),
    });
    expect(net.chain.claims()).toEqual([]);
  });

  it('simulates a tx: gas for a valid claim, the handler error for one outside its window', async () => {
    const { SimulateRequest, SimulateResponse } = await import('cosmjs-types/cosmos/tx/v1beta1/service');
    const { header, trie } = await sessionOneWithTrie();
    const tx = await buildTx([createClaimMsg(header, trie.root())], unordered());
    const early = await client.abciQuery({
      path: '/cosmos.tx.v1beta1.Service/Simulate',
      data: SimulateRequest.encode({ txBytes: tx }).finish(),
    });
    expect({ code: early.code, codespace: early.codespace }).toEqual({ code: 6, codespace: 'sdk' });
    expect(early.log).toMatch(
      /^rpc error: code = Unknown desc = failed to execute message; message index: 0: .*claim attempted outside of the session's claim window With gas wanted: '0' and gas used: '\d+' : unknown request$/,
    );
    net.chain.advanceTo(5);
    const sim = await query(
      '/cosmos.tx.v1beta1.Service/Simulate',
      SimulateRequest.encode({ txBytes: tx }).finish(),
      (b) => SimulateResponse.decode(b),
    );
    expect(sim.gasInfo!.gasUsed).toBeGreaterThan(0n);
    expect(sim.result!.events.map((e) => e.type)).toContain('pocket.proof.EventClaimCreated');
    expect(net.chain.claims()).toEqual([]);
  });

  it('runs a claim outside its window: CheckTx passes, the block rejects with proof 1121', async () => {
    const { header, trie } = await sessionOneWithTrie();
    const sent = await broadcast(await buildTx([createClaimMsg(header, trie.root())], unordered()));
    expect(sent.code).toBe(0);
    net.advance(1);
    expect(await txResult(sent.hash)).toEqual({
      height: 2,
      code: 1121,
      codespace: 'proof',
      log:
        'failed to execute message; message index: 0: rpc error: code = FailedPrecondition desc = current block height (2) ' +
        "is less than the session's earliest claim commit height (6): claim attempted outside of the session's claim window",
      events: expect.any(Array),
    });
    expect(net.chain.claims()).toEqual([]);
  });

  it('rejects a 47-byte root in CheckTx with proof 1104', async () => {
    const { header, trie } = await sessionOneWithTrie();
    net.chain.advanceTo(5);
    const sent = await broadcast(
      await buildTx([createClaimMsg(header, trie.root().subarray(0, 47))], unordered()),
    );
    expect({ code: sent.code, codespace: sent.codespace, log: sent.log }).toEqual({
      code: 1104,
      codespace: 'proof',
      log: 'root hash must be 48 bytes, got 47: invalid root hash',
    });
    expect(net.chain.mempoolSize).toBe(0);
  });

  it('rejects a claim for the wrong session with proof 1116', async () => {
    const { header, trie } = await sessionOneWithTrie();
    net.chain.advanceTo(5);
    const wrong = { ...header, sessionId: 'ab'.repeat(32) };
    const sent = await broadcast(await buildTx([createClaimMsg(wrong, trie.root())], unordered()));
    expect(sent.code).toBe(0);
    net.advance(1);
    const r = await txResult(sent.hash);
    expect({ code: r.code, codespace: r.codespace, log: r.log }).toEqual({
      code: 1116,
      codespace: 'proof',
      log:
        'failed to execute message; message index: 0: rpc error: code = InvalidArgument desc = session ID does not match ' +
        `onchain session ID; expected "${header.sessionId}", got "${wrong.sessionId}": invalid session ID`,
    });
  });

  it('rejects a claim whose sum is not count × CUPR with proof 1126', async () => {
    const { header, trie } = await sessionOneWithTrie();
    const root = new Uint8Array(trie.root());
    root[39] = 7; // sum 7 for 3 relays at CUPR 2
    net.chain.advanceTo(5);
    const sent = await broadcast(await buildTx([createClaimMsg(header, root)], unordered()));
    net.advance(1);
    const r = await txResult(sent.hash);
    expect({ code: r.code, codespace: r.codespace }).toEqual({ code: 1126, codespace: 'proof' });
  });

  it('marks a proof with a tampered side node INVALID and expires the claim at settlement', async () => {
    const { header, trie } = await sessionOneWithTrie();
    await claimInWindow(header, trie.root());
    net.chain.advanceTo(9);
    const compact = decodeCompactClosestProof(await proofBytesFor(trie, header, 9));
    const inner = compact.closestProof!;
    const side = new Uint8Array(inner.sideNodes[0]!);
    side[5]! ^= 0x01;
    const tampered = encodeCompactClosestProof({
      ...compact,
      closestProof: { ...inner, sideNodes: [side, ...inner.sideNodes.slice(1)] },
    });
    const sent = await broadcast(await buildTx([submitProofMsg(header, tampered)], unordered()));
    net.advance(1);
    expect((await txResult(sent.hash)).code).toBe(0);
    const checked = (await client.blockResults(10)).finalizeBlockEvents.find(
      (e) => e.type === 'pocket.proof.EventProofValidityChecked',
    )!;
    const attrs = Object.fromEntries(checked.attributes.map((a) => [a.key, a.value]));
    expect({ status: attrs['claim_proof_status_int'], reason: attrs['failure_reason'] }).toEqual({
      status: '2',
      reason: '"invalid closest merkle proof: invalid proof"',
    });
    net.chain.advanceTo(14);
    const types = (await client.blockResults(14)).finalizeBlockEvents.map((e) => e.type);
    expect(types).toEqual(['pocket.tokenomics.EventClaimExpired', 'pocket.tokenomics.EventSupplierSlashed']);
    expect(net.chain.supplier(SUPPLIER.address)!.stake).toEqual({
      denom: 'upokt',
      amount: String(100_000_000n - 1000n),
    });
  });

  it('marks a proof built for the wrong path INVALID', async () => {
    const { header, trie } = await sessionOneWithTrie();
    await claimInWindow(header, trie.root());
    net.chain.advanceTo(9);
    const wrongSeed = await client.block(8);
    const proof = await trie.proveClosestBytes(proofPath(wrongSeed.blockId.hash, header.sessionId));
    const sent = await broadcast(await buildTx([submitProofMsg(header, proof)], unordered()));
    net.advance(1);
    expect((await txResult(sent.hash)).code).toBe(0);
    const checked = (await client.blockResults(10)).finalizeBlockEvents.find(
      (e) => e.type === 'pocket.proof.EventProofValidityChecked',
    )!;
    const expected = proofPath((await client.block(9)).blockId.hash, header.sessionId);
    const got = proofPath(wrongSeed.blockId.hash, header.sessionId);
    expect(Object.fromEntries(checked.attributes.map((a) => [a.key, a.value]))['failure_reason']).toBe(
      JSON.stringify(
        `the path of the proof provided (${bytesToHex(got)}) does not match one expected by the onchain protocol (${bytesToHex(expected)}): invalid proof`,
      ),
    );
  });

  it('rejects a duplicate unordered tx (same signer and timeout) and identical bytes', async () => {
    const { header, trie } = await sessionOneWithTrie();
    net.chain.advanceTo(5);
    const opts = unordered();
    const first = await buildTx([createClaimMsg(header, trie.root())], { ...opts, memo: 'first' });
    const second = await buildTx([createClaimMsg(header, trie.root())], { ...opts, memo: 'second' });
    expect((await broadcast(first)).code).toBe(0);
    await expect(client.broadcastTxSync({ tx: first })).rejects.toThrow(/tx already exists in cache/);
    const dup = await broadcast(second);
    expect({ code: dup.code, codespace: dup.codespace, log: dup.log }).toEqual({
      code: 18,
      codespace: 'sdk',
      log: `tx is duplicated for signer ${SUPPLIER.address}: invalid request`,
    });
    net.advance(1);
    const again = await broadcast(second);
    expect({ code: again.code, log: again.log }).toEqual({
      code: 18,
      log: `tx is duplicated for signer ${SUPPLIER.address}: invalid request`,
    });
  });

  it('enforces the unordered timeout bounds and signatures', async () => {
    const { header, trie } = await sessionOneWithTrie();
    const msg = [createClaimMsg(header, trie.root())];
    const cases = [
      await buildTx(msg, { accountNumber: SUPPLIER_ACCOUNT_NUMBER, timeoutMs: latestTimeMs() + 11 * 60_000 }),
      await buildTx(msg, { accountNumber: SUPPLIER_ACCOUNT_NUMBER, timeoutMs: latestTimeMs() }),
      await buildTx(msg, unordered({ chainId: 'pocket-beta' })),
      await buildTx(msg, unordered({ accountNumber: 7n })),
    ];
    const results = [];
    for (const tx of cases) {
      const r = await broadcast(tx);
      results.push({ code: r.code, codespace: r.codespace, log: r.log });
    }
    expect(results).toEqual([
      { code: 18, codespace: 'sdk', log: 'unordered tx ttl exceeds 10m0s: invalid request' },
      {
        code: 18,
        codespace: 'sdk',
        log: 'unordered transaction has a timeout_timestamp that has already passed: invalid request',
      },
      {
        code: 4,
        codespace: 'sdk',
        log: 'signature verification failed; please verify account number (2), sequence (0) and chain-id (pocket): unauthorized',
      },
      {
        code: 4,
        codespace: 'sdk',
        log: 'signature verification failed; please verify account number (2), sequence (0) and chain-id (pocket): unauthorized',
      },
    ]);
  });
});

describe('localnet proof requirement', () => {
  it('rejects a proof that is not required with proof 1129', async () => {
    await start({ proof_request_probability: 0, proof_requirement_threshold: '1000000000upokt' });
    const { header, trie } = await sessionOneWithTrie();
    await claimInWindow(header, trie.root());
    net.chain.advanceTo(9);
    const proof = await proofBytesFor(trie, header, 9);
    const sent = await broadcast(await buildTx([submitProofMsg(header, proof)], unordered()));
    expect(sent.code).toBe(0);
    net.advance(1);
    const r = await txResult(sent.hash);
    expect({ code: r.code, codespace: r.codespace, log: r.log }).toEqual({
      code: 1129,
      codespace: 'proof',
      log: 'failed to execute message; message index: 0: rpc error: code = FailedPrecondition desc = proof not required',
    });
    // Not required: the claim settles without a proof.
    net.chain.advanceTo(14);
    expect((await client.blockResults(14)).finalizeBlockEvents.map((e) => e.type)).toEqual([
      'pocket.tokenomics.EventClaimSettled',
      'pocket.service.EventRelayMiningDifficultyUpdated',
    ]);
    expect(await balance(OWNER.address)).toBe(176n);
  });
});
