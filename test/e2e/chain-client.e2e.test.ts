/**
 * The production chain client (chain/) against the localnet simulator over real sockets: every
 * query, the block subscription across a forced websocket drop, and a claim and a proof built,
 * signed, simulated and broadcast by the TxClient, then validated and settled by the chain.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { AuthInfo, TxBody, TxRaw } from 'cosmjs-types/cosmos/tx/v1beta1/tx';
import {
  BlockSource,
  ChainQueryClient,
  TxClient,
  computeFee,
  parseGasPrice,
  txHashHex,
  type BlockEvent,
  type ChainEvent,
  type SubmitOptions,
} from '../../chain/index.js';
import { pb, proofPath, type SessionHeader } from '../../protocol/index.js';
import { startLocalnet, type Localnet } from '../../localnet/index.js';
import { APP, BALANCE, GATEWAY, OWNER, SUPPLIER, sessionTrie, testGenesis } from './localnet-fixtures.js';

const log = pino({ level: 'silent' });
const CUPR = 2n;

let chainNet: Localnet;
let query: ChainQueryClient;
const cleanups: (() => Promise<void> | void)[] = [];

beforeEach(async () => {
  chainNet = await startLocalnet(testGenesis(), { blockTimeMs: 0 });
  query = new ChainQueryClient(
    { log },
    { query_node_rpc_url: chainNet.url, query_timeout_ms: 3000, retry_initial_delay_ms: 20 },
  );
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
  query.close();
  await chainNet.stop();
});

describe('ChainQueryClient against localnet', () => {
  it('answers every query the relayer and miner use with the chain state', async () => {
    chainNet.chain.advanceTo(3);
    const c = chainNet.chain;

    const session = await query.getSession(APP.address, 'anvil', 2);
    const expectedSession = c.getSession(APP.address, 'anvil', 2);
    expect(expectedSession.ok).toBe(true);
    expect(session).toEqual(expectedSession.ok ? expectedSession.value : undefined);
    expect(session.suppliers.map((s) => s.operatorAddress)).toEqual([SUPPLIER.address]);

    expect(await query.getSessionParams()).toEqual(c.sessionParams);
    expect(await query.getSharedParams()).toEqual(c.sharedParams);
    expect(await query.getSharedParamsAtHeight(2)).toEqual(c.sharedParamsAt(2));
    expect(await query.getApplication(APP.address)).toEqual(c.application(APP.address));
    expect(await query.getApplicationParams()).toEqual(c.applicationParams);
    expect(await query.getSupplier(SUPPLIER.address)).toEqual(c.supplier(SUPPLIER.address));
    expect(await query.getSupplierParams()).toEqual(c.supplierParams);
    expect(await query.getService('anvil')).toEqual(c.service('anvil'));
    expect(await query.getServiceParams()).toEqual(c.serviceParams);
    expect(await query.getRelayMiningDifficulty('anvil')).toEqual(c.currentDifficulty('anvil'));
    expect(await query.getRelayMiningDifficultyAtHeight('anvil', 1)).toEqual(c.difficultyAt('anvil', 1));
    expect(await query.getComputeUnitsPerRelayAtHeight('anvil', 1)).toBe(CUPR);
    expect(await query.getProofParams()).toEqual(c.proofParams);
    expect(await query.getTokenomicsParams()).toEqual(c.tokenomicsParams);
    expect(await query.getAllClaimsBySupplier(SUPPLIER.address)).toEqual([]);
    await expect(query.getClaim(session.sessionId, SUPPLIER.address)).rejects.toMatchObject({
      code: 'CHAIN_NOT_FOUND',
    });
    await expect(query.getProof(session.sessionId, SUPPLIER.address)).rejects.toMatchObject({
      code: 'CHAIN_NOT_FOUND',
    });
    await expect(query.getApplication(OWNER.address)).rejects.toMatchObject({ code: 'CHAIN_NOT_FOUND' });

    const account = c.account(SUPPLIER.address)!;
    expect(await query.getAccount(SUPPLIER.address)).toEqual({
      address: SUPPLIER.address,
      pubKey: SUPPLIER.publicKey,
      accountNumber: account.accountNumber,
      sequence: account.sequence,
    });
    expect(await query.getBalance(GATEWAY.address)).toBe(BALANCE);
    expect(await query.getBalance(OWNER.address)).toBe(0n);

    const latest = c.latestBlock()!;
    const block = await query.getBlock();
    expect({ height: block.height, hash: block.hash }).toEqual({
      height: 3,
      hash: Uint8Array.from(latest.hash),
    });
    expect(await query.getBlock(2)).toMatchObject({ height: 2, hash: Uint8Array.from(c.block(2)!.hash) });
  });
});

/** A TCP proxy in front of the node that can cut every connection and refuse new ones. */
async function startProxy(
  targetPort: number,
): Promise<{ url: string; cut(refuse: boolean): void; close(): Promise<void> }> {
  const pairs = new Set<net.Socket>();
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    pairs.add(client).add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      pairs.delete(client);
      pairs.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut(refuse) {
      refusing = refuse;
      for (const s of pairs) s.destroy();
      pairs.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of pairs) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('BlockSource against localnet', () => {
  it('delivers every height exactly once and in order across a forced websocket drop', async () => {
    chainNet.chain.advanceTo(2);
    const proxy = await startProxy(chainNet.port);
    cleanups.push(() => proxy.close());
    const source = new BlockSource(
      { log },
      {
        query_node_rpc_url: proxy.url,
        reconnect_initial_delay_ms: 50,
        reconnect_max_delay_ms: 200,
        fetch_timeout_ms: 2000,
      },
    );
    cleanups.push(() => source.close());
    const seen: BlockEvent[] = [];
    source.onBlock((b) => seen.push(b));

    expect((await source.start()).height).toBe(2);
    await waitFor(() => source.subscribed, 'first subscription');
    chainNet.advance(3); // 3..5 via events
    await waitFor(() => seen.at(-1)?.height === 5, 'height 5');

    proxy.cut(true); // websocket and keep-alive sockets gone, reconnects refused
    chainNet.advance(4); // 6..9 while disconnected
    await waitFor(() => !source.subscribed, 'the drop to be noticed');
    await new Promise((r) => setTimeout(r, 150)); // several refused reconnect attempts
    expect(seen.at(-1)?.height).toBe(5);
    proxy.cut(false);
    await waitFor(() => seen.at(-1)?.height === 9, 'catch-up to 9 after reconnect');
    chainNet.advance(3); // 10..12 via events again
    await waitFor(() => seen.at(-1)?.height === 12, 'height 12');

    expect(seen.map((b) => b.height)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    for (const b of seen) {
      const rec = chainNet.chain.block(b.height)!;
      expect({ height: b.height, hash: b.hash }).toEqual({
        height: rec.height,
        hash: Uint8Array.from(rec.hash),
      });
    }
  });
});

describe('TxClient against localnet', () => {
  function attrs(e: ChainEvent | undefined): Record<string, string> {
    return Object.fromEntries((e?.attributes ?? []).map((a) => [a.key, a.value]));
  }

  it('submits a claim and a proof that the chain accepts, validates and settles', async () => {
    const source = new BlockSource(
      { log },
      { query_node_rpc_url: chainNet.url, reconnect_initial_delay_ms: 50 },
    );
    cleanups.push(() => source.close());
    await source.start();
    const tx = new TxClient(
      { log, query, latestBlockTimeNs: () => source.latest()?.timeUnixNs },
      { chain_id: 'pocket', gas_price: '0.00001upokt' },
    );
    expect(await tx.addSigner(SUPPLIER.privateKey)).toBe(SUPPLIER.address);

    // Session 1 = [1, 4]; claim window [6, 10]; proof window [10, 14]; settlement at 14.
    const session = await query.getSession(APP.address, 'anvil', 1);
    const header: SessionHeader = session.header!;
    const trie = await sessionTrie(header, 3, CUPR);
    const window = (close: number): SubmitOptions => ({ blocksLeftInWindow: close - chainNet.chain.height });

    chainNet.chain.advanceTo(5);
    await waitFor(() => source.latest()?.height === 5, 'block 5');
    const claim = await tx.createClaims(
      SUPPLIER.address,
      [
        pb.proofTx.MsgCreateClaim.fromPartial({
          supplierOperatorAddress: SUPPLIER.address,
          sessionHeader: header,
          rootHash: Buffer.from(trie.root()),
        }),
      ],
      window(10),
    );
    if (!claim.ok) throw new Error(`claim refused: ${JSON.stringify(claim)}`);
    chainNet.advance(1); // block 6 = claim window open
    const sentBytes = chainNet.chain.block(6)!.txs[0]!;
    const sentTx = TxRaw.decode(sentBytes);
    const sentAuth = AuthInfo.decode(sentTx.authInfoBytes);
    expect(claim).toEqual({
      ok: true,
      txHash: txHashHex(sentBytes),
      gasLimit: sentAuth.fee!.gasLimit,
      feeAmount: computeFee(sentAuth.fee!.gasLimit, parseGasPrice('0.00001upokt')),
      sequence: 0n,
    });
    expect({
      unordered: TxBody.decode(sentTx.bodyBytes).unordered,
      memo: TxBody.decode(sentTx.bodyBytes).memo,
      sequence: sentAuth.signerInfos[0]!.sequence,
      fee: sentAuth.fee!.amount,
    }).toEqual({
      unordered: true,
      memo: 'HA RelayMiner',
      sequence: 0n,
      fee: [{ denom: 'upokt', amount: claim.feeAmount.toString() }],
    });

    const included = await tx.getTx(claim.txHash);
    expect({ height: included?.height, code: included?.code, hash: included?.txHash }).toEqual({
      height: 6,
      code: 0,
      hash: claim.txHash,
    });
    const claims = await query.getAllClaimsBySupplier(SUPPLIER.address);
    expect(claims).toEqual([
      pb.proofTypes.Claim.fromPartial({
        supplierOperatorAddress: SUPPLIER.address,
        sessionHeader: header,
        rootHash: Buffer.from(trie.root()),
        proofValidationStatus: pb.proofTypes.ClaimProofStatus.PENDING_VALIDATION,
      }),
    ]);
    expect(await query.getClaim(header.sessionId, SUPPLIER.address)).toEqual(claims[0]);

    // Proof: the seed block is proof window open − 1 = 9; the proof lands in block 10.
    chainNet.chain.advanceTo(9);
    await waitFor(() => source.latest()?.height === 9, 'block 9');
    const seed = source.latest()!;
    const proofBytes = await trie.proveClosestBytes(proofPath(seed.hash, header.sessionId));
    const proof = await tx.submitProofs(
      SUPPLIER.address,
      [
        pb.proofTx.MsgSubmitProof.fromPartial({
          supplierOperatorAddress: SUPPLIER.address,
          sessionHeader: header,
          proof: Buffer.from(proofBytes),
        }),
      ],
      window(14),
    );
    expect(proof).toEqual({
      ok: true,
      txHash: expect.stringMatching(/^[0-9A-F]{64}$/),
      gasLimit: expect.any(BigInt),
      feeAmount: expect.any(BigInt),
      sequence: 0n,
    });
    chainNet.advance(1);
    expect((await query.getClaim(header.sessionId, SUPPLIER.address)).proofValidationStatus).toBe(
      pb.proofTypes.ClaimProofStatus.VALIDATED,
    );
    const validity = (await query.getBlockResults(10)).finalizeBlockEvents.find(
      (e) => e.type === 'pocket.proof.EventProofValidityChecked',
    );
    expect(attrs(validity).claim_proof_status_int).toBe(String(pb.proofTypes.ClaimProofStatus.VALIDATED));

    // Settlement at proof window close.
    chainNet.chain.advanceTo(14);
    const settled = (await query.getBlockResults(14)).finalizeBlockEvents.find(
      (e) => e.type === 'pocket.tokenomics.EventClaimSettled',
    );
    const a = attrs(settled);
    expect({
      session_id: a.session_id,
      supplier_operator_address: a.supplier_operator_address,
      num_relays: a.num_relays,
      claimed_upokt: a.claimed_upokt,
      settled_upokt: a.settled_upokt,
      claim_proof_status_int: a.claim_proof_status_int,
    }).toEqual({
      session_id: `"${header.sessionId}"`,
      supplier_operator_address: `"${SUPPLIER.address}"`,
      num_relays: '"3"',
      claimed_upokt: '"252upokt"', // 3 relays × 2 CU × 42 upokt
      settled_upokt: '"252upokt"',
      claim_proof_status_int: String(pb.proofTypes.ClaimProofStatus.VALIDATED),
    });
    // The owner's share of the settlement depends on the mint allocation; it is paid.
    expect(await query.getBalance(OWNER.address)).toBeGreaterThan(0n);
    expect(await query.getAllClaimsBySupplier(SUPPLIER.address)).toEqual([]);
  });

  it('sends ordered txs with the account sequence and resyncs after another sender used it', async () => {
    const ordered = { chain_id: 'pocket', unordered: false, gas_limit: 400_000, gas_price: '0.00001upokt' };
    const a = new TxClient({ log, query }, ordered);
    const b = new TxClient({ log, query }, ordered);
    await a.addSigner(SUPPLIER.privateKey);
    await b.addSigner(SUPPLIER.privateKey);
    const session = await query.getSession(APP.address, 'anvil', 1);
    const trie = await sessionTrie(session.header!, 2, CUPR);
    const msg = pb.proofTx.MsgCreateClaim.fromPartial({
      supplierOperatorAddress: SUPPLIER.address,
      sessionHeader: session.header!,
      rootHash: Buffer.from(trie.root()),
    });
    chainNet.chain.advanceTo(5);
    const start = chainNet.chain.account(SUPPLIER.address)!.sequence;

    expect(await a.createClaims(SUPPLIER.address, [msg])).toMatchObject({ ok: true, sequence: start });
    chainNet.advance(1);
    expect(await b.createClaims(SUPPLIER.address, [msg])).toMatchObject({ ok: true, sequence: start + 1n });
    chainNet.advance(1);
    // a still believes start + 1 is next: CheckTx refuses it, a re-reads the account and succeeds.
    expect(await a.createClaims(SUPPLIER.address, [msg])).toMatchObject({ ok: true, sequence: start + 2n });
    chainNet.advance(1);
    expect(chainNet.chain.account(SUPPLIER.address)!.sequence).toBe(start + 3n);
    expect([6, 7, 8].map((h) => chainNet.chain.block(h)!.txResults.map((r) => r.code))).toEqual([
      [0],
      [0],
      [0],
    ]);
  });

  it('returns the chain refusal as a value when the claim window is not open', async () => {
    const tx = new TxClient({ log, query }, { chain_id: 'pocket' });
    await tx.addSigner(SUPPLIER.privateKey);
    const session = await query.getSession(APP.address, 'anvil', 1);
    const trie = await sessionTrie(session.header!, 1, CUPR);
    chainNet.chain.advanceTo(2); // session still open: claim refused in simulation
    const r = await tx.createClaims(SUPPLIER.address, [
      pb.proofTx.MsgCreateClaim.fromPartial({
        supplierOperatorAddress: SUPPLIER.address,
        sessionHeader: session.header!,
        rootHash: Buffer.from(trie.root()),
      }),
    ]);
    expect(r).toEqual({
      ok: false,
      stage: 'simulate',
      code: 6, // gRPC error from the tx service, wrapped by baseapp as sdk/6
      codespace: 'sdk',
      log: expect.stringContaining("claim attempted outside of the session's claim window"),
      txHash: undefined,
    });
    expect(chainNet.chain.mempoolSize).toBe(0);
  });
});
