/**
 * Fault knobs of the simulator: a tx dropped from the mempool after CheckTx, a broadcast rejected
 * with a chosen error, delayed blocks, an RPC outage (HTTP and websocket) and withheld websocket
 * block events (over the localnet_fault RPC method as well).
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
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

/** Opens a websocket subscribed to `query`; collects every event's data type and height. */
async function subscribe(query: string): Promise<{
  ws: WebSocket;
  events: { type: string; height: number }[];
  closed: Promise<number>;
}> {
  const ws = new WebSocket(net!.wsUrl);
  const events: { type: string; height: number }[] = [];
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const acked = new Promise<void>((resolve) => {
    ws.on('message', (raw: Buffer) => {
      const msg = JSON.parse(raw.toString('utf8')) as {
        id: number;
        result: { data?: { type: string; value: any } };
      };
      const data = msg.result.data;
      if (data === undefined) {
        resolve();
        return;
      }
      const value = data.value;
      const height =
        data.type === 'tendermint/event/Tx'
          ? Number(value.TxResult.height)
          : Number((value.header ?? value.block.header).height);
      events.push({ type: data.type, height });
    });
  });
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'subscribe', params: { query } }));
  await acked;
  return { ws, events, closed };
}

async function waitUntil(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

/** How a plain HTTP call ends: the JSON answer, or the connection failure. */
async function rpcOutcome(method: string): Promise<'answered' | 'connection_failed'> {
  try {
    const res = await fetch(net!.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: {} }),
      signal: AbortSignal.timeout(2_000),
    });
    await res.json();
    return 'answered';
  } catch {
    return 'connection_failed';
  }
}

async function websocketOutcome(): Promise<'open' | 'failed'> {
  const ws = new WebSocket(net!.wsUrl);
  const r = await new Promise<'open' | 'failed'>((resolve) => {
    ws.once('open', () => resolve('open'));
    ws.once('error', () => resolve('failed'));
  });
  ws.terminate();
  return r;
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

  it('unavailable: closes websockets and refuses HTTP and websocket for the given time while blocks go on', async () => {
    net = await startLocalnet(testGenesis(), { blockTimeMs: 0 });
    const sub = await subscribe("tm.event='NewBlockHeader'");
    net.advance(1);
    await waitUntil(() => sub.events.length === 1, 2_000);
    expect(await rpc('localnet_fault', { kind: 'unavailable', ms: 600 })).toEqual({
      jsonrpc: '2.0',
      id: 1,
      result: {},
    });
    const start = Date.now();
    expect(await sub.closed).toBe(1006);
    expect(await rpcOutcome('status')).toBe('connection_failed');
    expect(await websocketOutcome()).toBe('failed');
    net.advance(2); // produced during the outage; nobody hears of them
    expect(net.chain.height).toBe(4);
    await new Promise((r) => setTimeout(r, Math.max(0, start + 650 - Date.now())));
    expect(await rpcOutcome('status')).toBe('answered');
    const again = await subscribe("tm.event='NewBlockHeader'");
    net.advance(1);
    await waitUntil(() => again.events.length === 1, 2_000);
    again.ws.close();
    expect(sub.events).toEqual([{ type: 'tendermint/event/NewBlockHeader', height: 2 }]);
    expect(again.events).toEqual([{ type: 'tendermint/event/NewBlockHeader', height: 5 }]);
  });

  it('skip_events: the next blocks are produced and queryable, but their block and tx events are never sent', async () => {
    net = await startLocalnet(testGenesis(), { blockTimeMs: 0 });
    net.chain.advanceTo(5);
    const headers = await subscribe("tm.event='NewBlockHeader'");
    const txs = await subscribe("tm.event='Tx'");
    expect(await rpc('localnet_fault', { kind: 'skip_events', blocks: 2 })).toEqual({
      jsonrpc: '2.0',
      id: 1,
      result: {},
    });
    const sent = await rpc('broadcast_tx_sync', {
      tx: Buffer.from(await claimTx('withheld')).toString('base64'),
    });
    expect(sent.result.code).toBe(0);
    net.advance(3);
    await waitUntil(() => headers.events.length === 1, 2_000);
    headers.ws.close();
    txs.ws.close();
    expect(headers.events).toEqual([{ type: 'tendermint/event/NewBlockHeader', height: 8 }]);
    expect(txs.events).toEqual([]);
    expect(net.chain.tx(sent.result.hash)!.height).toBe(6);
    const block7 = await rpc('block', { height: '7' });
    expect(block7.result.block.header.height).toBe('7');
  });

  it('refuses an outage or a skip without a positive whole amount', async () => {
    net = await startLocalnet(testGenesis(), { blockTimeMs: 0 });
    expect(await rpc('localnet_fault', { kind: 'unavailable', ms: 0 })).toEqual({
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32602, message: 'Invalid params', data: 'ms must be 1..600000' },
    });
    expect(await rpc('localnet_fault', { kind: 'skip_events', blocks: 1.5 })).toEqual({
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32602, message: 'Invalid params', data: 'blocks must be 1..100000' },
    });
    expect(await rpcOutcome('status')).toBe('answered');
  });

  it('refuses an unknown fault kind', async () => {
    net = await startLocalnet(testGenesis(), { blockTimeMs: 0 });
    expect(await rpc('localnet_fault', { kind: 'explode' })).toEqual({
      jsonrpc: '2.0',
      id: 1,
      error: {
        code: -32602,
        message: 'Invalid params',
        data: 'unknown fault kind explode; expected drop_next_tx, delay_blocks, reject_next_tx, unavailable or skip_events',
      },
    });
  });
});
