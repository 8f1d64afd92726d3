/**
 * LocalChain state transitions without sockets: ordered sequences, fees and gas, claim updates,
 * missing proofs, difficulty updates after settlement and shared-params epochs.
 */
import { describe, expect, it } from 'vitest';
import {
  BASE_RELAY_DIFFICULTY_TARGET,
  computeNewDifficultyTargetHash,
  pb,
  proofPath,
  sessionWindows,
} from '../../protocol/index.js';
import { selectBackend } from '../../rings/index.js';
import { LocalChain, attributeValue, parseGenesis, sessionParamsOf } from '../../localnet/index.js';
import {
  APP,
  BALANCE,
  SUPPLIER,
  buildTx,
  createClaimMsg,
  sessionTrie,
  submitProofMsg,
  testGenesis,
  testKey,
} from './localnet-fixtures.js';

const backend = selectBackend('native');

function newChain(genesis = testGenesis()): LocalChain {
  const chain = new LocalChain(genesis, { backend });
  chain.produceBlock();
  return chain;
}

async function claimFor(chain: LocalChain, relays: number) {
  const s = chain.getSession(APP.address, 'anvil', 1);
  if (!s.ok) throw new Error(s.error.log);
  const header = s.value.header!;
  const trie = await sessionTrie(header, relays, 2n);
  return { header, msg: createClaimMsg(header, trie.root()) };
}

describe('LocalChain', () => {
  it('enforces ordered sequences: the account sequence must match and is bumped on inclusion', async () => {
    const chain = newChain();
    chain.advanceTo(5);
    const { msg } = await claimFor(chain, 1);
    const first = chain.broadcastTxSync(await buildTx([msg], { accountNumber: 2n, sequence: 0n, memo: 'a' }));
    // CheckTx state already counts the first tx, so the next sequence is accepted before the block.
    const second = chain.broadcastTxSync(
      await buildTx([msg], { accountNumber: 2n, sequence: 1n, memo: 'b' }),
    );
    expect([first.result.code, second.result.code]).toEqual([0, 0]);
    const block = chain.produceBlock();
    expect(block.txResults.map((r) => r.code)).toEqual([0, 0]);
    expect(chain.account(SUPPLIER.address)!.sequence).toBe(2n);
    const replay = chain.broadcastTxSync(
      await buildTx([msg], { accountNumber: 2n, sequence: 0n, memo: 'c' }),
    );
    expect({ code: replay.result.code, codespace: replay.result.codespace, log: replay.result.log }).toEqual({
      code: 32,
      codespace: 'sdk',
      log: 'account sequence mismatch, expected 2, got 0: incorrect account sequence',
    });
  });

  it('charges fees, enforces the minimum gas price and the gas limit', async () => {
    const genesis = { ...testGenesis(), min_gas_price_upokt: 0.001 };
    const chain = newChain(genesis);
    chain.advanceTo(5);
    const { msg } = await claimFor(chain, 1);
    const timeoutMs = chain.latestBlock()!.timeMs + 60_000;
    const cheap = chain.broadcastTxSync(
      await buildTx([msg], { accountNumber: 2n, timeoutMs, feeUpokt: 999n, gasLimit: 1_000_000n }),
    );
    expect({ code: cheap.result.code, log: cheap.result.log }).toEqual({
      code: 13,
      log: 'insufficient fees; got: 999upokt required: 1000upokt: insufficient fee',
    });
    const tight = chain.broadcastTxSync(
      await buildTx([msg], { accountNumber: 2n, timeoutMs, feeUpokt: 1n, gasLimit: 1000n }),
    );
    expect(tight.result.code).toBe(11);
    expect(tight.result.log).toMatch(
      /^out of gas in location: txSize; gasWanted: 1000, gasUsed: \d+: out of gas$/,
    );
    const ok = chain.broadcastTxSync(
      await buildTx([msg], {
        accountNumber: 2n,
        timeoutMs: timeoutMs + 1,
        feeUpokt: 1000n,
        gasLimit: 1_000_000n,
      }),
    );
    expect(ok.result.code).toBe(0);
    chain.produceBlock();
    expect(chain.balance(SUPPLIER.address)).toBe(BALANCE - 1000n);
  });

  it('replaces a claim inside the window with EventClaimUpdated', async () => {
    const chain = newChain();
    chain.advanceTo(5);
    const one = await claimFor(chain, 1);
    const two = await claimFor(chain, 2);
    const t = chain.latestBlock()!.timeMs + 60_000;
    chain.broadcastTxSync(await buildTx([one.msg], { accountNumber: 2n, timeoutMs: t }));
    chain.produceBlock();
    chain.broadcastTxSync(await buildTx([two.msg], { accountNumber: 2n, timeoutMs: t + 1 }));
    const block = chain.produceBlock();
    expect(block.txResults[0]!.events.map((e) => e.type)).toContain('pocket.proof.EventClaimUpdated');
    expect(chain.claims().map((c) => Buffer.from(c.rootHash).toString('hex'))).toEqual([
      Buffer.from(two.msg.value.rootHash).toString('hex'),
    ]);
  });

  it('expires a required claim without a proof (PROOF_MISSING) and slashes the supplier', async () => {
    const chain = newChain();
    chain.advanceTo(5);
    const { msg } = await claimFor(chain, 1);
    chain.broadcastTxSync(
      await buildTx([msg], { accountNumber: 2n, timeoutMs: chain.latestBlock()!.timeMs + 60_000 }),
    );
    chain.advanceTo(14);
    const events = chain.block(14)!.finalizeEvents;
    expect(events.map((e) => e.type)).toEqual([
      'pocket.tokenomics.EventClaimExpired',
      'pocket.tokenomics.EventSupplierSlashed',
    ]);
    expect(attributeValue(events[0]!, 'expiration_reason')).toBe('PROOF_MISSING');
    expect(attributeValue(events[1]!, 'supplier_stake_after_slash')).toBe('99999000upokt');
  });

  it('updates the relay mining difficulty after settlement, effective at the next session start', async () => {
    const genesis = testGenesis({ proof: { proof_request_probability: 0 } });
    const chain = new LocalChain(
      {
        ...genesis,
        params: { ...genesis.params, service: { ...genesis.params.service, target_num_relays: 1n } },
      },
      { backend },
    );
    chain.produceBlock();
    chain.advanceTo(5);
    const { msg } = await claimFor(chain, 30);
    chain.broadcastTxSync(
      await buildTx([msg], { accountNumber: 2n, timeoutMs: chain.latestBlock()!.timeMs + 60_000 }),
    );
    chain.advanceTo(14);
    // EMA from the default (target_num_relays = 1): floor(0.1·30 + 0.9·1) = 3, so the target
    // becomes floor((2^256 − 1)/3). Height 14 is in session [13, 16]; the new value is recorded at 17.
    expect(chain.difficultyAt('anvil', 17)).toEqual({
      serviceId: 'anvil',
      blockHeight: 17n,
      numRelaysEma: 3n,
      targetHash: Buffer.from(computeNewDifficultyTargetHash(BASE_RELAY_DIFFICULTY_TARGET, 1n, 3n)),
    });
    expect(Buffer.from(chain.difficultyAt('anvil', 17).targetHash).toString('hex')).toBe('55'.repeat(32));
    expect(chain.difficultyAt('anvil', 16).blockHeight).toBe(14n);
  });

  it('records a change of N as a new epoch anchored at the next session start (ParamsAtHeight)', () => {
    const chain = newChain();
    chain.advanceTo(6); // session [5, 8], number 2
    const effective = chain.updateSharedParams({ numBlocksPerSession: 10n });
    expect(effective).toBe(9);
    chain.advanceTo(12);
    const before = chain.sharedParamsAt(8);
    const after = chain.sharedParamsAt(9);
    expect({ n: before.numBlocksPerSession, anchor: before.sessionGridAnchorHeight }).toEqual({
      n: 4n,
      anchor: 0n,
    });
    expect({
      n: after.numBlocksPerSession,
      anchor: after.sessionGridAnchorHeight,
      number: after.sessionNumberAtAnchor,
    }).toEqual({ n: 10n, anchor: 9n, number: 3n });
    const w = sessionWindows(sessionParamsOf(after), 12);
    expect({ start: w.session_start_height, end: w.session_end_height, number: w.session_number }).toEqual({
      start: 9,
      end: 18,
      number: 3,
    });
    const s = chain.getSession(APP.address, 'anvil', 12);
    expect(s.ok && s.value.header?.sessionStartBlockHeight).toBe(9n);
  });

  for (const [name, signers, reason] of [
    [
      'a response signed by another key',
      { supplierKey: testKey('not-the-supplier') },
      'invalid relay response signature: invalid relay response',
    ],
    [
      'a request ring-signed outside the application ring',
      { outsiderRingKey: testKey('outsider') },
      'error verifying relay request signature: ring member 1 is not in the expected ring: invalid relay request',
    ],
  ] as const) {
    it(`marks a proof of ${name} INVALID in the proof EndBlocker`, async () => {
      const chain = newChain();
      chain.advanceTo(5);
      const s = chain.getSession(APP.address, 'anvil', 1);
      if (!s.ok) throw new Error(s.error.log);
      const header = s.value.header!;
      const trie = await sessionTrie(header, 2, 2n, signers);
      const t = chain.latestBlock()!.timeMs + 60_000;
      chain.broadcastTxSync(
        await buildTx([createClaimMsg(header, trie.root())], { accountNumber: 2n, timeoutMs: t }),
      );
      chain.advanceTo(9);
      const proof = await trie.proveClosestBytes(proofPath(chain.blockHash(9), header.sessionId));
      const sent = chain.broadcastTxSync(
        await buildTx([submitProofMsg(header, proof)], { accountNumber: 2n, timeoutMs: t + 1 }),
      );
      expect(sent.result.code).toBe(0);
      const block = chain.produceBlock();
      expect(block.txResults.map((r) => r.code)).toEqual([0]);
      const checked = block.finalizeEvents.find((e) => e.type === 'pocket.proof.EventProofValidityChecked')!;
      expect(attributeValue(checked, 'claim_proof_status_int')).toBe(2);
      expect(attributeValue(checked, 'failure_reason')).toBe(reason);
    });
  }

  it('rejects a genesis with global inflation, which localnet does not model', () => {
    expect(() => parseGenesis({ params: { tokenomics: { global_inflation_per_claim: 0.1 } } })).toThrow(
      /params\.tokenomics\.global_inflation_per_claim: expected 0/,
    );
  });

  it('answers the live claim through the proof-module query types', async () => {
    const chain = newChain();
    chain.advanceTo(5);
    const { header, msg } = await claimFor(chain, 1);
    chain.broadcastTxSync(
      await buildTx([msg], { accountNumber: 2n, timeoutMs: chain.latestBlock()!.timeMs + 60_000 }),
    );
    chain.produceBlock();
    expect(chain.claim(header.sessionId, SUPPLIER.address)).toEqual({
      supplierOperatorAddress: SUPPLIER.address,
      sessionHeader: header,
      rootHash: msg.value.rootHash,
      proofValidationStatus: pb.proofTypes.ClaimProofStatus.PENDING_VALIDATION,
    });
  });
});
