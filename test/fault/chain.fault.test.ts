/**
 * Chain faults under load (two miner processes, one relayer, the localnet's fault knobs):
 *
 *   - outage: the node's RPC refuses every HTTP request and websocket for 4 s while blocks go on
 *     (`localnet_fault unavailable`), starting right after a session's claims landed, so the next
 *     session's claim window opens while the miners see nothing;
 *   - block gaps: the websocket withholds the events of 6 blocks twice (`skip_events`), once over
 *     a claim window opening and once over a proof window opening; the miners learn of the missed
 *     heights from the next event and must fill them from `/block`;
 *   - dropped tx: one claim tx and one proof tx pass CheckTx and are dropped from the mempool
 *     (`drop_next_tx`); the inclusion reconciler must re-broadcast each and both still land in
 *     their windows.
 *
 * Each asserts the ledger (claimed on chain = client successes, nothing expired, every proof
 * landed) and that every miner's block feed delivered each height once with no gap.
 *
 * Windows are 24 blocks for claims and 12 for proofs (9.6 s and 4.8 s at 400 ms blocks) instead of
 * the stack's 4: the miners' websocket reconnects with a 1 s, 2 s, 4 s … backoff, so a 4 s outage
 * keeps them blind for about 7 s, and on a real chain a window lasts far longer than that. The
 * claim window opens 10 blocks after the grace period (see windowsOf).
 */
import { describe, expect, it } from 'vitest';
import { recordReliability } from '../helpers/reliability.js';
import type { SessionWindows } from '../../protocol/index.js';
import { faultRecord, type FaultStack, useFaultStack } from './harness.js';
import {
  SubmissionHeights,
  heightReached,
  ledgerVerdict,
  mismatched,
  localnetFault,
  minerMetric,
  sleep,
  waitUntil,
  wholeLedger,
  windowsFor,
  windowsOf,
} from './miner-harness.js';

const RPS = 150;
const CLAIM_OPEN_OFFSET_BLOCKS = 10;
const CLAIM_WINDOW_BLOCKS = 24;
const PROOF_WINDOW_BLOCKS = 12;
const OUTAGE_MS = 4_000;
const SKIPPED_BLOCKS = 6;

let landed: SubmissionHeights | undefined;

const stack = useFaultStack(
  {
    relayers: 1,
    miners: 2,
    genesis: windowsOf(CLAIM_OPEN_OFFSET_BLOCKS, CLAIM_WINDOW_BLOCKS, PROOF_WINDOW_BLOCKS),
  },
  {
    started: (s) => (landed = new SubmissionHeights(s.net)),
    stopping: () => landed?.close(),
  },
);

/** Per miner: newest height its block feed delivered, heights delivered, gaps reported. */
async function feedState(s: FaultStack): Promise<{ height: number; blocks: number; gaps: number }[]> {
  const [height, blocks, gaps] = await Promise.all([
    minerMetric(s, 'ha_miner_block_feed_height'),
    minerMetric(s, 'ha_miner_block_feed_blocks_total'),
    minerMetric(s, 'ha_miner_block_feed_gaps_total'),
  ]);
  return height.map((h, i) => ({ height: h, blocks: blocks[i]!, gaps: gaps[i]! }));
}

/** Each miner delivered every height between the two readings exactly once and reported no gap. */
function everyHeightOnce(
  before: { height: number; blocks: number; gaps: number }[],
  after: { height: number; blocks: number; gaps: number }[],
): { advanced: number; delivered: number; gaps: number }[] {
  return after.map((a, i) => ({
    advanced: a.height - before[i]!.height,
    delivered: a.blocks - before[i]!.blocks,
    gaps: a.gaps - before[i]!.gaps,
  }));
}

/** Waits for the next session to begin; returns its windows. */
async function nextSession(s: FaultStack): Promise<SessionWindows> {
  const next = windowsFor(s.net, s.net.chain.height).session_end_height + 1;
  await heightReached(s.net, next, 10_000);
  return windowsFor(s.net, next);
}

describe('chain faults', () => {
  it('node RPC unavailable for 4 s (HTTP and websocket): miners catch up every height, no claim lost', async () => {
    const s = stack();
    const before = await feedState(s);
    const claimedBefore = landed!.claims.size;
    // Relays held up by the outage are given time to finish: one the relayer serves after the
    // client gave up would be claimed without the client counting it.
    const loading = s.load({ rps: RPS, durationMs: 6_000, timeoutMs: 20_000 });
    // Right after the first claims of this run landed: the next claim window opens in the outage.
    await waitUntil('a claim of this run on chain', () => landed!.claims.size > claimedBefore, 15_000);
    const startHeight = s.net.chain.height;
    const outageAt = performance.now();
    await localnetFault(s.net, { kind: 'unavailable', ms: OUTAGE_MS });
    await sleep(OUTAGE_MS - 300 - (performance.now() - outageAt));
    const blind = await feedState(s);
    await sleep(OUTAGE_MS - (performance.now() - outageAt));
    const backHeight = s.net.chain.height;
    let recoveryMs = -1;
    await waitUntil(
      'every miner following blocks produced after the outage',
      async () => {
        const f = await feedState(s);
        if (!f.every((x) => x.height > backHeight)) return false;
        recoveryMs = Math.round(performance.now() - outageAt);
        return true;
      },
      30_000,
      50,
    );
    const load = await loading;
    const ledger = await s.ledger(load);
    const feeds = everyHeightOnce(before, await feedState(s));

    recordReliability(
      'fault',
      'chain-rpc-outage',
      faultRecord(
        `node RPC (HTTP and websocket) unavailable for ${OUTAGE_MS / 1000} s at height ${startHeight} under ${RPS} RPS for 6 s; blocks go on (2 miners, 1 relayer)`,
        RPS,
        load,
        ledger,
        {
          recovery_ms: recoveryMs,
          extra: {
            outage_ms: OUTAGE_MS,
            blocks_during_outage: backHeight - startHeight,
            block_feed_gaps: feeds.reduce((n, f) => n + f.gaps, 0),
            sessions: ledger.perSession.length,
          },
        },
      ),
    );
    // Blocks went on while no miner saw any of them; afterwards each miner got every height once.
    expect(backHeight - startHeight).toBeGreaterThanOrEqual(5);
    for (const f of blind) expect(f.height).toBeLessThanOrEqual(startHeight + 1);
    for (const f of feeds) {
      expect(f).toEqual({ advanced: f.advanced, delivered: f.advanced, gaps: 0 });
      expect(f.advanced).toBeGreaterThan(backHeight - startHeight);
    }
    expect(mismatched(ledger)).toEqual([]);
    expect(ledgerVerdict(load, ledger)).toEqual(wholeLedger(load.successes));
  }, 75_000);

  it('block gaps: miners miss the events of 6 blocks twice, fill them from /block, no claim or proof lost', async () => {
    const s = stack();
    const before = await feedState(s);
    const w = await nextSession(s);
    const end = w.session_end_height;
    const loading = s.load({ rps: RPS, durationMs: 4_000 });
    // The events of the claim window opening of this session, then of its proof window opening.
    await heightReached(s.net, w.claim_window_open_height - 3, 15_000);
    await localnetFault(s.net, { kind: 'skip_events', blocks: SKIPPED_BLOCKS });
    await heightReached(s.net, w.proof_window_open_height - 3, 30_000);
    await localnetFault(s.net, { kind: 'skip_events', blocks: SKIPPED_BLOCKS });
    const load = await loading;
    const ledger = await s.ledger(load);
    const feeds = everyHeightOnce(before, await feedState(s));

    recordReliability(
      'fault',
      'chain-block-event-gaps',
      faultRecord(
        `websocket events of ${SKIPPED_BLOCKS} blocks withheld over the claim window opening and again over the proof window opening of the session ending at ${end}, ${RPS} RPS for 4 s (2 miners, 1 relayer)`,
        RPS,
        load,
        ledger,
        {
          extra: {
            skipped_event_blocks: 2 * SKIPPED_BLOCKS,
            block_feed_gaps: feeds.reduce((n, f) => n + f.gaps, 0),
            sessions: ledger.perSession.length,
          },
        },
      ),
    );
    for (const f of feeds) expect(f).toEqual({ advanced: f.advanced, delivered: f.advanced, gaps: 0 });
    expect(mismatched(ledger)).toEqual([]);
    expect(ledgerVerdict(load, ledger)).toEqual(wholeLedger(load.successes));
  }, 75_000);

  it('tx dropped after CheckTx: the reconciler re-broadcasts a claim and a proof, both land in their windows', async () => {
    const s = stack();
    const rebroadcasts = async (phase: string): Promise<number> =>
      (await minerMetric(s, 'ha_miner_rebroadcasts_total', { phase, result: 'accepted' })).reduce(
        (a, b) => a + b,
        0,
      );
    const before = { claim: await rebroadcasts('claim'), proof: await rebroadcasts('proof') };
    const w = await nextSession(s);
    const end = w.session_end_height;
    const loading = s.load({ rps: RPS, durationMs: 3_000 });
    // The next tx to pass CheckTx after each arming is the first claim (proof) of this session.
    await heightReached(s.net, w.claim_window_open_height - 1, 15_000);
    await localnetFault(s.net, { kind: 'drop_next_tx', count: 1 });
    await heightReached(s.net, w.proof_window_open_height - 1, 30_000);
    await localnetFault(s.net, { kind: 'drop_next_tx', count: 1 });
    const load = await loading;
    const ledger = await s.ledger(load);
    const after = { claim: await rebroadcasts('claim'), proof: await rebroadcasts('proof') };
    const sessionKeys = [...load.successesBySession.keys()].filter((k) =>
      load.samples.some((x) => `${x.supplier}/${x.sessionId}` === k && x.sessionEndHeight === end),
    );
    const claimHeights = sessionKeys.map((k) => landed!.claims.get(k) ?? -1).sort((a, b) => a - b);
    const proofHeights = sessionKeys.map((k) => landed!.proofs.get(k) ?? -1).sort((a, b) => a - b);

    recordReliability(
      'fault',
      'chain-tx-dropped',
      faultRecord(
        `one claim tx and one proof tx of the session ending at ${end} dropped from the mempool after CheckTx, ${RPS} RPS for 3 s (2 miners, 1 relayer)`,
        RPS,
        load,
        ledger,
        {
          extra: {
            rebroadcasts: after.claim - before.claim + (after.proof - before.proof),
            claim_rebroadcasts: after.claim - before.claim,
            proof_rebroadcasts: after.proof - before.proof,
            claim_window: `${w.claim_window_open_height}-${w.claim_window_close_height}`,
            claim_heights: claimHeights.join(','),
            proof_window: `${w.proof_window_open_height}-${w.proof_window_close_height}`,
            proof_heights: proofHeights.join(','),
            sessions: ledger.perSession.length,
          },
        },
      ),
    );
    expect({ claim: after.claim - before.claim, proof: after.proof - before.proof }).toEqual({
      claim: 1,
      proof: 1,
    });
    // The kept claim (proof) landed right away; the dropped one after its re-broadcast, which the
    // reconciler sends from the middle of the window on, and still before the window closed.
    const midClaim = w.claim_window_open_height + Math.floor(CLAIM_WINDOW_BLOCKS / 2);
    const midProof = w.proof_window_open_height + Math.floor(PROOF_WINDOW_BLOCKS / 2);
    expect(sessionKeys.length).toBe(2);
    expect(claimHeights[0]).toBeGreaterThan(w.claim_window_open_height);
    expect(claimHeights[0]).toBeLessThanOrEqual(midClaim);
    expect(claimHeights[1]).toBeGreaterThan(midClaim);
    expect(claimHeights[1]).toBeLessThan(w.claim_window_close_height);
    expect(proofHeights[0]).toBeGreaterThan(w.proof_window_open_height);
    expect(proofHeights[0]).toBeLessThanOrEqual(midProof);
    expect(proofHeights[1]).toBeGreaterThan(midProof);
    expect(proofHeights[1]).toBeLessThan(w.proof_window_close_height);
    expect(mismatched(ledger)).toEqual([]);
    expect(ledgerVerdict(load, ledger)).toEqual(wholeLedger(load.successes));
  }, 75_000);
});
