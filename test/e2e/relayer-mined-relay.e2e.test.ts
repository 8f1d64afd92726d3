/**
 * MinedRelayPublisher end to end: gateway-signed requests, the supplier key, ChainCaches over real
 * Redis with the localnet chain simulator as L3, and the real StreamPublisher. The relays read back
 * from the supplier's stream are put in a session trie, claimed and proven on the localnet, whose
 * proof check verifies the ring signature of the request and the supplier signature of the mined
 * response exactly as the chain does. Also: a difficulty target nothing meets, and a chain that
 * cannot be reached (CUPR unknown → dropped, never guessed).
 */
import pino from 'pino';
import { Counter, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChainCaches, createCacheMetrics } from '../../cache/index.js';
import { ChainQueryClient } from '../../chain/index.js';
import { attributeValue } from '../../localnet/index.js';
import {
  encodeRelayRequest,
  proofPath,
  relayRequestSignableHash,
  type RelayRequest,
  type SessionHeader,
} from '../../protocol/index.js';
import { InMemoryMapStore, SparseMerkleSumTrie } from '../../protocol/smst/index.js';
import { RelaySigner } from '../../relayer/index.js';
import { MinedRelayPublisher, type MinedPublishResult } from '../../relayer/mined-relay.js';
import { RelayPipelineMetrics } from '../../relayer/pipeline-metrics.js';
import { expectedRingAddresses, selectBackend, signRingSignature } from '../../rings/index.js';
import {
  StreamPublisher,
  StreamPublisherMetrics,
  decodeMinedRelayMessage,
  type MinedRelayMessage,
} from '../../transport/streams/index.js';
import { useRedis } from '../helpers/redis.js';
import {
  APP,
  GATEWAY,
  SUPPLIER,
  buildTx,
  createClaimMsg,
  startChainWithClient,
  submitProofMsg,
  testGenesis,
  type ChainWithClient,
} from './localnet-fixtures.js';

const log = pino({ level: 'silent' });
const backend = selectBackend('native');
const r = useRedis();
const signer = new RelaySigner({ backend, log }, [SUPPLIER.privateKey]);

let chainHandle: ChainWithClient;
/** Session [1, 4]: claimed and proven below. */
let claimed: SessionHeader;
/** Session [5, 8]: gets an impossible difficulty target. */
let hard: SessionHeader;

beforeAll(async () => {
  chainHandle = await startChainWithClient(testGenesis(), 4);
  claimed = (await chainHandle.query.getSession(APP.address, 'anvil', 1)).header!;
});
afterAll(async () => {
  await chainHandle.stop();
});

/** A RelayRequest ring-signed by the gateway over the app's ring, as a gateway sends it. */
function gatewayRequest(header: SessionHeader, n: number): RelayRequest {
  const ring = expectedRingAddresses(
    APP.address,
    { delegateeGatewayAddresses: [GATEWAY.address], pendingUndelegations: new Map() },
    header.sessionEndBlockHeight,
  );
  const keys = ring.map((a) => (a === APP.address ? APP.publicKey : GATEWAY.publicKey));
  const unsigned: RelayRequest = {
    meta: { sessionHeader: header, signature: Buffer.alloc(0), supplierOperatorAddress: SUPPLIER.address },
    payload: Buffer.from(`{"jsonrpc":"2.0","id":${n},"method":"eth_blockNumber"}`),
  };
  const sig = signRingSignature(
    backend,
    keys,
    ring.indexOf(GATEWAY.address),
    GATEWAY.privateKey,
    relayRequestSignableHash(unsigned),
  );
  return { ...unsigned, meta: { ...unsigned.meta!, signature: Buffer.from(sig) } };
}

function build(chain: ChainQueryClient = chainHandle.query) {
  const caches = new ChainCaches({
    redis: r.client,
    keys: r.keys(),
    log,
    metrics: createCacheMetrics(new Registry()),
    chain,
  });
  const publisher = new StreamPublisher(
    { redis: r.client, keys: r.keys(), log, metrics: new StreamPublisherMetrics(new Registry()) },
    {
      max_len: 0,
      ttl_seconds: 600,
      batch_size: 16,
      flush_interval_ms: 1,
      max_buffered: 1000,
      ack_timeout_ms: 1_000,
    },
  );
  const registry = new Registry();
  const counters = {
    relaysDropped: new Counter({
      name: 'ha_relayer_relays_dropped_total',
      help: 'dropped',
      labelNames: ['service_id', 'reason'],
      registers: [registry],
    }),
    relaysSkippedDifficulty: new Counter({
      name: 'ha_relayer_relays_skipped_difficulty_total',
      help: 'skipped',
      labelNames: ['service_id'],
      registers: [registry],
    }),
  };
  const mp = new MinedRelayPublisher(
    { caches, signer, publisher, log, counters, metrics: new RelayPipelineMetrics(registry) },
    { cupr_lookup_attempts: 3, cupr_retry_delay_ms: 5 },
  );
  return {
    mp,
    registry,
    async streamEntries(): Promise<MinedRelayMessage[]> {
      await publisher.flush();
      const entries = await r.client.xrangeBuffer(r.keys().relayStream(SUPPLIER.address), '-', '+');
      return entries.map(([, fields]) => decodeMinedRelayMessage(fields[1]!));
    },
    async close(): Promise<void> {
      await publisher.close(1_000);
      await caches.close();
    },
  };
}

async function series(registry: Registry, name: string): Promise<unknown[]> {
  return (await registry.getSingleMetric(name)!.get()).values.map((v) => ({
    labels: v.labels,
    value: v.value,
  }));
}

describe('MinedRelayPublisher on the localnet', () => {
  it('publishes relays whose trie the chain accepts as claim and proof', async () => {
    const b = build();
    const results: MinedPublishResult[] = [];
    for (let n = 0; n < 3; n++) {
      results.push(
        await b.mp.publish({
          request: gatewayRequest(claimed, n),
          rawBody: new TextEncoder().encode(`{"jsonrpc":"2.0","id":${n},"result":"0x${n + 16}"}`),
          supplierAddress: SUPPLIER.address,
          arrivalHeight: 4,
        }),
      );
    }
    const entries = await b.streamEntries();
    expect(
      entries.map((m) => ({ ...m, relay_bytes: m.relay_bytes.length, published_at_unix_nano: 0n })),
    ).toEqual(
      results.map((res) => {
        if (!res.ok) throw new Error(`${res.code}: ${res.reason}`);
        return {
          relay_hash: res.relayHash,
          relay_bytes: res.message.relay_bytes.length,
          compute_units_per_relay: 2n,
          session_id: claimed.sessionId,
          session_end_height: 4,
          supplier_operator_address: SUPPLIER.address,
          service_id: 'anvil',
          application_address: APP.address,
          arrival_block_height: 4,
          published_at_unix_nano: 0n,
          session_start_height: 1,
        };
      }),
    );
    expect(entries.every((m) => m.published_at_unix_nano > 0n)).toBe(true);

    // What the miner does with the stream: one trie leaf per relay, weighted with its CUPR.
    const trie = SparseMerkleSumTrie.create(new InMemoryMapStore());
    for (const m of entries) await trie.update(m.relay_hash, m.relay_bytes, m.compute_units_per_relay);
    await trie.commit();

    const chain = chainHandle.net.chain;
    chain.advanceTo(5);
    const t = chain.latestBlock()!.timeMs + 60_000;
    const claim = chain.broadcastTxSync(
      await buildTx([createClaimMsg(claimed, trie.root())], { accountNumber: 2n, timeoutMs: t }),
    );
    expect(claim.result.code).toBe(0);
    chain.advanceTo(9);
    expect(chain.claims().map((c) => c.sessionHeader?.sessionId)).toEqual([claimed.sessionId]);
    const proof = await trie.proveClosestBytes(proofPath(chain.blockHash(9), claimed.sessionId));
    const sent = chain.broadcastTxSync(
      await buildTx([submitProofMsg(claimed, proof)], { accountNumber: 2n, timeoutMs: t + 1 }),
    );
    expect(sent.result.code).toBe(0);
    const block = chain.produceBlock();
    expect(block.txResults.map((x) => x.code)).toEqual([0]);
    const checked = block.finalizeEvents.find((e) => e.type === 'pocket.proof.EventProofValidityChecked')!;
    expect({
      status: attributeValue(checked, 'claim_proof_status_int'),
      failure: attributeValue(checked, 'failure_reason') ?? '',
    }).toEqual({ status: 1, failure: '' });
    await b.close();
  });

  it('skips every relay of a session whose difficulty target is all zero bytes', async () => {
    const chain = chainHandle.net.chain;
    chain.advanceTo(5);
    hard = (await chainHandle.query.getSession(APP.address, 'anvil', 5)).header!;
    expect([hard.sessionStartBlockHeight, hard.sessionEndBlockHeight]).toEqual([5n, 8n]);
    chain.setRelayMiningDifficulty('anvil', 5, new Uint8Array(32), 1_000n);
    const b = build();
    const result = await b.mp.publish({
      request: gatewayRequest(hard, 1),
      rawBody: new TextEncoder().encode('{"result":"0x1"}'),
      supplierAddress: SUPPLIER.address,
      arrivalHeight: 9,
    });
    expect(result).toEqual<MinedPublishResult>({
      ok: false,
      code: 'MINE_BELOW_DIFFICULTY',
      reason: 'relay hash is not below the difficulty target of service anvil at height 5',
    });
    expect(await series(b.registry, 'ha_relayer_relays_skipped_difficulty_total')).toEqual([
      { labels: { service_id: 'anvil' }, value: 1 },
    ]);
    expect(await b.streamEntries()).toEqual([]);
    await b.close();
  });

  it('drops the relay when the chain cannot be reached for its CUPR', async () => {
    const down = new ChainQueryClient(
      { log },
      { query_node_rpc_url: 'http://127.0.0.1:1', query_timeout_ms: 500, max_retries: 0 },
    );
    const b = build(down);
    const req = gatewayRequest(claimed, 7);
    const result = await b.mp.publish({
      request: req,
      rawBody: new TextEncoder().encode('{"result":"0x7"}'),
      supplierAddress: SUPPLIER.address,
      arrivalHeight: 4,
    });
    expect(result).toMatchObject({ ok: false, code: 'MINE_CUPR_UNAVAILABLE' });
    expect(await series(b.registry, 'ha_relayer_relays_dropped_total')).toEqual([
      { labels: { service_id: 'anvil', reason: 'cupr_unavailable' }, value: 1 },
    ]);
    expect(await series(b.registry, 'ha_relayer_difficulty_base_fallbacks_total')).toEqual([
      { labels: { service_id: 'anvil', reason: 'lookup_error' }, value: 1 },
    ]);
    expect(await series(b.registry, 'ha_relayer_cupr_lookup_retries_total')).toEqual([
      { labels: { service_id: 'anvil' }, value: 2 },
    ]);
    expect(await b.streamEntries()).toEqual([]);
    expect(encodeRelayRequest(req).length).toBeGreaterThan(0);
    await b.close();
    down.close();
  });
});
