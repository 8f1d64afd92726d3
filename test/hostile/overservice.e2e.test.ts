/**
 * Over-servicing across two relayers: both run on one Redis namespace (so one relay meter), the
 * app's budget for the session allows exactly K relays, and far more than K distinct relays are
 * fired concurrently, split over both relayers.
 *
 * The bound, from relay-meter.ts and lua/meter-consume.lua: the check and the INCRBY run in one
 * Lua script on the shared `…:consumed` key, so the budget is never overshot, by any number of
 * replicas: admitted relays ≤ K exactly (bound K + 0). Meter errors would fail open, but the
 * test's Redis does not fail.
 * - eager services refuse the rest with 429 before the backend: served = K, published = K.
 * - optimistic services answer everything first and meter afterwards: served = N, published = K,
 *   and each of the N − K relays served beyond the budget lands in the session ledger's
 *   `over_serviced` bucket (relay-core.ts publishMined → RelayerLedgerCounts).
 */
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startRelayer, type RunningRelayer } from '../../cmd/relayer.js';
import type { SessionHeader } from '../../protocol/index.js';
import { SUPPLIER } from '../e2e/localnet-fixtures.js';
import { waitFor } from '../e2e/miner-fixtures.js';
import { startRelayerStack, type RelayerStack } from '../e2e/relayer-fixtures.js';
import { recordReliability } from '../helpers/reliability.js';

/** Relays the budget allows. */
const K = 25;
/** Relays fired, half at each relayer. */
const N = 160;
/** Requests in flight at once over both relayers. */
const CONCURRENCY = 16;
/** One relay: CUPR 2 × compute_units_to_tokens_multiplier 42 / granularity 1. */
const COST_UPOKT = 84;
const APP_STAKE_UPOKT = 100_000_000;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

interface Pair {
  stack: RelayerStack;
  second: RunningRelayer;
  secondRegistry: Registry;
}

async function startPair(mode: 'eager' | 'optimistic'): Promise<Pair> {
  const stack = await startRelayerStack({
    validationMode: mode,
    beforeStart: async (redis, keys) => {
      // Service factor: budget = stake × factor = K × 84 uPOKT.
      await redis.set(
        keys.serviceFactorServiceKey('anvil'),
        JSON.stringify({ factor: (K * COST_UPOKT) / APP_STAKE_UPOKT, updated_at: 0 }),
      );
    },
  });
  cleanups.push(() => stack.close());
  const secondRegistry = new Registry();
  const second = await startRelayer(stack.config, {
    log: pino({ level: 'silent' }),
    registry: secondRegistry,
  });
  cleanups.push(() => second.stop());
  const h = await stack.advance(0);
  await waitFor(() => second.core.heights.currentHeight >= h, 5_000, 'the second relayer to see the block');
  return { stack, second, secondRegistry };
}

/** Fires N distinct relays, CONCURRENCY at a time, alternating relayers; returns the HTTP statuses. */
async function fire(
  p: Pair,
  header: SessionHeader,
): Promise<{ verified: number; statuses: Record<number, number> }> {
  const urls = [p.stack.url, `http://127.0.0.1:${p.second.relayPort}`];
  const statuses: Record<number, number> = {};
  let verified = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < N) {
      const i = next++;
      const body = JSON.stringify({ jsonrpc: '2.0', id: i, method: 'eth_chainId' });
      const { bytes } = p.stack.signRequest(header, p.stack.httpPayload({ body }));
      const res = await fetch(`${urls[i % 2]}/`, {
        method: 'POST',
        body: bytes,
        headers: { 'Rpc-Type': '3' },
      });
      const answer = new Uint8Array(await res.arrayBuffer());
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      if (res.status === 200 && p.stack.verifyHttp(answer, header).ok) verified++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { verified, statuses };
}

async function flushBoth(p: Pair): Promise<void> {
  await p.stack.relayer.publisher.flush();
  await p.second.publisher.flush();
}

async function published(p: Pair): Promise<number> {
  return p.stack.redis.xlen(p.stack.keys.relayStream(SUPPLIER.address));
}

async function consumedUpokt(p: Pair, header: SessionHeader): Promise<number> {
  return Number(
    (await p.stack.redis.get(p.stack.keys.meterConsumed(header.sessionId, SUPPLIER.address))) ?? '0',
  );
}

async function ledger(p: Pair, header: SessionHeader): Promise<Record<string, string>> {
  return p.stack.redis.hgetall(p.stack.keys.minerLedger(SUPPLIER.address, header.sessionId));
}

/** After a quiet moment and a last flush: what the clients saw and what Redis holds. */
async function settledOutcome(
  p: Pair,
  header: SessionHeader,
  out: { verified: number; statuses: Record<number, number> },
) {
  await new Promise((r) => setTimeout(r, 200));
  await flushBoth(p);
  return {
    verified: out.verified,
    statuses: out.statuses,
    published: await published(p),
    consumedUpokt: await consumedUpokt(p, header),
    ledger: await ledger(p, header),
  };
}

describe(`over-servicing: ${N} relays against a budget of ${K}, over 2 relayers`, () => {
  it('eager: exactly K served and published, the rest refused with 429; the meter stops at the budget', async () => {
    const p = await startPair('eager');
    const header = await p.stack.session('anvil');
    const out = await fire(p, header);
    await flushBoth(p);
    const result = await settledOutcome(p, header, out);
    expect(result).toEqual({
      verified: K,
      statuses: { 200: K, 429: N - K },
      published: K,
      consumedUpokt: K * COST_UPOKT,
      ledger: {},
    });
    recordReliability('hostile', 'overservice-eager', {
      scenario: `${N} distinct relays, ${CONCURRENCY} in flight, split over 2 eager relayers on one namespace; budget ${K} relays`,
      budget_relays: K,
      sent: N,
      served: out.verified,
      refused_429: out.statuses[429] ?? 0,
      published: result.published,
      meter_consumed_upokt: result.consumedUpokt,
      bound_beyond_budget: 0,
    });
  }, 60_000);

  it('optimistic: every relay answered, exactly K published, N − K counted as over_serviced', async () => {
    const p = await startPair('optimistic');
    const header = await p.stack.session('anvil');
    const out = await fire(p, header);
    // Background validation + metering finishes after the answers; wait for the ledger to add up.
    await waitFor(
      async () => {
        await flushBoth(p);
        const l = await ledger(p, header);
        return Number(l['over_serviced'] ?? 0) + (await published(p)) >= N;
      },
      20_000,
      'every served relay to be published or counted',
    );
    const result = await settledOutcome(p, header, out);
    expect(result).toEqual({
      verified: N,
      statuses: { 200: N },
      published: K,
      consumedUpokt: K * COST_UPOKT,
      ledger: { over_serviced: String(N - K) },
    });
    const dropped = async (r: Registry): Promise<number> => {
      const m = await r.getSingleMetric('ha_relayer_relays_dropped_total')?.get();
      return (m?.values ?? [])
        .filter((v) => v.labels['reason'] === 'stake_exhausted')
        .reduce((a, v) => a + v.value, 0);
    };
    const droppedBoth =
      (await p.stack.metric('ha_relayer_relays_dropped_total', { reason: 'stake_exhausted' })) +
      (await dropped(p.secondRegistry));
    expect(droppedBoth).toBe(N - K);
    recordReliability('hostile', 'overservice-optimistic', {
      scenario: `${N} distinct relays, ${CONCURRENCY} in flight, split over 2 optimistic relayers on one namespace; budget ${K} relays`,
      budget_relays: K,
      sent: N,
      served: out.verified,
      published: result.published,
      over_serviced: N - K,
      meter_consumed_upokt: result.consumedUpokt,
      bound_beyond_budget: 0,
    });
  }, 60_000);
});
