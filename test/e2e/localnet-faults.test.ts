/**
 * Fault knobs of the simulator: a tx dropped from the mempool after CheckTx, a broadcast rejected
 * with a chosen error, and delayed blocks (over the localnet_fault RPC method as well).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startLocalnet, type Localnet } from '../../localnet/index.js';
import { buildTx, createClaimMsg, sessionTrie, testGenesis, APP } from './localnet-fixtures.js';

let net: Localnet | undefined;
afterEach(async () => {
  await net?.stop();
  net = undefined;
});

async function rpc(method: string, params: Record<string, unknown>): Promise<any> {
  const res = await fetch(net!.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  return res.json();
}

async function claimTx(memo: string): Promise<Uint8Array> {
  const session = net!.chain.getSession(APP.address, 'anvil', 1);
  if (!session.ok) throw new Error(session.error.log);
  const trie = await sessionTrie(session.value.header!, 1, 2n);
  return buildTx([createClaimMsg(session.value.header!, trie.root())], {
    accountNumber: 2n,
    timeoutMs: net!.chain.latestBlock()!.timeMs + 30_000,
    memo,
  });
}

describe('localnet fault knobs', () => {
  it('drops the next tx after CheckTx accepted it: never in a block, tx query says not found', async () => {
    net = await startLocalnet(testGenesis(), { blockTimeMs: 0 });
    net.chain.advanceTo(5);
    expect(await rpc('localnet_fault', { kind: 'drop_next_tx', count: 1 })).toEqual({
      jsonrpc: '2.0',
      id: 1,
      result: {},
    });
    const tx = await claimTx('dropped');
    const sent = await rpc('broadcast_tx_sync', { tx: Buffer.from(tx).toString('base64') });
    expect(sent.result.code).toBe(0);
    await rpc('localnet_advance', { blocks: 1 });
    expect(net.chain.block(6)!.txs).toEqual([]);
    expect(await rpc('tx', { hash: `0x${sent.result.hash}` })).toEqual({
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32603, message: 'Internal error', data: `tx (${sent.result.hash}) not found` },
    });
  });

  it('rejects the next broadcast with the chosen error, then behaves normally', async () => {
    net = await startLocalnet(testGenesis(), { blockTimeMs: 0 });
    net.chain.advanceTo(5);
    await rpc('localnet_fault', {
      kind: 'reject_next_tx',
      count: 1,
      codespace: 'sdk',
      code: 20,
      log: 'mempool is full',
    });
    const tx = await claimTx('rejected');
    const first = await rpc('broadcast_tx_sync', { tx: Buffer.from(tx).toString('base64') });
    expect({ code: first.result.code, codespace: first.result.codespace, log: first.result.log }).toEqual({
      code: 20,
      codespace: 'sdk',
      log: 'mempool is full',
    });
    const second = await rpc('broadcast_tx_sync', { tx: Buffer.from(tx).toString('base64') });
    expect(second.result.code).toBe(0);
    net.advance(1);
    expect(net.chain.tx(second.result.hash)!.result.code).toBe(0);
  });

  it('delays timer blocks by the configured extra time', async () => {
    net = await startLocalnet(testGenesis(), { blockTimeMs: 5 });
    const deadline = Date.now() + 5_000;
    while (net.chain.height < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(net.chain.height).toBeGreaterThanOrEqual(3);
    await rpc('localnet_fault', { kind: 'delay_blocks', ms: 60_000 });
    await new Promise((r) => setTimeout(r, 50)); // the block already scheduled may still land
    const frozen = net.chain.height;
    await new Promise((r) => setTimeout(r, 200));
    expect(net.chain.height).toBe(frozen);
  });

  it('refuses an unknown fault kind', async () => {
    net = await startLocalnet(testGenesis(), { blockTimeMs: 0 });
    expect(await rpc('localnet_fault', { kind: 'explode' })).toEqual({
      jsonrpc: '2.0',
      id: 1,
      error: {
        code: -32602,
        message: 'Invalid params',
        data: 'unknown fault kind explode; expected drop_next_tx, delay_blocks or reject_next_tx',
      },
    });
  });
});
