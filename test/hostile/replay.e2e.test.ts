/**
 * Replayed relays: the very same signed RelayRequest bytes sent again and again, to one relayer
 * and to two relayers sharing one Redis namespace, must reach the chain as one relay. A miner
 * replica (the real startMiner graph) consumes the supplier stream and claims the session; the
 * claim's root carries the relay count, which must be 1 per distinct request.
 *
 * The relays are served again each time, and the signed HTTP answer covers the backend's response
 * headers (Date among them), so a replay served in another second is a different mined relay
 * (another relay hash). The miner's dedup set is keyed by the request's ring-signature challenge,
 * which only the gateway's signing chooses, so every replay of a request collapses into one relay.
 *
 * The meter is asserted exactly as it behaves: every replay that is served is charged again
 * (relay-meter.ts keys the budget by (session, supplier) and consumes one relay's cost per served
 * request; it has no notion of a request already seen), so N served replays cost N × 84 uPOKT
 * (CUPR 2 × multiplier 42 / granularity 1) even though the chain pays for one.
 *
 * testGenesis: 4-block sessions. Session [5, 8]: claim window (10, 14].
 */
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { startRelayer, type RunningRelayer } from '../../cmd/relayer.js';
import { SessionStore } from '../../miner/index.js';
import { bytesToHex } from '../../core/index.js';
import { minedRelayBytes, sha256, type RelayRequest, type SessionHeader } from '../../protocol/index.js';
import type { RunningMiner } from '../../cmd/miner.js';
import { SUPPLIER } from '../e2e/localnet-fixtures.js';
import { driveTo, startMinerReplica, waitFor } from '../e2e/miner-fixtures.js';
import { startRelayerStack, type RelayerStack } from '../e2e/relayer-fixtures.js';
import { recordReliability } from '../helpers/reliability.js';

const COST_UPOKT = 84n;
const silent = pino({ level: 'silent' });

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

interface Harness {
  stack: RelayerStack;
  second: RunningRelayer;
  store: SessionStore;
  miner: RunningMiner;
}

async function start(): Promise<Harness> {
  const stack = await startRelayerStack();
  cleanups.push(() => stack.close());
  // A second relayer on the same config: same Redis namespace, meter prefix, chain and keys.
  const second = await startRelayer(stack.config, { log: silent, registry: new Registry() });
  cleanups.push(() => second.stop());
  const h = await stack.advance(0);
  await waitFor(() => second.core.heights.currentHeight >= h, 5_000, 'the second relayer to see the block');
  const miner = await startMinerReplica(stack, 'miner-replay');
  cleanups.push(() => miner.stop());
  await waitFor(() => miner.owned().includes(SUPPLIER.address), 20_000, 'the miner to own the supplier');
  const store = new SessionStore(
    { redis: stack.redis, keys: stack.keys, log: silent },
    { ttl_seconds: 3600 },
  );
  return { stack, second, miner, store };
}

/**
 * Posts the relay's bytes; resolves with the hash of the mined relay the answer makes (the SMST key
 * the relayer publishes: SHA-256 of the request and the signed response without its payload), or
 * undefined when the answer was not a verified 200.
 */
async function post(
  url: string,
  stack: RelayerStack,
  relay: { request: RelayRequest; bytes: Uint8Array },
  header: SessionHeader,
): Promise<string | undefined> {
  const res = await fetch(`${url}/`, { method: 'POST', body: relay.bytes, headers: { 'Rpc-Type': '3' } });
  const answer = new Uint8Array(await res.arrayBuffer());
  if (res.status !== 200) return undefined;
  const v = stack.verifyHttp(answer, header);
  return v.ok ? bytesToHex(sha256(minedRelayBytes(relay.request, v.response))) : undefined;
}

async function consumedUpokt(stack: RelayerStack, header: SessionHeader): Promise<bigint> {
  return BigInt((await stack.redis.get(stack.keys.meterConsumed(header.sessionId, SUPPLIER.address))) ?? '0');
}

/** Relays in the claim root (big-endian count at byte 40). */
async function claimedRelays(stack: RelayerStack, header: SessionHeader): Promise<bigint> {
  const claim = await stack.chain.query.getClaim(header.sessionId, SUPPLIER.address);
  return Buffer.from(claim.rootHash).readBigUInt64BE(40);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Outcome {
  served: boolean[];
  meterUpokt: bigint;
  distinctRelayHashes: number;
  distinctRequests: number;
  consumedByMiner: number;
  claimed: bigint;
}

/**
 * Relay A replayed 6 times to relayer 1, 250 ms apart; relay B 4 times concurrently over both
 * relayers, then once more on each after a second. The miner starts once everything is in the
 * stream, so the published entries can be counted first.
 */
async function replayScenario(): Promise<Outcome> {
  const h = await start();
  const { stack, second } = h;
  const header = await stack.session('anvil');
  expect([Number(header.sessionStartBlockHeight), Number(header.sessionEndBlockHeight)]).toEqual([5, 8]);
  const body = (id: number): Uint8Array =>
    stack.httpPayload({ body: JSON.stringify({ jsonrpc: '2.0', id, method: 'eth_chainId' }) });
  const relayA = stack.signRequest(header, body(1));
  const relayB = stack.signRequest(header, body(2));
  const secondUrl = `http://127.0.0.1:${second.relayPort}`;

  const served: (string | undefined)[] = [];
  for (let i = 0; i < 6; i++) {
    served.push(await post(stack.url, stack, relayA, header));
    await sleep(250);
  }
  served.push(
    ...(await Promise.all(
      [0, 1, 2, 3].map((i) => post(i % 2 === 0 ? stack.url : secondUrl, stack, relayB, header)),
    )),
  );
  await sleep(1_100);
  served.push(await post(stack.url, stack, relayB, header), await post(secondUrl, stack, relayB, header));
  await stack.relayer.publisher.flush();
  await second.publisher.flush();
  const relayHashes = new Set(served.filter((x) => x !== undefined));
  const meterUpokt = await consumedUpokt(stack, header);

  // The stream drains into the session; then the relay count settles.
  await waitFor(
    async () =>
      (await stack.redis.xlen(stack.keys.relayStream(SUPPLIER.address))) === 0 &&
      (await h.store.get(SUPPLIER.address, header.sessionId)) !== undefined,
    10_000,
    'the miner to consume the stream',
  );
  const consumedByMiner = (await h.store.get(SUPPLIER.address, header.sessionId))?.relay_count ?? -1;
  await driveTo(stack, [h.miner], 12);
  await waitFor(
    async () => (await h.store.get(SUPPLIER.address, header.sessionId))?.state === 'claimed',
    10_000,
    'the claim',
  );
  const claimed = await claimedRelays(stack, header);
  const outcome: Outcome = {
    served: served.map((x) => x !== undefined),
    meterUpokt,
    distinctRelayHashes: relayHashes.size,
    distinctRequests: 2,
    consumedByMiner,
    claimed,
  };
  recordReliability('hostile', 'replay', {
    scenario:
      '2 signed relays, each replayed 6 times with the same bytes, over 2 relayers on one Redis namespace; 1 miner',
    requests_sent: 12,
    served: served.filter((x) => x !== undefined).length,
    distinct_requests: 2,
    distinct_relay_hashes: relayHashes.size,
    miner_session_relays: consumedByMiner,
    claimed_on_chain: Number(claimed),
    replays_claimed_beyond_one_per_request: Number(claimed) - 2,
    meter_charged_upokt: Number(meterUpokt),
  });
  return outcome;
}

describe('replayed relays (same bytes, 1 and 2 relayers)', () => {
  let outcome: Promise<Outcome> | undefined;
  const run = (): Promise<Outcome> => (outcome ??= replayScenario());
  afterAll(() => {
    outcome = undefined;
  });

  it('every replay is served, published and charged; the miner claims one relay per distinct request', async () => {
    const o = await run();
    expect({
      served: o.served,
      meterUpokt: o.meterUpokt,
    }).toEqual({
      served: Array.from({ length: 12 }, () => true),
      meterUpokt: 12n * COST_UPOKT,
    });
    // The answers differ across seconds, so the relays mined from them do too …
    expect(o.distinctRelayHashes).toBeGreaterThan(o.distinctRequests);
    // … and still each request is in the session, and on chain, once.
    expect({ consumedByMiner: o.consumedByMiner, claimed: o.claimed }).toEqual({
      consumedByMiner: o.distinctRequests,
      claimed: BigInt(o.distinctRequests),
    });
  }, 120_000);
});
