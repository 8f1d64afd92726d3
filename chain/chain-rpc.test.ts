/**
 * The chain clients against a minimal CometBFT JSON-RPC + websocket server on 127.0.0.1, over
 * real sockets. The server exists to inject transport faults (hangs, HTTP 503, websocket drops,
 * skipped events) that a full chain simulator does not produce on demand; protocol behaviour is
 * covered end to end against localnet in test/e2e/chain-client.e2e.test.ts.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Registry } from 'prom-client';
import { WebSocketServer, type WebSocket } from 'ws';
import { BaseAccount } from 'cosmjs-types/cosmos/auth/v1beta1/auth';
import { QueryAccountRequest, QueryAccountResponse } from 'cosmjs-types/cosmos/auth/v1beta1/query';
import { QueryBalanceRequest, QueryBalanceResponse } from 'cosmjs-types/cosmos/bank/v1beta1/query';
import { PubKey } from 'cosmjs-types/cosmos/crypto/secp256k1/keys';
import { SimulateRequest, SimulateResponse } from 'cosmjs-types/cosmos/tx/v1beta1/service';
import { AuthInfo, TxBody, TxRaw } from 'cosmjs-types/cosmos/tx/v1beta1/tx';
import { addressFromPublicKey, pb, publicKeyFromPrivate, sha256 } from '../protocol/index.js';
import { BlockSource, type BlockEvent } from './block-source.js';
import { createChainMetrics } from './metrics.js';
import { ChainQueryClient, QUERY_PATHS } from './query-client.js';
import { TxClient, txHashHex } from './tx-client.js';

const log = pino({ level: 'silent' });
const GENESIS_MS = Date.UTC(2026, 10, 23, 9, 0, 0);

type AbciReply = { code?: number; codespace?: string; log?: string; value?: Uint8Array } | 'hang' | 'http503';
type AbciHandler = (data: Uint8Array) => AbciReply;

interface FakeNode {
  url: string;
  height: number;
  abci: Map<string, AbciHandler>;
  abciCalls: string[];
  broadcasts: Uint8Array[];
  /** CheckTx result for a broadcast, or 'in-cache' for CometBFT's duplicate-tx RPC error. */
  onBroadcast: (tx: Uint8Array) => { code: number; codespace?: string; log?: string } | 'in-cache';
  /** Advances the chain by n blocks, announcing each unless `silent`. */
  produce(n: number, opts?: { silent?: boolean }): void;
  /** Terminates every websocket connection and refuses new ones while `refuse` is true. */
  dropWebsockets(refuse: boolean): void;
  subscriberCount(): number;
  /** subscribe requests received over the node's lifetime. */
  subscribeRequests: number;
  close(): Promise<void>;
}

function blockHash(h: number): string {
  return Buffer.from(sha256(Buffer.from(`block-${h}`)))
    .toString('hex')
    .toUpperCase();
}
function blockTime(h: number): string {
  return new Date(GENESIS_MS + h * 1000).toISOString().replace('.000Z', '.000123456Z');
}

function blockJson(h: number): object {
  const empty = { hash: '', parts: { total: 0, hash: '' } };
  return {
    block_id: { hash: blockHash(h), parts: { total: 1, hash: blockHash(h) } },
    block: {
      header: {
        version: { block: '11', app: '0' },
        chain_id: 'pocket',
        height: String(h),
        time: blockTime(h),
        last_block_id:
          h > 1 ? { hash: blockHash(h - 1), parts: { total: 1, hash: blockHash(h - 1) } } : empty,
        last_commit_hash: '',
        data_hash: '',
        validators_hash: '',
        next_validators_hash: '',
        consensus_hash: '',
        app_hash: '',
        last_results_hash: '',
        evidence_hash: '',
        proposer_address: 'AA'.repeat(20),
      },
      data: { txs: [] },
      evidence: { evidence: [] },
      last_commit: { height: String(h - 1), round: 0, block_id: empty, signatures: [] },
    },
  };
}

async function startFakeNode(startHeight: number): Promise<FakeNode> {
  const subscribers = new Map<WebSocket, number | string>();
  let refuse = false;
  const node: FakeNode = {
    url: '',
    height: startHeight,
    abci: new Map(),
    abciCalls: [],
    broadcasts: [],
    onBroadcast: () => ({ code: 0 }),
    produce(n, opts = {}) {
      for (let i = 0; i < n; i++) {
        node.height++;
        if (opts.silent) continue;
        for (const [ws, id] of subscribers) {
          ws.send(
            JSON.stringify({
              jsonrpc: '2.0',
              id,
              result: {
                query: "tm.event='NewBlockHeader'",
                data: {
                  type: 'tendermint/event/NewBlockHeader',
                  value: { header: { height: String(node.height), time: blockTime(node.height) } },
                },
                events: {},
              },
            }),
          );
        }
      }
    },
    dropWebsockets(r) {
      refuse = r;
      for (const ws of subscribers.keys()) ws.terminate();
      subscribers.clear();
    },
    subscriberCount: () => subscribers.size,
    subscribeRequests: 0,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const reply = (res: http.ServerResponse, id: unknown, body: object): void => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ jsonrpc: '2.0', id, ...body }));
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const msg = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        id: unknown;
        method: string;
        params: Record<string, unknown>;
      };
      switch (msg.method) {
        case 'abci_query': {
          const path = msg.params.path as string;
          node.abciCalls.push(path);
          const handler = node.abci.get(path);
          const r: AbciReply = handler
            ? handler(Buffer.from(msg.params.data as string, 'hex'))
            : { code: 6, codespace: 'sdk', log: 'unknown query path: unknown request' };
          if (r === 'hang') return;
          if (r === 'http503') {
            res.statusCode = 503;
            res.end('overloaded');
            return;
          }
          reply(res, msg.id, {
            result: {
              response: {
                code: r.code ?? 0,
                codespace: r.codespace ?? '',
                log: r.log ?? '',
                info: '',
                index: '0',
                key: null,
                value: Buffer.from(r.value ?? new Uint8Array()).toString('base64'),
                proofOps: null,
                height: String(node.height),
              },
            },
          });
          return;
        }
        case 'block': {
          const h = msg.params.height === undefined ? node.height : Number(msg.params.height);
          if (h > node.height) {
            reply(res, msg.id, {
              error: {
                code: -32603,
                message: 'Internal error',
                data: `height ${h} must be less than or equal to the current blockchain height ${node.height}`,
              },
            });
            return;
          }
          reply(res, msg.id, { result: blockJson(h) });
          return;
        }
        case 'broadcast_tx_sync': {
          const tx = Buffer.from(msg.params.tx as string, 'base64');
          node.broadcasts.push(tx);
          const r = node.onBroadcast(tx);
          if (r === 'in-cache') {
            reply(res, msg.id, {
              error: { code: -32603, message: 'Internal error', data: 'tx already exists in cache' },
            });
            return;
          }
          reply(res, msg.id, {
            result: {
              code: r.code,
              data: '',
              log: r.log ?? '',
              codespace: r.codespace ?? '',
              hash: txHashHex(tx),
            },
          });
          return;
        }
        case 'tx':
          reply(res, msg.id, {
            error: {
              code: -32603,
              message: 'Internal error',
              data: `tx (${String(msg.params.hash)}) not found`,
            },
          });
          return;
        default:
          reply(res, msg.id, { error: { code: -32601, message: 'Method not found' } });
      }
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    if (refuse || req.url !== '/websocket') {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data: Buffer) => {
        const m = JSON.parse(data.toString('utf8')) as { id: number; method: string };
        if (m.method === 'subscribe') {
          node.subscribeRequests++;
          subscribers.set(ws, m.id);
          ws.send(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: {} }));
        }
      });
      ws.on('close', () => subscribers.delete(ws));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  node.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return node;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(startHeight = 100): Promise<{ node: FakeNode; query: ChainQueryClient }> {
  const node = await startFakeNode(startHeight);
  cleanups.push(() => node.close());
  const query = new ChainQueryClient(
    { log, random: () => 0 },
    {
      query_node_rpc_url: node.url,
      retry_initial_delay_ms: 10,
      retry_max_delay_ms: 40,
      query_timeout_ms: 2000,
    },
  );
  cleanups.push(() => query.close());
  return { node, query };
}

describe('ChainQueryClient over abci_query', () => {
  it('encodes the request, decodes the whole response', async () => {
    const { node, query } = await setup();
    const params: pb.sharedParams.Params = pb.sharedParams.Params.fromPartial({
      numBlocksPerSession: 10n,
      gracePeriodEndOffsetBlocks: 1n,
      claimWindowOpenOffsetBlocks: 1n,
      claimWindowCloseOffsetBlocks: 4n,
      proofWindowCloseOffsetBlocks: 4n,
      computeUnitsToTokensMultiplier: 42_000_000n,
      computeUnitCostGranularity: 1_000_000n,
    });
    const seen: bigint[] = [];
    node.abci.set(QUERY_PATHS.sharedParamsAtHeight, (data) => {
      seen.push(pb.sharedQuery.QueryParamsAtHeightRequest.decode(data).height);
      return { value: pb.sharedQuery.QueryParamsAtHeightResponse.encode({ params }).finish() };
    });
    expect(await query.getSharedParamsAtHeight(60)).toEqual(params);
    expect(seen).toEqual([60n]);
  });

  it('follows AllClaims pagination to the end', async () => {
    const { node, query } = await setup();
    const claim = (i: number): pb.proofTypes.Claim =>
      pb.proofTypes.Claim.fromPartial({ supplierOperatorAddress: 'pokt1s', rootHash: Buffer.alloc(48, i) });
    const pages = [[claim(1), claim(2)], [claim(3)], [claim(4)]];
    const keys: string[] = [];
    node.abci.set(QUERY_PATHS.allClaims, (data) => {
      const req = pb.proofQuery.QueryAllClaimsRequest.decode(data);
      keys.push(req.pagination!.key.toString('utf8'));
      expect(req.supplierOperatorAddress).toBe('pokt1s');
      const idx = req.pagination!.key.length === 0 ? 0 : Number(req.pagination!.key.toString('utf8'));
      const nextKey = idx + 1 < pages.length ? Buffer.from(String(idx + 1)) : Buffer.alloc(0);
      return {
        value: pb.proofQuery.QueryAllClaimsResponse.encode({
          claims: pages[idx]!,
          pagination: { nextKey, total: 0n },
        }).finish(),
      };
    });
    expect(await query.getAllClaimsBySupplier('pokt1s')).toEqual([claim(1), claim(2), claim(3), claim(4)]);
    expect(keys).toEqual(['', '1', '2']);
  });

  it('fails at once with CHAIN_NOT_FOUND and does not retry', async () => {
    const { node, query } = await setup();
    node.abci.set(QUERY_PATHS.claim, () => ({
      code: 22,
      codespace: 'sdk',
      log: 'rpc error: code = NotFound desc = claim not found: key not found',
    }));
    await expect(query.getClaim('sess', 'pokt1s')).rejects.toMatchObject({
      code: 'CHAIN_NOT_FOUND',
      retryable: false,
    });
    expect(node.abciCalls).toEqual([QUERY_PATHS.claim]);
  });

  it('retries HTTP 503 with backoff and then succeeds', async () => {
    const { node, query } = await setup();
    let n = 0;
    node.abci.set(QUERY_PATHS.bankBalance, (data) => {
      expect(QueryBalanceRequest.decode(data)).toEqual({ address: 'pokt1a', denom: 'upokt' });
      return ++n <= 2
        ? 'http503'
        : {
            value: QueryBalanceResponse.encode({ balance: { denom: 'upokt', amount: '123456789' } }).finish(),
          };
    });
    expect(await query.getBalance('pokt1a')).toBe(123_456_789n);
    expect(node.abciCalls).toEqual([
      QUERY_PATHS.bankBalance,
      QUERY_PATHS.bankBalance,
      QUERY_PATHS.bankBalance,
    ]);
  });

  it('counts attempts and retries in its metrics', async () => {
    const node = await startFakeNode(1);
    cleanups.push(() => node.close());
    const registry = new Registry();
    const query = new ChainQueryClient(
      { log, random: () => 0, metrics: createChainMetrics(registry) },
      { query_node_rpc_url: node.url, retry_initial_delay_ms: 5 },
    );
    cleanups.push(() => query.close());
    let n = 0;
    node.abci.set(QUERY_PATHS.proofParams, () =>
      ++n === 1
        ? 'http503'
        : {
            value: pb.proofQuery.QueryParamsResponse.encode({
              params: pb.proofParams.Params.fromPartial({}),
            }).finish(),
          },
    );
    await query.getProofParams();
    const counts = async (name: string): Promise<object[]> =>
      (
        (await registry.getSingleMetric(name)!.get()).values as {
          labels: object;
          value: number;
          metricName?: string;
        }[]
      )
        .filter((v) => v.metricName === undefined || v.metricName.endsWith('_count'))
        .map((v) => ({ labels: v.labels, value: v.value }));
    expect(await counts('ha_chain_rpc_retries_total')).toEqual([
      { labels: { method: 'pocket.proof.Query/Params' }, value: 1 },
    ]);
    expect(await counts('ha_chain_rpc_duration_seconds')).toEqual([
      { labels: { method: 'pocket.proof.Query/Params', outcome: 'CHAIN_UNAVAILABLE' }, value: 1 },
      { labels: { method: 'pocket.proof.Query/Params', outcome: 'ok' }, value: 1 },
    ]);
  });

  it('times out each attempt and gives up after max_retries with CHAIN_TIMEOUT', async () => {
    const node = await startFakeNode(1);
    cleanups.push(() => node.close());
    const query = new ChainQueryClient(
      { log, random: () => 0 },
      { query_node_rpc_url: node.url, query_timeout_ms: 100, max_retries: 1, retry_initial_delay_ms: 10 },
    );
    cleanups.push(() => query.close());
    node.abci.set(QUERY_PATHS.proofParams, () => 'hang');
    await expect(query.getProofParams()).rejects.toMatchObject({ code: 'CHAIN_TIMEOUT', retryable: true });
    expect(node.abciCalls).toEqual([QUERY_PATHS.proofParams, QUERY_PATHS.proofParams]);
  });

  it('reports an unreachable node as CHAIN_UNAVAILABLE', async () => {
    const node = await startFakeNode(1);
    const url = node.url;
    await node.close();
    const query = new ChainQueryClient(
      { log, random: () => 0 },
      { query_node_rpc_url: url, max_retries: 1, retry_initial_delay_ms: 5 },
    );
    cleanups.push(() => query.close());
    await expect(query.getTokenomicsParams()).rejects.toMatchObject({
      code: 'CHAIN_UNAVAILABLE',
      retryable: true,
    });
  });

  it('falls back to the live service CUPR when the at-height query is not served', async () => {
    const { node, query } = await setup();
    node.abci.set(QUERY_PATHS.service, (data) => {
      expect(pb.serviceQuery.QueryGetServiceRequest.decode(data)).toEqual({ id: 'anvil', dehydrated: false });
      return {
        value: pb.serviceQuery.QueryGetServiceResponse.encode({
          service: pb.sharedService.Service.fromPartial({ id: 'anvil', computeUnitsPerRelay: 7n }),
        }).finish(),
      };
    });
    expect(await query.getComputeUnitsPerRelayAtHeight('anvil', 11)).toBe(7n);
    expect(node.abciCalls).toEqual([QUERY_PATHS.computeUnitsPerRelayAtHeight, QUERY_PATHS.service]);
  });

  it('decodes a BaseAccount with its public key', async () => {
    const { node, query } = await setup();
    const pub = publicKeyFromPrivate(Buffer.alloc(32, 3));
    const address = addressFromPublicKey(pub);
    node.abci.set(QUERY_PATHS.authAccount, (data) => {
      expect(QueryAccountRequest.decode(data)).toEqual({ address });
      const acc = BaseAccount.encode({
        address,
        pubKey: { typeUrl: '/cosmos.crypto.secp256k1.PubKey', value: PubKey.encode({ key: pub }).finish() },
        accountNumber: 9n,
        sequence: 4n,
      }).finish();
      return {
        value: QueryAccountResponse.encode({
          account: { typeUrl: '/cosmos.auth.v1beta1.BaseAccount', value: acc },
        }).finish(),
      };
    });
    expect(await query.getAccount(address)).toEqual({
      address,
      pubKey: pub,
      accountNumber: 9n,
      sequence: 4n,
    });
  });
});

describe('BlockSource', () => {
  async function collect(source: BlockSource, until: number): Promise<number[]> {
    const heights: number[] = [];
    for await (const b of source.blocks()) {
      heights.push(b.height);
      if (b.height >= until) break;
    }
    return heights;
  }

  function newSource(node: FakeNode): BlockSource {
    const source = new BlockSource(
      { log },
      {
        query_node_rpc_url: node.url,
        reconnect_initial_delay_ms: 20,
        reconnect_max_delay_ms: 100,
        idle_timeout_ms: 0,
      },
    );
    cleanups.push(() => source.close());
    return source;
  }

  it('delivers the latest block first with its hash and time', async () => {
    const { node } = await setup(41);
    const source = newSource(node);
    const first = await source.start();
    expect(first).toEqual({
      height: 41,
      hash: Uint8Array.from(Buffer.from(blockHash(41), 'hex')),
      hashHex: blockHash(41),
      time: '2026-11-23T09:00:41.000123456Z',
      timeUnixNs: BigInt(GENESIS_MS + 41_000) * 1_000_000n + 123_456n,
    } satisfies BlockEvent);
    expect(source.latest()).toEqual(first);
  });

  it('sees every height exactly once, in order, across a websocket drop and skipped events', async () => {
    const { node } = await setup(10);
    const source = newSource(node);
    const seen: number[] = [];
    source.onBlock((b) => seen.push(b.height));
    await source.start();
    const done = collect(source, 30);
    await waitFor(() => node.subscriberCount() === 1 && source.subscribed);
    node.produce(3); // 11..13 announced
    node.produce(2, { silent: true }); // 14, 15 never announced
    node.produce(1); // 16 announced → 14, 15 filled over HTTP
    await waitFor(() => seen.at(-1) === 16);
    expect(source.subscribed).toBe(true);
    node.dropWebsockets(true);
    node.produce(5, { silent: true }); // 17..21 while disconnected
    await waitFor(() => !source.subscribed);
    await new Promise((r) => setTimeout(r, 60));
    node.dropWebsockets(false);
    await waitFor(() => seen.at(-1) === 21); // catch-up after resubscribe, no event needed
    node.produce(9); // 22..30
    const heights = await done;
    expect(heights).toEqual(Array.from({ length: 20 }, (_, i) => 11 + i));
    expect(seen).toEqual(Array.from({ length: 21 }, (_, i) => 10 + i));
  });

  it('reconnects when the subscription goes silent, without losing a height', async () => {
    const { node } = await setup(7);
    const source = new BlockSource(
      { log },
      {
        query_node_rpc_url: node.url,
        reconnect_initial_delay_ms: 10,
        reconnect_max_delay_ms: 20,
        idle_timeout_ms: 80,
      },
    );
    cleanups.push(() => source.close());
    const seen: number[] = [];
    source.onBlock((b) => seen.push(b.height));
    await source.start();
    await waitFor(() => node.subscribeRequests >= 2); // the silent first subscription was replaced
    node.produce(2, { silent: true });
    await waitFor(() => node.subscribeRequests >= 3); // and the next one caught up on connect
    await waitFor(() => seen.at(-1) === 9);
    expect(seen).toEqual([7, 8, 9]);
  });

  it('ends iterators on close', async () => {
    const { node } = await setup(5);
    const source = newSource(node);
    await source.start();
    const it = source.blocks();
    const pending = it.next();
    await source.close();
    expect(await pending).toEqual({ value: undefined, done: true });
  });
});

describe('TxClient against broadcast_tx_sync', () => {
  const PRIV = Buffer.alloc(32, 0x21);
  const PUB = publicKeyFromPrivate(PRIV);
  const ADDR = addressFromPublicKey(PUB);

  function serveAccount(node: FakeNode, sequence: () => bigint): void {
    node.abci.set(QUERY_PATHS.authAccount, () => ({
      value: QueryAccountResponse.encode({
        account: {
          typeUrl: '/cosmos.auth.v1beta1.BaseAccount',
          value: BaseAccount.encode({
            address: ADDR,
            pubKey: undefined,
            accountNumber: 3n,
            sequence: sequence(),
          }).finish(),
        },
      }).finish(),
    }));
  }

  const claim = pb.proofTx.MsgCreateClaim.fromPartial({
    supplierOperatorAddress: ADDR,
    sessionHeader: {
      applicationAddress: 'pokt1app',
      serviceId: 'anvil',
      sessionId: 'sid',
      sessionStartBlockHeight: 1n,
      sessionEndBlockHeight: 10n,
    },
    rootHash: Buffer.alloc(48, 1),
  });

  it('sends an unordered tx: sequence 0, timeout = block time + 120 s, simulated gas × 1.7, fee rounded up', async () => {
    const { node, query } = await setup(50);
    serveAccount(node, () => 0n);
    const simulated: Uint8Array[] = [];
    node.abci.set(QUERY_PATHS.txSimulate, (data) => {
      simulated.push(SimulateRequest.decode(data).txBytes);
      return { value: SimulateResponse.encode({ gasInfo: { gasWanted: 0n, gasUsed: 100_001n } }).finish() };
    });
    const tx = new TxClient({ log, query, random: () => 0 }, { gas_price: '0.00001upokt' });
    expect(await tx.addSigner(PRIV)).toBe(ADDR);
    const result = await tx.createClaims(ADDR, [claim, { ...claim, rootHash: Buffer.alloc(48, 2) }]);
    expect(node.broadcasts.length).toBe(1);
    const raw = node.broadcasts[0]!;
    expect(result).toEqual({
      ok: true,
      txHash: txHashHex(raw),
      gasLimit: 170_001n,
      feeAmount: 2n,
      sequence: 0n,
    });
    const decoded = TxRaw.decode(raw);
    const body = TxBody.decode(decoded.bodyBytes);
    const auth = AuthInfo.decode(decoded.authInfoBytes);
    const anchorNs = BigInt(GENESIS_MS + 50_000) * 1_000_000n + 123_456n + 120_000_000_000n;
    expect({
      unordered: body.unordered,
      memo: body.memo,
      timeout: body.timeoutTimestamp,
      typeUrls: body.messages.map((m) => m.typeUrl),
      msgs: body.messages.map((m) => pb.proofTx.MsgCreateClaim.decode(m.value)),
      sequence: auth.signerInfos[0]!.sequence,
      gas: auth.fee!.gasLimit,
      fee: auth.fee!.amount,
    }).toEqual({
      unordered: true,
      memo: 'HA RelayMiner',
      timeout: { seconds: anchorNs / 1_000_000_000n, nanos: Number(anchorNs % 1_000_000_000n) },
      typeUrls: ['/pocket.proof.MsgCreateClaim', '/pocket.proof.MsgCreateClaim'],
      msgs: [claim, { ...claim, rootHash: Buffer.alloc(48, 2) }],
      sequence: 0n,
      gas: 170_001n,
      fee: [{ denom: 'upokt', amount: '2' }],
    });
    // The simulated tx is the same body with gas 0 and no fee.
    expect(Buffer.from(TxRaw.decode(simulated[0]!).bodyBytes)).toEqual(Buffer.from(decoded.bodyBytes));

    // A second tx in the same block gets a later timeout (unique per signer).
    await tx.createClaims(ADDR, [claim]);
    const second = TxBody.decode(TxRaw.decode(node.broadcasts[1]!).bodyBytes).timeoutTimestamp!;
    expect(second).toEqual({
      seconds: anchorNs / 1_000_000_000n,
      nanos: Number(anchorNs % 1_000_000_000n) + 1,
    });
  });

  it('returns a simulation failure as a value without broadcasting', async () => {
    const { node, query } = await setup(50);
    serveAccount(node, () => 0n);
    const why = "rpc error: code = Unknown desc = claim attempted outside of the session's claim window";
    node.abci.set(QUERY_PATHS.txSimulate, () => ({ code: 6, codespace: 'sdk', log: why }));
    const tx = new TxClient({ log, query });
    await tx.addSigner(PRIV);
    expect(await tx.createClaims(ADDR, [claim])).toEqual({
      ok: false,
      stage: 'simulate',
      code: 6,
      codespace: 'sdk',
      log: why,
      txHash: undefined,
    });
    expect(node.broadcasts).toEqual([]);
  });

  it('resyncs an ordered sequence on "account sequence mismatch"', async () => {
    const { node, query } = await setup(50);
    let chainSequence = 4n;
    serveAccount(node, () => chainSequence);
    node.onBroadcast = (raw) => {
      const seq = AuthInfo.decode(TxRaw.decode(raw).authInfoBytes).signerInfos[0]!.sequence;
      if (seq !== chainSequence) {
        return {
          code: 32,
          codespace: 'sdk',
          log: `account sequence mismatch, expected ${chainSequence}, got ${seq}: incorrect account sequence`,
        };
      }
      chainSequence++;
      return { code: 0 };
    };
    const tx = new TxClient({ log, query }, { unordered: false, gas_limit: 250_000, gas_price: '0upokt' });
    await tx.addSigner(PRIV);
    const first = await tx.createClaims(ADDR, [claim]);
    expect(first).toMatchObject({ ok: true, sequence: 4n, gasLimit: 250_000n, feeAmount: 0n });
    chainSequence = 9n; // someone else used the key
    const second = await tx.createClaims(ADDR, [claim]);
    expect(second).toMatchObject({ ok: true, sequence: 9n });
    const third = await tx.createClaims(ADDR, [claim]);
    expect(third).toMatchObject({ ok: true, sequence: 10n });
    const sequences = node.broadcasts.map(
      (r) => AuthInfo.decode(TxRaw.decode(r).authInfoBytes).signerInfos[0]!.sequence,
    );
    expect(sequences).toEqual([4n, 5n, 9n, 10n]);
    expect(TxBody.decode(TxRaw.decode(node.broadcasts[0]!).bodyBytes).unordered).toBe(false);
  });

  it('treats a re-broadcast of bytes already in the mempool as accepted', async () => {
    const { node, query } = await setup(50);
    node.onBroadcast = () => 'in-cache';
    const tx = new TxClient({ log, query });
    const raw = TxRaw.encode(TxRaw.fromPartial({ bodyBytes: Buffer.from('body'), signatures: [] })).finish();
    expect(await tx.broadcastTxBytes(raw)).toEqual({ ok: true, txHash: txHashHex(raw) });
  });

  it('gives up after one resync when the sequence still mismatches', async () => {
    const { node, query } = await setup(50);
    serveAccount(node, () => 4n);
    node.onBroadcast = () => ({
      code: 32,
      codespace: 'sdk',
      log: 'account sequence mismatch, expected 7, got 4',
    });
    const tx = new TxClient({ log, query }, { unordered: false, gas_limit: 1000, gas_price: '0upokt' });
    await tx.addSigner(PRIV);
    expect(await tx.createClaims(ADDR, [claim])).toEqual({
      ok: false,
      stage: 'check_tx',
      code: 32,
      codespace: 'sdk',
      log: 'account sequence mismatch, expected 7, got 4',
      txHash: txHashHex(node.broadcasts[1]!),
    });
    expect(node.broadcasts.length).toBe(2);
  });

  it('surfaces a CheckTx rejection as a value and an unknown tx hash as undefined', async () => {
    const { node, query } = await setup(50);
    serveAccount(node, () => 0n);
    node.onBroadcast = () => ({ code: 13, codespace: 'sdk', log: 'insufficient fee' });
    const tx = new TxClient({ log, query }, { gas_limit: 1000 });
    await tx.addSigner(PRIV);
    const r = await tx.createClaims(ADDR, [claim]);
    expect(r).toEqual({
      ok: false,
      stage: 'check_tx',
      code: 13,
      codespace: 'sdk',
      log: 'insufficient fee',
      txHash: txHashHex(node.broadcasts[0]!),
    });
    expect(await tx.getTx('AB'.repeat(32))).toBeUndefined();
    await expect(tx.createClaims('pokt1unknown', [claim])).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
